/* gguf_model.c — a Hugging Face checkpoint as a llama.cpp-style GGUF
 * (gguf_model.h). */
#include "gguf_model.h"
#include "gguf_writer.h"

#include "gguf_import.h"
#include "hf_config.h"
#include "hf_tokenizer.h"
#include "qlm_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char msg[600];

/* Token text as a GGUF holds it: normal tokens in the byte-level alphabet
 * (UTF-8), added and special ones raw. */
static char *gguf_text(const struct qlm_token *t, size_t *len)
{
    char *s = malloc(2 * (size_t)t->len + 1), *p = s;
    if (!s)
        abort();
    for (uint32_t i = 0; i < t->len; i++) {
        if (t->kind != QLM_TOK_NORMAL) {
            *p++ = (char)t->bytes[i];
            continue;
        }
        uint32_t cp = qlm_bytelevel_cp(t->bytes[i]);
        if (cp < 0x80) {
            *p++ = (char)cp;
        } else {
            *p++ = (char)(0xc0 | cp >> 6);
            *p++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    *len = (size_t)(p - s);
    return s;
}

static void write_tokenizer(struct gw *w, const struct qlm_tokdata *tok, uint64_t vocab,
                            const char *pre)
{
    char **text = calloc(vocab, sizeof *text);
    size_t *len = calloc(vocab, sizeof *len);
    int32_t *type = calloc(vocab, sizeof *type);
    if (!text || !len || !type)
        abort();
    for (uint64_t i = 0; i < vocab; i++) {
        if (i < tok->n_tokens) {
            const struct qlm_token *t = &tok->tokens[i];
            text[i] = gguf_text(t, &len[i]);
            type[i] = t->kind == QLM_TOK_SPECIAL ? 3 : t->kind == QLM_TOK_ADDED ? 4 : 1;
        } else {
            text[i] = malloc(32);
            len[i] = (size_t)snprintf(text[i], 32, "[PAD%llu]", (unsigned long long)i);
            type[i] = 5;
        }
    }
    char **merges = calloc(tok->n_merges + 1, sizeof *merges);
    for (uint32_t i = 0; i < tok->n_merges; i++) {
        const struct qlm_merge *m = &tok->merges[i];
        size_t a = len[m->left], b = len[m->right];
        merges[i] = malloc(a + b + 2);
        memcpy(merges[i], text[m->left], a);
        merges[i][a] = ' ';
        memcpy(merges[i] + a + 1, text[m->right], b);
        merges[i][a + b + 1] = '\0';
    }
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_str(w, "tokenizer.ggml.pre", pre ? pre : "qwen2");
    gw_arr_str(w, "tokenizer.ggml.tokens", vocab, (const char *const *)text, len);
    gw_arr_i32(w, "tokenizer.ggml.token_type", vocab, type);
    gw_arr_str(w, "tokenizer.ggml.merges", tok->n_merges, (const char *const *)merges, NULL);
    if (tok->n_eos)
        gw_u32(w, "tokenizer.ggml.eos_token_id", tok->eos[0]);
    if (tok->pad_id >= 0)
        gw_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)tok->pad_id);
    if (tok->bos_id >= 0)
        gw_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)tok->bos_id);
    gw_bool(w, "tokenizer.ggml.add_bos_token", (tok->flags & QLM_TOKF_ADD_BOS) != 0);
    if (tok->chat_template[0])
        gw_str(w, "tokenizer.chat_template", tok->chat_template);
    for (uint64_t i = 0; i < vocab; i++)
        free(text[i]);
    for (uint32_t i = 0; i < tok->n_merges; i++)
        free(merges[i]);
    free(merges);
    free(text);
    free(len);
    free(type);
}

static void write_params(struct gw *w, const struct qlm_model_params *c, const char *name,
                         uint32_t file_type)
{
    char k[96];
    const char *a = qlm_arch_name(c->arch);
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    gw_str(w, "general.architecture", a);
    gw_str(w, "general.type", "model");
    gw_str(w, "general.name", name);
    gw_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    gw_u32(w, KEY("context_length"), (uint32_t)c->max_pos);
    gw_u32(w, KEY("embedding_length"), (uint32_t)c->hidden);
    gw_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn_hidden);
    gw_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    gw_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    gw_f32(w, KEY("rope.freq_base"), (float)c->rope_theta);
    gw_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c->rms_eps);
    gw_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
    gw_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    if (c->arch == QLM_ARCH_LLAMA) {
        gw_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
        gw_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    }
#undef KEY
    gw_u32(w, "general.file_type", file_type);
    gw_u32(w, "general.quantization_version", 2);
}

/* convert_hf_to_gguf's LlamaModel.permute: rows reshaped (heads, 2, hd/2)
 * and the last two axes swapped. */
static void llama_permute(const float *x, float *y, uint64_t rows, uint64_t cols, uint64_t hd)
{
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t h = r / hd, j = r % hd / (hd / 2), i = r % (hd / 2);
        memcpy(y + (h * hd + 2 * i + j) * cols, x + r * cols, cols * sizeof *y);
    }
}

