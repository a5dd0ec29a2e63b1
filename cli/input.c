/* input.c — whole files, texts and --tokens files; see cli.h. */
#include "config.h"

#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#define READ_MAX ((size_t)1 << 30) /* a prompt or token file over 1 GiB is a mistake */

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

enum qlm_err qlm_cli_check_utf8(const char *what, const char *text, size_t len,
                                struct qlm_error *err)
{
    /* utf8proc_iterate refuses what RFC 3629 does: overlongs, surrogates,
     * code points past U+10FFFF, cut sequences. */
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        size_t left = len - i;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, left < 4 ? (utf8proc_ssize_t)left : 4, &cp);
        if (n <= 0)
            return qlm_error_set(err, QLM_E_INVALID, "%s: not valid UTF-8 text (byte %zu)",
                                 what, i);
        i += (size_t)n;
    }
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
                               name, n + 1, qlm_cli_shown(tmp, b, sizeof b));
            goto fail;
        }
        if (big || v >= (uint64_t)n_vocab) {
            char b[32], tmp[32];
            size_t k = j - i < sizeof tmp - 1 ? j - i : sizeof tmp - 1;
            memcpy(tmp, text + i, k);
            tmp[k] = '\0';
            rc = qlm_error_set(err, QLM_E_RANGE, "%s: token %zu (%s) is out of range [0, %d)",
                               name, n + 1, qlm_cli_shown(tmp, b, sizeof b), n_vocab);
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
