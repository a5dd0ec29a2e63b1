/*
 * inspect_main.c — qlm-inspect: what a .qlm holds (header, metadata,
 * tokenizer, tensor directory, totals), optionally verifying every tensor
 * checksum, as text or as one JSON object.
 */
#include "config.h"

#include "cli.h"
#include "qlm_format.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char HELP[] =
    "Usage: qlm-inspect FILE.qlm [OPTIONS]\n"
    "Show what a .qlm file holds: format version and size, every metadata key,\n"
    "a tokenizer summary, the tensor directory (name, dtype, shape, group,\n"
    "offset, bytes, bits per weight) and totals.\n"
    "\n"
    "  -m, --model FILE  FILE.qlm given as an option\n"
    "      --verify      recompute every tensor's XXH3-64 checksum; exit 1 at the\n"
    "                    first mismatch\n"
    "      --json        print one JSON object on stdout instead of text\n"
    "  -h, --help        show this help and exit\n"
    "  -V, --version     show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if the file is unreadable, invalid or fails\n"
    "verification, 2 on a usage error.\n";

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t tensor_numel(const struct qlm_tensor_info *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->dims[d]; /* validated at open: the byte size fits, so this does */
    return n;
}

static double bpw(uint64_t bytes, uint64_t numel)
{
    return numel ? 8.0 * (double)bytes / (double)numel : 0.0;
}

static void shape_str(const struct qlm_tensor_info *t, char *out, size_t n)
{
    size_t k = 0;
    out[0] = 0;
    for (int d = 0; d < t->n_dims && k < n; d++)
        k += (size_t)snprintf(out + k, n - k, "%s%llu", d ? " x " : "",
                              (unsigned long long)t->dims[d]);
}

/* Print bytes, escaping what a terminal should not see. */
static void put_escaped(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf(c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\x%02x", c);
        else
            putchar(c);
    }
}

static int cmp_offset(const void *a, const void *b)
{
    const struct qlm_tensor_info *x = *(const struct qlm_tensor_info *const *)a;
    const struct qlm_tensor_info *y = *(const struct qlm_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

struct tok_summary {
    bool present;
    uint32_t n_added, n_special;
    struct qlm_tokdata td;
};

static void flags_str(uint32_t f, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s%s", f & QLM_TOKF_NFC ? "nfc " : "",
             f & QLM_TOKF_ADD_BOS ? "add-bos " : "", f & QLM_TOKF_BYTE_LEVEL ? "byte-level " : "",
             f ? "" : "none");
    size_t l = strlen(out);
    if (l && out[l - 1] == ' ')
        out[l - 1] = 0;
}

/* ---- text --------------------------------------------------------------------- */

static void print_text(const struct qlm_file *f, const struct tok_summary *ts,
                       const struct qlm_tensor_info **order, bool verified)
{
    printf("file: %s\n", f->path);
    printf("format: %u.%u, %llu bytes (%.2f MiB), data at %llu\n", f->version_major,
           f->version_minor, (unsigned long long)f->size, (double)f->size / 1048576.0,
           (unsigned long long)f->data_offset);
    printf("\nmetadata (%u keys):\n", f->n_meta);
    for (uint32_t i = 0; i < f->n_meta; i++) {
        const struct qlm_meta_entry *e = &f->meta[i];
        printf("  %-24s ", e->key);
        switch (e->type) {
        case QLM_META_U64: printf("u64 %llu\n", (unsigned long long)e->v.u64); break;
        case QLM_META_I64: printf("i64 %lld\n", (long long)e->v.i64); break;
        case QLM_META_F64: printf("f64 %.17g\n", e->v.f64); break;
        case QLM_META_STR:
            printf("str \"");
            put_escaped(e->v.str.ptr, e->v.str.len);
            printf("\"\n");
            break;
        }
    }
    printf("\ntokenizer:");
    if (!ts->present) {
        printf(" none\n");
    } else {
        const struct qlm_tokdata *t = &ts->td;
        char fl[64];
        flags_str(t->flags, fl, sizeof fl);
        printf(" %u tokens (%u added, %u special), %u merges, %llu -> %llu bytes zlib\n",
               t->n_tokens, ts->n_added, ts->n_special, t->n_merges,
               (unsigned long long)f->tok_raw_size, (unsigned long long)f->tok_size);
        printf("  eos:");
        for (uint32_t i = 0; i < t->n_eos; i++) {
            const struct qlm_token *k = &t->tokens[t->eos[i]];
            printf(" %u \"", t->eos[i]);
            put_escaped((const char *)k->bytes, k->len);
            printf("\"");
        }
        printf("%s\n  bos: %d, pad: %d, flags: %s\n", t->n_eos ? "" : " none", t->bos_id,
               t->pad_id, fl);
        printf("  regex: \"");
        put_escaped(t->regex, strlen(t->regex));
        printf("\"\n  chat template: %zu bytes\n", strlen(t->chat_template));
    }
    printf("\ntensors (%u):\n", f->n_tensors);
    size_t w = 4;
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (strlen(order[i]->name) > w)
            w = strlen(order[i]->name);
    printf("  %-*s %-5s %-22s %5s %12s %12s %6s\n", (int)w, "name", "dtype", "shape", "group",
           "offset", "bytes", "bpw");
    uint64_t params = 0, bytes = 0;
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const struct qlm_tensor_info *t = order[i];
        char sh[96];
        shape_str(t, sh, sizeof sh);
        uint64_t n = tensor_numel(t);
        params += n;
        bytes += t->size;
        printf("  %-*s %-5s %-22s %5u %12llu %12llu %6.3f\n", (int)w, t->name,
               qlm_dtype_name(t->dtype), sh, t->group, (unsigned long long)t->offset,
               (unsigned long long)t->size, bpw(t->size, n));
    }
    printf("\ntotal: %llu parameters, %llu bytes (%.2f MiB), %.3f bits per weight\n",
           (unsigned long long)params, (unsigned long long)bytes, (double)bytes / 1048576.0,
           bpw(bytes, params));
    if (verified)
        printf("verify: all %u tensor checksums match\n", f->n_tensors);
}

