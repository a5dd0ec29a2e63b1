/* check_convert.c — config.json parsing, the quantization policy, and
 * end-to-end conversions of small checkpoints written here (plus the
 * synthetic tiny fixture made by tests/fixtures.sh). */
#include <config.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "hf_config.h"
#include "importance.h"
#include "policy.h"
#include "qlm_format.h"

/* ---- helpers ------------------------------------------------------------ */

static const char *srcdir(void)
{
    const char *s = getenv("top_srcdir");
    return s && *s ? s : ".";
}

static const char *builddir(void)
{
    const char *s = getenv("top_builddir");
    return s && *s ? s : ".";
}

static enum qlm_err parse(const char *json, struct qlm_model_params *c, struct qlm_error *e)
{
    memset(e, 0, sizeof *e);
    return qlm_hf_config_parse(json, strlen(json), "m/config.json", c, e);
}

/* config.json without rms_norm_eps and rope_theta, so tests can set them */
#define BASE_CFG0                                                                        \
    "\"model_type\": \"qwen3\", \"hidden_size\": 64, \"intermediate_size\": 128, "     \
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, " \
    "\"head_dim\": 32, \"vocab_size\": 2304, \"max_position_embeddings\": 512"
#define BASE_CFG BASE_CFG0 ", \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000"

static char *mkdtemp_dir(void)
{
    char *d = strdup("/tmp/check_convert.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert_msg(a != NULL, "cannot open %s", from);
    ck_assert_ptr_nonnull(b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* A small Qwen3 checkpoint: hidden 64, ffn 128, 2 layers, heads 2/1 of 32,
 * vocab 2304 (the tiny model's tokenizer has 2261 tokens). */
struct mini {
    bool tied;               /* tie_word_embeddings */
    int head;                /* 0: no lm_head, 1: copy of the embedding, 2: different */
    const char *drop;        /* leave this tensor out */
    const char *extra;       /* add this [4] tensor */
    const char *misshape;    /* give this tensor one row more */
    const char *poison;      /* put a NaN (or +inf if poison_inf) in row 5 */
    bool poison_inf;
    uint64_t ffn;            /* default 128 */
    bool qwen2;              /* Qwen2 layout: q/k/v biases, no q/k norms */
};

struct st_t {
    char name[96];
    int n_dims;
    uint64_t d[2];
    int f32; /* store as F32 instead of BF16 */
};

static uint32_t lcg;
static float rnd(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    return ((float)(lcg >> 8) / 16777216.0f - 0.5f) * 0.1f;
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000)
        return 0x7fc0;
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static void write_mini(const char *dir, const struct mini *o)
{
    char p[1024];
    uint64_t ffn = o->ffn ? o->ffn : 128;
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"model_type\": \"%s\", \"hidden_size\": 64, \"intermediate_size\": %llu, "
            "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
            "\"head_dim\": 32, \"vocab_size\": 2304, \"max_position_embeddings\": 512, "
            "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000, \"tie_word_embeddings\": %s}\n",
            o->qwen2 ? "qwen2" : "qwen3", (unsigned long long)ffn, o->tied ? "true" : "false");
    fclose(f);
    char from[1024];
    snprintf(from, sizeof from, "%s/models/tiny/tokenizer.json", srcdir());
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    copy_file(from, p);
    snprintf(from, sizeof from, "%s/models/tiny/tokenizer_config.json", srcdir());
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    copy_file(from, p);

    struct st_t t[64];
    int n = 0;
#define ADD2(nm, a, b) (snprintf(t[n].name, 96, "%s", nm), t[n].n_dims = 2, t[n].d[0] = a, t[n].d[1] = b, t[n].f32 = 0, n++)
#define ADD1(nm, a) (snprintf(t[n].name, 96, "%s", nm), t[n].n_dims = 1, t[n].d[0] = a, t[n].d[1] = 0, t[n].f32 = 1, n++)
    ADD2("model.embed_tokens.weight", 2304, 64);
    char nm[96];
    for (int l = 0; l < 2; l++) {
#define L(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s), nm)
        ADD1(L("input_layernorm.weight"), 64);
        ADD2(L("self_attn.q_proj.weight"), 64, 64);
        ADD2(L("self_attn.k_proj.weight"), 32, 64);
        ADD2(L("self_attn.v_proj.weight"), 32, 64);
        ADD2(L("self_attn.o_proj.weight"), 64, 64);
        if (o->qwen2) {
            ADD1(L("self_attn.q_proj.bias"), 64);
            ADD1(L("self_attn.k_proj.bias"), 32);
            ADD1(L("self_attn.v_proj.bias"), 32);
        } else {
            ADD1(L("self_attn.q_norm.weight"), 32);
            ADD1(L("self_attn.k_norm.weight"), 32);
        }
        ADD1(L("post_attention_layernorm.weight"), 64);
        ADD2(L("mlp.gate_proj.weight"), ffn, 64);
        ADD2(L("mlp.up_proj.weight"), ffn, 64);
        ADD2(L("mlp.down_proj.weight"), 64, ffn);
        ADD1(L("self_attn.rotary_emb.inv_freq"), 16);
#undef L
    }
    ADD1("model.norm.weight", 64);
    if (o->head)
        ADD2("lm_head.weight", 2304, 64);
    if (o->extra)
        ADD1(o->extra, 4);
#undef ADD1
#undef ADD2
    /* drop / misshape */
    for (int i = 0; i < n; i++) {
        if (o->drop && strcmp(t[i].name, o->drop) == 0) {
            memmove(&t[i], &t[i + 1], (size_t)(n - i - 1) * sizeof t[0]);
            n--;
            i--;
        } else if (o->misshape && strcmp(t[i].name, o->misshape) == 0) {
            t[i].d[0]++;
        }
    }
    /* header */
    char *h = malloc(65536);
    size_t len = (size_t)snprintf(h, 65536, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = t[i].d[0] * (t[i].n_dims == 2 ? t[i].d[1] : 1);
        uint64_t sz = numel * (t[i].f32 ? 4 : 2);
        if (t[i].n_dims == 2)
            len += (size_t)snprintf(h + len, 65536 - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],"
                                    "\"data_offsets\":[%llu,%llu]}",
                                    t[i].name, t[i].f32 ? "F32" : "BF16",
                                    (unsigned long long)t[i].d[0], (unsigned long long)t[i].d[1],
                                    (unsigned long long)off, (unsigned long long)(off + sz));
        else
            len += (size_t)snprintf(h + len, 65536 - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu],"
                                    "\"data_offsets\":[%llu,%llu]}",
                                    t[i].name, t[i].f32 ? "F32" : "BF16",
                                    (unsigned long long)t[i].d[0], (unsigned long long)off,
                                    (unsigned long long)(off + sz));
        off += sz;
    }
    len += (size_t)snprintf(h + len, 65536 - len, "}");
    while (len % 8)
        h[len++] = ' ';
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(h, 1, len, f);
    free(h);
    lcg = 12345;
    uint32_t emb_seed = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = t[i].d[0] * (t[i].n_dims == 2 ? t[i].d[1] : 1);
        if (strcmp(t[i].name, "model.embed_tokens.weight") == 0)
            emb_seed = lcg;
        uint32_t save = lcg;
        if (strcmp(t[i].name, "lm_head.weight") == 0 && o->head == 1)
            lcg = emb_seed; /* an identical copy */
        bool poison = o->poison && strcmp(t[i].name, o->poison) == 0;
        for (uint64_t k = 0; k < numel; k++) {
            float x = rnd();
            if (t[i].n_dims == 1)
                x += 1.0f;
            if (t[i].n_dims == 2 && k % t[i].d[1] == 3)
                x *= 10.0f; /* an outlier column */
            if (poison && k == 5 * t[i].d[1] + 7)
                x = o->poison_inf ? INFINITY : NAN;
            if (t[i].f32) {
                fwrite(&x, 4, 1, f);
            } else {
                uint16_t b = to_bf16(x);
                fwrite(&b, 2, 1, f);
            }
        }
        if (strcmp(t[i].name, "lm_head.weight") == 0 && o->head == 1)
            lcg = save;
    }
    ck_assert_int_eq(fclose(f), 0);
}

