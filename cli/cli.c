/* cli.c — helpers shared by the runtime programs; see cli.h. */
#include "config.h"

#include "cli.h"
#include "tokenizer.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX ((size_t)1 << 30) /* a prompt or token file over 1 GiB is a mistake */

/* ---- strict parsing ----------------------------------------------------- */

/* Copy at most 24 bytes of s for a message, non-printables as '?'. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 4 < cap && i < 24; i++)
        buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (s[i] && i + 4 < cap) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

enum qlm_err qlm_cli_parse_long(const char *opt, const char *s, long min, long max, long *out,
                                struct qlm_error *err)
{
    char b[32];
    if (!s || !*s || isspace((unsigned char)*s))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not an integer", opt,
                             s ? shown(s, b, sizeof b) : "");
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not an integer", opt,
                             shown(s, b, sizeof b));
    if (errno == ERANGE || v < min || v > max)
        return qlm_error_set(err, QLM_E_RANGE, "%s %s: must be between %ld and %ld", opt,
                             shown(s, b, sizeof b), min, max);
    *out = v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_int(const char *opt, const char *s, int min, int max, int *out,
                               struct qlm_error *err)
{
    long v;
    QLM_TRY(qlm_cli_parse_long(opt, s, min, max, &v, err));
    *out = (int)v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_u64(const char *opt, const char *s, uint64_t *out,
                               struct qlm_error *err)
{
    char b[32];
    if (!s || !*s || !isdigit((unsigned char)*s))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a non-negative integer", opt,
                             s ? shown(s, b, sizeof b) : "");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0')
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a non-negative integer", opt,
                             shown(s, b, sizeof b));
    if (errno == ERANGE)
        return qlm_error_set(err, QLM_E_RANGE, "%s %s: larger than 2^64-1", opt,
                             shown(s, b, sizeof b));
    *out = (uint64_t)v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_double(const char *opt, const char *s, double min, double max,
                                  double *out, struct qlm_error *err)
{
    char b[32];
    if (!s || !*s || isspace((unsigned char)*s))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a number", opt,
                             s ? shown(s, b, sizeof b) : "");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || isnan(v))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a number", opt,
                             shown(s, b, sizeof b));
    if (!isfinite(v) || v < min || v > max)
        return qlm_error_set(err, QLM_E_RANGE, "%s %s: must be between %g and %g", opt,
                             shown(s, b, sizeof b), min, max);
    *out = v;
    return QLM_OK;
}

/* ---- input files -------------------------------------------------------- */

