/* check_format.c — the .qlm writer and reader (round trips of every dtype,
 * alignment, corruption caught by open or verify, truncation, versions,
 * the layout field, atomic output) and the QTOK tokenizer blob. */
#include <config.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "qlm_format.h"
#include "qlm_schema.h"

static char tmpdir[256];

static void mk_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_format.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

static int count_entries(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint64_t rng = 88172645463325252ull;
static float rndf(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* ---- a reference file with every dtype ---------------------------------- */

#define ROWS 11 /* a full 8-row block of q8/q4 tiles and a padded one */
#define COLS 256
struct spec {
    const char *name;
    enum qlm_dtype t;
    uint32_t group;
};
static const struct spec specs[] = {
    {"a.f32", QLM_F32, 0},     {"b.f16", QLM_F16, 0},     {"c.bf16", QLM_BF16, 0},
    {"d.q8.32", QLM_Q8, 32},   {"e.q8.64", QLM_Q8, 64},   {"f.q8.128", QLM_Q8, 128},
    {"g.q4.32", QLM_Q4, 32},   {"h.q4.64", QLM_Q4, 64},   {"i.q4.128", QLM_Q4, 128},
    {"norm", QLM_F32, 0},
};
#define NSPEC (sizeof specs / sizeof specs[0])

static float src[ROWS * COLS];
static uint8_t *bytes[NSPEC];
static uint64_t nbytes[NSPEC];

/* A q8/q4 tensor in the file's layout: each row through the row codec, then
 * every 8 rows interleaved into a block of tiles by qlm_quant_pack_block. */
static void encode_quant(enum qlm_dtype t, const float *x, uint64_t rows, uint64_t cols,
                         uint32_t group, uint8_t *out)
{
    uint64_t rb = t == QLM_Q8 ? cols : cols / 2, ng = cols / group;
    uint64_t bb = qlm_quant_block_bytes(t, cols, group);
    uint8_t *q = malloc(QLM_QBLOCK_ROWS * rb);
    uint16_t *d = malloc(QLM_QBLOCK_ROWS * ng * sizeof *d);
    ck_assert(q && d);
    for (uint64_t r0 = 0; r0 < rows; r0 += QLM_QBLOCK_ROWS) {
        unsigned nr = (unsigned)(rows - r0 < QLM_QBLOCK_ROWS ? rows - r0 : QLM_QBLOCK_ROWS);
        for (unsigned i = 0; i < nr; i++) {
            const float *xr = x + (r0 + i) * cols;
            if (t == QLM_Q8)
                qlm_quantize_row_q8(xr, cols, group, (int8_t *)(q + i * rb), d + i * ng);
            else
                qlm_quantize_row_q4(xr, cols, group, q + i * rb, d + i * ng);
        }
        qlm_quant_pack_block(t, cols, group, q, d, nr, out + r0 / QLM_QBLOCK_ROWS * bb);
    }
    free(q);
    free(d);
}

/* Encode src for each spec (norm: a 1-D f32 of 7 elements). */
static void encode_all(void)
{
    for (int i = 0; i < ROWS * COLS; i++)
        src[i] = rndf() * 3;
    for (size_t s = 0; s < NSPEC; s++) {
        const struct spec *sp = &specs[s];
        uint64_t rows = ROWS, cols = COLS;
        if (strcmp(sp->name, "norm") == 0)
            rows = 1, cols = 7;
        ck_assert(qlm_tensor_bytes(sp->t, rows, cols, sp->group, &nbytes[s]));
        uint8_t *b = bytes[s] = calloc(1, nbytes[s]);
        if (qlm_dtype_is_quant(sp->t)) {
            encode_quant(sp->t, src, rows, cols, sp->group, b);
            continue;
        }
        for (uint64_t r = 0; r < rows; r++) {
            const float *x = src + r * cols;
            switch (sp->t) {
            case QLM_F32: memcpy(b + r * cols * 4, x, cols * 4); break;
            case QLM_F16:
                for (uint64_t i = 0; i < cols; i++)
                    ((uint16_t *)(void *)b)[r * cols + i] = qlm_f32_to_f16(x[i]);
                break;
            case QLM_BF16:
                for (uint64_t i = 0; i < cols; i++)
                    ((uint16_t *)(void *)b)[r * cols + i] = qlm_f32_to_bf16(x[i]);
                break;
            default: break;
            }
        }
    }
}

static void free_all(void)
{
    for (size_t s = 0; s < NSPEC; s++) {
        free(bytes[s]);
        bytes[s] = NULL;
    }
}

static struct qlm_tokdata tok_sample(struct qlm_token *toks, struct qlm_merge *merges,
                                     uint32_t *eos)
{
    static const char *words[] = {"a", "b", "ab", "<|im_end|>", "\xff\x00z"};
    for (int i = 0; i < 5; i++)
        toks[i] = (struct qlm_token){(const uint8_t *)words[i],
                                     i == 4 ? 3u : (uint32_t)strlen(words[i]),
                                     (uint8_t)(i == 3 ? QLM_TOK_SPECIAL : QLM_TOK_NORMAL)};
    merges[0] = (struct qlm_merge){0, 1, 2};
    eos[0] = 3;
    struct qlm_tokdata t = {.n_tokens = 5, .n_merges = 1, .flags = QLM_TOKF_BYTE_LEVEL,
                            .n_eos = 1, .bos_id = -1, .pad_id = 3, .eos = eos,
                            .regex = "\\p{L}+| ?[^\\s]+", .chat_template = "{{ x }}",
                            .tokens = toks, .merges = merges};
    return t;
}

/* Writes the reference file; chunk > 0 splits the data into chunks. */
static void write_ref(const char *path, size_t chunk)
{
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, path, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_str(w, QLM_KEY_ARCH, "qwen3"), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_u64(w, QLM_KEY_N_LAYERS, 28), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_i64(w, "test.neg", -5), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_f64(w, QLM_KEY_ROPE_THETA, 1e6), QLM_OK);
    struct qlm_token toks[5];
    struct qlm_merge merges[1];
    uint32_t eos[1];
    struct qlm_tokdata td = tok_sample(toks, merges, eos);
    uint8_t *blob;
    size_t blen;
    ck_assert_int_eq(qlm_tokdata_serialize(&td, &blob, &blen, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_tokenizer(w, blob, blen), QLM_OK);
    free(blob);
    for (size_t s = 0; s < NSPEC; s++) {
        uint64_t dims[2] = {ROWS, COLS}, d1[1] = {7};
        bool norm = strcmp(specs[s].name, "norm") == 0;
        ck_assert_int_eq(qlm_writer_declare(w, specs[s].name, specs[s].t, norm ? 1 : 2,
                                            norm ? d1 : dims, specs[s].group), QLM_OK);
    }
    for (size_t s = 0; s < NSPEC; s++) {
        size_t c = chunk ? chunk : nbytes[s];
        for (uint64_t o = 0; o < nbytes[s]; o += c)
            ck_assert_int_eq(qlm_writer_write(w, bytes[s] + o,
                                              (size_t)(nbytes[s] - o < c ? nbytes[s] - o : c)),
                             QLM_OK);
    }
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_OK);
    qlm_writer_abort(w);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void setup(void)
{
    mk_tmpdir();
    encode_all();
}

static void teardown(void)
{
    free_all();
    rm_tmpdir();
}

START_TEST(roundtrip_all_dtypes)
{
    const char *p = tpath("m.qlm");
    write_ref(p, (size_t)_i * 37); /* whole tensors, then odd-sized chunks */
    ck_assert_int_eq(count_entries(), 1); /* no temp file left */
    struct qlm_file *f;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_OK);
    ck_assert_int_eq(qlm_file_verify(f, NULL, NULL, &err), QLM_OK);
    ck_assert_uint_eq(f->version_major, 2);
    ck_assert_uint_eq(f->version_minor, 0);
    ck_assert_uint_eq(f->n_tensors, NSPEC);
    uint64_t data_off = rd64(f->map + 88);
    ck_assert_uint_eq(data_off % QLM_PAGE_ALIGN, 0);
    for (size_t s = 0; s < NSPEC; s++) {
        const struct qlm_tensor_info *t = qlm_file_tensor(f, specs[s].name);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, specs[s].name);
        ck_assert_int_eq(t->dtype, specs[s].t);
        ck_assert_uint_eq(t->group, specs[s].group);
        ck_assert_uint_eq(t->layout, qlm_dtype_is_quant(t->dtype) ? 8 : 0);
        ck_assert_uint_eq(t->size, nbytes[s]);
        ck_assert_uint_eq(t->offset % 64, 0);
        ck_assert_uint_eq(((uintptr_t)t->data - (uintptr_t)f->map) % 64, 0);
        ck_assert_uint_eq((uintptr_t)t->data - (uintptr_t)f->map, data_off + t->offset);
        ck_assert(memcmp(t->data, bytes[s], nbytes[s]) == 0);
        ck_assert_uint_eq(t->xxh3, XXH3_64bits(bytes[s], nbytes[s]));
        if (strcmp(specs[s].name, "norm") == 0) {
            ck_assert_int_eq(t->n_dims, 1);
            ck_assert_uint_eq(t->dims[0], 7);
            continue;
        }
        ck_assert_int_eq(t->n_dims, 2);
        ck_assert_uint_eq(t->dims[0], ROWS);
        ck_assert_uint_eq(t->dims[1], COLS);
        /* dequantized rows are within the codec's bound of the source */
        float y[COLS];
        for (uint64_t r = 0; r < ROWS; r++) {
            qlm_dequantize_row(t->dtype, t->data, ROWS, COLS, t->group, r, y);
            for (int i = 0; i < COLS; i++) {
                float x = src[r * COLS + i], tol;
                switch (t->dtype) {
                case QLM_F32: tol = 0; break;
                case QLM_F16: tol = fabsf(x) * 0x1p-11f + 0x1p-24f; break;
                case QLM_BF16: tol = fabsf(x) * 0x1p-8f; break;
                default: {
                    /* half the row's scale, read back from its tile */
                    uint8_t q[COLS];
                    uint16_t d[COLS / 32];
                    uint64_t bb = qlm_quant_block_bytes(t->dtype, COLS, t->group);
                    qlm_quant_unpack_row(t->dtype, COLS, t->group,
                                         (const uint8_t *)t->data + r / 8 * bb, (unsigned)(r % 8),
                                         q, d);
                    tol = qlm_f16_to_f32(d[(uint64_t)i / t->group]) * 0.5f * (1 + 1e-6f);
                }
                }
                ck_assert_msg(fabsf(y[i] - x) <= tol, "%s [%llu,%d]", t->name,
                              (unsigned long long)r, i);
            }
        }
    }
    /* tensors sorted by name; lookups */
    for (uint32_t i = 1; i < f->n_tensors; i++)
        ck_assert(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0);
    ck_assert_ptr_null(qlm_file_tensor(f, "missing"));
    uint64_t u;
    double d;
    const char *s;
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_N_LAYERS, &u, &err), QLM_OK);
    ck_assert_uint_eq(u, 28);
    ck_assert_int_eq(qlm_file_meta_f64(f, QLM_KEY_ROPE_THETA, &d, &err), QLM_OK);
    ck_assert(d == 1e6);
    ck_assert_int_eq(qlm_file_meta_str(f, QLM_KEY_ARCH, &s, &err), QLM_OK);
    ck_assert_str_eq(s, "qwen3");
    ck_assert_int_eq(qlm_file_meta(f, "test.neg")->v.i64, -5);
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_ARCH, &u, &err), QLM_E_FORMAT);
    ck_assert_int_eq(qlm_file_meta_u64(f, "nope", &u, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope"));
    struct qlm_tokdata td;
    ck_assert_int_eq(qlm_file_tokdata(f, &td, &err), QLM_OK);
    ck_assert_uint_eq(td.n_tokens, 5);
    ck_assert_uint_eq(td.tokens[4].len, 3);
    ck_assert(memcmp(td.tokens[4].bytes, "\xff\x00z", 3) == 0);
    ck_assert_str_eq(td.chat_template, "{{ x }}");
    qlm_tokdata_free(&td);
    qlm_file_close(f);
}
END_TEST

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    ck_assert(a && b);
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    ck_assert_int_eq(fclose(b), 0);
}