static struct qlm_convert_opts opts_for(const char *dir, const char *out, enum qlm_dtype t)
{
    struct qlm_convert_opts o = {.model_dir = dir, .out_path = out, .type = t, .group = 32,
                                 .threads = 2};
    return o;
}

/* ---- config.json ---------------------------------------------------------- */

START_TEST(config_valid)
{
    struct qlm_model_params c;
    struct qlm_error e;
    ck_assert_int_eq(parse("{" BASE_CFG ", \"tie_word_embeddings\": true}", &c, &e), QLM_OK);
    ck_assert_int_eq(c.arch, QLM_ARCH_QWEN3);
    ck_assert_uint_eq(c.hidden, 64);
    ck_assert_uint_eq(c.ffn_hidden, 128);
    ck_assert_uint_eq(c.n_layers, 2);
    ck_assert_uint_eq(c.n_heads, 2);
    ck_assert_uint_eq(c.n_kv_heads, 1);
    ck_assert_uint_eq(c.head_dim, 32);
    ck_assert_uint_eq(c.vocab_size, 2304);
    ck_assert_uint_eq(c.max_pos, 512);
    ck_assert_double_eq(c.rms_eps, 1e-6);
    ck_assert_double_eq(c.rope_theta, 1e6);
    ck_assert(c.tied);
    ck_assert(c.qk_norm);
    ck_assert(!c.qkv_bias);
}
END_TEST

START_TEST(config_defaults)
{
    struct qlm_model_params c;
    struct qlm_error e;
    const char *j = "{\"model_type\": \"qwen2\", \"hidden_size\": 96, \"intermediate_size\": 64,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 3, \"vocab_size\": 10,"
                    " \"rms_norm_eps\": 1e-5}";
    ck_assert_int_eq(parse(j, &c, &e), QLM_OK);
    ck_assert_uint_eq(c.head_dim, 32);      /* hidden / heads */
    ck_assert_uint_eq(c.n_kv_heads, 3);     /* = heads */
    ck_assert_double_eq(c.rope_theta, 10000.0);
    ck_assert(!c.tied);
    ck_assert(c.qkv_bias);
    ck_assert(!c.qk_norm);
    ck_assert_uint_eq(c.max_pos, 32768);
}
END_TEST

static void expect_bad(const char *json, const char *needle)
{
    struct qlm_model_params c;
    struct qlm_error e;
    enum qlm_err rc = parse(json, &c, &e);
    ck_assert_int_ne(rc, QLM_OK);
    ck_assert_msg(strstr(e.msg, "m/config.json") != NULL, "message lacks the file: %s", e.msg);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
}

START_TEST(config_bad)
{
    /* missing key */
    expect_bad("{\"model_type\": \"qwen3\", \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
               " \"num_attention_heads\": 2, \"vocab_size\": 10, \"rms_norm_eps\": 1e-6}",
               "missing key 'hidden_size'");
    expect_bad("{\"hidden_size\": 64}", "missing key 'model_type'");
    /* wrong type */
    expect_bad("{" BASE_CFG ", \"tie_word_embeddings\": 1}", "'tie_word_embeddings'");
    expect_bad("{\"model_type\": \"qwen3\", \"hidden_size\": \"64\", \"intermediate_size\": 128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 10,"
               " \"rms_norm_eps\": 1e-6}",
               "'hidden_size' must be an integer");
    expect_bad("{\"model_type\": \"qwen3\", \"hidden_size\": 64.5, \"intermediate_size\": 128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 10,"
               " \"rms_norm_eps\": 1e-6}",
               "'hidden_size' must be an integer");
    expect_bad("{\"model_type\": 3}", "'model_type' must be a string");
    expect_bad("{" BASE_CFG0 ", \"rms_norm_eps\": 1e-6, \"rope_theta\": \"big\"}",
               "'rope_theta' must be a number");
    /* heads not dividing */
    expect_bad("{\"model_type\": \"qwen3\", \"hidden_size\": 64, \"intermediate_size\": 128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 3,"
               " \"vocab_size\": 10, \"rms_norm_eps\": 1e-6}",
               "num_key_value_heads");
    /* zero / negative / huge sizes */
    expect_bad("{\"model_type\": \"qwen3\", \"hidden_size\": 0, \"intermediate_size\": 128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 10,"
               " \"rms_norm_eps\": 1e-6}",
               "'hidden_size'");
    expect_bad("{\"model_type\": \"qwen3\", \"hidden_size\": 64, \"intermediate_size\": -128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 10,"
               " \"rms_norm_eps\": 1e-6}",
               "'intermediate_size'");
    expect_bad("{\"model_type\": \"qwen3\", \"hidden_size\": 64, \"intermediate_size\": 128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"vocab_size\": 4294967296,"
               " \"rms_norm_eps\": 1e-6}",
               "'vocab_size'");
    expect_bad("{" BASE_CFG0 ", \"rms_norm_eps\": -1}", "'rms_norm_eps' = -1 must be positive");
    expect_bad("{" BASE_CFG0 "}", "missing key 'rms_norm_eps'");
    /* no head_dim and heads not dividing hidden */
    expect_bad("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128,"
               " \"num_hidden_layers\": 2, \"num_attention_heads\": 3, \"vocab_size\": 10,"
               " \"rms_norm_eps\": 1e-6}",
               "head_dim");
    /* unsupported architectures and features */
    expect_bad("{\"model_type\": \"gpt2\"}", "'gpt2' is not supported");
    expect_bad("{" BASE_CFG ", \"rope_scaling\": {\"type\": \"yarn\"}}", "rope_scaling");
    expect_bad("{" BASE_CFG ", \"hidden_act\": \"gelu\"}", "hidden_act");
    /* malformed JSON, duplicate keys, not an object */
    expect_bad("{" BASE_CFG ",}", "invalid JSON");
    expect_bad("{" BASE_CFG ", \"hidden_size\": 64}", "invalid JSON");
    expect_bad("[1, 2]", "not a JSON object");
}
END_TEST

