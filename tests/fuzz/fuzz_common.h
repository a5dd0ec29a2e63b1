/*
 * fuzz_common.h — helpers shared by the libFuzzer harnesses (tests/fuzz/):
 * the readers under test take a path, so an input is written to a file in a
 * private temp folder made once per process (on /dev/shm when there is one).
 */
#ifndef QLM_FUZZ_COMMON_H
#define QLM_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The libFuzzer entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Path of NAME inside the private folder (removed at exit). */
static inline const char *fuzz_path(const char *name)
{
    static char dir[256];
    static char path[512];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/qlm-fuzz.XXXXXX", base);
        if (!mkdtemp(dir))
            abort();
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Replace the file NAME with the n bytes at d; returns its path. */
static inline const char *fuzz_write(const char *name, const uint8_t *d, size_t n)
{
    const char *p = fuzz_path(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    for (size_t o = 0; o < n;) {
        ssize_t w = write(fd, d + o, n - o);
        if (w <= 0)
            abort();
        o += (size_t)w;
    }
    close(fd);
    return p;
}

#endif
