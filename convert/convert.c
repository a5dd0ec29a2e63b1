/*
 * convert.c — the conversion driver.  Reads config.json, opens the
 * safetensors, builds the plan (policy.c), imports the tokenizer, declares
 * every tensor and then streams them one row block at a time:
 *
 *   source rows (BF16/F16/F32) -> f32 block -> NaN/Inf check -> output
 *   encoding (f32/bf16/f16, or q8/q4 quants + f16 scales) -> writer
 *
 * and drops each block's source pages as it goes, so peak memory is a few
 * row blocks plus one tensor's scales, whatever the model's size.
 */
#include "config.h"

#include "convert.h"
#include "hf_config.h"
#include "hf_tokenizer.h"
#include "policy.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BLOCK_BYTES ((uint64_t)16 << 20) /* f32 bytes per row block */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < 1024 ? n : 1024) : 1;
}

/* Forward the writer's last error into err. */
static enum qlm_err werr(struct qlm_writer *w, enum qlm_err rc, struct qlm_error *err)
{
    const struct qlm_error *we = qlm_writer_error(w);
    if (we && we->code != QLM_OK)
        return qlm_error_set(err, we->code, "%s", we->msg);
    return qlm_error_set(err, rc, "writing failed: %s", qlm_strerror(rc));
}

#define WTRY(expr)                                                             \
    do {                                                                       \
        enum qlm_err wtry_rc_ = (expr);                                        \
        if (wtry_rc_ != QLM_OK)                                                \
            return werr(w, wtry_rc_, err);                                     \
    } while (0)

/* Largest magnitude the output encoding can hold (the clamp for +-inf). */
static float finite_max(enum qlm_dtype t)
{
    switch (t) {
    case QLM_BF16: return 3.38953139e38f;      /* 0x7f7f */
    case QLM_F16: return 65504.0f;
    case QLM_Q8: return 65504.0f * 127.0f;     /* the f16 scale's limit */
    case QLM_Q4: return 65504.0f * 7.0f;
    default: return FLT_MAX;
    }
}

struct job {
    const struct qlm_convert_opts *o;
    const struct qlm_plan *plan;
    struct qlm_writer *w;
    int nt;
    uint64_t done, total;   /* source bytes, for the progress callback */
    size_t index;
    uint64_t n_fixed;
    float *fbuf;            /* block of f32 rows */
    void *obuf;             /* block of encoded rows */
    size_t fcap, ocap;
};

static enum qlm_err grow(void **p, size_t *cap, size_t need, struct qlm_error *err)
{
    if (need <= *cap)
        return QLM_OK;
    void *np = realloc(*p, need);
    if (!np)
        return qlm_error_set(err, QLM_E_NOMEM, "out of memory (%zu bytes)", need);
    *p = np;
    *cap = need;
    return QLM_OK;
}

static const char *src_file(const struct qlm_convert_opts *o, const struct qlm_st_tensor *t,
                            const struct qlm_st_model *m)
{
    return (t->shard >= 0 && t->shard < m->n_shards) ? m->shard_paths[t->shard] : o->model_dir;
}

/* What one tensor's rows are encoded to. */
struct enc {
    enum qlm_dtype t;
    uint64_t cols, out_row;   /* encoded bytes per row (quants only for q8/q4) */
    uint32_t group;
    uint64_t n_groups;        /* scales per row */
};

/* Encode one f32 row into y (and its scales into d for q8/q4). */
static void encode_row(const struct enc *e, const float *x, unsigned char *y, uint16_t *d)
{
    switch (e->t) {
    case QLM_F32: memcpy(y, x, (size_t)e->cols * 4); break;
    case QLM_F16:
        for (uint64_t c = 0; c < e->cols; c++) {
            uint16_t h = qlm_f32_to_f16(x[c]);
            memcpy(y + 2 * c, &h, 2);
        }
        break;
    case QLM_BF16:
        for (uint64_t c = 0; c < e->cols; c++) {
            uint16_t h = qlm_f32_to_bf16(x[c]);
            memcpy(y + 2 * c, &h, 2);
        }
        break;
    case QLM_Q8: qlm_quantize_row_q8(x, (size_t)e->cols, e->group, (int8_t *)y, d); break;
    case QLM_Q4: qlm_quantize_row_q4(x, (size_t)e->cols, e->group, y, d); break;
    default: break;
    }
}

static bool row_finite(const float *x, uint64_t n)
{
    for (uint64_t c = 0; c < n; c++)
        if (!isfinite(x[c]))
            return false;
    return true;
}

