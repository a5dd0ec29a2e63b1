/* check_gguf_import.c — a GGUF as the converter's input (convert/
 * gguf_import.c): the tensor-name table, llama.cpp's q/k row order, the
 * hyper-parameters and the tokenizer from the metadata (equal to what
 * config.json and tokenizer.json give for the same model, and every refusal
 * by name), and conversions through qlm_convert: blocks kept, quantized
 * again with a note, -128 blocks, a Llama's rows put back in order. */
#include <config.h>

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "tmpdir.h"
#include "gguf_import.h"
#include "gguf_model.h"
#include "gguf_writer.h"
#include "hf_config.h"
#include "hf_tokenizer.h"

static const char *tiny(void)
{
    static char p[512];
    const char *s = getenv("top_srcdir");
    snprintf(p, sizeof p, "%s/models/tiny", s && *s ? s : ".");
    return p;
}

/* models/tiny as a GGUF at tpath(name). */
static const char *tiny_gguf(const char *name, uint32_t type, const char *arch, unsigned minus)
{
    const char *out = tpath(name);
    struct gm_opts o = {.type = type, .arch = arch, .minus128 = minus};
    const char *e = gm_write(tiny(), out, &o);
    ck_assert_msg(e == NULL, "gm_write: %s", e);
    return out;
}

static struct qlm_gguf *open_ok(const char *path)
{
    struct qlm_gguf *g = NULL;
    struct qlm_error err = {0};
    ck_assert_msg(qlm_gguf_open(&g, path, &err) == QLM_OK, "%s", err.msg);
    return g;
}

/* ---- names and rows ------------------------------------------------------------ */

START_TEST(tensor_names)
{
    static const char *pairs[][2] = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"},
        {"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
        {"blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"},
        {"blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"},
        {"blk.10.attn_k.weight", "model.layers.10.self_attn.k_proj.weight"},
        {"blk.27.attn_v.bias", "model.layers.27.self_attn.v_proj.bias"},
        {"blk.1.attn_output.weight", "model.layers.1.self_attn.o_proj.weight"},
        {"blk.1.attn_q_norm.weight", "model.layers.1.self_attn.q_norm.weight"},
        {"blk.1.attn_k_norm.weight", "model.layers.1.self_attn.k_norm.weight"},
        {"blk.2.ffn_norm.weight", "model.layers.2.post_attention_layernorm.weight"},
        {"blk.2.ffn_gate.weight", "model.layers.2.mlp.gate_proj.weight"},
        {"blk.2.ffn_up.weight", "model.layers.2.mlp.up_proj.weight"},
        {"blk.2.ffn_down.weight", "model.layers.2.mlp.down_proj.weight"},
    };
    char buf[128];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        ck_assert_msg(qlm_gguf_name_to_hf(pairs[i][0], buf, sizeof buf), "%s", pairs[i][0]);
        ck_assert_str_eq(buf, pairs[i][1]);
        ck_assert_msg(qlm_gguf_name_from_hf(pairs[i][1], buf, sizeof buf), "%s", pairs[i][1]);
        ck_assert_str_eq(buf, pairs[i][0]);
    }
    const char *none[] = {"rope_freqs.weight", "blk.01.attn_q.weight", "blk.x.attn_q.weight",
                          "blk.1.attn_q", "blk.1.attn_q.scale", "blk.1.ffn_gate_exps.weight",
                          "token_embd", "blk..attn_q.weight", "output.weight.weight"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        ck_assert_msg(!qlm_gguf_name_to_hf(none[i], buf, sizeof buf), "%s", none[i]);
    ck_assert(!qlm_gguf_name_from_hf("model.layers.0.self_attn.rotary_emb.inv_freq", buf,
                                     sizeof buf));
    ck_assert(!qlm_gguf_name_to_hf("blk.3.attn_q.weight", buf, 20)); /* does not fit */
}
END_TEST

