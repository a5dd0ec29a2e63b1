/* check_schema.c — the model schema (schema/): architecture names, tensor
 * roles, the tensor table in file order for each architecture, the one
 * shape check, and the hyper-parameters through the .qlm metadata. */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qlm_schema.h"

/* Zeroed first, padding included: meta_roundtrip compares whole structs. */
static struct qlm_model_params params(enum qlm_arch arch)
{
    struct qlm_model_params p;
    memset(&p, 0, sizeof p);
    p.arch = arch;
    p.hidden = 256;
    p.ffn_hidden = 768;
    p.n_layers = 4;
    p.n_heads = 4;
    p.n_kv_heads = 2;
    p.head_dim = 64;
    p.vocab_size = 2304;
    p.max_pos = 1024;
    p.rms_eps = 1e-6;
    p.rope_theta = 10000.0;
    p.tied = true;
    p.qk_norm = arch == QLM_ARCH_QWEN3;
    p.qkv_bias = arch == QLM_ARCH_QWEN2;
    return p;
}

START_TEST(arch_names)
{
    for (int a = 0; a < QLM_ARCH_COUNT; a++)
        ck_assert_int_eq(qlm_arch_from_name(qlm_arch_name((enum qlm_arch)a)), a);
    ck_assert_str_eq(qlm_arch_name(QLM_ARCH_QWEN3), "qwen3");
    ck_assert_str_eq(qlm_arch_name(QLM_ARCH_COUNT), "?");
    ck_assert_int_eq(qlm_arch_from_name("mistral"), -1);
    ck_assert_int_eq(qlm_arch_from_name(NULL), -1);
}
END_TEST

START_TEST(roles)
{
    ck_assert_int_eq(qlm_schema_role("model.embed_tokens.weight"), QLM_ROLE_EMBED);
    ck_assert_int_eq(qlm_schema_role("lm_head.weight"), QLM_ROLE_HEAD);
    ck_assert_int_eq(qlm_schema_role("model.layers.3.mlp.down_proj.weight"), QLM_ROLE_LINEAR);
    ck_assert_int_eq(qlm_schema_role("model.layers.3.self_attn.q_norm.weight"), QLM_ROLE_NORM);
    ck_assert_int_eq(qlm_schema_role("model.layers.0.input_layernorm.weight"), QLM_ROLE_NORM);
    ck_assert_int_eq(qlm_schema_role("model.norm.weight"), QLM_ROLE_NORM);
    ck_assert_int_eq(qlm_schema_role("model.layers.0.self_attn.q_proj.bias"), QLM_ROLE_BIAS);
    ck_assert_int_eq(qlm_schema_role("model.layers.0.self_attn.rotary_emb.inv_freq"),
                     QLM_ROLE_SKIP);
    ck_assert_int_eq(qlm_schema_role("model.foo"), QLM_ROLE_UNKNOWN);
}
END_TEST

