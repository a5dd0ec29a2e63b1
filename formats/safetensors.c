/* safetensors.c — read a Hugging Face checkpoint: one .safetensors file, or
 * model.safetensors.index.json and the shards its weight_map names.  Every
 * shard is mmapped read-only and its header validated as strictly as the
 * reference implementation: length bound, JSON object without duplicate
 * keys, known dtypes, overflow-checked sizes, and data offsets that tile the
 * data region exactly (no holes, overlaps or trailing bytes). */
#include "qlm_format.h"
#include "fmt_internal.h"
#include "qlm_gguf.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u * 1000u * 1000u)
#define ST_MAX_DIMS 8
/* Every shard stays mapped while it is read: far past the few hundred of the
 * largest checkpoints, and below Linux's default of 65530 mappings. */
#define ST_MAX_SHARDS 16384
#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

struct shard_map {
    const uint8_t *map;
    uint64_t size;
};

struct st_priv {
    struct shard_map *maps;
    size_t cap_tensors;
    size_t name_at;       /* index: where the file name starts in a shard path */
};

static const struct { const char *name; unsigned size; enum qlm_st_dtype dt; } st_types[] = {
    {"F64", 8, QLM_ST_OTHER},  {"I64", 8, QLM_ST_OTHER},      {"U64", 8, QLM_ST_OTHER},
    {"F32", 4, QLM_ST_F32},    {"I32", 4, QLM_ST_OTHER},      {"U32", 4, QLM_ST_OTHER},
    {"F16", 2, QLM_ST_F16},    {"BF16", 2, QLM_ST_BF16},      {"I16", 2, QLM_ST_OTHER},
    {"U16", 2, QLM_ST_OTHER},  {"I8", 1, QLM_ST_OTHER},       {"U8", 1, QLM_ST_OTHER},
    {"BOOL", 1, QLM_ST_OTHER}, {"F8_E4M3", 1, QLM_ST_OTHER},  {"F8_E5M2", 1, QLM_ST_OTHER},
};

void qlm_st_close(struct qlm_st_model *m)
{
    if (!m)
        return;
    struct st_priv *p = m->priv_;
    for (int i = 0; i < m->n_shards; i++) {
        if (p && p->maps)
            qlm_fmt_unmap(p->maps[i].map, p->maps[i].size);
        free(m->shard_paths[i]);
    }
    for (size_t i = 0; i < m->n_tensors; i++)
        free(m->tensors[i].name);
    if (p)
        free(p->maps);
    free(p);
    free(m->shard_paths);
    free(m->tensors);
    free(m);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const struct qlm_st_tensor *)a)->name,
                  ((const struct qlm_st_tensor *)b)->name);
}

static int cmp_name_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct qlm_st_tensor *)elem)->name);
}

const struct qlm_st_tensor *qlm_st_find(const struct qlm_st_model *m, const char *name)
{
    if (!m || !name || m->n_tensors == 0)
        return NULL;
    return bsearch(name, m->tensors, m->n_tensors, sizeof *m->tensors, cmp_name_key);
}

/* Parsed tensor before the tiling check: offsets relative to the data region. */
struct span {
    uint64_t begin, end;
    size_t idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* A JSON integer >= 0 as u64 (jansson holds json_int_t, 64-bit signed). */
static bool json_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* One tensor's header entry into t (name already set). */
static enum qlm_err parse_entry(const char *file, const char *name, json_t *v,
                                struct qlm_st_tensor *t, struct span *sp, struct qlm_error *err)
{
    if (!json_is_object(v))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s': entry is not an object",
                             file, name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s': missing or non-string dtype",
                             file, name);
    const char *dn = json_string_value(dt);
    unsigned esize = 0;
    for (size_t i = 0; i < sizeof st_types / sizeof st_types[0]; i++)
        if (strcmp(dn, st_types[i].name) == 0) {
            esize = st_types[i].size;
            t->dtype = st_types[i].dt;
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dn);
        }
    if (!esize)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", file,
                             name, dn);
    if (!json_is_array(shape))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s': missing or non-array shape",
                             file, name);
    size_t nd = json_array_size(shape);
    if (nd > ST_MAX_DIMS)
        return qlm_error_set(err, QLM_E_RANGE, "%s: tensor '%s': %zu dims (at most %d)", file,
                             name, nd, ST_MAX_DIMS);
    uint64_t numel = 1, bytes, b, e;
    t->n_dims = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        if (!json_u64(json_array_get(shape, i), &t->dims[i]))
            return qlm_error_set(err, QLM_E_FORMAT,
                                 "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                                 file, name, i);
        if (!qlm_fmt_mul(numel, t->dims[i], &numel))
            return qlm_error_set(err, QLM_E_RANGE, "%s: tensor '%s': shape overflows", file,
                                 name);
    }
    if (!qlm_fmt_mul(numel, esize, &bytes))
        return qlm_error_set(err, QLM_E_RANGE, "%s: tensor '%s': byte size overflows", file,
                             name);
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !json_u64(json_array_get(offs, 0), &b) || !json_u64(json_array_get(offs, 1), &e))
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: tensor '%s': data_offsets is not [begin, end]", file, name);
    if (b > e)
        return qlm_error_set(err, QLM_E_RANGE,
                             "%s: tensor '%s': data_offsets [%llu, %llu] reversed", file, name,
                             (unsigned long long)b, (unsigned long long)e);
    if (e - b != bytes)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: tensor '%s': %llu bytes in data_offsets, %s x shape needs "
                             "%llu", file, name, (unsigned long long)(e - b), dn,
                             (unsigned long long)bytes);
    t->numel = numel;
    t->size = bytes;
    sp->begin = b;
    sp->end = e;
    return QLM_OK;
}

