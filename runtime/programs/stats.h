/*
 * stats.h — the statistics qlm-ppl and qlm-bench report: log-softmax and
 * negative log-likelihood in double, KL divergence, argmax, percentiles and a
 * running mean / standard deviation.  Internal to the programs (not part of
 * libqlm's public API).
 */
#ifndef QLM_STATS_H
#define QLM_STATS_H

#include <stddef.h>
#include <stdint.h>

/* out[i] = x[i] - logsumexp(x), computed in double with the max subtracted
 * first; returns logsumexp(x).  n >= 1.  A non-finite x makes the result
 * non-finite (the caller checks). */
double qlm_stats_log_softmax(const float *x, size_t n, double *out);

/* -log softmax(x)[target] without storing the distribution. */
double qlm_stats_nll(const float *x, size_t n, size_t target);

/* KL(P || Q) = sum_i p_i (log p_i - log q_i) from log-probabilities; terms with
 * p_i == 0 contribute 0.  Clamped at 0 (rounding can make it -1e-17). */
double qlm_stats_kl(const double *logp, const double *logq, size_t n);

/* Both models' figures at one position from their logits, in two passes
 * over each row and 2n exp() calls (the hot loop of qlm-ppl --ref):
 * nll_p = -log softmax(p)[target], nll_q likewise, and
 * kl = KL(softmax(p) || softmax(q)) = sum_i P_i (p_i - q_i) - lse(p) + lse(q)
 * (P sums to 1).  Identical rows give exactly 0.  scratch: n doubles. */
void qlm_stats_compare(const float *p, const float *q, size_t n, size_t target, double *scratch,
                       double *nll_p, double *nll_q, double *kl);

/* Index of the largest value (the first one on ties). n >= 1. */
size_t qlm_stats_argmax(const float *x, size_t n);

/* Sort ascending (NaN-free input). */
void qlm_stats_sort(double *x, size_t n);

/* p-th percentile (p in [0, 100]) of an ascending array, interpolating
 * linearly between closest ranks (numpy's default): rank = p/100 * (n-1).
 * n == 0 gives NaN. */
double qlm_stats_percentile_sorted(const double *sorted, size_t n, double p);

/* Running mean and variance (Welford). */
struct qlm_stats_acc {
    uint64_t n;
    double mean, m2;
};

void qlm_stats_acc_add(struct qlm_stats_acc *a, double x);
/* Sample standard deviation (n - 1 in the denominator); 0 when n < 2. */
double qlm_stats_acc_sd(const struct qlm_stats_acc *a);
/* Standard error of the mean, sd / sqrt(n); 0 when n < 2. */
double qlm_stats_acc_sem(const struct qlm_stats_acc *a);

/* Mean and sample standard deviation of n values (sd 0 when n < 2). */
void qlm_stats_mean_sd(const double *x, size_t n, double *mean, double *sd);

#endif
