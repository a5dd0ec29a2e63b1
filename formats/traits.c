/* traits.c — the weight-type traits table (qlm_format.h): names, storage
 * geometry and the reference block codecs of every dtype.  Adding a weight
 * type is one row here plus its kernels. */
#include "qlm_format.h"

#include <assert.h>
#include <float.h>
#include <string.h>

static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* ---- float types: one row per block ------------------------------------- */

static uint64_t f32_block_bytes(uint64_t cols, uint32_t group)
{
    uint64_t b;
    (void)group;
    return mul_u64(cols, 4, &b) ? b : UINT64_MAX;
}

static uint64_t half_block_bytes(uint64_t cols, uint32_t group)
{
    uint64_t b;
    (void)group;
    return mul_u64(cols, 2, &b) ? b : UINT64_MAX;
}

static void f32_encode(const float *x, unsigned nr, uint64_t cols, uint32_t group,
                       const float *importance, void *block)
{
    (void)group;
    (void)importance;
    assert(nr == 1);
    memcpy(block, x, (size_t)cols * 4);
}

static void f32_decode_row(const void *block, unsigned i, uint64_t cols, uint32_t group,
                           float *y)
{
    (void)group;
    assert(i == 0);
    memcpy(y, block, (size_t)cols * 4);
}

/* f16 and bf16 rows: the conversions of dtype.c, element by element. */
static void half_encode(uint16_t (*to_half)(float), const float *x, uint64_t cols, void *block)
{
    for (uint64_t c = 0; c < cols; c++) {
        uint16_t h = to_half(x[c]);
        memcpy((uint8_t *)block + 2 * c, &h, 2);
    }
}

static void f16_encode(const float *x, unsigned nr, uint64_t cols, uint32_t group,
                       const float *importance, void *block)
{
    (void)group;
    (void)importance;
    assert(nr == 1);
    half_encode(qlm_f32_to_f16, x, cols, block);
}

static void bf16_encode(const float *x, unsigned nr, uint64_t cols, uint32_t group,
                        const float *importance, void *block)
{
    (void)group;
    (void)importance;
    assert(nr == 1);
    half_encode(qlm_f32_to_bf16, x, cols, block);
}

static void f16_decode_row(const void *block, unsigned i, uint64_t cols, uint32_t group,
                           float *y)
{
    (void)group;
    assert(i == 0);
    qlm_f16_to_f32_row(block, y, (size_t)cols);
}

static void bf16_decode_row(const void *block, unsigned i, uint64_t cols, uint32_t group,
                            float *y)
{
    (void)group;
    assert(i == 0);
    qlm_bf16_to_f32_row(block, y, (size_t)cols);
}

/* ---- q8 / q4: 8-row blocks of tiles -------------------------------------- */

static uint64_t tiles_bytes(unsigned bits, uint64_t cols, uint32_t group)
{
    uint64_t b;
    if (group == 0 || group % 32 != 0 || cols % group != 0 ||
        !mul_u64(cols / group, QLM_TILE_BYTES((uint64_t)bits, group), &b))
        return UINT64_MAX;
    return b;
}

static uint64_t q8_block_bytes(uint64_t cols, uint32_t group)
{
    return tiles_bytes(8, cols, group);
}

static uint64_t q4_block_bytes(uint64_t cols, uint32_t group)
{
    return tiles_bytes(4, cols, group);
}

/* Rows of a block quantized group by group straight into their tiles: the
 * row codecs of quant_ref.c fill one group's scale and codes, which are then
 * placed chunk by chunk (QLM_CHUNK_OFFSET). */
static void tiles_encode(unsigned bits, const float *x, unsigned nr, uint64_t cols,
                         uint32_t group, void *block)
{
    assert(nr >= 1 && nr <= QLM_QBLOCK_ROWS && group <= 4096);
    uint8_t codes[4096];
    size_t cb = QLM_CHUNK_BYTES(bits), tile = QLM_TILE_BYTES((size_t)bits, group);
    memset(block, 0, (size_t)tiles_bytes(bits, cols, group));
    for (unsigned i = 0; i < nr; i++)
        for (uint64_t g = 0; g < cols / group; g++) {
            uint8_t *t = (uint8_t *)block + g * tile;
            const float *xg = x + (size_t)i * cols + g * group;
            uint16_t d;
            if (bits == 8)
                qlm_quantize_row_q8(xg, group, group, (int8_t *)codes, &d);
            else
                qlm_quantize_row_q4(xg, group, group, codes, &d);
            memcpy(t + 2 * i, &d, 2);
            for (uint32_t c = 0; c < group / 32; c++)
                memcpy(t + QLM_CHUNK_OFFSET(bits, c, i), codes + c * cb, cb);
        }
}

/* q8 and q4 take each group's scale from its largest magnitude, so they
 * have no error to weight and ignore importance (error-minimising q4/q6
 * encoders, which search the scale, are to use it). */
static void q8_encode(const float *x, unsigned nr, uint64_t cols, uint32_t group,
                      const float *importance, void *block)
{
    (void)importance;
    tiles_encode(8, x, nr, cols, group, block);
}

static void q4_encode(const float *x, unsigned nr, uint64_t cols, uint32_t group,
                      const float *importance, void *block)
{
    (void)importance;
    tiles_encode(4, x, nr, cols, group, block);
}

