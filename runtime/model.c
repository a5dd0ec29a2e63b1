/*
 * model.c — open a .qlm file as a model: hyper-parameters from the metadata,
 * every tensor the architecture needs checked for presence, shape and type,
 * and weight views into the mapping.  Nothing is copied or converted per
 * weight, so opening costs milliseconds whatever the file size (the pages
 * are read on first use by the forward pass).
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "qlm_schema.h"
#include "tokenizer.h"

/* The public hyper-parameters from the schema's (ranges already checked). */
static void set_hparams(const struct qlm_model_params *p, struct qlm_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    snprintf(hp->arch, sizeof hp->arch, "%s", qlm_arch_name(p->arch));
    hp->n_layers = (int)p->n_layers;
    hp->hidden = (int)p->hidden;
    hp->n_heads = (int)p->n_heads;
    hp->n_kv_heads = (int)p->n_kv_heads;
    hp->head_dim = (int)p->head_dim;
    hp->ffn_hidden = (int)p->ffn_hidden;
    hp->vocab_size = (int)p->vocab_size;
    hp->max_pos = (int)p->max_pos;
    hp->rope_theta = p->rope_theta;
    hp->rms_eps = p->rms_eps;
    hp->tied = p->tied;
    hp->qk_norm = p->qk_norm;
    hp->qkv_bias = p->qkv_bias;
}

/* ---- tensors ----------------------------------------------------------- */

#define ALLOW_FLOAT ((1u << QLM_F32) | (1u << QLM_F16) | (1u << QLM_BF16))
#define ALLOW_ALL ((1u << QLM_DTYPE_COUNT) - 1)

/* The file's tensor of schema entry want: present, with the schema's shape
 * and a type in allowed (a mask of 1 << dtype); marked in claimed (one flag
 * per file tensor). */
static enum qlm_err find_tensor(const struct qlm_file *f, const struct qlm_schema_tensor *want,
                                unsigned allowed, bool *claimed,
                                const struct qlm_tensor_info **out, struct qlm_error *err)
{
    const struct qlm_tensor_info *t = qlm_file_tensor(f, want->name);
    QLM_TRY(qlm_schema_check_shape(f->path, want, t ? t->n_dims : 0, t ? t->dims : NULL, err));
    claimed[t - f->tensors] = true;
    const char *name = want->name;
    uint64_t d1 = want->dims[1];
    if ((unsigned)t->dtype >= QLM_DTYPE_COUNT || !(allowed & (1u << t->dtype)))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' has type %s, not allowed here",
                             f->path, name,
                             (unsigned)t->dtype < QLM_DTYPE_COUNT ? qlm_dtype_name(t->dtype)
                                                                  : "unknown");
    if (qlm_dtype_is_quant(t->dtype)) {
        uint32_t g = t->group;
        bool ok = g > 0 && d1 % g == 0 && g % qlm_type_traits(t->dtype)->group_multiple == 0;
        if (!ok)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' has bad group size %" PRIu32
                                 " for %" PRIu64 " columns", f->path, name, g, d1);
    }
    *out = t;
    return QLM_OK;
}

static enum qlm_err get_matrix(const struct qlm_file *f, const struct qlm_schema_tensor *want,
                               bool *claimed, struct qlm_matrix *m, struct qlm_error *err)
{
    const struct qlm_tensor_info *t;
    QLM_TRY(find_tensor(f, want, ALLOW_ALL, claimed, &t, err));
    uint64_t rows = want->dims[0], cols = want->dims[1], need;
    if (!qlm_tensor_bytes(t->dtype, rows, cols, t->group, &need) || need != t->size)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' size %" PRIu64
                             " does not match its type and shape", f->path, want->name, t->size);
    m->type = t->dtype;
    m->rows = (int)rows;
    m->cols = (int)cols;
    m->group = qlm_dtype_is_quant(t->dtype) ? (int)t->group : 0;
    m->data = t->data;
    return QLM_OK;
}

/* A vector (norm weight, bias) as f32: the mapping itself when stored as f32,
 * else converted into the model's small owned buffer at *pool. */
