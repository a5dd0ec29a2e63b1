/*
 * fuzz_st_index.c — libFuzzer harness for the safetensors index importer:
 * the input is model.safetensors.index.json, next to three fixed valid
 * shards, a.safetensors (tensors x, y), b.safetensors (z) and ab.safetensors
 * (w), and qlm_st_open reads the folder.  An accepted index must name every
 * tensor with exactly the shard that holds it (the weight_map is parsed here
 * again, by jansson, as the oracle), and every tensor's first and last
 * elements must convert.
 */
#include <jansson.h>

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
    shard("ab.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}",
          2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *index = fuzz_write("model.safetensors.index.json", data, size);
    char dir[512];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(index, '/') - index), index);
    struct qlm_st_model *m;
    struct qlm_error err;
    if (qlm_st_open(&m, dir, &err) != QLM_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* an error must be one non-empty line */
        return 0;
    }
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    json_t *wm = json_object_get(root, "weight_map");
    if (!wm || json_object_size(wm) != m->n_tensors)
        abort(); /* accepted: the index lists exactly the shards' tensors */
    float buf[4];
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct qlm_st_tensor *t = &m->tensors[i];
        const char *in = json_string_value(json_object_get(wm, t->name));
        const char *path = m->shard_paths[t->shard], *base = strrchr(path, '/');
        if (!in || strcmp(base ? base + 1 : path, in) != 0)
            abort(); /* ... each in the shard the index names, exactly */
        if (t->dtype == QLM_ST_OTHER || t->numel == 0)
            continue;
        uint64_t n = t->numel < 4 ? t->numel : 4;
        qlm_st_to_f32(t, 0, n, buf);
        qlm_st_to_f32(t, t->numel - n, n, buf);
    }
    json_decref(root);
    qlm_st_close(m);
    return 0;
}
