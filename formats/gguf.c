/* gguf.c — read a GGUF file (qlm_gguf.h): mmap it, validate every length,
 * count, type and offset before anything is used, and offer the keys, the
 * tensors and a checkpoint view of them to the converter. */
#include "qlm_gguf.h"
#include "fmt_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_KV ((uint64_t)1 << 20)
#define MAX_TENSORS ((uint64_t)1 << 20)
#define MAX_KEY 65535u
#define MIN_KV_BYTES 14      /* u64 key length, 1 key byte, u32 type, 1 value byte */
#define MIN_INFO_BYTES 25    /* u64 name length, 1 name byte, u32 n_dims, u32 type, u64 offset */

/* ---- type tables ---------------------------------------------------------- */

static const struct { const char *name; unsigned size; } vtypes[QLM_GGUF_VTYPE_COUNT] = {
    [QLM_GGUF_U8] = {"u8", 1},         [QLM_GGUF_I8] = {"i8", 1},
    [QLM_GGUF_U16] = {"u16", 2},       [QLM_GGUF_I16] = {"i16", 2},
    [QLM_GGUF_U32] = {"u32", 4},       [QLM_GGUF_I32] = {"i32", 4},
    [QLM_GGUF_F32] = {"f32", 4},       [QLM_GGUF_BOOL] = {"bool", 1},
    [QLM_GGUF_STRING] = {"string", 0}, [QLM_GGUF_ARRAY] = {"array", 0},
    [QLM_GGUF_U64] = {"u64", 8},       [QLM_GGUF_I64] = {"i64", 8},
    [QLM_GGUF_F64] = {"f64", 8},
};

/* ggml's types (ggml.h, gguf-py's GGML_QUANT_SIZES): elements and bytes per
 * block.  Ids without a row (4, 5, 31..33, 36..38) were removed from ggml. */
