/*
 * forward.c — the session (KV cache, RoPE tables, scratch) and the forward
 * pass of a Qwen3/Qwen2/Llama dense decoder, batched over the tokens of one
 * call: every matrix is applied to all nt tokens at once, so each weight row
 * is read once per batch rather than once per token.
 *
 * Threads (OpenMP): matmuls split output rows in chunks handed out
 * dynamically; attention is parallel over (token, head).  Every output value
 * is computed by one thread with the same code whatever the thread count,
 * so results do not depend on it.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "forward.h"

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- session ------------------------------------------------------------ */

/* Physical cores: SMT siblings share one core's execution units, and the
 * matmuls are bound by memory bandwidth, so a second thread per core mostly
 * adds contention.  Linux: distinct (package, core) pairs among the online
 * CPUs in sysfs; macOS: hw.physicalcpu; else (or on any failure) the number
 * of online logical CPUs. */
static int physical_cores(void)
{
#if defined(__linux__)
    enum { MAX_CPU = 1024 };
    long seen[MAX_CPU];
    int n_seen = 0;
    for (int cpu = 0; cpu < MAX_CPU; cpu++) {
        char path[128];
        long core = -1, pkg = -1;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            break;
        if (fscanf(f, "%ld", &core) != 1)
            core = -1;
        fclose(f);
        snprintf(path, sizeof path,
                 "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        if ((f = fopen(path, "r")) != NULL) {
            if (fscanf(f, "%ld", &pkg) != 1)
                pkg = -1;
            fclose(f);
        }
        if (core < 0 || pkg < 0 || core >= (1L << 20) || pkg >= 1024)
            return 0;
        long key = pkg * (1L << 20) + core;
        bool dup = false;
        for (int i = 0; i < n_seen && !dup; i++)
            dup = seen[i] == key;
        if (!dup)
            seen[n_seen++] = key;
    }
    return n_seen;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.physicalcpu", &v, &len, NULL, 0) == 0 && v > 0)
        return v;
    return 0;
#else
    return 0;
#endif
}

static int default_threads(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    long n = physical_cores();
    if (online < 1)
        online = 1;
    if (n < 1 || n > online) /* offline CPUs still list a topology on some kernels */
        n = online;
    if (n > 256)
        n = 256;
    return (int)n;
}

/* a * b * c elements of size sz, or 0 on overflow. */
static size_t bytes3(size_t a, size_t b, size_t c, size_t sz)
{
    if (b != 0 && a > SIZE_MAX / b)
        return 0;
    a *= b;
    if (c != 0 && a > SIZE_MAX / c)
        return 0;
    a *= c;
    if (sz != 0 && a > SIZE_MAX / sz)
        return 0;
    return a * sz;
}

static void *alloc3(size_t a, size_t b, size_t c, size_t sz, bool zero)
{
    size_t n = bytes3(a, b, c, sz);
    if (n == 0)
        return NULL;
    /* calloc for the KV cache: untouched pages of a long context cost no RSS */
    return zero ? calloc(1, n) : malloc(n);
}

void qlm_session_free(struct qlm_session *s)
{
    if (s == NULL)
        return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->x);
    free(s->h);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->gate);
    free(s->up);
    free(s->aq);
    free(s->ad);
    free(s->scores);
    free(s->logits);
    free(s);
}

