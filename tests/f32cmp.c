/* f32cmp A B VOCAB TOL — compare two raw little-endian f32 files of
 * rows x VOCAB (A: qlm-run --logits-out, B: a reference).  Passes if every
 * value of A is within TOL x (max - min of B's row) of B's.  Prints the worst
 * relative difference and the share of rows whose argmax agrees.
 * Exit 0 pass, 1 fail, 2 usage or I/O error. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *load(const char *path, long *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp || fseek(fp, 0, SEEK_END) != 0) {
        perror(path);
        exit(2);
    }
    long bytes = ftell(fp);
    rewind(fp);
    if (bytes < 0 || bytes % 4) {
        fprintf(stderr, "%s: size %ld is not a multiple of 4\n", path, bytes);
        exit(2);
    }
    *n = bytes / 4;
    float *v = malloc((size_t)bytes + 4);
    uint8_t b[4];
    for (long i = 0; i < *n; i++) {
        if (fread(b, 1, 4, fp) != 4) {
            perror(path);
            exit(2);
        }
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24;
        memcpy(&v[i], &u, 4);
    }
    fclose(fp);
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: f32cmp A B VOCAB TOL\n");
        return 2;
    }
    long na, nb, vocab = atol(argv[3]);
    double tol = atof(argv[4]);
    float *a = load(argv[1], &na), *b = load(argv[2], &nb);
    if (vocab <= 0 || na != nb || na % vocab) {
        fprintf(stderr, "f32cmp: %ld vs %ld values, vocab %ld\n", na, nb, vocab);
        return 1;
    }
    double worst = 0;
    long worst_row = 0, same = 0, rows = na / vocab;
    for (long r = 0; r < rows; r++) {
        const float *x = a + r * vocab, *y = b + r * vocab;
        float lo = y[0], hi = y[0];
        double md = 0;
        long ax = 0, ay = 0;
        for (long c = 0; c < vocab; c++) {
            if (y[c] < lo) lo = y[c];
            if (y[c] > hi) hi = y[c];
            double d = fabs((double)x[c] - (double)y[c]);
            if (!(d <= md)) /* NaN counts as worst */
                md = isnan(d) ? INFINITY : d;
            if (x[c] > x[ax]) ax = c;
            if (y[c] > y[ay]) ay = c;
        }
        double range = hi - lo > 0 ? hi - lo : 1;
        if (md / range > worst) {
            worst = md / range;
            worst_row = r;
        }
        same += ax == ay;
    }
    printf("%ld rows: worst |diff| / row range %.3g (row %ld), argmax agrees on %ld\n", rows,
           worst, worst_row, same);
    return worst <= tol ? 0 : 1;
}