/* ---- policy ------------------------------------------------------------- */

START_TEST(policy_types)
{
    enum qlm_dtype all[] = {QLM_F32, QLM_BF16, QLM_F16, QLM_Q8, QLM_Q4};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_NORM, all[i]), QLM_F32);
        ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_BIAS, all[i]), QLM_F32);
        ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_LINEAR, all[i]), all[i]);
    }
    ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_EMBED, QLM_Q4), QLM_Q8);
    ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_HEAD, QLM_Q4), QLM_Q8);
    ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_EMBED, QLM_BF16), QLM_BF16);
    ck_assert_int_eq(qlm_policy_dtype(QLM_ROLE_HEAD, QLM_Q8), QLM_Q8);
    ck_assert(qlm_policy_group_ok(32) && qlm_policy_group_ok(64) && qlm_policy_group_ok(128));
    ck_assert(!qlm_policy_group_ok(0) && !qlm_policy_group_ok(16) && !qlm_policy_group_ok(48));
}
END_TEST

/* Builds the plan of a mini checkpoint. */
static enum qlm_err plan_of(const struct mini *mo, enum qlm_dtype t, uint32_t group,
                            struct qlm_plan *plan, struct qlm_error *e)
{
    char *d = mkdtemp_dir();
    write_mini(d, mo);
    struct qlm_model_params c;
    memset(e, 0, sizeof *e);
    ck_assert_int_eq(qlm_hf_config_load(d, &c, e), QLM_OK);
    struct qlm_st_model *m = NULL;
    ck_assert_msg(qlm_st_open(&m, d, e) == QLM_OK, "%s", e->msg);
    enum qlm_err rc = qlm_plan_build(&c, m, d, "config.json", t, group, plan, e);
    /* the plan points into m: check what we need before closing */
    if (rc == QLM_OK)
        for (size_t i = 0; i < plan->n; i++)
            plan->items[i].src = NULL;
    qlm_st_close(m);
    rm_rf(d);
    free(d);
    return rc;
}

static const struct qlm_plan_item *find_item(const struct qlm_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return &p->items[i];
    return NULL;
}

START_TEST(plan_q4_tied)
{
    struct mini mo = {.tied = true, .head = 1};
    struct qlm_plan p;
    struct qlm_error e;
    ck_assert_int_eq(plan_of(&mo, QLM_Q4, 32, &p, &e), QLM_OK);
    ck_assert_uint_eq(p.n, 1 + 2 * 11 + 1); /* no lm_head, no inv_freq */
    ck_assert(p.tied && p.head_dropped);
    ck_assert_ptr_null(find_item(&p, "lm_head.weight"));
    ck_assert_str_eq(p.items[0].name, "model.embed_tokens.weight");
    ck_assert_int_eq(p.items[0].dtype, QLM_Q8);
    ck_assert_str_eq(p.items[p.n - 1].name, "model.norm.weight");
    const struct qlm_plan_item *it = find_item(&p, "model.layers.1.mlp.down_proj.weight");
    ck_assert_ptr_nonnull(it);
    ck_assert_int_eq(it->dtype, QLM_Q4);
    ck_assert_uint_eq(it->group, 32);
    ck_assert_uint_eq(it->dims[0], 64);
    ck_assert_uint_eq(it->dims[1], 128);
    it = find_item(&p, "model.layers.0.self_attn.k_norm.weight");
    ck_assert_int_eq(it->dtype, QLM_F32);
    ck_assert_uint_eq(it->group, 0);
    ck_assert_int_eq(it->n_dims, 1);
    /* layers in order */
    ck_assert_str_eq(p.items[1].name, "model.layers.0.input_layernorm.weight");
    ck_assert_str_eq(p.items[12].name, "model.layers.1.input_layernorm.weight");
    qlm_plan_free(&p);
}
END_TEST

START_TEST(plan_head_equal_bytes_dropped)
{
    struct mini mo = {.tied = false, .head = 1};
    struct qlm_plan p;
    struct qlm_error e;
    ck_assert_int_eq(plan_of(&mo, QLM_Q8, 32, &p, &e), QLM_OK);
    ck_assert(p.tied && p.head_dropped && p.head_equal);
    ck_assert_ptr_null(find_item(&p, "lm_head.weight"));
    qlm_plan_free(&p);
}
END_TEST

START_TEST(plan_head_untied_kept)
{
    struct mini mo = {.tied = false, .head = 2};
    struct qlm_plan p;
    struct qlm_error e;
    ck_assert_int_eq(plan_of(&mo, QLM_Q4, 64, &p, &e), QLM_OK);
    ck_assert(!p.tied);
    ck_assert_str_eq(p.items[p.n - 1].name, "lm_head.weight");
    ck_assert_int_eq(p.items[p.n - 1].dtype, QLM_Q8);
    ck_assert_uint_eq(p.items[p.n - 1].group, 64);
    qlm_plan_free(&p);
}
END_TEST

START_TEST(plan_errors)
{
    struct qlm_plan p;
    struct qlm_error e;
    struct mini a = {.tied = true, .drop = "model.layers.1.self_attn.v_proj.weight"};
    ck_assert_int_eq(plan_of(&a, QLM_Q8, 32, &p, &e), QLM_E_NOTFOUND);
    ck_assert_msg(strstr(e.msg, "missing tensor 'model.layers.1.self_attn.v_proj.weight'"), "%s",
                  e.msg);
    struct mini b = {.tied = false, .head = 0};
    ck_assert_int_eq(plan_of(&b, QLM_Q8, 32, &p, &e), QLM_E_NOTFOUND);
    ck_assert_msg(strstr(e.msg, "'lm_head.weight'"), "%s", e.msg);
    struct mini c = {.tied = true, .misshape = "model.layers.0.mlp.up_proj.weight"};
    ck_assert_int_ne(plan_of(&c, QLM_Q8, 32, &p, &e), QLM_OK);
    ck_assert_msg(strstr(e.msg, "'model.layers.0.mlp.up_proj.weight' has shape [129, 64]"), "%s",
                  e.msg);
    struct mini d = {.tied = true, .extra = "model.layers.0.mlp.extra.weight"};
    ck_assert_int_ne(plan_of(&d, QLM_Q8, 32, &p, &e), QLM_OK);
    ck_assert_msg(strstr(e.msg, "unexpected tensor 'model.layers.0.mlp.extra.weight'"), "%s",
                  e.msg);
    /* ffn 96: down_proj's 96 input columns do not split into groups of 64 */
    struct mini g = {.tied = true, .ffn = 96};
    ck_assert_int_ne(plan_of(&g, QLM_Q8, 64, &p, &e), QLM_OK);
    ck_assert_msg(strstr(e.msg, "'model.layers.0.mlp.down_proj.weight'") &&
                      strstr(e.msg, "group 64"),
                  "%s", e.msg);
    /* ... but any float type is fine */
    ck_assert_int_eq(plan_of(&g, QLM_BF16, 64, &p, &e), QLM_OK);
    qlm_plan_free(&p);
}
END_TEST


