/*
 * fuzz_tokenize.c — libFuzzer harness for the runtime tokenizer's encoder on
 * arbitrary bytes, with the tiny model's tokenizer (models/tiny, imported
 * once at start-up; $QLM_TINY_DIR overrides the folder).  Checks: encoding
 * succeeds exactly when the input is valid UTF-8; ids are in range; for ASCII
 * input (which NFC leaves alone) the tokens' bytes concatenate back to the
 * input, with and without special-token parsing.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hf_tokenizer.h"
#include "tokenizer.h"

#ifndef QLM_TOP_SRCDIR
#define QLM_TOP_SRCDIR "."
#endif

static struct qlm_tok *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("QLM_TINY_DIR");
    if (!dir)
        dir = QLM_TOP_SRCDIR "/models/tiny";
    struct qlm_tokdata td;
    struct qlm_error err;
    if (qlm_hf_tokenizer_load(dir, &td, &err) != QLM_OK ||
        qlm_tok_new(&tok, &td, dir, &err) != QLM_OK) {
        fprintf(stderr, "fuzz_tokenize: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool valid = qlm_utf8_valid_prefix(data, size) == size, ascii = true;
    for (size_t i = 0; i < size && ascii; i++)
        ascii = data[i] < 0x80;
    uint32_t vocab = qlm_tok_count(tok);
    char *back = malloc(size + 1);
    if (!back)
        abort();
    for (int special = 0; special < 2; special++) {
        int32_t *ids;
        size_t n;
        struct qlm_error err;
        enum qlm_err rc = qlm_tok_encode(tok, (const char *)data, size, special, &ids, &n, &err);
        if ((rc == QLM_OK) != valid)
            abort(); /* refuses exactly the invalid UTF-8 */
        if (rc != QLM_OK) {
            if (!err.msg[0] || strchr(err.msg, '\n'))
                abort();
            continue;
        }
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || (uint32_t)ids[i] >= vocab)
                abort();
            size_t bl;
            const uint8_t *b = qlm_tok_bytes(tok, ids[i], &bl);
            if (!b || (ascii && len + bl > size))
                abort();
            if (ascii) {
                memcpy(back + len, b, bl);
                len += bl;
            }
        }
        if (ascii && (len != size || memcmp(back, data, size) != 0))
            abort(); /* ASCII round trip */
        free(ids);
    }
    free(back);
    return 0;
}
