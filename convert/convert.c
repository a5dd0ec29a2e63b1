/*
 * convert.c — the conversion driver.  Reads config.json, opens the
 * safetensors, builds the plan (policy.c), imports the tokenizer, declares
 * every tensor and then streams them one row block at a time:
 *
 *   source rows (BF16/F16/F32) -> f32 rows -> NaN/Inf check -> the output
 *   type's block codec (qlm_type_traits: f32/bf16/f16 rows, q8/q4 tiles) -> writer
 *
 * (the codec is given the tensor's column importance when --imatrix names
 * an .imat file, checked against the plan first: importance.h)
 * and drops each block's source pages as it goes, so peak memory is a few
 * row blocks plus one tensor's scales, whatever the model's size.
 */
#include "config.h"

#include "convert.h"
#include "hf_config.h"
#include "hf_tokenizer.h"
#include "importance.h"
#include "policy.h"

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

struct job {
    const struct qlm_convert_opts *o;
    const struct qlm_plan *plan;
    const struct qlm_imat *imat;  /* --imatrix, or NULL */
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

static bool row_finite(const float *x, uint64_t n)
{
    for (uint64_t c = 0; c < n; c++)
        if (!isfinite(x[c]))
            return false;
    return true;
}

/* Rows [r0, r0 + nr) of the item widened to f32 into j->fbuf and checked:
 * a non-finite value is an error, or with --allow-nonfinite replaced (NaN
 * -> 0, +-Inf -> the largest magnitude the output type holds).  One
 * parallel loop with dynamic chunks: on a busy machine a descheduled
 * thread's rows go to the others instead of holding everyone at a barrier. */
static enum qlm_err widen_block(struct job *j, const struct qlm_st_model *m,
                                const struct qlm_plan_item *it, uint64_t r0, uint64_t nr,
                                struct qlm_error *err)
{
    const uint64_t cols = it->cols;
    float *fb = j->fbuf;
    int64_t bad = INT64_MAX;
    int nt = j->nt;
    int64_t chunk = (int64_t)(65536 / cols) + 1;
    (void)nt;
    (void)chunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic, chunk) reduction(min : bad)
    for (int64_t i = 0; i < (int64_t)nr; i++) {
        float *x = fb + (uint64_t)i * cols;
        qlm_st_to_f32(it->src, (r0 + (uint64_t)i) * cols, cols, x);
        if (!row_finite(x, cols))
            bad = i < bad ? i : bad;
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
    const float lim = qlm_type_traits(it->dtype)->max_abs;
    uint64_t fixed = 0;
    for (uint64_t k = (uint64_t)bad * cols; k < nr * cols; k++) {
        if (isnan(fb[k])) {
            fb[k] = 0.0f;
            fixed++;
        } else if (isinf(fb[k])) {
            fb[k] = fb[k] > 0 ? lim : -lim;
            fixed++;
        }
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

/* The nr f32 rows of j->fbuf encoded into nb blocks of bb bytes at j->obuf,
 * one block per iteration of a parallel loop, with the tensor's column
 * importance when there is one. */
static void encode_blocks(struct job *j, const struct qlm_plan_item *it,
                          const struct qlm_type_traits *tr, uint64_t nr, uint64_t bb)
{
    const uint64_t cols = it->cols, br = tr->block_rows;
    const float *imp = qlm_importance_of(j->imat, j->plan, it);
    int64_t nb = (int64_t)((nr + br - 1) / br);
    int nt = j->nt;
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t b = 0; b < nb; b++) {
        uint64_t r = (uint64_t)b * br;
        tr->encode(j->fbuf + r * cols, (unsigned)(nr - r < br ? nr - r : br), cols, it->group,
                   imp, (unsigned char *)j->obuf + (uint64_t)b * bb);
    }
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
    const struct qlm_type_traits *tr = qlm_type_traits(it->dtype);
    const uint64_t rows = it->rows, cols = it->cols;
    const uint64_t src_row = it->src->size / (rows ? rows : 1);
    const uint64_t bb = tr->block_bytes(cols, it->group);
    if (bb == UINT64_MAX)
        return qlm_error_set(err, QLM_E_INVALID, "tensor '%s': bad output type", it->name);
    /* rows per write: whole blocks of about BLOCK_BYTES of f32 */
    uint64_t block = BLOCK_BYTES / (cols * 4);
    block -= block % tr->block_rows;
    if (block == 0)
        block = tr->block_rows;
    if (block > rows)
        block = rows;
    uint64_t max_blocks = (block + tr->block_rows - 1) / tr->block_rows;
    QLM_TRY(grow((void **)&j->fbuf, &j->fcap, (size_t)(max_blocks * tr->block_rows * cols * 4),
                 err));
    QLM_TRY(grow(&j->obuf, &j->ocap, (size_t)(max_blocks * bb), err));

    enum qlm_err rc = QLM_OK;
    uint64_t written = 0;
    for (uint64_t r0 = 0; r0 < rows && rc == QLM_OK; r0 += block) {
        uint64_t nr = rows - r0 < block ? rows - r0 : block;
        rc = widen_block(j, m, it, r0, nr, err);
        if (rc != QLM_OK)
            break;
        encode_blocks(j, it, tr, nr, bb);
        uint64_t out_bytes = (nr + tr->block_rows - 1) / tr->block_rows * bb;
        rc = qlm_writer_write(w, j->obuf, (size_t)out_bytes);
        if (rc != QLM_OK) {
            rc = werr(w, rc, err);
            break;
        }
        written += out_bytes;
        qlm_release_range((const unsigned char *)it->src->data + r0 * src_row, nr * src_row);
        progress(j, nr * src_row);
    }
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

/* The schema's hyper-parameters (tied as the plan decided), then what
 * produced the file and how it is quantized. */
static enum qlm_err write_meta(struct qlm_writer *w, const struct qlm_convert_opts *o,
                               const struct qlm_model_params *c, const struct qlm_plan *p,
                               struct qlm_error *err)
{
    char name[256];
    struct qlm_model_params mp = *c;
    mp.tied = p->tied;
    WTRY(qlm_schema_write_meta(w, &mp));
    WTRY(qlm_writer_meta_str(w, QLM_KEY_NAME, base_name(o->model_dir, name, sizeof name)));
    WTRY(qlm_writer_meta_str(w, QLM_KEY_CONVERTER, "qlm-convert " PACKAGE_VERSION));
    WTRY(qlm_writer_meta_str(w, QLM_KEY_QUANT_TYPE, qlm_dtype_name(o->type)));
    WTRY(qlm_writer_meta_u64(w, QLM_KEY_QUANT_GROUP, qlm_dtype_is_quant(o->type) ? o->group : 0));
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

static enum qlm_err run(const struct qlm_convert_opts *o, const struct qlm_model_params *cfg,
                        const struct qlm_st_model *m, const struct qlm_plan *plan,
                        const struct qlm_imat *imat, const struct qlm_tokdata *tok,
                        struct qlm_convert_stats *st, struct qlm_error *err)
{
    struct qlm_writer *w = NULL;
    QLM_TRY(qlm_writer_open(&w, o->out_path, o->force, err));
    struct job j = {.o = o, .plan = plan, .imat = imat, .w = w};
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

    struct qlm_model_params cfg;
    QLM_TRY(qlm_hf_config_load(o->model_dir, &cfg, err));
    struct qlm_st_model *m = NULL;
    QLM_TRY(qlm_st_open(&m, o->model_dir, err));
    struct qlm_plan plan;
    enum qlm_err rc = qlm_plan_build(&cfg, m, o->model_dir, o->type, o->group, &plan, err);
    if (rc != QLM_OK) {
        qlm_st_close(m);
        return rc;
    }
    struct qlm_imat *imat = NULL;
    if (o->imatrix)
        rc = qlm_importance_load(o->imatrix, &cfg, &plan, &imat, err);
    struct qlm_tokdata tok;
    memset(&tok, 0, sizeof tok);
    if (rc == QLM_OK)
        rc = qlm_hf_tokenizer_load(o->model_dir, &tok, err);
    if (rc == QLM_OK && tok.n_tokens > cfg.vocab_size)
        rc = qlm_error_set(err, QLM_E_FORMAT,
                           "%s: the tokenizer has %u tokens but config.json's vocab_size is %llu",
                           o->model_dir, tok.n_tokens, (unsigned long long)cfg.vocab_size);
    if (rc == QLM_OK)
        rc = run(o, &cfg, m, &plan, imat, &tok, st, err);
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
    qlm_imat_free(imat);
    qlm_plan_free(&plan);
    qlm_st_close(m);
    st->seconds = now() - t0;
    return rc;
}