START_TEST(plan_qwen2_biases)
{
    struct mini mo = {.tied = true, .qwen2 = true};
    struct qlm_plan p;
    struct qlm_error e;
    ck_assert_int_eq(plan_of(&mo, QLM_Q4, 32, &p, &e), QLM_OK);
    ck_assert_uint_eq(p.n, 1 + 2 * 12 + 1);
    const struct qlm_plan_item *it = find_item(&p, "model.layers.1.self_attn.k_proj.bias");
    ck_assert_ptr_nonnull(it);
    ck_assert_int_eq(it->dtype, QLM_F32);
    ck_assert_uint_eq(it->dims[0], 32);
    ck_assert_ptr_null(find_item(&p, "model.layers.0.self_attn.q_norm.weight"));
    qlm_plan_free(&p);
    struct mini nob = {.tied = true, .qwen2 = true, .drop = "model.layers.0.self_attn.v_proj.bias"};
    ck_assert_int_eq(plan_of(&nob, QLM_Q8, 32, &p, &e), QLM_E_NOTFOUND);
    ck_assert_msg(strstr(e.msg, "'model.layers.0.self_attn.v_proj.bias'"), "%s", e.msg);
    /* q/k norms in a Qwen2 checkpoint are unexpected */
    struct mini extra = {.tied = true, .qwen2 = true, .extra = "model.layers.0.self_attn.q_norm.weight"};
    ck_assert_int_ne(plan_of(&extra, QLM_Q8, 32, &p, &e), QLM_OK);
    ck_assert_msg(strstr(e.msg, "unexpected tensor 'model.layers.0.self_attn.q_norm.weight'"), "%s",
                  e.msg);
}
END_TEST

/* ---- end to end --------------------------------------------------------- */

/* Worst error of a quantized weight w in a group whose largest magnitude is
 * amax: half a step, plus the f16 rounding of the scale over the range. */
static double bound(enum qlm_dtype t, double amax, double w)
{
    switch (t) {
    case QLM_F32: return 0;
    case QLM_BF16: return fabs(w) / 256.0;
    case QLM_F16: return fabs(w) / 2048.0 + 6e-8;
    case QLM_Q8: return amax / 127.0 * 0.5 + amax / 1024.0 + 1e-7;
    case QLM_Q4: return amax / 7.0 * 0.5 + amax / 1024.0 + 1e-7;
    default: return 0;
    }
}

/* Compare every tensor of out with its source in dir. */
static void check_close(const char *dir, const char *out, enum qlm_dtype chosen, size_t n_expect)
{
    struct qlm_error e = {0};
    struct qlm_file *f = NULL;
    ck_assert_msg(qlm_file_open(&f, out, &e) == QLM_OK, "%s", e.msg);
    ck_assert_msg(qlm_file_verify(f, NULL, NULL, &e) == QLM_OK, "%s", e.msg);
    struct qlm_st_model *m = NULL;
    ck_assert_msg(qlm_st_open(&m, dir, &e) == QLM_OK, "%s", e.msg);
    ck_assert_uint_eq(f->n_tensors, n_expect);
    size_t seen = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct qlm_st_tensor *s = &m->tensors[i];
        const struct qlm_tensor_info *t = qlm_file_tensor(f, s->name);
        enum qlm_role role = qlm_schema_role(s->name);
        if (role == QLM_ROLE_SKIP || role == QLM_ROLE_HEAD) {
            ck_assert_ptr_null(t);
            continue;
        }
        ck_assert_msg(t != NULL, "%s missing from %s", s->name, out);
        seen++;
        enum qlm_dtype want = s->n_dims == 1 ? QLM_F32 : qlm_policy_dtype(role, chosen);
        ck_assert_int_eq(t->dtype, want);
        ck_assert_int_eq(t->n_dims, s->n_dims);
        for (int k = 0; k < s->n_dims; k++)
            ck_assert_uint_eq(t->dims[k], s->dims[k]);
        ck_assert_uint_eq(t->group, qlm_dtype_is_quant(want) ? 32 : 0);
        uint64_t rows = s->n_dims == 2 ? s->dims[0] : 1, cols = s->n_dims == 2 ? s->dims[1] : s->dims[0];
        float *src = malloc(cols * sizeof *src), *got = malloc(cols * sizeof *got);
        for (uint64_t r = 0; r < rows; r++) {
            qlm_st_to_f32(s, r * cols, cols, src);
            qlm_dequantize_row(t->dtype, t->data, rows, cols, t->group, r, got);
            for (uint64_t g0 = 0; g0 < cols; g0 += 32) {
                double amax = 0;
                for (uint64_t c = g0; c < g0 + 32 && c < cols; c++)
                    amax = fmax(amax, fabs(src[c]));
                for (uint64_t c = g0; c < g0 + 32 && c < cols; c++) {
                    double d = fabs((double)got[c] - src[c]);
                    ck_assert_msg(d <= bound(t->dtype, amax, src[c]),
                                  "%s row %llu col %llu: %g vs %g", s->name,
                                  (unsigned long long)r, (unsigned long long)c, got[c], src[c]);
                }
            }
        }
        free(src);
        free(got);
    }
    ck_assert_uint_eq(seen, f->n_tensors);
    uint64_t v;
    const char *sv;
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_TIED, &v, &e), QLM_OK);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_N_LAYERS, &v, &e), QLM_OK);
    ck_assert_uint_eq(v, 2);
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_QUANT_GROUP, &v, &e), QLM_OK);
    ck_assert_uint_eq(v, qlm_dtype_is_quant(chosen) ? 32 : 0);
    ck_assert_int_eq(qlm_file_meta_str(f, QLM_KEY_QUANT_TYPE, &sv, &e), QLM_OK);
    ck_assert_str_eq(sv, qlm_dtype_name(chosen));
    ck_assert_int_eq(qlm_file_meta_str(f, QLM_KEY_ARCH, &sv, &e), QLM_OK);
    ck_assert_str_eq(sv, "qwen3");
    double x;
    ck_assert_int_eq(qlm_file_meta_f64(f, QLM_KEY_ROPE_THETA, &x, &e), QLM_OK);
    ck_assert_double_eq(x, 1e6);
    struct qlm_tokdata tok;
    ck_assert_msg(qlm_file_tokdata(f, &tok, &e) == QLM_OK, "%s", e.msg);
    ck_assert_uint_gt(tok.n_tokens, 1000);
    qlm_tokdata_free(&tok);
    qlm_st_close(m);
    qlm_file_close(f);
}

