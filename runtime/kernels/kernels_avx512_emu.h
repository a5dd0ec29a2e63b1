/*
 * kernels_avx512_emu.h — the AVX-512 intrinsics that kernels_avx512vnni.c
 * uses, emulated exactly with AVX2, for its test build (QLM_AVX512_EMULATE,
 * AVX2 flags only): no CPU this project is developed on has AVX-512 and no
 * emulator for it is at hand, so this is how that file's arithmetic, lane
 * orders and tails are checked against the scalar reference.
 *
 * A zmm is two ymm halves: lo = bits 0..255 (128-bit lanes 0, 1), hi = bits
 * 256..511 (lanes 2, 3).  Each intrinsic follows Intel's definition; the
 * names are redefined as macros so the kernel source keeps one code path.
 * Include after <immintrin.h> (kernels_x86.h), and only in that build.
 */
#ifndef QLM_KERNELS_AVX512_EMU_H
#define QLM_KERNELS_AVX512_EMU_H

#include <immintrin.h>

typedef struct {
    __m256i lo, hi;
} kx512i;

#define KX512_INLINE static inline __attribute__((always_inline))

KX512_INLINE kx512i kx512_make(__m256i lo, __m256i hi)
{
    kx512i r = { lo, hi };
    return r;
}

KX512_INLINE kx512i kx512_loadu_si512(const void *p)
{
    return kx512_make(_mm256_loadu_si256((const __m256i *)p),
                      _mm256_loadu_si256((const __m256i *)p + 1));
}

KX512_INLINE kx512i kx512_setzero_si512(void)
{
    return kx512_make(_mm256_setzero_si256(), _mm256_setzero_si256());
}

KX512_INLINE kx512i kx512_set1_epi8(char c)
{
    return kx512_make(_mm256_set1_epi8(c), _mm256_set1_epi8(c));
}

/* Ops that act on each 256-bit half alone (the unpacks work within 128-bit
 * lanes, as AVX2's do within each ymm's two): kx512_<name> = <op256> twice. */
#define KX512_PER_HALF(name, op256)                                                   \
    KX512_INLINE kx512i kx512_##name(kx512i a, kx512i b)                              \
    {                                                                                 \
        return kx512_make(op256(a.lo, b.lo), op256(a.hi, b.hi));                      \
    }
KX512_PER_HALF(xor_si512, _mm256_xor_si256)
KX512_PER_HALF(sub_epi32, _mm256_sub_epi32)
KX512_PER_HALF(add_epi32, _mm256_add_epi32)
KX512_PER_HALF(unpacklo_epi32, _mm256_unpacklo_epi32)
KX512_PER_HALF(unpackhi_epi32, _mm256_unpackhi_epi32)
KX512_PER_HALF(unpacklo_epi64, _mm256_unpacklo_epi64)
KX512_PER_HALF(unpackhi_epi64, _mm256_unpackhi_epi64)

KX512_INLINE kx512i kx512_dpbusd_epi32(kx512i src, kx512i a, kx512i b)
{
    /* kx_dpbusd_emu (kernels_x86.h) on each half */
    return kx512_make(kx_dpbusd_emu(src.lo, a.lo, b.lo), kx_dpbusd_emu(src.hi, a.hi, b.hi));
}

/* The 256 bits of a in both halves. */
KX512_INLINE kx512i kx512_broadcast_i64x4(__m256i a)
{
    return kx512_make(a, a);
}

/* Intel leaves the upper half undefined; a fixed non-zero pattern makes code
 * that relies on it fail the tests instead of passing by luck. */
KX512_INLINE kx512i kx512_castsi256_si512(__m256i a)
{
    return kx512_make(a, _mm256_set1_epi8(0x5a));
}

KX512_INLINE __m256i kx512_castsi512_si256(kx512i a)
{
    return a.lo;
}

/* a with half imm[0] replaced by b. */
KX512_INLINE kx512i kx512_inserti64x4(kx512i a, __m256i b, int imm)
{
    if (imm & 1)
        a.hi = b;
    else
        a.lo = b;
    return a;
}

KX512_INLINE __m256i kx512_extracti64x4_epi64(kx512i a, int imm)
{
    return imm & 1 ? a.hi : a.lo;
}

/* Result 128-bit lanes 0, 1 are a's lanes imm[1:0], imm[3:2]; lanes 2, 3 are
 * b's lanes imm[5:4], imm[7:6]. */
KX512_INLINE kx512i kx512_shuffle_i64x2(kx512i a, kx512i b, int imm)
{
    const __m128i la[4] = { _mm256_castsi256_si128(a.lo), _mm256_extracti128_si256(a.lo, 1),
                            _mm256_castsi256_si128(a.hi), _mm256_extracti128_si256(a.hi, 1) };
    const __m128i lb[4] = { _mm256_castsi256_si128(b.lo), _mm256_extracti128_si256(b.lo, 1),
                            _mm256_castsi256_si128(b.hi), _mm256_extracti128_si256(b.hi, 1) };
    return kx512_make(_mm256_set_m128i(la[(imm >> 2) & 3], la[imm & 3]),
                      _mm256_set_m128i(lb[(imm >> 6) & 3], lb[(imm >> 4) & 3]));
}

/* Some of these are macros in GCC's headers when not optimizing. */
#undef _mm512_loadu_si512
#undef _mm512_setzero_si512
#undef _mm512_set1_epi8
#undef _mm512_xor_si512
#undef _mm512_sub_epi32
#undef _mm512_add_epi32
#undef _mm512_unpacklo_epi32
#undef _mm512_unpackhi_epi32
#undef _mm512_unpacklo_epi64
#undef _mm512_unpackhi_epi64
#undef _mm512_dpbusd_epi32
#undef _mm512_broadcast_i64x4
#undef _mm512_castsi256_si512
#undef _mm512_castsi512_si256
#undef _mm512_inserti64x4
#undef _mm512_extracti64x4_epi64
#undef _mm512_shuffle_i64x2
#define __m512i kx512i
#define _mm512_loadu_si512 kx512_loadu_si512
#define _mm512_setzero_si512 kx512_setzero_si512
#define _mm512_set1_epi8 kx512_set1_epi8
#define _mm512_xor_si512 kx512_xor_si512
#define _mm512_sub_epi32 kx512_sub_epi32
#define _mm512_add_epi32 kx512_add_epi32
#define _mm512_unpacklo_epi32 kx512_unpacklo_epi32
#define _mm512_unpackhi_epi32 kx512_unpackhi_epi32
#define _mm512_unpacklo_epi64 kx512_unpacklo_epi64
#define _mm512_unpackhi_epi64 kx512_unpackhi_epi64
#define _mm512_dpbusd_epi32 kx512_dpbusd_epi32
#define _mm512_broadcast_i64x4 kx512_broadcast_i64x4
#define _mm512_castsi256_si512 kx512_castsi256_si512
#define _mm512_castsi512_si256 kx512_castsi512_si256
#define _mm512_inserti64x4 kx512_inserti64x4
#define _mm512_extracti64x4_epi64 kx512_extracti64x4_epi64
#define _mm512_shuffle_i64x2 kx512_shuffle_i64x2

#endif
