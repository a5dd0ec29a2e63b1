/* check_gguf.c — the GGUF reader (formats/gguf.c): files written by the
 * project's own writer (tests/gguf_writer.c) read back key by key and tensor
 * by tensor, the typed reads, the Q8_0/Q4_0 decoders, the checkpoint view,
 * and a table of malformed files, each refused with its code and a one-line
 * message naming the file. */
#include <config.h>

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "tmpdir.h"
#include "qlm_gguf.h"

static void spill(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rndf(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((int64_t)(rng >> 40) - (1 << 23)) / (float)(1 << 23);
}

/* ---- the good file ----------------------------------------------------------- */

static float f32_data[8] = {0, 1, 2, 3, 4, 5, 6, -7.5f};
static float q8_src[128];
static uint8_t q8_blocks[4 * 34];

/* Every value type once, arrays of strings and integers, and tensors of
 * F32, BF16, Q8_0, Q4_0, F16 and one type qlm does not decode (Q4_K). */
static struct gw *good(void)
{
    struct gw *w = gw_new();
    gw_str(w, "general.architecture", "qwen3");
    uint8_t u8 = 200, i8 = 0xfb; /* -5 */
    gw_raw(w, "t.u8", 0, &u8, 1);
    gw_raw(w, "t.i8", 1, &i8, 1);
    uint8_t u16[2] = {0x34, 0x12}, i16[2] = {0xfe, 0xff};
    gw_raw(w, "t.u16", 2, u16, 2);
    gw_raw(w, "t.i16", 3, i16, 2);
    gw_u32(w, "t.u32", 70000);
    gw_i32(w, "t.i32", -7);
    gw_f32(w, "t.f32", 1e-6f);
    gw_bool(w, "t.bool", true);
    gw_u64(w, "t.u64", (uint64_t)1 << 40);
    int64_t m1 = -1;
    gw_raw(w, "t.i64", 11, &m1, 8);
    double q = 0.25;
    gw_raw(w, "t.f64", 12, &q, 8);
    const char *strs[] = {"a", "bc", ""};
    gw_arr_str(w, "t.strs", 3, strs, NULL);
    int32_t ints[] = {1, -2, 3};
    gw_arr_i32(w, "t.ints", 3, ints);
    gw_strn(w, "t.nul", "a\0b", 3);

    uint64_t ne[2] = {4, 2};
    gw_tensor(w, "f32", QLM_GGML_F32, 2, ne, f32_data, sizeof f32_data);
    uint16_t bf[3] = {0x3f80, 0x4000, 0xc040}; /* 1 2 -3 */
    ne[0] = 3;
    gw_tensor(w, "bf16", QLM_GGML_BF16, 1, ne, bf, sizeof bf);
    for (int i = 0; i < 128; i++)
        q8_src[i] = rndf();
    gw_quantize_q8_0(q8_src, 128, q8_blocks);
    ne[0] = 64;
    ne[1] = 2;
    gw_tensor(w, "q8", QLM_GGML_Q8_0, 2, ne, q8_blocks, sizeof q8_blocks);
    uint8_t q4[18];
    gw_quantize_q4_0(q8_src, 32, q4);
    ne[0] = 32;
    gw_tensor(w, "q4", QLM_GGML_Q4_0, 1, ne, q4, sizeof q4);
    uint16_t f16[5] = {0x3c00, 0xc000, 0, 0x3800, 0x7bff};
    ne[0] = 5;
    gw_tensor(w, "f16", QLM_GGML_F16, 1, ne, f16, sizeof f16);
    uint8_t k[144] = {0};
    ne[0] = 256;
    gw_tensor(w, "k", 12, 1, ne, k, sizeof k);
    return w;
}

static struct qlm_gguf *open_ok(const char *path)
{
    struct qlm_gguf *g = NULL;
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_gguf_open(&g, path, &err);
    ck_assert_msg(rc == QLM_OK, "open %s: %s", path, err.msg);
    return g;
}

/* good() written and opened. */
static struct qlm_gguf *good_open(void)
{
    struct gw *w = good();
    ck_assert(gw_write(w, tpath("good.gguf")));
    gw_free(w);
    return open_ok(tpath("good.gguf"));
}

START_TEST(good_file_read_back)
{
    struct qlm_gguf *g = good_open();
    ck_assert_uint_eq(g->version, 3);
    ck_assert_uint_eq(g->alignment, 32);
    ck_assert_uint_eq(g->n_kv, 15);
    ck_assert_uint_eq(g->n_tensors, 6);
    ck_assert_uint_eq(g->data_offset % 32, 0);
    ck_assert_str_eq(g->kv[0].key, "general.architecture");
    ck_assert_str_eq(g->kv[14].key, "t.nul");
    ck_assert_ptr_null(qlm_gguf_find(g, "t.none"));

    const struct qlm_gguf_tensor *t = qlm_gguf_tensor(g, "f32");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->type, QLM_GGML_F32);
    ck_assert_uint_eq(t->n_dims, 2);
    ck_assert_uint_eq(t->ne[0], 4);
    ck_assert_uint_eq(t->ne[1], 2);
    ck_assert_uint_eq(t->ne[2], 1);
    ck_assert_uint_eq(t->numel, 8);
    ck_assert_uint_eq(t->size, 32);
    ck_assert_uint_eq(t->offset, 0);
    ck_assert_mem_eq(t->data, f32_data, sizeof f32_data);
    t = qlm_gguf_tensor(g, "q8");
    ck_assert_uint_eq(t->size, sizeof q8_blocks);
    ck_assert_uint_eq(t->offset % 32, 0);
    ck_assert_mem_eq(t->data, q8_blocks, sizeof q8_blocks);
    t = qlm_gguf_tensor(g, "k");
    ck_assert_uint_eq(t->size, 144);
    ck_assert_str_eq(qlm_ggml_type_name(t->type), "Q4_K");
    /* each tensor at the padded end of the one before */
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        uint64_t end = g->tensors[i - 1].offset + g->tensors[i - 1].size;
        ck_assert_uint_eq(g->tensors[i].offset, (end + 31) / 32 * 32);
        ck_assert(g->tensors[i].data == g->map + g->data_offset + g->tensors[i].offset);
    }
    qlm_gguf_close(g);
}
END_TEST