static void flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

START_TEST(flipped_tensor_byte_caught_by_verify)
{
    const char *p = tpath("m.qlm"), *q = tpath("bad.qlm");
    write_ref(p, 0);
    struct qlm_file *f;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_OK);
    uint64_t data_off = rd64(f->map + 88);
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const struct qlm_tensor_info *t = &f->tensors[i];
        copy_file(p, q);
        flip(q, data_off + t->offset + t->size / 2);
        struct qlm_file *g;
        ck_assert_int_eq(qlm_file_open(&g, q, &err), QLM_OK); /* open does not hash data */
        ck_assert_int_eq(qlm_file_verify(g, NULL, NULL, &err), QLM_E_CHECKSUM);
        char want[256];
        snprintf(want, sizeof want, "tensor '%s': checksum mismatch", t->name);
        ck_assert_msg(strstr(err.msg, want) && strstr(err.msg, q), "%s", err.msg);
        qlm_file_close(g);
    }
    qlm_file_close(f);
}
END_TEST

static uint64_t progress_calls, progress_last;
static void on_progress(uint64_t done, uint64_t total, void *ctx)
{
    (void)ctx;
    ck_assert_uint_le(done, total);
    ck_assert_uint_ge(done, progress_last);
    progress_last = done;
    progress_calls++;
}

