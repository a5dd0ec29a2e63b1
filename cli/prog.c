/* prog.c — the program's name in messages, usage errors, and the options
 * every program shares; see cli.h. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *prog_name = "qlm", *help_text = "";

void qlm_cli_init(const char *prog, const char *help)
{
    prog_name = prog;
    help_text = help;
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
    return QLM_CLI_EXIT_USAGE;
}

void qlm_cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay("warning: ", fmt, ap);
    va_end(ap);
}

static int bad_option(int c, char *const *argv)
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

int qlm_cli_flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return qlm_cli_fail("writing stdout: %s", strerror(errno));
    return 0;
}

static int print_version(void)
{
    printf("%s %s\n", prog_name, PACKAGE_VERSION);
    return qlm_cli_flush_stdout();
}

int qlm_cli_option(int c, const char *arg, char *const *argv, struct qlm_cli_common *co)
{
    struct qlm_error err = {0};
    enum qlm_err rc = QLM_OK;
    switch (c) {
    case 'm': co->model = arg; break;
    case 't': rc = qlm_cli_parse_int("--threads", arg, 1, 1024, &co->threads, &err); break;
    case QLM_CLI_OPT_KV_TYPE: rc = qlm_cli_parse_kv_type("--kv-type", arg, &co->kv_type, &err); break;
    case QLM_CLI_OPT_JSON: co->json = true; break;
    case 'h':
        fputs(help_text, stdout);
        return qlm_cli_flush_stdout();
    case 'V': return print_version();
    default: return bad_option(c, argv);
    }
    return rc == QLM_OK ? QLM_CLI_CONTINUE : qlm_cli_usage("%s", err.msg);
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT_MAX ? (int)n : 0;
}

int qlm_cli_take_model(int argc, char *const *argv, const char *what, struct qlm_cli_common *co)
{
    char b[32];
    if (co->model && optind < argc)
        return qlm_cli_usage("unexpected argument '%s' (the model is given with -m)",
                             qlm_cli_shown(argv[optind], b, sizeof b));
    if (!co->model) {
        if (optind >= argc)
            return qlm_cli_usage("missing %s (see --help)", what);
        co->model = argv[optind++];
    }
    if (optind < argc)
        return qlm_cli_usage("unexpected argument '%s' (one %s; see --help)",
                             qlm_cli_shown(argv[optind], b, sizeof b), what);
    return QLM_CLI_CONTINUE;
}

void qlm_cli_options_done(const struct qlm_cli_common *co)
{
    int cpus = online_cpus();
    if (cpus > 0 && co->threads > cpus)
        qlm_cli_warn("--threads %d: more than the %d online CPUs (threads will share them)",
                     co->threads, cpus);
}
