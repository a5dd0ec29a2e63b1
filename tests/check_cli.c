/* check_cli.c — the programs' shared helpers (cli/): strict number
 * parsing, whole-file, text and --tokens reading. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static char dir[] = "/tmp/check_cli.XXXXXX";

static const char *write_tmp(const char *name, const char *content, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(content, 1, len, fp), len);
    fclose(fp);
    return path;
}

START_TEST(test_parse_int)
{
    struct qlm_error e;
    int v = -99;
    ck_assert_int_eq(qlm_cli_parse_int("--threads", "8", 1, 1024, &v, &e), QLM_OK);
    ck_assert_int_eq(v, 8);
    ck_assert_int_eq(qlm_cli_parse_int("--threads", "1024", 1, 1024, &v, &e), QLM_OK);
    ck_assert_int_eq(v, 1024);
    const char *bad[] = {"0", "-1", "1025", "", " 8", "8 ", "8x", "0x10", "1e3",
                         "99999999999999999999", "+", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = -99;
        ck_assert_int_ne(qlm_cli_parse_int("--threads", bad[i], 1, 1024, &v, &e), QLM_OK);
        ck_assert_int_eq(v, -99);
        ck_assert_ptr_nonnull(strstr(e.msg, "--threads"));
    }
    ck_assert_int_eq(qlm_cli_parse_int("--threads", "0", 1, 1024, &v, &e), QLM_E_RANGE);
    ck_assert_str_eq(e.msg, "--threads 0: must be between 1 and 1024");
    ck_assert_int_eq(qlm_cli_parse_int("--ctx", "abc", 1, 10, &v, &e), QLM_E_INVALID);
    ck_assert_str_eq(e.msg, "--ctx 'abc': not an integer");
}
END_TEST

START_TEST(test_parse_u64_double)
{
    struct qlm_error e;
    uint64_t u = 0;
    ck_assert_int_eq(qlm_cli_parse_u64("--seed", "18446744073709551615", &u, &e), QLM_OK);
    ck_assert(u == UINT64_MAX);
    ck_assert_int_eq(qlm_cli_parse_u64("--seed", "0x10", &u, &e), QLM_OK);
    ck_assert(u == 16);
    ck_assert_int_ne(qlm_cli_parse_u64("--seed", "18446744073709551616", &u, &e), QLM_OK);
    ck_assert_int_ne(qlm_cli_parse_u64("--seed", "-1", &u, &e), QLM_OK);
    ck_assert_int_ne(qlm_cli_parse_u64("--seed", "", &u, &e), QLM_OK);
    ck_assert_int_ne(qlm_cli_parse_u64("--seed", "12 ", &u, &e), QLM_OK);
    double d = -1;
    ck_assert_int_eq(qlm_cli_parse_double("--temp", "0.7", 0, 100, &d, &e), QLM_OK);
    ck_assert(d == 0.7);
    ck_assert_int_eq(qlm_cli_parse_double("--temp", "0", 0, 100, &d, &e), QLM_OK);
    ck_assert(d == 0);
    const char *bad[] = {"nan", "inf", "-inf", "-0.1", "101", "", "1,5", "0.5x", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_int_ne(qlm_cli_parse_double("--temp", bad[i], 0, 100, &d, &e), QLM_OK);
}
END_TEST

START_TEST(test_read_file)
{
    struct qlm_error e;
    char *buf;
    size_t len;
    const char text[] = "line one\nline\0two\n";
    const char *p = write_tmp("a.txt", text, sizeof text - 1);
    ck_assert_int_eq(qlm_cli_read_file(p, &buf, &len, &e), QLM_OK);
    ck_assert_uint_eq(len, sizeof text - 1);
    ck_assert(memcmp(buf, text, len) == 0 && buf[len] == '\0');
    free(buf);
    p = write_tmp("empty.txt", "", 0);
    ck_assert_int_eq(qlm_cli_read_file(p, &buf, &len, &e), QLM_OK);
    ck_assert_uint_eq(len, 0);
    free(buf);
    ck_assert_int_eq(qlm_cli_read_file(dir, &buf, &len, &e), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "is a directory"));
    ck_assert_int_eq(qlm_cli_read_file("/nonexistent/x", &buf, &len, &e), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/x: "));
}
END_TEST

START_TEST(test_read_text)
{
    struct qlm_error e;
    char *buf = NULL;
    size_t len = 99;
    const char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    const char *p = write_tmp("ok.txt", ok, sizeof ok - 1);
    ck_assert_int_eq(qlm_cli_read_text(p, &buf, &len, &e), QLM_OK);
    ck_assert_uint_eq(len, sizeof ok - 1);
    free(buf);
    /* Latin-1, an overlong NUL, a surrogate, a truncated sequence at the end */
    static const struct { const char *s; size_t n, at; } bad[] = {
        { "na\xefve", 5, 2 }, { "a\xc0\x80", 3, 1 }, { "xy\xed\xa0\x80", 5, 2 },
        { "abc\xe2\x82", 5, 3 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = write_tmp("bad.txt", bad[i].s, bad[i].n);
        ck_assert_int_eq(qlm_cli_read_text(p, &buf, &len, &e), QLM_E_INVALID);
        ck_assert_ptr_null(buf);
        char want[64];
        snprintf(want, sizeof want, "bad.txt: not valid UTF-8 text (byte %zu)", bad[i].at);
        ck_assert_msg(strstr(e.msg, want) != NULL, "%s: %s", want, e.msg);
        ck_assert_int_eq(qlm_cli_check_utf8("prompt (-p)", bad[i].s, bad[i].n, &e),
                         QLM_E_INVALID);
        ck_assert_ptr_nonnull(strstr(e.msg, "prompt (-p): "));
    }
    ck_assert_int_eq(qlm_cli_read_text("/nonexistent/y", &buf, &len, &e), QLM_E_IO);
}
END_TEST