START_TEST(verify_progress)
{
    const char *p = tpath("m.qlm");
    write_ref(p, 0);
    struct qlm_file *f;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_OK);
    uint64_t total = 0;
    for (uint32_t i = 0; i < f->n_tensors; i++)
        total += f->tensors[i].size;
    ck_assert_int_eq(qlm_file_verify(f, on_progress, NULL, &err), QLM_OK);
    ck_assert_uint_gt(progress_calls, 0);
    ck_assert_uint_eq(progress_last, total);
    qlm_file_close(f);
}
END_TEST

START_TEST(flipped_section_byte_caught_by_open)
{
    const char *p = tpath("m.qlm"), *q = tpath("bad.qlm");
    write_ref(p, 0);
    FILE *fp = fopen(p, "rb");
    uint8_t h[256];
    ck_assert_uint_eq(fread(h, 1, 256, fp), 256);
    fclose(fp);
    /* every header byte; first/middle/last byte of each section */
    uint64_t offs[256 + 9];
    int n = 0;
    for (int i = 0; i < 256; i++)
        offs[n++] = (uint64_t)i;
    for (int sec = 0; sec < 3; sec++) {
        uint64_t o = rd64(h + 24 + 16 * sec), sz = rd64(h + 32 + 16 * sec);
        if (sec == 2)
            o = rd64(h + 64), sz = rd64(h + 72);
        if (sec == 1)
            o = rd64(h + 40), sz = rd64(h + 48);
        ck_assert_uint_gt(sz, 0);
        offs[n++] = o;
        offs[n++] = o + sz / 2;
        offs[n++] = o + sz - 1;
    }
    for (int i = 0; i < n; i++) {
        copy_file(p, q);
        flip(q, offs[i]);
        struct qlm_file *f = NULL;
        struct qlm_error err = {0};
        ck_assert_msg(qlm_file_open(&f, q, &err) != QLM_OK, "flip at %llu accepted",
                      (unsigned long long)offs[i]);
        ck_assert_ptr_null(f);
        ck_assert_ptr_nonnull(strstr(err.msg, q));
    }
}
END_TEST

