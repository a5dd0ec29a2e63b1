/*
 * api.c — the small public functions of qlm.h: version, the kernel set's
 * name, model accessors and the tokenizer wrappers over runtime/tokenizer.h.
 */
#include <config.h>

#include "model.h"
#include "tokenizer.h"

const char *qlm_version(void)
{
    return PACKAGE_VERSION;
}

/* The programs print it; kernels/kernels.h is internal. */
const char *qlm_isa_name(void)
{
    return qlm_kernels_active()->name;
}

const struct qlm_hparams *qlm_model_hparams(const struct qlm_model *m)
{
    return &m->hp;
}

const struct qlm_file *qlm_model_file(const struct qlm_model *m)
{
    return m->file;
}

uint64_t qlm_model_weight_bytes_per_token(const struct qlm_model *m)
{
    return m->bytes_per_token;
}

/* ---- tokenizer ------------------------------------------------------------ */

enum qlm_err qlm_tokenize(const struct qlm_model *m, const char *text, size_t len,
                          bool parse_special, int32_t **ids, size_t *n_ids,
                          struct qlm_error *err)
{
    return qlm_tok_encode(m->tok, text, len, parse_special, ids, n_ids, err);
}

int qlm_n_tokens(const struct qlm_model *m)
{
    return (int)qlm_tok_count(m->tok);
}

const uint8_t *qlm_token_bytes(const struct qlm_model *m, int32_t id, size_t *len)
{
    return qlm_tok_bytes(m->tok, id, len);
}

bool qlm_token_is_eos(const struct qlm_model *m, int32_t id)
{
    return qlm_tok_is_eos(m->tok, id);
}

int32_t qlm_token_id(const struct qlm_model *m, const char *text)
{
    return qlm_tok_find(m->tok, text);
}

const char *qlm_chat_template(const struct qlm_model *m)
{
    return qlm_tok_chat_template(m->tok);
}

size_t qlm_detok_push(const struct qlm_model *m, struct qlm_detok *d, int32_t id, char *out,
                      size_t cap)
{
    return qlm_tok_detok_push(m->tok, d, id, out, cap);
}

size_t qlm_detok_flush(struct qlm_detok *d, char *out, size_t cap)
{
    return qlm_tok_detok_flush(d, out, cap);
}
