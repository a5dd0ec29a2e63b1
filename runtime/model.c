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
#include "tokenizer.h"

/* Sane upper bounds: anything larger is a corrupt or hostile file. */
#define MAX_DIM (1 << 20)
#define MAX_LAYERS 1024
#define MAX_VOCAB (1 << 24)

static enum qlm_err meta_int(const struct qlm_file *f, const char *key, int lo, int hi, int *out,
                             struct qlm_error *err)
{
    uint64_t v;
    enum qlm_err rc = qlm_file_meta_u64(f, key, &v, err);
    if (rc != QLM_OK)
        return qlm_error_set(err, rc, "%s: metadata '%s' %s", f->path, key,
                             rc == QLM_E_NOTFOUND ? "missing" : "is not an unsigned integer");
    if (v < (uint64_t)lo || v > (uint64_t)hi)
        return qlm_error_set(err, QLM_E_RANGE, "%s: metadata '%s' = %" PRIu64
                             " out of range [%d, %d]", f->path, key, v, lo, hi);
    *out = (int)v;
    return QLM_OK;
}

static enum qlm_err meta_bool(const struct qlm_file *f, const char *key, bool dflt, bool *out,
                              struct qlm_error *err)
{
    uint64_t v;
    if (qlm_file_meta(f, key) == NULL) {
        *out = dflt;
        return QLM_OK;
    }
    if (qlm_file_meta_u64(f, key, &v, err) != QLM_OK || v > 1)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' must be 0 or 1", f->path,
                             key);
    *out = v != 0;
    return QLM_OK;
}

static enum qlm_err meta_real(const struct qlm_file *f, const char *key, double lo, double hi,
                              double *out, struct qlm_error *err)
{
    double v;
    enum qlm_err rc = qlm_file_meta_f64(f, key, &v, err);
    if (rc != QLM_OK)
        return qlm_error_set(err, rc, "%s: metadata '%s' %s", f->path, key,
                             rc == QLM_E_NOTFOUND ? "missing" : "is not a float");
    if (!(v >= lo && v <= hi))
        return qlm_error_set(err, QLM_E_RANGE, "%s: metadata '%s' = %g out of range [%g, %g]",
                             f->path, key, v, lo, hi);
    *out = v;
    return QLM_OK;
}

static enum qlm_err read_hparams(const struct qlm_file *f, struct qlm_hparams *hp,
                                 struct qlm_error *err)
{
    const char *arch;
    memset(hp, 0, sizeof *hp);
    if (qlm_file_meta_str(f, QLM_KEY_ARCH, &arch, err) != QLM_OK)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' missing or not a string",
                             f->path, QLM_KEY_ARCH);
    if (strcmp(arch, "qwen3") != 0 && strcmp(arch, "qwen2") != 0 && strcmp(arch, "llama") != 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: architecture '%.40s' not supported (qwen3, qwen2, llama)",
                             f->path, arch);
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    QLM_TRY(meta_int(f, QLM_KEY_N_LAYERS, 1, MAX_LAYERS, &hp->n_layers, err));
    QLM_TRY(meta_int(f, QLM_KEY_HIDDEN, 1, MAX_DIM, &hp->hidden, err));
    QLM_TRY(meta_int(f, QLM_KEY_N_HEADS, 1, 4096, &hp->n_heads, err));
    QLM_TRY(meta_int(f, QLM_KEY_N_KV_HEADS, 1, 4096, &hp->n_kv_heads, err));
    QLM_TRY(meta_int(f, QLM_KEY_HEAD_DIM, 2, 4096, &hp->head_dim, err));
    QLM_TRY(meta_int(f, QLM_KEY_FFN_HIDDEN, 1, MAX_DIM, &hp->ffn_hidden, err));
    QLM_TRY(meta_int(f, QLM_KEY_VOCAB_SIZE, 1, MAX_VOCAB, &hp->vocab_size, err));
    QLM_TRY(meta_int(f, QLM_KEY_MAX_POS, 1, 1 << 24, &hp->max_pos, err));
    QLM_TRY(meta_real(f, QLM_KEY_ROPE_THETA, 1.0, 1e12, &hp->rope_theta, err));
    QLM_TRY(meta_real(f, QLM_KEY_RMS_EPS, 1e-30, 1.0, &hp->rms_eps, err));
    bool is_qwen3 = strcmp(arch, "qwen3") == 0, is_qwen2 = strcmp(arch, "qwen2") == 0;
    QLM_TRY(meta_bool(f, QLM_KEY_TIED, false, &hp->tied, err));
    QLM_TRY(meta_bool(f, QLM_KEY_QK_NORM, is_qwen3, &hp->qk_norm, err));
    QLM_TRY(meta_bool(f, QLM_KEY_QKV_BIAS, is_qwen2, &hp->qkv_bias, err));
    if (hp->n_heads % hp->n_kv_heads != 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: n_heads %d not a multiple of n_kv_heads %d",
                             f->path, hp->n_heads, hp->n_kv_heads);
    if (hp->head_dim % 2 != 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: head_dim %d is odd (RoPE needs pairs)",
                             f->path, hp->head_dim);
    if ((int64_t)hp->n_heads * hp->head_dim > MAX_DIM)
        return qlm_error_set(err, QLM_E_RANGE, "%s: n_heads x head_dim too large", f->path);
    return QLM_OK;
}

