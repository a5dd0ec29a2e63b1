/* Byte-level BPE tokenizer: added-token split, NFC, PCRE2 pre-split, BPE by
 * merge rank with a heap, and a streaming UTF-8-safe decoder.  See
 * tokenizer.h for the exact behaviour. */
#include "config.h"

#include "tokenizer.h"
#include "qlm_schema.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#define MAX_IDS (1u << 24)   /* ids fit 24 bits: merge keys pack two of them */
#define CACHE_SLOTS 4096     /* per-call cache of encoded pieces */
#define CACHE_BYTES 22
#define CACHE_IDS 11

struct merge_slot {
    uint64_t key;            /* MKEY(left, right); 0 when free */
    uint32_t rank, result;
};
/* ids are < 2^24, so bit 63 is free to tell a used slot from a free (zeroed) one */
#define MKEY(l, r) (UINT64_C(1) << 63 | (uint64_t)(l) << 32 | (uint32_t)(r))
#define PREFETCH 16          /* merges hashed ahead of their insertion */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_W(p) __builtin_prefetch((p), 1)
#define PREFETCH_R(p) __builtin_prefetch((p), 0)
#else
#define PREFETCH_W(p) ((void)(p))
#define PREFETCH_R(p) ((void)(p))
#endif

struct qlm_tok {
    struct qlm_tokdata d;
    char *name;
    pcre2_code *re;
    struct merge_slot *merges;   /* open addressing, mmask + 1 slots */
    uint64_t mmask;
    /* normal tokens by bytes; -1 free; tmask + 1 slots.  Only qlm_tok_find
     * needs it (encoding starts from byte_tok and merges), so it is built on
     * the first call and published atomically: t stays shareable. */
    _Atomic(int32_t *) thash;
    uint64_t tmask;
    int32_t byte_tok[256];       /* single-byte token of each byte */
    int32_t *added;              /* added/special ids by first byte, then longest first */
    uint32_t n_added;
    uint32_t added_at[257];      /* added[added_at[c] .. added_at[c+1]) start with byte c */
    uint8_t first[256];          /* 1: an added token starts with this byte; 2: a special one */
};

/* ---- hashing ----------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return mix64(h);
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

static const struct merge_slot *merge_find(const struct qlm_tok *t, uint32_t left, uint32_t right)
{
    uint64_t key = MKEY(left, right);
    for (uint64_t i = mix64(key) & t->mmask;; i = (i + 1) & t->mmask) {
        const struct merge_slot *s = &t->merges[i];
        if (s->key == key)
            return s;
        if (s->key == 0)
            return NULL;
    }
}

/* The bytes -> id table of normal tokens (first id wins); NULL if out of memory. */
static int32_t *build_thash(const struct qlm_tokdata *d, uint64_t mask)
{
    int32_t *h = malloc((mask + 1) * sizeof *h);
    if (!h)
        return NULL;
    memset(h, 0xff, (mask + 1) * sizeof *h);
    for (uint32_t id = 0; id < d->n_tokens; id++) {
        const struct qlm_token *k = &d->tokens[id];
        if (k->len == 0 || k->kind != QLM_TOK_NORMAL)
            continue;
        uint64_t i = hash_bytes(k->bytes, k->len) & mask;
        for (; h[i] >= 0; i = (i + 1) & mask) {
            const struct qlm_token *o = &d->tokens[h[i]];
            if (o->len == k->len && memcmp(o->bytes, k->bytes, k->len) == 0)
                break;
        }
        if (h[i] < 0)
            h[i] = (int32_t)id;
    }
    return h;
}

