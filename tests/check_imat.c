/*
 * check_imat.c — the .imat reader and writer (formats/imat.c): a round trip
 * keeps every field and value bit for bit; each defect of the layout in
 * qlm_imat.h is refused with a message naming the file and the problem,
 * whether the checksum was left stale or recomputed past it; the writer
 * refuses what the reader would, and is atomic.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fmt_internal.h"
#include "qlm_imat.h"

/* ---- a small valid file --------------------------------------------------- */

#define N_ENT 3
static const char *const names[N_ENT] = {"model.layers.0.self_attn.q_proj.weight",
                                         "model.layers.0.mlp.down_proj.weight",
                                         "model.layers.0.self_attn.k_proj.weight"};
static const uint32_t cols[N_ENT] = {8, 24, 8};
static float vals[N_ENT][24];
static struct qlm_imat_entry ents[N_ENT];

static struct qlm_imat sample(void)
{
    for (int i = 0; i < N_ENT; i++) {
        for (uint32_t c = 0; c < cols[i]; c++)
            vals[i][c] = (float)(i * 100 + c) * 0.125f; /* column 0 of entry 0 is 0: allowed */
        ents[i] = (struct qlm_imat_entry){names[i], cols[i], 64 - (uint64_t)i, vals[i]};
    }
    struct qlm_imat m = {.model = {"qwen3", 2, 8, 24, 2, 1, 4, 100}, .n_tokens = 64,
                         .n_chunks = 2, .chunk_tokens = 32, .n_entries = N_ENT,
                         .entries = ents};
    return m;
}

static uint8_t *sample_bytes(size_t *len)
{
    struct qlm_imat m = sample();
    uint8_t *b;
    struct qlm_error e = {0};
    ck_assert_msg(qlm_imat_serialize(&m, "s.imat", &b, len, &e) == QLM_OK, "%s", e.msg);
    return b;
}

