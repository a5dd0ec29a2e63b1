/*
 * schema.c — the model schema (qlm_schema.h): architectures, the metadata
 * of the hyper-parameters, the tensor table and the shape check.
 */
#include "qlm_schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <inttypes.h>
#include <pcre2.h>
#include <stddef.h>
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

/* Each numeric hyper-parameter: its names in config.json, in the metadata
 * and in a GGUF (after "ARCH."), and the range the runtime executes.
 * Larger values are corrupt or hostile input (or a model far beyond a
 * laptop). */
struct field {
    const char *config, *meta, *gguf;
    size_t off;                   /* in struct qlm_model_params */
    bool real;                    /* a double, else a uint64_t */
    double lo, hi;
};

#define U64(cfg, key, gguf, member, lo, hi)                                                   \
    {cfg, key, gguf, offsetof(struct qlm_model_params, member), false, lo, hi}
#define F64(cfg, key, gguf, member, lo, hi)                                                   \
    {cfg, key, gguf, offsetof(struct qlm_model_params, member), true, lo, hi}
static const struct field fields[] = {
    U64("num_hidden_layers", QLM_KEY_N_LAYERS, "block_count", n_layers, 1, MAX_LAYERS),
    U64("hidden_size", QLM_KEY_HIDDEN, "embedding_length", hidden, 1, MAX_DIM),
    U64("num_attention_heads", QLM_KEY_N_HEADS, "attention.head_count", n_heads, 1, 4096),
    U64("num_key_value_heads", QLM_KEY_N_KV_HEADS, "attention.head_count_kv", n_kv_heads, 1,
        4096),
    U64("head_dim", QLM_KEY_HEAD_DIM, "attention.key_length", head_dim, 2, 4096),
    U64("intermediate_size", QLM_KEY_FFN_HIDDEN, "feed_forward_length", ffn_hidden, 1, MAX_DIM),
    U64("vocab_size", QLM_KEY_VOCAB_SIZE, "vocab_size", vocab_size, 1, MAX_VOCAB),
    U64("max_position_embeddings", QLM_KEY_MAX_POS, "context_length", max_pos, 1, 1 << 24),
    F64("rope_theta", QLM_KEY_ROPE_THETA, "rope.freq_base", rope_theta, 1.0, 1e12),
    F64("rms_norm_eps", QLM_KEY_RMS_EPS, "attention.layer_norm_rms_epsilon", rms_eps, 1e-30, 1.0),
};
#undef U64
#undef F64

static const struct field *field_of(size_t off)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].off == off)
            return &fields[i];
    return NULL;
}

/* The field's name where src has it ("qwen3.rope.freq_base" in a GGUF). */
static const char *field_name(const struct field *f, const struct qlm_model_params *p,
                              enum qlm_schema_source src, char *buf, size_t len)
{
    if (src == QLM_SCHEMA_CONFIG)
        return f->config;
    if (src == QLM_SCHEMA_META)
        return f->meta;
    snprintf(buf, len, "%s.%s", qlm_arch_name(p->arch), f->gguf);
    return buf;
}