START_TEST(llama_row_order)
{
    struct qlm_plan_item it = {.perm_head_dim = 4};
    /* per head of 4 rows: Hugging Face rows 0 1 2 3 sit at 0 2 1 3 */
    const uint64_t want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (uint64_t r = 0; r < 8; r++)
        ck_assert_uint_eq(qlm_gguf_src_row(&it, r), want[r]);
    it.perm_head_dim = 128;
    bool seen[256] = {false};
    for (uint64_t r = 0; r < 256; r++) {
        uint64_t s = qlm_gguf_src_row(&it, r);
        ck_assert(s < 256 && !seen[s]);
        seen[s] = true;
    }
    ck_assert_uint_eq(qlm_gguf_src_row(&it, 1), 2);  /* row i = 1 of half j = 0 */
    ck_assert_uint_eq(qlm_gguf_src_row(&it, 64), 1); /* row i = 0 of half j = 1 */
    it.perm_head_dim = 0;
    ck_assert_uint_eq(qlm_gguf_src_row(&it, 77), 77);
}
END_TEST

/* ---- hyper-parameters ------------------------------------------------------------- */

START_TEST(params_equal_config_json)
{
    struct qlm_model_params a, b;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_hf_config_load(tiny(), &a, &err), QLM_OK);
    struct qlm_gguf *g = open_ok(tiny_gguf("t.gguf", QLM_GGML_Q8_0, NULL, 0));
    ck_assert_msg(qlm_gguf_params(g, &b, &err) == QLM_OK, "%s", err.msg);
    ck_assert_int_eq(b.arch, a.arch);
    ck_assert_uint_eq(b.hidden, a.hidden);
    ck_assert_uint_eq(b.ffn_hidden, a.ffn_hidden);
    ck_assert_uint_eq(b.n_layers, a.n_layers);
    ck_assert_uint_eq(b.n_heads, a.n_heads);
    ck_assert_uint_eq(b.n_kv_heads, a.n_kv_heads);
    ck_assert_uint_eq(b.head_dim, a.head_dim);
    ck_assert_uint_eq(b.vocab_size, a.vocab_size);
    ck_assert_uint_eq(b.max_pos, a.max_pos);
    ck_assert(b.rms_eps == a.rms_eps);       /* 1e-06 from the f32, not 9.99999997e-07 */
    ck_assert(b.rope_theta == a.rope_theta);
    ck_assert_int_eq(b.tied, a.tied);
    ck_assert_int_eq(b.qk_norm, a.qk_norm);
    ck_assert_int_eq(b.qkv_bias, a.qkv_bias);
    qlm_gguf_close(g);
}
END_TEST

/* A small qwen3 GGUF's metadata and embedding, but for key skip (NULL:
 * none), then what extra adds. */
static const char *params_file(const char *skip, void (*extra)(struct gw *))
{
    static const struct { const char *key; uint32_t v; } u32s[] = {
        {"qwen3.block_count", 2}, {"qwen3.context_length", 512},
        {"qwen3.embedding_length", 64}, {"qwen3.feed_forward_length", 128},
        {"qwen3.attention.head_count", 2}, {"qwen3.attention.head_count_kv", 1},
        {"qwen3.attention.key_length", 32}, {"qwen3.attention.value_length", 32}};
    struct gw *w = gw_new();
    if (!skip || strcmp(skip, "general.architecture") != 0)
        gw_str(w, "general.architecture", "qwen3");
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++)
        if (!skip || strcmp(skip, u32s[i].key) != 0)
            gw_u32(w, u32s[i].key, u32s[i].v);
    if (!skip || strcmp(skip, "eps") != 0)
        gw_f32(w, "qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
    if (extra)
        extra(w);
    static float emb[16 * 64];
    uint64_t ne[2] = {64, 16};
    if (!skip || strcmp(skip, "token_embd") != 0)
        gw_tensor(w, "token_embd.weight", QLM_GGML_F32, 2, ne, emb, sizeof emb);
    const char *p = tpath("p.gguf");
    ck_assert(gw_write(w, p));
    gw_free(w);
    return p;
}

