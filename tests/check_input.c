/* check_input.c — opening model and checkpoint files (formats/input.c): a
 * regular file opens blocking and close-on-exec, anything else is refused at
 * once with what it is, and whole-file reads keep to their bound. */
#include <config.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qlm_format.h"

static char tmpdir[256];

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_input.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static const char *tpath(const char *name)
{
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void teardown(void)
{
    static const char *const names[] = {"file", "empty", "fifo", "dir", "link"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        remove(tpath(names[i]));
    rmdir(tmpdir);
}

static void put(const char *name, const char *text)
{
    FILE *f = fopen(tpath(name), "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(regular_file_opens)
{
    put("file", "hello");
    int fd;
    uint64_t size;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_input_open(tpath("file"), &fd, &size, &err), QLM_OK);
    ck_assert_uint_eq(size, 5);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    char b[8];
    ck_assert_int_eq(read(fd, b, sizeof b), 5);
    close(fd);
    /* through a symbolic link too: what counts is the file it names */
    ck_assert_int_eq(symlink(tpath("file"), tpath("link")), 0);
    ck_assert_int_eq(qlm_input_open(tpath("link"), &fd, &size, &err), QLM_OK);
    close(fd);
}
END_TEST

/* Each is refused without blocking (a FIFO with no writer would hang a
 * plain open) and the message says what it is. */
START_TEST(not_regular_refused)
{
    ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
    ck_assert_int_eq(mkdir(tpath("dir"), 0700), 0);
    ck_assert_int_eq(symlink(tpath("fifo"), tpath("link")), 0);
    static const struct { const char *path, *says; } c[] = {
        {"fifo", "is a FIFO, not a regular file"},
        {"dir", "is a directory, not a regular file"},
        {"link", "is a FIFO, not a regular file"},
        {"/dev/null", "is a character device, not a regular file"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const char *p = c[i].path[0] == '/' ? c[i].path : tpath(c[i].path);
        int fd = 7;
        uint64_t size;
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_input_open(p, &fd, &size, &err), QLM_E_IO);
        ck_assert_int_eq(fd, -1);
        ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, c[i].says), "%s", err.msg);
        char *buf = (char *)1;
        size_t len = 9;
        ck_assert_int_eq(qlm_input_read(p, 100, &buf, &len, &err), QLM_E_IO);
        ck_assert_ptr_null(buf);
        ck_assert_msg(strstr(err.msg, c[i].says), "%s", err.msg);
    }
    int fd;
    uint64_t size;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_input_open(tpath("missing"), &fd, &size, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing: No such file or directory"));
}
END_TEST

START_TEST(read_whole_file)
{
    put("file", "{\"a\": 1}");
    put("empty", "");
    char *buf;
    size_t len;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_input_read(tpath("file"), 8, &buf, &len, &err), QLM_OK);
    ck_assert_uint_eq(len, 8);
    ck_assert_str_eq(buf, "{\"a\": 1}"); /* NUL-terminated */
    free(buf);
    ck_assert_int_eq(qlm_input_read(tpath("empty"), 8, &buf, &len, &err), QLM_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(buf, "");
    free(buf);
    /* one byte over the bound */
    ck_assert_int_eq(qlm_input_read(tpath("file"), 7, &buf, &len, &err), QLM_E_RANGE);
    ck_assert_ptr_null(buf);
    ck_assert_msg(strstr(err.msg, "8 bytes, more than the 7 allowed"), "%s", err.msg);
}
END_TEST

static Suite *input_suite(void)
{
    Suite *s = suite_create("input");
    TCase *c = tcase_create("open");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, regular_file_opens);
    tcase_add_test(c, not_regular_refused);
    tcase_add_test(c, read_whole_file);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(input_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
