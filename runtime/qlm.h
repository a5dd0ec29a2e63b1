/*
 * qlm.h — libqlm, the public C API: open a .qlm model, tokenize, evaluate
 * tokens to logits (collecting activation statistics on request), sample,
 * free.
 *
 * Every function that can fail returns enum qlm_err and fills *err (if
 * non-NULL) with one line naming the file and the problem.
 */
#ifndef QLM_H
#define QLM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "qlm_format.h"

struct qlm_hparams {
    char arch[16];               /* "qwen3", "qwen2", "llama" */
    int n_layers, hidden, n_heads, n_kv_heads, head_dim, ffn_hidden;
    int vocab_size;              /* embedding rows */
    int max_pos;                 /* max_position_embeddings */
    double rope_theta, rms_eps;
    bool tied, qk_norm, qkv_bias;
    enum qlm_dtype wtype;        /* main linear weight type */
    int group;                   /* quant group size (0 for float types) */
};

/* "0.1.0": the package version libqlm was built as. */
QLM_API const char *qlm_version(void);
/* Name of the kernel set in use ("scalar", "avx2", "avxvnni", "avx512vnni",
 * "neon"): the best this CPU supports, or $QLM_ISA. */
QLM_API const char *qlm_isa_name(void);

struct qlm_model;
struct qlm_session;
struct qlm_sampler;

/* Map the file and validate its directory against the hyper-parameters
 * (every tensor present, right shape, allowed type).  No weight is copied. */
QLM_API enum qlm_err qlm_model_open(struct qlm_model **m, const char *path, struct qlm_error *err);
QLM_API void qlm_model_free(struct qlm_model *m);
QLM_API const struct qlm_hparams *qlm_model_hparams(const struct qlm_model *m);
QLM_API const struct qlm_file *qlm_model_file(const struct qlm_model *m);
/* Bytes of weights read to compute one token (for bandwidth figures). */
QLM_API uint64_t qlm_model_weight_bytes_per_token(const struct qlm_model *m);

/* ---- tokenizer --------------------------------------------------------- */

/* Encode UTF-8 text (invalid UTF-8 is an error).  parse_special: match added
 * tokens such as <|im_start|> as whole tokens.  *ids is malloc'ed.  Models
 * whose tokenizer adds a BOS (Llama 3; not Qwen) get it first, as Hugging
 * Face's tokenizer(text) gives it. */
QLM_API enum qlm_err qlm_tokenize(const struct qlm_model *m, const char *text, size_t len,
                          bool parse_special, int32_t **ids, size_t *n_ids,
                          struct qlm_error *err);
QLM_API int qlm_n_tokens(const struct qlm_model *m);      /* tokenizer size (<= vocab_size) */
/* Raw bytes of a token (may be a partial UTF-8 sequence); NULL if no token. */
QLM_API const uint8_t *qlm_token_bytes(const struct qlm_model *m, int32_t id, size_t *len);
QLM_API bool qlm_token_is_eos(const struct qlm_model *m, int32_t id);
QLM_API int32_t qlm_token_id(const struct qlm_model *m, const char *text); /* exact token or -1 */
QLM_API const char *qlm_chat_template(const struct qlm_model *m);          /* "" if none */

/* Streaming decoder: feeds token bytes, returns only complete UTF-8
 * characters; never emits half a character. */
struct qlm_detok { uint8_t pending[8]; size_t n_pending; };
/* Appends the printable bytes of id to out (cap >= 16 + token length);
 * returns the number of bytes written. */
QLM_API size_t qlm_detok_push(const struct qlm_model *m, struct qlm_detok *d, int32_t id, char *out,
                      size_t cap);
QLM_API size_t qlm_detok_flush(struct qlm_detok *d, char *out, size_t cap);

/* ---- chat template ------------------------------------------------------ */