static void x_arch(struct gw *w) { gw_str(w, "general.architecture", "gemma3"); }
static void x_arch_u32(struct gw *w) { gw_u32(w, "general.architecture", 3); }
static void x_vlen(struct gw *w) { gw_u32(w, "qwen3.attention.value_length", 64); }
static void x_yarn(struct gw *w) { gw_str(w, "qwen3.rope.scaling.type", "yarn"); }
static void x_none(struct gw *w) { gw_str(w, "qwen3.rope.scaling.type", "none"); }
static void x_rdim(struct gw *w) { gw_u32(w, "qwen3.rope.dimension_count", 16); }
static void x_moe(struct gw *w) { gw_u32(w, "qwen3.expert_count", 8); }
static void x_vocab(struct gw *w) { gw_u32(w, "qwen3.vocab_size", 17); }
static void x_layers(struct gw *w) { gw_u32(w, "qwen3.block_count", 5000); }
static void x_kv3(struct gw *w) { gw_u32(w, "qwen3.attention.head_count_kv", 3); }
static void x_theta(struct gw *w) { gw_f32(w, "qwen3.rope.freq_base", 0.5f); }
static void x_eps_str(struct gw *w) { gw_str(w, "qwen3.attention.layer_norm_rms_epsilon", "1e-6"); }
static void x_hidden_neg(struct gw *w) { gw_i32(w, "qwen3.embedding_length", -64); }

static const struct {
    const char *what, *skip;
    void (*extra)(struct gw *);
    const char *says;
} bad_params[] = {
    {"no architecture", "general.architecture", NULL, "missing key 'general.architecture'"},
    {"unknown architecture", "general.architecture", x_arch,
     "general.architecture 'gemma3' is not supported (qwen3, qwen2, llama)"},
    {"architecture not a string", "general.architecture", x_arch_u32,
     "'general.architecture' is u32, not a string"},
    {"no block_count", "qwen3.block_count", NULL, "missing key 'qwen3.block_count'"},
    {"no rms epsilon", "eps", NULL, "missing key 'qwen3.attention.layer_norm_rms_epsilon'"},
    {"epsilon a string", "eps", x_eps_str, "layer_norm_rms_epsilon' is string, not a float"},
    {"negative hidden", "qwen3.embedding_length", x_hidden_neg,
     "'qwen3.embedding_length' = -64 is negative"},
    {"value_length differs", "qwen3.attention.value_length", x_vlen,
     "'qwen3.attention.value_length' = 64 differs from key_length 32"},
    {"rope scaling", NULL, x_yarn, "'qwen3.rope.scaling.type' = 'yarn': RoPE scaling"},
    {"partial rope", NULL, x_rdim, "'qwen3.rope.dimension_count' is not head_dim 32"},
    {"experts", NULL, x_moe, "mixture of experts"},
    {"vocab_size disagrees", NULL, x_vocab, "'qwen3.vocab_size' = 17 but token_embd.weight has 16"},
    {"no embedding", "token_embd", NULL, "missing tensor 'token_embd.weight'"},
    {"layers past the runtime", "qwen3.block_count", x_layers,
     "metadata 'qwen3.block_count' = 5000 out of range"},
    {"kv heads not dividing", "qwen3.attention.head_count_kv", x_kv3,
     "'qwen3.attention.head_count' = 2 is not a multiple of 'qwen3.attention.head_count_kv' = 3"},
    {"rope theta tiny", NULL, x_theta, "metadata 'qwen3.rope.freq_base' = 0.5 out of range"},
};

START_TEST(params_refused)
{
    struct qlm_model_params p;
    struct qlm_error err = {0};
    struct qlm_gguf *g = open_ok(params_file(bad_params[_i].skip, bad_params[_i].extra));
    ck_assert_msg(qlm_gguf_params(g, &p, &err) != QLM_OK, "%s accepted", bad_params[_i].what);
    ck_assert_msg(strstr(err.msg, bad_params[_i].says) && strstr(err.msg, g->path) == err.msg,
                  "%s: '%s' does not say '%s'", bad_params[_i].what, err.msg,
                  bad_params[_i].says);
    qlm_gguf_close(g);
}
END_TEST