/* Map one shard and append its tensors to m (shard index si). */
static enum qlm_err open_shard(struct qlm_st_model *m, int si, struct qlm_error *err)
{
    struct st_priv *p = m->priv_;
    const char *file = m->shard_paths[si];
    const uint8_t *base;
    uint64_t fsize;
    enum qlm_err rc = qlm_fmt_map(file, 8, &base, &fsize, err);
    if (rc != QLM_OK)
        return rc;
    if (!base)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: truncated: %llu bytes, no header length",
                             file, (unsigned long long)fsize);
    p->maps[si] = (struct shard_map){base, fsize};
    uint64_t hlen = qlm_fmt_rd64(base);
    if (hlen > ST_MAX_HEADER)
        return qlm_error_set(err, QLM_E_RANGE, "%s: header length %llu exceeds 100 MB", file,
                             (unsigned long long)hlen);
    if (hlen > fsize - 8)
        return qlm_error_set(err, QLM_E_RANGE,
                             "%s: header length %llu runs past the end (%llu bytes)", file,
                             (unsigned long long)hlen, (unsigned long long)fsize);
    json_error_t je;
    json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: header JSON: %s (at byte %d)", file,
                             je.text, je.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return qlm_error_set(err, QLM_E_FORMAT, "%s: header JSON is not an object", file);
    }
    size_t n = json_object_size(root), first = m->n_tensors;
    struct span *spans = calloc(n ? n : 1, sizeof *spans);
    /* grown geometrically (linear in the tensors of all shards together),
     * and allocated even for a shard of no tensors */
    bool grown = first + n < p->cap_tensors;
    if (!grown) {
        size_t cap = p->cap_tensors > n ? 2 * p->cap_tensors : first + n + 16;
        struct qlm_st_tensor *nt = realloc(m->tensors, cap * sizeof *nt);
        if (nt) {
            m->tensors = nt;
            p->cap_tensors = cap;
            grown = true;
        }
    }
    if (!spans || !grown) {
        free(spans);
        json_decref(root);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", file);
    }
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v)) {
                rc = qlm_error_set(err, QLM_E_FORMAT, "%s: __metadata__ is not an object", file);
                break;
            }
            json_object_foreach(v, mk, mv) if (!json_is_string(mv)) {
                rc = qlm_error_set(err, QLM_E_FORMAT, "%s: __metadata__ '%s' is not a string",
                                   file, mk);
                break;
            }
            if (rc)
                break;
            continue;
        }
        struct qlm_st_tensor *t = &m->tensors[first + k];
        memset(t, 0, sizeof *t);
        t->shard = si;
        if (!(t->name = strdup(key))) {
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", file);
            break;
        }
        m->n_tensors = first + k + 1; /* owned from here on, freed by close */
        if ((rc = parse_entry(file, key, v, t, &spans[k], err)) != QLM_OK)
            break;
        spans[k].idx = first + k;
        k++;
    }
    if (rc == QLM_OK) {
        /* offsets must tile [0, data_len) exactly */
        uint64_t data_len = fsize - 8 - hlen, pos = 0;
        const uint8_t *data = base + 8 + hlen;
        qsort(spans, k, sizeof *spans, cmp_span);
        for (size_t i = 0; i < k && rc == QLM_OK; i++) {
            const char *tn = m->tensors[spans[i].idx].name;
            if (spans[i].begin < pos)
                rc = qlm_error_set(err, QLM_E_RANGE,
                                   "%s: tensor '%s' overlaps the previous tensor (begins at "
                                   "%llu, previous ends at %llu)", file, tn,
                                   (unsigned long long)spans[i].begin, (unsigned long long)pos);
            else if (spans[i].begin > pos)
                rc = qlm_error_set(err, QLM_E_RANGE,
                                   "%s: hole of %llu bytes before tensor '%s'", file,
                                   (unsigned long long)(spans[i].begin - pos), tn);
            else if (spans[i].end > data_len)
                rc = qlm_error_set(err, QLM_E_RANGE,
                                   "%s: tensor '%s' ends at %llu, past the data end %llu", file,
                                   tn, (unsigned long long)spans[i].end,
                                   (unsigned long long)data_len);
            m->tensors[spans[i].idx].data = data + spans[i].begin;
            pos = spans[i].end;
        }
        if (rc == QLM_OK && pos != data_len)
            rc = qlm_error_set(err, QLM_E_RANGE,
                               "%s: %llu trailing bytes after the last tensor", file,
                               (unsigned long long)(data_len - pos));
    }
    free(spans);
    json_decref(root);
    return rc;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The shard list of an index file: the distinct file names of its
 * weight_map in order of first appearance, each a plain name in the index's
 * directory (shard i's name is m->shard_paths[i] + p->name_at).  Linear in
 * the entries: names already seen are found in a hash table. */
static enum qlm_err read_index(struct qlm_st_model *m, const char *index, json_t **wm_out,
                               struct qlm_error *err)
{
    struct st_priv *p = m->priv_;
    char *text;
    size_t len;
    QLM_TRY(qlm_input_read(index, ST_MAX_HEADER, &text, &len, err));
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: %s (line %d)", index, je.text, je.line);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(root) || !json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return qlm_error_set(err, QLM_E_FORMAT, "%s: no \"weight_map\" object", index);
    }
    const char *slash = strrchr(index, '/');
    char *dir = slash ? strndup(index, (size_t)(slash - index)) : strdup(".");
    json_t *seen = json_object();
    m->shard_paths = calloc(json_object_size(wm), sizeof *m->shard_paths);
    enum qlm_err rc = QLM_OK;
    if (!dir || !seen || !m->shard_paths)
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", index);
    else
        p->name_at = strlen(dir) + 1;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (rc)
            break;
        const char *fn = json_string_value(v);
        if (!fn || !*fn || strchr(fn, '/') || strcmp(fn, "..") == 0 || strcmp(fn, ".") == 0) {
            rc = qlm_error_set(err, QLM_E_FORMAT,
                               "%s: weight_map['%s'] is not a shard file name", index, key);
            break;
        }
        if (json_object_get(seen, fn))
            continue;
        if (m->n_shards == ST_MAX_SHARDS) {
            rc = qlm_error_set(err, QLM_E_RANGE,
                               "%s: weight_map names more than %d shard files", index,
                               ST_MAX_SHARDS);
            break;
        }
        char *path = join(dir, fn);
        if (!path || json_object_set_new(seen, fn, json_true()) != 0) {
            free(path);
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", index);
            break;
        }
        m->shard_paths[m->n_shards++] = path;
    }
    free(dir);
    json_decref(seen);
    if (rc) {
        json_decref(root);
        return rc;
    }
    *wm_out = json_incref(wm);
    json_decref(root);
    return QLM_OK;
}