static void tiles_decode_row(unsigned bits, const void *block, unsigned i, uint64_t cols,
                             uint32_t group, float *y)
{
    assert(i < QLM_QBLOCK_ROWS);
    size_t tile = QLM_TILE_BYTES((size_t)bits, group);
    for (uint64_t g = 0; g < cols / group; g++) {
        const uint8_t *t = (const uint8_t *)block + g * tile;
        uint16_t d;
        memcpy(&d, t + 2 * i, 2);
        for (uint32_t c = 0; c < group / 32; c++) {
            const uint8_t *qc = t + QLM_CHUNK_OFFSET(bits, c, i);
            float *yc = y + g * group + c * 32;
            if (bits == 8)
                qlm_dequantize_row_q8((const int8_t *)qc, &d, 32, 32, yc);
            else
                qlm_dequantize_row_q4(qc, &d, 32, 32, yc);
        }
    }
}

static void q8_decode_row(const void *block, unsigned i, uint64_t cols, uint32_t group,
                          float *y)
{
    tiles_decode_row(8, block, i, cols, group, y);
}

static void q4_decode_row(const void *block, unsigned i, uint64_t cols, uint32_t group,
                          float *y)
{
    tiles_decode_row(4, block, i, cols, group, y);
}

/* q8 codes are in [-127, 127]: -128 has no positive counterpart, and the
 * kernels that move a weight's sign onto the activation would mis-sign it. */
static bool q8_check(const void *block, uint64_t cols, uint32_t group)
{
    size_t tile = QLM_TILE_BYTES((size_t)8, group), quants = tile - QLM_TILE_SCALE_BYTES;
    for (uint64_t g = 0; g < cols / group; g++) {
        const uint8_t *q = (const uint8_t *)block + g * tile + QLM_TILE_SCALE_BYTES;
        if (memchr(q, 0x80, quants) != NULL)
            return false;
    }
    return true;
}

static const struct qlm_type_traits traits[QLM_DTYPE_COUNT] = {
    [QLM_F32] = {"f32", 32, 1, 0, 0.0f, FLT_MAX, f32_block_bytes, f32_encode, f32_decode_row,
                 NULL},
    [QLM_F16] = {"f16", 16, 1, 0, 0.0f, 65504.0f, half_block_bytes, f16_encode, f16_decode_row,
                 NULL},
    [QLM_BF16] = {"bf16", 16, 1, 0, 0.0f, 3.38953139e38f /* 0x7f7f */, half_block_bytes,
                  bf16_encode, bf16_decode_row, NULL},
    /* quantized: the largest magnitude is the f16 scale's limit times qmax */
    [QLM_Q8] = {"q8", 8, QLM_QBLOCK_ROWS, 32, 127.0f, 65504.0f * 127.0f, q8_block_bytes,
                q8_encode, q8_decode_row, q8_check},
    [QLM_Q4] = {"q4", 4, QLM_QBLOCK_ROWS, 32, 7.0f, 65504.0f * 7.0f, q4_block_bytes, q4_encode,
                q4_decode_row, NULL},
};

const struct qlm_type_traits *qlm_type_traits(enum qlm_dtype t)
{
    return (unsigned)t < QLM_DTYPE_COUNT ? &traits[t] : NULL;
}

const char *qlm_dtype_name(enum qlm_dtype t)
{
    return (unsigned)t < QLM_DTYPE_COUNT ? traits[t].name : "?";
}

int qlm_dtype_from_name(const char *name)
{
    for (int i = 0; name && i < QLM_DTYPE_COUNT; i++)
        if (strcmp(name, traits[i].name) == 0)
            return i;
    return -1;
}

bool qlm_dtype_is_quant(enum qlm_dtype t)
{
    return (unsigned)t < QLM_DTYPE_COUNT && traits[t].group_multiple != 0;
}

uint32_t qlm_dtype_layout(enum qlm_dtype t)
{
    return (unsigned)t < QLM_DTYPE_COUNT && traits[t].block_rows > 1 ? traits[t].block_rows : 0;
}

uint64_t qlm_quant_tile_bytes(enum qlm_dtype t, uint32_t group)
{
    return QLM_TILE_BYTES((uint64_t)qlm_type_traits(t)->code_bits, group);
}

uint64_t qlm_quant_block_bytes(enum qlm_dtype t, uint64_t cols, uint32_t group)
{
    return qlm_type_traits(t)->block_bytes(cols, group);
}

bool qlm_tensor_bytes(enum qlm_dtype t, uint64_t rows, uint64_t cols, uint32_t group,
                      uint64_t *out)
{
    const struct qlm_type_traits *tr = qlm_type_traits(t);
    if (tr == NULL)
        return false;
    uint64_t bb = tr->block_bytes(cols, group);
    return bb != UINT64_MAX &&
           mul_u64(rows / tr->block_rows + (rows % tr->block_rows != 0), bb, out);
}

double qlm_dtype_bits(enum qlm_dtype t, uint64_t cols, uint32_t group)
{
    const struct qlm_type_traits *tr = qlm_type_traits(t);
    uint64_t bb = tr != NULL && cols > 0 ? tr->block_bytes(cols, group) : UINT64_MAX;
    return bb == UINT64_MAX ? 0.0 : 8.0 * (double)bb / ((double)tr->block_rows * (double)cols);
}

void qlm_dequantize_row(enum qlm_dtype t, const void *tensor_data, uint64_t rows, uint64_t cols,
                        uint32_t group, uint64_t r, float *y)
{
    const struct qlm_type_traits *tr = qlm_type_traits(t);
    assert(tr != NULL && r < rows);
    (void)rows;
    const uint8_t *block = (const uint8_t *)tensor_data +
                           r / tr->block_rows * tr->block_bytes(cols, group);
    tr->decode_row(block, (unsigned)(r % tr->block_rows), cols, group, y);
}