START_TEST(params_defaults)
{
    struct qlm_model_params p;
    struct qlm_error err = {0};
    struct qlm_gguf *g = open_ok(params_file("qwen3.attention.key_length", x_none));
    ck_assert_msg(qlm_gguf_params(g, &p, &err) == QLM_OK, "%s", err.msg);
    ck_assert_uint_eq(p.head_dim, 32); /* embedding_length / head_count */
    ck_assert(p.rope_theta == 10000.0);
    ck_assert(p.tied);
    ck_assert_uint_eq(p.vocab_size, 16);
    qlm_gguf_close(g);
    g = open_ok(params_file("qwen3.attention.head_count_kv", NULL));
    ck_assert_int_eq(qlm_gguf_params(g, &p, &err), QLM_OK);
    ck_assert_uint_eq(p.n_kv_heads, 2);
    qlm_gguf_close(g);
}
END_TEST

/* ---- tokenizer ------------------------------------------------------------------------ */

START_TEST(tokenizer_equals_tokenizer_json)
{
    struct qlm_tokdata a, b;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_hf_tokenizer_load(tiny(), &a, &err), QLM_OK);
    struct qlm_gguf *g = open_ok(tiny_gguf("t.gguf", QLM_GGML_F32, NULL, 0));
    ck_assert_msg(qlm_gguf_tokenizer(g, &b, &err) == QLM_OK, "%s", err.msg);
    /* the writer padded the vocabulary with UNUSED tokens to the 2304 rows */
    ck_assert_uint_eq(qlm_gguf_find(g, "tokenizer.ggml.tokens")->n, 2304);
    uint8_t *sa, *sb;
    size_t la, lb;
    ck_assert_int_eq(qlm_tokdata_serialize(&a, &sa, &la, &err), QLM_OK);
    ck_assert_int_eq(qlm_tokdata_serialize(&b, &sb, &lb, &err), QLM_OK);
    ck_assert_uint_eq(b.n_tokens, a.n_tokens);
    ck_assert_str_eq(b.chat_template, a.chat_template);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(sa, sb, la);
    free(sa);
    free(sb);
    qlm_tokdata_free(&a);
    qlm_tokdata_free(&b);
    qlm_gguf_close(g);
}
END_TEST

/* A byte-level tokenizer of the 256 bytes, "he" and "hel", as a GGUF; the
 * case's defect is made by `tweak` (NULL: none). */
enum tweak {
    TW_NONE, TW_MODEL, TW_PRE_LLAMA, TW_PRE_UNKNOWN, TW_NO_PRE, TW_BYTE_TYPE, TW_RAW_NORMAL,
    TW_BAD_UTF8, TW_MERGE_PART, TW_MERGE_NOSPACE, TW_MERGE_RESULT, TW_DUP_TEXT, TW_EOS_RANGE,
    TW_ADD_BOS, TW_TYPES_SHORT, TW_EMPTY, TW_TEMPLATE_NUL, TW_ALL_UNUSED
};