static const struct { uint32_t id; const char *name; unsigned elems, bytes; } ggml_types[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},    {40, "NVFP4", 64, 36},
    {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

static int ggml_index(uint32_t type)
{
    for (size_t i = 0; i < N_GGML_TYPES; i++)
        if (ggml_types[i].id == type)
            return (int)i;
    return -1;
}

const char *qlm_ggml_type_name(uint32_t type)
{
    int i = ggml_index(type);
    return i < 0 ? NULL : ggml_types[i].name;
}

unsigned qlm_ggml_block_elems(uint32_t type)
{
    int i = ggml_index(type);
    return i < 0 ? 0 : ggml_types[i].elems;
}

unsigned qlm_ggml_block_bytes(uint32_t type)
{
    int i = ggml_index(type);
    return i < 0 ? 0 : ggml_types[i].bytes;
}

const char *qlm_gguf_vtype_name(enum qlm_gguf_vtype t)
{
    return (unsigned)t < QLM_GGUF_VTYPE_COUNT ? vtypes[t].name : "?";
}

static bool vtype_is_int(enum qlm_gguf_vtype t)
{
    return t <= QLM_GGUF_I32 || t == QLM_GGUF_U64 || t == QLM_GGUF_I64;
}

/* ---- open ------------------------------------------------------------------ */

/* Keys and names are copied into one arena; string values stay in the
 * mapping and are listed in one table.  While parsing, pointers are kept as
 * offsets into these growable buffers and fixed up at the end. */
struct gguf_priv {
    char *path;
    char *names;
    size_t names_len, names_cap;
    struct qlm_gguf_str *strs;
    size_t n_strs, strs_cap;
    size_t *key_off, *name_off, *strs_first; /* per kv / tensor, during parsing */
    const struct qlm_gguf_kv **kv_by_key;
    const struct qlm_gguf_tensor **t_by_name;
};

void qlm_gguf_close(struct qlm_gguf *g)
{
    if (!g)
        return;
    struct gguf_priv *p = g->priv_;
    qlm_fmt_unmap(g->map, g->size);
    if (p) {
        free(p->path);
        free(p->names);
        free(p->strs);
        free(p->key_off);
        free(p->name_off);
        free(p->strs_first);
        free(p->kv_by_key);
        free(p->t_by_name);
        free(p);
    }
    free(g->kv);
    free(g->tensors);
    free(g);
}

/* The parser's state: the file, the cursor over all of it, the error. */
struct parse {
    struct qlm_gguf *g;
    struct gguf_priv *p;
    struct qlm_fmt_cur c;
    struct qlm_error *err;
};

#define NOMEM(ps) qlm_error_set((ps)->err, QLM_E_NOMEM, "%s: out of memory", (ps)->g->path)

static enum qlm_err truncated(struct parse *ps, const char *where, uint64_t i)
{
    return qlm_error_set(ps->err, QLM_E_FORMAT,
                         "%s: truncated in %s %" PRIu64 " (file of %" PRIu64 " bytes)",
                         ps->g->path, where, i, ps->g->size);
}

/* Append len bytes and a NUL to the names arena; *off gets their place. */
static bool arena_add(struct gguf_priv *p, const uint8_t *s, size_t len, size_t *off)
{
    if (p->names_cap - p->names_len < len + 1) {
        size_t cap = p->names_cap ? p->names_cap : 4096;
        while (cap - p->names_len < len + 1)
            cap *= 2;
        char *n = realloc(p->names, cap);
        if (!n)
            return false;
        p->names = n;
        p->names_cap = cap;
    }
    *off = p->names_len;
    memcpy(p->names + p->names_len, s, len);
    p->names[p->names_len + len] = '\0';
    p->names_len += len + 1;
    return true;
}

/* One GGUF string at the cursor (its length checked against what is left). */
static bool get_str(struct parse *ps, struct qlm_gguf_str *s)
{
    uint64_t len = qlm_fmt_get64(&ps->c);
    const uint8_t *b = ps->c.ok && len <= ps->c.len - ps->c.pos ? qlm_fmt_take(&ps->c, len) : NULL;
    if (!b) {
        ps->c.ok = false;
        return false;
    }
    s->ptr = (const char *)b;
    s->len = len;
    return true;
}

static bool push_str(struct gguf_priv *p, struct qlm_gguf_str s)
{
    if (p->n_strs == p->strs_cap) {
        size_t cap = p->strs_cap ? p->strs_cap * 2 : 256;
        struct qlm_gguf_str *n = realloc(p->strs, cap * sizeof *n);
        if (!n)
            return false;
        p->strs = n;
        p->strs_cap = cap;
    }
    p->strs[p->n_strs++] = s;
    return true;
}

/* The value of kv i (type and count known) at the cursor. */
static enum qlm_err parse_value(struct parse *ps, uint64_t i, struct qlm_gguf_kv *kv,
                                const char *key)
{
    enum qlm_gguf_vtype t = kv->elem;
    uint64_t left = ps->c.len - ps->c.pos;
    kv->data = ps->c.p + ps->c.pos;
    if (t == QLM_GGUF_STRING) {
        if (kv->n > left / 8)
            return truncated(ps, "key/value", i);
        ps->p->strs_first[i] = ps->p->n_strs;
        for (uint64_t k = 0; k < kv->n; k++) {
            struct qlm_gguf_str s;
            if (!get_str(ps, &s))
                return truncated(ps, "key/value", i);
            if (!push_str(ps->p, s))
                return NOMEM(ps);
        }
        return QLM_OK;
    }
    unsigned size = vtypes[t].size;
    if (kv->n > left / size)
        return truncated(ps, "key/value", i);
    const uint8_t *b = qlm_fmt_take(&ps->c, (size_t)(kv->n * size));
    if (t == QLM_GGUF_BOOL)
        for (uint64_t k = 0; k < kv->n; k++)
            if (b[k] > 1)
                return qlm_error_set(ps->err, QLM_E_FORMAT,
                                     "%s: key '%s': bool value %u (0 or 1 expected)",
                                     ps->g->path, key, b[k]);
    return QLM_OK;
}

static bool key_ok(const struct qlm_gguf_str *s)
{
    if (s->len == 0 || s->len > MAX_KEY)
        return false;
    for (uint64_t i = 0; i < s->len; i++)
        if ((unsigned char)s->ptr[i] < 0x20 || (unsigned char)s->ptr[i] > 0x7e)
            return false;
    return true;
}

static enum qlm_err parse_kvs(struct parse *ps)
{
    struct qlm_gguf *g = ps->g;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        struct qlm_gguf_kv *kv = &g->kv[i];
        struct qlm_gguf_str k;
        if (!get_str(ps, &k))
            return truncated(ps, "key/value", i);
        if (!key_ok(&k))
            return qlm_error_set(ps->err, QLM_E_FORMAT,
                                 "%s: key %" PRIu64 " is not 1 to %u printable ASCII bytes",
                                 g->path, i, MAX_KEY);
        if (!arena_add(ps->p, (const uint8_t *)k.ptr, (size_t)k.len, &ps->p->key_off[i]))
            return NOMEM(ps);
        const char *key = ps->p->names + ps->p->key_off[i]; /* valid until the next add */
        uint32_t t = qlm_fmt_get32(&ps->c);
        kv->type = kv->elem = (enum qlm_gguf_vtype)t;
        kv->n = 1;
        if (ps->c.ok && t == QLM_GGUF_ARRAY) {
            uint32_t e = qlm_fmt_get32(&ps->c);
            kv->elem = (enum qlm_gguf_vtype)e;
            kv->n = qlm_fmt_get64(&ps->c);
            if (ps->c.ok && e == QLM_GGUF_ARRAY)
                return qlm_error_set(ps->err, QLM_E_FORMAT,
                                     "%s: key '%s': arrays of arrays are not supported",
                                     g->path, key);
            t = e;
        }
        if (!ps->c.ok)
            return truncated(ps, "key/value", i);
        if (t >= QLM_GGUF_VTYPE_COUNT)
            return qlm_error_set(ps->err, QLM_E_FORMAT, "%s: key '%s' has unknown value type %u",
                                 g->path, key, t);
        QLM_TRY(parse_value(ps, i, kv, key));
    }
    return QLM_OK;
}

