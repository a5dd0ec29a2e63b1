/*
 * kbench_main.c — qlm-kbench, a single-thread micro-benchmark of the integer
 * GEMM kernels (not installed, not a test): for each ISA this CPU runs, q8
 * and q4 weights of the Qwen3-0.6B matrix shapes times nt = 1 (decode) and
 * nt = 64 (prompt) activation rows, reporting weight GB/s and GOP/s
 * (2 ops per multiply-add).  Data are random; only time is measured.
 *
 *   qlm-kbench [--isa NAME] [--group G] [--time SECONDS] [--quick]
 */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t seed = 88172645463325252ULL;

static uint32_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (uint32_t)seed;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: qlm-kbench [--isa NAME] [--group G] [--time SECONDS] [--quick]\n"
               "Single-thread GB/s and GOP/s of gemm_q8/gemm_q4 on Qwen3-0.6B shapes.\n"
               "  --isa NAME     only this kernel set (default: every one this CPU runs)\n"
               "  --group G      quantization group, 32/64/128 (default 128)\n"
               "  --time S       minimum seconds per measurement (default 0.3)\n"
               "  --quick        skip the 151936 x 1024 head at nt = 64\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "isa", required_argument, NULL, 'i' }, { "group", required_argument, NULL, 'g' },
        { "time", required_argument, NULL, 't' }, { "quick", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
    };
    const char *only = NULL;
    int group = 128, quick = 0;
    double min_time = 0.3;
    for (int c; (c = getopt_long(argc, argv, "i:g:t:qh", opts, NULL)) != -1;) {
        switch (c) {
        case 'i': only = optarg; break;
        case 'g': group = atoi(optarg); break;
        case 't': min_time = atof(optarg); break;
        case 'q': quick = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || (group != 32 && group != 64 && group != 128) || !(min_time > 0)) {
        fprintf(stderr, "qlm-kbench: bad arguments (--help)\n");
        return 2;
    }
    if (only != NULL && qlm_kernels_get(only) == NULL) {
        fprintf(stderr, "qlm-kbench: kernel set '%s' not compiled in or not supported here\n",
                only);
        return 1;
    }
    static const int shapes[][2] = { { 1024, 1024 }, { 3072, 1024 }, { 1024, 3072 },
                                      { 151936, 1024 } };
    static const int nts[] = { 1, 64 };
    const int max_nt = 64, max_n = 3072;
    size_t max_rows = 151936;
    /* the largest q8 tensor in the file's 8-row tiles (group >= 32) */
    size_t wbytes = max_rows / QLM_QBLOCK_ROWS * (1024 / 32) * (16 + 8 * 32);
    uint8_t *w = malloc(wbytes);
    int8_t *xq = malloc((size_t)max_nt * max_n);
    float *xd = malloc((size_t)max_nt * max_n / 32 * sizeof *xd);
    float *y = malloc(max_rows * max_nt * sizeof *y);
    if (!w || !xq || !xd || !y) {
        fprintf(stderr, "qlm-kbench: out of memory\n");
        return 1;
    }
    /* random quants; every aligned 16 bits a small finite f16, so the
     * scales are harmless whatever the tiling */
    for (size_t i = 0; i < wbytes; i += 2) {
        w[i] = (uint8_t)(rnd() % 255 - 127);
        w[i + 1] = (uint8_t)((0x1c00 + rnd() % 0x400) >> 8);
    }
    for (size_t i = 0; i < (size_t)max_nt * max_n; i++)
        xq[i] = (int8_t)(rnd() % 255 - 127);
    for (size_t i = 0; i < (size_t)max_nt * max_n / 32; i++)
        xd[i] = 0.01f;

    printf("%-8s %-4s %-13s %4s %10s %8s %8s\n", "isa", "type", "rows x n", "nt", "ms/call",
           "GB/s", "GOP/s");
    const char *const *names = qlm_kernels_available();
    for (int ii = 0; names[ii] != NULL; ii++) {
        if (only != NULL && strcmp(only, names[ii]) != 0)
            continue;
        const struct qlm_isa_kernels *k = qlm_kernels_get(names[ii]);
        for (int bits = 8; bits >= 4; bits -= 4) {
            qlm_gemm_q_fn fn = bits == 8 ? k->gemm_q8 : k->gemm_q4;
            if (fn == NULL)
                fn = bits == 8 ? qlm_kernels_scalar.gemm_q8 : qlm_kernels_scalar.gemm_q4;
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                for (size_t ti = 0; ti < 2; ti++) {
                    int rows = shapes[si][0], n = shapes[si][1], nt = nts[ti];
                    if (quick && rows > 100000 && nt > 1)
                        continue;
                    double bytes = (double)rows / QLM_QBLOCK_ROWS * (n / group) *
                                   (16 + 8.0 * group * bits / 8);
                    int calls = 0;
                    double t0 = now(), t1;
                    do {
                        fn(n, group, w, 0, rows, xq, xd, nt, y, rows);
                        calls++;
                        t1 = now();
                    } while (t1 - t0 < min_time);
                    double per = (t1 - t0) / calls;
                    printf("%-8s q%-3d %6d x %-4d %4d %10.3f %8.2f %8.2f\n", k->name, bits, rows,
                           n, nt, per * 1e3, bytes / per * 1e-9,
                           2.0 * rows * n * nt / per * 1e-9);
                    fflush(stdout);
                }
        }
    }
    free(w);
    free(xq);
    free(xd);
    free(y);
    return 0;
}
