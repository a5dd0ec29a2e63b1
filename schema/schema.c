/*
 * schema.c — the model schema (qlm_schema.h): architectures, the metadata
 * of the hyper-parameters, the tensor table and the shape check.
 */
#include "qlm_schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const arch_names[QLM_ARCH_COUNT] = {"qwen3", "qwen2", "llama"};

const char *qlm_arch_name(enum qlm_arch a)
{
    return (unsigned)a < QLM_ARCH_COUNT ? arch_names[a] : "?";
}

int qlm_arch_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < QLM_ARCH_COUNT; i++)
        if (strcmp(name, arch_names[i]) == 0)
            return i;
    return -1;
}

/* ---- hyper-parameters as metadata ----------------------------------------- */

/* Sane upper bounds: anything larger is a corrupt or hostile file. */
#define MAX_DIM (1 << 20)
#define MAX_LAYERS 1024
#define MAX_VOCAB (1 << 24)

enum qlm_err qlm_schema_write_meta(struct qlm_writer *w, const struct qlm_model_params *p)
{
    QLM_TRY(qlm_writer_meta_str(w, QLM_KEY_ARCH, qlm_arch_name(p->arch)));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_N_LAYERS, p->n_layers));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_HIDDEN, p->hidden));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_N_HEADS, p->n_heads));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_N_KV_HEADS, p->n_kv_heads));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_HEAD_DIM, p->head_dim));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_FFN_HIDDEN, p->ffn_hidden));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_VOCAB_SIZE, p->vocab_size));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_MAX_POS, p->max_pos));
    QLM_TRY(qlm_writer_meta_f64(w, QLM_KEY_ROPE_THETA, p->rope_theta));
    QLM_TRY(qlm_writer_meta_f64(w, QLM_KEY_RMS_EPS, p->rms_eps));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_TIED, p->tied ? 1 : 0));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_QK_NORM, p->qk_norm ? 1 : 0));
    QLM_TRY(qlm_writer_meta_u64(w, QLM_KEY_QKV_BIAS, p->qkv_bias ? 1 : 0));
    return QLM_OK;
}

static enum qlm_err meta_int(const struct qlm_file *f, const char *key, uint64_t lo, uint64_t hi,
                             uint64_t *out, struct qlm_error *err)
{
    uint64_t v;
    enum qlm_err rc = qlm_file_meta_u64(f, key, &v, err);
    if (rc != QLM_OK)
        return qlm_error_set(err, rc, "%s: metadata '%s' %s", f->path, key,
                             rc == QLM_E_NOTFOUND ? "missing" : "is not an unsigned integer");
    if (v < lo || v > hi)
        return qlm_error_set(err, QLM_E_RANGE, "%s: metadata '%s' = %" PRIu64
                             " out of range [%" PRIu64 ", %" PRIu64 "]", f->path, key, v, lo, hi);
    *out = v;
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

enum qlm_err qlm_schema_read_meta(const struct qlm_file *f, struct qlm_model_params *p,
                                  struct qlm_error *err)
{
    const char *arch;
    memset(p, 0, sizeof *p);
    if (qlm_file_meta_str(f, QLM_KEY_ARCH, &arch, err) != QLM_OK)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' missing or not a string",
                             f->path, QLM_KEY_ARCH);
    int a = qlm_arch_from_name(arch);
    if (a < 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: architecture '%.40s' not supported (qwen3, qwen2, llama)",
                             f->path, arch);
    p->arch = (enum qlm_arch)a;
    QLM_TRY(meta_int(f, QLM_KEY_N_LAYERS, 1, MAX_LAYERS, &p->n_layers, err));
    QLM_TRY(meta_int(f, QLM_KEY_HIDDEN, 1, MAX_DIM, &p->hidden, err));
    QLM_TRY(meta_int(f, QLM_KEY_N_HEADS, 1, 4096, &p->n_heads, err));
    QLM_TRY(meta_int(f, QLM_KEY_N_KV_HEADS, 1, 4096, &p->n_kv_heads, err));
    QLM_TRY(meta_int(f, QLM_KEY_HEAD_DIM, 2, 4096, &p->head_dim, err));
    QLM_TRY(meta_int(f, QLM_KEY_FFN_HIDDEN, 1, MAX_DIM, &p->ffn_hidden, err));
    QLM_TRY(meta_int(f, QLM_KEY_VOCAB_SIZE, 1, MAX_VOCAB, &p->vocab_size, err));
    QLM_TRY(meta_int(f, QLM_KEY_MAX_POS, 1, 1 << 24, &p->max_pos, err));
    QLM_TRY(meta_real(f, QLM_KEY_ROPE_THETA, 1.0, 1e12, &p->rope_theta, err));
    QLM_TRY(meta_real(f, QLM_KEY_RMS_EPS, 1e-30, 1.0, &p->rms_eps, err));
    QLM_TRY(meta_bool(f, QLM_KEY_TIED, false, &p->tied, err));
    QLM_TRY(meta_bool(f, QLM_KEY_QK_NORM, p->arch == QLM_ARCH_QWEN3, &p->qk_norm, err));
    QLM_TRY(meta_bool(f, QLM_KEY_QKV_BIAS, p->arch == QLM_ARCH_QWEN2, &p->qkv_bias, err));
    if (p->n_heads % p->n_kv_heads != 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: n_heads %" PRIu64 " not a multiple of n_kv_heads %" PRIu64,
                             f->path, p->n_heads, p->n_kv_heads);
    if (p->head_dim % 2 != 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: head_dim %" PRIu64 " is odd (RoPE needs pairs)", f->path,
                             p->head_dim);
    if (p->n_heads * p->head_dim > MAX_DIM)
        return qlm_error_set(err, QLM_E_RANGE, "%s: n_heads x head_dim too large", f->path);
    return QLM_OK;
}

