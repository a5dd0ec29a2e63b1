/*
 * qlm_schema.h — the model schema, shared by the converter (which writes a
 * model) and the runtime's loader (which reads one): the architectures, their
 * hyper-parameters with the metadata keys that store them and the ranges both
 * sides accept, and the tensors a model of given hyper-parameters holds
 * (names, roles, shapes) in file order.  formats/ knows bytes; this part
 * knows what the bytes of a dense decoder (Qwen3, Qwen2, Llama) mean.
 *
 * Tensor names are the Hugging Face names ("model.embed_tokens.weight",
 * "model.layers.0.self_attn.q_proj.weight", ...).  A tied output head is not
 * stored: "lm_head.weight" is present exactly when the head differs from the
 * embedding (model.tied = 0).
 */
#ifndef QLM_SCHEMA_H
#define QLM_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlm_format.h"

enum qlm_arch { QLM_ARCH_QWEN3 = 0, QLM_ARCH_QWEN2, QLM_ARCH_LLAMA, QLM_ARCH_COUNT };

const char *qlm_arch_name(enum qlm_arch a);        /* "qwen3", ...; "?" if unknown */
int qlm_arch_from_name(const char *name);          /* -1 if unknown */

/* ---- hyper-parameters ------------------------------------------------------ */

struct qlm_model_params {
    enum qlm_arch arch;
    uint64_t hidden;              /* hidden_size */
    uint64_t ffn_hidden;          /* intermediate_size */
    uint64_t n_layers;            /* num_hidden_layers */
    uint64_t n_heads;             /* num_attention_heads */
    uint64_t n_kv_heads;          /* num_key_value_heads */
    uint64_t head_dim;
    uint64_t vocab_size;          /* embedding rows */
    uint64_t max_pos;             /* max_position_embeddings */
    double rms_eps;               /* rms_norm_eps */
    double rope_theta;
    bool tied;                    /* the head is the embedding */
    bool qk_norm;                 /* q_norm/k_norm per head (Qwen3) */
    bool qkv_bias;                /* q/k/v_proj biases (Qwen2) */
};

/* Metadata keys (the .qlm's typed key/values) written by qlm-convert. */
#define QLM_KEY_ARCH        "general.architecture" /* str: qwen3 | qwen2 | llama */
#define QLM_KEY_NAME        "general.name"         /* str: model directory name */
#define QLM_KEY_CONVERTER   "general.converter"    /* str: "qlm-convert 0.1.0" */
#define QLM_KEY_N_LAYERS    "model.n_layers"       /* u64 */
#define QLM_KEY_HIDDEN      "model.hidden"         /* u64 hidden_size */
#define QLM_KEY_N_HEADS     "model.n_heads"        /* u64 */
#define QLM_KEY_N_KV_HEADS  "model.n_kv_heads"     /* u64 */
#define QLM_KEY_HEAD_DIM    "model.head_dim"       /* u64 */
#define QLM_KEY_FFN_HIDDEN  "model.ffn_hidden"     /* u64 intermediate_size */
#define QLM_KEY_VOCAB_SIZE  "model.vocab_size"     /* u64 embedding rows */
#define QLM_KEY_MAX_POS     "model.max_pos"        /* u64 max_position_embeddings */
#define QLM_KEY_ROPE_THETA  "model.rope_theta"     /* f64 */
#define QLM_KEY_RMS_EPS     "model.rms_eps"        /* f64 */
#define QLM_KEY_TIED        "model.tied"           /* u64 0/1: head = embedding */
#define QLM_KEY_QK_NORM     "model.qk_norm"        /* u64 0/1 (Qwen3) */
#define QLM_KEY_QKV_BIAS    "model.qkv_bias"       /* u64 0/1 (Qwen2) */
#define QLM_KEY_QUANT_TYPE  "quant.type"           /* str: f32|bf16|f16|q8|q4 */
#define QLM_KEY_QUANT_GROUP "quant.group"          /* u64 (0 for float types) */

/* Where hyper-parameters came from, for naming a field in messages: the
 * config.json key, the metadata key, or a GGUF's key ("qwen3.block_count"). */
