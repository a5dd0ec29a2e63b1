/* check_traits.c — the weight-type traits table (formats/traits.c): every
 * row consistent with the names, sizes and codecs the rest of the format
 * library defines, block codecs equal to the row codecs plus the 8-row
 * packing, bits per weight, and the code check qlm_file_verify applies. */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qlm_format.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float rndf(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((int64_t)(rng >> 40) - (1 << 23)) / (float)(1 << 23);
}

START_TEST(table_consistent)
{
    ck_assert_ptr_null(qlm_type_traits(QLM_DTYPE_COUNT));
    ck_assert_ptr_null(qlm_type_traits((enum qlm_dtype)-1));
    for (int t = 0; t < QLM_DTYPE_COUNT; t++) {
        const struct qlm_type_traits *tr = qlm_type_traits((enum qlm_dtype)t);
        ck_assert_ptr_nonnull(tr);
        ck_assert_str_eq(qlm_dtype_name((enum qlm_dtype)t), tr->name);
        ck_assert_int_eq(qlm_dtype_from_name(tr->name), t);
        ck_assert(tr->block_bytes && tr->encode && tr->decode_row);
        ck_assert(tr->block_rows == 1 || tr->block_rows == QLM_QBLOCK_ROWS);
        ck_assert_uint_eq(qlm_dtype_layout((enum qlm_dtype)t),
                          tr->block_rows > 1 ? tr->block_rows : 0);
        ck_assert_int_eq(qlm_dtype_is_quant((enum qlm_dtype)t), tr->group_multiple != 0);
        ck_assert_int_eq(tr->qmax > 0.0f, tr->group_multiple != 0);
        ck_assert(tr->max_abs > 0.0f && isfinite(tr->max_abs));
        uint32_t g = tr->group_multiple ? 32 : 0;
        uint64_t n;
        ck_assert(qlm_tensor_bytes((enum qlm_dtype)t, tr->block_rows, 256, g, &n));
        ck_assert_uint_eq(n, tr->block_bytes(256, g));
    }
    ck_assert_int_eq(qlm_dtype_from_name("q5"), -1);
    ck_assert_int_eq(qlm_dtype_from_name(NULL), -1);
}
END_TEST

START_TEST(bits_per_weight)
{
    ck_assert(qlm_dtype_bits(QLM_F32, 64, 0) == 32.0);
    ck_assert(qlm_dtype_bits(QLM_BF16, 64, 0) == 16.0);
    ck_assert(qlm_dtype_bits(QLM_Q8, 64, 32) == 8.5);
    ck_assert(qlm_dtype_bits(QLM_Q8, 256, 128) == 8.125);
    ck_assert(qlm_dtype_bits(QLM_Q4, 64, 32) == 4.5);
    ck_assert(qlm_dtype_bits(QLM_Q4, 96, 64) == 0.0); /* 96 columns: not whole groups */
    ck_assert(qlm_dtype_bits(QLM_Q8, 0, 32) == 0.0);
}
END_TEST

/* Every type's block codec against what its definition says: floats convert
 * element by element; q8/q4 equal the row codecs followed by the 8-row
 * packing, and decode back to the row codecs' values.  None of these
 * weights its error, so a column importance changes no byte. */
START_TEST(block_codec_matches_row_codecs)
{
    enum { COLS = 128 };
    for (int t = 0; t < QLM_DTYPE_COUNT; t++) {
        const struct qlm_type_traits *tr = qlm_type_traits((enum qlm_dtype)t);
        for (uint32_t g = tr->group_multiple ? 32 : 0; g <= (tr->group_multiple ? 128u : 0u);
             g = g ? g * 2 : 1) {
            for (unsigned nr = 1; nr <= tr->block_rows; nr++) {
                float x[QLM_QBLOCK_ROWS * COLS], y[COLS], want[COLS];
                for (unsigned k = 0; k < nr * COLS; k++)
                    x[k] = rndf() * (k % 17 == 0 ? 8.0f : 1.0f);
                uint64_t bb = tr->block_bytes(COLS, g);
                uint8_t *blk = malloc(bb), *ref = malloc(bb);
                tr->encode(x, nr, COLS, g, NULL, blk);
                float imp[COLS];
                for (int c = 0; c < COLS; c++)
                    imp[c] = c % 3 == 0 ? 100.0f : 0.01f * (float)c;
                tr->encode(x, nr, COLS, g, imp, ref);
                ck_assert_int_eq(memcmp(blk, ref, bb), 0);
                if (tr->group_multiple) {
                    size_t rb = COLS * tr->code_bits / 8, ng = COLS / g;
                    uint8_t q[QLM_QBLOCK_ROWS * COLS];
                    uint16_t d[QLM_QBLOCK_ROWS * COLS / 32];
                    for (unsigned i = 0; i < nr; i++) {
                        if (t == QLM_Q8)
                            qlm_quantize_row_q8(x + i * COLS, COLS, g, (int8_t *)q + i * rb,
                                                d + i * ng);
                        else
                            qlm_quantize_row_q4(x + i * COLS, COLS, g, q + i * rb, d + i * ng);
                    }
                    qlm_quant_pack_block((enum qlm_dtype)t, COLS, g, q, d, nr, ref);
                    ck_assert_int_eq(memcmp(blk, ref, bb), 0);
                    for (unsigned i = 0; i < nr; i++) {
                        if (t == QLM_Q8)
                            qlm_dequantize_row_q8((int8_t *)q + i * rb, d + i * ng, COLS, g,
                                                  want);
                        else
                            qlm_dequantize_row_q4(q + i * rb, d + i * ng, COLS, g, want);
                        tr->decode_row(blk, i, COLS, g, y);
                        ck_assert_int_eq(memcmp(y, want, sizeof y), 0);
                    }
                    /* rows past nr are zero rows */
                    for (unsigned i = nr; i < tr->block_rows; i++) {
                        tr->decode_row(blk, i, COLS, g, y);
                        for (int c = 0; c < COLS; c++)
                            ck_assert(y[c] == 0.0f);
                    }
                } else {
                    tr->decode_row(blk, 0, COLS, g, y);
                    for (int c = 0; c < COLS; c++) {
                        float w = t == QLM_F32  ? x[c]
                                  : t == QLM_F16 ? qlm_f16_to_f32(qlm_f32_to_f16(x[c]))
                                                 : qlm_bf16_to_f32(qlm_f32_to_bf16(x[c]));
                        ck_assert(y[c] == w);
                    }
                }
                free(blk);
                free(ref);
                if (!tr->group_multiple)
                    break;
            }
            if (!tr->group_multiple)
                break;
        }
    }
}
END_TEST

