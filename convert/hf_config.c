/*
 * hf_config.c — config.json -> struct qlm_model_params, strictly: every key the
 * model needs is present with the right JSON type and a sane value, and each
 * problem is one message naming the file and the key.
 */
#include "hf_config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE_LIMIT ((uint64_t)1 << 31) /* every dimension stays below 2^31 */

/* A positive integer key below 2^31; absent -> *v = dflt, or an error if dflt == 0. */
static enum qlm_err get_size(json_t *root, const char *name, const char *key, uint64_t dflt,
                             uint64_t *v, struct qlm_error *err)
{
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) {
        if (dflt == 0)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: missing key '%s'", name, key);
        *v = dflt;
        return QLM_OK;
    }
    if (!json_is_integer(j))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' must be an integer", name, key);
    json_int_t x = json_integer_value(j);
    if (x <= 0 || (uint64_t)x >= SIZE_LIMIT)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' = %lld is out of range (1 .. 2^31-1)",
                             name, key, (long long)x);
    *v = (uint64_t)x;
    return QLM_OK;
}

/* A positive finite number; absent -> dflt, or an error if dflt == 0. */
static enum qlm_err get_real(json_t *root, const char *name, const char *key, double dflt,
                             double *v, struct qlm_error *err)
{
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) {
        if (dflt == 0)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: missing key '%s'", name, key);
        *v = dflt;
        return QLM_OK;
    }
    if (!json_is_number(j))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' must be a number", name, key);
    double x = json_number_value(j);
    if (!isfinite(x) || x <= 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' = %g must be positive", name, key, x);
    *v = x;
    return QLM_OK;
}

static enum qlm_err get_bool(json_t *root, const char *name, const char *key, bool dflt, bool *v,
                             struct qlm_error *err)
{
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) {
        *v = dflt;
        return QLM_OK;
    }
    if (!json_is_boolean(j))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key '%s' must be true or false", name, key);
    *v = json_is_true(j);
    return QLM_OK;
}

static enum qlm_err parse_root(json_t *root, const char *name, struct qlm_model_params *c,
                               struct qlm_error *err)
{
    if (!json_is_object(root))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: not a JSON object", name);

    json_t *mt = json_object_get(root, "model_type");
    if (!mt)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: missing key 'model_type'", name);
    if (!json_is_string(mt))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: key 'model_type' must be a string", name);
    const char *type = json_string_value(mt);
    int arch = qlm_arch_from_name(type);
    if (arch < 0)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: model_type '%.40s' is not supported (qwen3, qwen2, llama)", name,
                             type);
    c->arch = (enum qlm_arch)arch;

    /* The forward pass is SwiGLU with plain RoPE and full attention: refuse
     * configs that ask for anything else rather than run them wrongly. */
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act)) {
        if (!json_is_string(act))
            return qlm_error_set(err, QLM_E_FORMAT, "%s: key 'hidden_act' must be a string", name);
        if (strcmp(json_string_value(act), "silu") != 0)
            return qlm_error_set(err, QLM_E_FORMAT,
                                 "%s: hidden_act '%.40s' is not supported (silu)", name,
                                 json_string_value(act));
    }
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: rope_scaling is not supported (must be null)",
                             name);
    bool b = false;
    QLM_TRY(get_bool(root, name, "use_sliding_window", false, &b, err));
    if (b)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: use_sliding_window true is not supported",
                             name);
    /* layer_types (newer transformers): every layer must be full attention */
    json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        size_t i;
        json_t *e;
        if (!json_is_array(lt))
            return qlm_error_set(err, QLM_E_FORMAT, "%s: key 'layer_types' must be an array",
                                 name);
        json_array_foreach(lt, i, e) {
            if (!json_is_string(e) || strcmp(json_string_value(e), "full_attention") != 0)
                return qlm_error_set(err, QLM_E_FORMAT,
                                     "%s: layer_types[%zu] is not \"full_attention\" (sliding-"
                                     "window layers are not supported)", name, i);
        }
    }
    json_t *prf = json_object_get(root, "partial_rotary_factor");
    if (prf && !json_is_null(prf) && !(json_is_number(prf) && json_number_value(prf) == 1.0))
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: partial_rotary_factor other than 1 is not supported (RoPE "
                             "rotates all of head_dim)", name);
    json_t *qc = json_object_get(root, "quantization_config");
    if (qc && !json_is_null(qc))
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: quantization_config: a pre-quantized checkpoint is not "
                             "supported (convert the BF16/F16/F32 weights)", name);
    QLM_TRY(get_bool(root, name, "mlp_bias", false, &b, err));
    if (b)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: mlp_bias true is not supported", name);
    /* attention_bias also puts a bias on o_proj, which the runtime lacks. */
    QLM_TRY(get_bool(root, name, "attention_bias", false, &b, err));
    if (b)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: attention_bias true is not supported", name);

    QLM_TRY(get_size(root, name, "hidden_size", 0, &c->hidden, err));
    QLM_TRY(get_size(root, name, "intermediate_size", 0, &c->ffn_hidden, err));
    QLM_TRY(get_size(root, name, "num_hidden_layers", 0, &c->n_layers, err));
    QLM_TRY(get_size(root, name, "num_attention_heads", 0, &c->n_heads, err));
    QLM_TRY(get_size(root, name, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err));
    QLM_TRY(get_size(root, name, "vocab_size", 0, &c->vocab_size, err));
    uint64_t dflt_pos = c->arch == QLM_ARCH_LLAMA ? 2048 : 32768; /* transformers' defaults */
    QLM_TRY(get_size(root, name, "max_position_embeddings", dflt_pos, &c->max_pos, err));
    json_t *hd = json_object_get(root, "head_dim");
    if (!hd || json_is_null(hd)) {
        if (c->hidden % c->n_heads != 0)
            return qlm_error_set(err, QLM_E_FORMAT,
                                 "%s: no 'head_dim' and hidden_size %llu is not a multiple of "
                                 "num_attention_heads %llu",
                                 name, (unsigned long long)c->hidden,
                                 (unsigned long long)c->n_heads);
    }
    QLM_TRY(get_size(root, name, "head_dim", c->hidden / c->n_heads ? c->hidden / c->n_heads : 1,
                     &c->head_dim, err));
    QLM_TRY(get_real(root, name, "rms_norm_eps", 0, &c->rms_eps, err));
    QLM_TRY(get_real(root, name, "rope_theta", 10000.0, &c->rope_theta, err));
    QLM_TRY(get_bool(root, name, "tie_word_embeddings", false, &c->tied, err));
    c->qk_norm = c->arch == QLM_ARCH_QWEN3;
    c->qkv_bias = c->arch == QLM_ARCH_QWEN2;
    return qlm_schema_check(c, name, QLM_SCHEMA_CONFIG, err);
}

enum qlm_err qlm_hf_config_parse(const char *json, size_t len, const char *name,
                                 struct qlm_model_params *cfg, struct qlm_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: invalid JSON at line %d: %s", name, je.line,
                             je.text);
    enum qlm_err rc = parse_root(root, name, cfg, err);
    json_decref(root);
    return rc;
}

enum qlm_err qlm_hf_config_load(const char *model_dir, struct qlm_model_params *cfg,
                                struct qlm_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", model_dir) >= sizeof path)
        return qlm_error_set(err, QLM_E_INVALID, "%s: path too long", model_dir);
    char *buf;
    size_t len;
    QLM_TRY(qlm_input_read(path, (size_t)16 << 20, &buf, &len, err));
    enum qlm_err rc = qlm_hf_config_parse(buf, len, path, cfg, err);
    free(buf);
    return rc;
}
