/*
 * hf_pipeline.c — the parts of a tokenizer.json around its model that qlm
 * executes or refuses: normalizer, pre_tokenizer (and its split regex,
 * compiled as the runtime compiles it), decoder and post_processor.
 */
#include "hf_pipeline.h"
#include "hf_tokenizer.h"
#include "qlm_schema.h"

#include <stdlib.h>
#include <string.h>

struct pctx {
    const char *name;
    struct qlm_error *err;
    uint32_t flags;
    char *regex;
    int32_t post_bos;
};

static enum qlm_err fmt_err(struct pctx *b, const char *fmt, const char *what)
{
    return qlm_error_set(b->err, QLM_E_FORMAT, fmt, b->name, what);
}

bool qlm_hf_get_id(json_t *v, uint32_t *id)
{
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= (json_int_t)QLM_HF_MAX_TOKENS)
        return false;
    *id = (uint32_t)x;
    return true;
}

static bool type_is(json_t *o, const char *type)
{
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) && strcmp(json_string_value(t), type) == 0;
}

static const char *type_of(json_t *o)
{
    json_t *t = json_is_object(o) ? json_object_get(o, "type") : NULL;
    return json_is_string(t) ? json_string_value(t) : "(no type)";
}

static enum qlm_err check_normalizer(struct pctx *b, json_t *norm)
{
    if (!norm || json_is_null(norm))
        return QLM_OK;
    if (type_is(norm, "NFC")) {
        b->flags |= QLM_TOKF_NFC;
        return QLM_OK;
    }
    if (type_is(norm, "Sequence")) {
        json_t *list = json_object_get(norm, "normalizers");
        size_t i;
        json_t *n;
        if (!json_is_array(list))
            return fmt_err(b, "%s: normalizer Sequence has no \"normalizers\" array%s", "");
        json_array_foreach(list, i, n) {
            if (!type_is(n, "NFC"))
                return fmt_err(b, "%s: normalizer %s is not supported (only NFC)", type_of(n));
            b->flags |= QLM_TOKF_NFC;
        }
        return QLM_OK;
    }
    return fmt_err(b, "%s: normalizer %s is not supported (only NFC)", type_of(norm));
}

static enum qlm_err check_byte_level(struct pctx *b, json_t *bl, bool want_regex,
                                     const char *where)
{
    json_t *aps = json_object_get(bl, "add_prefix_space");
    if (aps && json_is_true(aps))
        return fmt_err(b, "%s: %s ByteLevel add_prefix_space true is not supported", where);
    json_t *ur = json_object_get(bl, "use_regex");
    bool use_regex = ur ? json_is_true(ur) : true; /* HF's default */
    if (use_regex != want_regex)
        return qlm_error_set(b->err, QLM_E_FORMAT,
                             "%s: %s ByteLevel must have use_regex %s", b->name, where,
                             want_regex ? "true" : "false");
    return QLM_OK;
}

/* A Split pattern: {"Regex": "..."} as is, {"String": "..."} escaped. */
static enum qlm_err split_regex(struct pctx *b, json_t *split)
{
    json_t *beh = json_object_get(split, "behavior");
    if (!json_is_string(beh) || strcmp(json_string_value(beh), "Isolated") != 0)
        return fmt_err(b, "%s: Split behavior %s is not supported (only Isolated)",
                       json_is_string(beh) ? json_string_value(beh) : "(missing)");
    json_t *inv = json_object_get(split, "invert");
    if (inv && json_is_true(inv))
        return fmt_err(b, "%s: Split invert true is not supported%s", "");
    json_t *pat = json_object_get(split, "pattern");
    json_t *re = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    json_t *str = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
    if (json_is_string(re) && json_string_length(re) > 0 &&
        strlen(json_string_value(re)) == json_string_length(re)) {
        b->regex = strdup(json_string_value(re));
    } else if (json_is_string(str) && json_string_length(str) > 0 &&
               strlen(json_string_value(str)) == json_string_length(str)) {
        const char *s = json_string_value(str);
        size_t n = strlen(s);
        char *r = malloc(2 * n + 1), *q = r;
        if (r) {
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (ch < 0x80 && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                                   (ch >= 'A' && ch <= 'Z') || ch == ' '))
                    *q++ = '\\';
                *q++ = (char)ch;
            }
            *q = '\0';
        }
        b->regex = r;
    } else {
        return fmt_err(b, "%s: Split pattern is not a {\"Regex\"|\"String\": non-empty string}%s",
                       "");
    }
    if (!b->regex)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
    /* compiled as the runtime will, so a file that converts also loads */
    return qlm_schema_regex(b->regex, b->name, NULL, b->err);
}