enum qlm_err qlm_session_new(struct qlm_session **out, const struct qlm_model *m, int n_ctx,
                             int n_threads, struct qlm_error *err)
{
    *out = NULL;
    const struct qlm_hparams *hp = &m->hp;
    const char *path = m->file->path;
    if (n_ctx <= 0)
        return qlm_error_set(err, QLM_E_INVALID, "%s: context size %d must be positive", path,
                             n_ctx);
    if (n_ctx > hp->max_pos)
        return qlm_error_set(err, QLM_E_RANGE,
                             "%s: context size %d exceeds the model's maximum of %d positions",
                             path, n_ctx, hp->max_pos);
    struct qlm_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    s->m = m;
    s->n_ctx = n_ctx;
    s->n_threads = n_threads > 0 ? (n_threads > 1024 ? 1024 : n_threads) : default_threads();
    s->n_batch = n_ctx < QLM_MAX_BATCH ? n_ctx : QLM_MAX_BATCH;

    size_t nb = (size_t)s->n_batch, half = (size_t)hp->head_dim / 2;
    size_t q_dim = (size_t)hp->n_heads * hp->head_dim, kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t max_in = (size_t)hp->hidden;
    if (q_dim > max_in)
        max_in = q_dim;
    if ((size_t)hp->ffn_hidden > max_in)
        max_in = (size_t)hp->ffn_hidden;

    s->k_cache = alloc3((size_t)hp->n_layers, (size_t)n_ctx, kv_dim, sizeof(float), true);
    s->v_cache = alloc3((size_t)hp->n_layers, (size_t)n_ctx, kv_dim, sizeof(float), true);
    s->rope_cos = alloc3((size_t)n_ctx, half, 1, sizeof(float), false);
    s->rope_sin = alloc3((size_t)n_ctx, half, 1, sizeof(float), false);
    s->x = alloc3(nb, (size_t)hp->hidden, 1, sizeof(float), false);
    s->h = alloc3(nb, (size_t)hp->hidden, 1, sizeof(float), false);
    s->q = alloc3(nb, q_dim, 1, sizeof(float), false);
    s->k = alloc3(nb, kv_dim, 1, sizeof(float), false);
    s->v = alloc3(nb, kv_dim, 1, sizeof(float), false);
    s->att = alloc3(nb, q_dim, 1, sizeof(float), false);
    s->gate = alloc3(nb, (size_t)hp->ffn_hidden, 1, sizeof(float), false);
    s->up = alloc3(nb, (size_t)hp->ffn_hidden, 1, sizeof(float), false);
    s->aq = alloc3(nb, max_in, 1, 1, false);
    s->ad = alloc3(nb, max_in, 1, sizeof(float), false);
    s->scores = alloc3((size_t)s->n_threads, (size_t)n_ctx, 1, sizeof(float), false);
    s->logits_cap = (size_t)hp->vocab_size;
    s->logits = alloc3(s->logits_cap, 1, 1, sizeof(float), true);
    if (!s->k_cache || !s->v_cache || !s->rope_cos || !s->rope_sin || !s->x || !s->h || !s->q ||
        !s->k || !s->v || !s->att || !s->gate || !s->up || !s->aq || !s->ad || !s->scores ||
        !s->logits) {
        qlm_session_free(s);
        return qlm_error_set(err, QLM_E_NOMEM,
                             "%s: out of memory for a session of %d positions", path, n_ctx);
    }

    /* RoPE: angle p * theta^(-2i/head_dim), in double, stored as f32. */
    for (size_t i = 0; i < half; i++) {
        double inv_freq = pow(hp->rope_theta, -2.0 * (double)i / (double)hp->head_dim);
        for (int p = 0; p < n_ctx; p++) {
            double a = (double)p * inv_freq;
            s->rope_cos[(size_t)p * half + i] = (float)cos(a);
            s->rope_sin[(size_t)p * half + i] = (float)sin(a);
        }
    }
    *out = s;
    return QLM_OK;
}

/* ---- building blocks ----------------------------------------------------- */
/* The functions below run inside the forward pass's one parallel region:
 * every thread calls each of them in the same order, and their orphaned
 * "omp for" loops share the work (each ends with a barrier).  Without
 * OpenMP, or with one thread, they are plain loops. */

/* y = x * rsqrt(mean(x^2) + eps) * w over n values (sum of squares in double). */
static void rmsnorm(float *y, const float *x, const float *w, int n, double eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

/* rmsnorm of nt rows of n values. */
static void rmsnorm_rows(float *y, const float *x, const float *w, int nt, int n, double eps)
{
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++)
        rmsnorm(y + (size_t)t * n, x + (size_t)t * n, w, n, eps);
}

/* NEOX rotation of one head: pairs (i, i + half). */
static void rope(float *v, const float *cs, const float *sn, int half)
{
    for (int i = 0; i < half; i++) {
        float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs[i] - x1 * sn[i];
        v[i + half] = x1 * cs[i] + x0 * sn[i];
    }
}

/* Activations of one matmul input, quantized lazily for the weight's group:
 * matrices sharing an input (q/k/v, gate/up) share one quantization.  Each
 * thread holds its own copy of this small struct; all copies take the same
 * decisions, and the buffers q/d are shared. */
static void acts_init(struct qlm_acts *a, struct qlm_session *s, const float *x, int nt, int n)
{
    a->nt = nt;
    a->n = n;
    a->group = 0;
    a->x = x;
    a->q = s->aq;
    a->d = s->ad;
    a->quantized = false;
}

