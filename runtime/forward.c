/*
 * forward.c — the forward pass of a Qwen3/Qwen2/Llama dense decoder over a
 * session (session.c), batched over the tokens of one call: every matrix is
 * applied to all nt tokens at once, so each weight row is read once per
 * batch rather than once per token.  forward() at the end is the model,
 * step by step; the functions before it are its steps.
 *
 * Threads: the session's team (team.h) runs the pass as a sequence of
 * phases (a norm, a matmul, attention, ...) whose items (row chunks, tokens,
 * (token, head) pairs) its threads share out.  Every output value is
 * computed by one thread with the same code whatever the thread count, so
 * results do not depend on it.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "calib.h"
#include "forward.h"
#include "team.h"

/* ---- building blocks ----------------------------------------------------- */
/* The functions below run on every thread of the team, in the same order;
 * each is one phase (or a few): its items are shared out with team_claim()
 * and team_phase_end() waits until all are done.  On a thread alone they
 * are plain loops. */

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
 * decisions, and the buffers q/d are shared.  The phase producing the input
 * may quantize it row by row for the first matrix that reads it
 * (acts_expect / acts_row / acts_produced), saving a phase. */
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

/* The group the producer of a's input should quantize for (for matrix w),
 * or 0 when w reads floats. */
static int acts_expect(const struct qlm_acts *a, const struct qlm_matrix *w)
{
    (void)a;
    return qlm_type_ops(w->type)->int8_acts ? w->group : 0;
}

/* Quantize columns [c0, c0 + len) of row t (c0 and len multiples of group). */
static void acts_row(struct qlm_acts *a, int group, int t, int c0, int len)
{
    if (group == 0)
        return;
    int n = a->n, ng = n / group;
    qlm_kernels_active()->quantize_act(a->x + (size_t)t * n + c0, 1, len, group,
                                       a->q + (size_t)t * n + c0,
                                       a->d + (size_t)t * ng + c0 / group);
}

static void acts_produced(struct qlm_acts *a, int group)
{
    if (group != 0) {
        a->group = group;
        a->quantized = true;
    }
}

static void acts_prepare(struct team_worker *w, struct qlm_acts *a, const struct qlm_matrix *m)
{
    if (!qlm_type_ops(m->type)->int8_acts || (a->quantized && a->group == m->group))
        return;
    int t;
    while (team_claim(w, a->nt, &t))
        acts_row(a, m->group, t, 0, a->n);
    team_phase_end(w, a->nt);
    acts_produced(a, m->group);
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
 * gate/up): their row chunks form one phase.  Matrices needing different
 * activation preparation (mixed quantization groups) run one after
 * another. */
#define MAX_FUSED 4
static void matmul_n(struct qlm_session *s, struct team_worker *w, int n,
                     const struct qlm_matrix *const *m, struct qlm_acts *a, float *const *y,
                     const int *ldy)
{
    bool int8 = qlm_type_ops(m[0]->type)->int8_acts;
    for (int i = 1; i < n; i++)
        if (qlm_type_ops(m[i]->type)->int8_acts != int8 || (int8 && m[i]->group != m[0]->group)) {
            for (int j = 0; j < n; j++)
                matmul_n(s, w, 1, &m[j], a, &y[j], &ldy[j]);
            return;
        }
    acts_prepare(w, a, m[0]);
    int chunk[MAX_FUSED], first[MAX_FUSED + 1];
    first[0] = 0;
    for (int i = 0; i < n; i++) {
        chunk[i] = chunk_rows(m[i]->rows, s->n_threads);
        first[i + 1] = first[i] + (m[i]->rows + chunk[i] - 1) / chunk[i];
    }
    int total = first[n], c;
    while (team_claim(w, total, &c)) {
        int i = 0;
        while (c >= first[i + 1])
            i++;
        int rows = m[i]->rows, r0 = (c - first[i]) * chunk[i];
        int r1 = r0 + chunk[i] < rows ? r0 + chunk[i] : rows;
        qlm_type_ops(m[i]->type)->gemm(m[i], r0, r1, a, y[i], ldy[i]);
    }
    team_phase_end(w, total);
}

