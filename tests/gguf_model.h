/*
 * gguf_model.h — a Hugging Face checkpoint (config.json, safetensors,
 * tokenizer.json) written as a GGUF the way llama.cpp's convert_hf_to_gguf
 * lays one out: the same keys, tensor names and dims, norms and biases F32,
 * the matrices in the chosen type (Q8_0 / Q4_0 by gguf_writer.h's reference
 * quantizers), the tokenizer's tokens padded with UNUSED "[PADn]" up to the
 * embedding's rows, and a Llama's q/k rows reordered as that converter's
 * permute() does.  For fixtures; not installed.
 */
#ifndef QLM_TESTS_GGUF_MODEL_H
#define QLM_TESTS_GGUF_MODEL_H

#include <stdint.h>

struct gm_opts {
    uint32_t type;          /* ggml type of the matrices: 0 F32, 1 F16, 30 BF16, 8 Q8_0, 2 Q4_0 */
    const char *arch;       /* NULL: config.json's; "llama": as a Llama (no q/k norms, q/k
                               rows reordered) */
    const char *pre;        /* tokenizer.ggml.pre; NULL: "qwen2" */
    unsigned minus128;      /* Q8_0: the code -128 in this many blocks of the first matrix */
};

/* NULL on success, else a message. */
const char *gm_write(const char *model_dir, const char *out, const struct gm_opts *o);

#endif