enum qlm_err qlm_schema_check(const struct qlm_model_params *p, const char *name,
                              enum qlm_schema_source src, struct qlm_error *err)
{
    const char *what = src == QLM_SCHEMA_CONFIG ? "key" : "metadata";
    char b1[96], b2[96];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const struct field *f = &fields[i];
        const char *key = field_name(f, p, src, b1, sizeof b1);
        const char *v = (const char *)p + f->off;
        if (f->real) {
            double x;
            memcpy(&x, v, sizeof x);
            if (!(x >= f->lo && x <= f->hi))
                return qlm_error_set(err, QLM_E_RANGE, "%s: %s '%s' = %g out of range [%g, %g]",
                                     name, what, key, x, f->lo, f->hi);
        } else {
            uint64_t x;
            memcpy(&x, v, sizeof x);
            if (x < (uint64_t)f->lo || x > (uint64_t)f->hi)
                return qlm_error_set(err, QLM_E_RANGE,
                                     "%s: %s '%s' = %" PRIu64 " out of range [%.0f, %.0f]", name,
                                     what, key, x, f->lo, f->hi);
        }
    }
    const struct field *heads = field_of(offsetof(struct qlm_model_params, n_heads));
    const struct field *kv = field_of(offsetof(struct qlm_model_params, n_kv_heads));
    const struct field *hd = field_of(offsetof(struct qlm_model_params, head_dim));
    if (p->n_heads % p->n_kv_heads != 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: %s '%s' = %" PRIu64 " is not a multiple of '%s' = %" PRIu64,
                             name, what, field_name(heads, p, src, b1, sizeof b1), p->n_heads,
                             field_name(kv, p, src, b2, sizeof b2), p->n_kv_heads);
    if (p->head_dim % 2 != 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: %s '%s' = %" PRIu64 " is odd (RoPE rotates pairs)", name, what,
                             field_name(hd, p, src, b1, sizeof b1), p->head_dim);
    if (p->n_heads * p->head_dim > MAX_DIM)
        return qlm_error_set(err, QLM_E_RANGE,
                             "%s: attention heads x head_dim = %" PRIu64 " is out of range "
                             "(at most %d)", name, p->n_heads * p->head_dim, MAX_DIM);
    return QLM_OK;
}

enum qlm_err qlm_schema_regex(const char *pattern, const char *name,
                              struct pcre2_real_code_8 **code, struct qlm_error *err)
{
    size_t len = strlen(pattern);
    if (len > QLM_SCHEMA_REGEX_MAX)
        return qlm_error_set(err, QLM_E_RANGE,
                             "%s: tokenizer regex of %zu bytes is too long (at most %d)", name,
                             len, QLM_SCHEMA_REGEX_MAX);
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &ecode,
                                   &eoff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tokenizer regex: %s at offset %zu", name,
                             (const char *)msg, (size_t)eoff);
    }
    if (code != NULL)
        *code = re;
    else
        pcre2_code_free(re);
    return QLM_OK;
}

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

static enum qlm_err meta_int(const struct qlm_file *f, const char *key, uint64_t *out,
                             struct qlm_error *err)
{
    enum qlm_err rc = qlm_file_meta_u64(f, key, out, err);
    if (rc != QLM_OK)
        return qlm_error_set(err, rc, "%s: metadata '%s' %s", f->path, key,
                             rc == QLM_E_NOTFOUND ? "missing" : "is not an unsigned integer");
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

static enum qlm_err meta_real(const struct qlm_file *f, const char *key, double *out,
                              struct qlm_error *err)
{
    enum qlm_err rc = qlm_file_meta_f64(f, key, out, err);
    if (rc != QLM_OK)
        return qlm_error_set(err, rc, "%s: metadata '%s' %s", f->path, key,
                             rc == QLM_E_NOTFOUND ? "missing" : "is not a float");
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
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char *v = (char *)p + fields[i].off;
        if (fields[i].real) {
            double x;
            QLM_TRY(meta_real(f, fields[i].meta, &x, err));
            memcpy(v, &x, sizeof x);
        } else {
            uint64_t x;
            QLM_TRY(meta_int(f, fields[i].meta, &x, err));
            memcpy(v, &x, sizeof x);
        }
    }
    QLM_TRY(meta_bool(f, QLM_KEY_TIED, false, &p->tied, err));
    QLM_TRY(meta_bool(f, QLM_KEY_QK_NORM, p->arch == QLM_ARCH_QWEN3, &p->qk_norm, err));
    QLM_TRY(meta_bool(f, QLM_KEY_QKV_BIAS, p->arch == QLM_ARCH_QWEN2, &p->qkv_bias, err));
    return qlm_schema_check(p, f->path, QLM_SCHEMA_META, err);
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