START_TEST(truncation_refused)
{
    const char *p = tpath("m.qlm");
    write_ref(p, 0);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    uint64_t size = (uint64_t)st.st_size;
    uint64_t cuts[] = {0, 7, 8, 100, 255, 256, 300, QLM_PAGE_ALIGN, size / 2, size - 1};
    const char *q = tpath("cut.qlm");
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_file(p, q);
        ck_assert_int_eq(truncate(q, (off_t)cuts[i]), 0);
        struct qlm_file *f = NULL;
        struct qlm_error err = {0};
        ck_assert_msg(qlm_file_open(&f, q, &err) != QLM_OK, "cut at %llu accepted",
                      (unsigned long long)cuts[i]);
        ck_assert_ptr_nonnull(strstr(err.msg, q));
    }
    /* an appended byte is refused too */
    q = tpath("long.qlm");
    copy_file(p, q);
    ck_assert_int_eq(truncate(q, (off_t)size + 1), 0);
    struct qlm_file *f = NULL;
    struct qlm_error err = {0};
    ck_assert_int_ne(qlm_file_open(&f, q, &err), QLM_OK);
}
END_TEST

/* Rewrite a header field and fix the header checksum, as a buggy or future
 * writer would: such files get past the checksum to the checks behind it. */
static void patch_header(const char *path, int off, const void *val, size_t len)
{
    int fd = open(path, O_RDWR);
    uint8_t h[256];
    ck_assert_int_eq(pread(fd, h, 256, 0), 256);
    memcpy(h + off, val, len);
    uint64_t x = XXH3_64bits(h, 248);
    for (int i = 0; i < 8; i++)
        h[248 + i] = (uint8_t)(x >> (8 * i));
    ck_assert_int_eq(pwrite(fd, h, 256, 0), 256);
    close(fd);
}

START_TEST(newer_major_refused)
{
    const char *p = tpath("m.qlm");
    write_ref(p, 0);
    uint8_t v[8] = {3, 0, 0, 0, 0, 0, 0, 0};
    patch_header(p, 8, v, 8);
    struct qlm_file *f = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_E_VERSION);
    char want[600];
    snprintf(want, sizeof want,
             "%s: format version 3.0 is newer than this qlm (2.x); upgrade qlm", p);
    ck_assert_str_eq(err.msg, want);
    /* a newer minor stays readable */
    write_ref(tpath("m2.qlm"), 0);
    uint8_t minor[4] = {7, 0, 0, 0};
    patch_header(tpath("m2.qlm"), 12, minor, 4);
    ck_assert_int_eq(qlm_file_open(&f, tpath("m2.qlm"), &err), QLM_OK);
    ck_assert_uint_eq(f->version_minor, 7);
    qlm_file_close(f);
}
END_TEST

START_TEST(older_major_refused)
{
    /* a 1.x file (row-major quants, scales apart) cannot be read as tiles:
     * refused before its directory is looked at, telling the user what to do */
    const char *p = tpath("m.qlm");
    write_ref(p, 0);
    static const struct { uint32_t major, minor; } v[] = {{1, 0}, {1, 3}, {0, 0}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *q = tpath("old.qlm");
        copy_file(p, q);
        uint8_t b[8] = {(uint8_t)v[i].major, 0, 0, 0, (uint8_t)v[i].minor, 0, 0, 0};
        patch_header(q, 8, b, 8);
        struct qlm_file *f = NULL;
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_file_open(&f, q, &err), QLM_E_VERSION);
        ck_assert_ptr_null(f);
        char want[600];
        snprintf(want, sizeof want,
                 "%s: format version %u.%u is older than this qlm (2.x); convert the "
                 "checkpoint again with qlm-convert", q, v[i].major, v[i].minor);
        ck_assert_str_eq(err.msg, want);
    }
}
END_TEST

START_TEST(bad_header_fields_refused)
{
    /* fields that pass the checksum but lie: each must be refused */
    struct { int off; uint64_t val; int len; } cases[] = {
        {16, 1, 8},                  /* file_size */
        {24, 100, 8},                /* meta_offset inside the header */
        {32, 1ull << 40, 8},         /* meta_size past the end */
        {48, UINT64_MAX, 8},         /* tok_size overflowing */
        {72, 1, 8},                  /* dir_size too small */
        {80, 1000, 4},               /* n_tensors */
        {84, 48, 4},                 /* data_alignment < 64 */
        {84, 96, 4},                 /* not a power of two */
        {88, 4096, 8},               /* data_offset not page-aligned / moved */
        {96, 0, 8},                  /* data_size */
    };
    const char *p = tpath("m.qlm"), *q = tpath("bad.qlm");
    write_ref(p, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        copy_file(p, q);
        uint8_t v[8];
        for (int k = 0; k < 8; k++)
            v[k] = (uint8_t)(cases[i].val >> (8 * k));
        patch_header(q, cases[i].off, v, (size_t)cases[i].len);
        struct qlm_file *f = NULL;
        struct qlm_error err = {0};
        ck_assert_msg(qlm_file_open(&f, q, &err) != QLM_OK, "case %zu accepted", i);
        ck_assert_ptr_nonnull(strstr(err.msg, q));
    }
}
END_TEST