static void acts_prepare(struct qlm_acts *a, const struct qlm_matrix *w)
{
    if (!qlm_type_ops(w->type)->int8_acts || (a->quantized && a->group == w->group))
        return;
    qlm_quantize_act_fn quantize = qlm_kernels_active()->quantize_act;
    int n = a->n, group = w->group, ng = n / group;
#pragma omp for schedule(static)
    for (int t = 0; t < a->nt; t++)
        quantize(a->x + (size_t)t * n, 1, n, group, a->q + (size_t)t * n, a->d + (size_t)t * ng);
    a->group = w->group;
    a->quantized = true;
}

/* Rows per work item for a matrix of `rows` rows: about a quarter of a
 * thread's share (a multiple of 16), so a slow thread's share is picked up
 * by the others. */
static int chunk_rows(int rows, int nth)
{
    if (nth == 1)
        return rows;
    int chunk = (rows + nth * 4 - 1) / (nth * 4);
    return (chunk + 15) / 16 * 16;
}

/* y_i (nt, ldy_i) = x W_i^T for n matrices sharing one input (q/k/v,
 * gate/up): their row chunks form one work-sharing loop, so the threads meet
 * at one barrier rather than n.  Matrices needing different activation
 * preparation (mixed quantization groups) run one after another. */
#define MAX_FUSED 4
static void matmul_n(struct qlm_session *s, int n, const struct qlm_matrix *const *w,
                     struct qlm_acts *a, float *const *y, const int *ldy)
{
    bool int8 = qlm_type_ops(w[0]->type)->int8_acts;
    for (int i = 1; i < n; i++)
        if (qlm_type_ops(w[i]->type)->int8_acts != int8 || (int8 && w[i]->group != w[0]->group)) {
            for (int j = 0; j < n; j++)
                matmul_n(s, 1, &w[j], a, &y[j], &ldy[j]);
            return;
        }
    acts_prepare(a, w[0]);
    int chunk[MAX_FUSED], first[MAX_FUSED + 1];
    first[0] = 0;
    for (int i = 0; i < n; i++) {
        chunk[i] = chunk_rows(w[i]->rows, s->n_threads);
        first[i + 1] = first[i] + (w[i]->rows + chunk[i] - 1) / chunk[i];
    }
    int total = first[n];
#pragma omp for schedule(dynamic, 1)
    for (int c = 0; c < total; c++) {
        int i = 0;
        while (c >= first[i + 1])
            i++;
        int rows = w[i]->rows, r0 = (c - first[i]) * chunk[i];
        int r1 = r0 + chunk[i] < rows ? r0 + chunk[i] : rows;
        qlm_type_ops(w[i]->type)->gemm(w[i], r0, r1, a, y[i], ldy[i]);
    }
}

/* y (nt, ldy) = x W^T, rows of W split among threads in chunks. */
static void matmul(struct qlm_session *s, const struct qlm_matrix *w, struct qlm_acts *a,
                   float *y, int ldy)
{
    matmul_n(s, 1, &w, a, &y, &ldy);
}

/* x += y over nt rows of n, then h = rmsnorm(x, w) when w is given: one
 * loop (and one barrier) for the residual and the next block's norm. */
static void add_rows(float *x, const float *y, float *h, const float *w, int nt, int n,
                     double eps)
{
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++) {
        float *xt = x + (size_t)t * n;
        for (int i = 0; i < n; i++)
            xt[i] += y[(size_t)t * n + i];
        if (w != NULL)
            rmsnorm(h + (size_t)t * n, xt, w, n, eps);
    }
}

/* Per token: biases, per-head q/k norm, RoPE at the token's position, then
 * k and v into the cache rows of positions p0 + t. */
static void qk_prepare(struct qlm_session *s, const struct qlm_layer *L, int l, int p0, int nt)
{
    const struct qlm_hparams *hp = &s->m->hp;
    int hd = hp->head_dim, half = hd / 2, q_dim = hp->n_heads * hd;
    int kv_dim = hp->n_kv_heads * hd;
    double eps = hp->rms_eps;
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++) {
        float *q = s->q + (size_t)t * q_dim, *k = s->k + (size_t)t * kv_dim;
        float *v = s->v + (size_t)t * kv_dim;
        const float *cs = s->rope_cos + (size_t)(p0 + t) * half;
        const float *sn = s->rope_sin + (size_t)(p0 + t) * half;
        for (int i = 0; L->bq && i < q_dim; i++)
            q[i] += L->bq[i];
        for (int i = 0; L->bk && i < kv_dim; i++)
            k[i] += L->bk[i];
        for (int i = 0; L->bv && i < kv_dim; i++)
            v[i] += L->bv[i];
        for (int h = 0; h < hp->n_heads; h++) {
            if (L->q_norm)
                rmsnorm(q + (size_t)h * hd, q + (size_t)h * hd, L->q_norm, hd, eps);
            rope(q + (size_t)h * hd, cs, sn, half);
        }
        for (int h = 0; h < hp->n_kv_heads; h++) {
            if (L->k_norm)
                rmsnorm(k + (size_t)h * hd, k + (size_t)h * hd, L->k_norm, hd, eps);
            rope(k + (size_t)h * hd, cs, sn, half);
        }
        size_t row = (size_t)l * s->n_ctx + (size_t)(p0 + t);
        memcpy(s->k_cache + row * kv_dim, k, (size_t)kv_dim * sizeof(float));
        memcpy(s->v_cache + row * kv_dim, v, (size_t)kv_dim * sizeof(float));
    }
}