START_TEST(e2e_each_type)
{
    static const enum qlm_dtype types[] = {QLM_F32, QLM_BF16, QLM_F16, QLM_Q8, QLM_Q4};
    enum qlm_dtype t = types[_i];
    char *d = mkdtemp_dir();
    struct mini mo = {.tied = false, .head = 1};
    write_mini(d, &mo);
    char out[1024];
    snprintf(out, sizeof out, "%s/out.qlm", d);
    struct qlm_convert_opts o = opts_for(d, out, t);
    struct qlm_convert_stats st;
    struct qlm_error e = {0};
    ck_assert_msg(qlm_convert(&o, &st, &e) == QLM_OK, "%s", e.msg);
    ck_assert(st.tied);
    ck_assert_uint_eq(st.n_tensors, 24);
    check_close(d, out, t, 24);
    rm_rf(d);
    free(d);
}
END_TEST

START_TEST(e2e_refuses_existing_output)
{
    char *d = mkdtemp_dir();
    struct mini mo = {.tied = true};
    write_mini(d, &mo);
    char out[1024];
    snprintf(out, sizeof out, "%s/out.qlm", d);
    FILE *f = fopen(out, "w");
    fputs("precious", f);
    fclose(f);
    struct qlm_convert_opts o = opts_for(d, out, QLM_Q8);
    struct qlm_convert_stats st;
    struct qlm_error e = {0};
    ck_assert_int_ne(qlm_convert(&o, &st, &e), QLM_OK);
    ck_assert_msg(strstr(e.msg, "exists; use --force to overwrite"), "%s", e.msg);
    char buf[32] = {0};
    f = fopen(out, "r");
    ck_assert_uint_eq(fread(buf, 1, sizeof buf - 1, f), 8);
    fclose(f);
    ck_assert_str_eq(buf, "precious");
    ck_assert_int_eq(count_entries(d), 5); /* 4 inputs + out.qlm: no temp file */
    o.force = true;
    ck_assert_msg(qlm_convert(&o, &st, &e) == QLM_OK, "%s", e.msg);
    struct qlm_file *qf = NULL;
    ck_assert_msg(qlm_file_open(&qf, out, &e) == QLM_OK, "%s", e.msg);
    qlm_file_close(qf);
    ck_assert_int_eq(count_entries(d), 5);
    rm_rf(d);
    free(d);
}
END_TEST

static int n_warn;
static void count_warn(const char *msg, void *ctx)
{
    (void)ctx;
    ck_assert_ptr_nonnull(strstr(msg, "model.layers.1.mlp.gate_proj.weight"));
    n_warn++;
}

START_TEST(e2e_nonfinite)
{
    char *d = mkdtemp_dir();
    struct mini mo = {.tied = true, .poison = "model.layers.1.mlp.gate_proj.weight",
                      .poison_inf = _i == 1};
    write_mini(d, &mo);
    char out[1024], want[1200];
    snprintf(out, sizeof out, "%s/out.qlm", d);
    struct qlm_convert_opts o = opts_for(d, out, QLM_Q4);
    struct qlm_convert_stats st;
    struct qlm_error e = {0};
    ck_assert_int_eq(qlm_convert(&o, &st, &e), QLM_E_NONFINITE);
    snprintf(want, sizeof want,
             "%s/model.safetensors: tensor 'model.layers.1.mlp.gate_proj.weight' has %s at row 5",
             d, _i == 1 ? "Inf" : "NaN");
    ck_assert_str_eq(e.msg, want);
    ck_assert(!exists(out));
    ck_assert_int_eq(count_entries(d), 4); /* no output, no temp file */
    /* --allow-nonfinite: converted, with one warning */
    o.allow_nonfinite = true;
    o.warn = count_warn;
    n_warn = 0;
    ck_assert_msg(qlm_convert(&o, &st, &e) == QLM_OK, "%s", e.msg);
    ck_assert_int_eq(n_warn, 1);
    ck_assert_uint_eq(st.n_fixed, 1);
    struct qlm_file *f = NULL;
    ck_assert_msg(qlm_file_open(&f, out, &e) == QLM_OK, "%s", e.msg);
    const struct qlm_tensor_info *t = qlm_file_tensor(f, "model.layers.1.mlp.gate_proj.weight");
    ck_assert_ptr_nonnull(t);
    float row[64];
    qlm_dequantize_row(t->dtype, t->data, t->dims[0], t->dims[1], t->group, 5, row);
    for (int c = 0; c < 64; c++)
        ck_assert(isfinite(row[c]));
    if (_i == 1)
        ck_assert_float_gt(row[7], 1e4f); /* clamped to a large finite value */
    else
        ck_assert_float_eq(row[7], 0.0f);
    qlm_file_close(f);
    rm_rf(d);
    free(d);
}
END_TEST

START_TEST(e2e_missing_tensor)
{
    char *d = mkdtemp_dir();
    struct mini mo = {.tied = true, .drop = "model.layers.0.self_attn.q_norm.weight"};
    write_mini(d, &mo);
    char out[1024];
    snprintf(out, sizeof out, "%s/out.qlm", d);
    struct qlm_convert_opts o = opts_for(d, out, QLM_Q8);
    struct qlm_convert_stats st;
    struct qlm_error e = {0};
    ck_assert_int_eq(qlm_convert(&o, &st, &e), QLM_E_NOTFOUND);
    ck_assert_msg(strstr(e.msg, "missing tensor 'model.layers.0.self_attn.q_norm.weight'"), "%s",
                  e.msg);
    ck_assert(!exists(out));
    ck_assert_int_eq(count_entries(d), 4);
    rm_rf(d);
    free(d);
}
END_TEST