enum qlm_err qlm_st_open(struct qlm_st_model **out, const char *path, struct qlm_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return qlm_error_set(err, errno == ENOENT ? QLM_E_NOTFOUND : QLM_E_IO, "%s: %s", path,
                             strerror(errno));
    struct qlm_st_model *m = calloc(1, sizeof *m);
    struct st_priv *p = calloc(1, sizeof *p);
    if (!m || !p) {
        free(m);
        free(p);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    }
    m->priv_ = p;
    enum qlm_err rc = QLM_OK;
    char *index = NULL;
    json_t *wm = NULL;
    if (S_ISDIR(st.st_mode)) {
        index = join(path, INDEX_NAME);
        char *single = join(path, SINGLE_NAME);
        if (!index || !single) {
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
        } else if (access(index, F_OK) != 0) {
            free(index);
            index = NULL;
            if (access(single, F_OK) != 0)
                rc = qlm_error_set(err, QLM_E_NOTFOUND, "%s: no %s or %s", path, SINGLE_NAME,
                                   INDEX_NAME);
        }
        if (rc == QLM_OK && !index) {
            m->shard_paths = malloc(sizeof *m->shard_paths);
            if (!m->shard_paths)
                rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
            else {
                m->shard_paths[0] = single;
                m->n_shards = 1;
                single = NULL;
            }
        }
        free(single);
    } else if (ends_with(path, ".json")) {
        if (!(index = strdup(path)))
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    } else {
        m->shard_paths = malloc(sizeof *m->shard_paths);
        if (!m->shard_paths || !(m->shard_paths[0] = strdup(path)))
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
        else
            m->n_shards = 1;
    }
    if (rc == QLM_OK && index)
        rc = read_index(m, index, &wm, err);
    if (rc == QLM_OK && !(p->maps = calloc((size_t)m->n_shards, sizeof *p->maps)))
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    for (int i = 0; rc == QLM_OK && i < m->n_shards; i++)
        rc = open_shard(m, i, err);
    if (rc == QLM_OK) {
        qsort(m->tensors, m->n_tensors, sizeof *m->tensors, cmp_tensor_name);
        for (size_t i = 1; i < m->n_tensors && rc == QLM_OK; i++)
            if (strcmp(m->tensors[i - 1].name, m->tensors[i].name) == 0)
                rc = qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' also in %s",
                                   m->shard_paths[m->tensors[i].shard], m->tensors[i].name,
                                   m->shard_paths[m->tensors[i - 1].shard]);
    }
    /* the index and the shards must agree on where every tensor lives */
    if (rc == QLM_OK && wm) {
        const char *key;
        json_t *v;
        json_object_foreach(wm, key, v) {
            const struct qlm_st_tensor *t = qlm_st_find(m, key);
            if (!t || strcmp(m->shard_paths[t->shard] + p->name_at, json_string_value(v)) != 0) {
                rc = qlm_error_set(err, QLM_E_FORMAT, "%s: weight_map tensor '%s' is not in %s",
                                   index, key, json_string_value(v));
                break;
            }
        }
        if (rc == QLM_OK && m->n_tensors != json_object_size(wm))
            for (size_t i = 0; i < m->n_tensors; i++)
                if (!json_object_get(wm, m->tensors[i].name)) {
                    rc = qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' is not in %s",
                                       m->shard_paths[m->tensors[i].shard], m->tensors[i].name,
                                       index);
                    break;
                }
    }
    json_decref(wm);
    free(index);
    if (rc != QLM_OK) {
        qlm_st_close(m);
        return rc;
    }
    *out = m;
    return QLM_OK;
}