static int32_t token_lookup(const struct qlm_tok *t, const uint8_t *p, size_t n)
{
    struct qlm_tok *mt = (struct qlm_tok *)t; /* the lazily built table only */
    int32_t *h = atomic_load_explicit(&mt->thash, memory_order_acquire);
    if (!h) {
        int32_t *mine = build_thash(&t->d, t->tmask), *none = NULL;
        if (!mine) {
            /* no memory for the table: the same answer by a scan */
            for (uint32_t id = 0; id < t->d.n_tokens; id++) {
                const struct qlm_token *k = &t->d.tokens[id];
                if (k->kind == QLM_TOK_NORMAL && k->len == n && memcmp(k->bytes, p, n) == 0)
                    return (int32_t)id;
            }
            return -1;
        }
        if (atomic_compare_exchange_strong_explicit(&mt->thash, &none, mine,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire)) {
            h = mine;
        } else {
            free(mine); /* another thread published first */
            h = none;
        }
    }
    for (uint64_t i = hash_bytes(p, n) & t->tmask;; i = (i + 1) & t->tmask) {
        int32_t id = h[i];
        if (id < 0)
            return -1;
        const struct qlm_token *k = &t->d.tokens[id];
        if (k->len == n && memcmp(k->bytes, p, n) == 0)
            return id;
    }
}

/* ---- construction ------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Added ids by first byte, then longest first, then by id: sort keys
 * first byte (8 bits) | ~len (32 bits) | id (24 bits). */
static bool sort_added(struct qlm_tok *t)
{
    uint64_t *k = malloc((t->n_added ? t->n_added : 1) * sizeof *k);
    if (!k)
        return false;
    for (uint32_t i = 0; i < t->n_added; i++) {
        const struct qlm_token *tk = &t->d.tokens[t->added[i]];
        k[i] = (uint64_t)tk->bytes[0] << 56 | (uint64_t)(UINT32_MAX - tk->len) << 24 |
               (uint32_t)t->added[i];
    }
    qsort(k, t->n_added, sizeof *k, cmp_u64);
    for (uint32_t i = 0; i < t->n_added; i++)
        t->added[i] = (int32_t)(k[i] & (MAX_IDS - 1));
    free(k);
    uint32_t i = 0;
    for (int c = 0; c < 256; c++) {
        t->added_at[c] = i;
        while (i < t->n_added && t->d.tokens[t->added[i]].bytes[0] == c)
            i++;
    }
    t->added_at[256] = i;
    return true;
}

