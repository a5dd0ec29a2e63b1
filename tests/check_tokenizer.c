/* Check suite for the tokenizer: convert/hf_tokenizer (tokenizer.json import)
 * and runtime/tokenizer (encode/decode).  The Qwen3 tokenizer goes through the
 * same path as a .qlm file: tokenizer.json -> qlm_tokdata -> QTOK blob ->
 * parse -> qlm_tok_new.  Golden ids come from tokenizers.js (see
 * tests/data/tokenizer/README.md). */
#include "config.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>
#include <zlib.h>

#include "hf_tokenizer.h"
#include "tokenizer.h"

static const char *srcdir(void)
{
    const char *s = getenv("top_srcdir");
    return s && *s ? s : ".";
}

static char *path_of(const char *rel)
{
    static char buf[4][4096];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 4096, "%s/%s", srcdir(), rel);
    return p;
}

/* Whole file, gunzipped when it is gzip (gzread passes plain files through). */
static char *slurp(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap + 1);
    int r;
    while (b && (r = gzread(g, b + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)r;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
        }
    }
    gzclose(g);
    if (b)
        b[n] = '\0';
    *len = n;
    return b;
}

/* tokenizer.json -> tokdata -> QTOK -> tokdata -> qlm_tok, as a .qlm does. */
static struct qlm_tok *load_via_qtok(const char *dir)
{
    struct qlm_tokdata a, b;
    struct qlm_error err = {0};
    struct qlm_tok *t = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    if (qlm_hf_tokenizer_load(dir, &a, &err) != QLM_OK) {
        fprintf(stderr, "load %s: %s\n", dir, err.msg);
        return NULL;
    }
    enum qlm_err rc = qlm_tokdata_serialize(&a, &blob, &blob_len, &err);
    qlm_tokdata_free(&a);
    if (rc == QLM_OK)
        rc = qlm_tokdata_parse(blob, blob_len, "test.qlm", &b, &err);
    free(blob);
    if (rc == QLM_OK)
        rc = qlm_tok_new(&t, &b, "test.qlm", &err);
    if (rc != QLM_OK)
        fprintf(stderr, "%s: %s\n", dir, err.msg);
    return t;
}

static struct qlm_tok *qwen;

static void qwen_setup(void)
{
    qwen = load_via_qtok(path_of("models/qwen3-tokenizer"));
}

static void qwen_teardown(void)
{
    qlm_tok_free(qwen);
    qwen = NULL;
}

/* Independent UTF-8 check for the streaming test (utf8proc's decoder). */
static bool valid_utf8(const char *s, size_t n)
{
    utf8proc_int32_t c;
    for (size_t i = 0; i < n;) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0)
            return false;
        i += (size_t)k;
    }
    return true;
}

static char *nfc(const char *s, size_t n, size_t *out_n)
{
    utf8proc_uint8_t *o = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &o,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    ck_assert_int_ge(m, 0);
    *out_n = (size_t)m;
    return (char *)o;
}

/* Concatenated token bytes. */
static char *detok_all(const struct qlm_tok *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t cap = 16, k = 0;
    char *s = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const uint8_t *b = qlm_tok_bytes(t, ids[i], &l);
        ck_assert_ptr_nonnull(b);
        while (k + l + 1 > cap)
            s = realloc(s, cap *= 2);
        memcpy(s + k, b, l);
        k += l;
    }
    s[k] = '\0';
    *len = k;
    return s;
}

static json_t *load_json(const char *rel)
{
    json_error_t je;
    json_t *j = json_load_file(path_of(rel), JSON_ALLOW_NUL, &je);
    ck_assert_msg(j != NULL, "%s: %s", rel, je.text);
    return j;
}

/* Every golden string encodes to exactly its ids. */
static void check_goldens(const struct qlm_tok *t, const char *rel, size_t min_count)
{
    json_t *g = load_json(rel);
    ck_assert(json_is_array(g));
    ck_assert_uint_ge(json_array_size(g), min_count);
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v) {
        json_t *tx = json_object_get(v, "text"), *want = json_object_get(v, "ids");
        ck_assert(json_is_string(tx) && json_is_array(want));
        int32_t *ids;
        size_t n;
        struct qlm_error err = {0};
        ck_assert_msg(qlm_tok_encode(t, json_string_value(tx), json_string_length(tx), true, &ids,
                                     &n, &err) == QLM_OK,
                      "%s[%zu]: %s", rel, i, err.msg);
        ck_assert_msg(n == json_array_size(want), "%s[%zu] %s: %zu ids, want %zu", rel, i,
                      json_string_value(tx), n, json_array_size(want));
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(ids[k] == json_integer_value(json_array_get(want, k)),
                          "%s[%zu] %s: id %zu is %d, want %lld", rel, i, json_string_value(tx),
                          k, ids[k], (long long)json_integer_value(json_array_get(want, k)));
        free(ids);
    }
    json_decref(g);
}

START_TEST(qwen_goldens)
{
    ck_assert_ptr_nonnull(qwen);
    check_goldens(qwen, "tests/data/tokenizer/qwen3_golden.json", 60);
}
END_TEST

