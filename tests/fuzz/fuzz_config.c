/*
 * fuzz_config.c — libFuzzer harness for the config.json parser
 * (qlm_hf_config_parse).  An accepted config must satisfy what the converter
 * relies on: positive sizes, heads divisible, head_dim even.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qlm_model_params cfg;
    struct qlm_error err;
    if (qlm_hf_config_parse((const char *)data, size, "config.json", &cfg, &err) != QLM_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort();
        return 0;
    }
    if (cfg.hidden == 0 || cfg.ffn_hidden == 0 || cfg.n_layers == 0 || cfg.n_heads == 0 ||
        cfg.n_kv_heads == 0 || cfg.head_dim == 0 || cfg.vocab_size == 0 ||
        cfg.n_heads % cfg.n_kv_heads != 0 || cfg.head_dim % 2 != 0 || !(cfg.rms_eps > 0))
        abort();
    (void)qlm_arch_name(cfg.arch);
    return 0;
}
