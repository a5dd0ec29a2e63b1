/*
 * fuzz_safetensors.c — libFuzzer harness for the safetensors reader: the input
 * is a model.safetensors file; when qlm_st_open accepts it, every tensor's
 * first and last elements are converted to f32 (so a tensor the reader let
 * through with a bad size or pointer faults under ASan) and released.
 * An input starting with '{' is also tried as model.safetensors.index.json
 * next to two fixed valid shards, a.safetensors (tensors x, y) and
 * b.safetensors (z), so the fuzzer explores the sharded path.
 */
#include "fuzz_common.h"
#include "qlm_format.h"

static void shard(const char *name, const char *json, size_t data_len)
{
    uint8_t buf[256];
    size_t jl = strlen(json);
    if (8 + jl + data_len > sizeof buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)jl >> (8 * i));
    memcpy(buf + 8, json, jl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + jl + i] = (uint8_t)(0x3f + i);
    fuzz_write(name, buf, 8 + jl + data_len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    shard("a.safetensors",
          "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
          "\"y\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[4,12]}}",
          12);
    shard("b.safetensors", "{\"z\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}",
          6);
    return 0;
}

static void try_open(const char *path);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_open(fuzz_write("model.safetensors", data, size));
    if (size > 0 && data[0] == '{')
        try_open(fuzz_write("model.safetensors.index.json", data, size));
    return 0;
}

static void try_open(const char *path)
{
    struct qlm_st_model *m;
    struct qlm_error err;
    if (qlm_st_open(&m, path, &err) != QLM_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* an error must be one non-empty line */
        return;
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
}
