/*
 * calib.h — internal: the activation statistics a session collects for
 * calibration (qlm_session_collect_stats and friends in qlm.h), and the
 * forward pass's step that adds a matmul input to them.
 */
#ifndef QLM_CALIB_H
#define QLM_CALIB_H

#include <stdint.h>

struct team_worker;

/* The matmul inputs of a layer, in the order forward() produces them. */
enum calib_site {
    CALIB_ATTN_IN,   /* rmsnorm(x, input_layernorm): read by q, k, v */
    CALIB_ATTN_OUT,  /* the attention output: read by o */
    CALIB_FFN_IN,    /* rmsnorm(x, post_attention_layernorm): read by gate, up */
    CALIB_FFN_MID,   /* silu(gate) * up: read by down */
    CALIB_SITES
};

/* The squares of one matmul input, summed over the rows added. */
struct calib_sum {
    int n;                   /* columns */
    uint64_t count;          /* rows added */
    double *sum_sq;          /* (n) sum over rows of x[c]^2, rows in token order */
};

struct calib_entry {         /* one linear weight, and the input it reads */
    char name[64];
    int sum;                 /* index into sums */
};

struct qlm_calib {
    int n_sums;              /* CALIB_SITES per layer, then the head's input */
    struct calib_sum *sums;  /* (n_sums) */
    int n_entries;           /* 7 per layer, then the head */
    struct calib_entry *entries;
    double *storage;         /* every sum_sq */
};

/* The sums of layer l's site, and of the head's input (the final norm). */
static inline struct calib_sum *calib_site(struct qlm_calib *c, int l, enum calib_site site)
{
    return &c->sums[l * CALIB_SITES + site];
}
static inline struct calib_sum *calib_head(struct qlm_calib *c)
{
    return &c->sums[c->n_sums - 1];
}

/* One phase of the forward pass: sum->sum_sq[c] += x[t][c]^2 for the nt
 * rows of x (nt, sum->n), each column summed by one thread in token order
 * (so the sums do not depend on the thread count), and count += nt. */
void calib_add(struct team_worker *w, struct calib_sum *sum, const float *x, int nt);

void calib_free(struct qlm_calib *c);

#endif