/* Causal GQA attention for nt new tokens at positions p0.. over layer l's
 * cache, parallel over (token, head). */
static void attention(struct qlm_session *s, int l, int p0, int nt)
{
    const struct qlm_hparams *hp = &s->m->hp;
    int hd = hp->head_dim, nh = hp->n_heads, kv_dim = hp->n_kv_heads * hd;
    int q_dim = nh * hd, per_kv = nh / hp->n_kv_heads;
    const float *kc = s->k_cache + (size_t)l * s->n_ctx * kv_dim;
    const float *vc = s->v_cache + (size_t)l * s->n_ctx * kv_dim;
    float scale = (float)(1.0 / sqrt((double)hd));
    float *sc = s->scores + (size_t)thread_id() * s->n_ctx;
    int n_tasks = nt * nh;
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < n_tasks; task++) {
        int t = task / nh, h = task % nh, kvh = h / per_kv;
        int n_pos = p0 + t + 1; /* causal: positions 0 .. p0 + t */
        const float *q = s->q + (size_t)t * q_dim + (size_t)h * hd;
        float *out = s->att + (size_t)t * q_dim + (size_t)h * hd;
        float mx = -INFINITY;
        for (int p = 0; p < n_pos; p++) {
            const float *k = kc + (size_t)p * kv_dim + (size_t)kvh * hd;
            float dot = 0.0f;
            for (int i = 0; i < hd; i++)
                dot += q[i] * k[i];
            sc[p] = dot * scale;
            if (sc[p] > mx)
                mx = sc[p];
        }
        /* softmax, max subtracted so exp never overflows */
        double sum = 0.0;
        for (int p = 0; p < n_pos; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < hd; i++)
            out[i] = 0.0f;
        for (int p = 0; p < n_pos; p++) {
            const float *v = vc + (size_t)p * kv_dim + (size_t)kvh * hd;
            float wgt = sc[p] * inv;
            for (int i = 0; i < hd; i++)
                out[i] += wgt * v[i];
        }
    }
}

/* gate = silu(gate) * up over nt rows of n. */
static void swiglu(float *gate, const float *up, int nt, int n)
{
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < n; i++) {
            size_t j = (size_t)t * n + i;
            float g = gate[j];
            gate[j] = g / (1.0f + expf(-g)) * up[j];
        }
}

/* ---- the forward pass ---------------------------------------------------- */

/* What every thread of the region runs. */
static void forward_layers(struct qlm_session *s, int nt, float *logits, bool all)
{
    const struct qlm_model *m = s->m;
    const struct qlm_hparams *hp = &m->hp;
    int dim = hp->hidden, ffn = hp->ffn_hidden;
    int q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    int p0 = s->pos;
    double eps = hp->rms_eps;
    struct qlm_acts a;

    for (int l = 0; l < hp->n_layers; l++) {
        const struct qlm_layer *L = &m->layers[l];
        /* h = rmsnorm(x, input_layernorm) (later layers: fused with the
         * previous layer's last residual add) */
        if (l == 0)
            rmsnorm_rows(s->h, s->x, L->attn_norm, nt, dim, eps);
        /* q, k, v = Wq h, Wk h, Wv h: one quantized input */
        acts_init(&a, s, s->h, nt, dim);
        const struct qlm_matrix *wqkv[3] = { &L->wq, &L->wk, &L->wv };
        float *const yqkv[3] = { s->q, s->k, s->v };
        const int ldqkv[3] = { q_dim, kv_dim, kv_dim };
        matmul_n(s, 3, wqkv, &a, yqkv, ldqkv);
        /* (+ biases), per-head q/k norm, RoPE; k, v to the cache */
        qk_prepare(s, L, l, p0, nt);
        /* causal GQA attention over positions 0 .. p0 + t */
        attention(s, l, p0, nt);
        /* x += Wo concat(heads) */
        acts_init(&a, s, s->att, nt, q_dim);
        matmul(s, &L->wo, &a, s->h, dim);
        /* h = rmsnorm(x, post_attention_layernorm) */
        add_rows(s->x, s->h, s->h, L->ffn_norm, nt, dim, eps);
        /* x += Wdown(silu(Wgate h) * (Wup h)): gate/up share one input */
        acts_init(&a, s, s->h, nt, dim);
        const struct qlm_matrix *wgu[2] = { &L->wgate, &L->wup };
        float *const ygu[2] = { s->gate, s->up };
        const int ldgu[2] = { ffn, ffn };
        matmul_n(s, 2, wgu, &a, ygu, ldgu);
        swiglu(s->gate, s->up, nt, ffn);
        acts_init(&a, s, s->gate, nt, ffn);
        matmul(s, &L->wdown, &a, s->h, dim);
        add_rows(s->x, s->h, s->h, l + 1 < hp->n_layers ? m->layers[l + 1].attn_norm : NULL, nt,
                 dim, eps);
    }
    if (logits == NULL)
        return;
    /* logits = Wlm rmsnorm(x, norm), for every token or the last one */
    int first = all ? 0 : nt - 1, nl = nt - first;
    rmsnorm_rows(s->h, s->x + (size_t)first * dim, m->out_norm, nl, dim, eps);
    acts_init(&a, s, s->h, nl, dim);
    matmul(s, &m->head, &a, logits, hp->vocab_size);
}