static bool name_ok(const struct qlm_gguf_str *s)
{
    if (s->len == 0 || s->len > QLM_GGUF_MAX_NAME)
        return false;
    for (uint64_t i = 0; i < s->len; i++)
        if ((unsigned char)s->ptr[i] < 0x20 || (unsigned char)s->ptr[i] == 0x7f)
            return false;
    return true;
}

static enum qlm_err parse_infos(struct parse *ps)
{
    struct qlm_gguf *g = ps->g;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct qlm_gguf_tensor *t = &g->tensors[i];
        struct qlm_gguf_str s;
        if (!get_str(ps, &s))
            return truncated(ps, "tensor info", i);
        if (!name_ok(&s))
            return qlm_error_set(ps->err, QLM_E_FORMAT,
                                 "%s: tensor %" PRIu64 ": name is not 1 to %d bytes without "
                                 "control characters", g->path, i, QLM_GGUF_MAX_NAME);
        if (!arena_add(ps->p, (const uint8_t *)s.ptr, (size_t)s.len, &ps->p->name_off[i]))
            return NOMEM(ps);
        const char *name = ps->p->names + ps->p->name_off[i];
        t->n_dims = qlm_fmt_get32(&ps->c);
        if (ps->c.ok && t->n_dims > QLM_GGUF_MAX_DIMS)
            return qlm_error_set(ps->err, QLM_E_FORMAT,
                                 "%s: tensor '%s' has %u dimensions (at most %d)", g->path, name,
                                 t->n_dims, QLM_GGUF_MAX_DIMS);
        uint64_t numel = 1;
        bool fits = true;
        for (unsigned d = 0; d < QLM_GGUF_MAX_DIMS; d++) {
            t->ne[d] = d < t->n_dims ? qlm_fmt_get64(&ps->c) : 1;
            fits = fits && qlm_fmt_mul(numel, t->ne[d], &numel) && numel <= INT64_MAX;
        }
        t->type = qlm_fmt_get32(&ps->c);
        t->offset = qlm_fmt_get64(&ps->c);
        if (!ps->c.ok)
            return truncated(ps, "tensor info", i);
        if (!fits)
            return qlm_error_set(ps->err, QLM_E_RANGE,
                                 "%s: tensor '%s': %" PRIu64 " x %" PRIu64 " x %" PRIu64
                                 " x %" PRIu64 " elements overflow", g->path, name, t->ne[0],
                                 t->ne[1], t->ne[2], t->ne[3]);
        int ti = ggml_index(t->type);
        if (ti < 0)
            return qlm_error_set(ps->err, QLM_E_FORMAT, "%s: tensor '%s' has unknown ggml type %u",
                                 g->path, name, t->type);
        if (t->ne[0] % ggml_types[ti].elems != 0)
            return qlm_error_set(ps->err, QLM_E_FORMAT,
                                 "%s: tensor '%s' (%s) has rows of %" PRIu64 " elements, not a "
                                 "multiple of its block of %u", g->path, name,
                                 ggml_types[ti].name, t->ne[0], ggml_types[ti].elems);
        if (!qlm_fmt_mul(numel / ggml_types[ti].elems, ggml_types[ti].bytes, &t->size) ||
            t->size > INT64_MAX)
            return qlm_error_set(ps->err, QLM_E_RANGE, "%s: tensor '%s': byte size overflows",
                                 g->path, name);
        t->numel = numel;
    }
    return QLM_OK;
}