/* Little-endian hosts only (x86-64, aarch64), like the runtime. */
void qlm_st_to_f32(const struct qlm_st_tensor *t, uint64_t start, uint64_t n, float *out)
{
    switch (t->dtype) {
    case QLM_ST_F32: {
        const uint8_t *p = (const uint8_t *)t->data + start * 4;
        memcpy(out, p, n * 4);
        break;
    }
    case QLM_ST_BF16: {
        const uint8_t *p = (const uint8_t *)t->data + start * 2;
        for (uint64_t i = 0; i < n; i++) { /* memcpy: the data may be unaligned */
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(&out[i], &u, 4);
        }
        break;
    }
    case QLM_ST_F16: {
        const uint8_t *p = (const uint8_t *)t->data + start * 2;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = qlm_f16_to_f32(h);
        }
        break;
    }
    case QLM_ST_Q8_0:
        qlm_ggml_q8_0_to_f32((const uint8_t *)t->data + start / QLM_GGML_Q_BLOCK *
                                                            QLM_GGML_Q8_0_BYTES, n, out);
        break;
    case QLM_ST_Q4_0:
        qlm_ggml_q4_0_to_f32((const uint8_t *)t->data + start / QLM_GGML_Q_BLOCK *
                                                            QLM_GGML_Q4_0_BYTES, n, out);
        break;
    default:
        memset(out, 0, n * sizeof *out); /* not convertible: the converter refuses these */
        break;
    }
}

void qlm_st_release(const struct qlm_st_model *m, const struct qlm_st_tensor *t)
{
    (void)m;
    if (!t || t->size == 0)
        return;
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t b = (uintptr_t)t->data, e = b + (uintptr_t)t->size;
    b = (b + page - 1) & ~(page - 1); /* whole pages only: neighbours keep theirs */
    e &= ~(page - 1);
    if (e > b)
        madvise((void *)b, e - b, MADV_DONTNEED);
}
