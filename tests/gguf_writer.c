/* gguf_writer.c — a small GGUF writer and ggml's reference Q8_0 / Q4_0
 * quantizers, for fixtures (gguf_writer.h). */
#include "gguf_writer.h"

#include "qlm_format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 4096

/* A growable byte buffer; aborts when memory runs out (test code). */
struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put32(struct buf *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, le, 4);
}

static void put64(struct buf *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static void put_str(struct buf *b, const char *s, size_t len)
{
    put64(b, len);
    put(b, s, len);
}

struct tensor {
    char name[128];
    uint32_t type;
    unsigned n_dims;
    uint64_t ne[4];
    uint8_t *data;
    size_t bytes;
};

struct gw {
    uint32_t version;
    struct buf kv;                 /* the key/values, assembled */
    size_t kv_off[MAX_ITEMS];      /* where each starts in kv */
    size_t n_kv;
    uint32_t alignment;
    struct tensor *t;
    size_t n_t;
};

struct gw *gw_new(void)
{
    struct gw *w = calloc(1, sizeof *w);
    if (!w || !(w->t = calloc(MAX_ITEMS, sizeof *w->t)))
        abort();
    w->version = 3;
    w->alignment = 32;
    return w;
}

void gw_free(struct gw *w)
{
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].data);
    free(w->t);
    free(w->kv.p);
    free(w);
}

void gw_version(struct gw *w, uint32_t version)
{
    w->version = version;
}

static void key(struct gw *w, const char *k, uint32_t type)
{
    if (w->n_kv == MAX_ITEMS)
        abort();
    w->kv_off[w->n_kv++] = w->kv.len;
    put_str(&w->kv, k, strlen(k));
    put32(&w->kv, type);
}

void gw_raw(struct gw *w, const char *k, uint32_t type, const void *bytes, size_t len)
{
    key(w, k, type);
    put(&w->kv, bytes, len);
}

void gw_u32(struct gw *w, const char *k, uint32_t v)
{
    key(w, k, 4);
    put32(&w->kv, v);
    if (strcmp(k, "general.alignment") == 0 && v && !(v & (v - 1)))
        w->alignment = v; /* an invalid one is written, and the data laid out at 32 */
}

void gw_i32(struct gw *w, const char *k, int32_t v)
{
    key(w, k, 5);
    put32(&w->kv, (uint32_t)v);
}

void gw_u64(struct gw *w, const char *k, uint64_t v)
{
    key(w, k, 10);
    put64(&w->kv, v);
}

void gw_f32(struct gw *w, const char *k, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    key(w, k, 6);
    put32(&w->kv, u);
}

void gw_bool(struct gw *w, const char *k, bool v)
{
    uint8_t b = v;
    key(w, k, 7);
    put(&w->kv, &b, 1);
}

void gw_strn(struct gw *w, const char *k, const char *v, size_t len)
{
    key(w, k, 8);
    put_str(&w->kv, v, len);
}

void gw_str(struct gw *w, const char *k, const char *v)
{
    gw_strn(w, k, v, strlen(v));
}

void gw_arr_str(struct gw *w, const char *k, size_t n, const char *const *v, const size_t *len)
{
    key(w, k, 9);
    put32(&w->kv, 8);
    put64(&w->kv, n);
    for (size_t i = 0; i < n; i++)
        put_str(&w->kv, v[i], len ? len[i] : strlen(v[i]));
}

void gw_arr_i32(struct gw *w, const char *k, size_t n, const int32_t *v)
{
    key(w, k, 9);
    put32(&w->kv, 5);
    put64(&w->kv, n);
    for (size_t i = 0; i < n; i++)
        put32(&w->kv, (uint32_t)v[i]);
}

void gw_tensor(struct gw *w, const char *name, uint32_t type, unsigned n_dims,
               const uint64_t *ne, const void *data, size_t bytes)
{
    if (w->n_t == MAX_ITEMS || n_dims > 4)
        abort();
    struct tensor *t = &w->t[w->n_t++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    for (unsigned d = 0; d < n_dims; d++)
        t->ne[d] = ne[d];
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data)
        abort();
    memcpy(t->data, data, bytes);
    t->bytes = bytes;
}

static size_t pad_to(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

uint8_t *gw_bytes(struct gw *w, size_t *len, struct gw_layout *lay)
{
    struct buf b = {0};
    struct gw_layout l;
    memset(&l, 0, sizeof l);
    put(&b, "GGUF", 4);
    put32(&b, w->version);
    put64(&b, w->n_t);
    put64(&b, w->n_kv);
    size_t kv0 = b.len;
    put(&b, w->kv.p, w->kv.len);
    for (size_t i = 0; i < w->n_kv && i < 64; i++)
        l.kv[i] = kv0 + w->kv_off[i];
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const struct tensor *t = &w->t[i];
        if (i < 64)
            l.info[i] = b.len;
        put_str(&b, t->name, strlen(t->name));
        put32(&b, t->n_dims);
        for (unsigned d = 0; d < t->n_dims; d++)
            put64(&b, t->ne[d]);
        put32(&b, t->type);
        put64(&b, off);
        off = pad_to(off + t->bytes, w->alignment);
    }
    static const uint8_t zero[4096];
    if (w->n_t)
        put(&b, zero, pad_to(b.len, w->alignment) - b.len);
    l.data = b.len;
    for (size_t i = 0; i < w->n_t; i++) {
        put(&b, w->t[i].data, w->t[i].bytes);
        put(&b, zero, pad_to(w->t[i].bytes, w->alignment) - w->t[i].bytes);
    }
    *len = b.len;
    if (lay)
        *lay = l;
    return b.p;
}

bool gw_write(struct gw *w, const char *path)
{
    size_t n;
    uint8_t *b = gw_bytes(w, &n, NULL);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(b, 1, n, f) == n;
    ok = f && fclose(f) == 0 && ok;
    free(b);
    return ok;
}

/* ---- ggml's reference quantizers ---------------------------------------- */

void gw_quantize_q8_0(const float *x, size_t n, uint8_t *blocks)
{
    for (size_t k = 0; k < n / 32; k++, x += 32, blocks += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        uint16_t h = qlm_f32_to_f16(d);
        memcpy(blocks, &h, 2);
        for (int j = 0; j < 32; j++)
            blocks[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

void gw_quantize_q4_0(const float *x, size_t n, uint8_t *blocks)
{
    for (size_t k = 0; k < n / 32; k++, x += 32, blocks += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        uint16_t h = qlm_f32_to_f16(d);
        memcpy(blocks, &h, 2);
        for (int j = 0; j < 16; j++) {
            int lo = (int8_t)(x[j] * id + 8.5f), hi = (int8_t)(x[j + 16] * id + 8.5f);
            blocks[2 + j] = (uint8_t)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
        }
    }
}
