/*
 * hf_config.h — read a Hugging Face config.json (Qwen3, Qwen2, Llama dense)
 * into the schema's hyper-parameters (qlm_schema.h).
 */
#ifndef QLM_HF_CONFIG_H
#define QLM_HF_CONFIG_H

#include "qlm_schema.h"

/* Parse config.json text; name is used in messages ("DIR/config.json"). */
enum qlm_err qlm_hf_config_parse(const char *json, size_t len, const char *name,
                                 struct qlm_model_params *cfg, struct qlm_error *err);
/* Read MODEL_DIR/config.json. */
enum qlm_err qlm_hf_config_load(const char *model_dir, struct qlm_model_params *cfg,
                                struct qlm_error *err);

#endif