/* The tensor's rows x cols floats in type into a malloc'ed buffer. */
static uint8_t *encode(const float *x, uint64_t rows, uint64_t cols, uint32_t type,
                       size_t *bytes)
{
    uint64_t n = rows * cols;
    unsigned eb = qlm_ggml_block_elems(type), bb = qlm_ggml_block_bytes(type);
    *bytes = (size_t)(n / eb * bb);
    uint8_t *out = malloc(*bytes ? *bytes : 1);
    if (!out)
        abort();
    for (uint64_t k = 0; k < n && (type == QLM_GGML_F16 || type == QLM_GGML_BF16); k++) {
        uint16_t h = type == QLM_GGML_F16 ? qlm_f32_to_f16(x[k]) : qlm_f32_to_bf16(x[k]);
        memcpy(out + 2 * k, &h, 2);
    }
    if (type == QLM_GGML_F32)
        memcpy(out, x, (size_t)n * 4);
    else if (type == QLM_GGML_Q8_0)
        gw_quantize_q8_0(x, (size_t)n, out);
    else if (type == QLM_GGML_Q4_0)
        gw_quantize_q4_0(x, (size_t)n, out);
    return out;
}

static const char *write_tensors(struct gw *w, const struct qlm_model_params *c,
                                 const struct qlm_st_model *m, const struct gm_opts *o)
{
    struct qlm_schema_tensor want;
    unsigned minus = o->minus128;
    for (size_t pos = 0; qlm_schema_next(c, &pos, &want);) {
        const struct qlm_st_tensor *t = qlm_st_find(m, want.name);
        char gname[128];
        if (!t || !qlm_gguf_name_from_hf(want.name, gname, sizeof gname))
            return snprintf(msg, sizeof msg, "no tensor '%s' in the checkpoint", want.name), msg;
        uint64_t rows = want.n_dims == 2 ? want.dims[0] : 1;
        uint64_t cols = want.n_dims == 2 ? want.dims[1] : want.dims[0];
        float *x = malloc((size_t)(rows * cols) * sizeof *x);
        if (!x)
            abort();
        qlm_st_to_f32(t, 0, rows * cols, x);
        if (c->arch == QLM_ARCH_LLAMA && (want.kind == QLM_T_WQ || want.kind == QLM_T_WK)) {
            float *y = malloc((size_t)(rows * cols) * sizeof *y);
            llama_permute(x, y, rows, cols, c->head_dim);
            free(x);
            x = y;
        }
        uint32_t type = want.n_dims == 2 ? o->type : QLM_GGML_F32;
        size_t bytes;
        uint8_t *data = encode(x, rows, cols, type, &bytes);
        for (; type == QLM_GGML_Q8_0 && minus > 0 && minus <= bytes / 34; minus--)
            data[(minus - 1) * 34 + 2] = 0x80;
        uint64_t ne[2] = {cols, rows};
        gw_tensor(w, gname, type, (unsigned)want.n_dims, ne, data, bytes);
        free(data);
        free(x);
    }
    return NULL;
}

const char *gm_write(const char *model_dir, const char *out, const struct gm_opts *o)
{
    struct qlm_model_params c;
    struct qlm_error err = {0};
    struct qlm_st_model *m = NULL;
    struct qlm_tokdata tok;
    memset(&tok, 0, sizeof tok);
    if (qlm_hf_config_load(model_dir, &c, &err) != QLM_OK ||
        qlm_st_open(&m, model_dir, &err) != QLM_OK ||
        qlm_hf_tokenizer_load(model_dir, &tok, &err) != QLM_OK) {
        qlm_st_close(m);
        snprintf(msg, sizeof msg, "%s", err.msg);
        return msg;
    }
    if (o->arch) {
        c.arch = (enum qlm_arch)qlm_arch_from_name(o->arch);
        c.qk_norm = c.arch == QLM_ARCH_QWEN3;
        c.qkv_bias = c.arch == QLM_ARCH_QWEN2;
    }
    static const struct { uint32_t type, file_type; } ft[] = {
        {QLM_GGML_F32, 0}, {QLM_GGML_F16, 1}, {QLM_GGML_Q4_0, 2}, {QLM_GGML_Q8_0, 7},
        {QLM_GGML_BF16, 32}};
    uint32_t file_type = UINT32_MAX;
    for (size_t i = 0; i < sizeof ft / sizeof ft[0]; i++)
        if (ft[i].type == o->type)
            file_type = ft[i].file_type;
    const char *base = strrchr(model_dir, '/');
    struct gw *w = gw_new();
    write_params(w, &c, base && base[1] ? base + 1 : model_dir, file_type);
    write_tokenizer(w, &tok, c.vocab_size, o->pre);
    const char *e = file_type == UINT32_MAX ? "the type is not F32, F16, BF16, Q8_0 or Q4_0"
                                            : write_tensors(w, &c, m, o);
    if (!e && !gw_write(w, out)) {
        snprintf(msg, sizeof msg, "%s: cannot write", out);
        e = msg;
    }
    gw_free(w);
    qlm_tokdata_free(&tok);
    qlm_st_close(m);
    return e;
}