/* The largest magnitude a type claims to hold encodes to a finite value. */
START_TEST(max_abs_finite)
{
    for (int t = 0; t < QLM_DTYPE_COUNT; t++) {
        const struct qlm_type_traits *tr = qlm_type_traits((enum qlm_dtype)t);
        uint32_t g = tr->group_multiple;
        float x[QLM_QBLOCK_ROWS * 32] = {0}, y[32];
        x[0] = tr->max_abs;
        x[1] = -tr->max_abs;
        uint8_t *blk = malloc(tr->block_bytes(32, g));
        tr->encode(x, 1, 32, g, NULL, blk);
        tr->decode_row(blk, 0, 32, g, y);
        ck_assert(isfinite(y[0]) && isfinite(y[1]) && y[0] > 0.0f && y[1] < 0.0f);
        free(blk);
    }
}
END_TEST

START_TEST(q8_code_check)
{
    const struct qlm_type_traits *tr = qlm_type_traits(QLM_Q8);
    ck_assert_ptr_nonnull(tr->check);
    ck_assert_ptr_null(qlm_type_traits(QLM_Q4)->check); /* every nibble is a code */
    float x[QLM_QBLOCK_ROWS * 64];
    for (int k = 0; k < QLM_QBLOCK_ROWS * 64; k++)
        x[k] = rndf();
    uint8_t blk[2 * QLM_TILE_BYTES(8, 32)];
    tr->encode(x, QLM_QBLOCK_ROWS, 64, 32, NULL, blk);
    ck_assert(tr->check(blk, 64, 32));
    blk[1] = 0x80; /* a scale byte: any value is allowed */
    ck_assert(tr->check(blk, 64, 32));
    blk[QLM_TILE_BYTES(8, 32) + QLM_CHUNK_OFFSET(8, 0, 5) + 31] = 0x80; /* tile 1, row 5 */
    ck_assert(!tr->check(blk, 64, 32));
}
END_TEST

/* qlm_file_verify applies the check: a q8 tensor holding -128 (written with
 * a valid checksum) is refused, naming the tensor. */
START_TEST(verify_refuses_q8_minus_128)
{
    char path[] = "/tmp/check_traits.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const struct qlm_type_traits *tr = qlm_type_traits(QLM_Q8);
    enum { ROWS = 16, COLS = 64 };
    uint64_t bb = tr->block_bytes(COLS, 32);
    uint8_t *data = malloc(2 * bb);
    float x[QLM_QBLOCK_ROWS * COLS];
    for (int b = 0; b < 2; b++) {
        for (int k = 0; k < QLM_QBLOCK_ROWS * COLS; k++)
            x[k] = rndf();
        tr->encode(x, QLM_QBLOCK_ROWS, COLS, 32, NULL, data + b * bb);
    }
    for (int bad = 0; bad < 2; bad++) {
        if (bad)
            data[bb + QLM_TILE_SCALE_BYTES + 7] = 0x80; /* block 1 */
        struct qlm_writer *w;
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_writer_open(&w, path, true, &err), QLM_OK);
        uint64_t dims[2] = {ROWS, COLS};
        ck_assert_int_eq(qlm_writer_declare(w, "w", QLM_Q8, 2, dims, 32), QLM_OK);
        ck_assert_int_eq(qlm_writer_write(w, data, 2 * bb), QLM_OK);
        ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_OK);
        qlm_writer_abort(w);
        struct qlm_file *f;
        ck_assert_int_eq(qlm_file_open(&f, path, &err), QLM_OK);
        enum qlm_err rc = qlm_file_verify(f, NULL, NULL, &err);
        if (!bad) {
            ck_assert_int_eq(rc, QLM_OK);
        } else {
            ck_assert_int_eq(rc, QLM_E_FORMAT);
            ck_assert_ptr_nonnull(strstr(err.msg, "tensor 'w': block 1"));
            ck_assert_ptr_nonnull(strstr(err.msg, "outside the q8 range"));
        }
        qlm_file_close(f);
    }
    unlink(path);
    free(data);
}
END_TEST

static Suite *traits_suite(void)
{
    Suite *s = suite_create("traits");
    TCase *c = tcase_create("traits");
    tcase_add_test(c, table_consistent);
    tcase_add_test(c, bits_per_weight);
    tcase_add_test(c, block_codec_matches_row_codecs);
    tcase_add_test(c, max_abs_finite);
    tcase_add_test(c, q8_code_check);
    tcase_add_test(c, verify_refuses_q8_minus_128);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(traits_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
