/*
 * gen_synth.c — qlm-gen-synth: writes a synthetic Hugging Face checkpoint with
 * exactly Qwen3-0.6B's config, tensor names, shapes and BF16 dtype (or, with
 * --tiny, a 2-layer model of the same layout), so that conversion, memory and
 * speed can be measured at real size without the real weights.
 *
 * Weights: N(0, 0.02) from a seeded xoshiro256** (Irwin-Hall sum of four
 * uniforms: cheap, deterministic, unit variance), each matrix with 4 input
 * columns scaled x10 (the outlier channels real checkpoints have); norm
 * weights 1 + N(0, 0.05).  lm_head.weight is a byte-identical copy of the
 * embedding, as in the published Qwen3-0.6B file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifndef QLM_TOP_SRCDIR
#define QLM_TOP_SRCDIR "."
#endif

#define PROG "qlm-gen-synth"
#define QWEN3_06B_PARAMS 751632384ull
#define N_OUTLIERS 4

struct synth_cfg {
    uint64_t hidden, ffn, layers, heads, kv_heads, head_dim, vocab;
};

static const struct synth_cfg FULL = {1024, 3072, 28, 16, 8, 128, 151936};
static const struct synth_cfg TINY = {128, 384, 2, 4, 2, 32, 151936};

struct tensor {
    char name[96];
    int n_dims;
    uint64_t dims[2];
    bool norm;
    const char *seed_name; /* whose random stream fills it */
    uint64_t begin, end;
};

static char errbuf[1024];

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- PRNG: splitmix64 seeds xoshiro256** ------------------------------- */

struct rng { uint64_t s[4]; };

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* One stream per tensor, from the seed and the tensor's name (FNV-1a). */
static void rng_init(struct rng *r, uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    uint64_t x = seed ^ h;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* Approximately N(0, 1): the sum of four 16-bit uniforms, centred and scaled
 * to unit variance (Irwin-Hall; tails end at +-3.46). */
static float rng_normal(struct rng *r)
{
    uint64_t u = rng_next(r);
    uint32_t s = (uint32_t)(u & 0xffff) + (uint32_t)((u >> 16) & 0xffff) +
                 (uint32_t)((u >> 32) & 0xffff) + (uint32_t)(u >> 48);
    /* mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12 */
    return ((float)s - 131070.0f) * (1.0f / 37837.23f);
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even; inputs are finite */
    return (uint16_t)(u >> 16);
}

/* ---- the tensor list ----------------------------------------------------- */

static size_t build_list(const struct synth_cfg *c, struct tensor *t)
{
    size_t n = 0;
    uint64_t H = c->hidden, qo = c->heads * c->head_dim, kvo = c->kv_heads * c->head_dim;
#define T2(nm_, r_, c_) (t[n] = (struct tensor){.n_dims = 2, .dims = {(r_), (c_)}}, \
                         snprintf(t[n].name, sizeof t[n].name, "%s", nm_), n++)
#define T1(nm_, r_) (t[n] = (struct tensor){.n_dims = 1, .dims = {(r_), 0}, .norm = true}, \
                     snprintf(t[n].name, sizeof t[n].name, "%s", nm_), n++)
    char nm[96];
    T2("model.embed_tokens.weight", c->vocab, H);
    for (uint64_t l = 0; l < c->layers; l++) {
#define L(s) (snprintf(nm, sizeof nm, "model.layers.%" PRIu64 ".%s", l, s), nm)
        T1(L("input_layernorm.weight"), H);
        T2(L("self_attn.q_proj.weight"), qo, H);
        T2(L("self_attn.k_proj.weight"), kvo, H);
        T2(L("self_attn.v_proj.weight"), kvo, H);
        T2(L("self_attn.o_proj.weight"), H, qo);
        T1(L("self_attn.q_norm.weight"), c->head_dim);
        T1(L("self_attn.k_norm.weight"), c->head_dim);
        T1(L("post_attention_layernorm.weight"), H);
        T2(L("mlp.gate_proj.weight"), c->ffn, H);
        T2(L("mlp.up_proj.weight"), c->ffn, H);
        T2(L("mlp.down_proj.weight"), H, c->ffn);
#undef L
    }
    T1("model.norm.weight", H);
    T2("lm_head.weight", c->vocab, H);
#undef T1
#undef T2
    for (size_t i = 0; i < n; i++)
        t[i].seed_name = t[i].name;
    t[n - 1].seed_name = t[0].name; /* the head repeats the embedding's stream */
    return n;
}

/* ---- files ---------------------------------------------------------------- */

