/*
 * gguftool.c — GGUF fixtures for the tests (tests/gguf_e2e.sh, the fuzz
 * corpus):
 *
 *   gguftool write MODEL_DIR OUT.gguf TYPE [--arch A] [--pre NAME] [--minus128 N]
 *       MODEL_DIR (a Hugging Face checkpoint) as a llama.cpp-style GGUF
 *       (gguf_model.h); TYPE f32, f16, bf16, q8_0 or q4_0
 *   gguftool same FILE.gguf FILE.qlm
 *       every Q8_0 / Q4_0 tensor the .qlm holds as q8 / q4 at group 32 must
 *       have the GGUF's codes and scales exactly, except Q8_0 blocks with
 *       the code -128 (q8 has none), which must have been quantized again;
 *       prints "tensors T blocks B redone R"
 *   gguftool tok A.qlm B.qlm
 *       the two tokenizer sections inflate to the same bytes
 *
 * Exits 0 on success, 1 with a message on a difference or an error, 2 on
 * misuse.
 */
#include "gguf_model.h"
#include "gguf_import.h"
#include "qlm_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fputs("usage: gguftool write MODEL_DIR OUT.gguf f32|f16|bf16|q8_0|q4_0 [--arch A] "
          "[--pre NAME] [--minus128 N]\n"
          "       gguftool same FILE.gguf FILE.qlm\n"
          "       gguftool tok A.qlm B.qlm\n", stderr);
    return 2;
}

static int cmd_write(int argc, char **argv)
{
    static const struct { const char *name; uint32_t type; } types[] = {
        {"f32", QLM_GGML_F32}, {"f16", QLM_GGML_F16}, {"bf16", QLM_GGML_BF16},
        {"q8_0", QLM_GGML_Q8_0}, {"q4_0", QLM_GGML_Q4_0}};
    if (argc < 5)
        return usage();
    struct gm_opts o = {.type = UINT32_MAX};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(argv[4], types[i].name) == 0)
            o.type = types[i].type;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--arch") == 0)
            o.arch = argv[i + 1];
        else if (strcmp(argv[i], "--pre") == 0)
            o.pre = argv[i + 1];
        else if (strcmp(argv[i], "--minus128") == 0)
            o.minus128 = (unsigned)atoi(argv[i + 1]);
        else
            return usage();
    }
    if (o.type == UINT32_MAX || argc % 2 == 0)
        return usage();
    const char *e = gm_write(argv[2], argv[3], &o);
    if (e) {
        fprintf(stderr, "gguftool: %s\n", e);
        return 1;
    }
    return 0;
}

/* One GGUF tensor against its .qlm counterpart, row by row and block by
 * block; counts into *blocks and *redone; false on a difference. */
static bool same_tensor(const struct qlm_gguf_tensor *gt, const struct qlm_tensor_info *qt,
                        enum qlm_dtype want, uint64_t *blocks, uint64_t *redone)
{
    const uint64_t cols = gt->ne[0], rows = gt->ne[1], nb = cols / 32;
    const unsigned bb = qlm_ggml_block_bytes(gt->type), cb = bb - 2;
    uint8_t *q = malloc((size_t)cols);
    uint16_t *d = malloc((size_t)nb * sizeof *d);
    bool ok = q && d && qt->dims[0] == rows && qt->dims[1] == cols;
    const uint64_t block_bytes = qlm_quant_block_bytes(want, cols, 32);
    for (uint64_t r = 0; ok && r < rows; r++) {
        qlm_quant_unpack_row(want, cols, 32, (const uint8_t *)qt->data + r / 8 * block_bytes,
                             (unsigned)(r % 8), q, d);
        for (uint64_t k = 0; ok && k < nb; k++) {
            const uint8_t *b = (const uint8_t *)gt->data + (r * nb + k) * bb;
            bool m128 = want == QLM_Q8 && memchr(b + 2, 0x80, 32) != NULL;
            bool eq = memcmp(b, &d[k], 2) == 0 && memcmp(b + 2, q + k * cb, cb) == 0;
            if (m128 ? eq || memchr(q + k * cb, 0x80, cb) : !eq) {
                fprintf(stderr, "gguftool: tensor '%s' row %llu block %llu %s\n", gt->name,
                        (unsigned long long)r, (unsigned long long)k,
                        m128 ? "holds -128 and was not quantized again" : "differs");
                ok = false;
            }
            *blocks += 1;
            *redone += m128;
        }
    }
    free(q);
    free(d);
    return ok;
}

static int cmd_same(const char *gpath, const char *qpath)
{
    struct qlm_gguf *g = NULL;
    struct qlm_file *f = NULL;
    struct qlm_error err = {0};
    if (qlm_gguf_open(&g, gpath, &err) != QLM_OK || qlm_file_open(&f, qpath, &err) != QLM_OK) {
        fprintf(stderr, "gguftool: %s\n", err.msg);
        qlm_gguf_close(g);
        return 1;
    }
    uint64_t tensors = 0, blocks = 0, redone = 0;
    bool ok = true;
    for (uint64_t i = 0; ok && i < g->n_tensors; i++) {
        const struct qlm_gguf_tensor *gt = &g->tensors[i];
        enum qlm_dtype want = gt->type == QLM_GGML_Q8_0 ? QLM_Q8 : QLM_Q4;
        char hf[128];
        const struct qlm_tensor_info *qt =
            qlm_gguf_name_to_hf(gt->name, hf, sizeof hf) ? qlm_file_tensor(f, hf) : NULL;
        if ((gt->type != QLM_GGML_Q8_0 && gt->type != QLM_GGML_Q4_0) || !qt ||
            qt->dtype != want || qt->group != 32)
            continue;
        tensors++;
        ok = same_tensor(gt, qt, want, &blocks, &redone);
    }
    printf("tensors %llu blocks %llu redone %llu\n", (unsigned long long)tensors,
           (unsigned long long)blocks, (unsigned long long)redone);
    qlm_file_close(f);
    qlm_gguf_close(g);
    return ok ? 0 : 1;
}

static int cmd_tok(const char *a, const char *b)
{
    struct qlm_file *f[2] = {NULL, NULL};
    struct qlm_tokdata t[2];
    uint8_t *blob[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    struct qlm_error err = {0};
    const char *path[2] = {a, b};
    int rc = 0;
    memset(t, 0, sizeof t);
    for (int i = 0; i < 2 && rc == 0; i++)
        if (qlm_file_open(&f[i], path[i], &err) != QLM_OK ||
            qlm_file_tokdata(f[i], &t[i], &err) != QLM_OK ||
            qlm_tokdata_serialize(&t[i], &blob[i], &len[i], &err) != QLM_OK) {
            fprintf(stderr, "gguftool: %s\n", err.msg);
            rc = 1;
        }
    if (rc == 0 && (len[0] != len[1] || memcmp(blob[0], blob[1], len[0]) != 0)) {
        fprintf(stderr, "gguftool: the tokenizers of %s and %s differ\n", a, b);
        rc = 1;
    }
    if (rc == 0)
        printf("tokenizers equal: %u tokens, %u merges, chat template of %zu bytes\n",
               t[0].n_tokens, t[0].n_merges, strlen(t[0].chat_template));
    for (int i = 0; i < 2; i++) {
        free(blob[i]);
        qlm_tokdata_free(&t[i]);
        qlm_file_close(f[i]);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "write") == 0)
        return cmd_write(argc, argv);
    if (argc == 4 && strcmp(argv[1], "same") == 0)
        return cmd_same(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "tok") == 0)
        return cmd_tok(argv[2], argv[3]);
    return usage();
}
