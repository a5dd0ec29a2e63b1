/*
 * fuzz_imat.c — libFuzzer harness for the .imat reader (formats/imat.c):
 * qlm_imat_read on the input as a file and qlm_imat_parse on its bytes,
 * which must agree.  Random bytes rarely pass the size field and the
 * checksum, so every input is tried twice: as is, and with file_size set to
 * its length and the trailing XXH3 recomputed.  An accepted file must keep
 * the promises of qlm_imat.h (names found, means finite and >= 0, counts
 * within n_tokens) and serialize back to bytes that parse to the same
 * entries.
 */
#include <math.h>
#include <xxhash.h>

#include "fuzz_common.h"
#include "qlm_imat.h"

static void one_line(const struct qlm_error *err)
{
    if (!err->msg[0] || strchr(err->msg, '\n'))
        abort();
}

static void same(const struct qlm_imat *a, const struct qlm_imat *b)
{
    if (a->n_entries != b->n_entries || a->n_tokens != b->n_tokens ||
        memcmp(&a->model, &b->model, sizeof a->model) != 0)
        abort();
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct qlm_imat_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->name, y->name) || x->cols != y->cols || x->count != y->count ||
            memcmp(x->values, y->values, (size_t)x->cols * sizeof(float)))
            abort();
    }
}

static void accepted(const struct qlm_imat *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct qlm_imat_entry *e = &m->entries[i];
        if (qlm_imat_find(m, e->name) != e || e->count == 0 || e->count > m->n_tokens)
            abort();
        for (uint32_t c = 0; c < e->cols; c++)
            if (!isfinite(e->values[c]) || e->values[c] < 0.0f)
                abort();
    }
    uint8_t *b;
    size_t len;
    struct qlm_error err;
    struct qlm_imat *r;
    if (qlm_imat_serialize(m, "s.imat", &b, &len, &err) != QLM_OK ||
        qlm_imat_parse(b, len, "s.imat", &r, &err) != QLM_OK)
        abort();
    same(m, r);
    qlm_imat_free(r);
    free(b);
}

static void try_bytes(const uint8_t *data, size_t size)
{
    struct qlm_imat *a, *b;
    struct qlm_error ea, eb;
    enum qlm_err ra = qlm_imat_read(fuzz_write("f.imat", data, size), &a, &ea);
    enum qlm_err rb = qlm_imat_parse(data, size, "f.imat", &b, &eb);
    if (ra != rb)
        abort();
    if (ra != QLM_OK) {
        one_line(&ea);
        one_line(&eb);
        return;
    }
    same(a, b);
    accepted(a);
    qlm_imat_free(a);
    qlm_imat_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_bytes(data, size);
    if (size < QLM_IMAT_HEADER_SIZE + 8)
        return 0;
    uint8_t *b = malloc(size);
    if (!b)
        abort();
    memcpy(b, data, size);
    for (int i = 0; i < 8; i++)
        b[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    uint64_t h = XXH3_64bits(b, size - 8);
    for (int i = 0; i < 8; i++)
        b[size - 8 + i] = (uint8_t)(h >> (8 * i));
    if (memcmp(b, data, size) != 0)
        try_bytes(b, size);
    free(b);
    return 0;
}
