/* output.c — the one rule for files the programs write; see cli.h. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum qlm_err qlm_cli_output_target(const char *path, struct qlm_cli_target *t,
                                   struct qlm_error *err)
{
    *t = (struct qlm_cli_target){0};
    struct stat ls, st;
    if (!*path)
        return qlm_error_set(err, QLM_E_INVALID, "the output path is empty");
    if (lstat(path, &ls) != 0) {
        if (errno != ENOENT)
            return qlm_error_set(err, QLM_E_IO, "%s: %s", path, strerror(errno));
        t->path = strdup(path); /* nothing there: created by rename */
    } else if (stat(path, &st) != 0) {
        return qlm_error_set(err, QLM_E_IO, "%s: a symbolic link to nothing (%s)", path,
                             strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        return qlm_error_set(err, QLM_E_IO, "%s: is a directory", path);
    } else if (S_ISREG(st.st_mode)) {
        /* Through a link the file it names is replaced, so the link stays. */
        t->path = S_ISLNK(ls.st_mode) ? realpath(path, NULL) : strdup(path);
        if (!t->path && errno != ENOMEM)
            return qlm_error_set(err, QLM_E_IO, "%s: %s", path, strerror(errno));
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        t->path = strdup(path);
        t->in_place = true;
    } else {
        return qlm_error_set(err, QLM_E_IO, "%s: not a regular file, FIFO or character device",
                             path);
    }
    if (!t->path)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    return QLM_OK;
}

void qlm_cli_target_free(struct qlm_cli_target *t)
{
    free(t->path);
    t->path = NULL;
}

struct qlm_cli_out {
    struct qlm_cli_target target;
    char *tmp;      /* NULL when written in place */
    int fd;
};

static enum qlm_err out_fail(struct qlm_cli_out *o, const char *what, int e,
                             struct qlm_error *err)
{
    enum qlm_err rc = qlm_error_set(err, QLM_E_IO, "%s: %s%s%s", o->target.path, what,
                                    *what ? ": " : "", strerror(e));
    qlm_cli_out_abort(o);
    return rc;
}

enum qlm_err qlm_cli_out_open(struct qlm_cli_out **out, const char *path,
                              struct qlm_error *err)
{
    *out = NULL;
    struct qlm_cli_out *o = calloc(1, sizeof *o);
    if (!o)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    o->fd = -1;
    enum qlm_err rc = qlm_cli_output_target(path, &o->target, err);
    if (rc != QLM_OK) {
        free(o);
        return rc;
    }
    if (o->target.in_place) {
        /* a FIFO blocks here until its reader opens it, as it should */
        o->fd = open(o->target.path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    } else {
        size_t n = qlm_writer_tmp_path(o->target.path, NULL, 0) + 1;
        if (!(o->tmp = malloc(n))) {
            qlm_cli_target_free(&o->target);
            free(o);
            return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
        }
        qlm_writer_tmp_path(o->target.path, o->tmp, n);
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (o->fd >= 0)
            qlm_cli_temp_output(o->tmp, o->target.path);
    }
    if (o->fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL; /* nothing was created: nothing to remove */
        return out_fail(o, "cannot open", e, err);
    }
    *out = o;
    return QLM_OK;
}

enum qlm_err qlm_cli_out_write(struct qlm_cli_out *o, const void *buf, size_t n,
                               struct qlm_error *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(o->fd, p, n > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return out_fail(o, "write failed", w < 0 ? errno : ENOSPC, err);
        p += w;
        n -= (size_t)w;
    }
    return QLM_OK;
}

enum qlm_err qlm_cli_out_commit(struct qlm_cli_out *o, struct qlm_error *err)
{
    /* make the bytes durable before the name points at them */
    if (o->tmp && fsync(o->fd) != 0 && errno != EINVAL && errno != EROFS)
        return out_fail(o, "fsync failed", errno, err);
    int fd = o->fd;
    o->fd = -1;
    if (close(fd) != 0)
        return out_fail(o, "close failed", errno, err);
    if (o->tmp && rename(o->tmp, o->target.path) != 0)
        return out_fail(o, "rename failed", errno, err);
    free(o->tmp);
    qlm_cli_target_free(&o->target);
    free(o);
    return QLM_OK;
}

void qlm_cli_out_abort(struct qlm_cli_out *o)
{
    if (!o)
        return;
    if (o->fd >= 0)
        close(o->fd);
    if (o->tmp) {
        qlm_cli_temp_output(NULL, NULL);
        unlink(o->tmp);
    }
    free(o->tmp);
    qlm_cli_target_free(&o->target);
    free(o);
}