START_TEST(test_read_tokens)
{
    struct qlm_error e;
    int32_t *ids;
    size_t n;
    const char *p = write_tmp("ok.ids", " 1 2\n\t3 999 \n0", 14);
    ck_assert_int_eq(qlm_cli_read_tokens(p, 1000, &ids, &n, &e), QLM_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[3], 999);
    ck_assert_int_eq(ids[4], 0);
    free(ids);
    ck_assert_int_eq(qlm_cli_read_tokens(p, 999, &ids, &n, &e), QLM_E_RANGE);
    ck_assert_ptr_nonnull(strstr(e.msg, "ok.ids: token 4 (999) is out of range [0, 999)"));
    p = write_tmp("bad.ids", "5 6x 7", 6);
    ck_assert_int_eq(qlm_cli_read_tokens(p, 1000, &ids, &n, &e), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "token 2 ('6x')"));
    p = write_tmp("neg.ids", "-5", 2);
    ck_assert_int_ne(qlm_cli_read_tokens(p, 1000, &ids, &n, &e), QLM_OK);
    p = write_tmp("huge.ids", "1 184467440737095516160000", 26);
    ck_assert_int_eq(qlm_cli_read_tokens(p, 1000, &ids, &n, &e), QLM_E_RANGE);
    ck_assert_ptr_nonnull(strstr(e.msg, "token 2"));
    p = write_tmp("blank.ids", " \n ", 3);
    ck_assert_int_eq(qlm_cli_read_tokens(p, 1000, &ids, &n, &e), QLM_E_FORMAT);
    p = write_tmp("nul.ids", "1\0 2", 4);
    ck_assert_int_ne(qlm_cli_read_tokens(p, 1000, &ids, &n, &e), QLM_OK);
}
END_TEST

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_int);
    tcase_add_test(tc, test_parse_u64_double);
    tcase_add_test(tc, test_read_file);
    tcase_add_test(tc, test_read_text);
    tcase_add_test(tc, test_read_tokens);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        failed++;
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
