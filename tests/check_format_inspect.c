/* check_format_inspect.c — qlm-inspect end to end: text, --json (parsed
 * back and compared with the library's view), --verify on a good and on a
 * corrupted file, usage errors. */
#include <config.h>

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qlm_format.h"
#include "qlm_schema.h"

static char tmpdir[256], qlm[300], bad[300], prog[1024];

static void setup(void)
{
    const char *t = getenv("TMPDIR"), *b = getenv("top_builddir");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_inspect.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(qlm, sizeof qlm, "%s/m.qlm", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.qlm", tmpdir);
    snprintf(prog, sizeof prog, "%s/qlm-inspect", b && *b ? b : ".");
    /* 2 tensors: q8 64 x 64 g32 and f32 [10]; 3 metadata keys; a tokenizer */
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, qlm, false, &err), QLM_OK);
    qlm_writer_meta_str(w, QLM_KEY_ARCH, "qwen3");
    qlm_writer_meta_u64(w, QLM_KEY_N_LAYERS, 3);
    qlm_writer_meta_f64(w, QLM_KEY_RMS_EPS, 1e-6);
    struct qlm_token toks[3] = {{(const uint8_t *)"a", 1, 0}, {(const uint8_t *)"b", 1, 0},
                                {(const uint8_t *)"<|e|>", 5, QLM_TOK_SPECIAL}};
    struct qlm_merge mg = {0, 1, 2};
    uint32_t eos = 2;
    struct qlm_tokdata td = {.n_tokens = 3, .n_merges = 1, .n_eos = 1, .bos_id = -1,
                             .pad_id = -1, .eos = &eos, .regex = "\\s+",
                             .chat_template = "hello", .tokens = toks, .merges = &mg};
    uint8_t *blob;
    size_t len;
    ck_assert_int_eq(qlm_tokdata_serialize(&td, &blob, &len, &err), QLM_OK);
    qlm_writer_tokenizer(w, blob, len);
    free(blob);
    uint64_t d2[2] = {64, 64}, d1[1] = {10}, qsize;
    ck_assert(qlm_tensor_bytes(QLM_Q8, 64, 64, 32, &qsize));
    ck_assert_int_eq(qlm_writer_declare(w, "w.q8", QLM_Q8, 2, d2, 32), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "n.f32", QLM_F32, 1, d1, 0), QLM_OK);
    /* the q8 matrix in the file's layout: rows through the codec, 8 at a
     * time interleaved into a block of tiles */
    uint8_t *z = calloc(1, qsize), q[8 * 64];
    uint16_t d[8 * 2];
    float x[8 * 64];
    uint64_t bb = qlm_quant_block_bytes(QLM_Q8, 64, 32);
    for (int k = 0; k < 8; k++) {
        for (int i = 0; i < 8 * 64; i++)
            x[i] = (float)((k * 512 + i) % 19 - 9) * 0.125f;
        for (int i = 0; i < 8; i++)
            qlm_quantize_row_q8(x + i * 64, 64, 32, (int8_t *)q + i * 64, d + i * 2);
        qlm_quant_pack_block(QLM_Q8, 64, 32, q, d, 8, z + k * bb);
    }
    ck_assert_int_eq(qlm_writer_write(w, z, qsize), QLM_OK);
    memset(z, 0, 40);
    ck_assert_int_eq(qlm_writer_write(w, z, 40), QLM_OK);
    free(z);
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_OK);
    qlm_writer_abort(w);
}

static void teardown(void)
{
    unlink(qlm);
    unlink(bad);
    rmdir(tmpdir);
}