/* ---- tensors ----------------------------------------------------------- */

#define ALLOW_FLOAT ((1u << QLM_F32) | (1u << QLM_F16) | (1u << QLM_BF16))
#define ALLOW_ALL ((1u << QLM_DTYPE_COUNT) - 1)

static enum qlm_err find_tensor(const struct qlm_file *f, const char *name, int n_dims,
                                uint64_t d0, uint64_t d1, unsigned allowed,
                                const struct qlm_tensor_info **out, struct qlm_error *err)
{
    const struct qlm_tensor_info *t = qlm_file_tensor(f, name);
    if (t == NULL)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: tensor '%s' missing", f->path, name);
    bool shape_ok = t->n_dims == n_dims && t->dims[0] == d0 && (n_dims == 1 || t->dims[1] == d1);
    if (!shape_ok) {
        char got[96] = "", want[48];
        size_t used = 0;
        for (int i = 0; i < t->n_dims && i < QLM_MAX_DIMS && used < sizeof got; i++)
            used += (size_t)snprintf(got + used, sizeof got - used, "%s%" PRIu64,
                                     i ? ", " : "", t->dims[i]);
        if (n_dims == 1)
            snprintf(want, sizeof want, "%" PRIu64, d0);
        else
            snprintf(want, sizeof want, "%" PRIu64 ", %" PRIu64, d0, d1);
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' has shape [%s], expected [%s]",
                             f->path, name, got, want);
    }
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

static enum qlm_err get_matrix(const struct qlm_file *f, const char *name, int rows, int cols,
                               struct qlm_matrix *m, struct qlm_error *err)
{
    const struct qlm_tensor_info *t;
    QLM_TRY(find_tensor(f, name, 2, (uint64_t)rows, (uint64_t)cols, ALLOW_ALL, &t, err));
    uint64_t need;
    if (!qlm_tensor_bytes(t->dtype, (uint64_t)rows, (uint64_t)cols, t->group, &need) ||
        need != t->size)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' size %" PRIu64
                             " does not match its type and shape", f->path, name, t->size);
    m->type = t->dtype;
    m->rows = rows;
    m->cols = cols;
    m->group = qlm_dtype_is_quant(t->dtype) ? (int)t->group : 0;
    m->data = t->data;
    return QLM_OK;
}

/* A vector (norm weight, bias) as f32: the mapping itself when stored as f32,
 * else converted into the model's small owned buffer at *pool. */