/* The fixture made by tests/fixtures.sh from qlm-gen-synth --tiny. */
START_TEST(fixture_synth_tiny)
{
    char dir[1024], out[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/synth-tiny", builddir());
    snprintf(out, sizeof out, "%s/tests/fixtures/synth-tiny-q8.qlm", builddir());
    if (!exists(out) || !exists(dir)) {
        fprintf(stderr, "check_convert: %s missing (tests/fixtures.sh makes it); skipped\n", out);
        return;
    }
    struct qlm_error e = {0};
    struct qlm_file *f = NULL;
    ck_assert_msg(qlm_file_open(&f, out, &e) == QLM_OK, "%s", e.msg);
    ck_assert_uint_eq(f->n_tensors, 24);
    const struct qlm_tensor_info *t = qlm_file_tensor(f, "model.embed_tokens.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, QLM_Q8);
    ck_assert_uint_eq(t->dims[0], 151936);
    ck_assert_uint_eq(t->dims[1], 128);
    ck_assert_ptr_null(qlm_file_tensor(f, "lm_head.weight"));
    uint64_t v;
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_VOCAB_SIZE, &v, &e), QLM_OK);
    ck_assert_uint_eq(v, 151936);
    ck_assert_int_eq(qlm_file_meta_u64(f, QLM_KEY_HEAD_DIM, &v, &e), QLM_OK);
    ck_assert_uint_eq(v, 32);
    struct qlm_tokdata tok;
    ck_assert_msg(qlm_file_tokdata(f, &tok, &e) == QLM_OK, "%s", e.msg);
    ck_assert_uint_eq(tok.n_tokens, 151669); /* the real Qwen3 tokenizer */
    qlm_tokdata_free(&tok);
    qlm_file_close(f);
}
END_TEST


/* ---- the program ---------------------------------------------------------- */

/* Run qlm-convert with args; stdout/stderr captured into out/errbuf. */
static int run_prog(const char *const *args, char *out, size_t out_len, char *errb, size_t err_len)
{
    char prog[1024], ofile[64] = "/tmp/check_convert_out.XXXXXX",
                     efile[64] = "/tmp/check_convert_err.XXXXXX";
    snprintf(prog, sizeof prog, "%s/qlm-convert", builddir());
    int ofd = mkstemp(ofile), efd = mkstemp(efile);
    ck_assert(ofd >= 0 && efd >= 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[16] = {prog};
        int n = 1;
        for (; args[n - 1] && n < 15; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        dup2(ofd, 1);
        dup2(efd, 2);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ssize_t k = pread(ofd, out, out_len - 1, 0);
    out[k > 0 ? k : 0] = '\0';
    k = pread(efd, errb, err_len - 1, 0);
    errb[k > 0 ? k : 0] = '\0';
    close(ofd);
    close(efd);
    unlink(ofile);
    unlink(efile);
    ck_assert_msg(WIFEXITED(status), "qlm-convert died of a signal");
    return WEXITSTATUS(status);
}

static bool have_prog(void)
{
    char prog[1024];
    snprintf(prog, sizeof prog, "%s/qlm-convert", builddir());
    if (access(prog, X_OK) == 0)
        return true;
    fprintf(stderr, "check_convert: %s not built; program tests skipped\n", prog);
    return false;
}

START_TEST(cli_help_matches_man)
{
    if (!have_prog())
        return;
    static char out[8192], errb[4096];
    const char *a[] = {"--help", NULL};
    ck_assert_int_eq(run_prog(a, out, sizeof out, errb, sizeof errb), 0);
    ck_assert_str_eq(errb, "");
    char path[1024];
    snprintf(path, sizeof path, "%s/man/qlm-convert.1", srcdir());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char man[65536];
    size_t n = fread(man, 1, sizeof man - 1, f);
    man[n] = '\0';
    fclose(f);
    const char *start = strstr(man, "prints.\n.PP\n.nf\n");
    ck_assert_ptr_nonnull(start);
    start += strlen("prints.\n.PP\n.nf\n");
    const char *end = strstr(start, ".fi\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_uint_eq((size_t)(end - start), strlen(out));
    ck_assert(memcmp(start, out, strlen(out)) == 0);
    const char *v[] = {"--version", NULL};
    ck_assert_int_eq(run_prog(v, out, sizeof out, errb, sizeof errb), 0);
    ck_assert_str_eq(out, "qlm-convert " PACKAGE_VERSION "\n");
}
END_TEST

START_TEST(cli_usage_errors)
{
    if (!have_prog())
        return;
    static char out[4096], errb[4096];
    const char *none[] = {NULL};
    ck_assert_int_eq(run_prog(none, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "qlm-convert: missing MODEL_DIR"));
    const char *no_o[] = {"dir", NULL};
    ck_assert_int_eq(run_prog(no_o, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "missing -o"));
    const char *bad_t[] = {"dir", "-o", "x.qlm", "--type", "q3", NULL};
    ck_assert_int_eq(run_prog(bad_t, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "--type 'q3'"));
    const char *bad_T[] = {"dir", "-o", "x.qlm", "-T", "q3", NULL}; /* --type's letter */
    ck_assert_int_eq(run_prog(bad_T, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "--type 'q3'"));
    const char *bad_g[] = {"dir", "-o", "x.qlm", "--group", "48", NULL};
    ck_assert_int_eq(run_prog(bad_g, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "--group 48: not a multiple of 32"));
    const char *bad_j[] = {"dir", "-o", "x.qlm", "-j", "0", NULL};
    ck_assert_int_eq(run_prog(bad_j, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "qlm-convert: --threads 0: must be between 1 and 1024"));
    const char *bad_t0[] = {"dir", "-o", "x.qlm", "-t", "0", NULL}; /* threads, as elsewhere */
    ck_assert_int_eq(run_prog(bad_t0, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "qlm-convert: --threads 0: must be between 1 and 1024"));
    const char *bad_opt[] = {"dir", "-o", "x.qlm", "--bogus", NULL};
    ck_assert_int_eq(run_prog(bad_opt, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_str_eq(errb, "qlm-convert: unknown option --bogus (see --help)\n");
    const char *twice[] = {"-m", "dir", "dir2", "-o", "x.qlm", NULL};
    ck_assert_int_eq(run_prog(twice, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "unexpected argument 'dir2'"));
    const char *no_arg[] = {"dir", "-o", NULL};
    ck_assert_int_eq(run_prog(no_arg, out, sizeof out, errb, sizeof errb), 2);
    ck_assert_ptr_nonnull(strstr(errb, "needs an argument"));
    ck_assert_str_eq(out, "");
    const char *nodir[] = {"/nonexistent/model", "-o", "/tmp/check_convert_never.qlm", NULL};
    ck_assert_int_eq(run_prog(nodir, out, sizeof out, errb, sizeof errb), 1);
    ck_assert_ptr_nonnull(strstr(errb, "qlm-convert: /nonexistent/model/config.json"));
    ck_assert(!exists("/tmp/check_convert_never.qlm"));
}
END_TEST

START_TEST(cli_existing_output)
{
    if (!have_prog())
        return;
    char *d = mkdtemp_dir();
    struct mini mo = {.tied = true};
    write_mini(d, &mo);
    char outp[1024], want[1200];
    snprintf(outp, sizeof outp, "%s/out.qlm", d);
    FILE *f = fopen(outp, "w");
    fputs("keep", f);
    fclose(f);
    static char out[4096], errb[4096];
    const char *a[] = {d, "-o", outp, NULL};
    ck_assert_int_eq(run_prog(a, out, sizeof out, errb, sizeof errb), 1);
    snprintf(want, sizeof want, "qlm-convert: %s exists; use --force to overwrite\n", outp);
    ck_assert_str_eq(errb, want);
    struct stat st;
    ck_assert_int_eq(stat(outp, &st), 0);
    ck_assert_int_eq(st.st_size, 4);
    const char *b[] = {d, "-o", outp, "--force", "--type", "q4", "-j", "1", NULL};
    ck_assert_int_eq(run_prog(b, out, sizeof out, errb, sizeof errb), 0);
    ck_assert_ptr_nonnull(strstr(errb, "bits/weight")); /* the summary */
    ck_assert_ptr_null(strstr(errb, "\r"));             /* no bar: not a terminal */
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(stat(outp, &st), 0);
    ck_assert_int_gt(st.st_size, 4096);
    const char *c[] = {d, "-o", outp, "--force", "--quiet", NULL};
    ck_assert_int_eq(run_prog(c, out, sizeof out, errb, sizeof errb), 0);
    ck_assert_str_eq(errb, "");
    /* a directory as the output: one message, with or without --force */
    snprintf(want, sizeof want, "qlm-convert: %s: is a directory\n", d);
    const char *dir_out[] = {d, "-o", d, NULL}, *dir_force[] = {d, "-o", d, "-f", NULL};
    ck_assert_int_eq(run_prog(dir_out, out, sizeof out, errb, sizeof errb), 1);
    ck_assert_str_eq(errb, want);
    ck_assert_int_eq(run_prog(dir_force, out, sizeof out, errb, sizeof errb), 1);
    ck_assert_str_eq(errb, want);
    rm_rf(d);
    free(d);
}
END_TEST

/* SIGINT in the middle of a conversion leaves neither output nor temp file. */
START_TEST(cli_sigint_cleans_up)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/synth-tiny", builddir());
    if (!have_prog() || !exists(dir))
        return;
    char *d = mkdtemp_dir();
    char prog[1024], outp[1024];
    snprintf(prog, sizeof prog, "%s/qlm-convert", builddir());
    snprintf(outp, sizeof outp, "%s/out.qlm", d);
    bool interrupted = false;
    /* A few tries with growing delays: the signal must land while the
     * converter runs (it parses the tokenizer, then writes). */
    for (int delay_ms = 150; delay_ms <= 1200 && !interrupted; delay_ms *= 2) {
        unlink(outp);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 2);
            execl(prog, prog, dir, "-o", outp, "-j", "1", "--type", "f32", (char *)NULL);
            _exit(127);
        }
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGINT);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status)) {
            ck_assert_int_eq(WTERMSIG(status), SIGINT);
            interrupted = true;
            ck_assert(!exists(outp));
            ck_assert_int_eq(count_entries(d), 0);
        }
    }
    if (!interrupted)
        fprintf(stderr, "check_convert: conversion too fast to interrupt; SIGINT unchecked\n");
    rm_rf(d);
    free(d);
}
END_TEST

