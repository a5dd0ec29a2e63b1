/*
 * kernels_neon_main.c — the NEON kernels against the scalar reference, as a
 * plain C program (no Check, no libqlm): tests/neon_qemu.sh cross-compiles it
 * with kernels_scalar.c, kernels_neon.c and the two format sources the cases
 * and the scalar kernels use (dtype.c: f16/bf16 decoding and tile sizes;
 * quant_ref.c: the block packer) for aarch64 and runs it under
 * qemu-aarch64 -cpu max, so the NEON code is checked on an x86 build host.
 * The comparisons are those of check_kernels.c (tests/kernels_cases.h).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

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
        { "wsum", test_wsum },
        { "softmax", test_softmax },
        { "silu", test_silu },
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        tests[i].fn();
        printf("kernels_neon: %s: ok\n", tests[i].name);
    }
    printf("kernels_neon: neon tested against scalar, %d checks passed\n", n_checks);
    return 0;
}