static enum qlm_err build_tables(struct qlm_tok *t, struct qlm_error *err)
{
    const struct qlm_tokdata *d = &t->d;
    const char *nm = t->name;
    if (d->n_tokens == 0 || d->n_tokens >= MAX_IDS)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tokenizer has %u tokens", nm,
                             (unsigned)d->n_tokens);
    if (!d->tokens || !d->regex || (d->n_merges && !d->merges) || (d->n_eos && !d->eos))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: incomplete tokenizer data", nm);
    if (!(d->flags & QLM_TOKF_BYTE_LEVEL))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tokenizer is not byte-level BPE", nm);
    for (uint32_t i = 0; i < d->n_eos; i++)
        if (d->eos[i] >= d->n_tokens)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: eos id %u out of range", nm,
                                 (unsigned)d->eos[i]);
    if (d->bos_id >= (int32_t)d->n_tokens || d->bos_id < -1 || d->pad_id >= (int32_t)d->n_tokens ||
        d->pad_id < -1)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: bos/pad id out of range", nm);
    if ((d->flags & QLM_TOKF_ADD_BOS) && d->bos_id < 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: add-bos flag without a bos id", nm);

    /* tokens: single bytes, added ones in a list (the bytes -> id table of
     * normal ones waits for token_lookup) */
    t->tmask = pow2_at_least((uint64_t)d->n_tokens * 2) - 1;
    uint32_t n_added = 0;
    for (uint32_t id = 0; id < d->n_tokens; id++)
        n_added += d->tokens[id].len && d->tokens[id].kind != QLM_TOK_NORMAL;
    t->added = malloc((n_added ? n_added : 1) * sizeof *t->added);
    if (!t->added)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for the tokenizer", nm);
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    for (uint32_t id = 0; id < d->n_tokens; id++) {
        const struct qlm_token *k = &d->tokens[id];
        if (k->len == 0)
            continue;
        if (k->kind != QLM_TOK_NORMAL) {
            t->added[t->n_added++] = (int32_t)id;
            t->first[k->bytes[0]] |= k->kind == QLM_TOK_SPECIAL ? 2 : 1;
            continue;
        }
        if (k->len == 1 && t->byte_tok[k->bytes[0]] < 0)
            t->byte_tok[k->bytes[0]] = (int32_t)id;
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_tok[b] < 0)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: byte 0x%02x has no token", nm, b);
    if (!sort_added(t))
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for the tokenizer", nm);

    /* merges: (left, right) -> (rank, result); a repeated pair keeps its first
     * rank.  Both passes below touch memory at random (tokens, table slots):
     * prefetching ahead overlaps those misses. */
    t->mmask = pow2_at_least((uint64_t)d->n_merges / 3 * 4 + 4) - 1; /* load <= 3/4 */
    t->merges = calloc(t->mmask + 1, sizeof *t->merges);
    if (!t->merges)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for the tokenizer", nm);
    /* check every merge in rank order; the three tokens of the merge
     * 2 * PREFETCH ahead are prefetched, and their bytes PREFETCH ahead */
#define TOKAT(id) (&d->tokens[(id) < d->n_tokens ? (id) : 0])
    for (uint32_t r = 0; r < d->n_merges; r++) {
        const struct qlm_merge *m = &d->merges[r];
        if (d->n_merges - r > 2 * PREFETCH) {
            const struct qlm_merge *f = &d->merges[r + 2 * PREFETCH];
            PREFETCH_R(TOKAT(f->left));
            PREFETCH_R(TOKAT(f->right));
            PREFETCH_R(TOKAT(f->result));
        }
        if (d->n_merges - r > PREFETCH) {
            const struct qlm_merge *f = &d->merges[r + PREFETCH];
            PREFETCH_R(TOKAT(f->left)->bytes);
            PREFETCH_R(TOKAT(f->right)->bytes);
            PREFETCH_R(TOKAT(f->result)->bytes);
        }
        if (m->left >= d->n_tokens || m->right >= d->n_tokens || m->result >= d->n_tokens)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: merge %u has an id out of range", nm,
                                 (unsigned)r);
        const struct qlm_token *a = &d->tokens[m->left], *b = &d->tokens[m->right],
                               *c = &d->tokens[m->result];
        if (a->kind != QLM_TOK_NORMAL || b->kind != QLM_TOK_NORMAL ||
            c->kind != QLM_TOK_NORMAL || (uint64_t)a->len + b->len != c->len ||
            memcmp(c->bytes, a->bytes, a->len) != 0 ||
            memcmp(c->bytes + a->len, b->bytes, b->len) != 0)
            return qlm_error_set(err, QLM_E_FORMAT,
                                 "%s: merge %u: token %u is not token %u + token %u", nm,
                                 (unsigned)r, (unsigned)m->result, (unsigned)m->left,
                                 (unsigned)m->right);
    }
#undef TOKAT
    /* then insert them in rank order, each one's slot hashed and prefetched
     * PREFETCH merges ahead */
    uint64_t ahead[PREFETCH];
    for (uint32_t r = 0; r < d->n_merges && r < PREFETCH; r++) {
        ahead[r] = mix64(MKEY(d->merges[r].left, d->merges[r].right)) & t->mmask;
        PREFETCH_W(&t->merges[ahead[r]]);
    }
    for (uint32_t r = 0; r < d->n_merges; r++) {
        const struct qlm_merge *m = &d->merges[r];
        uint64_t i = ahead[r % PREFETCH];
        if (d->n_merges - r > PREFETCH) {
            const struct qlm_merge *f = &d->merges[r + PREFETCH];
            uint64_t j = mix64(MKEY(f->left, f->right)) & t->mmask;
            ahead[r % PREFETCH] = j;
            PREFETCH_W(&t->merges[j]);
        }
        uint64_t key = MKEY(m->left, m->right);
        while (t->merges[i].key != 0 && t->merges[i].key != key)
            i = (i + 1) & t->mmask;
        if (t->merges[i].key == 0)
            t->merges[i] = (struct merge_slot){.key = key, .rank = r, .result = m->result};
    }

    /* the pre-split regex, compiled as the converter checked it */
    QLM_TRY(qlm_schema_regex(d->regex, nm, &t->re, err));
    /* both modes split_text uses; either falls back to the interpreter */
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    return QLM_OK;
}