/* general.alignment: a u32 power of two (as ggml requires), else 32. */
static enum qlm_err read_alignment(struct parse *ps)
{
    struct qlm_gguf *g = ps->g;
    g->alignment = QLM_GGUF_DEFAULT_ALIGN;
    const struct qlm_gguf_kv *kv = qlm_gguf_find(g, "general.alignment");
    if (!kv)
        return QLM_OK;
    if (kv->type != QLM_GGUF_U32)
        return qlm_error_set(ps->err, QLM_E_FORMAT,
                             "%s: key 'general.alignment' is %s, not u32", g->path,
                             qlm_gguf_vtype_name(kv->type));
    uint32_t a = qlm_fmt_rd32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0)
        return qlm_error_set(ps->err, QLM_E_FORMAT,
                             "%s: general.alignment %u is not a power of two", g->path, a);
    g->alignment = a;
    return QLM_OK;
}

/* Tensors in info order, each at the padded end of the one before: what
 * ggml writes and requires.  Then nothing but padding may follow. */
static enum qlm_err check_layout(struct parse *ps)
{
    struct qlm_gguf *g = ps->g;
    const uint64_t a = g->alignment;
    if (!qlm_fmt_align(ps->c.pos, a, &g->data_offset) ||
        (g->n_tensors > 0 && g->data_offset > g->size))
        return qlm_error_set(ps->err, QLM_E_FORMAT,
                             "%s: truncated before the data section (file of %" PRIu64
                             " bytes)", g->path, g->size);
    if (g->n_tensors == 0)
        g->data_offset = ps->c.pos;
    const uint64_t data_len = g->size - g->data_offset;
    uint64_t expect = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct qlm_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (t->offset % a != 0)
            return qlm_error_set(ps->err, QLM_E_FORMAT,
                                 "%s: tensor '%s': offset %" PRIu64 " is not aligned to %u",
                                 g->path, t->name, t->offset, g->alignment);
        if (t->offset < expect)
            return qlm_error_set(ps->err, QLM_E_RANGE,
                                 "%s: tensor '%s' at offset %" PRIu64 " overlaps the tensor "
                                 "before it (which ends at %" PRIu64 ")", g->path, t->name,
                                 t->offset, expect);
        if (t->offset > expect)
            return qlm_error_set(ps->err, QLM_E_RANGE,
                                 "%s: hole of %" PRIu64 " bytes before tensor '%s' (tensors "
                                 "follow each other, padded to %u)", g->path,
                                 t->offset - expect, t->name, g->alignment);
        if (!qlm_fmt_add(t->offset, t->size, &end) || end > data_len)
            return qlm_error_set(ps->err, QLM_E_RANGE,
                                 "%s: tensor '%s' ends at %" PRIu64 ", past the end of the "
                                 "file (%" PRIu64 " bytes)", g->path, t->name,
                                 g->data_offset + t->offset + t->size, g->size);
        t->data = g->map + g->data_offset + t->offset;
        if (!qlm_fmt_align(end, a, &expect))
            expect = UINT64_MAX;
    }
    if (data_len > expect && (g->n_tensors > 0 || data_len >= a))
        return qlm_error_set(ps->err, QLM_E_FORMAT,
                             "%s: %" PRIu64 " trailing bytes after the last tensor", g->path,
                             data_len - expect);
    return QLM_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const struct qlm_gguf_kv *const *)a)->key,
                  (*(const struct qlm_gguf_kv *const *)b)->key);
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(const struct qlm_gguf_tensor *const *)a)->name,
                  (*(const struct qlm_gguf_tensor *const *)b)->name);
}

/* Pointers from the parse offsets, the lookup tables, and the uniqueness of
 * keys and names. */
