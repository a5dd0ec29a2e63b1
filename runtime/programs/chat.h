/*
 * chat.h — qlm-run --chat's conversation: each turn is rendered by the
 * model's chat template through libqlm's qlm_chat_tokenize (Qwen3's or plain
 * ChatML; other templates are refused at qlm_chat_init):
 *
 *   <|im_start|>system\n{system}<|im_end|>\n        (first turn, if a system text)
 *   <|im_start|>user\n{message}<|im_end|>\n
 *   <|im_start|>assistant\n                          (+ "<think>\n\n</think>\n\n" if no thinking)
 *   ... generated reply, stopped at <|im_end|> ...
 *   <|im_end|>\n                                      (closes the reply, sent with the next turn)
 *
 * Special-token text in the system and user texts stays text, so a user
 * cannot inject "<|im_start|>".  Previous replies stay in the KV cache as
 * generated (Qwen3's own template would drop their <think> blocks; keeping
 * them is what lets each turn evaluate only new tokens).
 */
#ifndef QLM_CHAT_H
#define QLM_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlm.h"

struct qlm_chat {
    const struct qlm_model *model;
    int32_t im_end;                 /* ends a reply (always present) */
    char *system;                   /* NULL: no system block */
    bool thinking;                  /* false: prefill an empty think block */
    int turns;                      /* user turns formatted so far */
};

/* Checks that libqlm renders the model's template (else qlm_chat_render's
 * error: QLM_E_NOTFOUND without one, QLM_E_INVALID for one it does not
 * render) and looks up <|im_end|>. */
enum qlm_err qlm_chat_init(struct qlm_chat *c, const struct qlm_model *m, const char *system,
                           bool thinking, struct qlm_error *err);
void qlm_chat_free(struct qlm_chat *c);

/* Tokens to evaluate for the next user message (len bytes of UTF-8): the
 * closing "<|im_end|>\n" of the previous reply (from the second turn on), the
 * system block (first turn), the user block and the assistant header.
 * *ids is malloc'ed.  A NUL byte in the message is QLM_E_INVALID. */
enum qlm_err qlm_chat_turn(struct qlm_chat *c, const char *msg, size_t len, int32_t **ids,
                           size_t *n_ids, struct qlm_error *err);

/* Does this sampled token end the assistant's reply? */
bool qlm_chat_is_stop(const struct qlm_chat *c, int32_t id);

#endif