static enum qlm_err check_pre_tokenizer(struct pctx *b, json_t *pre)
{
    if (json_is_object(pre) && type_is(pre, "ByteLevel")) {
        QLM_TRY(check_byte_level(b, pre, true, "pre_tokenizer"));
        b->regex = strdup(QLM_GPT2_REGEX);
        if (!b->regex)
            return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
        return QLM_OK;
    }
    json_t *list = json_is_object(pre) && type_is(pre, "Sequence")
                       ? json_object_get(pre, "pretokenizers") : NULL;
    if (json_is_array(list) && json_array_size(list) == 2 &&
        type_is(json_array_get(list, 0), "Split") &&
        type_is(json_array_get(list, 1), "ByteLevel")) {
        QLM_TRY(check_byte_level(b, json_array_get(list, 1), false, "pre_tokenizer"));
        return split_regex(b, json_array_get(list, 0));
    }
    if (json_is_array(list) && json_array_size(list) == 1 &&
        type_is(json_array_get(list, 0), "ByteLevel"))
        return check_pre_tokenizer(b, json_array_get(list, 0));
    return fmt_err(b, "%s: pre_tokenizer %s is not supported (Sequence[Split, ByteLevel] or "
                      "ByteLevel)", pre ? type_of(pre) : "(missing)");
}

/* One TemplateProcessing piece: {"SpecialToken": {"id": NAME}} gives the
 * single id special_tokens[NAME].ids holds (else -1); a Sequence A gives -2. */
static int64_t template_piece(json_t *tp, json_t *piece)
{
    json_t *seq = json_object_get(piece, "Sequence");
    if (json_is_object(seq) && json_is_string(json_object_get(seq, "id")) &&
        strcmp(json_string_value(json_object_get(seq, "id")), "A") == 0)
        return -2;
    json_t *sp = json_object_get(piece, "SpecialToken");
    json_t *nm = json_is_object(sp) ? json_object_get(sp, "id") : NULL;
    if (!json_is_string(nm))
        return -1;
    json_t *st = json_object_get(json_object_get(tp, "special_tokens"), json_string_value(nm));
    json_t *ids = json_is_object(st) ? json_object_get(st, "ids") : NULL;
    uint32_t id;
    if (!json_is_array(ids) || json_array_size(ids) != 1 || !qlm_hf_get_id(json_array_get(ids, 0), &id))
        return -1;
    return id;
}

/* Post-processors change what encoding adds around the text.  ByteLevel
 * only adjusts offsets; a TemplateProcessing whose single-sequence template
 * is "$A" or "BOS $A" (Llama 3's "<|begin_of_text|> $A") is executed as
 * add_bos_token; anything else (an EOS appended, other pieces) would run
 * wrongly and is refused. */
static enum qlm_err check_post_processor(struct pctx *b, json_t *pp)
{
    b->post_bos = -1;
    if (!pp || json_is_null(pp) || type_is(pp, "ByteLevel"))
        return QLM_OK;
    if (type_is(pp, "Sequence")) {
        json_t *list = json_object_get(pp, "processors");
        size_t i;
        json_t *e;
        if (!json_is_array(list))
            return fmt_err(b, "%s: post_processor Sequence has no \"processors\" array%s", "");
        json_array_foreach(list, i, e) {
            if (type_is(e, "Sequence"))
                return fmt_err(b, "%s: post_processor %s nested in a Sequence is not supported",
                               "Sequence");
            QLM_TRY(check_post_processor(b, e));
            if (b->post_bos >= 0 && i + 1 < json_array_size(list))
                return fmt_err(b, "%s: post_processor %s must come last in its Sequence",
                               "TemplateProcessing");
        }
        return QLM_OK;
    }
    if (!type_is(pp, "TemplateProcessing"))
        return fmt_err(b, "%s: post_processor %s is not supported (ByteLevel, "
                          "TemplateProcessing adding a BOS)", type_of(pp));
    json_t *single = json_object_get(pp, "single");
    size_t n = json_is_array(single) ? json_array_size(single) : 0;
    int64_t first = n >= 1 ? template_piece(pp, json_array_get(single, 0)) : -1;
    int64_t last = n >= 1 ? template_piece(pp, json_array_get(single, n - 1)) : -1;
    if (n == 1 && first == -2)
        return QLM_OK;
    if (n == 2 && first >= 0 && last == -2) {
        b->post_bos = (int32_t)first;
        return QLM_OK;
    }
    return fmt_err(b, "%s: post_processor %s adds tokens other than one BOS before the text; "
                      "not supported", "TemplateProcessing");
}

static enum qlm_err check_decoder(struct pctx *b, json_t *dec)
{
    if (json_is_object(dec) && type_is(dec, "ByteLevel"))
        return QLM_OK;
    return fmt_err(b, "%s: decoder %s is not supported (only ByteLevel)",
                   dec && !json_is_null(dec) ? type_of(dec) : "(missing)");
}


enum qlm_err qlm_hf_pipeline_check(json_t *root, const char *name, struct qlm_hf_pipeline *out,
                                   struct qlm_error *err)
{
    struct pctx b = {.name = name, .err = err, .post_bos = -1};
    enum qlm_err rc = check_normalizer(&b, json_object_get(root, "normalizer"));
    if (rc == QLM_OK)
        rc = check_pre_tokenizer(&b, json_object_get(root, "pre_tokenizer"));
    if (rc == QLM_OK)
        rc = check_decoder(&b, json_object_get(root, "decoder"));
    if (rc == QLM_OK)
        rc = check_post_processor(&b, json_object_get(root, "post_processor"));
    if (rc != QLM_OK) {
        free(b.regex);
        return rc;
    }
    *out = (struct qlm_hf_pipeline){.flags = b.flags, .regex = b.regex, .post_bos = b.post_bos};
    return QLM_OK;
}
