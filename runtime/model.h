/*
 * model.h — internal: the loaded model, weights as views into the mapping.
 */
#ifndef QLM_MODEL_H
#define QLM_MODEL_H

#include "kernels/kernels.h"
#include "qlm.h"
#include "qlm_schema.h"

struct qlm_tok;

/* One transformer block.  Matrices are (rows = out, cols = in). */
struct qlm_layer {
    const float *attn_norm;   /* (hidden) input_layernorm */
    const float *ffn_norm;    /* (hidden) post_attention_layernorm */
    const float *q_norm;      /* (head_dim) or NULL */
    const float *k_norm;      /* (head_dim) or NULL */
    const float *bq, *bk, *bv; /* (n_heads*head_dim), (n_kv*head_dim) x2, or NULL */
    struct qlm_matrix wq;     /* (n_heads*head_dim, hidden) */
    struct qlm_matrix wk;     /* (n_kv*head_dim, hidden) */
    struct qlm_matrix wv;     /* (n_kv*head_dim, hidden) */
    struct qlm_matrix wo;     /* (hidden, n_heads*head_dim) */
    struct qlm_matrix wgate;  /* (ffn, hidden) */
    struct qlm_matrix wup;    /* (ffn, hidden) */
    struct qlm_matrix wdown;  /* (hidden, ffn) */
};

struct qlm_model {
    struct qlm_file *file;
    struct qlm_hparams hp;
    struct qlm_model_params params; /* as the metadata says: walks the schema */
    struct qlm_matrix embed;  /* (vocab, hidden) */
    struct qlm_matrix head;   /* (vocab, hidden): lm_head, or embed when tied */
    const float *out_norm;    /* (hidden) model.norm */
    struct qlm_layer *layers; /* (n_layers) */
    uint64_t bytes_per_token;
    struct qlm_tok *tok;
    float *owned;             /* norm/bias vectors converted to f32 (non-f32 files) */
};

#endif