/* y (nt, ldy) = x W^T, rows of W split among threads in chunks. */
static void matmul(struct qlm_session *s, struct team_worker *w, const struct qlm_matrix *m,
                   struct qlm_acts *a, float *y, int ldy)
{
    matmul_n(s, w, 1, &m, a, &y, &ldy);
}

/* x += y (when y is given) over nt rows of n, then h = rmsnorm(x, nw) when
 * nw is given, quantized for matrix next (the first reader of h, through
 * acts na): one phase for the residual, the next block's norm and its
 * input's quantization. */
static void add_norm_rows(struct team_worker *w, float *x, const float *y, float *h,
                          const float *nw, int nt, int n, double eps, struct qlm_acts *na,
                          const struct qlm_matrix *next)
{
    int group = nw != NULL && next != NULL ? acts_expect(na, next) : 0, t;
    while (team_claim(w, nt, &t)) {
        float *xt = x + (size_t)t * n;
        for (int i = 0; y != NULL && i < n; i++)
            xt[i] += y[(size_t)t * n + i];
        if (nw != NULL) {
            rmsnorm(h + (size_t)t * n, xt, nw, n, eps);
            acts_row(na, group, t, 0, n);
        }
    }
    team_phase_end(w, nt);
    acts_produced(na, group);
}

/* Per token: biases (when the model has them), per-head q/k norm (when it
 * has them), RoPE at the token's position, then k and v into the cache rows
 * of positions p0 + t. */
static void qk_prepare(struct qlm_session *s, struct team_worker *w, const struct qlm_layer *L,
                       int l, int p0, int nt)
{
    const struct qlm_hparams *hp = &s->m->hp;
    int hd = hp->head_dim, half = hd / 2, q_dim = hp->n_heads * hd;
    int kv_dim = hp->n_kv_heads * hd;
    double eps = hp->rms_eps;
    int t;
    while (team_claim(w, nt, &t)) {
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
        for (int h = 0; h < hp->n_kv_heads; h++) {
            size_t row = ((size_t)l * hp->n_kv_heads + (size_t)h) * s->n_ctx + (size_t)(p0 + t);
            const float *kh = k + (size_t)h * hd, *vh = v + (size_t)h * hd;
            if (s->kv_type == QLM_F16) {
                uint16_t *kd = (uint16_t *)s->k_cache + row * hd;
                uint16_t *vd = (uint16_t *)s->v_cache + row * hd;
                for (int i = 0; i < hd; i++) {
                    kd[i] = qlm_f32_to_f16(kh[i]);
                    vd[i] = qlm_f32_to_f16(vh[i]);
                }
            } else {
                memcpy((float *)s->k_cache + row * hd, kh, (size_t)hd * sizeof(float));
                memcpy((float *)s->v_cache + row * hd, vh, (size_t)hd * sizeof(float));
            }
        }
    }
    team_phase_end(w, nt);
}

/* Causal GQA attention for nt new tokens at positions p0.. over layer l's
 * cache, parallel over (token, kv head).  The cache is head-major, so the
 * scores of a kv head's query heads against its keys are one small f32 GEMM
 * (positions x head_dim times per_kv query rows), and the weighted sum of
 * its value rows the kernels' wsum_f32.  Each head's output is
 * quantized for matrix next (Wo, through acts na) when its groups do not
 * straddle heads.  A token's result never depends on the batch around it. */