static const char *tok_file(enum tweak tw)
{
    static char text[300][8];
    const char *toks[300];
    size_t lens[300];
    int32_t types[300];
    size_t n = 0;
    for (int b = 0; b < 256; b++, n++) {
        uint32_t cp = qlm_bytelevel_cp((uint8_t)b);
        char *s = text[n];
        lens[n] = cp < 0x80 ? 1 : 2;
        if (cp < 0x80) {
            s[0] = (char)cp;
        } else {
            s[0] = (char)(0xc0 | cp >> 6);
            s[1] = (char)(0x80 | (cp & 0x3f));
        }
        toks[n] = s;
        types[n] = 1;
    }
    const char *extra[] = {"he", "hel", "<|im_end|>", "<think>", "[PAD260]", "[PAD261]"};
    const int32_t extra_type[] = {1, 1, 3, 4, 5, 5};
    for (int i = 0; i < 6; i++, n++) {
        toks[n] = extra[i];
        lens[n] = strlen(extra[i]);
        types[n] = extra_type[i];
    }
    const char *merges[] = {"h e", "he l"};
    struct gw *w = gw_new();
    gw_str(w, "tokenizer.ggml.model", tw == TW_MODEL ? "llama" : "gpt2");
    if (tw != TW_NO_PRE)
        gw_str(w, "tokenizer.ggml.pre", tw == TW_PRE_LLAMA     ? "llama-bpe"
                                        : tw == TW_PRE_UNKNOWN ? "deepseek-llm"
                                                               : "qwen2");
    if (tw == TW_BYTE_TYPE)
        types[7] = 6;
    if (tw == TW_RAW_NORMAL)
        toks[32] = " ", lens[32] = 1; /* a space is "Ġ" in the byte-level alphabet */
    if (tw == TW_BAD_UTF8)
        toks[200] = "\xc4", lens[200] = 1;
    if (tw == TW_MERGE_PART)
        merges[1] = "hx l";
    if (tw == TW_MERGE_NOSPACE)
        merges[0] = "he";
    if (tw == TW_MERGE_RESULT)
        merges[1] = "he e";
    if (tw == TW_DUP_TEXT)
        toks[257] = "he", lens[257] = 2;
    if (tw == TW_EMPTY)
        lens[100] = 0;
    if (tw == TW_ALL_UNUSED)
        for (size_t i = 0; i < n; i++)
            types[i] = 5;
    gw_arr_str(w, "tokenizer.ggml.tokens", n, toks, lens);
    gw_arr_i32(w, "tokenizer.ggml.token_type", tw == TW_TYPES_SHORT ? n - 1 : n, types);
    gw_arr_str(w, "tokenizer.ggml.merges", 2, merges, NULL);
    gw_u32(w, "tokenizer.ggml.eos_token_id", tw == TW_EOS_RANGE ? 261 : 258);
    if (tw == TW_ADD_BOS)
        gw_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (tw == TW_TEMPLATE_NUL)
        gw_strn(w, "tokenizer.chat_template", "a\0b", 3);
    else
        gw_str(w, "tokenizer.chat_template", "{{ messages }}");
    const char *p = tpath("tok.gguf");
    ck_assert(gw_write(w, p));
    gw_free(w);
    return p;
}

START_TEST(tokenizer_small)
{
    struct qlm_tokdata t;
    struct qlm_error err = {0};
    struct qlm_gguf *g = open_ok(tok_file(TW_NONE));
    ck_assert_msg(qlm_gguf_tokenizer(g, &t, &err) == QLM_OK, "%s", err.msg);
    ck_assert_uint_eq(t.n_tokens, 260); /* the two trailing UNUSED ones dropped */
    ck_assert_uint_eq(t.tokens[32].len, 1);
    ck_assert_uint_eq(t.tokens[32].bytes[0], ' ');
    ck_assert_uint_eq(t.tokens[256].len, 2);
    ck_assert_mem_eq(t.tokens[257].bytes, "hel", 3);
    ck_assert_uint_eq(t.tokens[258].kind, QLM_TOK_SPECIAL);
    ck_assert_mem_eq(t.tokens[258].bytes, "<|im_end|>", 10);
    ck_assert_uint_eq(t.tokens[259].kind, QLM_TOK_ADDED);
    ck_assert_uint_eq(t.n_merges, 2);
    ck_assert_uint_eq(t.merges[0].left, 'h');
    ck_assert_uint_eq(t.merges[0].right, 'e');
    ck_assert_uint_eq(t.merges[0].result, 256);
    ck_assert_uint_eq(t.merges[1].result, 257);
    ck_assert_uint_eq(t.n_eos, 1); /* 258, found again as <|im_end|> */
    ck_assert_uint_eq(t.eos[0], 258);
    ck_assert_int_eq(t.bos_id, -1);
    ck_assert_uint_eq(t.flags, QLM_TOKF_BYTE_LEVEL | QLM_TOKF_NFC);
    ck_assert_str_eq(t.chat_template, "{{ messages }}");
    qlm_tokdata_free(&t);
    qlm_gguf_close(g);
}
END_TEST

