/*
 * fuzz_tok_config.c — libFuzzer harness for the tokenizer_config.json part
 * of the tokenizer importer: the input is tokenizer_config.json beside a
 * fixed valid tokenizer.json (the micro tokenizer of the fuzz_hf_tokenizer
 * seeds).  The tokenizer being valid, every refusal must name
 * tokenizer_config.json; an accepted config must give ids in range (bos,
 * pad, eos; add-BOS only with a BOS), a NUL-free chat template, and data
 * that survive the QTOK round trip and build a runtime tokenizer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hf_tokenizer.h"
#include "tokenizer.h"

static char *tok_json;
static size_t tok_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct qlm_error err;
    if (qlm_input_read(QLM_TOP_SRCDIR "/tests/fuzz/corpus/fuzz_hf_tokenizer/micro", 1u << 20,
                       &tok_json, &tok_len, &err) != QLM_OK) {
        fprintf(stderr, "fuzz_tok_config: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qlm_tokdata td;
    struct qlm_error err;
    if (qlm_hf_tokenizer_from_json(tok_json, tok_len, (const char *)data, size,
                                   "tokenizer.json", &td, &err) != QLM_OK) {
        if (!strstr(err.msg, "tokenizer_config.json: ") || strchr(err.msg, '\n'))
            abort(); /* one line, naming the file at fault */
        return 0;
    }
    int32_t n = (int32_t)td.n_tokens;
    if (td.bos_id < -1 || td.bos_id >= n || td.pad_id < -1 || td.pad_id >= n ||
        ((td.flags & QLM_TOKF_ADD_BOS) && td.bos_id < 0))
        abort();
    for (uint32_t i = 0; i < td.n_eos; i++)
        if (td.eos[i] >= td.n_tokens)
            abort();
    (void)strlen(td.chat_template); /* NUL-terminated (ASan checks the read) */
    uint8_t *blob;
    size_t blob_len;
    struct qlm_tokdata back;
    if (qlm_tokdata_serialize(&td, &blob, &blob_len, &err) != QLM_OK ||
        qlm_tokdata_parse(blob, blob_len, "QTOK", &back, &err) != QLM_OK ||
        strcmp(back.chat_template, td.chat_template) != 0)
        abort(); /* the template must survive the .qlm round trip whole */
    free(blob);
    qlm_tokdata_free(&td);
    struct qlm_tok *t;
    if (qlm_tok_new(&t, &back, "tokenizer.json", &err) != QLM_OK)
        abort(); /* the config cannot make the data inconsistent */
    qlm_tok_free(t);
    return 0;
}
