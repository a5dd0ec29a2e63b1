/* map.c — read-only mappings of whole files, for the readers that validate
 * every byte in place (GGUF, safetensors). */
#include "fmt_internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

enum qlm_err qlm_fmt_map(const char *path, uint64_t min_size, const uint8_t **map,
                         uint64_t *size, struct qlm_error *err)
{
    *map = NULL;
    *size = 0;
    int fd;
    uint64_t fsize;
    QLM_TRY(qlm_input_open(path, &fd, &fsize, err));
    enum qlm_err rc = QLM_OK;
    if (fsize > SIZE_MAX) {
        rc = qlm_error_set(err, QLM_E_RANGE, "%s: too large to map", path);
    } else {
        *size = fsize;
        if (*size >= min_size && *size > 0) {
            void *m = mmap(NULL, (size_t)*size, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED)
                rc = qlm_error_set(err, QLM_E_IO, "%s: mmap: %s", path, strerror(errno));
            else
                *map = m;
        }
    }
    close(fd);
    return rc;
}

void qlm_fmt_unmap(const uint8_t *map, uint64_t size)
{
    if (map)
        munmap((void *)map, (size_t)size);
}
