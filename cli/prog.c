/* prog.c — the program's name in messages, usage errors, --help and
 * --version; see cli.h. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *prog_name = "qlm";
static int usage_status = 2;

void qlm_cli_init(const char *prog, int usage)
{
    prog_name = prog;
    usage_status = usage;
}

const char *qlm_cli_prog(void)
{
    return prog_name;
}

static void vsay(const char *tag, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", prog_name, tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int qlm_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay("", fmt, ap);
    va_end(ap);
    return QLM_CLI_EXIT_ERR;
}

int qlm_cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay("", fmt, ap);
    va_end(ap);
    return usage_status;
}

void qlm_cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay("warning: ", fmt, ap);
    va_end(ap);
}

int qlm_cli_bad_option(int c, char *const *argv)
{
    /* getopt_long leaves the offending short option in optopt (0 for an
     * unknown long one, the option's value for a long one missing its
     * argument or given one it does not take).  A long option is always
     * the whole of argv[optind - 1]; a short one may sit inside a cluster
     * that optind has not passed yet. */
    const char *a = argv[optind - 1];
    bool is_long = strncmp(a, "--", 2) == 0 &&
                   (c == ':' || optopt == 0 || optopt >= 128 || strchr(a, '='));
    char name[64], opt[32];
    if (is_long) {
        size_t n = strcspn(a, "=");
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), a);
        qlm_cli_shown(name, opt, sizeof opt);
    } else {
        snprintf(opt, sizeof opt, "-%c", optopt > 32 && optopt < 127 ? optopt : '?');
    }
    if (c == ':')
        return qlm_cli_usage("option %s needs an argument (see --help)", opt);
    return qlm_cli_usage("unknown option %s (see --help)", opt);
}

int qlm_cli_operand(int argc, char *const *argv, const char *what, const char **out)
{
    char b[32];
    if (optind >= argc)
        return qlm_cli_usage("no %s given (see --help)", what);
    if (argc - optind > 1)
        return qlm_cli_usage("unexpected argument '%s' (one %s; see --help)",
                             qlm_cli_shown(argv[optind + 1], b, sizeof b), what);
    *out = argv[optind];
    return QLM_CLI_CONTINUE;
}

int qlm_cli_flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return qlm_cli_fail("writing stdout: %s", strerror(errno));
    return 0;
}

int qlm_cli_help(const char *text)
{
    fputs(text, stdout);
    return qlm_cli_flush_stdout();
}

int qlm_cli_version(void)
{
    printf("%s %s\n", prog_name, PACKAGE_VERSION);
    return qlm_cli_flush_stdout();
}