static enum qlm_err get_vector(const struct qlm_file *f, const struct qlm_schema_tensor *want,
                               bool *claimed, float **pool, const float **out,
                               struct qlm_error *err)
{
    const struct qlm_tensor_info *t;
    QLM_TRY(find_tensor(f, want, ALLOW_FLOAT, claimed, &t, err));
    size_t n = (size_t)want->dims[0];
    if (t->size != (uint64_t)n * (t->dtype == QLM_F32 ? 4u : 2u))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' size %" PRIu64
                             " does not match its shape", f->path, want->name, t->size);
    if (t->dtype == QLM_F32) {
        *out = t->data;
    } else {
        float *dst = *pool;
        if (t->dtype == QLM_BF16)
            qlm_bf16_to_f32_row(t->data, dst, n);
        else
            qlm_f16_to_f32_row(t->data, dst, n);
        *pool += n;
        *out = dst;
    }
    return QLM_OK;
}

static uint64_t matrix_bytes(const struct qlm_matrix *m)
{
    uint64_t b = 0;
    qlm_tensor_bytes(m->type, (uint64_t)m->rows, (uint64_t)m->cols, (uint32_t)m->group, &b);
    return b;
}

/* Bytes of one row of m (what an embedding lookup reads): its share of a
 * block of rows. */
static uint64_t matrix_row_bytes(const struct qlm_matrix *m)
{
    const struct qlm_type_traits *tr = qlm_type_traits(m->type);
    return tr->block_bytes((uint64_t)m->cols, (uint32_t)m->group) / tr->block_rows;
}

/* Where a schema tensor goes in the model: a matrix or a vector slot. */
static void slots(struct qlm_model *m, const struct qlm_schema_tensor *t,
                  struct qlm_matrix **mat, const float ***vec)
{
    struct qlm_layer *l = t->layer >= 0 ? &m->layers[t->layer] : NULL;
    *mat = NULL;
    *vec = NULL;
    switch (t->kind) {
    case QLM_T_EMBED: *mat = &m->embed; break;
    case QLM_T_OUT_NORM: *vec = &m->out_norm; break;
    case QLM_T_HEAD: *mat = &m->head; break;
    case QLM_T_ATTN_NORM: *vec = &l->attn_norm; break;
    case QLM_T_WQ: *mat = &l->wq; break;
    case QLM_T_BQ: *vec = &l->bq; break;
    case QLM_T_WK: *mat = &l->wk; break;
    case QLM_T_BK: *vec = &l->bk; break;
    case QLM_T_WV: *mat = &l->wv; break;
    case QLM_T_BV: *vec = &l->bv; break;
    case QLM_T_Q_NORM: *vec = &l->q_norm; break;
    case QLM_T_K_NORM: *vec = &l->k_norm; break;
    case QLM_T_WO: *mat = &l->wo; break;
    case QLM_T_FFN_NORM: *vec = &l->ffn_norm; break;
    case QLM_T_WGATE: *mat = &l->wgate; break;
    case QLM_T_WUP: *mat = &l->wup; break;
    case QLM_T_WDOWN: *mat = &l->wdown; break;
    case QLM_T_COUNT: break;
    }
}

/* Every tensor of the schema, checked and viewed in the mapping (each
 * marked in claimed); bytes per token sums what a token reads: one
 * embedding row, every other weight. */
static enum qlm_err load_weights(struct qlm_model *m, const struct qlm_model_params *p,
                                 bool *claimed, struct qlm_error *err)
{
    const struct qlm_file *f = m->file;
    /* Worst case for the converted vectors: every norm and bias non-f32. */
    size_t per_layer = 2 * p->hidden + 2 * p->head_dim + (p->n_heads + 2 * p->n_kv_heads) *
                       p->head_dim;
    size_t n_owned = per_layer * p->n_layers + p->hidden;
    m->owned = malloc(n_owned * sizeof(float));
    m->layers = calloc((size_t)p->n_layers, sizeof *m->layers);
    if (m->owned == NULL || m->layers == NULL)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", f->path);
    float *pool = m->owned;

    uint64_t bytes = 0;
    struct qlm_schema_tensor t;
    for (size_t pos = 0; qlm_schema_next(p, &pos, &t);) {
        struct qlm_matrix *mat;
        const float **vec;
        slots(m, &t, &mat, &vec);
        if (vec != NULL) {
            QLM_TRY(get_vector(f, &t, claimed, &pool, vec, err));
            bytes += 4 * t.dims[0];
        } else {
            QLM_TRY(get_matrix(f, &t, claimed, mat, err));
            bytes += t.kind == QLM_T_EMBED ? matrix_row_bytes(mat) : matrix_bytes(mat);
        }
    }
    if (p->tied) {
        m->head = m->embed;
        bytes += matrix_bytes(&m->head);
    }
    m->bytes_per_token = bytes;
    return QLM_OK;
}