enum qlm_err qlm_tok_new(struct qlm_tok **out, struct qlm_tokdata *data, const char *name,
                         struct qlm_error *err)
{
    *out = NULL;
    struct qlm_tok *t = calloc(1, sizeof *t);
    if (!t) {
        qlm_tokdata_free(data);
        memset(data, 0, sizeof *data);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", name ? name : "tokenizer");
    }
    t->d = *data;
    memset(data, 0, sizeof *data);
    t->name = strdup(name ? name : "tokenizer");
    enum qlm_err rc = t->name ? build_tables(t, err)
                              : qlm_error_set(err, QLM_E_NOMEM, "tokenizer: out of memory");
    if (rc != QLM_OK) {
        qlm_tok_free(t);
        return rc;
    }
    *out = t;
    return QLM_OK;
}

void qlm_tok_free(struct qlm_tok *t)
{
    if (!t)
        return;
    pcre2_code_free(t->re);
    free(t->merges);
    free(atomic_load(&t->thash));
    free(t->added);
    free(t->name);
    qlm_tokdata_free(&t->d);
    free(t);
}

/* ---- encoding ----------------------------------------------------------- */

struct sym {
    int32_t id;
    int32_t prev, next;  /* -1 at the ends */
    bool alive;
};

struct cand {
    uint64_t key;        /* rank << 32 | position of the left symbol */
    int32_t left, right; /* ids when pushed: the entry is stale if they changed */
};

struct cache_entry {
    uint8_t len, n;
    uint8_t bytes[CACHE_BYTES];
    int32_t ids[CACHE_IDS];
};

/* Per-call state: output, scratch for BPE, the match data, the cache. */
struct enc {
    const struct qlm_tok *t;
    int32_t *ids;
    size_t n, cap;
    struct sym *syms;
    struct cand *heap;
    size_t scap;         /* symbols held by syms; heap holds 3 * scap */
    pcre2_match_data *md;
    struct cache_entry *cache;
    struct qlm_error *err;
};

static enum qlm_err push_id(struct enc *e, int32_t id)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        int32_t *p = realloc(e->ids, cap * sizeof *p);
        if (!p)
            return qlm_error_set(e->err, QLM_E_NOMEM, "%s: out of memory while encoding",
                                 e->t->name);
        e->ids = p;
        e->cap = cap;
    }
    e->ids[e->n++] = id;
    return QLM_OK;
}

static void heap_push(struct cand *h, size_t *n, struct cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= c.key)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static struct cand heap_pop(struct cand *h, size_t *n)
{
    struct cand top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && h[c + 1].key < h[c].key)
            c++;
        if (last.key <= h[c].key)
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = last;
    return top;
}

static void try_pair(const struct qlm_tok *t, struct sym *s, struct cand *h, size_t *nh,
                     int32_t pos)
{
    int32_t nx = s[pos].next;
    if (nx < 0)
        return;
    const struct merge_slot *m = merge_find(t, (uint32_t)s[pos].id, (uint32_t)s[nx].id);
    if (m)
        heap_push(h, nh, (struct cand){.key = (uint64_t)m->rank << 32 | (uint32_t)pos,
                                       .left = s[pos].id, .right = s[nx].id});
}