static void wr(uint8_t *p, int w, uint64_t v)
{
    for (int i = 0; i < w; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static void rehash(uint8_t *b, size_t len)
{
    wr(b + len - 8, 8, XXH3_64bits(b, len - 8));
}

/* Offset of entry i's name_len field in the sample. */
static size_t entry_off(const uint8_t *b, int i)
{
    size_t o = QLM_IMAT_HEADER_SIZE;
    for (int k = 0; k < i; k++) {
        size_t nl = qlm_fmt_rd16(b + o);
        o += 2 + nl + 12 + 4 * (size_t)qlm_fmt_rd32(b + o + 2 + nl);
    }
    return o;
}

/* parse must fail with code and a message containing want (and "s.imat"). */
static void refused(const uint8_t *b, size_t len, enum qlm_err code, const char *want)
{
    struct qlm_imat *m = (struct qlm_imat *)1;
    struct qlm_error e = {0};
    enum qlm_err rc = qlm_imat_parse(b, len, "s.imat", &m, &e);
    ck_assert_msg(rc == code, "want %d (%s), got %d: %s", code, want, rc, e.msg);
    ck_assert_ptr_null(m);
    ck_assert_msg(strncmp(e.msg, "s.imat: ", 8) == 0, "%s", e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "'%s' lacks '%s'", e.msg, want);
    ck_assert_ptr_null(strchr(e.msg, '\n'));
}

/* A copy of b with the w-byte field at off set to v (and the checksum
 * recomputed when hash) must be refused as refused() says. */
static void patched(const uint8_t *b, size_t len, size_t off, int w, uint64_t v, bool hash,
                    enum qlm_err code, const char *want)
{
    uint8_t *c = malloc(len);
    memcpy(c, b, len);
    wr(c + off, w, v);
    if (hash)
        rehash(c, len);
    refused(c, len, code, want);
    free(c);
}

/* ---- round trip ----------------------------------------------------------- */

START_TEST(round_trip)
{
    size_t len;
    uint8_t *b = sample_bytes(&len);
    size_t want = QLM_IMAT_HEADER_SIZE + 8;
    for (int i = 0; i < N_ENT; i++)
        want += 2 + strlen(names[i]) + 12 + 4 * cols[i];
    ck_assert_uint_eq(len, want);
    ck_assert(memcmp(b, QLM_IMAT_MAGIC, 8) == 0);
    ck_assert_uint_eq(qlm_fmt_rd64(b + 16), len);
    struct qlm_imat *m;
    struct qlm_error e = {0};
    ck_assert_msg(qlm_imat_parse(b, len, "s.imat", &m, &e) == QLM_OK, "%s", e.msg);
    struct qlm_imat s = sample();
    ck_assert_str_eq(m->model.arch, "qwen3");
    ck_assert(memcmp(&m->model, &s.model, sizeof s.model) == 0);
    ck_assert_uint_eq(m->n_tokens, 64);
    ck_assert_uint_eq(m->n_chunks, 2);
    ck_assert_uint_eq(m->chunk_tokens, 32);
    ck_assert_uint_eq(m->n_entries, N_ENT);
    for (int i = 0; i < N_ENT; i++) {
        const struct qlm_imat_entry *x = &m->entries[i], *f = qlm_imat_find(m, names[i]);
        ck_assert_ptr_eq(f, x); /* file order kept; found by name */
        ck_assert_str_eq(x->name, names[i]);
        ck_assert_uint_eq(x->cols, cols[i]);
        ck_assert_uint_eq(x->count, 64 - (uint64_t)i);
        ck_assert(memcmp(x->values, vals[i], cols[i] * sizeof(float)) == 0);
    }
    ck_assert_ptr_null(qlm_imat_find(m, "lm_head.weight"));
    ck_assert_ptr_null(qlm_imat_find(m, ""));
    /* serialize(parse(b)) == b */
    uint8_t *b2;
    size_t len2;
    ck_assert_int_eq(qlm_imat_serialize(m, "s.imat", &b2, &len2, &e), QLM_OK);
    ck_assert_uint_eq(len2, len);
    ck_assert(memcmp(b, b2, len) == 0);
    free(b2);
    qlm_imat_free(m);
    /* a minor version bump and reserved bytes stay readable */
    wr(b + 12, 4, 7);
    wr(b + 88, 8, 0xdeadbeef);
    rehash(b, len);
    ck_assert_int_eq(qlm_imat_parse(b, len, "s.imat", &m, &e), QLM_OK);
    qlm_imat_free(m);
    free(b);
}
END_TEST

/* ---- the reader's refusals ------------------------------------------------ */

START_TEST(refuses_truncation_everywhere)
{
    size_t len;
    uint8_t *b = sample_bytes(&len);
    /* every prefix: stale size field */
    for (size_t n = 0; n < len; n++) {
        struct qlm_imat *m;
        struct qlm_error e = {0};
        ck_assert_int_ne(qlm_imat_parse(b, n, "s.imat", &m, &e), QLM_OK);
        ck_assert_msg(strstr(e.msg, "truncated") != NULL, "%zu: %s", n, e.msg);
    }
    /* every cut inside the entries, with size and checksum fixed up: the
     * entry parser itself sees the truncation */
    uint8_t *c = malloc(len);
    for (size_t n = QLM_IMAT_HEADER_SIZE; n + 8 < len; n++) {
        memcpy(c, b, n);
        memcpy(c + n, b + len - 8, 8);
        wr(c + 16, 8, n + 8);
        rehash(c, n + 8);
        /* fewer bytes than 3 of the smallest entries: refused before parsing */
        bool early = (n - QLM_IMAT_HEADER_SIZE) / (2 + 1 + 12 + 4) < N_ENT;
        refused(c, n + 8, QLM_E_FORMAT, early ? "do not fit" : "truncated");
    }
    free(c);
    free(b);
}
END_TEST

START_TEST(refuses_header_defects)
{
    size_t len;
    uint8_t *b = sample_bytes(&len);
    uint8_t *c = malloc(len + 1);
    struct { size_t off; int w; uint64_t v; enum qlm_err code; const char *want; bool hash; } cs[] = {
        {0, 1, 0x88, QLM_E_FORMAT, "bad magic", false},
        {8, 4, 2, QLM_E_VERSION, "version 2.0 is newer than this qlm (1.x); upgrade", false},
        {8, 4, 0, QLM_E_VERSION, "version 0.0 is older than this qlm (1.x); run qlm-imatrix", false},
        {16, 8, 4096, QLM_E_FORMAT, "header says 4096 bytes", false},
        {30, 1, 1, QLM_E_CHECKSUM, "checksum mismatch", false},
        {24, 1, 0, QLM_E_FORMAT, "architecture name", true},
        {26, 1, ' ', QLM_E_FORMAT, "architecture name", true},
        {44, 4, 0, QLM_E_FORMAT, "model hidden is 0", true},
        {64, 4, 0, QLM_E_FORMAT, "model vocab_size is 0", true},
        {68, 4, 0, QLM_E_FORMAT, "0 entries", true},
        {68, 4, QLM_IMAT_MAX_ENTRIES + 1, QLM_E_FORMAT, "entries, not 1 to", true},
        {68, 4, 1000, QLM_E_FORMAT, "1000 entries do not fit", true},
        {68, 4, 2, QLM_E_FORMAT, "bytes after the last entry", true},
        {72, 8, 0, QLM_E_FORMAT, "computed over 0 tokens", true},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        patched(b, len, cs[k].off, cs[k].w, cs[k].v, cs[k].hash, cs[k].code, cs[k].want);
    /* an architecture of 16 characters has no NUL */
    memcpy(c, b, len);
    memset(c + 24, 'a', 16);
    rehash(c, len);
    refused(c, len, QLM_E_FORMAT, "architecture name");
    /* a byte appended */
    memcpy(c, b, len);
    c[len] = 0;
    refused(c, len + 1, QLM_E_FORMAT, "file has");
    free(c);
    free(b);
}
END_TEST

/* A defect inside entry 1 (down_proj, 24 columns), checksum recomputed. */
START_TEST(refuses_entry_defects)
{
    size_t len;
    uint8_t *b = sample_bytes(&len);
    uint8_t *c = malloc(len);
    size_t e1 = entry_off(b, 1), nl = qlm_fmt_rd16(b + e1), v1 = e1 + 2 + nl + 12;
    uint32_t nan = 0x7fc00000, inf = 0x7f800000, neg = 0xbf800000, negzero = 0x80000000;
    struct { size_t off; int w; uint64_t v; const char *want; } cs[] = {
        {e1, 2, 0, "name of 0 bytes"},
        {QLM_IMAT_HEADER_SIZE, 2, 256, "entry 0: name of 256 bytes"},
        {e1, 2, 60000, "truncated in entry 1"},
        {e1 + 2, 1, ' ', "entry 1: name of"},
        {e1 + 2, 1, 0x80, "entry 1: name of"},
        {e1 + 2 + nl, 4, 0, "entry 1 'model.layers.0.mlp.down_proj.weight' has 0 columns"},
        {e1 + 2 + nl, 4, 0xffffffff, "truncated in entry 1 'model.layers.0.mlp.down_proj"},
        {e1 + 2 + nl, 4, 23, "entry 2"}, /* entry 2 then starts inside entry 1 */
        {e1 + 2 + nl, 4, 25, "entry 2"},
        {e1 + 6 + nl, 8, 0, "counts 0 input rows, not 1 to the file's 64 tokens"},
        {e1 + 6 + nl, 8, 65, "counts 65 input rows"},
        {v1 + 4 * 5, 4, nan, "has a NaN value at column 5"},
        {v1 + 4 * 23, 4, inf, "has an infinite value at column 23"},
        {v1, 4, neg, "has a negative value at column 0"},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        patched(b, len, cs[k].off, cs[k].w, cs[k].v, true, QLM_E_FORMAT, cs[k].want);
    /* -0.0 is a mean of squares that rounded to zero: accepted */
    memcpy(c, b, len);
    wr(c + v1, 4, negzero);
    rehash(c, len);
    struct qlm_imat *m;
    struct qlm_error e = {0};
    ck_assert_msg(qlm_imat_parse(c, len, "s.imat", &m, &e) == QLM_OK, "%s", e.msg);
    qlm_imat_free(m);
    /* a name twice: entry 2's k_proj renamed q_proj like entry 0 */
    size_t k_at = entry_off(b, 2) + 2 + strlen("model.layers.0.self_attn.");
    ck_assert_int_eq(b[k_at], 'k');
    patched(b, len, k_at, 1, 'q', true, QLM_E_FORMAT,
            "entry 'model.layers.0.self_attn.q_proj.weight' appears twice");
    free(c);
    free(b);
}
END_TEST

/* Random bytes with a valid header size and checksum: refused or accepted,
 * never a crash (ASan runs this suite too); accepted files re-serialize. */
START_TEST(random_bytes)
{
    size_t len;
    uint8_t *b = sample_bytes(&len);
    uint8_t *c = malloc(len);
    uint64_t st = 12345;
    for (int it = 0; it < 2000; it++) {
        memcpy(c, b, len);
        for (int k = 0; k < 1 + it % 4; k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            size_t off = (size_t)((st >> 33) % len);
            c[off] ^= (uint8_t)(1u << ((st >> 20) & 7));
        }
        wr(c + 16, 8, len);
        rehash(c, len);
        struct qlm_imat *m;
        struct qlm_error e = {0};
        if (qlm_imat_parse(c, len, "s.imat", &m, &e) == QLM_OK) {
            uint8_t *r;
            size_t rl;
            ck_assert_msg(qlm_imat_serialize(m, "s.imat", &r, &rl, &e) == QLM_OK, "%s", e.msg);
            ck_assert_uint_eq(rl, len);
            free(r);
            qlm_imat_free(m);
        } else {
            ck_assert(strncmp(e.msg, "s.imat: ", 8) == 0);
        }
    }
    free(c);
    free(b);
}
END_TEST

/* ---- the writer ------------------------------------------------------------ */

START_TEST(serialize_refuses_what_reader_would)
{
    struct qlm_error e = {0};
    uint8_t *b;
    size_t len;
    struct qlm_imat m = sample();
    vals[1][3] = NAN;
    ck_assert_int_eq(qlm_imat_serialize(&m, "o.imat", &b, &len, &e), QLM_E_INVALID);
    ck_assert_str_eq(e.msg, "o.imat: entry 1 'model.layers.0.mlp.down_proj.weight' has a NaN "
                            "value at column 3 (a mean of squares is finite and >= 0)");
    ck_assert_ptr_null(b);
    m = sample();
    ents[2].name = ents[0].name;
    ck_assert_int_eq(qlm_imat_serialize(&m, "o.imat", &b, &len, &e), QLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "appears twice"));
    m = sample();
    ents[1].name = "has space";
    ck_assert_int_eq(qlm_imat_serialize(&m, "o.imat", &b, &len, &e), QLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "entry 1: name is not printable"));
    m = sample();
    ents[0].count = 65;
    ck_assert_int_eq(qlm_imat_serialize(&m, "o.imat", &b, &len, &e), QLM_E_INVALID);
    m = sample();
    m.model.n_heads = 0;
    ck_assert_int_eq(qlm_imat_serialize(&m, "o.imat", &b, &len, &e), QLM_E_INVALID);
    ck_assert_str_eq(e.msg, "o.imat: model n_heads is 0");
    m = sample();
    m.n_entries = 0;
    ck_assert_int_eq(qlm_imat_serialize(&m, "o.imat", &b, &len, &e), QLM_E_INVALID);
}
END_TEST

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(write_is_atomic)
{
    const char *t = getenv("TMPDIR");
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/check_imat.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.imat", dir);
    struct qlm_imat m = sample();
    struct qlm_error e = {0};
    ck_assert_msg(qlm_imat_write(path, &m, false, &e) == QLM_OK, "%s", e.msg);
    struct qlm_imat *r;
    ck_assert_msg(qlm_imat_read(path, &r, &e) == QLM_OK, "%s", e.msg);
    ck_assert_uint_eq(r->n_entries, N_ENT);
    qlm_imat_free(r);
    /* an existing file is kept unless overwrite */
    vals[0][1] = 99.0f;
    ck_assert_int_eq(qlm_imat_write(path, &m, false, &e), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "a.imat: already exists (not overwriting)"));
    ck_assert_int_eq(qlm_imat_read(path, &r, &e), QLM_OK);
    ck_assert_float_eq(r->entries[0].values[1], 0.125f);
    qlm_imat_free(r);
    ck_assert_int_eq(qlm_imat_write(path, &m, true, &e), QLM_OK);
    ck_assert_int_eq(qlm_imat_read(path, &r, &e), QLM_OK);
    ck_assert_float_eq(r->entries[0].values[1], 99.0f);
    qlm_imat_free(r);
    /* a refused struct writes nothing, leaves no temporary file */
    vals[2][0] = -1.0f;
    ck_assert_int_eq(qlm_imat_write(path, &m, true, &e), QLM_E_INVALID);
    ck_assert_int_eq(count_files(dir), 1);
    ck_assert_int_eq(qlm_imat_read(path, &r, &e), QLM_OK);
    qlm_imat_free(r);
    /* reading: a directory, a missing file, an empty file */
    ck_assert_int_eq(qlm_imat_read(dir, &r, &e), QLM_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
    snprintf(path, sizeof path, "%s/none.imat", dir);
    ck_assert_int_eq(qlm_imat_read(path, &r, &e), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "none.imat: No such file"));
    FILE *f = fopen(path, "w");
    fclose(f);
    ck_assert_int_eq(qlm_imat_read(path, &r, &e), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "none.imat: truncated: 0 bytes"));
    unlink(path);
    snprintf(path, sizeof path, "%s/a.imat", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *imat_suite(void)
{
    Suite *s = suite_create("imat");
    TCase *c = tcase_create("imat");
    tcase_add_test(c, round_trip);
    tcase_add_test(c, refuses_truncation_everywhere);
    tcase_add_test(c, refuses_header_defects);
    tcase_add_test(c, refuses_entry_defects);
    tcase_add_test(c, random_bytes);
    tcase_add_test(c, serialize_refuses_what_reader_would);
    tcase_add_test(c, write_is_atomic);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(imat_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
