/*
 * forward.h — internal: the session (KV cache + scratch, session.c) and the
 * batched forward pass (forward.c).
 */
#ifndef QLM_FORWARD_H
#define QLM_FORWARD_H

#include "model.h"

/* Tokens per pass over the weights; longer inputs are split into batches. */
#define QLM_MAX_BATCH 256

struct team;
struct qlm_calib;

struct qlm_session {
    const struct qlm_model *m;
    int n_ctx, n_threads, n_batch;
    int pos;                  /* tokens in the cache */
    enum qlm_dtype kv_type;   /* QLM_F32 or QLM_F16 elements in the cache */
    void *k_cache, *v_cache;  /* (n_layers, n_kv, n_ctx, head_dim), calloc'ed */
    float *rope_cos;          /* (n_ctx, head_dim/2) */
    float *rope_sin;          /* (n_ctx, head_dim/2) */
    /* scratch for one batch of up to n_batch tokens */
    float *x;                 /* (nb, hidden) residual stream */
    float *h;                 /* (nb, hidden) normed input / block output */
    float *q;                 /* (nb, n_heads*head_dim) */
    float *k, *v;             /* (nb, n_kv*head_dim) */
    float *att;               /* (nb, n_heads*head_dim) attention output */
    float *gate, *up;         /* (nb, ffn) */
    int8_t *aq;               /* (nb, max_in) quantized activations */
    float *ad;                /* (nb, max_in) their scales (worst case group 1) */
    float *scores;            /* (n_threads, per_kv, n_ctx) attention weights */
    float *logits;            /* (n_logits, vocab) */
    size_t logits_cap;        /* floats allocated */
    int n_logits;
    struct team *team;        /* worker threads when n_threads > 1 */
    struct qlm_calib *calib;  /* activation statistics (calib.h), or NULL */
    bool collect;             /* qlm_eval adds to calib */
};

/* Run nt (<= n_batch) tokens at positions [pos, pos + nt); ids already
 * checked.  Writes the logits of every token to logits (nt, vocab) when
 * all, else of the last token only (1, vocab); logits may be NULL when no
 * logits are needed.  Advances s->pos. */
void qlm_forward_batch(struct qlm_session *s, const int32_t *tokens, int nt, float *logits,
                       bool all);

/* Phase slots a batch needs at most (the session's team has as many). */
int qlm_forward_phases(const struct qlm_hparams *hp);

/* Bytes of one KV cache element of type t (QLM_F32 or QLM_F16). */
static inline size_t qlm_kv_elem_size(enum qlm_dtype t)
{
    return t == QLM_F16 ? sizeof(uint16_t) : sizeof(float);
}

#endif
