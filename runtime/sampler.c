/*
 * sampler.c — next-token choice from logits: greedy, or temperature with
 * top-k, min-p and top-p truncation, driven by a seeded xoshiro256** so the
 * same seed and parameters give the same sequence on every machine.
 *
 * Order: logits / temp -> top-k (highest logits) -> softmax -> min-p (drop
 * p < min_p * p_max) -> top-p (smallest prefix, by falling probability, whose
 * mass reaches top_p) -> renormalise -> draw.  Ties order by lower id.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>

#include "qlm.h"

struct cand {
    float logit;
    float p;
    int32_t id;
};

struct qlm_sampler {
    struct qlm_sampler_params p;
    int vocab;
    uint64_t st[4];        /* xoshiro256** state */
    struct cand *cands;    /* (vocab) */
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1p-53; }

void qlm_sampler_defaults(struct qlm_sampler_params *p)
{
    /* Qwen3's recommended non-thinking settings */
    p->temp = 0.7f;
    p->top_k = 20;
    p->top_p = 0.8f;
    p->min_p = 0.0f;
    p->seed = 0;
}

enum qlm_err qlm_sampler_new(struct qlm_sampler **out, const struct qlm_sampler_params *p,
                             int vocab, struct qlm_error *err)
{
    *out = NULL;
    if (vocab <= 0)
        return qlm_error_set(err, QLM_E_INVALID, "sampler: vocabulary size %d", vocab);
    if (!(p->temp >= 0.0f) || isinf(p->temp))
        return qlm_error_set(err, QLM_E_INVALID, "sampler: temperature %g must be >= 0",
                             (double)p->temp);
    if (p->top_k < 0)
        return qlm_error_set(err, QLM_E_INVALID, "sampler: top-k %d must be >= 0", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return qlm_error_set(err, QLM_E_INVALID, "sampler: top-p %g must be in (0, 1]",
                             (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return qlm_error_set(err, QLM_E_INVALID, "sampler: min-p %g must be in [0, 1]",
                             (double)p->min_p);
    struct qlm_sampler *s = calloc(1, sizeof *s);
    if (s == NULL || (s->cands = malloc((size_t)vocab * sizeof *s->cands)) == NULL) {
        free(s);
        return qlm_error_set(err, QLM_E_NOMEM, "sampler: out of memory");
    }
    s->p = *p;
    s->vocab = vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->st[i] = splitmix64(&x);
    *out = s;
    return QLM_OK;
}

void qlm_sampler_free(struct qlm_sampler *s)
{
    if (s == NULL)
        return;
    free(s->cands);
    free(s);
}

/* Highest logit first, then lowest id; NaN sorts last. */
static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    bool an = isnan(a->logit), bn = isnan(b->logit);
    if (an != bn)
        return an ? 1 : -1;
    if (!an && a->logit != b->logit)
        return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static void sift_down(struct cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_cmp(&h[l], &h[w]) > 0)
            w = l;
        if (r < n && cand_cmp(&h[r], &h[w]) > 0)
            w = r;
        if (w == i)
            return;
        struct cand tmp = h[i];
        h[i] = h[w];
        h[w] = tmp;
        i = w;
    }
}

/* Move the k best of c[0..n) to c[0..k) (unordered) in O(n log k): a heap
 * whose root is the worst of the best k seen so far.  Returns k. */
static int select_top_k(struct cand *c, int n, int k)
{
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (cand_cmp(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    return k;
}

static int32_t argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best] || (isnan(logits[best]) && !isnan(logits[i])))
            best = i;
    return best;
}

int32_t qlm_sample(struct qlm_sampler *s, const float *logits)
{
    const struct qlm_sampler_params *p = &s->p;
    if (p->temp <= 0.0f || p->top_k == 1)
        return argmax(logits, s->vocab);

    /* Candidates, NaN logits dropped. */
    struct cand *c = s->cands;
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (!isnan(logits[i]))
            c[n++] = (struct cand){ logits[i] / p->temp, 0.0f, i };
    if (n == 0)
        return 0;
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < n) {
        n = select_top_k(c, n, p->top_k);
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        sorted = true;
    }

    /* softmax over the candidates */
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (c[i].logit > mx)
            mx = c[i].logit;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = (float)exp((double)c[i].logit - (double)mx);
        sum += c[i].p;
    }
    for (int i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / sum);

    /* min-p: keep p >= min_p * p_max (p_max = exp(0) / sum) */
    if (p->min_p > 0.0f) {
        float thr = p->min_p * (float)(1.0 / sum);
        int k = 0;
        for (int i = 0; i < n; i++)
            if (c[i].p >= thr)
                c[k++] = c[i];
        n = k;
    }

    /* top-p: smallest prefix by falling probability with mass >= top_p */
    if (p->top_p < 1.0f && n > 1) {
        if (!sorted)
            qsort(c, (size_t)n, sizeof *c, cand_cmp);
        double mass = 0.0;
        int k = 0;
        while (k < n) {
            mass += c[k].p;
            k++;
            if (mass >= p->top_p)
                break;
        }
        n = k;
    }

    /* draw from the renormalised survivors */
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += c[i].p;
    double r = uniform01(s->st) * total, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc)
            return c[i].id;
    }
    return c[n - 1].id;
}