/* Rows [r0, r0 + nr) of the item: widen to f32, check, encode into j->obuf
 * (row i's scales into scales + i * n_groups).  One parallel loop with dynamic
 * chunks: on a busy machine a descheduled thread's rows go to the others
 * instead of holding everyone at a barrier. */
static enum qlm_err encode_block(struct job *j, const struct qlm_st_model *m,
                                 const struct qlm_plan_item *it, const struct enc *e,
                                 uint64_t r0, uint64_t nr, uint16_t *scales,
                                 struct qlm_error *err)
{
    const uint64_t cols = e->cols;
    float *fb = j->fbuf;
    unsigned char *ob = j->obuf;
    int64_t bad = INT64_MAX;
    int nt = j->nt;
    int64_t chunk = (int64_t)(65536 / cols) + 1;
    (void)nt;
    (void)chunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic, chunk) reduction(min : bad)
    for (int64_t i = 0; i < (int64_t)nr; i++) {
        float *x = fb + (uint64_t)i * cols;
        qlm_st_to_f32(it->src, (r0 + (uint64_t)i) * cols, cols, x);
        if (!row_finite(x, cols)) {
            bad = i < bad ? i : bad;
            continue;
        }
        encode_row(e, x, ob + (uint64_t)i * e->out_row,
                   scales ? scales + (uint64_t)i * e->n_groups : NULL);
    }
    if (bad == INT64_MAX)
        return QLM_OK;
    if (!j->o->allow_nonfinite) {
        const float *x = fb + (uint64_t)bad * cols;
        bool nan = false;
        for (uint64_t c = 0; c < cols && !nan; c++)
            nan = isnan(x[c]);
        return qlm_error_set(err, QLM_E_NONFINITE, "%s: tensor '%s' has %s at row %llu",
                             src_file(j->o, it->src, m), it->name, nan ? "NaN" : "Inf",
                             (unsigned long long)(r0 + (uint64_t)bad));
    }
    /* --allow-nonfinite: NaN -> 0, +-Inf -> the largest magnitude the
     * output holds; the rows so fixed are encoded here (rare path). */
    const float lim = finite_max(e->t);
    uint64_t fixed = 0;
    for (uint64_t i = (uint64_t)bad; i < nr; i++) {
        float *x = fb + i * cols;
        if (row_finite(x, cols))
            continue;
        for (uint64_t c = 0; c < cols; c++) {
            if (isnan(x[c])) {
                x[c] = 0.0f;
                fixed++;
            } else if (isinf(x[c])) {
                x[c] = x[c] > 0 ? lim : -lim;
                fixed++;
            }
        }
        encode_row(e, x, ob + i * e->out_row, scales ? scales + i * e->n_groups : NULL);
    }
    j->n_fixed += fixed;
    if (j->o->warn) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "%s: tensor '%s': replaced %llu non-finite values from row %llu "
                 "(NaN -> 0, Inf -> +-%g)",
                 src_file(j->o, it->src, m), it->name, (unsigned long long)fixed,
                 (unsigned long long)(r0 + (uint64_t)bad), (double)lim);
        j->o->warn(msg, j->o->ctx);
    }
    return QLM_OK;
}

static void progress(struct job *j, uint64_t add)
{
    j->done += add;
    if (j->o->progress)
        j->o->progress(j->index, j->plan->n, j->done, j->total, j->o->ctx);
}

