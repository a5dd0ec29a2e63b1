/*
 * fuzz_safetensors.c — libFuzzer harness for the safetensors reader: the input
 * is a model.safetensors file; when qlm_st_open accepts it, every tensor's
 * first and last elements are converted to f32 (so a tensor the reader let
 * through with a bad size or pointer faults under ASan) and released.
 * The index of a sharded checkpoint has its own harness, fuzz_st_index.
 */
#include "fuzz_common.h"
#include "qlm_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("model.safetensors", data, size);
    struct qlm_st_model *m;
    struct qlm_error err;
    if (qlm_st_open(&m, path, &err) != QLM_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* an error must be one non-empty line */
        return 0;
    }
    float buf[8];
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct qlm_st_tensor *t = &m->tensors[i];
        if (qlm_st_find(m, t->name) == NULL)
            abort();
        if (t->dtype == QLM_ST_OTHER || t->numel == 0)
            continue;
        uint64_t n = t->numel < 8 ? t->numel : 8;
        qlm_st_to_f32(t, 0, n, buf);
        qlm_st_to_f32(t, t->numel - n, n, buf);
        qlm_st_release(m, t);
    }
    qlm_st_close(m);
    return 0;
}