static enum qlm_err index_all(struct parse *ps)
{
    struct qlm_gguf *g = ps->g;
    struct gguf_priv *p = ps->p;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        g->kv[i].key = p->names + p->key_off[i];
        g->kv[i].strs = g->kv[i].elem == QLM_GGUF_STRING ? p->strs + p->strs_first[i] : NULL;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        g->tensors[i].name = p->names + p->name_off[i];
    p->kv_by_key = malloc((size_t)(g->n_kv + 1) * sizeof *p->kv_by_key);
    p->t_by_name = malloc((size_t)(g->n_tensors + 1) * sizeof *p->t_by_name);
    if (!p->kv_by_key || !p->t_by_name)
        return NOMEM(ps);
    for (uint64_t i = 0; i < g->n_kv; i++)
        p->kv_by_key[i] = &g->kv[i];
    for (uint64_t i = 0; i < g->n_tensors; i++)
        p->t_by_name[i] = &g->tensors[i];
    qsort(p->kv_by_key, (size_t)g->n_kv, sizeof *p->kv_by_key, cmp_kv);
    qsort(p->t_by_name, (size_t)g->n_tensors, sizeof *p->t_by_name, cmp_tensor);
    for (uint64_t i = 1; i < g->n_kv; i++)
        if (strcmp(p->kv_by_key[i - 1]->key, p->kv_by_key[i]->key) == 0)
            return qlm_error_set(ps->err, QLM_E_FORMAT, "%s: key '%s' appears twice", g->path,
                                 p->kv_by_key[i]->key);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(p->t_by_name[i - 1]->name, p->t_by_name[i]->name) == 0)
            return qlm_error_set(ps->err, QLM_E_FORMAT, "%s: tensor '%s' appears twice", g->path,
                                 p->t_by_name[i]->name);
    return QLM_OK;
}

static enum qlm_err parse_header(struct parse *ps)
{
    struct qlm_gguf *g = ps->g;
    const uint8_t *m = qlm_fmt_take(&ps->c, 4);
    if (!m || memcmp(m, QLM_GGUF_MAGIC, 4) != 0)
        return qlm_error_set(ps->err, QLM_E_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)",
                             g->path);
    g->version = qlm_fmt_get32(&ps->c);
    g->n_tensors = qlm_fmt_get64(&ps->c);
    g->n_kv = qlm_fmt_get64(&ps->c); /* the file has the 24 header bytes (qlm_gguf_open) */
    if (g->version != 0 && (g->version & 0xffff) == 0)
        return qlm_error_set(ps->err, QLM_E_VERSION,
                             "%s: GGUF version 0x%08x: a big-endian file (not supported)",
                             g->path, g->version);
    if (g->version < 2 || g->version > 3)
        return qlm_error_set(ps->err, QLM_E_VERSION,
                             "%s: GGUF version %u is not supported (2 and 3 are)", g->path,
                             g->version);
    uint64_t left = g->size - ps->c.pos;
    if (g->n_kv > MAX_KV || g->n_kv > left / MIN_KV_BYTES)
        return qlm_error_set(ps->err, QLM_E_RANGE,
                             "%s: %" PRIu64 " keys: more than the file can hold (or %" PRIu64
                             ")",
                             g->path, g->n_kv, MAX_KV);
    if (g->n_tensors > MAX_TENSORS || g->n_tensors > left / MIN_INFO_BYTES)
        return qlm_error_set(ps->err, QLM_E_RANGE,
                             "%s: %" PRIu64 " tensors: more than the file can hold (or %" PRIu64
                             ")",
                             g->path, g->n_tensors, MAX_TENSORS);
    struct gguf_priv *p = ps->p;
    g->kv = calloc((size_t)g->n_kv + 1, sizeof *g->kv);
    g->tensors = calloc((size_t)g->n_tensors + 1, sizeof *g->tensors);
    p->key_off = calloc((size_t)g->n_kv + 1, sizeof *p->key_off);
    p->strs_first = calloc((size_t)g->n_kv + 1, sizeof *p->strs_first);
    p->name_off = calloc((size_t)g->n_tensors + 1, sizeof *p->name_off);
    if (!g->kv || !g->tensors || !p->key_off || !p->strs_first || !p->name_off)
        return NOMEM(ps);
    return QLM_OK;
}

