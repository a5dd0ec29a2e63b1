/*
 * inspect_gguf.c — qlm-inspect on a GGUF file: the header, every key with
 * its type and value (long strings and arrays shortened in text), the
 * tensors in file order and the totals, as text or one JSON object; with
 * --verify, whether the tensors qlm-convert reads hold finite values.
 */
#include "config.h"

#include "inspect.h"
#include "qlm_gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_STR_MAX 64    /* bytes of a string value shown in text */
#define TEXT_ARRAY_HEAD 4  /* elements of an array shown in text */
#define JSON_ARRAY_HEAD 8  /* ... and in JSON */

/* ---- text -------------------------------------------------------------------------- */

static void text_string(const struct qlm_gguf_str *s)
{
    putchar('"');
    inspect_escaped(s->ptr, (size_t)(s->len < TEXT_STR_MAX ? s->len : TEXT_STR_MAX));
    putchar('"');
    if (s->len > TEXT_STR_MAX)
        printf("... (%llu bytes)", (unsigned long long)s->len);
}

/* Element i of kv in text. */
static void text_elem(const struct qlm_gguf_kv *kv, uint64_t i)
{
    switch (kv->elem) {
    case QLM_GGUF_STRING: text_string(&kv->strs[i]); break;
    case QLM_GGUF_F32: printf("%.9g", qlm_gguf_real_at(kv, i)); break;
    case QLM_GGUF_F64: printf("%.17g", qlm_gguf_real_at(kv, i)); break;
    case QLM_GGUF_BOOL: printf("%s", kv->data[i] ? "true" : "false"); break;
    case QLM_GGUF_U64: printf("%llu", (unsigned long long)qlm_gguf_int_at(kv, i)); break;
    default: printf("%lld", (long long)qlm_gguf_int_at(kv, i)); break;
    }
}

void inspect_gguf_text(const struct qlm_gguf *g)
{
    printf("file: %s\n", g->path);
    printf("format: GGUF %u, %llu bytes (%.2f MiB), alignment %u, data at %llu\n", g->version,
           (unsigned long long)g->size, (double)g->size / 1048576.0, g->alignment,
           (unsigned long long)g->data_offset);
    printf("\nmetadata (%llu keys):\n", (unsigned long long)g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct qlm_gguf_kv *kv = &g->kv[i];
        printf("  %-40s ", kv->key);
        if (kv->type == QLM_GGUF_ARRAY) {
            printf("array[%llu] of %s:", (unsigned long long)kv->n,
                   qlm_gguf_vtype_name(kv->elem));
            for (uint64_t k = 0; k < kv->n && k < TEXT_ARRAY_HEAD; k++) {
                printf(k ? ", " : " ");
                text_elem(kv, k);
            }
            printf("%s\n", kv->n > TEXT_ARRAY_HEAD ? ", ..." : "");
        } else {
            printf("%s ", qlm_gguf_vtype_name(kv->type));
            text_elem(kv, 0);
            putchar('\n');
        }
    }
    printf("\ntensors (%llu):\n", (unsigned long long)g->n_tensors);
    size_t w = 4;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strlen(g->tensors[i].name) > w)
            w = strlen(g->tensors[i].name);
    printf("  %-*s %-7s %-26s %12s %12s %6s\n", (int)w, "name", "type", "ne (innermost first)",
           "offset", "bytes", "bpw");
    uint64_t params = 0, bytes = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct qlm_gguf_tensor *t = &g->tensors[i];
        char ne[128];
        inspect_dims(t->ne, t->n_dims, ne, sizeof ne);
        params += t->numel;
        bytes += t->size;
        printf("  %-*s %-7s %-26s %12llu %12llu %6.3f\n", (int)w, t->name,
               qlm_ggml_type_name(t->type), ne, (unsigned long long)t->offset,
               (unsigned long long)t->size, inspect_bpw(t->size, t->numel));
    }
    printf("\ntotal: %llu parameters, %llu bytes (%.2f MiB), %.3f bits per weight\n",
           (unsigned long long)params, (unsigned long long)bytes, (double)bytes / 1048576.0,
           inspect_bpw(bytes, params));
}

/* ---- JSON ------------------------------------------------------------------------------ */

static json_t *json_elem(const struct qlm_gguf_kv *kv, uint64_t i)
{
    switch (kv->elem) {
    case QLM_GGUF_STRING: return inspect_jstr(kv->strs[i].ptr, (size_t)kv->strs[i].len);
    case QLM_GGUF_F32:
    case QLM_GGUF_F64: {
        json_t *v = json_real(qlm_gguf_real_at(kv, i)); /* NULL for NaN/Inf */
        return v ? v : json_null();
    }
    case QLM_GGUF_BOOL: return json_boolean(kv->data[i] != 0);
    default: return json_integer((json_int_t)qlm_gguf_int_at(kv, i));
    }
}