/* decode(encode(s)) == NFC(s), by whole bytes and by the streaming decoder. */
START_TEST(qwen_roundtrip)
{
    ck_assert_ptr_nonnull(qwen);
    json_t *g = load_json("tests/data/tokenizer/qwen3_golden.json");
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v) {
        json_t *tx = json_object_get(v, "text");
        const char *s = json_string_value(tx);
        size_t len = json_string_length(tx), nl, dl;
        for (int special = 0; special < 2; special++) {
            int32_t *ids;
            size_t n;
            ck_assert_int_eq(qlm_tok_encode(qwen, s, len, special, &ids, &n, NULL), QLM_OK);
            char *want = nfc(s, len, &nl);
            char *got = detok_all(qwen, ids, n, &dl);
            ck_assert_msg(dl == nl && memcmp(got, want, nl) == 0, "round trip of [%zu] %s", i,
                          s);
            /* streaming: same bytes, every chunk whole characters */
            struct qlm_detok d = {0};
            char *stream = malloc(nl + 64);
            size_t sl = 0;
            for (size_t k = 0; k < n; k++) {
                char chunk[1024];
                size_t c = qlm_tok_detok_push(qwen, &d, ids[k], chunk, sizeof chunk);
                ck_assert_msg(valid_utf8(chunk, c), "[%zu] token %zu: chunk not UTF-8", i, k);
                ck_assert_uint_le(sl + c, nl);
                memcpy(stream + sl, chunk, c);
                sl += c;
            }
            ck_assert_uint_eq(d.n_pending, 0);
            sl += qlm_tok_detok_flush(&d, stream + sl, 64);
            ck_assert(sl == nl && memcmp(stream, want, nl) == 0);
            free(stream);
            free(want);
            free(got);
            free(ids);
        }
    }
    json_decref(g);
}
END_TEST

/* NFC works on stretches around non-ASCII bytes: random mixes of ASCII,
 * combining marks (that compose and reorder), jamo and singletons must still
 * decode to the NFC of the whole string. */
START_TEST(qwen_nfc_random)
{
    ck_assert_ptr_nonnull(qwen);
    static const char *parts[] = {"a", "e", "q", " ", "\n", "x1", "\xcc\x81", "\xcc\xa3",
                                  "\xcc\x87", "\xe1\x84\x80", "\xe1\x85\xa1",
                                  "\xe1\x86\xa8", "\xea\xb0\x80", "\xc3\x85",
                                  "\xe2\x84\xab", "\xe4\xb8\xad", "\xef\xac\x81"};
    uint64_t rng = 42;
    for (int iter = 0; iter < 300; iter++) {
        char s[256];
        size_t len = 0;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = 1 + (int)((rng >> 33) % 30);
        for (int j = 0; j < k; j++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *p = parts[(rng >> 33) % (sizeof parts / sizeof parts[0])];
            memcpy(s + len, p, strlen(p));
            len += strlen(p);
        }
        int32_t *ids;
        size_t n, nl, dl;
        ck_assert_int_eq(qlm_tok_encode(qwen, s, len, false, &ids, &n, NULL), QLM_OK);
        char *want = nfc(s, len, &nl), *got = detok_all(qwen, ids, n, &dl);
        ck_assert_msg(dl == nl && memcmp(got, want, nl) == 0, "NFC of random string %d", iter);
        free(want);
        free(got);
        free(ids);
    }
}
END_TEST

START_TEST(qwen_facts)
{
    ck_assert_ptr_nonnull(qwen);
    ck_assert_uint_eq(qlm_tok_count(qwen), 151669);
    ck_assert_int_eq(qlm_tok_find(qwen, "<|im_start|>"), 151644);
    ck_assert_int_eq(qlm_tok_find(qwen, "<|im_end|>"), 151645);
    ck_assert_int_eq(qlm_tok_find(qwen, "</think>"), 151668);
    ck_assert_int_eq(qlm_tok_find(qwen, "\n"), 198);
    ck_assert_int_eq(qlm_tok_find(qwen, " "), 220);
    ck_assert_int_eq(qlm_tok_find(qwen, "no such token here at all"), -1);
    ck_assert_int_eq(qlm_tok_find(qwen, ""), -1);
    ck_assert(qlm_tok_is_eos(qwen, 151645));
    ck_assert(qlm_tok_is_eos(qwen, 151643));
    ck_assert(!qlm_tok_is_eos(qwen, 151644));
    ck_assert_int_eq(qlm_tok_eos(qwen), 151645); /* the config's eos_token first */
    ck_assert_int_eq(qlm_tok_bos(qwen), -1);
    ck_assert(!qlm_tok_add_bos(qwen));
    ck_assert_int_eq(qlm_tok_pad(qwen), 151643);
    ck_assert(qlm_tok_is_special(qwen, 151667));
    ck_assert(!qlm_tok_is_special(qwen, 9707));
    ck_assert_uint_eq(strlen(qlm_tok_chat_template(qwen)), 4116);
    ck_assert_ptr_nonnull(strstr(qlm_tok_chat_template(qwen), "enable_thinking"));
    size_t l;
    ck_assert_ptr_null(qlm_tok_bytes(qwen, 151669, &l));
    ck_assert_ptr_null(qlm_tok_bytes(qwen, -1, &l));
    const uint8_t *b = qlm_tok_bytes(qwen, 9707, &l); /* "Hello" */
    ck_assert(l == 5 && memcmp(b, "Hello", 5) == 0);
}
END_TEST

/* parse_special false: control tokens are text, non-special added tokens still match. */
/* qlm_tok_find's bytes -> id table is built on the first call: several
 * threads race to build it on a fresh tokenizer, then every normal token
 * (the Qwen3 vocabulary holds no two tokens with the same bytes) must map
 * back to its own id from every thread. */
struct find_job {
    const struct qlm_tok *t;
    uint32_t start, bad;
};

