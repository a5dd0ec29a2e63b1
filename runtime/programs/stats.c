/* stats.c — see stats.h. */
#include <config.h>

#include <math.h>
#include <stdlib.h>

#include "stats.h"

double qlm_stats_log_softmax(const float *x, size_t n, double *out)
{
    double mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    double lse = mx + log(sum);
    for (size_t i = 0; i < n; i++)
        out[i] = (double)x[i] - lse;
    return lse;
}

double qlm_stats_nll(const float *x, size_t n, size_t target)
{
    double mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    return mx + log(sum) - (double)x[target];
}

double qlm_stats_kl(const double *logp, const double *logq, size_t n)
{
    double kl = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = exp(logp[i]);
        if (p > 0.0)
            kl += p * (logp[i] - logq[i]);
    }
    return kl > 0.0 ? kl : 0.0;
}

static double row_max(const float *x, size_t n)
{
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    return mx;
}

void qlm_stats_compare(const float *p, const float *q, size_t n, size_t target, double *scratch,
                       double *nll_p, double *nll_q, double *kl)
{
    double mp = row_max(p, n), mq = row_max(q, n);
    double sp = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = exp((double)p[i] - mp);
        scratch[i] = e;
        sp += e;
        sq += exp((double)q[i] - mq);
    }
    double lse_p = mp + log(sp), lse_q = mq + log(sq);
    double cross = 0.0; /* sum_i e^(p_i - mp) (p_i - q_i) */
    for (size_t i = 0; i < n; i++)
        cross += scratch[i] * ((double)p[i] - (double)q[i]);
    *nll_p = lse_p - (double)p[target];
    *nll_q = lse_q - (double)q[target];
    double k = cross / sp - lse_p + lse_q;
    *kl = k > 0.0 ? k : 0.0;
}

size_t qlm_stats_argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void qlm_stats_sort(double *x, size_t n)
{
    if (n > 1)
        qsort(x, n, sizeof *x, cmp_double);
}

double qlm_stats_percentile_sorted(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    if (p <= 0.0)
        return sorted[0];
    if (p >= 100.0)
        return sorted[n - 1];
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = rank - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

void qlm_stats_acc_add(struct qlm_stats_acc *a, double x)
{
    a->n++;
    double delta = x - a->mean;
    a->mean += delta / (double)a->n;
    a->m2 += delta * (x - a->mean);
}

double qlm_stats_acc_sd(const struct qlm_stats_acc *a)
{
    if (a->n < 2)
        return 0.0;
    double var = a->m2 / (double)(a->n - 1);
    return var > 0.0 ? sqrt(var) : 0.0;
}

double qlm_stats_acc_sem(const struct qlm_stats_acc *a)
{
    if (a->n < 2)
        return 0.0;
    return qlm_stats_acc_sd(a) / sqrt((double)a->n);
}

void qlm_stats_mean_sd(const double *x, size_t n, double *mean, double *sd)
{
    struct qlm_stats_acc a = {0, 0.0, 0.0};
    for (size_t i = 0; i < n; i++)
        qlm_stats_acc_add(&a, x[i]);
    *mean = a.mean;
    *sd = qlm_stats_acc_sd(&a);
}