/* Rewrite bytes of the directory and fix its checksum and the header's:
 * a consistent but hostile file. */
static void patch_dir(const char *path, void (*edit)(uint8_t *dir, uint64_t size, uint32_t n))
{
    int fd = open(path, O_RDWR);
    uint8_t h[256];
    ck_assert_int_eq(pread(fd, h, 256, 0), 256);
    uint64_t off = rd64(h + 64), size = rd64(h + 72);
    uint32_t n = (uint32_t)rd64(h + 80) & 0xffffffffu;
    uint8_t *d = malloc(size);
    ck_assert_int_eq(pread(fd, d, size, (off_t)off), (ssize_t)size);
    edit(d, size, n);
    ck_assert_int_eq(pwrite(fd, d, size, (off_t)off), (ssize_t)size);
    uint64_t x = XXH3_64bits(d, size);
    free(d);
    close(fd);
    uint8_t v[8];
    for (int i = 0; i < 8; i++)
        v[i] = (uint8_t)(x >> (8 * i));
    patch_header(path, 120, v, 8);
}

static void all_names_one(uint8_t *d, uint64_t size, uint32_t n)
{
    /* every entry names the whole string table: copies would exceed it n-fold */
    uint64_t strtab = size - (uint64_t)n * 80;
    for (uint32_t i = 0; i < n; i++) {
        memset(d + i * 80, 0, 4);
        d[i * 80 + 4] = (uint8_t)strtab;
        d[i * 80 + 5] = (uint8_t)(strtab >> 8);
    }
}

static void overlap_two(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    (void)n;
    memcpy(d + 80 + 48, d + 48, 8); /* tensor 1 at tensor 0's offset */
}

static void bad_dtype(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    (void)n;
    d[6] = 9;
}

static void bad_ndims(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    (void)n;
    d[7] = 0;
}

static void bad_size(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    (void)n;
    d[56] ^= 4;
}

static void misaligned(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    (void)n;
    d[80 + 48] |= 8;
}

static void huge_dims(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    (void)n;
    memset(d + 8, 0xff, 16); /* dims[0] = dims[1] = 2^64 - 1 */
}

static void name_past_table(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)n;
    d[0] = (uint8_t)size;
    d[1] = (uint8_t)(size >> 8);
}

/* The layout field (byte 44) of the first directory entry of a dtype: a
 * q8/q4 tensor is refused unless 8, a float tensor unless 0. */
static int layout_dtype;
static uint32_t layout_value;
static void set_layout(uint8_t *d, uint64_t size, uint32_t n)
{
    (void)size;
    for (uint32_t i = 0; i < n; i++)
        if (d[i * 80 + 6] == layout_dtype) {
            for (int k = 0; k < 4; k++)
                d[i * 80 + 44 + k] = (uint8_t)(layout_value >> (8 * k));
            return;
        }
    ck_abort_msg("no %s tensor", qlm_dtype_name((enum qlm_dtype)layout_dtype));
}

START_TEST(layout_checked)
{
    static const struct { enum qlm_dtype t; uint32_t layout; } cases[] = {
        {QLM_Q8, 0},  /* format 1.x's row-major quants */
        {QLM_Q4, 0},  {QLM_Q8, 16}, {QLM_Q4, 7},  {QLM_Q8, 0x80000008u},
        {QLM_F32, 8}, {QLM_BF16, 8}, {QLM_F16, 1},
    };
    const char *p = tpath("m.qlm"), *q = tpath("bad.qlm");
    write_ref(p, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        copy_file(p, q);
        layout_dtype = cases[i].t;
        layout_value = cases[i].layout;
        patch_dir(q, set_layout);
        struct qlm_file *f = NULL;
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_file_open(&f, q, &err), QLM_E_FORMAT);
        ck_assert_ptr_null(f);
        const char *name = NULL;
        for (size_t s = 0; s < NSPEC && !name; s++)
            if (specs[s].t == cases[i].t)
                name = specs[s].name; /* the writer keeps declaration order */
        char want[700];
        snprintf(want, sizeof want, "%s: tensor '%s': layout %u, a %s tensor has %u", q, name,
                 cases[i].layout, qlm_dtype_name(cases[i].t), qlm_dtype_layout(cases[i].t));
        ck_assert_str_eq(err.msg, want);
    }
    /* the unedited file: every entry carries its dtype's layout on disk */
    struct qlm_file *f;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_OK);
    const uint8_t *dir = f->map + rd64(f->map + 64);
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const uint8_t *e = dir + (size_t)i * 80;
        uint32_t lay = (uint32_t)e[44] | (uint32_t)e[45] << 8 | (uint32_t)e[46] << 16 |
                       (uint32_t)e[47] << 24;
        ck_assert_uint_eq(lay, qlm_dtype_is_quant((enum qlm_dtype)e[6]) ? 8 : 0);
    }
    qlm_file_close(f);
}
END_TEST