/* One message of a conversation: role "system", "user", "assistant" or
 * "tool"; content UTF-8 text.  An assistant message may carry its reasoning
 * as "<think>...</think>" before the reply, as Qwen3 generates it. */
struct qlm_chat_message {
    const char *role;
    const char *content;
};

/* qlm_chat_render / qlm_chat_tokenize flags (0: Jinja's defaults). */
enum {
    QLM_CHAT_GENERATION_PROMPT = 1u << 0, /* end with the assistant's header
                                             (add_generation_prompt) */
    QLM_CHAT_NO_THINKING = 1u << 1,       /* enable_thinking=false: Qwen3 gets an
                                             empty <think> block after the header */
};

/* The conversation as the chat template renders it, into *text (malloc'ed,
 * NUL-terminated, *len bytes).  tmpl: a template's Jinja source to use
 * instead of the model's (then m may be NULL); NULL for the model's.
 * n_msgs >= 1 (the templates index messages[0]).  qlm does not run Jinja:
 * it recognises Qwen3's template (ChatML with enable_thinking; it drops the
 * <think> blocks of replies before the last user message) and plain ChatML,
 * and fails with QLM_E_INVALID for any other template, an unknown role or a
 * NULL field, QLM_E_NOTFOUND when the model has no template. */
QLM_API enum qlm_err qlm_chat_render(const struct qlm_model *m, const char *tmpl,
                                     const struct qlm_chat_message *msgs, size_t n_msgs,
                                     unsigned flags, char **text, size_t *len,
                                     struct qlm_error *err);
/* The same conversation as token ids (*ids malloc'ed), ready for qlm_eval:
 * those of qlm_tokenize(qlm_chat_render's text, parse_special = true),
 * except that special-token text inside a message's content stays text, so
 * a message cannot inject "<|im_start|>".  A reply ends at <|im_end|>, which
 * the converter makes an end token (qlm_token_is_eos). */
QLM_API enum qlm_err qlm_chat_tokenize(const struct qlm_model *m, const char *tmpl,
                                       const struct qlm_chat_message *msgs, size_t n_msgs,
                                       unsigned flags, int32_t **ids, size_t *n_ids,
                                       struct qlm_error *err);

/* ---- evaluation -------------------------------------------------------- */

/* A session holds the KV cache (n_ctx positions, <= max_pos) and scratch
 * buffers sized for batches of up to n_batch tokens.  n_threads <= 0 picks the
 * number of physical cores.  n_ctx <= 0 fails with QLM_E_INVALID, n_ctx >
 * max_pos with QLM_E_RANGE.  The cache is calloc'ed: positions never used
 * cost address space, not memory.  A session is used by one thread at a
 * time (it runs its own team of n_threads - 1 worker threads); sessions of
 * one model may run concurrently. */
QLM_API enum qlm_err qlm_session_new(struct qlm_session **s, const struct qlm_model *m, int n_ctx,
                             int n_threads, struct qlm_error *err);
QLM_API void qlm_session_free(struct qlm_session *s);
QLM_API int qlm_session_pos(const struct qlm_session *s);     /* tokens in the cache */
QLM_API int qlm_session_ctx(const struct qlm_session *s);
QLM_API int qlm_session_threads(const struct qlm_session *s);
/* The KV cache's element type: QLM_F16 for q8/q4 models (half the memory
 * and attention traffic, rounding far below the weights' quantization),
 * QLM_F32 for float models (exact references).  set_kv_type chooses either
 * while the cache is empty (else QLM_E_INVALID).  f16 holds magnitudes up
 * to 65504 (larger keys or values would become infinite), as in the f16
 * cache llama.cpp uses by default. */
QLM_API enum qlm_dtype qlm_session_kv_type(const struct qlm_session *s);
QLM_API enum qlm_err qlm_session_set_kv_type(struct qlm_session *s, enum qlm_dtype t,
                                     struct qlm_error *err);