static int write_all(FILE *f, const void *p, size_t n, const char *path)
{
    if (fwrite(p, 1, n, f) != n)
        return fail("%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* Write path via path.tmp + rename.  fill() writes the content. */
static int write_file(const char *path, int (*fill)(FILE *, const char *, void *), void *ctx)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return fail("%s: cannot create: %s", tmp, strerror(errno));
    setvbuf(f, NULL, _IOFBF, (size_t)4 << 20);
    int rc = fill(f, tmp, ctx);
    if (fclose(f) != 0 && rc == 0)
        rc = fail("%s: write failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = fail("%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc != 0)
        remove(tmp);
    return rc;
}

static int fill_config(FILE *f, const char *path, void *ctx)
{
    const struct synth_cfg *c = ctx;
    int n = fprintf(f,
        "{\n"
        "  \"architectures\": [\n    \"Qwen3ForCausalLM\"\n  ],\n"
        "  \"attention_bias\": false,\n"
        "  \"attention_dropout\": 0.0,\n"
        "  \"bos_token_id\": 151643,\n"
        "  \"eos_token_id\": 151645,\n"
        "  \"head_dim\": %" PRIu64 ",\n"
        "  \"hidden_act\": \"silu\",\n"
        "  \"hidden_size\": %" PRIu64 ",\n"
        "  \"initializer_range\": 0.02,\n"
        "  \"intermediate_size\": %" PRIu64 ",\n"
        "  \"max_position_embeddings\": 40960,\n"
        "  \"max_window_layers\": %" PRIu64 ",\n"
        "  \"model_type\": \"qwen3\",\n"
        "  \"num_attention_heads\": %" PRIu64 ",\n"
        "  \"num_hidden_layers\": %" PRIu64 ",\n"
        "  \"num_key_value_heads\": %" PRIu64 ",\n"
        "  \"rms_norm_eps\": 1e-06,\n"
        "  \"rope_scaling\": null,\n"
        "  \"rope_theta\": 1000000,\n"
        "  \"sliding_window\": null,\n"
        "  \"tie_word_embeddings\": true,\n"
        "  \"torch_dtype\": \"bfloat16\",\n"
        "  \"transformers_version\": \"4.51.0\",\n"
        "  \"use_cache\": true,\n"
        "  \"use_sliding_window\": false,\n"
        "  \"vocab_size\": %" PRIu64 "\n"
        "}\n",
        c->head_dim, c->hidden, c->ffn, c->layers, c->heads, c->layers, c->kv_heads, c->vocab);
    if (n < 0)
        return fail("%s: write failed: %s", path, strerror(errno));
    return 0;
}

struct st_ctx {
    struct tensor *t;
    size_t n;
    uint64_t seed;
};

static int fill_tensor(FILE *f, const char *path, const struct tensor *t, uint64_t seed)
{
    struct rng r;
    rng_init(&r, seed, t->seed_name);
    uint64_t rows = t->n_dims == 2 ? t->dims[0] : 1, cols = t->n_dims == 2 ? t->dims[1] : t->dims[0];
    /* The outlier input columns of this matrix. */
    uint64_t outl[N_OUTLIERS];
    for (int k = 0; k < N_OUTLIERS; k++)
        outl[k] = rng_next(&r) % cols;
    const size_t block_rows = cols ? (size_t)(((uint64_t)1 << 20) / cols + 1) : 1;
    uint16_t *buf = malloc(block_rows * cols * sizeof *buf);
    if (!buf)
        return fail("out of memory");
    int rc = 0;
    for (uint64_t r0 = 0; r0 < rows && rc == 0; r0 += block_rows) {
        uint64_t nr = rows - r0 < block_rows ? rows - r0 : block_rows;
        for (uint64_t i = 0; i < nr * cols; i++) {
            float x = rng_normal(&r);
            buf[i] = f32_to_bf16(t->norm ? 1.0f + 0.05f * x : 0.02f * x);
        }
        if (!t->norm)
            for (uint64_t i = 0; i < nr; i++)
                for (int k = 0; k < N_OUTLIERS; k++) {
                    uint16_t *w = &buf[i * cols + outl[k]];
                    uint32_t u = (uint32_t)*w << 16;
                    float x;
                    memcpy(&x, &u, 4);
                    *w = f32_to_bf16(x * 10.0f);
                }
        rc = write_all(f, buf, (size_t)(nr * cols) * sizeof *buf, path);
    }
    free(buf);
    return rc;
}

static int fill_safetensors(FILE *f, const char *path, void *vctx)
{
    struct st_ctx *c = vctx;
    /* Header: JSON with data offsets, padded with spaces to a multiple of 8. */
    size_t cap = 64 * 1024 + c->n * 160, len = 0;
    char *h = malloc(cap);
    if (!h)
        return fail("out of memory");
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < c->n; i++) {
        const struct tensor *t = &c->t[i];
        if (t->n_dims == 2)
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64 ",%" PRIu64
                                    "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                                    t->name, t->dims[0], t->dims[1], t->begin, t->end);
        else
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64
                                    "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                                    t->name, t->dims[0], t->begin, t->end);
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8)
        h[len++] = ' ';
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)len >> (8 * i));
    int rc = write_all(f, le, 8, path);
    if (rc == 0)
        rc = write_all(f, h, len, path);
    free(h);
    for (size_t i = 0; i < c->n && rc == 0; i++)
        rc = fill_tensor(f, path, &c->t[i], c->seed);
    return rc;
}