/* ---- tensors ------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

enum qlm_role qlm_schema_role(const char *name)
{
    if (strcmp(name, "model.embed_tokens.weight") == 0)
        return QLM_ROLE_EMBED;
    if (strcmp(name, "lm_head.weight") == 0)
        return QLM_ROLE_HEAD;
    if (ends_with(name, "rotary_emb.inv_freq"))
        return QLM_ROLE_SKIP;
    if (ends_with(name, ".bias"))
        return QLM_ROLE_BIAS;
    if (ends_with(name, "norm.weight"))
        return QLM_ROLE_NORM;
    if (strncmp(name, "model.layers.", 13) == 0 && ends_with(name, "_proj.weight"))
        return QLM_ROLE_LINEAR;
    return QLM_ROLE_UNKNOWN;
}

/* Dimensions in terms of the hyper-parameters. */
enum dim { D_NONE, D_HIDDEN, D_Q, D_KV, D_FFN, D_HEAD, D_VOCAB };
enum when { ALWAYS, IF_QKV_BIAS, IF_QK_NORM };

struct entry {
    enum qlm_tensor_kind kind;
    const char *name;             /* per layer: after "model.layers.N." */
    enum dim rows, cols;          /* cols D_NONE: a vector of rows elements */
    enum when when;
};

/* One transformer block, in file order. */
static const struct entry layer_table[] = {
    {QLM_T_ATTN_NORM, "input_layernorm.weight", D_HIDDEN, D_NONE, ALWAYS},
    {QLM_T_WQ, "self_attn.q_proj.weight", D_Q, D_HIDDEN, ALWAYS},
    {QLM_T_BQ, "self_attn.q_proj.bias", D_Q, D_NONE, IF_QKV_BIAS},
    {QLM_T_WK, "self_attn.k_proj.weight", D_KV, D_HIDDEN, ALWAYS},
    {QLM_T_BK, "self_attn.k_proj.bias", D_KV, D_NONE, IF_QKV_BIAS},
    {QLM_T_WV, "self_attn.v_proj.weight", D_KV, D_HIDDEN, ALWAYS},
    {QLM_T_BV, "self_attn.v_proj.bias", D_KV, D_NONE, IF_QKV_BIAS},
    {QLM_T_Q_NORM, "self_attn.q_norm.weight", D_HEAD, D_NONE, IF_QK_NORM},
    {QLM_T_K_NORM, "self_attn.k_norm.weight", D_HEAD, D_NONE, IF_QK_NORM},
    {QLM_T_WO, "self_attn.o_proj.weight", D_HIDDEN, D_Q, ALWAYS},
    {QLM_T_FFN_NORM, "post_attention_layernorm.weight", D_HIDDEN, D_NONE, ALWAYS},
    {QLM_T_WGATE, "mlp.gate_proj.weight", D_FFN, D_HIDDEN, ALWAYS},
    {QLM_T_WUP, "mlp.up_proj.weight", D_FFN, D_HIDDEN, ALWAYS},
    {QLM_T_WDOWN, "mlp.down_proj.weight", D_HIDDEN, D_FFN, ALWAYS},
};
#define N_LAYER_ENTRIES (sizeof layer_table / sizeof layer_table[0])