/* Run prog with args; capture stdout (and stderr into err_out); exit status. */
static int run(const char *args, char *out, size_t out_n, char *err_out, size_t err_n)
{
    char cmd[4096], ef[400];
    snprintf(ef, sizeof ef, "%s/stderr", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", prog, args, ef);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, out_n - 1, p);
    out[n] = 0;
    int st = pclose(p);
    FILE *e = fopen(ef, "r");
    n = e ? fread(err_out, 1, err_n - 1, e) : 0;
    err_out[n] = 0;
    if (e)
        fclose(e);
    unlink(ef);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 16], errs[4096];

START_TEST(text_output)
{
    char args[400];
    snprintf(args, sizeof args, "'%s'", qlm);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 0);
    ck_assert_ptr_nonnull(strstr(out, "format: 2.0"));
    ck_assert_ptr_nonnull(strstr(out, "general.architecture"));
    ck_assert_ptr_nonnull(strstr(out, "\"qwen3\""));
    ck_assert_ptr_nonnull(strstr(out, "3 tokens (0 added, 1 special), 1 merges"));
    ck_assert_ptr_nonnull(strstr(out, "2 \"<|e|>\""));
    ck_assert_ptr_nonnull(strstr(out, "chat template: 5 bytes"));
    ck_assert_ptr_nonnull(strstr(out, "w.q8"));
    ck_assert_ptr_nonnull(strstr(out, "64 x 64"));
    /* q8 g32 64x64: 8 blocks x 2 tiles x (16 + 256) bytes = 4352 -> 8.5 bits
     * per weight */
    ck_assert_ptr_nonnull(strstr(out, "4352"));
    ck_assert_ptr_nonnull(strstr(out, "8.500"));
    ck_assert_ptr_nonnull(strstr(out, "4106 parameters, 4392 bytes"));
    ck_assert_str_eq(errs, "");
}
END_TEST

START_TEST(json_output)
{
    char args[400];
    snprintf(args, sizeof args, "--json --verify '%s'", qlm);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    struct qlm_file *f;
    struct qlm_error err;
    ck_assert_int_eq(qlm_file_open(&f, qlm, &err), QLM_OK);
    ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "2.0");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "size")), (json_int_t)f->size);
    /* the data section starts where the header says (u64 at byte 88), which is
     * where the first tensor is; page-aligned */
    uint64_t hdr_data = 0;
    for (int i = 7; i >= 0; i--)
        hdr_data = hdr_data << 8 | f->map[88 + i];
    ck_assert_uint_eq(f->data_offset, hdr_data);
    ck_assert_uint_eq(f->data_offset % QLM_PAGE_ALIGN, 0);
    ck_assert_ptr_eq(f->map + f->data_offset + qlm_file_tensor(f, "w.q8")->offset,
                     qlm_file_tensor(f, "w.q8")->data);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "data_offset")),
                     (json_int_t)f->data_offset);
    ck_assert(json_is_true(json_object_get(j, "verified")));
    json_t *meta = json_object_get(j, "metadata");
    ck_assert_uint_eq(json_object_size(meta), f->n_meta);
    ck_assert_int_eq(json_integer_value(json_object_get(meta, QLM_KEY_N_LAYERS)), 3);
    ck_assert(json_real_value(json_object_get(meta, QLM_KEY_RMS_EPS)) == 1e-6);
    json_t *tensors = json_object_get(j, "tensors");
    ck_assert_uint_eq(json_array_size(tensors), f->n_tensors);
    for (size_t i = 0; i < json_array_size(tensors); i++) {
        json_t *t = json_array_get(tensors, i);
        const struct qlm_tensor_info *ti =
            qlm_file_tensor(f, json_string_value(json_object_get(t, "name")));
        ck_assert_ptr_nonnull(ti);
        ck_assert_int_eq(json_integer_value(json_object_get(t, "bytes")), (json_int_t)ti->size);
        ck_assert_int_eq(json_integer_value(json_object_get(t, "offset")),
                         (json_int_t)ti->offset);
        ck_assert_str_eq(json_string_value(json_object_get(t, "dtype")),
                         qlm_dtype_name(ti->dtype));
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ti->xxh3);
        ck_assert_str_eq(json_string_value(json_object_get(t, "xxh3")), hex);
    }
    json_t *tot = json_object_get(j, "totals");
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "params")), 4096 + 10);
    ck_assert_int_eq(json_integer_value(json_object_get(tot, "bytes")), 4352 + 40);
    json_t *tok = json_object_get(j, "tokenizer");
    ck_assert_int_eq(json_integer_value(json_object_get(tok, "n_tokens")), 3);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(tok, "eos"), 0)), 2);
    qlm_file_close(f);
    json_decref(j);
}
END_TEST