static int fill_gunzip(FILE *f, const char *path, void *ctx)
{
    const char *src = ctx;
    gzFile g = gzopen(src, "rb");
    if (!g)
        return fail("%s: cannot open: %s", src, strerror(errno));
    char *buf = malloc(1 << 20);
    int rc = buf ? 0 : fail("out of memory");
    for (;;) {
        if (rc)
            break;
        int n = gzread(g, buf, 1 << 20);
        if (n < 0) {
            int e;
            rc = fail("%s: %s", src, gzerror(g, &e));
        } else if (n == 0) {
            break;
        } else {
            rc = write_all(f, buf, (size_t)n, path);
        }
    }
    free(buf);
    gzclose(g);
    return rc;
}

static int fill_copy(FILE *f, const char *path, void *ctx)
{
    const char *src = ctx;
    FILE *in = fopen(src, "rb");
    if (!in)
        return fail("%s: cannot open: %s", src, strerror(errno));
    char buf[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = write_all(f, buf, n, path);
    if (rc == 0 && ferror(in))
        rc = fail("%s: read error", src);
    fclose(in);
    return rc;
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " OUTDIR [--seed S] [--tiny] [--tokenizer DIR]\n"
            "Write a synthetic Qwen3-0.6B checkpoint (config.json, model.safetensors in\n"
            "BF16, tokenizer.json, tokenizer_config.json) into OUTDIR.\n"
            "\n"
            "  -s, --seed S         random seed (default 1)\n"
            "  -t, --tiny           2 layers, hidden 128 (for tests)\n"
            "  -T, --tokenizer DIR  where tokenizer.json[.gz] and tokenizer_config.json are\n"
            "                       (default %s/models/qwen3-tokenizer)\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n",
            QLM_TOP_SRCDIR);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"seed", required_argument, NULL, 's'},   {"tiny", no_argument, NULL, 't'},
        {"tokenizer", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    uint64_t seed = 1;
    bool tiny = false;
    const char *tokdir = QLM_TOP_SRCDIR "/models/qwen3-tokenizer";
    int ch;
    while ((ch = getopt_long(argc, argv, "s:tT:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, PROG ": --seed '%s' is not a non-negative integer\n", optarg);
                return 2;
            }
            seed = v;
            break;
        }
        case 't': tiny = true; break;
        case 'T': tokdir = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
        default:
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": expected one OUTDIR (try '" PROG " --help')\n");
        return 2;
    }
    const char *out = argv[optind];
    /* Check the tokenizer sources first, so a bad --tokenizer leaves nothing. */
    char tok_src[4200], cfg_src[4200];
    bool tok_gz = false;
    snprintf(tok_src, sizeof tok_src, "%s/tokenizer.json", tokdir);
    if (!exists(tok_src)) {
        snprintf(tok_src, sizeof tok_src, "%s/tokenizer.json.gz", tokdir);
        tok_gz = true;
    }
    snprintf(cfg_src, sizeof cfg_src, "%s/tokenizer_config.json", tokdir);
    if (!exists(tok_src) || !exists(cfg_src)) {
        fprintf(stderr, PROG ": %s: no tokenizer.json[.gz] and tokenizer_config.json there "
                "(see --tokenizer)\n", tokdir);
        return 1;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", out, strerror(errno));
        return 1;
    }
    const struct synth_cfg *c = tiny ? &TINY : &FULL;
    size_t max_t = 3 + 11 * (size_t)c->layers;
    struct tensor *t = calloc(max_t, sizeof *t);
    if (!t) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    size_t n = build_list(c, t);
    uint64_t params = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = t[i].dims[0] * (t[i].n_dims == 2 ? t[i].dims[1] : 1);
        params += numel;
        t[i].begin = off;
        off += numel * 2;
        t[i].end = off;
    }
    if (!tiny && (n != 311 || params != QWEN3_06B_PARAMS)) {
        fprintf(stderr, PROG ": internal error: %zu tensors, %" PRIu64 " parameters\n", n, params);
        free(t);
        return 1;
    }

    char path[4200];
    int rc = 0;
    snprintf(path, sizeof path, "%s/config.json", out);
    rc = write_file(path, fill_config, (void *)c);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/tokenizer.json", out);
        rc = write_file(path, tok_gz ? fill_gunzip : fill_copy, tok_src);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", out);
        rc = write_file(path, fill_copy, cfg_src);
    }
    if (rc == 0) {
        struct st_ctx ctx = {t, n, seed};
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        rc = write_file(path, fill_safetensors, &ctx);
    }
    free(t);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", errbuf);
        return 1;
    }
    fprintf(stderr, PROG ": wrote %s: %zu tensors, %" PRIu64 " parameters, %" PRIu64 " bytes of BF16\n",
            out, n, params, off);
    return 0;
}