/* ---- JSON ----------------------------------------------------------------------- */

/* A JSON string, or null if the bytes are not UTF-8 (JSON cannot hold them). */
static json_t *jstr(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    return v ? v : json_null();
}

static json_t *build_json(const struct qlm_file *f, const struct tok_summary *ts,
                          const struct qlm_tensor_info **order, bool verified)
{
    json_t *root = json_object(), *meta = json_object(), *tensors = json_array();
    json_object_set_new(root, "file", jstr(f->path, strlen(f->path)));
    char buf[64];
    snprintf(buf, sizeof buf, "%u.%u", f->version_major, f->version_minor);
    json_object_set_new(root, "version", json_string(buf));
    json_object_set_new(root, "size", json_integer((json_int_t)f->size));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)f->data_offset));
    for (uint32_t i = 0; i < f->n_meta; i++) {
        const struct qlm_meta_entry *e = &f->meta[i];
        json_t *v;
        switch (e->type) {
        case QLM_META_U64:
            v = e->v.u64 <= (uint64_t)INT64_MAX ? json_integer((json_int_t)e->v.u64)
                                                : json_real((double)e->v.u64);
            break;
        case QLM_META_I64: v = json_integer((json_int_t)e->v.i64); break;
        case QLM_META_F64: v = json_real(e->v.f64); break; /* NULL for NaN/Inf */
        default: v = jstr(e->v.str.ptr, e->v.str.len); break;
        }
        json_object_set_new(meta, e->key, v ? v : json_null());
    }
    json_object_set_new(root, "metadata", meta);
    if (ts->present) {
        const struct qlm_tokdata *t = &ts->td;
        json_t *tok = json_object(), *eos = json_array();
        for (uint32_t i = 0; i < t->n_eos; i++)
            json_array_append_new(eos, json_integer(t->eos[i]));
        json_object_set_new(tok, "n_tokens", json_integer(t->n_tokens));
        json_object_set_new(tok, "n_merges", json_integer(t->n_merges));
        json_object_set_new(tok, "n_added", json_integer(ts->n_added));
        json_object_set_new(tok, "n_special", json_integer(ts->n_special));
        json_object_set_new(tok, "eos", eos);
        json_object_set_new(tok, "bos", json_integer(t->bos_id));
        json_object_set_new(tok, "pad", json_integer(t->pad_id));
        json_object_set_new(tok, "flags", json_integer(t->flags));
        json_object_set_new(tok, "regex", jstr(t->regex, strlen(t->regex)));
        json_object_set_new(tok, "chat_template_bytes",
                            json_integer((json_int_t)strlen(t->chat_template)));
        json_object_set_new(tok, "compressed_bytes", json_integer((json_int_t)f->tok_size));
        json_object_set_new(tok, "raw_bytes", json_integer((json_int_t)f->tok_raw_size));
        json_object_set_new(root, "tokenizer", tok);
    } else {
        json_object_set_new(root, "tokenizer", json_null());
    }
    uint64_t params = 0, bytes = 0;
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const struct qlm_tensor_info *t = order[i];
        json_t *o = json_object(), *shape = json_array();
        for (int d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->dims[d]));
        uint64_t n = tensor_numel(t);
        params += n;
        bytes += t->size;
        json_object_set_new(o, "name", jstr(t->name, strlen(t->name)));
        json_object_set_new(o, "dtype", json_string(qlm_dtype_name(t->dtype)));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "group", json_integer(t->group));
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        json_object_set_new(o, "bytes", json_integer((json_int_t)t->size));
        json_object_set_new(o, "bpw", json_real(bpw(t->size, n)));
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)t->xxh3);
        json_object_set_new(o, "xxh3", json_string(buf));
        json_array_append_new(tensors, o);
    }
    json_object_set_new(root, "tensors", tensors);
    json_t *tot = json_object();
    json_object_set_new(tot, "n_tensors", json_integer(f->n_tensors));
    json_object_set_new(tot, "params", json_integer((json_int_t)params));
    json_object_set_new(tot, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(tot, "bpw", json_real(bpw(bytes, params)));
    json_object_set_new(root, "totals", tot);
    json_object_set_new(root, "verified", json_boolean(verified));
    return root;
}