static enum qlm_err get_vector(const struct qlm_file *f, const char *name, int n,
                               float **pool, const float **out, struct qlm_error *err)
{
    const struct qlm_tensor_info *t;
    QLM_TRY(find_tensor(f, name, 1, (uint64_t)n, 0, ALLOW_FLOAT, &t, err));
    if (t->size != (uint64_t)n * (t->dtype == QLM_F32 ? 4u : 2u))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' size %" PRIu64
                             " does not match its shape", f->path, name, t->size);
    if (t->dtype == QLM_F32) {
        *out = t->data;
    } else {
        float *dst = *pool;
        if (t->dtype == QLM_BF16)
            qlm_bf16_to_f32_row(t->data, dst, (size_t)n);
        else
            qlm_f16_to_f32_row(t->data, dst, (size_t)n);
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

static enum qlm_err load_weights(struct qlm_model *m, struct qlm_error *err)
{
    const struct qlm_file *f = m->file;
    const struct qlm_hparams *hp = &m->hp;
    int q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    char name[128];

    /* Worst case for the converted vectors: every norm and bias non-f32. */
    size_t per_layer = 2 * (size_t)hp->hidden + 2 * (size_t)hp->head_dim + (size_t)q_dim +
                       2 * (size_t)kv_dim;
    size_t n_owned = per_layer * (size_t)hp->n_layers + (size_t)hp->hidden;
    m->owned = malloc(n_owned * sizeof(float));
    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (m->owned == NULL || m->layers == NULL)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", f->path);
    float *pool = m->owned;

    QLM_TRY(get_matrix(f, "model.embed_tokens.weight", hp->vocab_size, hp->hidden, &m->embed,
                       err));
    QLM_TRY(get_vector(f, "model.norm.weight", hp->hidden, &pool, &m->out_norm, err));
    if (qlm_file_tensor(f, "lm_head.weight") != NULL) {
        QLM_TRY(get_matrix(f, "lm_head.weight", hp->vocab_size, hp->hidden, &m->head, err));
        m->hp.tied = false;
    } else {
        /* No lm_head.weight means tied: the embedding is the head. */
        m->head = m->embed;
        m->hp.tied = true;
    }
    uint64_t bytes = matrix_row_bytes(&m->embed) + matrix_bytes(&m->head) + 4u * hp->hidden;

    for (int i = 0; i < hp->n_layers; i++) {
        struct qlm_layer *l = &m->layers[i];
#define LNAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", i, suffix), name)
        QLM_TRY(get_vector(f, LNAME("input_layernorm.weight"), hp->hidden, &pool,
                           &l->attn_norm, err));
        QLM_TRY(get_vector(f, LNAME("post_attention_layernorm.weight"), hp->hidden, &pool,
                           &l->ffn_norm, err));
        QLM_TRY(get_matrix(f, LNAME("self_attn.q_proj.weight"), q_dim, hp->hidden, &l->wq, err));
        QLM_TRY(get_matrix(f, LNAME("self_attn.k_proj.weight"), kv_dim, hp->hidden, &l->wk, err));
        QLM_TRY(get_matrix(f, LNAME("self_attn.v_proj.weight"), kv_dim, hp->hidden, &l->wv, err));
        QLM_TRY(get_matrix(f, LNAME("self_attn.o_proj.weight"), hp->hidden, q_dim, &l->wo, err));
        QLM_TRY(get_matrix(f, LNAME("mlp.gate_proj.weight"), hp->ffn_hidden, hp->hidden,
                           &l->wgate, err));
        QLM_TRY(get_matrix(f, LNAME("mlp.up_proj.weight"), hp->ffn_hidden, hp->hidden, &l->wup,
                           err));
        QLM_TRY(get_matrix(f, LNAME("mlp.down_proj.weight"), hp->hidden, hp->ffn_hidden,
                           &l->wdown, err));
        bytes += 8u * hp->hidden;
        if (hp->qk_norm) {
            QLM_TRY(get_vector(f, LNAME("self_attn.q_norm.weight"), hp->head_dim, &pool,
                               &l->q_norm, err));
            QLM_TRY(get_vector(f, LNAME("self_attn.k_norm.weight"), hp->head_dim, &pool,
                               &l->k_norm, err));
            bytes += 8u * hp->head_dim;
        }
        if (hp->qkv_bias) {
            QLM_TRY(get_vector(f, LNAME("self_attn.q_proj.bias"), q_dim, &pool, &l->bq, err));
            QLM_TRY(get_vector(f, LNAME("self_attn.k_proj.bias"), kv_dim, &pool, &l->bk, err));
            QLM_TRY(get_vector(f, LNAME("self_attn.v_proj.bias"), kv_dim, &pool, &l->bv, err));
            bytes += 4u * (uint64_t)(q_dim + 2 * kv_dim);
        }
#undef LNAME
        const struct qlm_matrix *ms[] = { &l->wq, &l->wk, &l->wv, &l->wo,
                                          &l->wgate, &l->wup, &l->wdown };
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
            bytes += matrix_bytes(ms[j]);
    }
    m->bytes_per_token = bytes;

    /* The main linear type: what q_proj of the first layer is stored as. */
    m->hp.wtype = m->layers[0].wq.type;
    m->hp.group = m->layers[0].wq.group;
    return QLM_OK;
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
        rc = read_hparams(m->file, &m->hp, err);
    if (rc == QLM_OK)
        rc = load_weights(m, err);
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
