/* fmt_internal.h — little-endian byte access and overflow-checked
 * arithmetic shared by the formats/ sources (not installed). */
#ifndef QLM_FMT_INTERNAL_H
#define QLM_FMT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qlm_format.h"

static inline uint16_t qlm_fmt_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t qlm_fmt_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t qlm_fmt_rd64(const uint8_t *p)
{
    return (uint64_t)qlm_fmt_rd32(p) | (uint64_t)qlm_fmt_rd32(p + 4) << 32;
}
static inline void qlm_fmt_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void qlm_fmt_wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void qlm_fmt_wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline bool qlm_fmt_add(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool qlm_fmt_mul(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
/* Round v up to a multiple of a (a power of two); false on overflow. */
static inline bool qlm_fmt_align(uint64_t v, uint64_t a, uint64_t *out)
{
    if (v > UINT64_MAX - (a - 1))
        return false;
    *out = (v + a - 1) & ~(a - 1);
    return true;
}

/* A bounded read cursor over untrusted bytes: every get fails once past the
 * end, so parsers check ok once per record rather than every field. */
struct qlm_fmt_cur {
    const uint8_t *p;
    size_t len, pos;
    bool ok;
};
static inline const uint8_t *qlm_fmt_take(struct qlm_fmt_cur *c, size_t n)
{
    if (!c->ok || n > c->len - c->pos) {
        c->ok = false;
        return NULL;
    }
    const uint8_t *r = c->p + c->pos;
    c->pos += n;
    return r;
}
static inline uint8_t qlm_fmt_get8(struct qlm_fmt_cur *c)
{
    const uint8_t *p = qlm_fmt_take(c, 1);
    return p ? p[0] : 0;
}
static inline uint16_t qlm_fmt_get16(struct qlm_fmt_cur *c)
{
    const uint8_t *p = qlm_fmt_take(c, 2);
    return p ? qlm_fmt_rd16(p) : 0;
}
static inline uint32_t qlm_fmt_get32(struct qlm_fmt_cur *c)
{
    const uint8_t *p = qlm_fmt_take(c, 4);
    return p ? qlm_fmt_rd32(p) : 0;
}
static inline uint64_t qlm_fmt_get64(struct qlm_fmt_cur *c)
{
    const uint8_t *p = qlm_fmt_take(c, 8);
    return p ? qlm_fmt_rd64(p) : 0;
}

/* Move the complete temporary file tmp to path (publish.c): refuses an
 * existing path unless overwrite ("PATH: already exists (not
 * overwriting)"), even one that appeared while tmp was written. */
enum qlm_err qlm_fmt_publish(const char *tmp, const char *path, bool overwrite,
                             struct qlm_error *err);
/* fsync the directory holding path, best effort: the rename is durable. */
void qlm_fmt_sync_dir(const char *path);

#endif