START_TEST(hostile_directory_refused)
{
    void (*edits[])(uint8_t *, uint64_t, uint32_t) = {all_names_one, overlap_two, bad_dtype,
                                                      bad_ndims, bad_size, misaligned,
                                                      huge_dims, name_past_table};
    const char *p = tpath("m.qlm"), *q = tpath("bad.qlm"), *l = tpath("long.qlm");
    write_ref(p, 0);
    /* long names, so that copying the whole table per entry would overrun
     * any buffer sized by the sections */
    struct qlm_writer *w;
    struct qlm_error e0 = {0};
    ck_assert_int_eq(qlm_writer_open(&w, l, false, &e0), QLM_OK);
    char name[400];
    uint64_t d1[1] = {1};
    for (int t = 0; t < 8; t++) {
        memset(name, 'a' + t, sizeof name - 1);
        name[sizeof name - 1] = 0;
        ck_assert_int_eq(qlm_writer_declare(w, name, QLM_F32, 1, d1, 0), QLM_OK);
    }
    float one[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(qlm_writer_write(w, one, sizeof one), QLM_OK);
    ck_assert_int_eq(qlm_writer_finish(w, &e0), QLM_OK);
    qlm_writer_abort(w);
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        copy_file(i == 0 ? l : p, q);
        patch_dir(q, edits[i]);
        struct qlm_file *f = NULL;
        struct qlm_error err = {0};
        ck_assert_msg(qlm_file_open(&f, q, &err) != QLM_OK, "edit %zu accepted", i);
        ck_assert_ptr_nonnull(strstr(err.msg, q));
    }
}
END_TEST

START_TEST(not_a_qlm)
{
    const char *p = tpath("text.qlm");
    FILE *fp = fopen(p, "w");
    for (int i = 0; i < 100; i++)
        fputs("hello world\n", fp);
    fclose(fp);
    struct qlm_file *f = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a .qlm"));
    ck_assert_int_eq(qlm_file_open(&f, tpath("missing.qlm"), &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.qlm"));
    ck_assert_int_eq(qlm_file_open(&f, tmpdir, &err), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "is a directory, not a regular file"));
}
END_TEST

START_TEST(existing_output_refused)
{
    const char *p = tpath("m.qlm");
    FILE *fp = fopen(p, "w");
    fputs("keep me", fp);
    fclose(fp);
    struct qlm_writer *w = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_E_IO);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    ck_assert_int_eq(count_entries(), 1);
    /* overwrite: the old file stays until finish, then is replaced */
    ck_assert_int_eq(qlm_writer_open(&w, p, true, &err), QLM_OK);
    uint64_t d[1] = {2};
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 1, d, 0), QLM_OK);
    float x[2] = {1, 2};
    ck_assert_int_eq(qlm_writer_write(w, x, sizeof x), QLM_OK);
    ck_assert_int_eq(count_entries(), 2); /* m.qlm + temp */
    fp = fopen(p, "r");
    char buf[16] = {0};
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, fp));
    fclose(fp);
    ck_assert_str_eq(buf, "keep me");
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_OK);
    qlm_writer_abort(w);
    ck_assert_int_eq(count_entries(), 1);
    struct qlm_file *f;
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_OK);
    ck_assert_int_eq(qlm_file_verify(f, NULL, NULL, &err), QLM_OK);
    qlm_file_close(f);
}
END_TEST

START_TEST(output_appearing_meanwhile_kept)
{
    /* another process creates the output while we write: finish refuses */
    const char *p = tpath("m.qlm");
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    FILE *fp = fopen(p, "w");
    fputs("theirs", fp);
    fclose(fp);
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "exists"));
    qlm_writer_abort(w);
    ck_assert_int_eq(count_entries(), 1);
    char buf[16] = {0};
    fp = fopen(p, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, fp));
    fclose(fp);
    ck_assert_str_eq(buf, "theirs");
}
END_TEST

START_TEST(abort_leaves_nothing)
{
    const char *p = tpath("m.qlm");
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(count_entries(), 1);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    ck_assert_int_eq(access(tmp, F_OK), 0);
    uint64_t d[2] = {2, 3};
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 2, d, 0), QLM_OK);
    float x[6] = {0};
    ck_assert_int_eq(qlm_writer_write(w, x, 8), QLM_OK);
    qlm_writer_abort(w);
    ck_assert_int_eq(count_entries(), 0);
}
END_TEST

