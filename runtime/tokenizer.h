/*
 * tokenizer.h — libqlm's internal byte-level BPE tokenizer over a
 * struct qlm_tokdata (the tokenizer section of a .qlm file).  The public
 * wrappers in qlm.h (qlm_tokenize, qlm_token_bytes, qlm_detok_push, ...)
 * forward here.
 *
 * Encoding, as Hugging Face tokenizers does for Qwen2/3 and GPT-2:
 *   1. the input must be valid UTF-8 (else QLM_E_INVALID);
 *   2. added tokens are matched as whole strings on the raw text, leftmost
 *      then longest; the pieces between them go through steps 3-5;
 *   3. NFC (utf8proc) when QLM_TOKF_NFC;
 *   4. the pre-split regex (PCRE2, UTF + UCP, JIT when available) cuts the
 *      text into pieces; text between matches is a piece too ("Isolated").
 *      The regex looks at most QLM_TOK_SPLIT_WINDOW bytes ahead: pieces
 *      shorter than that are exactly the regex's; a longer one (a run of
 *      megabytes of spaces) is cut at the last character boundary within
 *      QLM_TOK_SPLIT_WINDOW bytes of its start and matching goes on from
 *      there, so any valid text tokenizes in bounded memory;
 *   5. each piece starts as one token per byte, then the adjacent pair of
 *      lowest merge rank is merged (leftmost among equals) until none applies.
 * parse_special decides only about SPECIAL added tokens (<|im_start|>,
 * <|endoftext|>...): false treats them as plain text, so text from a user
 * cannot inject control tokens; non-special added tokens (<think>,
 * <tool_call>...) are always matched, as in HF (split_special_tokens) and
 * llama.cpp.  qlm-run passes true for -p text and chat templates.
 * A tokenizer that adds a BOS (QLM_TOKF_ADD_BOS) starts every encoded text
 * with it.
 *
 * A struct qlm_tok is immutable after qlm_tok_new (but for the bytes -> id
 * table of qlm_tok_find, built on its first call and published atomically):
 * any number of threads may encode, decode and find with one tokenizer at once.
 */
#ifndef QLM_TOKENIZER_H
#define QLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlm.h"

struct qlm_tok;

#define QLM_TOK_SPLIT_WINDOW ((size_t)256 << 10) /* bytes the split regex sees */

/* Builds the tokenizer; data's contents are taken over in every case (on
 * failure too: *data is left zeroed, its memory freed).  name (e.g. the .qlm
 * path) is used in messages.  Fails with QLM_E_FORMAT if the data are
 * inconsistent: a merge whose result is not left + right, a byte with no
 * single-byte token, an eos/bos id out of range, a regex PCRE2 refuses. */
enum qlm_err qlm_tok_new(struct qlm_tok **t, struct qlm_tokdata *data, const char *name,
                         struct qlm_error *err);
void qlm_tok_free(struct qlm_tok *t);

/* UTF-8 text (len bytes, NULs allowed) -> *ids (malloc'ed, *n of them; an
 * empty text gives *n = 0 and a non-NULL *ids).  A tokenizer that adds a
 * BOS (QLM_TOKF_ADD_BOS) starts every text with it, as Hugging Face's
 * tokenizer(text) does. */
enum qlm_err qlm_tok_encode(const struct qlm_tok *t, const char *text, size_t len,
                            bool parse_special, int32_t **ids, size_t *n, struct qlm_error *err);

/* Raw bytes of token id (not NUL-terminated; may be part of a UTF-8 char);
 * NULL for an id out of range. */
const uint8_t *qlm_tok_bytes(const struct qlm_tok *t, int32_t id, size_t *len);
/* Id of the token whose bytes are exactly s (added tokens first), or -1. */
int32_t qlm_tok_find(const struct qlm_tok *t, const char *s);
uint32_t qlm_tok_count(const struct qlm_tok *t);
bool qlm_tok_is_eos(const struct qlm_tok *t, int32_t id);
int32_t qlm_tok_eos(const struct qlm_tok *t);  /* first eos id, -1 if none */
int32_t qlm_tok_bos(const struct qlm_tok *t);  /* -1 if none */
bool qlm_tok_add_bos(const struct qlm_tok *t); /* the model expects a leading BOS */
int32_t qlm_tok_pad(const struct qlm_tok *t);  /* -1 if none */
bool qlm_tok_is_special(const struct qlm_tok *t, int32_t id); /* added or special */
const char *qlm_tok_chat_template(const struct qlm_tok *t);   /* "" if none */
const struct qlm_tokdata *qlm_tok_data(const struct qlm_tok *t);

/* Streaming decoder (struct qlm_detok from qlm.h; zero it to start).  Appends
 * token id's bytes to what is pending and writes to out every complete UTF-8
 * character; an incomplete tail (at most 3 bytes) stays pending.  Bytes that
 * can never start or continue a valid character are written as U+FFFD (one
 * per maximal invalid subpart), so nothing is held forever.  An id out of
 * range writes nothing.  Returns the bytes written; never writes more than
 * cap.  cap >= 3 * (token length + 3) always suffices; 16 + token length
 * suffices unless the token holds invalid UTF-8 (output past cap is dropped). */
size_t qlm_tok_detok_push(const struct qlm_tok *t, struct qlm_detok *d, int32_t id, char *out,
                          size_t cap);
/* Ends the stream: a pending incomplete character becomes U+FFFD (3 bytes;
 * cap >= 3).  d is ready for a new stream afterwards. */
size_t qlm_tok_detok_flush(struct qlm_detok *d, char *out, size_t cap);

#endif
