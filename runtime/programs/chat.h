/*
 * chat.h — the ChatML conversation format of Qwen (and many others) for
 * qlm-run --chat.  The chat template stored in a .qlm is a Jinja program; we
 * do not interpret Jinja: a template that mentions "<|im_start|>" is taken to
 * be ChatML and formatted by this built-in formatter, anything else is refused.
 *
 *   <|im_start|>system\n{system}<|im_end|>\n        (first turn, if a system text)
 *   <|im_start|>user\n{message}<|im_end|>\n
 *   <|im_start|>assistant\n                          (+ "<think>\n\n</think>\n\n" if no thinking)
 *   ... generated reply, stopped at <|im_end|> ...
 *   <|im_end|>\n                                      (closes the reply, sent with the next turn)
 *
 * The template parts are tokenized with special tokens parsed; the system and
 * user texts without, so a user cannot inject "<|im_start|>".  Previous replies
 * stay in the KV cache as generated (Qwen3's own template would drop their
 * <think> blocks; keeping them is what lets each turn evaluate only new tokens).
 */
#ifndef QLM_CHAT_H
#define QLM_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlm.h"

struct qlm_chat {
    const struct qlm_model *model;
    int32_t im_start, im_end;       /* ChatML delimiters (always present) */
    int32_t think, think_end;       /* <think>, </think>; -1 if not tokens */
    char *system;                   /* NULL: no system block */
    bool thinking;                  /* false: prefill an empty think block */
    int turns;                      /* user turns formatted so far */
};

/* Does this (Jinja) chat template describe ChatML? */
bool qlm_chat_is_chatml(const char *tmpl);

/* Checks the model's template (QLM_E_INVALID with a message for --chat if it
 * is missing or not ChatML) and looks up the delimiter tokens. */
enum qlm_err qlm_chat_init(struct qlm_chat *c, const struct qlm_model *m, const char *system,
                           bool thinking, struct qlm_error *err);
void qlm_chat_free(struct qlm_chat *c);

/* Tokens to evaluate for the next user message (len bytes of UTF-8): the
 * closing "<|im_end|>\n" of the previous reply (from the second turn on), the
 * system block (first turn), the user block and the assistant header.
 * *ids is malloc'ed. */
enum qlm_err qlm_chat_turn(struct qlm_chat *c, const char *msg, size_t len, int32_t **ids,
                           size_t *n_ids, struct qlm_error *err);

/* Does this sampled token end the assistant's reply? */
bool qlm_chat_is_stop(const struct qlm_chat *c, int32_t id);

#endif
