/*
 * fuzz_qlm.c — libFuzzer harness for the .qlm reader: qlm_file_open (header,
 * sections, metadata, directory), qlm_file_verify, the metadata lookups and
 * the tokenizer section (inflate + QTOK parse + the runtime tokenizer built
 * from it).  Random bytes rarely pass the header checksum, so every input is
 * tried twice: as is, and with file_size set to the input's length and the
 * metadata/tokenizer/directory and header XXH3s recomputed, which lets the
 * fuzzer reach the deeper validation.  Accepted tensors' first and last
 * rows are decoded from a copy of exactly their bytes.  An input starting
 * with "QTOK" is also given to qlm_tokdata_parse directly.
 */
#include <xxhash.h>

#include "fuzz_common.h"
#include "qlm_format.h"
#include "qlm_schema.h"
#include "tokenizer.h"

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static void one_line(const struct qlm_error *err)
{
    if (!err->msg[0] || strchr(err->msg, '\n'))
        abort();
}

static void tokdata(struct qlm_tokdata *td)
{
    struct qlm_tok *t;
    struct qlm_error err;
    if (qlm_tok_new(&t, td, "tok", &err) != QLM_OK) {
        one_line(&err);
        return;
    }
    int32_t *ids;
    size_t n;
    static const char text[] = "Hi there, <|im_start|>user 42\n";
    if (qlm_tok_encode(t, text, sizeof text - 1, true, &ids, &n, &err) == QLM_OK) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (uint32_t)ids[i] >= qlm_tok_count(t))
                abort();
        free(ids);
    } else {
        one_line(&err);
    }
    qlm_tok_free(t);
}

/* The first and last rows of an accepted tensor decode from exactly its
 * bytes, copied to a heap block of that size so that ASan catches a read past
 * them: the layout arithmetic (8-row tiles for q8/q4) must stay inside the
 * size the reader validated. */
static void decode_rows(const struct qlm_tensor_info *t)
{
    uint64_t rows = 1, cols = t->dims[t->n_dims - 1];
    for (int d = 0; d + 1 < t->n_dims; d++)
        rows *= t->dims[d]; /* the reader checked it does not overflow */
    if (rows == 0 || cols == 0 || cols > (1u << 20) || t->size > (1u << 20))
        return;
    uint8_t *copy = malloc(t->size ? (size_t)t->size : 1);
    float *y = malloc((size_t)cols * sizeof *y);
    if (!copy || !y)
        abort();
    memcpy(copy, t->data, (size_t)t->size);
    qlm_dequantize_row(t->dtype, copy, rows, cols, t->group, 0, y);
    qlm_dequantize_row(t->dtype, copy, rows, cols, t->group, rows - 1, y);
    free(y);
    free(copy);
}

static void try_file(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("m.qlm", data, size);
    struct qlm_file *f;
    struct qlm_error err;
    if (qlm_file_open(&f, path, &err) != QLM_OK) {
        one_line(&err);
        return;
    }
    if (qlm_file_verify(f, NULL, NULL, &err) != QLM_OK)
        one_line(&err);
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        if (qlm_file_tensor(f, f->tensors[i].name) == NULL)
            abort();
        decode_rows(&f->tensors[i]);
    }
    for (uint32_t i = 0; i < f->n_meta; i++)
        if (qlm_file_meta(f, f->meta[i].key) == NULL)
            abort();
    uint64_t u;
    double x;
    const char *s;
    (void)qlm_file_meta_u64(f, QLM_KEY_N_LAYERS, &u, &err);
    (void)qlm_file_meta_f64(f, QLM_KEY_ROPE_THETA, &x, &err);
    (void)qlm_file_meta_str(f, QLM_KEY_ARCH, &s, &err);
    struct qlm_tokdata td;
    if (qlm_file_tokdata(f, &td, &err) == QLM_OK)
        tokdata(&td);
    else
        one_line(&err);
    qlm_file_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "QTOK", 4) == 0) {
        struct qlm_tokdata td;
        struct qlm_error err;
        if (qlm_tokdata_parse(data, size, "QTOK", &td, &err) == QLM_OK)
            tokdata(&td);
        else
            one_line(&err);
        return 0;
    }
    try_file(data, size);
    if (size < QLM_HEADER_SIZE)
        return 0;
    uint8_t *b = malloc(size);
    if (!b)
        abort();
    memcpy(b, data, size);
    wr64(b + 16, size);
    static const int sec[3][3] = {{24, 32, 104}, {40, 48, 112}, {64, 72, 120}};
    for (int i = 0; i < 3; i++) {
        uint64_t o = rd64(b + sec[i][0]), n = rd64(b + sec[i][1]);
        if (o <= size && n <= size - o)
            wr64(b + sec[i][2], XXH3_64bits(b + o, (size_t)n));
    }
    wr64(b + 248, XXH3_64bits(b, 248));
    if (memcmp(b, data, size) != 0)
        try_file(b, size);
    free(b);
    return 0;
}