static void *find_all(void *arg)
{
    struct find_job *j = arg;
    uint32_t n = qlm_tok_count(j->t);
    char buf[512];
    for (uint32_t k = 0; k < n; k++) {
        int32_t id = (int32_t)((j->start + k) % n);
        size_t len;
        const uint8_t *b = qlm_tok_bytes(j->t, id, &len);
        if (qlm_tok_is_special(j->t, id) || len >= sizeof buf || memchr(b, 0, len))
            continue;
        memcpy(buf, b, len);
        buf[len] = 0;
        j->bad += qlm_tok_find(j->t, buf) != id;
    }
    return NULL;
}

START_TEST(qwen_find_threads)
{
    ck_assert_ptr_nonnull(qwen);
    struct qlm_error err = {0};
    uint8_t *blob;
    size_t len;
    struct qlm_tokdata d;
    struct qlm_tok *t = NULL;
    ck_assert_int_eq(qlm_tokdata_serialize(qlm_tok_data(qwen), &blob, &len, &err), QLM_OK);
    ck_assert_int_eq(qlm_tokdata_parse(blob, len, "t.qlm", &d, &err), QLM_OK);
    free(blob);
    ck_assert_int_eq(qlm_tok_new(&t, &d, "t.qlm", &err), QLM_OK);
    struct find_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct find_job){t, (uint32_t)i * 37911u, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, find_all, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_uint_eq(jobs[i].bad, 0);
    }
    ck_assert_int_eq(qlm_tok_find(t, "\n"), 198);
    ck_assert_int_eq(qlm_tok_find(t, "no such token here at all"), -1);
    qlm_tok_free(t);
}
END_TEST

/* qlm_tokdata_parse_owned (what qlm_model_open uses) gives the same data as
 * the copying parse, whatever the alignment of the merges in the blob (the
 * chat template's length shifts them 0..3 bytes); a damaged blob is refused
 * and freed (ASan would see a leak or a double free). */
START_TEST(qwen_parse_owned)
{
    ck_assert_ptr_nonnull(qwen);
    struct qlm_tokdata src = *qlm_tok_data(qwen);
    struct qlm_error err = {0};
    for (int shift = 0; shift < 4; shift++) {
        char ct[8] = "abc";
        ct[shift] = 0;
        src.chat_template = ct;
        uint8_t *blob, *own;
        size_t len;
        struct qlm_tokdata a, b;
        ck_assert_int_eq(qlm_tokdata_serialize(&src, &blob, &len, &err), QLM_OK);
        ck_assert_int_eq(qlm_tokdata_parse(blob, len, "t.qlm", &a, &err), QLM_OK);
        own = malloc(len);
        ck_assert_ptr_nonnull(own);
        memcpy(own, blob, len);
        ck_assert_int_eq(qlm_tokdata_parse_owned(own, len, "t.qlm", &b, &err), QLM_OK);
        ck_assert(a.n_tokens == b.n_tokens && a.n_merges == b.n_merges && a.n_eos == b.n_eos &&
                  a.flags == b.flags && a.bos_id == b.bos_id && a.pad_id == b.pad_id);
        ck_assert_str_eq(a.regex, b.regex);
        ck_assert_str_eq(b.chat_template, ct);
        ck_assert(memcmp(a.eos, b.eos, a.n_eos * sizeof *a.eos) == 0);
        ck_assert(memcmp(a.merges, b.merges, a.n_merges * sizeof *a.merges) == 0);
        ck_assert_uint_eq((uintptr_t)b.merges % _Alignof(struct qlm_merge), 0);
        for (uint32_t i = 0; i < a.n_tokens; i++)
            ck_assert(a.tokens[i].len == b.tokens[i].len &&
                      a.tokens[i].kind == b.tokens[i].kind &&
                      memcmp(a.tokens[i].bytes, b.tokens[i].bytes, a.tokens[i].len) == 0);
        struct qlm_tok *t = NULL;
        ck_assert_int_eq(qlm_tok_new(&t, &b, "t.qlm", &err), QLM_OK);
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(qlm_tok_encode(t, "Hello, world", 12, true, &ids, &n, &err), QLM_OK);
        ck_assert_uint_eq(n, 3);
        ck_assert(ids[0] == 9707 && ids[1] == 11 && ids[2] == 1879);
        free(ids);
        qlm_tok_free(t);
        qlm_tokdata_free(&a);
        /* damaged: cut short, a trailing byte, a merge id out of range */
        size_t cuts[] = {3, 40, len / 2, len - 1, len + 1};
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            own = calloc(1, cuts[k]);
            ck_assert_ptr_nonnull(own);
            memcpy(own, blob, cuts[k] < len ? cuts[k] : len);
            ck_assert_int_eq(qlm_tokdata_parse_owned(own, cuts[k], "t.qlm", &b, &err),
                             QLM_E_FORMAT);
            ck_assert_ptr_null(b.storage_);
        }
        own = malloc(len);
        ck_assert_ptr_nonnull(own);
        memcpy(own, blob, len);
        memset(own + len - 4, 0xff, 4);
        ck_assert_int_eq(qlm_tokdata_parse_owned(own, len, "t.qlm", &b, &err), QLM_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(err.msg, "merge"));
        free(blob);
    }
}
END_TEST