/* BPE of one piece. */
static enum qlm_err bpe_piece(struct enc *e, const uint8_t *p, size_t n)
{
    const struct qlm_tok *t = e->t;
    if (n == 1)
        return push_id(e, t->byte_tok[p[0]]);
    struct cache_entry *ce = NULL;
    if (e->cache && n <= CACHE_BYTES) {
        ce = &e->cache[hash_bytes(p, n) & (CACHE_SLOTS - 1)];
        if (ce->len == n && memcmp(ce->bytes, p, n) == 0) {
            for (int i = 0; i < ce->n; i++)
                QLM_TRY(push_id(e, ce->ids[i]));
            return QLM_OK;
        }
    }
    if (n > e->scap) {
        if (n > SIZE_MAX / (3 * sizeof(struct cand)) || n > INT32_MAX)
            return qlm_error_set(e->err, QLM_E_NOMEM, "%s: piece too long", t->name);
        free(e->syms);
        free(e->heap);
        e->syms = malloc(n * sizeof *e->syms);
        e->heap = malloc(3 * n * sizeof *e->heap);
        e->scap = e->syms && e->heap ? n : 0;
        if (!e->scap)
            return qlm_error_set(e->err, QLM_E_NOMEM, "%s: out of memory while encoding",
                                 t->name);
    }
    struct sym *s = e->syms;
    struct cand *h = e->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        s[i] = (struct sym){.id = t->byte_tok[p[i]], .prev = (int32_t)i - 1,
                            .next = i + 1 < n ? (int32_t)i + 1 : -1, .alive = true};
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(t, s, h, &nh, (int32_t)i);
    /* each merge removes a symbol and pushes at most 2 pairs: nh < 3n */
    while (nh) {
        struct cand c = heap_pop(h, &nh);
        int32_t pos = (int32_t)(uint32_t)c.key, nx = s[pos].next;
        if (!s[pos].alive || nx < 0 || s[pos].id != c.left || s[nx].id != c.right)
            continue; /* stale: a neighbour merged first */
        const struct merge_slot *m = merge_find(t, (uint32_t)c.left, (uint32_t)c.right);
        s[pos].id = (int32_t)m->result;
        s[nx].alive = false;
        s[pos].next = s[nx].next;
        if (s[nx].next >= 0)
            s[s[nx].next].prev = pos;
        if (s[pos].prev >= 0)
            try_pair(t, s, h, &nh, s[pos].prev);
        try_pair(t, s, h, &nh, pos);
    }
    size_t first = e->n;
    for (int32_t i = 0; i >= 0; i = s[i].next)
        QLM_TRY(push_id(e, s[i].id));
    if (ce && e->n - first <= CACHE_IDS) {
        ce->len = (uint8_t)n;
        ce->n = (uint8_t)(e->n - first);
        memcpy(ce->bytes, p, n);
        memcpy(ce->ids, e->ids + first, ce->n * sizeof(int32_t));
    }
    return QLM_OK;
}

/* One pcre2_match of s[0, end) from at; the interpreter when the JIT runs
 * out of stack. */