static const struct {
    enum tweak tw;
    const char *says;
} bad_tok[] = {
    {TW_MODEL, "tokenizer.ggml.model 'llama' is not supported"},
    {TW_PRE_LLAMA, "tokenizer.ggml.pre 'llama-bpe' is not supported: Llama 3's tokenizer skips"},
    {TW_PRE_UNKNOWN, "tokenizer.ggml.pre 'deepseek-llm' is not supported (qwen2)"},
    {TW_NO_PRE, "no tokenizer.ggml.pre"},
    {TW_BYTE_TYPE, "token 7 has type 6"},
    {TW_RAW_NORMAL, "token 32 is not in the byte-level alphabet"},
    {TW_BAD_UTF8, "token 200 is not in the byte-level alphabet"},
    {TW_MERGE_PART, "merge 1: a part is not a token"},
    {TW_MERGE_NOSPACE, "merge 0 is not \"a b\""},
    {TW_MERGE_RESULT, "merge 1: the merged token is not a token"},
    {TW_DUP_TEXT, "tokens 256 and 257 have the same text"},
    {TW_EOS_RANGE, "tokenizer.ggml.eos_token_id = 261 is not a token (of 260)"},
    {TW_ADD_BOS, "add_bos_token is true but there is no bos_token_id"},
    {TW_TYPES_SHORT, "261 token types for 262 tokens"},
    {TW_EMPTY, "token 100 is empty"},
    {TW_TEMPLATE_NUL, "'tokenizer.chat_template' holds a NUL byte"},
    {TW_ALL_UNUSED, "0 tokens"},
};

START_TEST(tokenizer_refused)
{
    struct qlm_tokdata t;
    struct qlm_error err = {0};
    struct qlm_gguf *g = open_ok(tok_file(bad_tok[_i].tw));
    ck_assert_msg(qlm_gguf_tokenizer(g, &t, &err) != QLM_OK, "case %d accepted", _i);
    ck_assert_msg(strstr(err.msg, bad_tok[_i].says) && strstr(err.msg, g->path) == err.msg,
                  "'%s' does not say '%s'", err.msg, bad_tok[_i].says);
    qlm_gguf_close(g);
}
END_TEST

/* ---- conversions ------------------------------------------------------------------------ */

struct notes {
    char text[4][512];
    int n;
};

static void on_note(const char *msg, void *ctx)
{
    struct notes *n = ctx;
    if (n->n < 4)
        snprintf(n->text[n->n++], sizeof n->text[0], "%s", msg);
}

static bool noted(const struct notes *n, const char *s)
{
    for (int i = 0; i < n->n; i++)
        if (strstr(n->text[i], s))
            return true;
    return false;
}

static enum qlm_err convert(const char *in, const char *out, enum qlm_dtype t, uint32_t group,
                            struct qlm_convert_stats *st, struct notes *n, struct qlm_error *err)
{
    struct qlm_convert_opts o = {.model_dir = in, .out_path = out, .type = t, .group = group,
                                 .threads = 2, .force = true, .note = on_note, .ctx = n};
    memset(n, 0, sizeof *n);
    return qlm_convert(&o, st, err);
}