START_TEST(qwen_parse_special)
{
    ck_assert_ptr_nonnull(qwen);
    const char *s = "<|im_start|>user\n<think>x</think><|im_end|>";
    int32_t *a, *b;
    size_t na, nb;
    ck_assert_int_eq(qlm_tok_encode(qwen, s, strlen(s), true, &a, &na, NULL), QLM_OK);
    ck_assert_int_eq(qlm_tok_encode(qwen, s, strlen(s), false, &b, &nb, NULL), QLM_OK);
    ck_assert_int_eq(a[0], 151644);
    ck_assert_int_eq(a[na - 1], 151645);
    bool think = false;
    for (size_t i = 0; i < nb; i++) {
        ck_assert_msg(b[i] != 151644 && b[i] != 151645, "control token injected");
        think |= b[i] == 151667;
    }
    ck_assert(think);
    ck_assert_uint_gt(nb, na);
    free(a);
    free(b);
}
END_TEST

START_TEST(qwen_full_texts)
{
    ck_assert_ptr_nonnull(qwen);
    json_t *c = load_json("tests/data/tokenizer/qwen3_text_counts.json");
    ck_assert_uint_eq(json_array_size(c), 2);
    size_t i;
    json_t *v;
    json_array_foreach(c, i, v) {
        char rel[256];
        const char *file = json_string_value(json_object_get(v, "file"));
        ck_assert_ptr_nonnull(file);
        snprintf(rel, sizeof rel, "tests/data/text/%s.gz", file);
        size_t len;
        char *text = slurp(path_of(rel), &len);
        ck_assert_ptr_nonnull(text);
        ck_assert_uint_eq(len, json_integer_value(json_object_get(v, "bytes")));
        int32_t *ids;
        size_t n;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_assert_int_eq(qlm_tok_encode(qwen, text, len, true, &ids, &n, NULL), QLM_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("encode %s: %zu bytes -> %zu tokens in %.3f s (%.0f tokens/s)\n", file, len, n,
               sec, (double)n / (sec > 0 ? sec : 1e-9));
        ck_assert_msg(n == (size_t)json_integer_value(json_object_get(v, "count")),
                      "%s: %zu tokens", file, n);
        size_t nl, dl;
        char *want = nfc(text, len, &nl), *got = detok_all(qwen, ids, n, &dl);
        ck_assert(dl == nl && memcmp(got, want, nl) == 0);
        free(want);
        free(got);
        free(ids);
        free(text);
    }
    json_decref(c);
}
END_TEST

/* unit repeated to at most bytes bytes (whole units), then tail */
static char *repeat(const char *unit, size_t bytes, const char *tail, size_t *len)
{
    size_t u = strlen(unit), k = bytes / u, tl = strlen(tail);
    char *s = malloc(k * u + tl + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < k; i++)
        memcpy(s + i * u, unit, u);
    memcpy(s + k * u, tail, tl + 1);
    *len = k * u + tl;
    return s;
}

static int32_t *encode_ok(const char *text, size_t len, size_t *n)
{
    int32_t *ids;
    struct qlm_error err = {0};
    ck_assert_msg(qlm_tok_encode(qwen, text, len, false, &ids, n, &err) == QLM_OK, "%s",
                  err.msg);
    return ids;
}

/* Long runs of one kind of character tokenize, and decode back to the text:
 * 10 MiB of spaces exceeded PCRE2's match limit; the others are 1 MiB, four
 * windows. */
static const struct { const char *unit; size_t bytes; } long_runs[] = {
    {" ", 10u << 20}, {"\n", 1u << 20}, {"a", 1u << 20}, {"7", 1u << 20},
    {"\xe4\xb8\xad", 1u << 20}, {"\t ", 1u << 20}, {" \n", 1u << 20}, {"!", 1u << 20},
    {"\r\n", 1u << 20}, {"ab 12 \xe4\xb8\xad\xe6\x96\x87!?\n\n  ", 1u << 20},
};

START_TEST(qwen_long_runs)
{
    ck_assert_ptr_nonnull(qwen);
    size_t len, n, dl;
    char *text = repeat(long_runs[_i].unit, long_runs[_i].bytes, "", &len);
    int32_t *ids = encode_ok(text, len, &n);
    char *back = detok_all(qwen, ids, n, &dl);
    ck_assert_msg(dl == len && memcmp(back, text, len) == 0, "run %d does not decode back", _i);
    free(back);
    free(ids);
    free(text);
}
END_TEST

/* The window changes nothing for pieces shorter than it: a text whose first
 * pieces end just before the window's end starts with the ids it has alone
 * (matched with no window at all).  A longer piece is cut at the window's
 * end, at a character boundary: its ids are those of the two parts. */
START_TEST(qwen_split_window)
{
    ck_assert_ptr_nonnull(qwen);
    const size_t W = QLM_TOK_SPLIT_WINDOW;
    static const char *const units[] = {" ", "\n", "a", "7", "\xe4\xb8\xad", "!", " \n"};
    size_t fl;
    char *filler = repeat("Hello world. ", W, "", &fl);
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t hl, na, nb;
        char *head = repeat(units[u], W - 64, "x.\n", &hl); /* ".\n" ends a piece */
        int32_t *alone = encode_ok(head, hl, &na);
        char *both = malloc(hl + fl);
        memcpy(both, head, hl);
        memcpy(both + hl, filler, fl);
        int32_t *ids = encode_ok(both, hl + fl, &nb);
        ck_assert_msg(nb > na && memcmp(ids, alone, na * sizeof *ids) == 0,
                      "unit %zu: the window changed the first pieces", u);
        free(ids);
        free(both);
        free(alone);
        free(head);
    }
    free(filler);
    static const char *const long_units[] = {" ", "a", "\xe4\xb8\xad"};
    for (size_t u = 0; u < sizeof long_units / sizeof long_units[0]; u++) {
        size_t len, n1, n2, nw, ul = strlen(long_units[u]);
        char *text = repeat(long_units[u], W + 5000, "", &len);
        size_t cut = W / ul * ul; /* the last boundary in the window */
        int32_t *ids = encode_ok(text, len, &nw);
        int32_t *a = encode_ok(text, cut, &n1), *b = encode_ok(text + cut, len - cut, &n2);
        ck_assert_msg(nw == n1 + n2 && memcmp(ids, a, n1 * sizeof *ids) == 0 &&
                      memcmp(ids + n1, b, n2 * sizeof *ids) == 0,
                      "unit %zu: not cut at byte %zu", u, cut);
        free(a);
        free(b);
        free(ids);
        free(text);
    }
}
END_TEST