static const struct entry embed_entry = {QLM_T_EMBED, "model.embed_tokens.weight", D_VOCAB,
                                         D_HIDDEN, ALWAYS};
static const struct entry norm_entry = {QLM_T_OUT_NORM, "model.norm.weight", D_HIDDEN, D_NONE,
                                        ALWAYS};
static const struct entry head_entry = {QLM_T_HEAD, "lm_head.weight", D_VOCAB, D_HIDDEN, ALWAYS};

static uint64_t dim_value(const struct qlm_model_params *p, enum dim d)
{
    switch (d) {
    case D_HIDDEN: return p->hidden;
    case D_Q: return p->n_heads * p->head_dim;
    case D_KV: return p->n_kv_heads * p->head_dim;
    case D_FFN: return p->ffn_hidden;
    case D_HEAD: return p->head_dim;
    case D_VOCAB: return p->vocab_size;
    case D_NONE: break;
    }
    return 0;
}

static bool wanted(const struct qlm_model_params *p, enum when w)
{
    return w == ALWAYS || (w == IF_QKV_BIAS && p->qkv_bias) || (w == IF_QK_NORM && p->qk_norm);
}

/* Positions: 0 the embedding, then n_layers x N_LAYER_ENTRIES, the final
 * norm, the head; entries a model does not have are stepped over. */
bool qlm_schema_next(const struct qlm_model_params *p, size_t *pos, struct qlm_schema_tensor *t)
{
    const size_t n_layer = (size_t)p->n_layers * N_LAYER_ENTRIES;
    for (;;) {
        size_t i = (*pos)++;
        const struct entry *e;
        int layer = -1;
        if (i == 0) {
            e = &embed_entry;
        } else if (i - 1 < n_layer) {
            layer = (int)((i - 1) / N_LAYER_ENTRIES);
            e = &layer_table[(i - 1) % N_LAYER_ENTRIES];
            if (!wanted(p, e->when))
                continue;
        } else if (i - 1 == n_layer) {
            e = &norm_entry;
        } else if (i - 1 == n_layer + 1 && !p->tied) {
            e = &head_entry;
        } else {
            *pos = i; /* stay at the end */
            return false;
        }
        memset(t, 0, sizeof *t);
        t->kind = e->kind;
        t->layer = layer;
        if (layer >= 0)
            snprintf(t->name, sizeof t->name, "model.layers.%d.%s", layer, e->name);
        else
            snprintf(t->name, sizeof t->name, "%s", e->name);
        t->role = qlm_schema_role(t->name);
        t->n_dims = e->cols == D_NONE ? 1 : 2;
        t->dims[0] = dim_value(p, e->rows);
        t->dims[1] = dim_value(p, e->cols);
        return true;
    }
}

static void format_dims(char *buf, size_t len, int n_dims, const uint64_t *dims)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n_dims && i < 8 && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%" PRIu64, i ? ", " : "", dims[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

enum qlm_err qlm_schema_check_shape(const char *file, const struct qlm_schema_tensor *want,
                                    int n_dims, const uint64_t *dims, struct qlm_error *err)
{
    if (dims == NULL)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: missing tensor '%s'", file, want->name);
    bool ok = n_dims == want->n_dims;
    for (int i = 0; ok && i < n_dims; i++)
        ok = dims[i] == want->dims[i];
    if (ok)
        return QLM_OK;
    char got[200], exp[64];
    format_dims(got, sizeof got, n_dims, dims);
    format_dims(exp, sizeof exp, want->n_dims, want->dims);
    return qlm_error_set(err, QLM_E_FORMAT, "%s: tensor '%s' has shape %s, expected %s", file,
                         want->name, got, exp);
}