START_TEST(verify_detects_corruption)
{
    char args[700], want[700];
    struct qlm_file *f;
    struct qlm_error err;
    ck_assert_int_eq(qlm_file_open(&f, qlm, &err), QLM_OK);
    const struct qlm_tensor_info *t = qlm_file_tensor(f, "n.f32");
    long off = (long)((const uint8_t *)t->data - f->map) + 3;
    qlm_file_close(f);
    snprintf(args, sizeof args, "cp '%s' '%s'", qlm, bad);
    ck_assert_int_eq(system(args), 0);
    FILE *fp = fopen(bad, "r+b");
    fseek(fp, off, SEEK_SET);
    fputc(0x42, fp);
    fclose(fp);
    snprintf(args, sizeof args, "'%s'", bad);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 0); /* no hashing */
    snprintf(args, sizeof args, "--verify '%s'", bad);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 1);
    snprintf(want, sizeof want, "qlm-inspect: %s: tensor 'n.f32': checksum mismatch\n", bad);
    ck_assert_str_eq(errs, want);
    snprintf(args, sizeof args, "--verify '%s'", qlm);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 0);
    ck_assert_ptr_nonnull(strstr(out, "verify: all 2 tensor checksums match"));
}
END_TEST

START_TEST(usage_errors)
{
    ck_assert_int_eq(run("", out, sizeof out, errs, sizeof errs), 2);
    ck_assert_ptr_nonnull(strstr(errs, "qlm-inspect: missing FILE.qlm"));
    ck_assert_int_eq(run("--frobnicate x.qlm", out, sizeof out, errs, sizeof errs), 2);
    ck_assert_int_eq(run("a.qlm b.qlm", out, sizeof out, errs, sizeof errs), 2);
    ck_assert_int_eq(run("--help", out, sizeof out, errs, sizeof errs), 0);
    ck_assert_ptr_nonnull(strstr(out, "Usage: qlm-inspect FILE.qlm"));
    ck_assert_int_eq(run("--version", out, sizeof out, errs, sizeof errs), 0);
    ck_assert_str_eq(out, "qlm-inspect " PACKAGE_VERSION "\n");
    char args[400];
    snprintf(args, sizeof args, "'%s/none.qlm'", tmpdir);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 1);
    ck_assert_ptr_nonnull(strstr(errs, "none.qlm"));
    ck_assert_ptr_null(strchr(strchr(errs, '\n') + 1, '\n')); /* one line */
    /* a short text file is not a .qlm, rather than a truncated one */
    char txt[300];
    snprintf(txt, sizeof txt, "%s/six.qlm", tmpdir);
    FILE *fp = fopen(txt, "w");
    fputs("hello\n", fp);
    fclose(fp);
    snprintf(args, sizeof args, "'%s'", txt);
    ck_assert_int_eq(run(args, out, sizeof out, errs, sizeof errs), 1);
    char want[400];
    snprintf(want, sizeof want, "qlm-inspect: %s: not a .qlm file (bad magic)\n", txt);
    ck_assert_str_eq(errs, want);
    unlink(txt);
    ck_assert_int_eq(run("--frobnicate x.qlm", out, sizeof out, errs, sizeof errs), 2);
    ck_assert_str_eq(errs, "qlm-inspect: unknown option --frobnicate (see --help)\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inspect");
    TCase *c = tcase_create("cli");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, text_output);
    tcase_add_test(c, json_output);
    tcase_add_test(c, verify_detects_corruption);
    tcase_add_test(c, usage_errors);
    suite_add_tcase(s, c);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