START_TEST(qwen_invalid_utf8)
{
    ck_assert_ptr_nonnull(qwen);
    static const char *bad[] = {"\xff", "ok\x80", "\xc0\xaf", "\xed\xa0\x80",
                                "ab\xe4\xbd", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",
                                "<|im_start|>\xfe"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_tok_encode(qwen, bad[i], strlen(bad[i]), true, &ids, &n, &err),
                         QLM_E_INVALID);
        ck_assert_ptr_nonnull(strstr(err.msg, "UTF-8"));
        ck_assert_ptr_null(ids);
        ck_assert_uint_eq(n, 0);
    }
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(qlm_tok_encode(qwen, "", 0, true, &ids, &n, NULL), QLM_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(ids);
    free(ids);
}
END_TEST

/* The streaming decoder on byte tokens that split characters, and on garbage. */
START_TEST(qwen_detok_bytes)
{
    ck_assert_ptr_nonnull(qwen);
    char one[2] = {0, 0};
    int32_t byte[256];
    for (int c = 1; c < 256; c++) {
        one[0] = (char)c;
        byte[c] = qlm_tok_find(qwen, one);
        ck_assert_int_ge(byte[c], 0);
    }
    /* "中" = E4 B8 AD fed byte by byte: nothing, nothing, then the char */
    struct qlm_detok d = {0};
    char out[64];
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xE4], out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xB8], out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xAD], out, sizeof out), 3);
    ck_assert(memcmp(out, "\xe4\xb8\xad", 3) == 0);
    /* a stray continuation byte is U+FFFD at once */
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0x80], out, sizeof out), 3);
    ck_assert(memcmp(out, "\xef\xbf\xbd", 3) == 0);
    /* a lead byte followed by ASCII: U+FFFD then the ASCII */
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xE4], out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte['a'], out, sizeof out), 4);
    ck_assert(memcmp(out, "\xef\xbf\xbd" "a", 4) == 0);
    /* 0xFF never starts a character; 0xED 0xA0 would be a surrogate */
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xFF], out, sizeof out), 3);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xED], out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xA0], out, sizeof out), 6);
    ck_assert(valid_utf8(out, 6));
    /* an incomplete tail at the end of the stream */
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0xF0], out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, byte[0x9F], out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_flush(&d, out, sizeof out), 3);
    ck_assert(memcmp(out, "\xef\xbf\xbd", 3) == 0);
    ck_assert_uint_eq(qlm_tok_detok_flush(&d, out, sizeof out), 0);
    /* a small cap is never overrun */
    char guard[8];
    memset(guard, 'G', sizeof guard);
    ck_assert_uint_le(qlm_tok_detok_push(qwen, &d, 9707, guard, 2), 2);
    ck_assert(memcmp(guard + 2, "GGGGGG", 6) == 0);
    /* out-of-range ids emit nothing */
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, 151669, out, sizeof out), 0);
    ck_assert_uint_eq(qlm_tok_detok_push(qwen, &d, -5, out, sizeof out), 0);
}
END_TEST

/* A multi-byte text token by token: every chunk is whole characters. */
START_TEST(qwen_detok_stream)
{
    ck_assert_ptr_nonnull(qwen);
    const char *s = "日本語のテキスト 👨‍👩‍👧‍👦 مرحبا नमस्ते 🎉🎉 Ελληνικά 안녕하세요";
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(qlm_tok_encode(qwen, s, strlen(s), true, &ids, &n, NULL), QLM_OK);
    size_t partial = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const uint8_t *b = qlm_tok_bytes(qwen, ids[i], &l);
        partial += !valid_utf8((const char *)b, l);
    }
    ck_assert_uint_gt(partial, 0); /* the test means something: some tokens split chars */
    struct qlm_detok d = {0};
    char all[512];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char chunk[256];
        size_t c = qlm_tok_detok_push(qwen, &d, ids[i], chunk, sizeof chunk);
        ck_assert(valid_utf8(chunk, c));
        memcpy(all + k, chunk, c);
        k += c;
    }
    k += qlm_tok_detok_flush(&d, all + k, sizeof all - k);
    ck_assert(k == strlen(s) && memcmp(all, s, k) == 0);
    free(ids);
}
END_TEST

/* ---- the tiny model's tokenizer ------------------------------------------ */

START_TEST(tiny_goldens)
{
    size_t len;
    char *probe = slurp(path_of("models/tiny/tokenizer.json"), &len);
    if (!probe)
        return; /* the tiny model is not there (yet) */
    free(probe);
    struct qlm_tok *t = load_via_qtok(path_of("models/tiny"));
    ck_assert_ptr_nonnull(t);
    check_goldens(t, "models/tiny/golden_tokens.json", 10);
    qlm_tok_free(t);
}
END_TEST

