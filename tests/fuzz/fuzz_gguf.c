/*
 * fuzz_gguf.c — libFuzzer harness for the GGUF reader and the import built
 * on it: the input is a .gguf file.  When qlm_gguf_open accepts it, every
 * key's values and every tensor's first and last bytes are read (so a
 * length or pointer the reader let through faults under ASan), then the
 * converter's three reads run on it: the hyper-parameters, the checkpoint
 * view (whose Q8_0/Q4_0/float rows are widened at both ends) and the
 * tokenizer.  Every refusal must be one non-empty line.
 */
#include "fuzz_common.h"
#include "gguf_import.h"

static void check_err(enum qlm_err rc, const struct qlm_error *err)
{
    if (rc != QLM_OK && (!err->msg[0] || strchr(err->msg, '\n')))
        abort();
}

static volatile uint64_t sink;

static void touch(const struct qlm_gguf *g)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct qlm_gguf_kv *kv = &g->kv[i];
        if (qlm_gguf_find(g, kv->key) == NULL)
            abort();
        for (uint64_t k = 0; k < kv->n; k++) {
            if (kv->elem == QLM_GGUF_STRING)
                sink += kv->strs[k].len ? (uint8_t)kv->strs[k].ptr[kv->strs[k].len - 1] : 0;
            else if (kv->elem == QLM_GGUF_F32 || kv->elem == QLM_GGUF_F64)
                sink += (uint64_t)(qlm_gguf_real_at(kv, k) != 0);
            else
                sink += (uint64_t)qlm_gguf_int_at(kv, k);
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct qlm_gguf_tensor *t = &g->tensors[i];
        if (qlm_gguf_tensor(g, t->name) != t)
            abort();
        if (t->size)
            sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
    }
}

static void widen(const struct qlm_st_model *m)
{
    float buf[64];
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct qlm_st_tensor *t = &m->tensors[i];
        if (t->dtype == QLM_ST_OTHER || t->numel == 0)
            continue;
        uint64_t n = t->numel < 64 ? t->numel : 64;
        if (t->dtype == QLM_ST_Q8_0 || t->dtype == QLM_ST_Q4_0)
            n = 32; /* whole blocks: numel is a multiple of 32 */
        qlm_st_to_f32(t, 0, n, buf);
        qlm_st_to_f32(t, t->numel - n, n, buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qlm_gguf *g;
    struct qlm_error err;
    enum qlm_err rc = qlm_gguf_open(&g, fuzz_write("model.gguf", data, size), &err);
    check_err(rc, &err);
    if (rc != QLM_OK)
        return 0;
    touch(g);
    struct qlm_model_params p;
    check_err(qlm_gguf_params(g, &p, &err), &err);
    struct qlm_st_model *m = NULL;
    rc = qlm_gguf_checkpoint(g, &m, &err);
    check_err(rc, &err);
    if (rc == QLM_OK) {
        widen(m);
        qlm_st_close(m);
    }
    struct qlm_tokdata t;
    rc = qlm_gguf_tokenizer(g, &t, &err);
    check_err(rc, &err);
    if (rc == QLM_OK) {
        for (uint32_t i = 0; i < t.n_tokens; i++)
            sink += t.tokens[i].len ? t.tokens[i].bytes[t.tokens[i].len - 1] : 0;
        qlm_tokdata_free(&t);
    }
    qlm_gguf_close(g);
    return 0;
}