static void attention(struct qlm_session *s, struct team_worker *w, int l, int p0, int nt,
                      struct qlm_acts *na, const struct qlm_matrix *next)
{
    const struct qlm_hparams *hp = &s->m->hp;
    int hd = hp->head_dim, nh = hp->n_heads, nkv = hp->n_kv_heads;
    int q_dim = nh * hd, per_kv = nh / nkv, n_ctx = s->n_ctx;
    const struct qlm_isa_kernels *kern = qlm_kernels_active();
    bool f16 = s->kv_type == QLM_F16;
    size_t esz = qlm_kv_elem_size(s->kv_type), head_bytes = (size_t)n_ctx * hd * esz;
    const char *kc = (const char *)s->k_cache + (size_t)l * nkv * head_bytes;
    const char *vc = (const char *)s->v_cache + (size_t)l * nkv * head_bytes;
    float scale = (float)(1.0 / sqrt((double)hd));
    float *sc = s->scores + (size_t)team_worker_id(w) * per_kv * n_ctx;
    qlm_gemm_f_fn scores = f16 ? kern->gemm_f16 : kern->gemm_f32;
    int group = acts_expect(na, next);
    if (group != 0 && hd % group != 0)
        group = 0;
    int n_tasks = nt * nkv, task;
    while (team_claim(w, n_tasks, &task)) {
        int t = task / nkv, kvh = task % nkv;
        int n_pos = p0 + t + 1; /* causal: positions 0 .. p0 + t */
        const void *kh = kc + (size_t)kvh * head_bytes, *vh = vc + (size_t)kvh * head_bytes;
        const float *q = s->q + (size_t)t * q_dim + (size_t)kvh * per_kv * hd;
        scores(hd, kh, 0, n_pos, q, per_kv, sc, n_ctx);
        for (int j = 0; j < per_kv; j++) {
            float *sj = sc + (size_t)j * n_ctx;
            kern->softmax_f32(sj, n_pos, scale);
            int h = kvh * per_kv + j;
            float *out = s->att + (size_t)t * q_dim + (size_t)h * hd;
            if (f16)
                kern->wsum_f16(hd, sj, vh, n_pos, out);
            else
                kern->wsum_f32(hd, sj, vh, n_pos, out);
            acts_row(na, group, t, h * hd, hd);
        }
    }
    team_phase_end(w, n_tasks);
    acts_produced(na, group);
}

/* gate = silu(gate) * up over nt rows of n, quantized for matrix next
 * (Wdown, through acts na). */
static void swiglu(struct team_worker *w, float *gate, const float *up, int nt, int n,
                   struct qlm_acts *na, const struct qlm_matrix *next)
{
    int group = acts_expect(na, next), t;
    qlm_silu_mul_fn silu_mul = qlm_kernels_active()->silu_mul_f32;
    while (team_claim(w, nt, &t)) {
        silu_mul(gate + (size_t)t * n, up + (size_t)t * n, n);
        acts_row(na, group, t, 0, n);
    }
    team_phase_end(w, nt);
    acts_produced(na, group);
}

/* ---- the forward pass ---------------------------------------------------- */

/* One batch: nt tokens at positions p0 .., their logits to logits (all of
 * them, or the last token's) unless NULL; each matmul's input added to the
 * statistics cal unless NULL. */
struct forward_job {
    struct qlm_session *s;
    int nt, p0;
    bool all;
    float *logits;
    struct qlm_calib *cal;
};

/* The decoder on one batch, run by every thread of the team.  x (nt, dim)
 * is the residual stream; each block's output goes to h and is added to x
 * in the same phase that norms x for the next block, and every matmul input
 * is quantized for its weights by the step that produces it.  When the
 * session collects statistics, each input is added to them before its
 * matmul (one branch per input otherwise). */