/* ---- hostile tokenizer.json -------------------------------------------- */

/* GPT-2 byte -> char, reimplemented here from its definition. */
static void byte_char(int b, char out[3])
{
    int cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        int n = 0;
        for (int x = 0; x < b; x++)
            n += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* A small valid tokenizer: 256 bytes, merges "a b" -> 256, "ab c" -> 257,
 * " " "a" -> 258, added <|end|> = 259 (special). */
static json_t *mini(void)
{
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char c[3];
        byte_char(b, c);
        json_object_set_new(vocab, c, json_integer(b));
    }
    json_object_set_new(vocab, "ab", json_integer(256));
    json_object_set_new(vocab, "abc", json_integer(257));
    json_object_set_new(vocab, "\xc4\xa0" "a", json_integer(258)); /* "Ġa" */
    json_t *root = json_pack(
        "{s:[{s:i,s:s,s:b,s:b,s:b,s:b,s:b}],s:{s:s},"
        "s:{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b}]},s:{s:s},"
        "s:{s:s,s:o,s:[[s,s],s,[s,s]],s:b}}",
        "added_tokens", "id", 259, "content", "<|end|>", "special", 1, "lstrip", 0, "rstrip", 0,
        "single_word", 0, "normalized", 0, "normalizer", "type", "NFC", "pre_tokenizer", "type",
        "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
        " ?\\p{L}+|\\p{N}|\\s+|[^\\s\\p{L}\\p{N}]+", "behavior", "Isolated", "invert", 0, "type",
        "ByteLevel", "add_prefix_space", 0, "use_regex", 0, "decoder", "type", "ByteLevel",
        "model", "type", "BPE", "vocab", vocab, "merges", "a", "b", "ab c", "\xc4\xa0", "a",
        "byte_fallback", 0);
    ck_assert_ptr_nonnull(root);
    return root;
}

static enum qlm_err load_mini(json_t *root, const char *cfg, struct qlm_tokdata *td,
                              struct qlm_error *err)
{
    char *s = json_dumps(root, JSON_COMPACT);
    ck_assert_ptr_nonnull(s);
    enum qlm_err rc = qlm_hf_tokenizer_from_json(s, strlen(s), cfg, cfg ? strlen(cfg) : 0,
                                                 "bad.json", td, err);
    free(s);
    json_decref(root);
    return rc;
}

START_TEST(mini_ok)
{
    struct qlm_tokdata td;
    struct qlm_error err = {0};
    ck_assert_msg(load_mini(mini(), "{\"eos_token\": \"<|end|>\", \"chat_template\": \"T\"}", &td,
                            &err) == QLM_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(td.n_tokens, 260);
    ck_assert_uint_eq(td.n_merges, 3);
    ck_assert_uint_eq(td.flags, QLM_TOKF_NFC | QLM_TOKF_BYTE_LEVEL);
    ck_assert_uint_eq(td.n_eos, 1);
    ck_assert_uint_eq(td.eos[0], 259);
    ck_assert_str_eq(td.chat_template, "T");
    ck_assert_uint_eq(td.tokens[32].len, 1);
    ck_assert_uint_eq(td.tokens[32].bytes[0], ' ');
    ck_assert_uint_eq(td.tokens[258].len, 2);
    ck_assert(memcmp(td.tokens[258].bytes, " a", 2) == 0);
    ck_assert_uint_eq(td.tokens[259].kind, QLM_TOK_SPECIAL);
    ck_assert_uint_eq(td.merges[1].left, 256);
    ck_assert_uint_eq(td.merges[1].right, 'c');
    ck_assert_uint_eq(td.merges[1].result, 257);
    struct qlm_tok *t;
    ck_assert_int_eq(qlm_tok_new(&t, &td, "mini", &err), QLM_OK);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(qlm_tok_encode(t, "abc ab<|end|>", 13, true, &ids, &n, &err), QLM_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], 257);
    /* " ab": "a b" (rank 0) wins over " a" (rank 2), and " " + "ab" has no merge */
    ck_assert_int_eq(ids[1], ' ');
    ck_assert_int_eq(ids[2], 256);
    ck_assert_int_eq(ids[3], 259);
    free(ids);
    qlm_tok_free(t);
}
END_TEST

