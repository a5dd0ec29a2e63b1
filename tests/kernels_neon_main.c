/*
 * kernels_neon_main.c — the NEON kernels against the scalar reference, as a
 * plain C program (no Check, no libqlm): tests/neon_qemu.sh cross-compiles it
 * with kernels_scalar.c and kernels_neon.c for aarch64 and runs it under
 * qemu-aarch64 -cpu max, so the NEON code is checked on an x86 build host.
 * The comparisons are those of check_kernels.c (tests/kernels_cases.h).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int n_checks;

#define KT_ASSERT(cond, ...)                                                   \
    do {                                                                       \
        n_checks++;                                                            \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static const struct qlm_isa_kernels *isas[1] = { &qlm_kernels_neon };
static int n_isas = 1;

#include "kernels_cases.h"

/* The two libqlmformat functions kernels_scalar.c uses (this program links
 * no formats code): IEEE half and bfloat16 decoding. */
float qlm_f16_to_f32(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(1024 + m), e - 25);
    return (h & 0x8000) ? -v : v;
}

float qlm_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int main(void)
{
    static const struct { const char *name; void (*fn)(void); } tests[] = {
        { "quantize_act", test_quantize_act },
        { "quantize_act_edges", test_quantize_act_edges },
        { "gemm_q8_exact", test_gemm_q8_exact },
        { "gemm_q8_scaled", test_gemm_q8_scaled },
        { "gemm_q4_exact", test_gemm_q4_exact },
        { "gemm_q4_scaled", test_gemm_q4_scaled },
        { "gemm_q_extremes", test_gemm_q_extremes },
        { "gemm_float", test_gemm_float },
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        tests[i].fn();
        printf("kernels_neon: %s: ok\n", tests[i].name);
    }
    printf("kernels_neon: neon tested against scalar, %d checks passed\n", n_checks);
    return 0;
}