void qlm_forward_batch(struct qlm_session *s, const int32_t *tokens, int nt, float *logits,
                       bool all)
{
    const struct qlm_matrix *e = &s->m->embed;
    /* x = embed[token], one dequantized row per token */
    for (int t = 0; t < nt; t++)
        qlm_dequantize_row(e->type, e->data, (uint64_t)e->rows, (uint64_t)e->cols,
                           (uint32_t)e->group, (uint64_t)tokens[t], s->x + (size_t)t * e->cols);
    /* One parallel region for the whole batch: threads meet at the barriers
     * of the work-sharing loops instead of being forked per matmul. */
#pragma omp parallel num_threads(s->n_threads) if (s->n_threads > 1)
    forward_layers(s, nt, logits, all);
    s->pos += nt;
}

/* ---- evaluation ---------------------------------------------------------- */

int qlm_session_pos(const struct qlm_session *s) { return s->pos; }
int qlm_session_ctx(const struct qlm_session *s) { return s->n_ctx; }
int qlm_session_threads(const struct qlm_session *s) { return s->n_threads; }

void qlm_session_rewind(struct qlm_session *s, int pos)
{
    if (pos < 0)
        pos = 0;
    if (pos < s->pos)
        s->pos = pos;
    s->n_logits = 0;
}

enum qlm_err qlm_eval(struct qlm_session *s, const int32_t *tokens, int n, bool all_logits,
                      struct qlm_error *err)
{
    const struct qlm_hparams *hp = &s->m->hp;
    const char *path = s->m->file->path;
    if (n <= 0 || tokens == NULL)
        return qlm_error_set(err, QLM_E_INVALID, "%s: no tokens to evaluate", path);
    if (n > s->n_ctx - s->pos)
        return qlm_error_set(err, QLM_E_RANGE,
                             "%s: context full: %d tokens at position %d exceed the context "
                             "of %d", path, n, s->pos, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->vocab_size)
            return qlm_error_set(err, QLM_E_RANGE,
                                 "%s: token id %ld at index %d out of range [0, %d)", path,
                                 (long)tokens[i], i, hp->vocab_size);
    size_t vocab = (size_t)hp->vocab_size;
    size_t need = all_logits ? (size_t)n * vocab : vocab;
    if (need > s->logits_cap) {
        if (bytes3((size_t)n, vocab, 1, sizeof(float)) == 0)
            return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for logits", path);
        float *nl = realloc(s->logits, need * sizeof(float));
        if (nl == NULL)
            return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for %d x %zu logits",
                                 path, n, vocab);
        s->logits = nl;
        s->logits_cap = need;
    }
    for (int done = 0; done < n;) {
        int nt = n - done < s->n_batch ? n - done : s->n_batch;
        bool last = done + nt == n;
        float *out = all_logits ? s->logits + (size_t)done * vocab : (last ? s->logits : NULL);
        qlm_forward_batch(s, tokens + done, nt, out, all_logits);
        done += nt;
    }
    s->n_logits = all_logits ? n : 1;
    return QLM_OK;
}

const float *qlm_logits(const struct qlm_session *s)
{
    return s->logits;
}