START_TEST(writer_misuse)
{
    const char *p = tpath("m.qlm");
    struct qlm_writer *w;
    struct qlm_error err = {0};
    uint64_t d[2] = {2, 64};
    float x[128] = {0};
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_u64(w, "k", 1), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_str(w, "k", "again"), QLM_E_INVALID);
    qlm_writer_abort(w);
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 2, d, 0), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 2, d, 0), QLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(qlm_writer_error(w)->msg, "'x'"));
    qlm_writer_abort(w);
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "q", QLM_Q4, 2, d, 48), QLM_E_INVALID);
    qlm_writer_abort(w);
    /* tiles hold whole 32-element chunks: q8 needs group % 32 == 0 too */
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "q", QLM_Q8, 2, d, 16), QLM_E_INVALID);
    qlm_writer_abort(w);
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "z", QLM_F32, 5, d, 0), QLM_E_INVALID);
    qlm_writer_abort(w);
    /* too much data */
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 2, d, 0), QLM_OK);
    ck_assert_int_eq(qlm_writer_write(w, x, sizeof x), QLM_OK);
    ck_assert_int_eq(qlm_writer_write(w, x, 4), QLM_E_INVALID);
    ck_assert_int_ne(qlm_writer_finish(w, &err), QLM_OK);
    qlm_writer_abort(w);
    ck_assert_int_eq(count_entries(), 0);
    /* too little data: finish fails, nothing at path */
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 2, d, 0), QLM_OK);
    ck_assert_int_eq(qlm_writer_write(w, x, 100), QLM_OK);
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "'x'"));
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    qlm_writer_abort(w);
    ck_assert_int_eq(count_entries(), 0);
    /* metadata after data */
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 2, d, 0), QLM_OK);
    ck_assert_int_eq(qlm_writer_write(w, x, 8), QLM_OK);
    ck_assert_int_eq(qlm_writer_meta_u64(w, "late", 1), QLM_E_INVALID);
    qlm_writer_abort(w);
}
END_TEST

START_TEST(write_error_names_file)
{
    /* a file size limit makes write() fail (EFBIG) like a full disk would */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, rl = {100000, 100000};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    rl.rlim_max = old.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    const char *p = tpath("big.qlm");
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    uint64_t d[1] = {100000};
    ck_assert_int_eq(qlm_writer_declare(w, "x", QLM_F32, 1, d, 0), QLM_OK);
    float *x = calloc(100000, 4);
    ck_assert_int_eq(qlm_writer_write(w, x, 100000 * 4), QLM_E_IO);
    free(x);
    ck_assert_ptr_nonnull(strstr(qlm_writer_error(w)->msg, p));
    ck_assert_ptr_nonnull(strstr(qlm_writer_error(w)->msg, "write failed"));
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_E_IO);
    qlm_writer_abort(w);
    ck_assert_int_eq(count_entries(), 0);
    setrlimit(RLIMIT_FSIZE, &old); /* for CK_FORK=no runs */
}
END_TEST

START_TEST(empty_file_and_no_tokenizer)
{
    const char *p = tpath("e.qlm");
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, p, false, &err), QLM_OK);
    uint64_t d[2] = {0, 64};
    ck_assert_int_eq(qlm_writer_declare(w, "empty", QLM_Q8, 2, d, 32), QLM_OK);
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_OK);
    qlm_writer_abort(w);
    struct qlm_file *f;
    ck_assert_int_eq(qlm_file_open(&f, p, &err), QLM_OK);
    ck_assert_uint_eq(f->n_tensors, 1);
    ck_assert_uint_eq(f->tensors[0].size, 0);
    ck_assert_int_eq(qlm_file_verify(f, NULL, NULL, &err), QLM_OK);
    struct qlm_tokdata td;
    ck_assert_int_eq(qlm_file_tokdata(f, &td, &err), QLM_E_NOTFOUND);
    qlm_file_close(f);
}
END_TEST

/* ---- QTOK ------------------------------------------------------------------ */

START_TEST(tokdata_roundtrip)
{
    struct qlm_token toks[5];
    struct qlm_merge merges[1];
    uint32_t eos[1];
    struct qlm_tokdata a = tok_sample(toks, merges, eos), b;
    uint8_t *blob;
    size_t len;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_tokdata_serialize(&a, &blob, &len, &err), QLM_OK);
    ck_assert(memcmp(blob, "QTOK", 4) == 0);
    ck_assert_msg(qlm_tokdata_parse(blob, len, "t.qlm", &b, &err) == QLM_OK, "%s", err.msg);
    ck_assert_uint_eq(b.n_tokens, a.n_tokens);
    ck_assert_uint_eq(b.n_merges, 1);
    ck_assert_uint_eq(b.flags, a.flags);
    ck_assert_int_eq(b.bos_id, -1);
    ck_assert_int_eq(b.pad_id, 3);
    ck_assert_uint_eq(b.n_eos, 1);
    ck_assert_uint_eq(b.eos[0], 3);
    ck_assert_str_eq(b.regex, a.regex);
    ck_assert_str_eq(b.chat_template, a.chat_template);
    for (uint32_t i = 0; i < a.n_tokens; i++) {
        ck_assert_uint_eq(b.tokens[i].len, a.tokens[i].len);
        ck_assert_uint_eq(b.tokens[i].kind, a.tokens[i].kind);
        ck_assert(memcmp(b.tokens[i].bytes, a.tokens[i].bytes, a.tokens[i].len) == 0);
    }
    ck_assert_uint_eq(b.merges[0].left, 0);
    ck_assert_uint_eq(b.merges[0].right, 1);
    ck_assert_uint_eq(b.merges[0].result, 2);
    /* serialize(parse(x)) == x */
    uint8_t *blob2;
    size_t len2;
    ck_assert_int_eq(qlm_tokdata_serialize(&b, &blob2, &len2, &err), QLM_OK);
    ck_assert_uint_eq(len2, len);
    ck_assert(memcmp(blob, blob2, len) == 0);
    free(blob2);
    qlm_tokdata_free(&b);
    ck_assert_ptr_null(b.storage_);
    /* every truncation is refused */
    for (size_t cut = 0; cut < len; cut++) {
        enum qlm_err rc = qlm_tokdata_parse(blob, cut, "t.qlm", &b, &err);
        ck_assert_msg(rc != QLM_OK, "cut at %zu accepted", cut);
        ck_assert_ptr_nonnull(strstr(err.msg, "t.qlm"));
    }
    free(blob);
}
END_TEST

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