/* ---- --imatrix --------------------------------------------------------------- */

/* Edits of the .imat written for a mini checkpoint. */
struct imat_edit {
    const char *drop;        /* leave this entry out */
    const char *extra;       /* add an entry of this name (64 columns) */
    const char *widen;       /* give this entry 100 columns */
    const char *head;        /* the head's name (default: as the plan names it) */
    const char *arch;        /* default "qwen3" */
    uint32_t n_layers;       /* default 2 */
};

/* An .imat at path for the mini checkpoint mo: its 14 linear weights and
 * the head; column c of entry i holds i + c / 128. */
static void write_mini_imat(const char *path, const struct mini *mo, const struct imat_edit *ed)
{
    static const char *const lin[7] = {
        "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
        "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
        "mlp.down_proj.weight"};
    static char names[16][64];
    static float vals[16][128];
    struct qlm_imat_entry ents[16];
    uint32_t n = 0;
    for (uint32_t i = 0; i < 16; i++) {
        if (i < 14)
            snprintf(names[n], sizeof names[n], "model.layers.%u.%s", i / 7, lin[i % 7]);
        else if (i == 14)
            snprintf(names[n], sizeof names[n], "%s",
                     ed->head ? ed->head : mo->tied ? "model.embed_tokens.weight"
                                                    : "lm_head.weight");
        else if (ed->extra)
            snprintf(names[n], sizeof names[n], "%s", ed->extra);
        else
            break;
        if (ed->drop && strcmp(names[n], ed->drop) == 0)
            continue;
        uint32_t cols = i < 14 && i % 7 == 6 ? 128 : 64;
        if (ed->widen && strcmp(names[n], ed->widen) == 0)
            cols = 100;
        for (uint32_t c = 0; c < cols; c++)
            vals[n][c] = (float)n + (float)c / 128.0f;
        ents[n] = (struct qlm_imat_entry){names[n], cols, 10, vals[n]};
        n++;
    }
    struct qlm_imat im = {.model = {"qwen3", ed->n_layers ? ed->n_layers : 2, 64, 128, 2, 1,
                                    32, 2304},
                          .n_tokens = 10, .n_chunks = 1, .chunk_tokens = 10, .n_entries = n,
                          .entries = ents};
    if (ed->arch)
        snprintf(im.model.arch, sizeof im.model.arch, "%s", ed->arch);
    struct qlm_error e = {0};
    ck_assert_msg(qlm_imat_write(path, &im, true, &e) == QLM_OK, "%s", e.msg);
}

/* qlm_importance_load against a plan of mo, with the .imat edited by ed:
 * QLM_OK or the message (which must name the file) in e. */
static enum qlm_err load_edited(const struct mini *mo, const struct imat_edit *ed,
                                struct qlm_plan *plan, struct qlm_imat **im, struct qlm_error *e)
{
    ck_assert_int_eq(plan_of(mo, QLM_Q4, 32, plan, e), QLM_OK);
    struct qlm_model_params c;
    ck_assert_int_eq(parse("{" BASE_CFG "}", &c, e), QLM_OK);
    c.tied = mo->tied;
    char *d = mkdtemp_dir(), path[1100];
    snprintf(path, sizeof path, "%s/m.imat", d);
    write_mini_imat(path, mo, ed);
    enum qlm_err rc = qlm_importance_load(path, &c, plan, im, e);
    ck_assert(rc == QLM_OK || strstr(e->msg, "/m.imat: ") != NULL);
    rm_rf(d);
    free(d);
    return rc;
}

/* A matching .imat gives each matmul weight its values (a tied head is the
 * embedding) and the norms none; each mismatch is one line naming it. */
