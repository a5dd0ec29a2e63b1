/*
 * detok.c — the streaming decoder (tokenizer.h): token bytes in, only
 * complete UTF-8 characters out; invalid sequences become U+FFFD, a valid
 * but unfinished tail waits for the next token.
 */
#include "config.h"

#include <string.h>

#include "tokenizer.h"

struct out {
    char *p;
    size_t n, cap;
};

static void put(struct out *o, const uint8_t *b, size_t n)
{
    if (n > o->cap - o->n)
        n = o->cap - o->n; /* dropped: see the cap rule in tokenizer.h */
    memcpy(o->p + o->n, b, n);
    o->n += n;
}

static const uint8_t replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

size_t qlm_tok_detok_push(const struct qlm_tok *t, struct qlm_detok *d, int32_t id, char *out,
                          size_t cap)
{
    struct out o = {out, 0, cap};
    size_t nb;
    const uint8_t *b = qlm_tok_bytes(t, id, &nb);
    if (!b)
        return 0;
    if (d->n_pending > 3)
        d->n_pending = 0; /* not a state this decoder leaves */
    size_t na = d->n_pending, total = na + nb, i = 0;
    uint8_t a[3];
    memcpy(a, d->pending, na);
#define AT(k) ((k) < na ? a[(k)] : b[(k) - na])
    d->n_pending = 0;
    while (i < total) {
        uint8_t c = AT(i);
        if (c < 0x80) {
            /* a run of ASCII straight from the token */
            size_t j = i;
            while (j < total && j >= na && b[j - na] < 0x80)
                j++;
            if (j == i) {
                put(&o, &c, 1);
                i++;
            } else {
                put(&o, b + (i - na), j - i);
                i = j;
            }
            continue;
        }
        int need;
        uint8_t lo, hi;
        if (!qlm_utf8_lead(c, &need, &lo, &hi)) {
            put(&o, replacement, 3);
            i++;
            continue;
        }
        int j = 1;
        for (; j <= need; j++) {
            if (i + (size_t)j >= total)
                break;
            uint8_t x = AT(i + (size_t)j);
            if (j == 1 ? (x < lo || x > hi) : (x & 0xC0) != 0x80)
                break;
        }
        if (j > need) {
            uint8_t ch[4];
            for (int k = 0; k <= need; k++)
                ch[k] = AT(i + (size_t)k);
            put(&o, ch, (size_t)need + 1);
            i += (size_t)need + 1;
        } else if (i + (size_t)j >= total) {
            /* a valid but incomplete tail: wait for the next token */
            for (size_t k = i; k < total; k++)
                d->pending[d->n_pending++] = AT(k);
            i = total;
        } else {
            put(&o, replacement, 3); /* the maximal invalid subpart [i, i + j) */
            i += (size_t)j;
        }
    }
#undef AT
    return o.n;
}

size_t qlm_tok_detok_flush(struct qlm_detok *d, char *out, size_t cap)
{
    struct out o = {out, 0, cap};
    if (d->n_pending)
        put(&o, replacement, 3);
    d->n_pending = 0;
    return o.n;
}