enum qlm_schema_source { QLM_SCHEMA_CONFIG, QLM_SCHEMA_META, QLM_SCHEMA_GGUF };

/* The one validation of hyper-parameters, run by the converter on what
 * config.json says and by the loader on what the metadata says: every
 * value within the range the runtime executes, heads dividing, head_dim
 * even.  "NAME: key 'rope_theta' = 1e-300 out of range [1, 1e+12]". */
enum qlm_err qlm_schema_check(const struct qlm_model_params *p, const char *name,
                              enum qlm_schema_source src, struct qlm_error *err);

/* The tokenizer's pre-split regex compiled exactly as the runtime runs it
 * (PCRE2, UTF + UCP, at most QLM_SCHEMA_REGEX_MAX bytes): the runtime keeps
 * *code (pcre2_code_free), the converter passes code NULL to only check. */
#define QLM_SCHEMA_REGEX_MAX 65536
struct pcre2_real_code_8;
enum qlm_err qlm_schema_regex(const char *pattern, const char *name,
                              struct pcre2_real_code_8 **code, struct qlm_error *err);

/* The hyper-parameters as metadata: general.architecture and the model.*
 * keys above. */
enum qlm_err qlm_schema_write_meta(struct qlm_writer *w, const struct qlm_model_params *p);
/* Read them back from f, each present with its type, then
 * qlm_schema_check (messages name f and the key).  The flags default to
 * the architecture's (qk_norm for qwen3, qkv_bias for qwen2) when absent. */
enum qlm_err qlm_schema_read_meta(const struct qlm_file *f, struct qlm_model_params *p,
                                  struct qlm_error *err);

/* ---- tensors ------------------------------------------------------------- */

enum qlm_role {
    QLM_ROLE_UNKNOWN = 0,
    QLM_ROLE_EMBED,               /* model.embed_tokens.weight */
    QLM_ROLE_HEAD,                /* lm_head.weight */
    QLM_ROLE_LINEAR,              /* model.layers.N.*_proj.weight */
    QLM_ROLE_NORM,                /* *norm.weight */
    QLM_ROLE_BIAS,                /* *.bias */
    QLM_ROLE_SKIP,                /* *.rotary_emb.inv_freq (recomputed at run time) */
};

/* Role of a tensor from its Hugging Face name. */
enum qlm_role qlm_schema_role(const char *name);

/* Every tensor a model holds, by what it is in the forward pass. */
enum qlm_tensor_kind {
    QLM_T_EMBED, QLM_T_OUT_NORM, QLM_T_HEAD,
    QLM_T_ATTN_NORM, QLM_T_WQ, QLM_T_BQ, QLM_T_WK, QLM_T_BK, QLM_T_WV, QLM_T_BV,
    QLM_T_Q_NORM, QLM_T_K_NORM, QLM_T_WO, QLM_T_FFN_NORM, QLM_T_WGATE, QLM_T_WUP, QLM_T_WDOWN,
    QLM_T_COUNT
};

struct qlm_schema_tensor {
    enum qlm_tensor_kind kind;
    enum qlm_role role;
    int layer;                    /* -1 for the model-level tensors */
    char name[64];
    int n_dims;                   /* 1 (vector) or 2 (matrix) */
    uint64_t dims[2];             /* {rows = out, cols = in} or {n} */
};

/* Walks the tensors p implies in file order: the embedding, each layer's
 * (input norm, q/k/v with their biases when qkv_bias, q/k norms when
 * qk_norm, o, post-attention norm, gate, up, down), the final norm, and
 * lm_head when !p->tied.  Start with *pos = 0; false at the end. */
bool qlm_schema_next(const struct qlm_model_params *p, size_t *pos, struct qlm_schema_tensor *t);

/* The one presence and shape check of both sides: n_dims/dims (as found in
 * file) against the schema's: "FILE: tensor 'NAME' has shape [a, b],
 * expected [c, d]"; dims NULL: the tensor is absent, "FILE: missing tensor
 * 'NAME'". */
enum qlm_err qlm_schema_check_shape(const char *file, const struct qlm_schema_tensor *want,
                                    int n_dims, const uint64_t *dims, struct qlm_error *err);

#endif