/* quant.type / quant.group name the main linear weight type: at least one
 * linear weight must be stored so (others may have more bits). */
static enum qlm_err check_quant(struct qlm_model *m, struct qlm_error *err)
{
    const struct qlm_file *f = m->file;
    const char *qt;
    uint64_t g;
    if (qlm_file_meta_str(f, QLM_KEY_QUANT_TYPE, &qt, err) != QLM_OK)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' missing or not a string",
                             f->path, QLM_KEY_QUANT_TYPE);
    int t = qlm_dtype_from_name(qt);
    if (t < 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' = '%.20s' is not a type",
                             f->path, QLM_KEY_QUANT_TYPE, qt);
    if (qlm_file_meta_u64(f, QLM_KEY_QUANT_GROUP, &g, err) != QLM_OK)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' missing or not an integer",
                             f->path, QLM_KEY_QUANT_GROUP);
    for (int i = 0; i < m->hp.n_layers; i++) {
        const struct qlm_layer *l = &m->layers[i];
        const struct qlm_matrix *ms[] = {&l->wq, &l->wk, &l->wv, &l->wo,
                                         &l->wgate, &l->wup, &l->wdown};
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
            if ((int)ms[j]->type == t && (uint64_t)ms[j]->group == g) {
                m->hp.wtype = (enum qlm_dtype)t;
                m->hp.group = (int)g;
                return QLM_OK;
            }
    }
    return qlm_error_set(err, QLM_E_FORMAT,
                         "%s: metadata says the weights are %s (group %" PRIu64 "), but no "
                         "linear weight is stored so", f->path, qt, g);
}

/* Hyper-parameters and weights, every tensor of the file accounted for:
 * metadata that disagrees with the directory (fewer layers, no q/k norm,
 * tied with a head stored) is refused rather than run wrongly. */
static enum qlm_err load(struct qlm_model *m, struct qlm_error *err)
{
    const struct qlm_file *f = m->file;
    struct qlm_model_params p;
    QLM_TRY(qlm_schema_read_meta(f, &p, err));
    set_hparams(&p, &m->hp);
    m->params = p;
    bool *claimed = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *claimed);
    if (claimed == NULL)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", f->path);
    enum qlm_err rc = load_weights(m, &p, claimed, err);
    for (uint32_t i = 0; rc == QLM_OK && i < f->n_tensors; i++)
        if (!claimed[i])
            rc = qlm_error_set(err, QLM_E_FORMAT,
                               "%s: unexpected tensor '%.200s' (not implied by the metadata)",
                               f->path, f->tensors[i].name);
    free(claimed);
    return rc == QLM_OK ? check_quant(m, err) : rc;
}

enum qlm_err qlm_model_open(struct qlm_model **out, const char *path, struct qlm_error *err)
{
    *out = NULL;
    QLM_TRY(qlm_kernels_init(err));
    struct qlm_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    enum qlm_err rc = qlm_file_open(&m->file, path, err);
    if (rc == QLM_OK)
        rc = load(m, err);
    if (rc == QLM_OK) {
        struct qlm_tokdata td;
        rc = qlm_file_tokdata(m->file, &td, err);
        if (rc == QLM_OK) {
            if (td.n_tokens > (uint32_t)m->hp.vocab_size) {
                rc = qlm_error_set(err, QLM_E_FORMAT,
                                   "%s: tokenizer has %" PRIu32 " tokens, more than the "
                                   "vocabulary of %d", path, td.n_tokens, m->hp.vocab_size);
                qlm_tokdata_free(&td);
            } else {
                rc = qlm_tok_new(&m->tok, &td, path, err); /* takes td over */
            }
        }
    }
    if (rc != QLM_OK) {
        qlm_model_free(m);
        return rc;
    }
    *out = m;
    return QLM_OK;
}

void qlm_model_free(struct qlm_model *m)
{
    if (m == NULL)
        return;
    qlm_tok_free(m->tok);
    free(m->layers);
    free(m->owned);
    qlm_file_close(m->file);
    free(m);
}