/* Forget cache positions >= pos (0 = empty; pos beyond the cache: no-op). */
QLM_API void qlm_session_rewind(struct qlm_session *s, int pos);

/* Append n tokens at the current position (any n: batched internally).
 * all_logits: keep the logits of every position, else of the last only.
 * Fails (QLM_E_RANGE) if the cache would overflow or an id is out of range. */
QLM_API enum qlm_err qlm_eval(struct qlm_session *s, const int32_t *tokens, int n, bool all_logits,
                      struct qlm_error *err);
/* Logits of the last qlm_eval: (n, vocab) if all_logits else (1, vocab).
 * Valid until the next qlm_eval or qlm_session_free.  A failed qlm_eval
 * changes neither the cache nor the logits. */
QLM_API const float *qlm_logits(const struct qlm_session *s);

/* ---- activation statistics (calibration) ------------------------------- */

/* While a session collects, each qlm_eval adds, for every linear weight
 * (q/k/v/o/gate/up/down of every layer, and the output head), the squares
 * of the inputs that weight multiplies: per input column c the sum over
 * input rows of x[c]^2, and the number of rows.  sum_sq[c] / count is the
 * weight's importance vector as llama.cpp's imatrix defines it; qlm-imatrix
 * writes these means to an .imat file for qlm-convert --imatrix.  Each
 * column adds its rows in token order, in double, so the sums do not
 * depend on the thread count or on how tokens are split into qlm_eval
 * calls.  The head only sees the rows whose logits are computed (every
 * position with all_logits, else the last).  Weights that read the same
 * input (q/k/v; gate/up) report the same sums. */
struct qlm_weight_stats {
    const char *name;            /* tensor name as in the .qlm, e.g.
                                  * "model.layers.0.mlp.down_proj.weight";
                                  * the head is "lm_head.weight", or
                                  * "model.embed_tokens.weight" when tied */
    int cols;                    /* input columns */
    uint64_t count;              /* input rows added */
    const double *sum_sq;        /* (cols) */
};

/* on: start from zero, and add to the statistics in every qlm_eval that
 * follows (QLM_E_NOMEM if they cannot be allocated).  off: stop adding,
 * keeping what was collected; evaluation then costs one branch per matmul
 * input, as when never collecting. */
QLM_API enum qlm_err qlm_session_collect_stats(struct qlm_session *s, bool on,
                                               struct qlm_error *err);
/* Weights with statistics: 7 per layer + 1 once collecting was turned on,
 * else 0.  Numbered layer by layer (q, k, v, o, gate, up, down), the head
 * last. */
QLM_API int qlm_session_n_stats(const struct qlm_session *s);
/* The statistics of weight i (QLM_E_RANGE outside [0, n_stats)), or of the
 * weight named name (QLM_E_NOTFOUND).  The pointers stay valid until the
 * next qlm_session_collect_stats(s, true) or qlm_session_free. */
QLM_API enum qlm_err qlm_session_stats(const struct qlm_session *s, int i,
                                       struct qlm_weight_stats *out, struct qlm_error *err);
QLM_API enum qlm_err qlm_session_stats_find(const struct qlm_session *s, const char *name,
                                            struct qlm_weight_stats *out,
                                            struct qlm_error *err);

/* ---- sampling ---------------------------------------------------------- */

struct qlm_sampler_params {
    float temp;                  /* 0: greedy */
    int top_k;                   /* 0: off */
    float top_p;                 /* 1: off */
    float min_p;                 /* 0: off */
    uint64_t seed;
};

QLM_API void qlm_sampler_defaults(struct qlm_sampler_params *p);
QLM_API enum qlm_err qlm_sampler_new(struct qlm_sampler **s, const struct qlm_sampler_params *p,
                             int vocab, struct qlm_error *err);
QLM_API void qlm_sampler_free(struct qlm_sampler *s);
QLM_API int32_t qlm_sample(struct qlm_sampler *s, const float *logits);

#endif
