/* input.c — open a model or checkpoint file: a regular file, or a refusal
 * that names what it is instead.  open(2) on a FIFO waits for a writer and
 * a device may never end, so the file is opened with O_NONBLOCK (a FIFO then
 * opens at once), checked with fstat, and only then made blocking again. */
#include "qlm_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a file";
}

enum qlm_err qlm_input_open(const char *path, int *fd, uint64_t *size, struct qlm_error *err)
{
    *fd = -1;
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f < 0)
        return qlm_error_set(err, errno == ENOENT ? QLM_E_NOTFOUND : QLM_E_IO, "%s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return qlm_error_set(err, QLM_E_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return qlm_error_set(err, QLM_E_IO, "%s: is %s, not a regular file", path,
                             kind(st.st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return qlm_error_set(err, QLM_E_IO, "%s: %s", path, strerror(e));
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return QLM_OK;
}

enum qlm_err qlm_input_read(const char *path, size_t max, char **buf, size_t *len,
                            struct qlm_error *err)
{
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    QLM_TRY(qlm_input_open(path, &fd, &size, err));
    if (size > max) {
        close(fd);
        return qlm_error_set(err, QLM_E_RANGE, "%s: %llu bytes, more than the %zu allowed", path,
                             (unsigned long long)size, max);
    }
    /* read to end of file, not to the size fstat saw (the file may change
     * meanwhile); one byte more than max tells a file that grew too large */
    size_t limit = max + 1, cap = (size_t)size + 1, n = 0;
    char *p = malloc(cap + 1);
    enum qlm_err rc = p ? QLM_OK : qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    while (rc == QLM_OK && n < limit) {
        if (n == cap) {
            size_t ncap = cap > limit / 2 ? limit : 2 * cap;
            char *np = realloc(p, ncap + 1);
            if (!np) {
                rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
                break;
            }
            p = np;
            cap = ncap;
        }
        ssize_t got = read(fd, p + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = qlm_error_set(err, QLM_E_IO, "%s: read: %s", path, strerror(errno));
        else if (got == 0)
            break;
        n += got > 0 ? (size_t)got : 0;
    }
    if (rc == QLM_OK && n > max)
        rc = qlm_error_set(err, QLM_E_RANGE, "%s: grew past the %zu bytes allowed while read",
                           path, max);
    close(fd);
    if (rc != QLM_OK) {
        free(p);
        return rc;
    }
    p[n] = '\0';
    *buf = p;
    *len = n;
    return QLM_OK;
}