enum qlm_err qlm_gguf_open(struct qlm_gguf **out, const char *path, struct qlm_error *err)
{
    *out = NULL;
    struct qlm_gguf *g = calloc(1, sizeof *g);
    struct gguf_priv *p = calloc(1, sizeof *p);
    if (!g || !p || !(p->path = strdup(path))) {
        free(g);
        free(p);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    }
    g->priv_ = p;
    g->path = p->path;
    enum qlm_err rc = qlm_fmt_map(path, 24, &g->map, &g->size, err);
    if (rc == QLM_OK && !g->map)
        rc = qlm_error_set(err, QLM_E_FORMAT, "%s: truncated: %" PRIu64 " bytes, not a GGUF file",
                           path, g->size);
    struct parse ps = {g, p, {g->map, (size_t)g->size, 0, true}, err};
    if (rc == QLM_OK)
        rc = parse_header(&ps);
    if (rc == QLM_OK)
        rc = parse_kvs(&ps);
    if (rc == QLM_OK)
        rc = parse_infos(&ps);
    if (rc == QLM_OK)
        rc = index_all(&ps);
    if (rc == QLM_OK)
        rc = read_alignment(&ps);
    if (rc == QLM_OK)
        rc = check_layout(&ps);
    if (rc != QLM_OK) {
        qlm_gguf_close(g);
        return rc;
    }
    free(p->key_off);
    free(p->name_off);
    free(p->strs_first);
    p->key_off = p->name_off = p->strs_first = NULL;
    *out = g;
    return QLM_OK;
}

bool qlm_gguf_named(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcmp(path + n - 5, ".gguf") == 0;
}

bool qlm_gguf_probe(const char *path)
{
    if (qlm_gguf_named(path))
        return true;
    /* opened as every model file is: a FIFO must not block the probe */
    int fd;
    uint64_t size;
    char m[4];
    if (qlm_input_open(path, &fd, &size, NULL) != QLM_OK)
        return false;
    bool yes = read(fd, m, 4) == 4 && memcmp(m, QLM_GGUF_MAGIC, 4) == 0;
    close(fd);
    return yes;
}

/* ---- lookups and typed reads ---------------------------------------------- */

static int cmp_key_kv(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct qlm_gguf_kv *const *)elem)->key);
}

static int cmp_name_tensor(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct qlm_gguf_tensor *const *)elem)->name);
}

const struct qlm_gguf_kv *qlm_gguf_find(const struct qlm_gguf *g, const char *key)
{
    const struct gguf_priv *p = g->priv_;
    const struct qlm_gguf_kv *const *r =
        g->n_kv ? bsearch(key, p->kv_by_key, (size_t)g->n_kv, sizeof *r, cmp_key_kv) : NULL;
    return r ? *r : NULL;
}

const struct qlm_gguf_tensor *qlm_gguf_tensor(const struct qlm_gguf *g, const char *name)
{
    const struct gguf_priv *p = g->priv_;
    const struct qlm_gguf_tensor *const *r =
        g->n_tensors ? bsearch(name, p->t_by_name, (size_t)g->n_tensors, sizeof *r,
                               cmp_name_tensor)
                     : NULL;
    return r ? *r : NULL;
}

/* Element i of an integer value as its 64-bit pattern; *neg for a negative
 * signed value. */
static uint64_t int_bits(const struct qlm_gguf_kv *kv, uint64_t i, bool *neg)
{
    const uint8_t *b = kv->data + i * vtypes[kv->elem].size;
    int64_t s = 0;
    uint64_t u = 0;
    switch (kv->elem) {
    case QLM_GGUF_U8: u = b[0]; break;
    case QLM_GGUF_I8: s = (int8_t)b[0]; break;
    case QLM_GGUF_U16: u = qlm_fmt_rd16(b); break;
    case QLM_GGUF_I16: s = (int16_t)qlm_fmt_rd16(b); break;
    case QLM_GGUF_U32: u = qlm_fmt_rd32(b); break;
    case QLM_GGUF_I32: s = (int32_t)qlm_fmt_rd32(b); break;
    case QLM_GGUF_U64: u = qlm_fmt_rd64(b); break;
    case QLM_GGUF_I64: s = (int64_t)qlm_fmt_rd64(b); break;
    default: break;
    }
    bool is_signed = kv->elem == QLM_GGUF_I8 || kv->elem == QLM_GGUF_I16 ||
                     kv->elem == QLM_GGUF_I32 || kv->elem == QLM_GGUF_I64;
    *neg = is_signed && s < 0;
    return is_signed ? (uint64_t)s : u;
}