static int match(const struct enc *e, const uint8_t *s, size_t end, size_t at, uint32_t opts)
{
    int rc = pcre2_match(e->t->re, s, end, at, opts, e->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(e->t->re, s, end, at, opts | PCRE2_NO_JIT, e->md, NULL);
    return rc;
}

/* Pre-split normalized text with the regex (Isolated: gaps are pieces too).
 *
 * The regex sees at most QLM_TOK_SPLIT_WINDOW bytes from where it starts, with
 * PCRE2_PARTIAL_HARD: a match found, or no match, without reaching the
 * window's end is exactly what the whole text gives (PCRE2 reports a partial
 * match as soon as a character past the end could change the result), so
 * text whose pieces are shorter than the window splits exactly as with no
 * window.  Only a piece that needs more than a window (a run of 10 MiB of
 * spaces or letters is one match) is cut at the window's end: the cost of
 * one match, and the memory of BPE on a piece, stay bounded, and such text
 * tokenizes instead of running into PCRE2's match limit. */
static enum qlm_err split_text(struct enc *e, const uint8_t *s, size_t n)
{
    const struct qlm_tok *t = e->t;
    size_t gap = 0, at = 0;
    while (at < n) {
        size_t end = n;
        if (n - at > QLM_TOK_SPLIT_WINDOW)
            for (end = at + QLM_TOK_SPLIT_WINDOW; (s[end] & 0xC0) == 0x80; end--)
                ; /* a character boundary (at is one, QLM_TOK_SPLIT_WINDOW > 4) */
        int rc = match(e, s, end, at, PCRE2_NO_UTF_CHECK | (end < n ? PCRE2_PARTIAL_HARD : 0));
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        if (rc == PCRE2_ERROR_PARTIAL && ov[0] > at) {
            at = ov[0]; /* no match starts before the partial one: look from there */
            continue;
        }
        if (rc == PCRE2_ERROR_PARTIAL) /* one piece longer than the window: cut it */
            rc = match(e, s, end, at, PCRE2_NO_UTF_CHECK);
        if (rc == PCRE2_ERROR_NOMATCH && end == n)
            break;
        if (rc == PCRE2_ERROR_NOMATCH) {
            at = end; /* no match starts in [at, end): the gap goes on */
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return qlm_error_set(e->err, QLM_E_RANGE, "%s: tokenizer regex failed: %s",
                                 t->name, (const char *)msg);
        }
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {
            /* empty match: skip one character, it stays in the gap */
            at = ms + 1;
            while (at < n && (s[at] & 0xC0) == 0x80)
                at++;
            continue;
        }
        if (ms > gap)
            QLM_TRY(bpe_piece(e, s + gap, ms - gap));
        QLM_TRY(bpe_piece(e, s + ms, me - ms));
        gap = at = me;
    }
    if (gap < n)
        QLM_TRY(bpe_piece(e, s + gap, n - gap));
    return QLM_OK;
}

/* NFC of s into a new buffer.  Only the stretches around non-ASCII bytes go
 * through utf8proc: a boundary between two ASCII bytes never changes under
 * NFC (both are starters that compose with nothing), so a stretch runs from
 * the ASCII byte before a non-ASCII one to the next such boundary.  This
 * keeps mostly-ASCII text (code, English) at memcpy speed. */
static enum qlm_err nfc_text(struct enc *e, const uint8_t *s, size_t n, uint8_t **out,
                             size_t *out_n)
{
    size_t cap = n + 16, len = 0, i = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        return qlm_error_set(e->err, QLM_E_NOMEM, "%s: out of memory", e->t->name);
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] < 0x80)
            j++;
        size_t start = j > i ? j - 1 : j, end = j;
        if (j < n) {
            end = j + 1;
            while (end < n && !(s[end - 1] < 0x80 && s[end] < 0x80))
                end++;
        }
        memcpy(b + len, s + i, start - i);
        len += start - i;
        if (end > start) {
            utf8proc_uint8_t *nfc = NULL;
            utf8proc_ssize_t m = utf8proc_map(s + start, (utf8proc_ssize_t)(end - start), &nfc,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (m < 0) {
                free(b);
                return qlm_error_set(e->err, m == UTF8PROC_ERROR_NOMEM ? QLM_E_NOMEM
                                                                       : QLM_E_INVALID,
                                     "%s: NFC normalization failed: %s", e->t->name,
                                     utf8proc_errmsg(m));
            }
            /* NFC may grow a stretch (some singletons decompose to longer forms) */
            if ((size_t)m > cap - len - (n - end)) {
                size_t ncap = len + (size_t)m + (n - end) + 16;
                uint8_t *nb = realloc(b, ncap);
                if (!nb) {
                    free(nfc);
                    free(b);
                    return qlm_error_set(e->err, QLM_E_NOMEM, "%s: out of memory",
                                         e->t->name);
                }
                b = nb;
                cap = ncap;
            }
            memcpy(b + len, nfc, (size_t)m);
            len += (size_t)m;
            free(nfc);
        }
        i = end;
    }
    *out = b;
    *out_n = len;
    return QLM_OK;
}

static enum qlm_err encode_segment(struct enc *e, const uint8_t *s, size_t n)
{
    if (n == 0)
        return QLM_OK;
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = s[i] < 0x80;
    if (ascii || !(e->t->d.flags & QLM_TOKF_NFC))
        return split_text(e, s, n);
    if (n > (size_t)PTRDIFF_MAX / 8)
        return qlm_error_set(e->err, QLM_E_RANGE, "%s: text too long", e->t->name);
    uint8_t *nfc = NULL;
    size_t m = 0;
    QLM_TRY(nfc_text(e, s, n, &nfc, &m));
    enum qlm_err rc = split_text(e, nfc, m);
    free(nfc);
    return rc;
}

/* Leftmost, then longest, allowed added token at or after pos: its id and
 * start, or -1. */
static int32_t next_added(const struct qlm_tok *t, const uint8_t *s, size_t n, size_t pos,
                          bool parse_special, size_t *at)
{
    uint8_t mask = parse_special ? 3 : 1;
    for (size_t i = pos; i < n; i++) {
        if (!(t->first[s[i]] & mask))
            continue;
        for (uint32_t k = t->added_at[s[i]]; k < t->added_at[s[i] + 1]; k++) {
            const struct qlm_token *tk = &t->d.tokens[t->added[k]];
            if ((tk->kind == QLM_TOK_SPECIAL && !parse_special) || tk->len > n - i ||
                memcmp(tk->bytes, s + i, tk->len) != 0)
                continue;
            *at = i;
            return t->added[k];
        }
    }
    return -1;
}