START_TEST(imatrix_matches_plan)
{
    const struct mini untied = {.tied = false, .head = 2}, tied = {.tied = true};
    const struct mini *mos[2] = {&untied, &tied};
    for (int k = 0; k < 2; k++) {
        struct qlm_plan plan;
        struct qlm_imat *im;
        struct qlm_error e = {0};
        const struct imat_edit none = {0};
        ck_assert_msg(load_edited(mos[k], &none, &plan, &im, &e) == QLM_OK, "%s", e.msg);
        const struct qlm_plan_item *down = find_item(&plan, "model.layers.1.mlp.down_proj.weight");
        const float *v = qlm_importance_of(im, &plan, down);
        ck_assert_ptr_nonnull(v);
        ck_assert_float_eq(v[127], 13.0f + 127.0f / 128.0f);
        const struct qlm_plan_item *emb = find_item(&plan, "model.embed_tokens.weight");
        const struct qlm_plan_item *head = find_item(&plan, "lm_head.weight");
        ck_assert(k == 0 ? head != NULL : head == NULL);
        v = qlm_importance_of(im, &plan, k == 0 ? head : emb);
        ck_assert(v != NULL && v[0] == 14.0f);
        if (k == 0)
            ck_assert_ptr_null(qlm_importance_of(im, &plan, emb)); /* a lookup, no matmul */
        ck_assert_ptr_null(qlm_importance_of(im, &plan, find_item(&plan, "model.norm.weight")));
        ck_assert_ptr_null(qlm_importance_of(NULL, &plan, down));
        qlm_imat_free(im);
        qlm_plan_free(&plan);
    }
    static const struct { bool tied; struct imat_edit ed; const char *want; } cs[] = {
        {false, {.drop = "model.layers.1.mlp.up_proj.weight"},
         "no entry for 'model.layers.1.mlp.up_proj.weight'"},
        {false, {.widen = "model.layers.0.mlp.down_proj.weight"},
         "entry 'model.layers.0.mlp.down_proj.weight' has 100 columns, the checkpoint's "
         "tensor 128"},
        {false, {.extra = "model.layers.2.mlp.up_proj.weight"},
         "entry 'model.layers.2.mlp.up_proj.weight' is not a matmul weight of the checkpoint"},
        {false, {.extra = "model.layers.0.input_layernorm.weight"},
         "entry 'model.layers.0.input_layernorm.weight' is not a matmul weight"},
        {false, {.head = "model.embed_tokens.weight"}, "no entry for 'lm_head.weight'"},
        {true, {.head = "lm_head.weight"}, "no entry for 'model.embed_tokens.weight'"},
        {false, {.n_layers = 3}, "measured on a model with n_layers 3, the checkpoint has 2"},
        {false, {.arch = "llama"}, "measured on a llama model, the checkpoint is qwen3"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        struct mini mo = {.tied = cs[i].tied, .head = cs[i].tied ? 0 : 2};
        struct qlm_plan plan;
        struct qlm_imat *im = NULL;
        struct qlm_error e = {0};
        ck_assert_int_eq(load_edited(&mo, &cs[i].ed, &plan, &im, &e), QLM_E_INVALID);
        ck_assert_msg(strstr(e.msg, cs[i].want) != NULL, "'%s' lacks '%s'", e.msg, cs[i].want);
        ck_assert_ptr_null(im);
        qlm_plan_free(&plan);
    }
}
END_TEST

/* Today's q8/q4 (and float) encoders take no weights: --imatrix changes no
 * byte of the output; a mismatching or missing .imat leaves no output. */
START_TEST(e2e_imatrix_same_bytes)
{
    static const enum qlm_dtype types[] = {QLM_Q8, QLM_Q4, QLM_F32};
    char *d = mkdtemp_dir();
    struct mini mo = {.tied = false, .head = 2};
    write_mini(d, &mo);
    char imat[1100], a[1100], b[1100];
    snprintf(imat, sizeof imat, "%s/m.imat", d);
    const struct imat_edit none = {0};
    write_mini_imat(imat, &mo, &none);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        snprintf(a, sizeof a, "%s/plain.qlm", d);
        snprintf(b, sizeof b, "%s/imat.qlm", d);
        struct qlm_convert_opts o = opts_for(d, a, types[k]);
        struct qlm_convert_stats st;
        struct qlm_error e = {0};
        ck_assert_msg(qlm_convert(&o, &st, &e) == QLM_OK, "%s", e.msg);
        o.out_path = b;
        o.imatrix = imat;
        ck_assert_msg(qlm_convert(&o, &st, &e) == QLM_OK, "%s", e.msg);
        FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
        int ca, cb;
        long n = 0;
        do {
            ca = fgetc(fa);
            cb = fgetc(fb);
            n++;
        } while (ca == cb && ca != EOF);
        ck_assert_msg(ca == cb, "%s: outputs differ at byte %ld", qlm_dtype_name(types[k]), n);
        ck_assert_int_gt(n, 100000);
        fclose(fa);
        fclose(fb);
        unlink(a);
        unlink(b);
    }
    int before = count_entries(d);
    struct imat_edit wide = {.widen = "model.layers.1.self_attn.o_proj.weight"};
    write_mini_imat(imat, &mo, &wide);
    struct qlm_convert_opts o = opts_for(d, a, QLM_Q4);
    o.imatrix = imat;
    struct qlm_convert_stats st;
    struct qlm_error e = {0};
    ck_assert_int_eq(qlm_convert(&o, &st, &e), QLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "m.imat: entry 'model.layers.1.self_attn.o_proj.weight'"));
    snprintf(imat, sizeof imat, "%s/none.imat", d);
    ck_assert_int_eq(qlm_convert(&o, &st, &e), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "none.imat: No such file"));
    ck_assert_int_eq(count_entries(d), before);
    rm_rf(d);
    free(d);
}
END_TEST

static Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, config_valid);
    tcase_add_test(tc, config_defaults);
    tcase_add_test(tc, config_bad);
    suite_add_tcase(s, tc);
    tc = tcase_create("policy");
    tcase_add_test(tc, policy_types);
    tcase_add_test(tc, plan_q4_tied);
    tcase_add_test(tc, plan_head_equal_bytes_dropped);
    tcase_add_test(tc, plan_head_untied_kept);
    tcase_add_test(tc, plan_errors);
    tcase_add_test(tc, plan_qwen2_biases);
    tcase_add_test(tc, imatrix_matches_plan);
    suite_add_tcase(s, tc);
    tc = tcase_create("end_to_end");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, e2e_each_type, 0, 5);
    tcase_add_test(tc, e2e_refuses_existing_output);
    tcase_add_loop_test(tc, e2e_nonfinite, 0, 2);
    tcase_add_test(tc, e2e_missing_tensor);
    tcase_add_test(tc, fixture_synth_tiny);
    tcase_add_test(tc, e2e_imatrix_same_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("program");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cli_help_matches_man);
    tcase_add_test(tc, cli_usage_errors);
    tcase_add_test(tc, cli_existing_output);
    tcase_add_test(tc, cli_sigint_cleans_up);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(convert_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