START_TEST(convert_keeps_q8_0)
{
    struct qlm_convert_stats st;
    struct notes n;
    struct qlm_error err = {0};
    const char *g = tiny_gguf("q8.gguf", QLM_GGML_Q8_0, NULL, 0);
    ck_assert_msg(convert(g, tpath("a.qlm"), QLM_Q8, 32, &st, &n, &err) == QLM_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(st.n_repacked, 29); /* the embedding and 4 x 7 matrices */
    ck_assert_uint_eq(st.n_requantized, 0);
    ck_assert_uint_eq(st.n_redone_blocks, 0);
    ck_assert(noted(&n, "29 tensors kept their Q8_0/Q4_0 blocks"));
    /* another group: quantized again, said so */
    ck_assert_int_eq(convert(g, tpath("a.qlm"), QLM_Q8, 64, &st, &n, &err), QLM_OK);
    ck_assert_uint_eq(st.n_repacked, 0);
    ck_assert_uint_eq(st.n_requantized, 29);
    ck_assert(noted(&n, "29 Q8_0 tensors dequantized and quantized again (--type q8 --group 32"));
    /* -128 in 3 blocks: those quantized again, counted */
    g = tiny_gguf("m.gguf", QLM_GGML_Q8_0, NULL, 3);
    ck_assert_int_eq(convert(g, tpath("a.qlm"), QLM_Q8, 32, &st, &n, &err), QLM_OK);
    ck_assert_uint_eq(st.n_redone_blocks, 3);
    ck_assert(noted(&n, "3 Q8_0 blocks held the code -128"));
    struct qlm_file *f;
    ck_assert_int_eq(qlm_file_open(&f, tpath("a.qlm"), &err), QLM_OK);
    ck_assert_int_eq(qlm_file_verify(f, NULL, NULL, &err), QLM_OK); /* no -128 left */
    qlm_file_close(f);
}
END_TEST

START_TEST(convert_q4_0)
{
    struct qlm_convert_stats st;
    struct notes n;
    struct qlm_error err = {0};
    const char *g = tiny_gguf("q4.gguf", QLM_GGML_Q4_0, NULL, 0);
    /* q4: the matrices keep their blocks; the embedding is q8 under q4 */
    ck_assert_int_eq(convert(g, tpath("a.qlm"), QLM_Q4, 32, &st, &n, &err), QLM_OK);
    ck_assert_uint_eq(st.n_repacked, 28);
    ck_assert_uint_eq(st.n_requantized, 1);
    ck_assert(noted(&n, "1 Q4_0 tensor dequantized and quantized again (the embedding and "
                        "head stay q8"));
    ck_assert_int_eq(convert(g, tpath("a.qlm"), QLM_Q8, 32, &st, &n, &err), QLM_OK);
    ck_assert_uint_eq(st.n_repacked, 0);
    ck_assert_uint_eq(st.n_requantized, 29);
    ck_assert(noted(&n, "29 Q4_0 tensors dequantized and quantized again (--type q4 --group 32"));
}
END_TEST

/* A Llama GGUF's q/k rows (reordered by the writer as llama.cpp's converter
 * does) come back in Hugging Face order: at f32 every tensor equals the
 * checkpoint's, and at q8 the kept Q8_0 rows are the reordered source's. */
START_TEST(convert_llama_rows)
{
    struct qlm_convert_stats st;
    struct notes n;
    struct qlm_error err = {0};
    struct qlm_st_model *m;
    ck_assert_int_eq(qlm_st_open(&m, tiny(), &err), QLM_OK);
    const char *g = tiny_gguf("l.gguf", QLM_GGML_F32, "llama", 0);
    ck_assert_msg(convert(g, tpath("l.qlm"), QLM_F32, 32, &st, &n, &err) == QLM_OK, "%s",
                  err.msg);
    struct qlm_file *f;
    ck_assert_int_eq(qlm_file_open(&f, tpath("l.qlm"), &err), QLM_OK);
    ck_assert_ptr_null(qlm_file_tensor(f, "model.layers.0.self_attn.q_norm.weight"));
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const struct qlm_tensor_info *t = &f->tensors[i];
        const struct qlm_st_tensor *s = qlm_st_find(m, t->name);
        ck_assert_ptr_nonnull(s);
        float *x = malloc(s->numel * sizeof *x);
        qlm_st_to_f32(s, 0, s->numel, x);
        ck_assert_msg(memcmp(x, t->data, s->numel * 4) == 0, "%s differs", t->name);
        free(x);
    }
    qlm_file_close(f);

    g = tiny_gguf("l8.gguf", QLM_GGML_Q8_0, "llama", 0);
    ck_assert_int_eq(convert(g, tpath("l.qlm"), QLM_Q8, 32, &st, &n, &err), QLM_OK);
    ck_assert_uint_eq(st.n_repacked, 29);
    struct qlm_gguf *gg = open_ok(g);
    ck_assert_int_eq(qlm_file_open(&f, tpath("l.qlm"), &err), QLM_OK);
    const struct qlm_gguf_tensor *src = qlm_gguf_tensor(gg, "blk.1.attn_k.weight");
    const struct qlm_tensor_info *dst =
        qlm_file_tensor(f, "model.layers.1.self_attn.k_proj.weight");
    struct qlm_plan_item it = {.perm_head_dim = 64};
    float a[256], b[256];
    for (uint64_t r = 0; r < dst->dims[0]; r++) {
        qlm_dequantize_row(QLM_Q8, dst->data, dst->dims[0], 256, 32, r, a);
        qlm_ggml_q8_0_to_f32((const uint8_t *)src->data + qlm_gguf_src_row(&it, r) * 8 * 34,
                             256, b);
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "row %llu", (unsigned long long)r);
    }
    qlm_file_close(f);
    qlm_gguf_close(gg);
    qlm_st_close(m);
}
END_TEST

