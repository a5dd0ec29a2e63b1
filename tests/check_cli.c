/* check_cli.c — the programs' shared helpers (cli/): messages, usage
 * errors, --help/--version, strict number parsing, whole-file, text and
 * --tokens reading, the progress bar. */
#include "config.h"

#include <check.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Redirect fd (1 or 2) into a temporary file until capture_end, which
 * returns what was written (NUL-terminated, static). */
static int saved_fd = -1;
static FILE *cap_fp;

static void capture_begin(int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    cap_fp = tmpfile();
    ck_assert_ptr_nonnull(cap_fp);
    saved_fd = dup(fd);
    ck_assert_int_ge(saved_fd, 0);
    ck_assert_int_ge(dup2(fileno(cap_fp), fd), 0);
}

static const char *capture_end(int fd)
{
    static char buf[4096];
    fflush(fd == 1 ? stdout : stderr);
    dup2(saved_fd, fd);
    close(saved_fd);
    rewind(cap_fp);
    size_t n = fread(buf, 1, sizeof buf - 1, cap_fp);
    buf[n] = '\0';
    fclose(cap_fp);
    return buf;
}

START_TEST(test_messages)
{
    qlm_cli_init("qlm-test", "Usage: qlm-test\n");
    ck_assert_str_eq(qlm_cli_prog(), "qlm-test");
    capture_begin(2);
    int a = qlm_cli_fail("%s: bad %d", "f.qlm", 3);
    int b = qlm_cli_usage("no %s", "input");
    qlm_cli_warn("%d threads", 9);
    ck_assert_str_eq(capture_end(2),
                     "qlm-test: f.qlm: bad 3\nqlm-test: no input\nqlm-test: warning: 9 threads\n");
    ck_assert_int_eq(a, QLM_CLI_EXIT_ERR);
    ck_assert_int_eq(b, QLM_CLI_EXIT_USAGE);
    struct qlm_cli_common co = QLM_CLI_COMMON_INIT;
    char *argv[] = {"p", NULL};
    capture_begin(1);
    ck_assert_int_eq(qlm_cli_option('h', NULL, argv, &co), 0);
    ck_assert_int_eq(qlm_cli_option('V', NULL, argv, &co), 0);
    ck_assert_str_eq(capture_end(1), "Usage: qlm-test\nqlm-test " PACKAGE_VERSION "\n");
}
END_TEST

/* Parse argv (NULL-terminated) with short options ":m:t:a" and the common
 * long ones plus --all and --cee=ARG; the messages on stderr, the status of
 * the first option that is not QLM_CLI_CONTINUE in *st. */
static const char *parse(char **argv, struct qlm_cli_common *co, int *st)
{
    static const struct option longopts[] = {
        QLM_CLI_LONG_MODEL, QLM_CLI_LONG_THREADS, QLM_CLI_LONG_KV_TYPE, QLM_CLI_LONG_JSON,
        QLM_CLI_LONG_STD,   {"all", no_argument, NULL, 'a'},
        {"cee", required_argument, NULL, 300}, {NULL, 0, NULL, 0},
    };
    int argc = 0;
    while (argv[argc])
        argc++;
    optind = 0; /* glibc: start afresh */
    opterr = 0;
    *co = (struct qlm_cli_common)QLM_CLI_COMMON_INIT;
    *st = QLM_CLI_CONTINUE;
    capture_begin(2);
    int c;
    while (*st == QLM_CLI_CONTINUE && (c = getopt_long(argc, argv, ":m:t:a", longopts, NULL)) != -1)
        if (c != 'a' && c != 300)
            *st = qlm_cli_option(c, optarg, argv, co);
    if (*st == QLM_CLI_CONTINUE)
        *st = qlm_cli_take_model(argc, argv, "FILE.qlm", co);
    return capture_end(2);
}