static void forward(const void *arg, struct team_worker *w)
{
    const struct forward_job *job = arg;
    struct qlm_session *s = job->s;
    const struct qlm_model *m = s->m;
    const struct qlm_hparams *hp = &m->hp;
    int dim = hp->hidden, ffn = hp->ffn_hidden, nt = job->nt, p0 = job->p0;
    int q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    double eps = hp->rms_eps;
    struct qlm_acts in, mid; /* a matmul's input (h, att, gate); the MLP's h (gate, up) */
    struct qlm_calib *cal = job->cal;

    for (int l = 0; l < hp->n_layers; l++) {
        const struct qlm_layer *L = &m->layers[l];
        const struct qlm_layer *next = l + 1 < hp->n_layers ? &m->layers[l + 1] : NULL;
        /* h (nt, dim) = rmsnorm(x, input_layernorm), for Wq; after layer 0 the last step */
        if (l == 0) {
            acts_init(&in, s, s->h, nt, dim);
            add_norm_rows(w, s->x, NULL, s->h, L->attn_norm, nt, dim, eps, &in, &L->wq);
        }
        if (cal)
            calib_add(w, calib_site(cal, l, CALIB_ATTN_IN), s->h, nt);
        /* q (nt, n_heads*head_dim), k, v (nt, n_kv*head_dim) = h Wq^T, h Wk^T, h Wv^T */
        const struct qlm_matrix *wqkv[3] = { &L->wq, &L->wk, &L->wv };
        float *const qkv[3] = { s->q, s->k, s->v };
        const int ld_qkv[3] = { q_dim, kv_dim, kv_dim };
        matmul_n(s, w, 3, wqkv, &in, qkv, ld_qkv);
        /* q, k, v += biases; q, k = rope(rmsnorm(each head)) at p0 + t; k, v to the cache */
        qk_prepare(s, w, L, l, p0, nt);
        /* att (nt, n_heads*head_dim) = per head softmax(q K^T / sqrt(head_dim)) V, causal */
        acts_init(&in, s, s->att, nt, q_dim);
        attention(s, w, l, p0, nt, &in, &L->wo);
        if (cal)
            calib_add(w, calib_site(cal, l, CALIB_ATTN_OUT), s->att, nt);
        /* h (nt, dim) = att Wo^T */
        matmul(s, w, &L->wo, &in, s->h, dim);
        /* x += h; h (nt, dim) = rmsnorm(x, post_attention_layernorm), for Wgate */
        acts_init(&mid, s, s->h, nt, dim);
        add_norm_rows(w, s->x, s->h, s->h, L->ffn_norm, nt, dim, eps, &mid, &L->wgate);
        if (cal)
            calib_add(w, calib_site(cal, l, CALIB_FFN_IN), s->h, nt);
        /* gate, up (nt, ffn) = h Wgate^T, h Wup^T */
        const struct qlm_matrix *wgu[2] = { &L->wgate, &L->wup };
        float *const gu[2] = { s->gate, s->up };
        const int ld_gu[2] = { ffn, ffn };
        matmul_n(s, w, 2, wgu, &mid, gu, ld_gu);
        /* gate (nt, ffn) = silu(gate) * up */
        acts_init(&in, s, s->gate, nt, ffn);
        swiglu(w, s->gate, s->up, nt, ffn, &in, &L->wdown);
        if (cal)
            calib_add(w, calib_site(cal, l, CALIB_FFN_MID), s->gate, nt);
        /* h (nt, dim) = gate Wdown^T */
        matmul(s, w, &L->wdown, &in, s->h, dim);
        /* x += h; h (nt, dim) = rmsnorm(x, the next layer's input_layernorm), for its Wq */
        acts_init(&in, s, s->h, nt, dim);
        add_norm_rows(w, s->x, s->h, s->h, next ? next->attn_norm : NULL, nt, dim, eps, &in,
                      next ? &next->wq : NULL);
    }
    if (job->logits == NULL)
        return;
    /* logits (nl, vocab) = rmsnorm(x, norm) Wlm^T, for every token or the last one */
    int first = job->all ? 0 : nt - 1, nl = nt - first;
    acts_init(&in, s, s->h, nl, dim);
    add_norm_rows(w, s->x + (size_t)first * dim, NULL, s->h, m->out_norm, nl, dim, eps, &in,
                  &m->head);
    if (cal)
        calib_add(w, calib_head(cal), s->h, nl);
    matmul(s, w, &m->head, &in, job->logits, hp->vocab_size);
}

/* Per layer at most 24 phases: 20 when q/k/v and gate/up each split into
 * (prepare, matmul) per matrix, and 4 more while collecting statistics. */
int qlm_forward_phases(const struct qlm_hparams *hp)
{
    return hp->n_layers * 24 + 8;
}

void qlm_forward_batch(struct qlm_session *s, const int32_t *tokens, int nt, float *logits,
                       bool all)
{
    const struct qlm_matrix *e = &s->m->embed;
    /* x (nt, dim) = embed[tokens], one dequantized row per token */
    for (int t = 0; t < nt; t++)
        qlm_dequantize_row(e->type, e->data, (uint64_t)e->rows, (uint64_t)e->cols,
                           (uint32_t)e->group, (uint64_t)tokens[t], s->x + (size_t)t * e->cols);
    struct forward_job job = { .s = s, .nt = nt, .p0 = s->pos, .all = all, .logits = logits,
                               .cal = s->collect ? s->calib : NULL };
    team_run(s->team, forward, &job, sizeof job);
    s->pos += nt;
}