/* Count, order and shapes of the tensors of each architecture. */
START_TEST(tensor_table)
{
    struct { enum qlm_arch arch; bool tied; size_t n; } cases[] = {
        {QLM_ARCH_QWEN3, true, 1 + 4 * 11 + 1},  /* + q/k norm per layer */
        {QLM_ARCH_QWEN3, false, 1 + 4 * 11 + 2}, /* + lm_head */
        {QLM_ARCH_QWEN2, true, 1 + 4 * 12 + 1},  /* + 3 biases per layer */
        {QLM_ARCH_LLAMA, true, 1 + 4 * 9 + 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct qlm_model_params p = params(cases[c].arch);
        p.tied = cases[c].tied;
        struct qlm_schema_tensor t, last;
        size_t pos = 0, n = 0;
        bool seen_kind[QLM_T_COUNT] = {false};
        while (qlm_schema_next(&p, &pos, &t)) {
            if (n == 0) {
                ck_assert_int_eq(t.kind, QLM_T_EMBED);
                ck_assert_str_eq(t.name, "model.embed_tokens.weight");
                ck_assert_int_eq(t.n_dims, 2);
                ck_assert_uint_eq(t.dims[0], 2304);
                ck_assert_uint_eq(t.dims[1], 256);
            }
            if (n == 1)
                ck_assert_str_eq(t.name, "model.layers.0.input_layernorm.weight");
            if (t.kind == QLM_T_WO) {
                ck_assert_uint_eq(t.dims[0], 256);
                ck_assert_uint_eq(t.dims[1], 4 * 64);
            }
            if (t.kind == QLM_T_WK) {
                ck_assert_uint_eq(t.dims[0], 2 * 64);
                ck_assert_uint_eq(t.dims[1], 256);
            }
            if (t.kind == QLM_T_BV)
                ck_assert(t.n_dims == 1 && t.dims[0] == 128);
            ck_assert_int_eq(t.role, qlm_schema_role(t.name));
            ck_assert_int_eq(t.layer >= 0, strncmp(t.name, "model.layers.", 13) == 0);
            seen_kind[t.kind] = true;
            last = t;
            n++;
        }
        ck_assert_uint_eq(n, cases[c].n);
        ck_assert_str_eq(last.name, p.tied ? "model.norm.weight" : "lm_head.weight");
        ck_assert_int_eq(seen_kind[QLM_T_Q_NORM], p.qk_norm);
        ck_assert_int_eq(seen_kind[QLM_T_BQ], p.qkv_bias);
        ck_assert(!qlm_schema_next(&p, &pos, &t)); /* stays at the end */
    }
}
END_TEST

START_TEST(shape_check)
{
    struct qlm_model_params p = params(QLM_ARCH_QWEN3);
    struct qlm_schema_tensor t;
    size_t pos = 0;
    qlm_schema_next(&p, &pos, &t);
    struct qlm_error err = {0};
    uint64_t good[2] = {2304, 256}, bad[3] = {2304, 255, 1};
    ck_assert_int_eq(qlm_schema_check_shape("m.qlm", &t, 2, good, &err), QLM_OK);
    ck_assert_int_eq(qlm_schema_check_shape("m.qlm", &t, 2, bad, &err), QLM_E_FORMAT);
    ck_assert_str_eq(err.msg, "m.qlm: tensor 'model.embed_tokens.weight' has shape [2304, 255], "
                              "expected [2304, 256]");
    ck_assert_int_eq(qlm_schema_check_shape("m.qlm", &t, 3, bad, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "[2304, 255, 1]"));
    ck_assert_int_eq(qlm_schema_check_shape("d", &t, 0, NULL, &err), QLM_E_NOTFOUND);
    ck_assert_str_eq(err.msg, "d: missing tensor 'model.embed_tokens.weight'");
}
END_TEST

static char path[64];

static struct qlm_file *write_meta(const struct qlm_model_params *p, const char *extra_key,
                                   uint64_t extra)
{
    snprintf(path, sizeof path, "/tmp/check_schema.%ld.qlm", (long)getpid());
    struct qlm_writer *w;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_writer_open(&w, path, true, &err), QLM_OK);
    ck_assert_int_eq(qlm_schema_write_meta(w, p), QLM_OK);
    if (extra_key)
        ck_assert_int_eq(qlm_writer_meta_u64(w, extra_key, extra), QLM_OK);
    ck_assert_int_eq(qlm_writer_finish(w, &err), QLM_OK);
    qlm_writer_abort(w);
    struct qlm_file *f;
    ck_assert_int_eq(qlm_file_open(&f, path, &err), QLM_OK);
    return f;
}

START_TEST(meta_roundtrip)
{
    for (int a = 0; a < QLM_ARCH_COUNT; a++) {
        struct qlm_model_params p = params((enum qlm_arch)a), q;
        p.tied = a != QLM_ARCH_QWEN2;
        struct qlm_file *f = write_meta(&p, NULL, 0);
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_schema_read_meta(f, &q, &err), QLM_OK);
        ck_assert_int_eq(memcmp(&p, &q, sizeof p), 0);
        qlm_file_close(f);
    }
    unlink(path);
}
END_TEST