START_TEST(test_bad_option)
{
    qlm_cli_init("qlm-test", "");
    struct qlm_cli_common co;
    int st;
    static const struct { char *argv[4]; const char *msg; } cases[] = {
        {{"p", "--all", "--frob"}, "qlm-test: unknown option --frob (see --help)\n"},
        /* inside a cluster, after a long option */
        {{"p", "--all", "-ax"}, "qlm-test: unknown option -x (see --help)\n"},
        {{"p", "-a", "--threads"}, "qlm-test: option --threads needs an argument (see --help)\n"},
        {{"p", "-at"}, "qlm-test: option -t needs an argument (see --help)\n"},
        {{"p", "--all=yes"}, "qlm-test: unknown option --all (see --help)\n"},
        {{"p", "--cee"}, "qlm-test: option --cee needs an argument (see --help)\n"},
        {{"p", "--\x1b[2Jxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
         "qlm-test: unknown option --?[2Jxxxxxxxxxxxxxxxxxx... (see --help)\n"},
        {{"p", "-t", "0"}, "qlm-test: --threads 0: must be between 1 and 1024\n"},
        {{"p", "--kv-type", "q8"}, "qlm-test: --kv-type 'q8': expected f16 or f32\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *argv[4];
        memcpy(argv, cases[i].argv, sizeof argv);
        ck_assert_str_eq(parse(argv, &co, &st), cases[i].msg);
        ck_assert_int_eq(st, QLM_CLI_EXIT_USAGE);
    }
}
END_TEST

START_TEST(test_common_options)
{
    qlm_cli_init("qlm-test", "");
    struct qlm_cli_common co;
    int st;
    char *a1[] = {"p", "m.qlm", "-t", "2", "--kv-type", "f16", "--json", NULL};
    ck_assert_str_eq(parse(a1, &co, &st), "");
    ck_assert_int_eq(st, QLM_CLI_CONTINUE);
    ck_assert_str_eq(co.model, "m.qlm");
    ck_assert_int_eq(co.threads, 2);
    ck_assert_int_eq(co.kv_type, QLM_F16);
    ck_assert(co.json);
    char *a2[] = {"p", "--model", "x.qlm", NULL};
    ck_assert_str_eq(parse(a2, &co, &st), "");
    ck_assert_int_eq(st, QLM_CLI_CONTINUE);
    ck_assert_str_eq(co.model, "x.qlm");
    ck_assert_int_eq(co.threads, 0);
    ck_assert_int_eq(co.kv_type, -1);
    ck_assert(!co.json);
    char *a3[] = {"p", NULL};
    ck_assert_str_eq(parse(a3, &co, &st), "qlm-test: missing FILE.qlm (see --help)\n");
    ck_assert_int_eq(st, QLM_CLI_EXIT_USAGE);
    char *a4[] = {"p", "a", "b", NULL};
    ck_assert_str_eq(parse(a4, &co, &st),
                     "qlm-test: unexpected argument 'b' (one FILE.qlm; see --help)\n");
    ck_assert_int_eq(st, QLM_CLI_EXIT_USAGE);
    char *a5[] = {"p", "-m", "a", "b", NULL};
    ck_assert_str_eq(parse(a5, &co, &st),
                     "qlm-test: unexpected argument 'b' (the model is given with -m)\n");
    ck_assert_int_eq(st, QLM_CLI_EXIT_USAGE);
}
END_TEST

START_TEST(test_threads_warning)
{
    qlm_cli_init("qlm-test", "");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct qlm_cli_common co = QLM_CLI_COMMON_INIT;
    capture_begin(2);
    qlm_cli_options_done(&co); /* not given: no warning */
    co.threads = (int)cpus;
    qlm_cli_options_done(&co); /* one per CPU: none */
    ck_assert_str_eq(capture_end(2), "");
    if (cpus < 1 || cpus >= 1024)
        return;
    co.threads = (int)cpus + 1;
    capture_begin(2);
    qlm_cli_options_done(&co);
    char want[160];
    snprintf(want, sizeof want,
             "qlm-test: warning: --threads %ld: more than the %ld online CPUs (threads will "
             "share them)\n", cpus + 1, cpus);
    ck_assert_str_eq(capture_end(2), want);
}
END_TEST

START_TEST(test_shown)
{
    char b[32];
    ck_assert_str_eq(qlm_cli_shown("abc", b, sizeof b), "abc");
    ck_assert_str_eq(qlm_cli_shown("a\tb\x7f", b, sizeof b), "a?b?");
    ck_assert_str_eq(qlm_cli_shown("0123456789012345678901234567890", b, sizeof b),
                     "012345678901234567890123...");
}
END_TEST

START_TEST(test_progress)
{
    struct qlm_cli_progress p;
    char label[16] = "step";
    capture_begin(2); /* not a terminal: nothing is drawn */
    qlm_cli_progress_begin(&p, label);
    ck_assert(!p.enabled);
    qlm_cli_progress_update(&p, 1, 2);
    qlm_cli_progress_end(&p);
    ck_assert_str_eq(capture_end(2), "");
    capture_begin(2);
    qlm_cli_progress_begin(&p, label);
    p.enabled = true;
    qlm_cli_progress_update(&p, 500, 1000);
    qlm_cli_progress_update(&p, 501, 1000); /* same percent: not redrawn */
    snprintf(label, sizeof label, "done");
    qlm_cli_progress_update(&p, 2000, 1000); /* clamped to 100% */
    qlm_cli_progress_end(&p);
    const char *out = capture_end(2);
    const char *first = "\rstep [###############...............]  50% ";
    const char *last = "\rdone [##############################] 100% ";
    ck_assert_msg(strncmp(out, first, strlen(first)) == 0, "%s", out);
    const char *second = strstr(out + 1, "\r");
    ck_assert_ptr_nonnull(second);
    ck_assert_msg(strncmp(second, last, strlen(last)) == 0, "%s", second);
    ck_assert_ptr_null(strstr(second + 1, "\rstep"));
    ck_assert_ptr_nonnull(strstr(second, "\r\033[K")); /* the end clears the line */
    ck_assert_int_eq(p.last_permille, -1);
}
END_TEST

START_TEST(test_utf8_edges)
{
    struct qlm_error e;
    /* the first and last code point of each length */
    const char ok[] = "\x01\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
                      "\xf4\x8f\xbf\xbf\xee\x80\x80";
    ck_assert_int_eq(qlm_cli_check_utf8("t", ok, sizeof ok - 1, &e), QLM_OK);
    ck_assert_int_eq(qlm_cli_check_utf8("t", "", 0, &e), QLM_OK);
    static const struct { const char *s; size_t n, at; } bad[] = {
        {"ab\x80", 3, 2},             /* lone continuation byte */
        {"\xc1\xbf", 2, 0},           /* overlong 2-byte */
        {"x\xe0\x9f\xbf", 4, 1},      /* overlong 3-byte */
        {"\xf0\x8f\xbf\xbf", 4, 0},   /* overlong 4-byte */
        {"\xf4\x90\x80\x80", 4, 0},   /* past U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},   /* no such lead byte */
        {"\xed\xbf\xbf", 3, 0},       /* low surrogate */
        {"ok\xf0\x9f\x98", 5, 2},     /* cut at the end */
        {"\xe2\x28\xa1", 3, 0},       /* bad continuation */
        {"\xc3\xa9\0\xff", 4, 3},     /* NUL is text; 0xff is not */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(qlm_cli_check_utf8("t", bad[i].s, bad[i].n, &e), QLM_E_INVALID);
        char want[64];
        snprintf(want, sizeof want, "t: not valid UTF-8 text (byte %zu)", bad[i].at);
        ck_assert_msg(strcmp(e.msg, want) == 0, "case %zu: %s", i, e.msg);
    }
}
END_TEST

/* Run fn(arg) in a child with its stderr read into err (NUL-terminated);
 * returns the child's wait status.  fn ends the child itself. */
static int in_child(void (*fn)(int), int arg, char *err, size_t cap)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        qlm_cli_init("qlm-test", "");
        fn(arg);
        _exit(99);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(pfd[0], err + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    err[got] = '\0';
    close(pfd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static char tmp_out[256], out_path[256];

/* qlm_cli_catch_interrupt_output: SIGINT while tmp exists removes it and
 * ends the child by the signal; once tmp has been renamed to out (or
 * linked, as the writer's no-overwrite publish does) the child carries on
 * with qlm_cli_interrupted set (status 42).  how: 0 interrupt mid-write,
 * 1 after rename, 2 after link, 3 after rename over an existing out. */
static void interrupt_body(int how)
{
    qlm_cli_temp_output(tmp_out, out_path);
    qlm_cli_catch_interrupt_output();
    write_tmp("o.qlm.tmp.1", "new", 3);
    if (how == 1 || how == 3)
        rename(tmp_out, out_path);
    if (how == 2)
        link(tmp_out, out_path);
    raise(SIGINT);
    _exit(qlm_cli_interrupted ? 42 : 43);
}

START_TEST(test_interrupt_output)
{
    char err[600], want[600];
    snprintf(tmp_out, sizeof tmp_out, "%s/o.qlm.tmp.1", dir);
    snprintf(out_path, sizeof out_path, "%s/o.qlm", dir);
    struct stat st;
    int status = in_child(interrupt_body, 0, err, sizeof err);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
    snprintf(want, sizeof want, "qlm-test: interrupted: %s not written (removed %s)\n",
             out_path, tmp_out);
    ck_assert_str_eq(err, want);
    ck_assert_int_ne(lstat(tmp_out, &st), 0);
    ck_assert_int_ne(lstat(out_path, &st), 0);
    for (int how = 1; how <= 3; how++) {
        unlink(out_path);
        if (how == 3)
            write_tmp("o.qlm", "old", 3);
        status = in_child(interrupt_body, how, err, sizeof err);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42, "how %d: status %d", how,
                      status);
        ck_assert_str_eq(err, "");
        ck_assert_int_eq(lstat(out_path, &st), 0);
        ck_assert_int_eq(st.st_size, 3);
        unlink(tmp_out);
    }
}
END_TEST

/* The SIGBUS handler names the file and removes a registered temporary
 * output (with_out: one is registered). */
static void sigbus_body(int with_out)
{
    if (with_out) {
        qlm_cli_temp_output(tmp_out, out_path);
        write_tmp("b.qlm.tmp.1", "x", 1);
    }
    qlm_cli_catch_sigbus("ckpt", "a checkpoint file");
    raise(SIGBUS);
}

START_TEST(test_sigbus)
{
    char err[800], want[800];
    snprintf(tmp_out, sizeof tmp_out, "%s/b.qlm.tmp.1", dir);
    snprintf(out_path, sizeof out_path, "%s/b.qlm", dir);
    for (int with_out = 0; with_out < 2; with_out++) {
        int status = in_child(sigbus_body, with_out, err, sizeof err);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
        snprintf(want, sizeof want,
                 "qlm-test: ckpt: a checkpoint file changed or was truncated while in use "
                 "(SIGBUS)%s%s%s%s%s\n", with_out ? "; " : "", with_out ? out_path : "",
                 with_out ? " not written (removed " : "", with_out ? tmp_out : "",
                 with_out ? ")" : "");
        ck_assert_str_eq(err, want);
        struct stat st;
        ck_assert_int_ne(lstat(tmp_out, &st), 0);
    }
}
END_TEST

START_TEST(test_output_target)
{
    struct qlm_error e;
    struct qlm_cli_target t;
    char p[300], q[300], d[300];
    snprintf(p, sizeof p, "%s/out.bin", dir);
    unlink(p);
    ck_assert_int_eq(qlm_cli_output_target(p, &t, &e), QLM_OK); /* absent */
    ck_assert_str_eq(t.path, p);
    ck_assert(!t.in_place);
    qlm_cli_target_free(&t);
    write_tmp("out.bin", "x", 1);
    ck_assert_int_eq(qlm_cli_output_target(p, &t, &e), QLM_OK); /* regular */
    ck_assert_str_eq(t.path, p);
    ck_assert(!t.in_place);
    qlm_cli_target_free(&t);
    snprintf(q, sizeof q, "%s/link.bin", dir);
    unlink(q);
    ck_assert_int_eq(symlink("out.bin", q), 0);
    ck_assert_int_eq(qlm_cli_output_target(q, &t, &e), QLM_OK); /* link: its file */
    char *real = realpath(p, NULL);
    ck_assert_str_eq(t.path, real);
    free(real);
    qlm_cli_target_free(&t);
    unlink(q);
    ck_assert_int_eq(symlink("nowhere.bin", q), 0);
    ck_assert_int_eq(qlm_cli_output_target(q, &t, &e), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "link.bin: a symbolic link to nothing"));
    unlink(q);
    snprintf(d, sizeof d, "%s/sub", dir);
    mkdir(d, 0755);
    ck_assert_int_eq(qlm_cli_output_target(d, &t, &e), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "sub: is a directory"));
    rmdir(d);
    snprintf(q, sizeof q, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(q, 0644), 0);
    ck_assert_int_eq(qlm_cli_output_target(q, &t, &e), QLM_OK);
    ck_assert(t.in_place);
    qlm_cli_target_free(&t);
    unlink(q);
    ck_assert_int_eq(qlm_cli_output_target("/dev/null", &t, &e), QLM_OK);
    ck_assert(t.in_place);
    qlm_cli_target_free(&t);
    ck_assert_int_eq(qlm_cli_output_target("", &t, &e), QLM_E_INVALID);
}
END_TEST

START_TEST(test_output_file)
{
    struct qlm_error e;
    struct qlm_cli_out *o;
    char p[300], tmp[340];
    struct stat st;
    snprintf(p, sizeof p, "%s/o.bin", dir);
    qlm_writer_tmp_path(p, tmp, sizeof tmp);
    write_tmp("o.bin", "old", 3);
    ck_assert_int_eq(qlm_cli_out_open(&o, p, &e), QLM_OK);
    ck_assert_int_eq(qlm_cli_out_write(o, "new!", 4, &e), QLM_OK);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, 3); /* the old file whole until the commit */
    ck_assert_int_eq(stat(tmp, &st), 0);
    ck_assert_int_eq(qlm_cli_out_commit(o, &e), QLM_OK);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, 4);
    ck_assert_int_ne(stat(tmp, &st), 0);
    ck_assert_int_eq(qlm_cli_out_open(&o, p, &e), QLM_OK); /* aborted: nothing changes */
    ck_assert_int_eq(qlm_cli_out_write(o, "x", 1, &e), QLM_OK);
    qlm_cli_out_abort(o);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, 4);
    ck_assert_int_ne(stat(tmp, &st), 0);
    ck_assert_int_eq(qlm_cli_out_open(&o, "/dev/null", &e), QLM_OK); /* in place */
    ck_assert_int_eq(qlm_cli_out_write(o, "x", 1, &e), QLM_OK);
    ck_assert_int_eq(qlm_cli_out_commit(o, &e), QLM_OK);
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    if (stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode)) { /* a device that fails */
        ck_assert_int_eq(qlm_cli_out_open(&o, "/dev/full", &e), QLM_OK);
        ck_assert_int_eq(qlm_cli_out_write(o, "x", 1, &e), QLM_E_IO); /* aborts itself */
        ck_assert_ptr_nonnull(strstr(e.msg, "/dev/full: write failed: "));
        ck_assert_int_eq(stat("/dev/full", &st), 0);
        ck_assert(S_ISCHR(st.st_mode));
    }
}
END_TEST

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
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_bad_option);
    tcase_add_test(tc, test_common_options);
    tcase_add_test(tc, test_threads_warning);
    tcase_add_test(tc, test_shown);
    tcase_add_test(tc, test_progress);
    tcase_add_test(tc, test_utf8_edges);
    tcase_add_test(tc, test_interrupt_output);
    tcase_add_test(tc, test_sigbus);
    tcase_add_test(tc, test_output_target);
    tcase_add_test(tc, test_output_file);
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