enum qlm_err qlm_cli_read_file(const char *path, char **buf, size_t *len, struct qlm_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qlm_error_set(err, QLM_E_IO, "%s: %s", name, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        if (!is_stdin)
            close(fd);
        return qlm_error_set(err, QLM_E_IO, "%s: %s", name, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        if (!is_stdin)
            close(fd);
        return qlm_error_set(err, QLM_E_IO, "%s: is a directory", name);
    }
    size_t cap = 4096, n = 0;
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < READ_MAX)
        cap = (size_t)st.st_size + 1;
    char *p = malloc(cap);
    enum qlm_err rc = QLM_OK;
    if (!p) {
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", name);
        goto out;
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= READ_MAX) {
                rc = qlm_error_set(err, QLM_E_RANGE, "%s: larger than %zu MiB", name,
                                   READ_MAX >> 20);
                goto out;
            }
            size_t ncap = cap * 2 > READ_MAX ? READ_MAX : cap * 2;
            char *q = realloc(p, ncap);
            if (!q) {
                rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", name);
                goto out;
            }
            p = q;
            cap = ncap;
        }
        ssize_t r = read(fd, p + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = qlm_error_set(err, QLM_E_IO, "%s: %s", name, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    p[n] = '\0';
out:
    if (!is_stdin)
        close(fd);
    if (rc != QLM_OK) {
        free(p);
        return rc;
    }
    *buf = p;
    *len = n;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_kv_type(const char *opt, const char *s, int *out,
                                   struct qlm_error *err)
{
    int t = qlm_dtype_from_name(s);
    if (t != QLM_F32 && t != QLM_F16)
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': expected f16 or f32", opt, s);
    *out = t;
    return QLM_OK;
}

enum qlm_err qlm_cli_check_utf8(const char *what, const char *text, size_t len,
                                struct qlm_error *err)
{
    size_t valid = qlm_utf8_valid_prefix((const uint8_t *)text, len);
    if (valid != len)
        return qlm_error_set(err, QLM_E_INVALID, "%s: not valid UTF-8 text (byte %zu)", what,
                             valid);
    return QLM_OK;
}

enum qlm_err qlm_cli_read_text(const char *path, char **buf, size_t *len, struct qlm_error *err)
{
    QLM_TRY(qlm_cli_read_file(path, buf, len, err));
    enum qlm_err rc = qlm_cli_check_utf8(strcmp(path, "-") == 0 ? "<stdin>" : path, *buf, *len, err);
    if (rc != QLM_OK) {
        free(*buf);
        *buf = NULL;
        *len = 0;
    }
    return rc;
}

enum qlm_err qlm_cli_read_tokens(const char *path, int n_vocab, int32_t **ids, size_t *n_ids,
                                 struct qlm_error *err)
{
    char *text;
    size_t len;
    QLM_TRY(qlm_cli_read_file(path, &text, &len, err));
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    size_t cap = 256, n = 0;
    int32_t *out = malloc(cap * sizeof *out);
    enum qlm_err rc = QLM_OK;
    if (!out) {
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    for (size_t i = 0; i < len;) {
        if (isspace((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        uint64_t v = 0;
        bool big = false;
        while (j < len && isdigit((unsigned char)text[j])) {
            if (v > UINT64_MAX / 20)
                big = true; /* keep scanning; reported as out of range */
            else
                v = v * 10 + (uint64_t)(text[j] - '0');
            j++;
        }
        if (j == i || (j < len && !isspace((unsigned char)text[j]))) {
            char b[32], tmp[32];
            size_t k = 0;
            while (i + k < len && k + 1 < sizeof tmp && !isspace((unsigned char)text[i + k]))
                tmp[k] = text[i + k] ? text[i + k] : '?', k++;
            tmp[k] = '\0';
            rc = qlm_error_set(err, QLM_E_FORMAT, "%s: token %zu ('%s') is not a token id",
                               name, n + 1, shown(tmp, b, sizeof b));
            goto fail;
        }
        if (big || v >= (uint64_t)n_vocab) {
            char b[32], tmp[32];
            size_t k = j - i < sizeof tmp - 1 ? j - i : sizeof tmp - 1;
            memcpy(tmp, text + i, k);
            tmp[k] = '\0';
            rc = qlm_error_set(err, QLM_E_RANGE, "%s: token %zu (%s) is out of range [0, %d)",
                               name, n + 1, shown(tmp, b, sizeof b), n_vocab);
            goto fail;
        }
        if (n == cap) {
            int32_t *q = realloc(out, 2 * cap * sizeof *out);
            if (!q) {
                rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", name);
                goto fail;
            }
            out = q;
            cap *= 2;
        }
        out[n++] = (int32_t)v;
        i = j;
    }
    if (n == 0) {
        rc = qlm_error_set(err, QLM_E_FORMAT, "%s: no token ids", name);
        goto fail;
    }
    free(text);
    *ids = out;
    *n_ids = n;
    return QLM_OK;
fail:
    free(text);
    free(out);
    return rc;
}

/* ---- progress, time, memory -------------------------------------------- */

double qlm_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void qlm_cli_progress_begin(struct qlm_cli_progress *p, const char *label)
{
    p->enabled = isatty(STDERR_FILENO) == 1;
    p->label = label;
    p->last_permille = -1;
    p->t0 = qlm_cli_now();
}

void qlm_cli_progress_update(struct qlm_cli_progress *p, uint64_t done, uint64_t total)
{
    if (!p->enabled || total == 0)
        return;
    if (done > total)
        done = total;
    int pm = (int)((double)done * 1000.0 / (double)total);
    if (p->last_permille >= 0 && pm / 10 == p->last_permille / 10 && done != total)
        return;
    p->last_permille = pm;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int fill = pm * WIDTH / 1000;
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%% %.1fs\033[K", p->label, bar, pm / 10,
            qlm_cli_now() - p->t0);
    fflush(stderr);
}

void qlm_cli_progress_end(struct qlm_cli_progress *p)
{
    if (p->enabled && p->last_permille >= 0) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->last_permille = -1;
}

void qlm_cli_progress_cb(uint64_t done, uint64_t total, void *ctx)
{
    qlm_cli_progress_update(ctx, done, total);
}

uint64_t qlm_cli_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0)
        return 0;
#if defined(__APPLE__)
    return (uint64_t)ru.ru_maxrss;          /* bytes on macOS */
#else
    return (uint64_t)ru.ru_maxrss * 1024u;  /* KiB on Linux and the BSDs */
#endif
}

/* ---- signals ------------------------------------------------------------ */

static char sigbus_msg[1024];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
    (void)sig;
    /* Only async-signal-safe calls here: write(2) and _exit(2). */
    ssize_t r = write(STDERR_FILENO, sigbus_msg, sigbus_len);
    (void)r;
    _exit(1);
}

void qlm_cli_catch_sigbus(const char *prog, const char *path)
{
    int n = snprintf(sigbus_msg, sizeof sigbus_msg,
                     "%s: %s: the model file changed or was truncated while in use (SIGBUS)\n",
                     prog, path);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof sigbus_msg) {
        n = (int)sizeof sigbus_msg - 1;
        sigbus_msg[n - 1] = '\n';
    }
    sigbus_len = (size_t)n;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

volatile sig_atomic_t qlm_cli_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    qlm_cli_interrupted = 1;
}

void qlm_cli_catch_sigint(void)
{
    qlm_cli_interrupted = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* One-shot: a second ^C before we re-arm kills the program as usual.
     * No SA_RESTART: a blocking read of stdin returns EINTR. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
}
