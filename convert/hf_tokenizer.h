/*
 * hf_tokenizer.h — import a Hugging Face tokenizer (tokenizer.json and the
 * optional tokenizer_config.json) into struct qlm_tokdata, the tokenizer
 * section of a .qlm file.
 *
 * Supported (everything else is refused with a message naming the file):
 *   model          BPE over the GPT-2 byte-level alphabet; merges as "a b"
 *                  strings or [a, b] arrays; byte_fallback false; no
 *                  continuing_subword_prefix / end_of_word_suffix;
 *                  ignore_merges false.
 *   normalizer     null, NFC, or a Sequence holding only NFC.
 *   pre_tokenizer  Sequence[Split{Regex, Isolated}, ByteLevel{use_regex:
 *                  false}] (Qwen2/3), or ByteLevel{use_regex: true} alone
 *                  (the GPT-2 pattern is stored); add_prefix_space false.
 *   decoder        ByteLevel.
 *   added_tokens   any ids (they may extend past the vocab); lstrip, rstrip
 *                  and single_word must be false.
 *
 * Choices:
 *   - Ids must be dense 0..n-1 over vocab and added tokens together; a hole
 *     is refused (a token that can neither be encoded nor decoded is a sign
 *     of a broken file, and the runtime indexes tokens by id).
 *   - An added token whose id is also in the vocab keeps that id and takes
 *     the added token's content and kind.
 *   - eos ids: the config's eos_token, then <|endoftext|> and <|im_end|>
 *     when those tokens exist (deduplicated, in that order), so generation
 *     stops at the end of a chat turn and at the end of a document alike.
 *   - bos_id: the config's bos_token (-1 if null/absent); QLM_TOKF_ADD_BOS
 *     when add_bos_token is true and there is a bos.  pad_id: pad_token.
 *   - chat template: the config's chat_template (a string, or the entry
 *     named "default" — else the first — of a list of {name, template}),
 *     else MODEL_DIR/chat_template.jinja, else "".
 *   - Merge rank is its index in the file; result id = vocab[a + b].
 */
#ifndef QLM_HF_TOKENIZER_H
#define QLM_HF_TOKENIZER_H

#include "qlm_format.h"

/* The GPT-2 byte-level pre-split pattern (ByteLevel with use_regex: true). */
#define QLM_GPT2_REGEX                                                         \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* The GPT-2 byte-level alphabet: the byte code point cp stands for (-1 if
 * none), and the code point that stands for byte b. */
int qlm_bytelevel_byte(uint32_t cp);
uint32_t qlm_bytelevel_cp(uint8_t b);

/* Append id to the eos list eos[*n] (room for cap) unless it is negative,
 * already there, or the list is full: the eos rule of both importers. */
void qlm_tok_eos_add(uint32_t *eos, uint32_t *n, uint32_t cap, int32_t id);

/* Reads MODEL_DIR/tokenizer.json (or tokenizer.json.gz) and, when present,
 * MODEL_DIR/tokenizer_config.json.  On success *out owns one allocation
 * (out->storage_) and is released with qlm_tokdata_free. */
enum qlm_err qlm_hf_tokenizer_load(const char *model_dir, struct qlm_tokdata *out,
                                   struct qlm_error *err);

/* Same, from tokenizer.json text already in memory (name is used in
 * messages; config_json may be NULL).  For tests and fuzzing. */
enum qlm_err qlm_hf_tokenizer_from_json(const char *tok_json, size_t tok_len,
                                        const char *config_json, size_t config_len,
                                        const char *name, struct qlm_tokdata *out,
                                        struct qlm_error *err);

#endif