int64_t qlm_gguf_int_at(const struct qlm_gguf_kv *kv, uint64_t i)
{
    bool neg;
    uint64_t u = int_bits(kv, i, &neg);
    return neg ? (int64_t)u : (int64_t)(u > INT64_MAX ? INT64_MAX : u);
}

/* The shortest decimal that reads back as f: the value a config.json had
 * before llama.cpp's converter stored it as f32. */
static double f32_decimal(float f)
{
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            return strtod(buf, NULL);
    }
    return (double)f;
}

double qlm_gguf_real_at(const struct qlm_gguf_kv *kv, uint64_t i)
{
    if (kv->elem == QLM_GGUF_F64) {
        uint64_t u = qlm_fmt_rd64(kv->data + 8 * i);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    uint32_t u = qlm_fmt_rd32(kv->data + 4 * i);
    float f;
    memcpy(&f, &u, 4);
    return f32_decimal(f);
}

/* The key, present and a scalar of a type `ok` accepts. */
static enum qlm_err scalar(const struct qlm_gguf *g, const char *key,
                           bool (*ok)(enum qlm_gguf_vtype), const char *want,
                           const struct qlm_gguf_kv **out, struct qlm_error *err)
{
    const struct qlm_gguf_kv *kv = qlm_gguf_find(g, key);
    if (!kv)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: missing key '%s'", g->path, key);
    if (kv->type == QLM_GGUF_ARRAY || !ok(kv->type))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' is %s%s, not %s", g->path, key,
                             kv->type == QLM_GGUF_ARRAY ? "an array of " : "",
                             qlm_gguf_vtype_name(kv->elem), want);
    *out = kv;
    return QLM_OK;
}

static bool is_real(enum qlm_gguf_vtype t) { return t == QLM_GGUF_F32 || t == QLM_GGUF_F64; }
static bool is_bool(enum qlm_gguf_vtype t) { return t == QLM_GGUF_BOOL; }
static bool is_str(enum qlm_gguf_vtype t) { return t == QLM_GGUF_STRING; }

enum qlm_err qlm_gguf_get_uint(const struct qlm_gguf *g, const char *key, uint64_t max,
                               uint64_t *out, struct qlm_error *err)
{
    const struct qlm_gguf_kv *kv;
    QLM_TRY(scalar(g, key, vtype_is_int, "an integer", &kv, err));
    bool neg;
    uint64_t u = int_bits(kv, 0, &neg);
    if (neg)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' = %" PRId64 " is negative",
                             g->path, key, (int64_t)u);
    if (u > max)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: key '%s' = %" PRIu64 " is out of range (0 .. %" PRIu64 ")",
                             g->path, key, u, max);
    *out = u;
    return QLM_OK;
}

enum qlm_err qlm_gguf_get_real(const struct qlm_gguf *g, const char *key, double *out,
                               struct qlm_error *err)
{
    const struct qlm_gguf_kv *kv;
    QLM_TRY(scalar(g, key, is_real, "a float", &kv, err));
    *out = qlm_gguf_real_at(kv, 0);
    return QLM_OK;
}

enum qlm_err qlm_gguf_get_bool(const struct qlm_gguf *g, const char *key, bool *out,
                               struct qlm_error *err)
{
    const struct qlm_gguf_kv *kv;
    QLM_TRY(scalar(g, key, is_bool, "a bool", &kv, err));
    *out = kv->data[0] != 0;
    return QLM_OK;
}

enum qlm_err qlm_gguf_get_str(const struct qlm_gguf *g, const char *key, char **out,
                              struct qlm_error *err)
{
    const struct qlm_gguf_kv *kv;
    QLM_TRY(scalar(g, key, is_str, "a string", &kv, err));
    const struct qlm_gguf_str *s = &kv->strs[0];
    if (memchr(s->ptr, '\0', (size_t)s->len))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' holds a NUL byte", g->path, key);
    char *c = malloc((size_t)s->len + 1);
    if (!c)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", g->path);
    memcpy(c, s->ptr, (size_t)s->len);
    c[s->len] = '\0';
    *out = c;
    return QLM_OK;
}