static enum qlm_err write_tensor(struct job *j, const struct qlm_st_model *m,
                                 const struct qlm_plan_item *it, struct qlm_error *err)
{
    struct qlm_writer *w = j->w;
    const uint64_t rows = it->rows, cols = it->cols;
    const bool quant = qlm_dtype_is_quant(it->dtype);
    const uint64_t src_row = it->src->size / (rows ? rows : 1);
    struct enc e = {.t = it->dtype, .cols = cols, .group = it->group,
                    .n_groups = quant ? cols / it->group : 0};
    switch (it->dtype) {
    case QLM_F32: e.out_row = cols * 4; break;
    case QLM_F16:
    case QLM_BF16: e.out_row = cols * 2; break;
    case QLM_Q8: e.out_row = cols; break;
    case QLM_Q4: e.out_row = cols / 2; break;
    default: return qlm_error_set(err, QLM_E_INVALID, "tensor '%s': bad output type", it->name);
    }
    uint64_t block = BLOCK_BYTES / (cols * 4);
    if (quant) /* whole 8-row blocks of tiles per write */
        block -= block % QLM_QBLOCK_ROWS;
    if (block == 0)
        block = quant ? QLM_QBLOCK_ROWS : 1;
    if (block > rows)
        block = rows;
    QLM_TRY(grow((void **)&j->fbuf, &j->fcap, (size_t)(block * cols * 4), err));
    QLM_TRY(grow(&j->obuf, &j->ocap, (size_t)(block * e.out_row), err));

    /* q8/q4: rows are encoded row-major with their scales, then interleaved
     * into the file's 8-row blocks (qlm_quant_pack_block). */
    uint16_t *scales = NULL;
    unsigned char *packed = NULL;
    uint64_t qblock = quant ? qlm_quant_block_bytes(it->dtype, cols, it->group) : 0;
    if (quant) {
        scales = malloc((size_t)(block * e.n_groups * 2));
        packed = malloc((size_t)((block + QLM_QBLOCK_ROWS - 1) / QLM_QBLOCK_ROWS * qblock));
        if (!scales || !packed) {
            free(scales);
            free(packed);
            return qlm_error_set(err, QLM_E_NOMEM, "tensor '%s': out of memory for scales",
                                 it->name);
        }
    }
    enum qlm_err rc = QLM_OK;
    uint64_t written = 0;
    for (uint64_t r0 = 0; r0 < rows && rc == QLM_OK; r0 += block) {
        uint64_t nr = rows - r0 < block ? rows - r0 : block;
        rc = encode_block(j, m, it, &e, r0, nr, scales, err);
        if (rc != QLM_OK)
            break;
        const unsigned char *out = j->obuf;
        uint64_t out_bytes = nr * e.out_row;
        if (quant) {
            uint64_t nb = 0;
            for (uint64_t k = 0; k < nr; k += QLM_QBLOCK_ROWS, nb++)
                qlm_quant_pack_block(it->dtype, cols, it->group, j->obuf + k * e.out_row,
                                     scales + k * e.n_groups,
                                     (unsigned)(nr - k < QLM_QBLOCK_ROWS ? nr - k
                                                                         : QLM_QBLOCK_ROWS),
                                     packed + nb * qblock);
            out = packed;
            out_bytes = nb * qblock;
        }
        rc = qlm_writer_write(w, out, (size_t)out_bytes);
        if (rc != QLM_OK) {
            rc = werr(w, rc, err);
            break;
        }
        written += out_bytes;
        qlm_release_range((const unsigned char *)it->src->data + r0 * src_row, nr * src_row);
        progress(j, nr * src_row);
    }
    free(packed);
    free(scales);
    if (rc == QLM_OK && written != it->bytes)
        rc = qlm_error_set(err, QLM_E_RANGE, "tensor '%s': wrote %llu bytes, declared %llu",
                           it->name, (unsigned long long)written, (unsigned long long)it->bytes);
    qlm_st_release(m, it->src);
    return rc;
}

static const char *base_name(const char *dir, char *buf, size_t len)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    size_t k = n - b < len - 1 ? n - b : len - 1;
    memcpy(buf, dir + b, k);
    buf[k] = '\0';
    return buf;
}

static enum qlm_err write_meta(struct qlm_writer *w, const struct qlm_convert_opts *o,
                               const struct qlm_hf_config *c, const struct qlm_plan *p,
                               struct qlm_error *err)
{
    char name[256];
    bool quant = qlm_dtype_is_quant(o->type);
    WTRY(qlm_writer_meta_str(w, QLM_KEY_ARCH, qlm_arch_name(c->arch)));
    WTRY(qlm_writer_meta_str(w, QLM_KEY_NAME, base_name(o->model_dir, name, sizeof name)));
    WTRY(qlm_writer_meta_str(w, QLM_KEY_CONVERTER, "qlm-convert " PACKAGE_VERSION));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_N_LAYERS, c->n_layers));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_HIDDEN, c->hidden));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_N_HEADS, c->n_heads));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_N_KV_HEADS, c->n_kv_heads));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_HEAD_DIM, c->head_dim));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_FFN_HIDDEN, c->ffn_hidden));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_VOCAB_SIZE, c->vocab_size));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_MAX_POS, c->max_pos));
    WTRY(qlm_writer_meta_f64(w, QLM_KEY_ROPE_THETA, c->rope_theta));
    WTRY(qlm_writer_meta_f64(w, QLM_KEY_RMS_EPS, c->rms_eps));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_TIED, p->tied ? 1 : 0));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_QK_NORM, c->qk_norm ? 1 : 0));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_QKV_BIAS, c->qkv_bias ? 1 : 0));
    WTRY(qlm_writer_meta_str(w, QLM_KEY_QUANT_TYPE, qlm_dtype_name(o->type)));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_QUANT_GROUP, quant ? o->group : 0));
    return QLM_OK;
}