json_t *inspect_gguf_json(const struct qlm_gguf *g, bool verified)
{
    json_t *root = json_object(), *meta = json_object(), *tensors = json_array();
    json_object_set_new(root, "file", inspect_jstr(g->path, strlen(g->path)));
    json_object_set_new(root, "format", json_string("gguf"));
    json_object_set_new(root, "version", json_integer(g->version));
    json_object_set_new(root, "size", json_integer((json_int_t)g->size));
    json_object_set_new(root, "alignment", json_integer(g->alignment));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)g->data_offset));
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct qlm_gguf_kv *kv = &g->kv[i];
        json_t *v;
        if (kv->type == QLM_GGUF_ARRAY) {
            json_t *head = json_array();
            for (uint64_t k = 0; k < kv->n && k < JSON_ARRAY_HEAD; k++)
                json_array_append_new(head, json_elem(kv, k));
            v = json_object();
            json_object_set_new(v, "array", json_string(qlm_gguf_vtype_name(kv->elem)));
            json_object_set_new(v, "n", json_integer((json_int_t)kv->n));
            json_object_set_new(v, "head", head);
        } else {
            v = json_elem(kv, 0);
        }
        json_object_set_new(meta, kv->key, v);
    }
    json_object_set_new(root, "metadata", meta);
    uint64_t params = 0, bytes = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct qlm_gguf_tensor *t = &g->tensors[i];
        json_t *o = json_object(), *ne = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++)
            json_array_append_new(ne, json_integer((json_int_t)t->ne[d]));
        params += t->numel;
        bytes += t->size;
        json_object_set_new(o, "name", inspect_jstr(t->name, strlen(t->name)));
        json_object_set_new(o, "type", json_string(qlm_ggml_type_name(t->type)));
        json_object_set_new(o, "ne", ne);
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        json_object_set_new(o, "bytes", json_integer((json_int_t)t->size));
        json_object_set_new(o, "bpw", json_real(inspect_bpw(t->size, t->numel)));
        json_array_append_new(tensors, o);
    }
    json_object_set_new(root, "tensors", tensors);
    json_t *tot = json_object();
    json_object_set_new(tot, "n_tensors", json_integer((json_int_t)g->n_tensors));
    json_object_set_new(tot, "params", json_integer((json_int_t)params));
    json_object_set_new(tot, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(tot, "bpw", json_real(inspect_bpw(bytes, params)));
    json_object_set_new(root, "totals", tot);
    json_object_set_new(root, "verified", json_boolean(verified));
    return root;
}

/* ---- --verify ------------------------------------------------------------------------------ */

/* Every row of every tensor qlm-convert decodes, widened and checked. */
enum qlm_err inspect_gguf_verify(const struct qlm_gguf *g,
                                 void (*progress)(uint64_t done, uint64_t total, void *ctx),
                                 void *ctx, struct qlm_error *err)
{
    const char **names = malloc(((size_t)g->n_tensors + 1) * sizeof *names);
    struct qlm_st_model *m = NULL;
    if (!names)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        names[i] = g->tensors[i].name;
    enum qlm_err rc = qlm_gguf_st_view(g, names, &m, err);
    free(names);
    if (rc != QLM_OK)
        return rc;
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        total += m->tensors[i].dtype != QLM_ST_OTHER ? m->tensors[i].size : 0;
    float *row = NULL;
    for (size_t i = 0; i < m->n_tensors && rc == QLM_OK; i++) {
        const struct qlm_st_tensor *t = &m->tensors[i];
        uint64_t cols = t->n_dims ? t->dims[t->n_dims - 1] : 1;
        if (t->dtype == QLM_ST_OTHER || cols == 0)
            continue;
        float *r = realloc(row, (size_t)cols * sizeof *row);
        if (!r) {
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", g->path);
            break;
        }
        row = r;
        for (uint64_t k = 0; k < t->numel / cols && rc == QLM_OK; k++) {
            qlm_st_to_f32(t, k * cols, cols, row);
            for (uint64_t c = 0; c < cols && rc == QLM_OK; c++)
                if (!isfinite(row[c]))
                    rc = qlm_error_set(err, QLM_E_NONFINITE, "%s: tensor '%s' has %s at row %llu",
                                       g->path, t->name, isnan(row[c]) ? "NaN" : "Inf",
                                       (unsigned long long)k);
        }
        qlm_st_release(m, t);
        done += t->size;
        if (progress)
            progress(done, total, ctx);
    }
    free(row);
    qlm_st_close(m);
    return rc;
}