START_TEST(meta_refused)
{
    struct qlm_model_params p = params(QLM_ARCH_QWEN3), q;
    struct qlm_error err = {0};
    p.n_layers = 0;
    struct qlm_file *f = write_meta(&p, NULL, 0);
    ck_assert_int_eq(qlm_schema_read_meta(f, &q, &err), QLM_E_RANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "metadata 'model.n_layers' = 0 out of range"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    qlm_file_close(f);
    p = params(QLM_ARCH_QWEN3);
    p.n_kv_heads = 3;
    f = write_meta(&p, NULL, 0);
    ck_assert_int_eq(qlm_schema_read_meta(f, &q, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'model.n_heads' = 4 is not a multiple of "
                                          "'model.n_kv_heads' = 3"));
    qlm_file_close(f);
    p = params(QLM_ARCH_QWEN3);
    p.rope_theta = 1e300;
    f = write_meta(&p, NULL, 0);
    ck_assert_int_eq(qlm_schema_read_meta(f, &q, &err), QLM_E_RANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "'model.rope_theta'"));
    qlm_file_close(f);
    unlink(path);
}
END_TEST

/* The one validation names the field as its source spells it. */
START_TEST(check_ranges)
{
    struct qlm_error err = {0};
    struct qlm_model_params p = params(QLM_ARCH_QWEN3);
    ck_assert_int_eq(qlm_schema_check(&p, "c.json", QLM_SCHEMA_CONFIG, &err), QLM_OK);
    struct { const char *field, *config, *meta; } cases[] = {
        {"rope_theta_small", "key 'rope_theta' = 1e-300 out of range", "'model.rope_theta'"},
        {"rope_theta_large", "key 'rope_theta' = 1e+308 out of range", "'model.rope_theta'"},
        {"max_pos", "key 'max_position_embeddings' = 2147483647 out of range", "'model.max_pos'"},
        {"eps", "key 'rms_norm_eps' = 9.99989e-321 out of range", "'model.rms_eps'"},
        {"odd_head", "key 'head_dim' = 63 is odd", "'model.head_dim' = 63 is odd"},
        {"layers", "key 'num_hidden_layers' = 1025 out of range [1, 1024]", "'model.n_layers'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = params(QLM_ARCH_QWEN3);
        switch (i) {
        case 0: p.rope_theta = 1e-300; break;
        case 1: p.rope_theta = 1e308; break;
        case 2: p.max_pos = 2147483647; break;
        case 3: p.rms_eps = 1e-320; break;
        case 4: p.head_dim = 63; break;
        default: p.n_layers = 1025; break;
        }
        ck_assert_int_ne(qlm_schema_check(&p, "c.json", QLM_SCHEMA_CONFIG, &err), QLM_OK);
        ck_assert_msg(strstr(err.msg, cases[i].config) && strncmp(err.msg, "c.json: ", 8) == 0,
                      "%s: %s", cases[i].field, err.msg);
        ck_assert_int_ne(qlm_schema_check(&p, "m.qlm", QLM_SCHEMA_META, &err), QLM_OK);
        ck_assert_msg(strstr(err.msg, cases[i].meta) && strstr(err.msg, "metadata"), "%s: %s",
                      cases[i].field, err.msg);
    }
}
END_TEST

START_TEST(regex_compiled)
{
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_schema_regex("\\p{L}+|\\s+", "t.json", NULL, &err), QLM_OK);
    ck_assert_int_eq(qlm_schema_regex("(unclosed", "t.json", NULL, &err), QLM_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "t.json: tokenizer regex: "));
    char *big = malloc(QLM_SCHEMA_REGEX_MAX + 2);
    memset(big, 'a', QLM_SCHEMA_REGEX_MAX + 1);
    big[QLM_SCHEMA_REGEX_MAX + 1] = 0;
    ck_assert_int_eq(qlm_schema_regex(big, "t.json", NULL, &err), QLM_E_RANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
    free(big);
}
END_TEST

static Suite *schema_suite(void)
{
    Suite *s = suite_create("schema");
    TCase *c = tcase_create("schema");
    tcase_add_test(c, arch_names);
    tcase_add_test(c, roles);
    tcase_add_test(c, tensor_table);
    tcase_add_test(c, shape_check);
    tcase_add_test(c, meta_roundtrip);
    tcase_add_test(c, meta_refused);
    tcase_add_test(c, check_ranges);
    tcase_add_test(c, regex_compiled);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(schema_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
