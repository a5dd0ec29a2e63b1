/*
 * policy.h — what qlm-convert writes for each Hugging Face tensor, and the
 * check of a checkpoint's tensor set against config.json.
 *
 *   role     tensors                          written as
 *   linear   model.layers.N.*_proj.weight     the chosen type, per group
 *   norm     *norm.weight                     f32
 *   bias     *.bias                           f32
 *   embed    model.embed_tokens.weight        the chosen type; q8 under q4
 *   head     lm_head.weight                   like the embedding, or dropped
 *                                             when tied (stored once)
 *   skip     *.rotary_emb.inv_freq            nothing (recomputed at run time)
 */
#ifndef QLM_POLICY_H
#define QLM_POLICY_H

#include "hf_config.h"
#include "qlm_schema.h"

#define QLM_DEFAULT_GROUP 32

/* Output dtype of a tensor of this role when the user chose `chosen`. */
enum qlm_dtype qlm_policy_dtype(enum qlm_role role, enum qlm_dtype chosen);
/* Checks a --group value: a multiple of 32 in [32, 4096]. */
bool qlm_policy_group_ok(uint32_t group);

/* One tensor to write, in file order. */
struct qlm_plan_item {
    char name[128];
    const struct qlm_st_tensor *src;
    enum qlm_role role;
    enum qlm_dtype dtype;   /* output */
    uint32_t group;         /* 0 for float outputs */
    int n_dims;             /* 1 or 2 */
    uint64_t dims[2];       /* {rows, cols} or {n} */
    uint64_t rows, cols;    /* a vector is 1 x n */
    uint64_t bytes;         /* output bytes */
    uint64_t perm_head_dim; /* 0, or the source's rows are reordered per head of
                               this many rows (a Llama GGUF's q/k: gguf_import.h) */
};

struct qlm_plan {
    size_t n;
    struct qlm_plan_item *items;  /* embedding, layers in order, norm, [lm_head] */
    bool tied;                    /* the head is the embedding (model.tied = 1) */
    bool head_dropped;            /* a lm_head.weight in the checkpoint was not written */
    bool head_equal;              /* ... because its bytes equal the embedding's */
    uint64_t n_params;            /* elements written */
    uint64_t bytes_out;           /* tensor bytes written */
    uint64_t bytes_in;            /* source bytes read (the dropped head excluded) */
};

/* Build the plan: every tensor the hyper-parameters imply must be present
 * with its shape and a dtype the converter reads (F32/F16/BF16, and a GGUF's
 * Q8_0/Q4_0); anything else in the checkpoint is an error, except rotary
 * inv_freq buffers.  name (e.g. MODEL_DIR) is used in messages, and
 * params_from (e.g. "config.json") names where the hyper-parameters came
 * from.  chosen: the --type; group: the --group (ignored for floats). */
enum qlm_err qlm_plan_build(const struct qlm_model_params *cfg, const struct qlm_st_model *m,
                            const char *name, const char *params_from, enum qlm_dtype chosen,
                            uint32_t group, struct qlm_plan *plan, struct qlm_error *err);
void qlm_plan_free(struct qlm_plan *plan);

/* Drop the pages of [p, p + len) from this process (file-backed, read-only
 * mappings only): keeps the converter's RSS flat while it streams. */
void qlm_release_range(const void *p, uint64_t len);

#endif