START_TEST(typed_reads)
{
    struct qlm_gguf *g = good_open();
    struct qlm_error err = {0};
    uint64_t u;
    double d;
    bool b;
    char *s;
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.u8", 255, &u, &err), QLM_OK);
    ck_assert_uint_eq(u, 200);
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.u16", UINT64_MAX, &u, &err), QLM_OK);
    ck_assert_uint_eq(u, 0x1234);
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.u32", UINT64_MAX, &u, &err), QLM_OK);
    ck_assert_uint_eq(u, 70000);
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.u64", UINT64_MAX, &u, &err), QLM_OK);
    ck_assert_uint_eq(u, (uint64_t)1 << 40);
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.u32", 65535, &u, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'t.u32' = 70000 is out of range"));
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.i8", UINT64_MAX, &u, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'t.i8' = -5 is negative"));
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.i16", UINT64_MAX, &u, &err), QLM_E_FORMAT);
    ck_assert_int_eq(qlm_gguf_get_uint(g, "general.architecture", 9, &u, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "is string, not an integer"));
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.ints", 9, &u, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "is an array of i32"));
    ck_assert_int_eq(qlm_gguf_get_uint(g, "t.none", 9, &u, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing key 't.none'"));
    ck_assert_ptr_nonnull(strstr(err.msg, tpath("good.gguf")));

    /* an f32 reads as the decimal it was written from */
    ck_assert_int_eq(qlm_gguf_get_real(g, "t.f32", &d, &err), QLM_OK);
    ck_assert(d == 1e-6);
    ck_assert_int_eq(qlm_gguf_get_real(g, "t.f64", &d, &err), QLM_OK);
    ck_assert(d == 0.25);
    ck_assert_int_eq(qlm_gguf_get_real(g, "t.u32", &d, &err), QLM_E_FORMAT);
    ck_assert_int_eq(qlm_gguf_get_bool(g, "t.bool", &b, &err), QLM_OK);
    ck_assert(b);
    ck_assert_int_eq(qlm_gguf_get_bool(g, "t.u8", &b, &err), QLM_E_FORMAT);
    ck_assert_int_eq(qlm_gguf_get_str(g, "general.architecture", &s, &err), QLM_OK);
    ck_assert_str_eq(s, "qwen3");
    free(s);
    ck_assert_int_eq(qlm_gguf_get_str(g, "t.nul", &s, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "NUL"));

    const struct qlm_gguf_kv *kv;
    ck_assert_int_eq(qlm_gguf_get_array(g, "t.ints", QLM_GGUF_U32, &kv, &err), QLM_OK);
    ck_assert_uint_eq(kv->n, 3);
    ck_assert_int_eq(qlm_gguf_int_at(kv, 0), 1);
    ck_assert_int_eq(qlm_gguf_int_at(kv, 1), -2);
    ck_assert_int_eq(qlm_gguf_get_array(g, "t.ints", QLM_GGUF_STRING, &kv, &err), QLM_E_FORMAT);
    ck_assert_int_eq(qlm_gguf_get_array(g, "t.u32", QLM_GGUF_U32, &kv, &err), QLM_E_FORMAT);
    ck_assert_int_eq(qlm_gguf_get_array(g, "t.strs", QLM_GGUF_STRING, &kv, &err), QLM_OK);
    ck_assert_uint_eq(kv->strs[1].len, 2);
    ck_assert_mem_eq(kv->strs[1].ptr, "bc", 2);
    ck_assert_uint_eq(kv->strs[2].len, 0);
    ck_assert_int_eq(qlm_gguf_int_at(qlm_gguf_find(g, "t.i64"), 0), -1);
    ck_assert(qlm_gguf_real_at(qlm_gguf_find(g, "t.f64"), 0) == 0.25);
    qlm_gguf_close(g);
}
END_TEST

START_TEST(alignment_and_version_2)
{
    struct gw *w = gw_new();
    gw_u32(w, "general.alignment", 256);
    uint64_t ne = 3;
    gw_tensor(w, "a", QLM_GGML_F32, 1, &ne, f32_data, 12);
    gw_tensor(w, "b", QLM_GGML_F32, 1, &ne, f32_data, 12);
    gw_version(w, 2);
    ck_assert(gw_write(w, tpath("a.gguf")));
    gw_free(w);
    struct qlm_gguf *g = open_ok(tpath("a.gguf"));
    ck_assert_uint_eq(g->version, 2);
    ck_assert_uint_eq(g->alignment, 256);
    ck_assert_uint_eq(g->data_offset % 256, 0);
    ck_assert_uint_eq(g->tensors[1].offset, 256);
    qlm_gguf_close(g);
    /* no tensors at all */
    w = gw_new();
    gw_str(w, "general.name", "x");
    ck_assert(gw_write(w, tpath("b.gguf")));
    gw_free(w);
    g = open_ok(tpath("b.gguf"));
    ck_assert_uint_eq(g->n_tensors, 0);
    qlm_gguf_close(g);
}
END_TEST

START_TEST(last_padding_may_be_missing)
{
    struct gw *w = gw_new();
    uint64_t ne = 3;
    gw_tensor(w, "a", QLM_GGML_F32, 1, &ne, f32_data, 12);
    size_t n;
    struct gw_layout lay;
    uint8_t *b = gw_bytes(w, &n, &lay);
    gw_free(w);
    spill(tpath("a.gguf"), b, lay.data + 12);
    qlm_gguf_close(open_ok(tpath("a.gguf")));
    free(b);
}
END_TEST

START_TEST(probe)
{
    ck_assert(qlm_gguf_probe("/nonexistent/m.gguf"));
    ck_assert(!qlm_gguf_probe("/nonexistent/m.gguf.txt"));
    ck_assert(!qlm_gguf_probe(tmpdir));
    spill(tpath("model.bin"), (const uint8_t *)"GGUF\3\0\0\0", 8);
    ck_assert(qlm_gguf_probe(tpath("model.bin")));
    spill(tpath("model.bin"), (const uint8_t *)"GGML", 4);
    ck_assert(!qlm_gguf_probe(tpath("model.bin")));
}
END_TEST

/* ---- decoders and the checkpoint view --------------------------------------- */

START_TEST(block_decoders)
{
    /* by hand: Q8_0 d 0.5, q = j - 16; Q4_0 d 1, byte j = j | (15 - j) << 4 */
    uint8_t q8[34] = {0x00, 0x38}, q4[18] = {0x00, 0x3c};
    for (int j = 0; j < 32; j++)
        q8[2 + j] = (uint8_t)(int8_t)(j - 16);
    for (int j = 0; j < 16; j++)
        q4[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    qlm_ggml_q8_0_to_f32(q8, 32, y);
    for (int j = 0; j < 32; j++)
        ck_assert(y[j] == 0.5f * (float)(j - 16));
    qlm_ggml_q4_0_to_f32(q4, 32, y);
    for (int j = 0; j < 16; j++) {
        ck_assert(y[j] == (float)(j - 8));
        ck_assert(y[j + 16] == (float)(7 - j));
    }
    /* the reference quantizers round to the nearest code of the f32 scale,
     * which is stored rounded to f16 (relative error 2^-11, times 127); Q4_0
     * clamps +8 d to 7 d */
    float x[256];
    uint8_t b8[8 * 34], b4[8 * 18];
    for (int i = 0; i < 256; i++)
        x[i] = rndf() * (i < 32 ? 0.1f : 1.0f);
    gw_quantize_q8_0(x, 256, b8);
    gw_quantize_q4_0(x, 256, b4);
    float y8[256], y4[256];
    qlm_ggml_q8_0_to_f32(b8, 256, y8);
    qlm_ggml_q4_0_to_f32(b4, 256, y4);
    for (int k = 0; k < 8; k++) {
        uint16_t h8, h4;
        memcpy(&h8, b8 + 34 * k, 2);
        memcpy(&h4, b4 + 18 * k, 2);
        float d8 = qlm_f16_to_f32(h8), d4 = fabsf(qlm_f16_to_f32(h4));
        for (int j = 0; j < 32; j++) {
            float v = x[32 * k + j];
            ck_assert_msg(fabsf(y8[32 * k + j] - v) <= 0.57f * d8, "q8 %d", j);
            ck_assert_msg(fabsf(y4[32 * k + j] - v) <= 1.01f * d4, "q4 %d", j);
        }
    }
}
END_TEST

START_TEST(checkpoint_view)
{
    struct qlm_gguf *g = good_open();
    const char *names[] = {"z.f32", "y.bf16", "x.q8", "w.q4", "v.f16", "u.k"};
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_gguf_st_view(g, names, &m, &err), QLM_OK);
    ck_assert_uint_eq(m->n_tensors, 6);
    ck_assert_int_eq(m->n_shards, 1);
    ck_assert_str_eq(m->shard_paths[0], g->path);
    const struct qlm_st_tensor *t = qlm_st_find(m, "z.f32");
    ck_assert_int_eq(t->dtype, QLM_ST_F32);
    ck_assert_int_eq(t->n_dims, 2);
    ck_assert_uint_eq(t->dims[0], 2); /* outermost first */
    ck_assert_uint_eq(t->dims[1], 4);
    t = qlm_st_find(m, "x.q8");
    ck_assert_int_eq(t->dtype, QLM_ST_Q8_0);
    ck_assert_str_eq(t->dtype_name, "Q8_0");
    ck_assert_uint_eq(t->numel, 128);
    float a[64], b[64];
    qlm_st_to_f32(t, 64, 64, a); /* row 1 */
    qlm_ggml_q8_0_to_f32(q8_blocks + 2 * 34, 64, b);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_int_eq(qlm_st_find(m, "w.q4")->dtype, QLM_ST_Q4_0);
    ck_assert_int_eq(qlm_st_find(m, "y.bf16")->dtype, QLM_ST_BF16);
    qlm_st_to_f32(qlm_st_find(m, "y.bf16"), 0, 3, a);
    ck_assert(a[0] == 1.0f && a[1] == 2.0f && a[2] == -3.0f);
    ck_assert_int_eq(qlm_st_find(m, "v.f16")->dtype, QLM_ST_F16);
    ck_assert_int_eq(qlm_st_find(m, "u.k")->dtype, QLM_ST_OTHER);
    ck_assert_str_eq(qlm_st_find(m, "u.k")->dtype_name, "Q4_K");
    qlm_st_close(m);
    names[3] = "x.q8";
    ck_assert_int_eq(qlm_gguf_st_view(g, names, &m, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "two tensors stand for 'x.q8'"));
    ck_assert_ptr_null(m);
    qlm_gguf_close(g);
}
END_TEST

/* ---- malformed files ------------------------------------------------------------ */

static void wr32(uint8_t *b, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *b, size_t off, uint64_t v)
{
    wr32(b, off, (uint32_t)v);
    wr32(b, off + 4, (uint32_t)(v >> 32));
}

/* In the two-tensor file of two_tensors(): where tensor i's info fields are. */
#define INFO_NAME_LEN 1 /* names "a" and "b" */
static size_t field_ndims(const struct gw_layout *l, int i)
{
    return l->info[i] + 8 + INFO_NAME_LEN;
}
static size_t field_offset(const struct gw_layout *l, int i)
{
    return field_ndims(l, i) + 4 + 8 + 4;
}

static struct gw *two_tensors(void)
{
    struct gw *w = gw_new();
    gw_str(w, "general.architecture", "qwen3");
    uint64_t ne = 3;
    gw_tensor(w, "a", QLM_GGML_F32, 1, &ne, f32_data, 12);
    gw_tensor(w, "b", QLM_GGML_F32, 1, &ne, f32_data, 12);
    return w;
}

struct bad_case {
    const char *what;
    void (*build)(struct gw *w);                          /* adds to two_tensors(), or NULL */
    void (*patch)(uint8_t *b, size_t *len, const struct gw_layout *l); /* or NULL */
    enum qlm_err want;
    const char *says;
};

/* The patches and builders of the cases below, one line each. */
#define PATCH(name, ...)                                                        \
    static void name(uint8_t *b, size_t *n, const struct gw_layout *l)          \
    {                                                                           \
        (void)b, (void)n, (void)l;                                              \
        __VA_ARGS__;                                                            \
    }
#define BUILD(name, ...)                                                        \
    static void name(struct gw *w) { __VA_ARGS__; }
PATCH(p_empty, *n = 0)
PATCH(p_short, *n = 20)
PATCH(p_magic, b[0] = 'X')
PATCH(p_v1, wr32(b, 4, 1))
PATCH(p_v4, wr32(b, 4, 4))
PATCH(p_big, wr32(b, 4, 0x03000000))
PATCH(p_nt, wr64(b, 8, (uint64_t)1 << 40))
PATCH(p_nkv, wr64(b, 16, (uint64_t)1 << 62))
PATCH(p_keylen, wr64(b, l->kv[0], (uint64_t)1 << 60))
PATCH(p_ndims, wr32(b, field_ndims(l, 0), 5))
PATCH(p_namelen, wr64(b, l->info[1], 64))
PATCH(p_unaligned, wr64(b, field_offset(l, 1), 33))
PATCH(p_overlap, wr64(b, field_offset(l, 1), 0))
PATCH(p_hole, wr64(b, field_offset(l, 1), 64))
PATCH(p_first_off, wr64(b, field_offset(l, 0), 32))
PATCH(p_cut_data, *n = l->data + 32 + 8)
PATCH(p_trailing, memset(b + *n, 0, 64); *n += 64)
PATCH(p_cut_info, *n = l->info[1] + 3)
PATCH(p_cut_pad, *n = l->data - 1)
PATCH(p_type, wr32(b, field_offset(l, 1) - 4, 99))
PATCH(p_type4, wr32(b, field_offset(l, 1) - 4, 4))

BUILD(b_empty_key, gw_u32(w, "", 1))
BUILD(b_ctrl_key, gw_u32(w, "a\nb", 1))
BUILD(b_vtype, gw_raw(w, "k", 13, "\0", 1))
BUILD(b_arr_arr, gw_raw(w, "k", 9, "\x09\0\0\0\0\0\0\0\0\0\0\0", 12))
BUILD(b_arr_huge, gw_raw(w, "k", 9, "\x04\0\0\0\xff\xff\xff\xff\0\0\0\0", 12))
BUILD(b_str_huge, gw_raw(w, "k", 8, "\xff\xff\xff\xff\xff\0\0\0", 8))
BUILD(b_bool2, gw_raw(w, "k", 7, "\x02", 1))
BUILD(b_dup_key, gw_str(w, "general.architecture", "llama"))
BUILD(b_dup_name, uint64_t ne = 3; gw_tensor(w, "a", 0, 1, &ne, f32_data, 12))
BUILD(b_ctrl_name, uint64_t ne = 3; gw_tensor(w, "c\x01", 0, 1, &ne, f32_data, 12))
BUILD(b_overflow, uint64_t ne[2] = {(uint64_t)1 << 40, (uint64_t)1 << 30};
      gw_tensor(w, "c", 0, 2, ne, f32_data, 4))
BUILD(b_bytes_ovf, uint64_t ne = (uint64_t)1 << 61; gw_tensor(w, "c", 28, 1, &ne, f32_data, 4))
BUILD(b_block, uint64_t ne = 33; gw_tensor(w, "c", QLM_GGML_Q8_0, 1, &ne, q8_blocks, 34))
BUILD(b_align48, gw_u32(w, "general.alignment", 48))
BUILD(b_align0, gw_u32(w, "general.alignment", 0))
BUILD(b_align_u64, gw_u64(w, "general.alignment", 64))

static const struct bad_case bad[] = {
    {"empty file", NULL, p_empty, QLM_E_FORMAT, "truncated: 0 bytes, not a GGUF file"},
    {"20 bytes", NULL, p_short, QLM_E_FORMAT, "truncated: 20 bytes"},
    {"bad magic", NULL, p_magic, QLM_E_FORMAT, "not a GGUF file"},
    {"version 1", NULL, p_v1, QLM_E_VERSION, "GGUF version 1 is not supported"},
    {"version 4", NULL, p_v4, QLM_E_VERSION, "GGUF version 4 is not supported"},
    {"big-endian", NULL, p_big, QLM_E_VERSION, "big-endian"},
    {"tensor count huge", NULL, p_nt, QLM_E_RANGE, "tensors: more than the file can hold"},
    {"key count huge", NULL, p_nkv, QLM_E_RANGE, "keys: more than the file can hold"},
    {"key length past the end", NULL, p_keylen, QLM_E_FORMAT, "truncated in key/value 0"},
    {"empty key", b_empty_key, NULL, QLM_E_FORMAT, "key 1 is not 1 to 65535 printable"},
    {"control byte in a key", b_ctrl_key, NULL, QLM_E_FORMAT, "key 1 is not"},
    {"unknown value type", b_vtype, NULL, QLM_E_FORMAT, "key 'k' has unknown value type 13"},
    {"array of arrays", b_arr_arr, NULL, QLM_E_FORMAT, "arrays of arrays"},
    {"array count past the end", b_arr_huge, NULL, QLM_E_FORMAT, "truncated in key/value 1"},
    {"string past the end", b_str_huge, NULL, QLM_E_FORMAT, "truncated in key/value 1"},
    {"bool 2", b_bool2, NULL, QLM_E_FORMAT, "bool value 2"},
    {"duplicate key", b_dup_key, NULL, QLM_E_FORMAT, "key 'general.architecture' appears twice"},
    {"duplicate tensor", b_dup_name, NULL, QLM_E_FORMAT, "tensor 'a' appears twice"},
    {"control byte in a name", b_ctrl_name, NULL, QLM_E_FORMAT, "tensor 2: name is not"},
    {"name of 64 bytes", NULL, p_namelen, QLM_E_FORMAT, "tensor 1: name is not 1 to 63"},
    {"5 dimensions", NULL, p_ndims, QLM_E_FORMAT, "tensor 'a' has 5 dimensions"},
    {"element count overflows", b_overflow, NULL, QLM_E_RANGE, "elements overflow"},
    {"byte size overflows", b_bytes_ovf, NULL, QLM_E_RANGE, "byte size overflows"},
    {"unknown ggml type", NULL, p_type, QLM_E_FORMAT, "tensor 'b' has unknown ggml type 99"},
    {"removed ggml type", NULL, p_type4, QLM_E_FORMAT, "unknown ggml type 4"},
    {"row not whole blocks", b_block, NULL, QLM_E_FORMAT, "rows of 33 elements, not a multiple"},
    {"unaligned offset", NULL, p_unaligned, QLM_E_FORMAT, "offset 33 is not aligned to 32"},
    {"overlapping tensors", NULL, p_overlap, QLM_E_RANGE, "overlaps the tensor before it"},
    {"hole between tensors", NULL, p_hole, QLM_E_RANGE, "hole of 32 bytes before tensor 'b'"},
    {"hole before the first", NULL, p_first_off, QLM_E_RANGE, "hole of 32 bytes before tensor 'a'"},
    {"data cut", NULL, p_cut_data, QLM_E_RANGE, "tensor 'b' ends at"},
    {"trailing bytes", NULL, p_trailing, QLM_E_FORMAT, "trailing bytes after the last tensor"},
    {"cut in a tensor info", NULL, p_cut_info, QLM_E_FORMAT, "truncated in tensor info 1"},
    {"cut before the data", NULL, p_cut_pad, QLM_E_FORMAT, "truncated"},
    {"alignment 48", b_align48, NULL, QLM_E_FORMAT, "general.alignment 48 is not a power of two"},
    {"alignment 0", b_align0, NULL, QLM_E_FORMAT, "general.alignment 0 is not a power of two"},
    {"alignment u64", b_align_u64, NULL, QLM_E_FORMAT, "'general.alignment' is u64, not u32"},
};

START_TEST(malformed_refused)
{
    const struct bad_case *c = &bad[_i];
    struct gw *w = two_tensors();
    if (c->build)
        c->build(w);
    size_t n;
    struct gw_layout lay;
    uint8_t *b = gw_bytes(w, &n, &lay);
    gw_free(w);
    b = realloc(b, n + 64);
    if (c->patch)
        c->patch(b, &n, &lay);
    const char *p = tpath("bad.gguf");
    spill(p, b, n);
    free(b);
    struct qlm_gguf *g = NULL;
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_gguf_open(&g, p, &err);
    ck_assert_msg(rc == c->want, "%s: got %d (%s), want %d", c->what, rc, err.msg, c->want);
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(err.msg, p) == err.msg, "%s: '%s' does not start with the file",
                  c->what, err.msg);
    ck_assert_msg(strstr(err.msg, c->says) != NULL, "%s: '%s' does not say '%s'", c->what,
                  err.msg, c->says);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
}
END_TEST

START_TEST(missing_file)
{
    struct qlm_gguf *g = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_gguf_open(&g, tpath("none.gguf"), &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "none.gguf"));
    ck_assert_int_eq(qlm_gguf_open(&g, tmpdir, &err), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "is a directory, not a regular file"));
    ck_assert_ptr_null(g);
}
END_TEST

static Suite *gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *c = tcase_create("valid");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, good_file_read_back);
    tcase_add_test(c, typed_reads);
    tcase_add_test(c, alignment_and_version_2);
    tcase_add_test(c, last_padding_may_be_missing);
    tcase_add_test(c, probe);
    tcase_add_test(c, block_decoders);
    tcase_add_test(c, checkpoint_view);
    suite_add_tcase(s, c);
    c = tcase_create("malformed");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_loop_test(c, malformed_refused, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(c, missing_file);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(gguf_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