START_TEST(tokdata_corrupt)
{
    struct qlm_token toks[5];
    struct qlm_merge merges[1];
    uint32_t eos[1];
    struct qlm_tokdata a = tok_sample(toks, merges, eos), b;
    uint8_t *blob;
    size_t len;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_tokdata_serialize(&a, &blob, &len, &err), QLM_OK);
    uint8_t *c = malloc(len + 1);
    /* header: magic, version, n_tokens 8, n_merges 12, flags 16, bos 20, pad 24,
     * n_eos 28, eos[0] 32; merges are the last 12 bytes */
    struct { size_t off; uint32_t val; } cases[] = {
        {0, 0x4b4f5452},            /* magic "RTOK" */
        {4, 2},                     /* version */
        {8, 0xffffffffu},           /* n_tokens huge */
        {8, 3},                     /* fewer tokens: ids out of range */
        {12, 0x10000000u},          /* n_merges huge */
        {12, 2},                    /* merges past the end */
        {16, 0x80},                 /* unknown flag */
        {20, 5},                    /* bos out of range */
        {24, (uint32_t)-2},         /* pad < -1 */
        {28, 0x40000000u},          /* n_eos huge */
        {32, 5},                    /* eos id out of range */
        {36, 0xfffffff0u},          /* regex length past the end */
        {len - 12, 5},              /* merge left id out of range */
        {len - 4, 99},              /* merge result id out of range */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(c, blob, len);
        wr32(c + cases[i].off, cases[i].val);
        ck_assert_msg(qlm_tokdata_parse(c, len, "t.qlm", &b, &err) != QLM_OK,
                      "case %zu accepted", i);
        ck_assert_ptr_nonnull(strstr(err.msg, "t.qlm"));
    }
    /* bad token kind: the first token's kind byte follows regex and template */
    size_t kind_off = 36 + 4 + strlen(a.regex) + 4 + strlen(a.chat_template);
    memcpy(c, blob, len);
    c[kind_off] = 7;
    ck_assert_int_ne(qlm_tokdata_parse(c, len, "t.qlm", &b, &err), QLM_OK);
    /* trailing byte */
    memcpy(c, blob, len);
    c[len] = 0;
    ck_assert_int_ne(qlm_tokdata_parse(c, len + 1, "t.qlm", &b, &err), QLM_OK);
    ck_assert_int_eq(qlm_tokdata_parse(c, len, "t.qlm", &b, &err), QLM_OK);
    qlm_tokdata_free(&b);
    free(c);
    free(blob);
}
END_TEST

START_TEST(strerror_and_error_set)
{
    struct qlm_error e = {0};
    ck_assert_int_eq(qlm_error_set(&e, QLM_E_RANGE, "%s: %d", "f.qlm", 42), QLM_E_RANGE);
    ck_assert_str_eq(e.msg, "f.qlm: 42");
    ck_assert_int_eq(e.code, QLM_E_RANGE);
    ck_assert_int_eq(qlm_error_set(NULL, QLM_E_IO, "x"), QLM_E_IO);
    qlm_error_set(&e, QLM_E_FORMAT, "a\nb");
    ck_assert_ptr_null(strchr(e.msg, '\n'));
    for (int c = QLM_OK; c <= QLM_E_NONFINITE; c++)
        ck_assert(strlen(qlm_strerror((enum qlm_err)c)) > 0);
}
END_TEST

static Suite *format_suite(void)
{
    Suite *s = suite_create("format");
    TCase *c = tcase_create("file");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_set_timeout(c, 60);
    tcase_add_loop_test(c, roundtrip_all_dtypes, 0, 2);
    tcase_add_test(c, flipped_tensor_byte_caught_by_verify);
    tcase_add_test(c, verify_progress);
    tcase_add_test(c, flipped_section_byte_caught_by_open);
    tcase_add_test(c, truncation_refused);
    tcase_add_test(c, newer_major_refused);
    tcase_add_test(c, older_major_refused);
    tcase_add_test(c, layout_checked);
    tcase_add_test(c, bad_header_fields_refused);
    tcase_add_test(c, hostile_directory_refused);
    tcase_add_test(c, not_a_qlm);
    tcase_add_test(c, existing_output_refused);
    tcase_add_test(c, output_appearing_meanwhile_kept);
    tcase_add_test(c, abort_leaves_nothing);
    tcase_add_test(c, writer_misuse);
    tcase_add_test(c, write_error_names_file);
    tcase_add_test(c, empty_file_and_no_tokenizer);
    suite_add_tcase(s, c);
    c = tcase_create("tokdata");
    tcase_add_test(c, tokdata_roundtrip);
    tcase_add_test(c, tokdata_corrupt);
    tcase_add_test(c, strerror_and_error_set);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(format_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