struct bad_case {
    const char *what;
    const char *path;   /* "a.b.c": where to put value (NULL: replace the whole text) */
    const char *value;  /* JSON; NULL deletes the key */
    const char *expect; /* substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"not JSON", NULL, "{\"model\": ", "line"},
    {"root array", NULL, "[1, 2]", "not a JSON object"},
    {"no model", "model", NULL, "model"},
    {"model type", "model.type", "\"WordPiece\"", "WordPiece"},
    {"byte fallback", "model.byte_fallback", "true", "byte_fallback"},
    {"ignore merges", "model.ignore_merges", "true", "ignore_merges"},
    {"vocab array", "model.vocab", "[]", "vocab"},
    {"vocab id string", "model.vocab.ab", "\"256\"", "\"ab\""},
    {"vocab id negative", "model.vocab.ab", "-1", "\"ab\""},
    {"vocab id huge", "model.vocab.ab", "99999999999", "\"ab\""},
    {"vocab id twice", "model.vocab.abc", "256", "twice"},
    {"hole in ids", "model.vocab.abc", "300", "dense"},
    {"not byte-level", "model.vocab.\xe2\x82\xac", "260", "byte-level alphabet"},
    {"merges not array", "model.merges", "{}", "merges"},
    {"merge malformed", "model.merges", "[[\"a\", \"b\"], 7]", "merge 1"},
    {"merge 3 parts", "model.merges", "[\"a b c\"]", "merge 0"},
    {"merge part missing", "model.merges", "[[\"a\", \"b\"], [\"q\", \"zz\"]]", "merge 1"},
    {"merge result missing", "model.merges", "[[\"b\", \"a\"]]", "merge 0"},
    {"normalizer NFD", "normalizer", "{\"type\": \"NFD\"}", "NFD"},
    {"normalizer seq", "normalizer",
     "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Lowercase\"}]}",
     "Lowercase"},
    {"pre_tokenizer", "pre_tokenizer", "{\"type\": \"Whitespace\"}", "pre_tokenizer"},
    {"pre_tokenizer none", "pre_tokenizer", NULL, "pre_tokenizer"},
    {"split behavior", "pre_tokenizer.pretokenizers",
     "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"x\"}, \"behavior\": \"Removed\"},"
     " {\"type\": \"ByteLevel\", \"use_regex\": false}]",
     "Removed"},
    {"byte level regex", "pre_tokenizer.pretokenizers",
     "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"x\"}, \"behavior\": \"Isolated\"},"
     " {\"type\": \"ByteLevel\"}]",
     "use_regex"},
    {"prefix space", "pre_tokenizer",
     "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", "add_prefix_space"},
    {"decoder", "decoder", "{\"type\": \"WordPiece\"}", "decoder"},
    {"added not array", "added_tokens", "{}", "added_tokens"},
    {"added no id", "added_tokens", "[{\"content\": \"x\"}]", "added_tokens[0]"},
    {"added empty", "added_tokens", "[{\"id\": 259, \"content\": \"\"}]", "content"},
    {"added twice", "added_tokens",
     "[{\"id\": 259, \"content\": \"x\"}, {\"id\": 259, \"content\": \"y\"}]", "twice"},
    {"added lstrip", "added_tokens", "[{\"id\": 259, \"content\": \"x\", \"lstrip\": true}]",
     "lstrip"},
    {"split regex invalid", "pre_tokenizer.pretokenizers",
     "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(x\"}, \"behavior\": \"Isolated\"},"
     " {\"type\": \"ByteLevel\", \"use_regex\": false}]",
     "tokenizer regex: missing closing parenthesis"},
    {"post_processor bert", "post_processor", "{\"type\": \"BertProcessing\"}",
     "post_processor BertProcessing is not supported"},
    {"post_processor eos", "post_processor",
     "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\"}},"
     " {\"SpecialToken\": {\"id\": \"<|end|>\"}}], \"special_tokens\": {\"<|end|>\":"
     " {\"id\": \"<|end|>\", \"ids\": [259], \"tokens\": [\"<|end|>\"]}}}",
     "adds tokens other than one BOS"},
    {"post_processor bos past vocab", "post_processor",
     "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
     " {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\","
     " \"ids\": [9000], \"tokens\": [\"<s>\"]}}}",
     "past the vocabulary"},
};


/* Set or delete a dotted path in a JSON object tree. */
static void json_put(json_t *root, const char *path, const char *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *o = root;
    char *key = buf, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = '\0';
        o = json_object_get(o, key);
        ck_assert_ptr_nonnull(o);
        key = dot + 1;
    }
    if (!value) {
        json_object_del(o, key);
        return;
    }
    json_error_t je;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &je);
    ck_assert_msg(v != NULL, "%s", je.text);
    json_object_set_new(o, key, v);
}

/* A TemplateProcessing that prepends one BOS (Llama 3's, inside a Sequence
 * after ByteLevel) is executed as add_bos_token. */
START_TEST(post_processor_bos)
{
    json_t *root = mini();
    json_put(root, "post_processor",
             "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"},"
             " {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\":"
             " \"<|end|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
             " \"special_tokens\": {\"<|end|>\": {\"id\": \"<|end|>\", \"ids\": [259],"
             " \"tokens\": [\"<|end|>\"]}}}]}");
    struct qlm_tokdata td;
    struct qlm_error err = {0};
    ck_assert_msg(load_mini(root, NULL, &td, &err) == QLM_OK, "%s", err.msg);
    ck_assert(td.flags & QLM_TOKF_ADD_BOS);
    ck_assert_int_eq(td.bos_id, 259);
    struct qlm_tok *t;
    ck_assert_int_eq(qlm_tok_new(&t, &td, "mini", &err), QLM_OK);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(qlm_tok_encode(t, "abc", 3, true, &ids, &n, &err), QLM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 259);
    ck_assert_int_eq(ids[1], 257);
    free(ids);
    qlm_tok_free(t);
}
END_TEST

START_TEST(mini_bad)
{
    const struct bad_case *c = &bad_cases[_i];
    struct qlm_tokdata td;
    struct qlm_error err = {0};
    enum qlm_err rc;
    if (!c->path) {
        rc = qlm_hf_tokenizer_from_json(c->value, strlen(c->value), NULL, 0, "bad.json", &td,
                                        &err);
    } else {
        json_t *root = mini();
        json_put(root, c->path, c->value);
        rc = load_mini(root, NULL, &td, &err);
    }
    ck_assert_msg(rc == QLM_E_FORMAT, "%s: rc %d (%s)", c->what, rc, err.msg);
    ck_assert_msg(strncmp(err.msg, "bad.json: ", 10) == 0, "%s: %s", c->what, err.msg);
    ck_assert_msg(strstr(err.msg, c->expect) != NULL, "%s: '%s' lacks '%s'", c->what, err.msg,
                  c->expect);
}
END_TEST