/* ---- main ------------------------------------------------------------------------ */

/* QLM_CLI_CONTINUE, or the status to exit with. */
static int parse_args(int argc, char **argv, struct qlm_cli_common *co, bool *verify)
{
    enum { OPT_VERIFY = 256 };
    static const struct option opts[] = {
        QLM_CLI_LONG_MODEL, {"verify", no_argument, NULL, OPT_VERIFY},
        QLM_CLI_LONG_JSON,  QLM_CLI_LONG_STD,
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:hV", opts, NULL)) != -1) {
        int st = c == OPT_VERIFY ? (*verify = true, QLM_CLI_CONTINUE)
                                 : qlm_cli_option(c, optarg, argv, co);
        if (st != QLM_CLI_CONTINUE)
            return st;
    }
    return qlm_cli_take_model(argc, argv, "FILE.qlm", co);
}

/* Token counts by kind; the tokenizer section is optional. */
static int read_tokdata(const struct qlm_file *f, struct tok_summary *ts)
{
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_file_tokdata(f, &ts->td, &err);
    if (rc == QLM_E_NOTFOUND)
        return 0;
    if (rc != QLM_OK)
        return qlm_cli_fail("%s", err.msg);
    ts->present = true;
    for (uint32_t i = 0; i < ts->td.n_tokens; i++) {
        ts->n_added += ts->td.tokens[i].kind == QLM_TOK_ADDED;
        ts->n_special += ts->td.tokens[i].kind == QLM_TOK_SPECIAL;
    }
    return 0;
}

static int print(const struct qlm_file *f, const struct tok_summary *ts, bool verified,
                 bool as_json)
{
    const struct qlm_tensor_info **order = malloc((f->n_tensors + 1) * sizeof *order);
    if (!order)
        return qlm_cli_fail("%s: out of memory", f->path);
    for (uint32_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, cmp_offset); /* file order */
    int status = 0;
    if (as_json) {
        json_t *root = build_json(f, ts, order, verified);
        if (!root || json_dumpf(root, stdout, JSON_INDENT(2)) != 0)
            status = qlm_cli_fail("%s: cannot build JSON", f->path);
        putchar('\n');
        json_decref(root);
    } else {
        print_text(f, ts, order, verified);
    }
    free(order);
    return status ? status : qlm_cli_flush_stdout();
}

int main(int argc, char **argv)
{
    qlm_cli_init("qlm-inspect", HELP);
    struct qlm_cli_common co = QLM_CLI_COMMON_INIT;
    bool verify = false;
    int status = parse_args(argc, argv, &co, &verify);
    if (status != QLM_CLI_CONTINUE)
        return status;
    const char *path = co.model;
    bool as_json = co.json;
    struct qlm_error err = {0};
    struct qlm_file *f = NULL;
    qlm_cli_catch_sigbus(path, "the file");
    if (qlm_file_open(&f, path, &err) != QLM_OK)
        return qlm_cli_fail("%s", err.msg);
    status = 0;
    if (verify) {
        struct qlm_cli_progress pb;
        qlm_cli_progress_begin(&pb, "verify");
        enum qlm_err rc = qlm_file_verify(f, qlm_cli_progress_cb, &pb, &err);
        qlm_cli_progress_end(&pb);
        if (rc != QLM_OK)
            status = qlm_cli_fail("%s", err.msg);
    }
    struct tok_summary ts = {0};
    if (status == 0)
        status = read_tokdata(f, &ts);
    if (status == 0)
        status = print(f, &ts, verify, as_json);
    qlm_tokdata_free(&ts.td);
    qlm_file_close(f);
    return status;
}
