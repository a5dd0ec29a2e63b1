/*
 * fuzz_hf_tokenizer.c — libFuzzer harness for the tokenizer.json importer
 * (qlm_hf_tokenizer_from_json).  The input is tokenizer.json, optionally
 * followed by a NUL byte and tokenizer_config.json.  An accepted tokenizer
 * must survive QTOK serialize -> parse (the .qlm round trip) and build a
 * runtime tokenizer that encodes a short text with ids in range.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hf_tokenizer.h"
#include "tokenizer.h"

static void one_line(const struct qlm_error *err)
{
    if (!err->msg[0] || strchr(err->msg, '\n'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *tok = (const char *)data, *cfg = NULL;
    size_t tok_len = size, cfg_len = 0;
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        tok_len = (size_t)(nul - data);
        cfg = (const char *)nul + 1;
        cfg_len = size - tok_len - 1;
    }
    struct qlm_tokdata td;
    struct qlm_error err;
    if (qlm_hf_tokenizer_from_json(tok, tok_len, cfg, cfg_len, "tokenizer.json", &td, &err) !=
        QLM_OK) {
        one_line(&err);
        return 0;
    }
    uint8_t *blob;
    size_t blob_len;
    if (qlm_tokdata_serialize(&td, &blob, &blob_len, &err) != QLM_OK)
        abort(); /* what the importer accepted must serialize */
    qlm_tokdata_free(&td);
    struct qlm_tokdata back;
    if (qlm_tokdata_parse(blob, blob_len, "QTOK", &back, &err) != QLM_OK)
        abort(); /* and parse back */
    free(blob);
    struct qlm_tok *t;
    if (qlm_tok_new(&t, &back, "tokenizer.json", &err) != QLM_OK) {
        one_line(&err); /* e.g. a regex PCRE2 refuses */
        return 0;
    }
    static const char text[] = "Hello, world! 123 <|im_end|> \xc3\xa9t\xc3\xa9";
    int32_t *ids;
    size_t n;
    for (int special = 0; special < 2; special++) {
        if (qlm_tok_encode(t, text, sizeof text - 1, special, &ids, &n, &err) != QLM_OK) {
            one_line(&err);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (uint32_t)ids[i] >= qlm_tok_count(t))
                abort();
        free(ids);
    }
    qlm_tok_free(t);
    return 0;
}
