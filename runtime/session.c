/*
 * session.c — a session over a loaded model: the KV cache, the RoPE tables,
 * the scratch of one batch and the thread team, and evaluation, which feeds
 * the forward pass (forward.c) batches of up to n_batch tokens.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "calib.h"
#include "forward.h"
#include "team.h"

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
    team_free(s->team);
    calib_free(s->calib);
    free(s);
}

/* Quantized weights already trade exactness for speed, and an f16 cache
 * halves attention's memory traffic (its error is far below q8's); a float
 * model is a reference and keeps an exact f32 cache. */
static enum qlm_dtype default_kv_type(const struct qlm_hparams *hp)
{
    return qlm_dtype_is_quant(hp->wtype) ? QLM_F16 : QLM_F32;
}

/* A zeroed K and V cache of type t for n_ctx positions, both or neither. */
static bool kv_alloc(const struct qlm_hparams *hp, int n_ctx, enum qlm_dtype t, void **k,
                     void **v)
{
    size_t kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    *k = alloc3((size_t)hp->n_layers, (size_t)n_ctx, kv_dim, qlm_kv_elem_size(t), true);
    *v = alloc3((size_t)hp->n_layers, (size_t)n_ctx, kv_dim, qlm_kv_elem_size(t), true);
    if (*k && *v)
        return true;
    free(*k);
    free(*v);
    *k = *v = NULL;
    return false;
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

    s->kv_type = default_kv_type(hp);
    kv_alloc(hp, n_ctx, s->kv_type, &s->k_cache, &s->v_cache);
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
    s->scores = alloc3((size_t)s->n_threads, (size_t)n_ctx,
                       (size_t)(hp->n_heads / hp->n_kv_heads), sizeof(float), false);
    s->logits_cap = (size_t)hp->vocab_size;
    s->logits = alloc3(s->logits_cap, 1, 1, sizeof(float), true);
    if (!s->k_cache || !s->v_cache || !s->rope_cos || !s->rope_sin || !s->x || !s->h || !s->q ||
        !s->k || !s->v || !s->att || !s->gate || !s->up || !s->aq || !s->ad || !s->scores ||
        !s->logits || (s->n_threads > 1 &&
                        (s->team = team_new(s->n_threads, qlm_forward_phases(hp))) == NULL)) {
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

/* ---- evaluation ---------------------------------------------------------- */

int qlm_session_pos(const struct qlm_session *s) { return s->pos; }
int qlm_session_ctx(const struct qlm_session *s) { return s->n_ctx; }
int qlm_session_threads(const struct qlm_session *s) { return s->n_threads; }

enum qlm_dtype qlm_session_kv_type(const struct qlm_session *s) { return s->kv_type; }

enum qlm_err qlm_session_set_kv_type(struct qlm_session *s, enum qlm_dtype t,
                                     struct qlm_error *err)
{
    const struct qlm_hparams *hp = &s->m->hp;
    const char *path = s->m->file->path;
    if (t != QLM_F32 && t != QLM_F16)
        return qlm_error_set(err, QLM_E_INVALID, "%s: KV cache type %s: only f32 and f16 exist",
                             path, qlm_dtype_name(t));
    if (t == s->kv_type)
        return QLM_OK;
    if (s->pos != 0)
        return qlm_error_set(err, QLM_E_INVALID,
                             "%s: the KV cache type cannot change while the cache holds %d tokens",
                             path, s->pos);
    void *k, *v;
    if (!kv_alloc(hp, s->n_ctx, t, &k, &v))
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for a %s KV cache of %d positions",
                             path, qlm_dtype_name(t), s->n_ctx);
    free(s->k_cache);
    free(s->v_cache);
    s->k_cache = k;
    s->v_cache = v;
    s->kv_type = t;
    return QLM_OK;
}

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
