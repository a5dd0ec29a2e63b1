/*
 * hf_config.h — read a Hugging Face config.json (Qwen3, Qwen2, Llama dense)
 * into the hyper-parameters the converter needs.
 */
#ifndef QLM_HF_CONFIG_H
#define QLM_HF_CONFIG_H

#include "qlm_format.h"

enum qlm_arch { QLM_ARCH_QWEN3 = 0, QLM_ARCH_QWEN2, QLM_ARCH_LLAMA };

struct qlm_hf_config {
    enum qlm_arch arch;
    char model_type[16];          /* "qwen3" | "qwen2" | "llama" */
    uint64_t hidden;              /* hidden_size */
    uint64_t ffn_hidden;          /* intermediate_size */
    uint64_t n_layers;            /* num_hidden_layers */
    uint64_t n_heads;             /* num_attention_heads */
    uint64_t n_kv_heads;          /* num_key_value_heads (default n_heads) */
    uint64_t head_dim;            /* default hidden / n_heads */
    uint64_t vocab_size;
    uint64_t max_pos;             /* max_position_embeddings */
    double rms_eps;               /* rms_norm_eps */
    double rope_theta;            /* default 10000 */
    bool tied;                    /* tie_word_embeddings */
    bool qk_norm;                 /* q_norm/k_norm per head (Qwen3) */
    bool qkv_bias;                /* q/k/v_proj biases (Qwen2, or attention_bias) */
};

/* Parse config.json text; name is used in messages ("DIR/config.json"). */
enum qlm_err qlm_hf_config_parse(const char *json, size_t len, const char *name,
                                 struct qlm_hf_config *cfg, struct qlm_error *err);
/* Read MODEL_DIR/config.json. */
enum qlm_err qlm_hf_config_load(const char *model_dir, struct qlm_hf_config *cfg,
                                struct qlm_error *err);
const char *qlm_arch_name(enum qlm_arch a);

#endif