START_TEST(convert_refuses)
{
    struct qlm_convert_stats st;
    struct notes n;
    struct qlm_error err = {0};
    /* a Q4_K matrix, by its GGUF name and type */
    struct qlm_gguf *src = open_ok(tiny_gguf("t.gguf", QLM_GGML_F32, NULL, 0));
    struct gw *w = gw_new();
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const struct qlm_gguf_kv *kv = &src->kv[i];
        if (kv->type == QLM_GGUF_STRING)
            gw_strn(w, kv->key, kv->strs[0].ptr, (size_t)kv->strs[0].len);
        else if (kv->type == QLM_GGUF_U32)
            gw_u32(w, kv->key, (uint32_t)qlm_gguf_int_at(kv, 0));
        else if (kv->type == QLM_GGUF_F32)
            gw_f32(w, kv->key, (float)qlm_gguf_real_at(kv, 0));
        else if (kv->type == QLM_GGUF_BOOL)
            gw_bool(w, kv->key, kv->data[0]);
    }
    static uint8_t k[256 * 144 / 256 * 2304];
    uint64_t ne[2] = {256, 2304};
    gw_tensor(w, "token_embd.weight", 12, 2, ne, k, sizeof k);
    ck_assert(gw_write(w, tpath("k.gguf")));
    gw_free(w);
    qlm_gguf_close(src);
    ck_assert_int_eq(convert(tpath("k.gguf"), tpath("k.qlm"), QLM_Q8, 32, &st, &n, &err),
                     QLM_E_FORMAT);
    ck_assert_msg(strstr(err.msg, "tensor 'token_embd.weight' is Q4_K; qlm-convert reads F32, "
                                  "F16, BF16, Q8_0 and Q4_0"), "%s", err.msg);
    ck_assert(access(tpath("k.qlm"), F_OK) != 0);
}
END_TEST

static Suite *import_suite(void)
{
    Suite *s = suite_create("gguf_import");
    TCase *c = tcase_create("metadata");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, tensor_names);
    tcase_add_test(c, llama_row_order);
    tcase_add_test(c, params_equal_config_json);
    tcase_add_loop_test(c, params_refused, 0, (int)(sizeof bad_params / sizeof bad_params[0]));
    tcase_add_test(c, params_defaults);
    tcase_add_test(c, tokenizer_equals_tokenizer_json);
    tcase_add_test(c, tokenizer_small);
    tcase_add_loop_test(c, tokenizer_refused, 0, (int)(sizeof bad_tok / sizeof bad_tok[0]));
    suite_add_tcase(s, c);
    c = tcase_create("convert");
    tcase_set_timeout(c, 120);
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, convert_keeps_q8_0);
    tcase_add_test(c, convert_q4_0);
    tcase_add_test(c, convert_llama_rows);
    tcase_add_test(c, convert_refuses);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(import_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
