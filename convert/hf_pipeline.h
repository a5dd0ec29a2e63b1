/*
 * hf_pipeline.h — internal to the tokenizer.json importer: the pipeline
 * around the BPE model (normalizer, pre_tokenizer, decoder, post_processor),
 * checked against what the runtime executes.
 */
#ifndef QLM_HF_PIPELINE_H
#define QLM_HF_PIPELINE_H

#include <jansson.h>

#include "qlm_format.h"

#define QLM_HF_MAX_TOKENS (1u << 24) /* refuse absurd ids before allocating */

/* A non-negative integer id below QLM_HF_MAX_TOKENS. */
bool qlm_hf_get_id(json_t *v, uint32_t *id);

struct qlm_hf_pipeline {
    uint32_t flags;             /* QLM_TOKF_NFC when the normalizer is NFC */
    char *regex;                /* the pre-split pattern, malloc'ed */
    int32_t post_bos;           /* the BOS a TemplateProcessing prepends, or -1 */
};

/* Check root's pipeline entries (name: the file, for messages); on success
 * *out holds what they say, its regex the caller's to free. */
enum qlm_err qlm_hf_pipeline_check(json_t *root, const char *name, struct qlm_hf_pipeline *out,
                                   struct qlm_error *err);

#endif
