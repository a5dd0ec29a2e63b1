/* publish.c — the last step of an atomic write, shared by the .qlm and
 * .imat writers: a complete temporary file next to the output is moved to
 * its name, and the directory synced so the move survives a crash. */
#include "qlm_format.h"
#include "fmt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Without overwrite, link() refuses an output that appeared since the
 * writer checked (rename would silently replace it); filesystems without
 * hard links fall back to a checked rename. */
enum qlm_err qlm_fmt_publish(const char *tmp, const char *path, bool overwrite,
                             struct qlm_error *err)
{
    if (!overwrite) {
        if (link(tmp, path) == 0) {
            unlink(tmp);
            return QLM_OK;
        }
        struct stat st;
        if (errno == EEXIST || lstat(path, &st) == 0)
            return qlm_error_set(err, QLM_E_IO, "%s: already exists (not overwriting)", path);
    }
    if (rename(tmp, path) != 0)
        return qlm_error_set(err, QLM_E_IO, "%s: rename failed: %s", path, strerror(errno));
    return QLM_OK;
}

void qlm_fmt_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dirpath = slash ? strndup(path, (size_t)(slash - path + 1)) : strdup(".");
    if (!dirpath)
        return;
    int dfd = open(dirpath, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dirpath);
}