enum qlm_err qlm_tok_encode(const struct qlm_tok *t, const char *text, size_t len,
                            bool parse_special, int32_t **ids, size_t *n, struct qlm_error *err)
{
    *ids = NULL;
    *n = 0;
    const uint8_t *s = (const uint8_t *)text;
    if (len && !text)
        return qlm_error_set(err, QLM_E_INVALID, "%s: NULL text", t->name);
    size_t valid = qlm_utf8_valid_prefix(s, len);
    if (valid != len)
        return qlm_error_set(err, QLM_E_INVALID, "%s: input text is not valid UTF-8 (byte %zu)",
                             t->name, valid);
    struct enc e = {.t = t, .err = err};
    enum qlm_err rc = QLM_OK;
    e.md = pcre2_match_data_create(1, NULL);
    if (len > 1024)
        e.cache = calloc(CACHE_SLOTS, sizeof *e.cache); /* optional: NULL just runs slower */
    if (!e.md)
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", t->name);
    if (rc == QLM_OK && (t->d.flags & QLM_TOKF_ADD_BOS))
        rc = push_id(&e, t->d.bos_id);
    size_t pos = 0;
    while (rc == QLM_OK && pos < len) {
        size_t at = len;
        int32_t id = t->n_added ? next_added(t, s, len, pos, parse_special, &at) : -1;
        rc = encode_segment(&e, s + pos, (id >= 0 ? at : len) - pos);
        if (rc == QLM_OK && id >= 0) {
            rc = push_id(&e, id);
            pos = at + t->d.tokens[id].len;
        } else {
            pos = len;
        }
    }
    if (rc == QLM_OK && !e.ids) {
        rc = push_id(&e, 0); /* a non-NULL empty result */
        e.n = 0;
    }
    pcre2_match_data_free(e.md);
    free(e.syms);
    free(e.heap);
    free(e.cache);
    if (rc != QLM_OK) {
        free(e.ids);
        return rc;
    }
    *ids = e.ids;
    *n = e.n;
    return QLM_OK;
}

/* ---- lookups ----------------------------------------------------------- */

const uint8_t *qlm_tok_bytes(const struct qlm_tok *t, int32_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= t->d.n_tokens) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->d.tokens[id].len;
    return t->d.tokens[id].bytes;
}

int32_t qlm_tok_find(const struct qlm_tok *t, const char *s)
{
    size_t n = strlen(s);
    for (uint32_t k = 0; k < t->n_added; k++) {
        const struct qlm_token *tk = &t->d.tokens[t->added[k]];
        if (tk->len == n && memcmp(tk->bytes, s, n) == 0)
            return t->added[k];
    }
    return n ? token_lookup(t, (const uint8_t *)s, n) : -1;
}

uint32_t qlm_tok_count(const struct qlm_tok *t) { return t->d.n_tokens; }

bool qlm_tok_is_eos(const struct qlm_tok *t, int32_t id)
{
    for (uint32_t i = 0; i < t->d.n_eos; i++)
        if ((int64_t)t->d.eos[i] == id)
            return true;
    return false;
}

int32_t qlm_tok_eos(const struct qlm_tok *t) { return t->d.n_eos ? (int32_t)t->d.eos[0] : -1; }
int32_t qlm_tok_bos(const struct qlm_tok *t) { return t->d.bos_id; }
bool qlm_tok_add_bos(const struct qlm_tok *t) { return (t->d.flags & QLM_TOKF_ADD_BOS) != 0; }
int32_t qlm_tok_pad(const struct qlm_tok *t) { return t->d.pad_id; }

bool qlm_tok_is_special(const struct qlm_tok *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->d.n_tokens && t->d.tokens[id].kind != QLM_TOK_NORMAL;
}

const char *qlm_tok_chat_template(const struct qlm_tok *t)
{
    return t->d.chat_template ? t->d.chat_template : "";
}

const struct qlm_tokdata *qlm_tok_data(const struct qlm_tok *t) { return &t->d; }