enum qlm_err qlm_gguf_get_array(const struct qlm_gguf *g, const char *key,
                                enum qlm_gguf_vtype elem, const struct qlm_gguf_kv **out,
                                struct qlm_error *err)
{
    const struct qlm_gguf_kv *kv = qlm_gguf_find(g, key);
    if (!kv)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: missing key '%s'", g->path, key);
    bool ok = vtype_is_int(elem) ? vtype_is_int(kv->elem)
              : is_real(elem)    ? is_real(kv->elem)
                                 : kv->elem == elem;
    if (kv->type != QLM_GGUF_ARRAY || !ok)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' is %s%s, not an array of %s",
                             g->path, key, kv->type == QLM_GGUF_ARRAY ? "an array of " : "",
                             qlm_gguf_vtype_name(kv->elem),
                             vtype_is_int(elem) ? "integers" : qlm_gguf_vtype_name(elem));
    *out = kv;
    return QLM_OK;
}

/* ---- decoding Q8_0 / Q4_0 ----------------------------------------------------- */

void qlm_ggml_q8_0_to_f32(const void *blocks, uint64_t n, float *out)
{
    const uint8_t *b = blocks;
    for (uint64_t k = 0; k < n / QLM_GGML_Q_BLOCK; k++, b += QLM_GGML_Q8_0_BYTES) {
        float d = qlm_f16_to_f32(qlm_fmt_rd16(b));
        for (int j = 0; j < QLM_GGML_Q_BLOCK; j++)
            out[k * QLM_GGML_Q_BLOCK + j] = d * (float)(int8_t)b[2 + j];
    }
}

void qlm_ggml_q4_0_to_f32(const void *blocks, uint64_t n, float *out)
{
    const uint8_t *b = blocks;
    for (uint64_t k = 0; k < n / QLM_GGML_Q_BLOCK; k++, b += QLM_GGML_Q4_0_BYTES) {
        float d = qlm_f16_to_f32(qlm_fmt_rd16(b));
        float *y = out + k * QLM_GGML_Q_BLOCK;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)((b[2 + j] & 0x0f) - 8);
            y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
        }
    }
}

/* ---- the checkpoint view ---------------------------------------------------------- */

static int cmp_st_name(const void *a, const void *b)
{
    return strcmp(((const struct qlm_st_tensor *)a)->name, ((const struct qlm_st_tensor *)b)->name);
}

static enum qlm_st_dtype st_dtype(uint32_t type)
{
    switch (type) {
    case QLM_GGML_F32: return QLM_ST_F32;
    case QLM_GGML_F16: return QLM_ST_F16;
    case QLM_GGML_BF16: return QLM_ST_BF16;
    case QLM_GGML_Q8_0: return QLM_ST_Q8_0;
    case QLM_GGML_Q4_0: return QLM_ST_Q4_0;
    default: return QLM_ST_OTHER;
    }
}

enum qlm_err qlm_gguf_st_view(const struct qlm_gguf *g, const char *const *names,
                              struct qlm_st_model **out, struct qlm_error *err)
{
    *out = NULL;
    struct qlm_st_model *m = calloc(1, sizeof *m);
    if (!m || !(m->shard_paths = malloc(sizeof *m->shard_paths)) ||
        !(m->shard_paths[0] = strdup(g->path)) ||
        !(m->tensors = calloc((size_t)g->n_tensors + 1, sizeof *m->tensors))) {
        if (m && m->shard_paths)
            m->n_shards = m->shard_paths[0] ? 1 : 0;
        qlm_st_close(m);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", g->path);
    }
    m->n_shards = 1;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct qlm_gguf_tensor *gt = &g->tensors[i];
        struct qlm_st_tensor *t = &m->tensors[i];
        if (!(t->name = strdup(names[i]))) {
            qlm_st_close(m);
            return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", g->path);
        }
        m->n_tensors = (size_t)i + 1;
        t->dtype = st_dtype(gt->type);
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", qlm_ggml_type_name(gt->type));
        t->n_dims = (int)gt->n_dims;
        for (uint32_t d = 0; d < gt->n_dims; d++)
            t->dims[d] = gt->ne[gt->n_dims - 1 - d];
        t->numel = gt->numel;
        t->size = gt->size;
        t->data = gt->data;
    }
    qsort(m->tensors, m->n_tensors, sizeof *m->tensors, cmp_st_name);
    for (size_t i = 1; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i - 1].name, m->tensors[i].name) == 0) {
            enum qlm_err rc = qlm_error_set(err, QLM_E_FORMAT,
                                            "%s: two tensors stand for '%s'", g->path,
                                            m->tensors[i].name);
            qlm_st_close(m);
            return rc;
        }
    *out = m;
    return QLM_OK;
}