static enum qlm_err write_tokenizer(struct qlm_writer *w, const struct qlm_tokdata *tok,
                                    struct qlm_error *err)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    QLM_TRY(qlm_tokdata_serialize(tok, &blob, &len, err));
    enum qlm_err rc = qlm_writer_tokenizer(w, blob, len);
    free(blob);
    if (rc != QLM_OK)
        return werr(w, rc, err);
    return QLM_OK;
}

static enum qlm_err run(const struct qlm_convert_opts *o, const struct qlm_hf_config *cfg,
                        const struct qlm_st_model *m, const struct qlm_plan *plan,
                        const struct qlm_tokdata *tok, struct qlm_convert_stats *st,
                        struct qlm_error *err)
{
    struct qlm_writer *w = NULL;
    QLM_TRY(qlm_writer_open(&w, o->out_path, o->force, err));
    struct job j = {.o = o, .plan = plan, .w = w};
    j.nt = o->threads > 0 ? o->threads : online_cpus();
    j.total = plan->bytes_in;
    enum qlm_err rc = write_meta(w, o, cfg, plan, err);
    if (rc == QLM_OK)
        rc = write_tokenizer(w, tok, err);
    for (size_t i = 0; i < plan->n && rc == QLM_OK; i++) {
        const struct qlm_plan_item *it = &plan->items[i];
        rc = qlm_writer_declare(w, it->name, it->dtype, it->n_dims, it->dims, it->group);
        if (rc != QLM_OK)
            rc = werr(w, rc, err);
    }
    if (rc == QLM_OK)
        progress(&j, 0); /* the data starts: the clock for MB/s */
    for (size_t i = 0; i < plan->n && rc == QLM_OK; i++) {
        j.index = i;
        rc = write_tensor(&j, m, &plan->items[i], err);
    }
    if (rc == QLM_OK) {
        j.index = plan->n;
        progress(&j, 0);
        rc = qlm_writer_finish(w, err);
    }
    qlm_writer_abort(w); /* frees; removes the temporary file if not finished */
    free(j.fbuf);
    free(j.obuf);
    st->n_fixed = j.n_fixed;
    return rc;
}

enum qlm_err qlm_convert(const struct qlm_convert_opts *o, struct qlm_convert_stats *st,
                         struct qlm_error *err)
{
    double t0 = now();
    memset(st, 0, sizeof *st);
    if (!o->model_dir || !o->out_path)
        return qlm_error_set(err, QLM_E_INVALID, "model directory and output path are required");
    struct stat sb;
    if (!o->force && stat(o->out_path, &sb) == 0)
        return qlm_error_set(err, QLM_E_INVALID, "%s exists; use --force to overwrite",
                             o->out_path);
    if (qlm_dtype_is_quant(o->type) && !qlm_policy_group_ok(o->group))
        return qlm_error_set(err, QLM_E_INVALID,
                             "--group %u is not supported (a multiple of 32, 32 .. 4096)",
                             o->group);

    struct qlm_hf_config cfg;
    QLM_TRY(qlm_hf_config_load(o->model_dir, &cfg, err));
    struct qlm_st_model *m = NULL;
    QLM_TRY(qlm_st_open(&m, o->model_dir, err));
    struct qlm_plan plan;
    enum qlm_err rc = qlm_plan_build(&cfg, m, o->model_dir, o->type, o->group, &plan, err);
    if (rc != QLM_OK) {
        qlm_st_close(m);
        return rc;
    }
    struct qlm_tokdata tok;
    memset(&tok, 0, sizeof tok);
    rc = qlm_hf_tokenizer_load(o->model_dir, &tok, err);
    if (rc == QLM_OK && tok.n_tokens > cfg.vocab_size)
        rc = qlm_error_set(err, QLM_E_FORMAT,
                           "%s: the tokenizer has %u tokens but config.json's vocab_size is %llu",
                           o->model_dir, tok.n_tokens, (unsigned long long)cfg.vocab_size);
    if (rc == QLM_OK)
        rc = run(o, &cfg, m, &plan, &tok, st, err);
    if (rc == QLM_OK) {
        st->n_tensors = plan.n;
        st->n_params = plan.n_params;
        st->bytes_in = plan.bytes_in;
        st->bytes_out = plan.bytes_out;
        st->tied = plan.tied;
        if (stat(o->out_path, &sb) == 0)
            st->file_size = (uint64_t)sb.st_size;
    }
    qlm_tokdata_free(&tok);
    qlm_plan_free(&plan);
    qlm_st_close(m);
    st->seconds = now() - t0;
    return rc;
}