START_TEST(mini_bad_config)
{
    static const char *cfgs[][2] = {
        {"{", "line"},
        {"[]", "not a JSON object"},
        {"{\"eos_token\": \"<|nope|>\"}", "eos_token"},
        {"{\"eos_token\": 5}", "eos_token"},
        {"{\"add_bos_token\": true}", "bos_token"},
        {"{\"add_bos_token\": \"yes\"}", "add_bos_token"},
        {"{\"chat_template\": 7}", "chat_template"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        struct qlm_tokdata td;
        struct qlm_error err = {0};
        ck_assert_int_eq(load_mini(mini(), cfgs[i][0], &td, &err), QLM_E_FORMAT);
        ck_assert_msg(strncmp(err.msg, "tokenizer_config.json: ", 23) == 0, "%s", err.msg);
        ck_assert_msg(strstr(err.msg, cfgs[i][1]) != NULL, "'%s' lacks '%s'", err.msg,
                      cfgs[i][1]);
    }
    /* an AddedToken object and a template list are fine */
    struct qlm_tokdata td;
    struct qlm_error err = {0};
    ck_assert_int_eq(load_mini(mini(),
                               "{\"bos_token\": {\"content\": \"<|end|>\"}, \"add_bos_token\": true,"
                               " \"chat_template\": [{\"name\": \"tool\", \"template\": \"A\"},"
                               " {\"name\": \"default\", \"template\": \"B\"}]}",
                               &td, &err),
                     QLM_OK);
    ck_assert_int_eq(td.bos_id, 259);
    ck_assert(td.flags & QLM_TOKF_ADD_BOS);
    ck_assert_str_eq(td.chat_template, "B");
    qlm_tokdata_free(&td);
}
END_TEST

/* The runtime refuses inconsistent data, whatever a .qlm file says. */
START_TEST(mini_tok_new_refuses)
{
    for (int k = 0; k < 3; k++) {
        struct qlm_tokdata td;
        struct qlm_error err = {0};
        ck_assert_int_eq(load_mini(mini(), NULL, &td, &err), QLM_OK);
        const char *expect;
        if (k == 0) {
            td.merges[0].result = 257; /* "abc" is not "a" + "b" */
            expect = "merge 0";
        } else if (k == 1) {
            td.regex[0] = '(';         /* unbalanced */
            td.regex[1] = '\0';
            expect = "regex";
        } else {
            td.tokens['x'].len = 0;    /* byte 'x' has no token any more */
            expect = "byte 0x78";
        }
        struct qlm_tok *t = (struct qlm_tok *)1;
        ck_assert_int_eq(qlm_tok_new(&t, &td, "m.qlm", &err), QLM_E_FORMAT);
        ck_assert_ptr_null(t);
        ck_assert_msg(strncmp(err.msg, "m.qlm: ", 7) == 0 && strstr(err.msg, expect), "%s",
                      err.msg);
    }
}
END_TEST

START_TEST(load_from_disk_errors)
{
    struct qlm_tokdata td;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_hf_tokenizer_load("/nonexistent/qlm-dir", &td, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/qlm-dir"));
    /* a corrupt .gz */
    char dir[] = "/tmp/qlm-tok-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char gzp[64];
    snprintf(gzp, sizeof gzp, "%s/tokenizer.json.gz", dir);
    FILE *f = fopen(gzp, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("\x1f\x8b\x08\x00garbage-garbage-garbage", 1, 27, f);
    fclose(f);
    ck_assert_int_ne(qlm_hf_tokenizer_load(dir, &td, &err), QLM_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "tokenizer.json.gz"));
    remove(gzp);
    rmdir(dir);
}
END_TEST

static Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *q = tcase_create("qwen3");
    tcase_add_unchecked_fixture(q, qwen_setup, qwen_teardown);
    tcase_set_timeout(q, 120);
    tcase_add_test(q, qwen_goldens);
    tcase_add_test(q, qwen_roundtrip);
    tcase_add_test(q, qwen_nfc_random);
    tcase_add_test(q, qwen_facts);
    tcase_add_test(q, qwen_find_threads);
    tcase_add_test(q, qwen_parse_owned);
    tcase_add_test(q, qwen_parse_special);
    tcase_add_test(q, qwen_full_texts);
    tcase_add_test(q, qwen_invalid_utf8);
    tcase_add_loop_test(q, qwen_long_runs, 0, (int)(sizeof long_runs / sizeof long_runs[0]));
    tcase_add_test(q, qwen_split_window);
    tcase_add_test(q, qwen_detok_bytes);
    tcase_add_test(q, qwen_detok_stream);
    suite_add_tcase(s, q);
    TCase *t = tcase_create("tiny");
    tcase_add_test(t, tiny_goldens);
    suite_add_tcase(s, t);
    TCase *h = tcase_create("hostile");
    tcase_add_test(h, mini_ok);
    tcase_add_test(h, post_processor_bos);
    tcase_add_loop_test(h, mini_bad, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(h, mini_bad_config);
    tcase_add_test(h, mini_tok_new_refuses);
    tcase_add_test(h, load_from_disk_errors);
    suite_add_tcase(s, h);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(tokenizer_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
