/* tokenizer.json (+ tokenizer_config.json) -> struct qlm_tokdata.  See
 * hf_tokenizer.h for what is accepted and the choices made. */
#include "config.h"

#include "hf_tokenizer.h"
#include "hf_pipeline.h"
#include "qlm_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#define MAX_JSON_BYTES (512u << 20) /* tokenizer.json files are ~10 MB */
#define MAX_TOKENS QLM_HF_MAX_TOKENS
#define MAX_TOKEN_BYTES 65536u

/* ---- GPT-2 byte-level alphabet ------------------------------------------ */

/* Bytes 33..126, 161..172, 174..255 stand for themselves; the other 68 bytes
 * (0..32, 127..160, 173) map, in increasing order, to U+0100..U+0143 so that
 * every byte is a printable char. */
int qlm_bytelevel_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68)
        return -1;
    uint32_t n = cp - 256;
    return n < 33 ? (int)n : n < 67 ? (int)(127 + n - 33) : 173;
}

uint32_t qlm_bytelevel_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    return 256u + (b <= 32 ? b : b <= 160 ? 33u + (b - 127u) : 67u);
}

/* Decode one UTF-8 char of a jansson string (jansson guarantees valid UTF-8). */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int k = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (k)
        c &= 0x3Fu >> k;
    for (int i = 1; i <= k; i++)
        c = (c << 6) | (s[i] & 0x3F);
    *p = s + 1 + k;
    return c;
}

/* ---- growable byte buffer -------------------------------------------- */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static bool buf_reserve(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

/* ---- reading files ------------------------------------------------------ */

static enum qlm_err read_plain(const char *path, char **out, size_t *len, struct qlm_error *err)
{
    return qlm_input_read(path, MAX_JSON_BYTES, out, len, err);
}

/* tokenizer.json.gz: every member inflated, and a stream that stops short
 * (a truncated download) refused as such rather than left to the JSON
 * parser. */
static enum qlm_err read_gz(const char *path, char **out, size_t *len, struct qlm_error *err)
{
    int fd;
    uint64_t size;
    QLM_TRY(qlm_input_open(path, &fd, &size, err));
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        close(fd);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    }
    struct buf b = {0};
    enum qlm_err rc = QLM_OK;
    for (;;) {
        if (!buf_reserve(&b, 1 << 16)) {
            rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
            break;
        }
        size_t room = b.cap - b.len;
        int got = gzread(g, b.p + b.len, (unsigned)(room > (1u << 30) ? (1u << 30) : room));
        int zerr = Z_OK;
        const char *msg = got <= 0 ? gzerror(g, &zerr) : NULL;
        if (got < 0 || zerr == Z_BUF_ERROR) {
            const char *colon = msg[0] == '<' ? strstr(msg, ": ") : NULL; /* "<fd:3>: " */
            msg = colon ? colon + 2 : msg;
            rc = qlm_error_set(err, QLM_E_FORMAT, zerr == Z_BUF_ERROR
                               ? "%s: truncated gzip stream (%s)" : "%s: corrupt gzip data (%s)",
                               path, msg);
            break;
        }
        b.len += (size_t)got;
        if (b.len > MAX_JSON_BYTES) {
            rc = qlm_error_set(err, QLM_E_RANGE, "%s: inflates to more than %u bytes", path,
                               MAX_JSON_BYTES);
            break;
        }
        if (got == 0)
            break;
    }
    gzclose(g);
    if (rc != QLM_OK) {
        free(b.p);
        return rc;
    }
    *out = (char *)b.p;
    *len = b.len;
    return QLM_OK;
}

static char *path_join(const char *dir, const char *file)
{
    size_t a = strlen(dir), b = strlen(file);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, file, b + 1);
    }
    return p;
}

/* ---- the builder -------------------------------------------------------- */

struct tokslot {
    size_t off;   /* into text */
    uint32_t len;
    uint8_t kind;
    bool set;
};

struct builder {
    const char *name;       /* file name for messages */
    struct qlm_error *err;
    json_t *root, *vocab;
    uint32_t n_tokens;
    struct tokslot *slots;
    struct buf text;        /* token bytes */
    struct qlm_merge *merges;
    uint32_t n_merges;
    uint32_t flags;
    char *regex;            /* malloc'ed */
    char *chat_template;    /* malloc'ed */
    uint32_t eos[8];
    uint32_t n_eos;
    int32_t bos_id, pad_id;
    bool add_bos;
    int32_t post_bos;       /* the BOS a TemplateProcessing prepends, or -1 */
};

static enum qlm_err fmt_err(struct builder *b, const char *fmt, const char *what)
{
    return qlm_error_set(b->err, QLM_E_FORMAT, fmt, b->name, what);
}


/* Byte-level string -> raw bytes appended to b->text. */
static enum qlm_err decode_byte_level(struct builder *b, const char *s, uint32_t id,
                                      uint32_t *len)
{
    size_t n = strlen(s);
    if (n == 0)
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: vocab token %u is empty", b->name,
                             (unsigned)id);
    if (n > MAX_TOKEN_BYTES * 2u)
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: vocab token %u is too long", b->name,
                             (unsigned)id);
    if (!buf_reserve(&b->text, n))
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t start = b->text.len;
    while (p < end) {
        uint32_t cp = utf8_next(&p);
        int byte = qlm_bytelevel_byte(cp);
        if (byte < 0) {
            b->text.len = start;
            return qlm_error_set(b->err, QLM_E_FORMAT,
                                 "%s: vocab token %u (\"%.40s\") has U+%04X, which is not in "
                                 "the byte-level alphabet",
                                 b->name, (unsigned)id, s, (unsigned)cp);
        }
        b->text.p[b->text.len++] = (uint8_t)byte;
    }
    *len = (uint32_t)(b->text.len - start);
    return QLM_OK;
}

static enum qlm_err check_model(struct builder *b, json_t *model)
{
    if (!json_is_object(model))
        return fmt_err(b, "%s: \"model\" is %s", model ? "not an object" : "missing");
    json_t *t = json_object_get(model, "type");
    if (t && !(json_is_string(t) && strcmp(json_string_value(t), "BPE") == 0))
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: model type %s is not supported (BPE only)",
                             b->name, json_is_string(t) ? json_string_value(t) : "(not a string)");
    json_t *v;
    if ((v = json_object_get(model, "byte_fallback")) && json_is_true(v))
        return fmt_err(b, "%s: model.byte_fallback true is not supported%s", "");
    if ((v = json_object_get(model, "ignore_merges")) && json_is_true(v))
        return fmt_err(b, "%s: model.ignore_merges true is not supported%s", "");
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(model, affix[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return fmt_err(b, "%s: model.%s must be empty or null", affix[i]);
    }
    b->vocab = json_object_get(model, "vocab");
    if (!json_is_object(b->vocab))
        return fmt_err(b, "%s: model.vocab is %s", b->vocab ? "not an object" : "missing");
    return QLM_OK;
}

/* Pass 1: number of ids (max id + 1) over vocab and added tokens. */
static enum qlm_err count_ids(struct builder *b, json_t *added)
{
    uint32_t max = 0;
    bool any = false;
    const char *key;
    json_t *val;
    json_object_foreach(b->vocab, key, val) {
        uint32_t id;
        if (!qlm_hf_get_id(val, &id))
            return qlm_error_set(b->err, QLM_E_FORMAT,
                                 "%s: vocab entry \"%.40s\" has an id that is not an integer in "
                                 "[0, %u)",
                                 b->name, key, MAX_TOKENS);
        if (!any || id > max)
            max = id;
        any = true;
    }
    if (added) {
        size_t i;
        json_array_foreach(added, i, val) {
            uint32_t id;
            if (!json_is_object(val) || !qlm_hf_get_id(json_object_get(val, "id"), &id))
                return qlm_error_set(b->err, QLM_E_FORMAT,
                                     "%s: added_tokens[%zu] has no integer id in [0, %u)",
                                     b->name, i, MAX_TOKENS);
            if (!any || id > max)
                max = id;
            any = true;
        }
    }
    if (!any)
        return fmt_err(b, "%s: no tokens%s", "");
    /* dense ids need at least as many entries as ids: refuse before allocating */
    size_t entries = json_object_size(b->vocab) + (added ? json_array_size(added) : 0);
    if ((size_t)max >= entries)
        return qlm_error_set(b->err, QLM_E_FORMAT,
                             "%s: token ids are not dense: id %u with only %zu tokens", b->name,
                             (unsigned)max, entries);
    b->n_tokens = max + 1;
    b->slots = calloc(b->n_tokens, sizeof *b->slots);
    if (!b->slots)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
    return QLM_OK;
}

static enum qlm_err load_vocab(struct builder *b)
{
    const char *key;
    json_t *val;
    json_object_foreach(b->vocab, key, val) {
        uint32_t id = 0, len = 0;
        qlm_hf_get_id(val, &id); /* checked by count_ids */
        if (b->slots[id].set)
            return qlm_error_set(b->err, QLM_E_FORMAT, "%s: vocab id %u is used twice (\"%.40s\")",
                                 b->name, (unsigned)id, key);
        size_t off = b->text.len;
        QLM_TRY(decode_byte_level(b, key, id, &len));
        b->slots[id] = (struct tokslot){.off = off, .len = len, .kind = QLM_TOK_NORMAL, .set = true};
    }
    return QLM_OK;
}

static enum qlm_err load_added(struct builder *b, json_t *added)
{
    if (!added)
        return QLM_OK;
    bool *seen = calloc(b->n_tokens, 1);
    if (!seen)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
    enum qlm_err rc = QLM_OK;
    size_t i;
    json_t *val;
    json_array_foreach(added, i, val) {
        uint32_t id = 0;
        qlm_hf_get_id(json_object_get(val, "id"), &id); /* checked by count_ids */
        json_t *content = json_object_get(val, "content");
        if (!json_is_string(content) || json_string_length(content) == 0 ||
            json_string_length(content) > MAX_TOKEN_BYTES) {
            rc = qlm_error_set(b->err, QLM_E_FORMAT,
                               "%s: added_tokens[%zu] (id %u): content is not a non-empty string",
                               b->name, i, (unsigned)id);
            break;
        }
        const char *flag_names[] = {"lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 3 && rc == QLM_OK; k++) {
            json_t *f = json_object_get(val, flag_names[k]);
            if (f && json_is_true(f))
                rc = qlm_error_set(b->err, QLM_E_FORMAT,
                                   "%s: added token \"%.40s\" (id %u): %s true is not supported",
                                   b->name, json_string_value(content), (unsigned)id,
                                   flag_names[k]);
        }
        if (rc != QLM_OK)
            break;
        if (seen[id]) {
            rc = qlm_error_set(b->err, QLM_E_FORMAT, "%s: added token id %u appears twice",
                               b->name, (unsigned)id);
            break;
        }
        seen[id] = true;
        json_t *special = json_object_get(val, "special");
        size_t n = json_string_length(content);
        if (!buf_reserve(&b->text, n)) {
            rc = qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
            break;
        }
        size_t off = b->text.len;
        memcpy(b->text.p + off, json_string_value(content), n);
        b->text.len += n;
        /* an id also in the vocab takes the added token's content and kind */
        b->slots[id] = (struct tokslot){.off = off, .len = (uint32_t)n,
                                        .kind = json_is_true(special) ? QLM_TOK_SPECIAL
                                                                      : QLM_TOK_ADDED,
                                        .set = true};
    }
    free(seen);
    return rc;
}

static enum qlm_err check_dense(struct builder *b)
{
    for (uint32_t id = 0; id < b->n_tokens; id++)
        if (!b->slots[id].set)
            return qlm_error_set(b->err, QLM_E_FORMAT,
                                 "%s: token ids are not dense: id %u has no token (ids run to %u)",
                                 b->name, (unsigned)id, (unsigned)(b->n_tokens - 1));
    return QLM_OK;
}

/* Look a byte-level string up in the vocab. */
static bool vocab_id(struct builder *b, const char *s, uint32_t *id)
{
    json_t *v = json_object_get(b->vocab, s);
    return v && qlm_hf_get_id(v, id) && id[0] < b->n_tokens;
}

static enum qlm_err load_merges(struct builder *b, json_t *model)
{
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return fmt_err(b, "%s: model.merges is %s", merges ? "not an array" : "missing");
    size_t n = json_array_size(merges);
    if (n >= MAX_TOKENS)
        return fmt_err(b, "%s: too many merges%s", "");
    b->merges = malloc((n ? n : 1) * sizeof *b->merges);
    if (!b->merges)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
    char *cat = NULL;
    size_t cat_cap = 0;
    enum qlm_err rc = QLM_OK;
    for (size_t i = 0; i < n && rc == QLM_OK; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a = NULL, *c = NULL;
        size_t la = 0, lc = 0;
        char *split = NULL;
        if (json_is_string(m)) {
            /* "a b": byte-level tokens never hold a space, so split at the one space */
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            if (sp && sp != s && sp[1] && !strchr(sp + 1, ' ')) {
                split = strdup(s);
                if (!split) {
                    rc = qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
                    break;
                }
                split[sp - s] = '\0';
                a = split;
                la = (size_t)(sp - s);
                c = split + la + 1;
                lc = strlen(c);
            }
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            c = json_string_value(json_array_get(m, 1));
            la = strlen(a);
            lc = strlen(c);
        }
        if (!a || !la || !lc) {
            rc = qlm_error_set(b->err, QLM_E_FORMAT,
                               "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", b->name, i);
            break;
        }
        if (la + lc + 1 > cat_cap) {
            cat_cap = 2 * (la + lc + 1);
            char *p = realloc(cat, cat_cap);
            if (!p) {
                free(split);
                rc = qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
                break;
            }
            cat = p;
        }
        memcpy(cat, a, la);
        memcpy(cat + la, c, lc + 1);
        struct qlm_merge mg;
        if (!vocab_id(b, a, &mg.left) || !vocab_id(b, c, &mg.right))
            rc = qlm_error_set(b->err, QLM_E_FORMAT,
                               "%s: merge %zu (\"%.40s\" \"%.40s\"): a part is not in the vocab",
                               b->name, i, a, c);
        else if (!vocab_id(b, cat, &mg.result))
            rc = qlm_error_set(b->err, QLM_E_FORMAT,
                               "%s: merge %zu (\"%.40s\" \"%.40s\"): the merged token is not in "
                               "the vocab",
                               b->name, i, a, c);
        else
            b->merges[b->n_merges++] = mg;
        free(split);
    }
    free(cat);
    return rc;
}

/* Token id of a config entry: a string, or an AddedToken {"content": ...}. */
static int32_t config_token(struct builder *b, json_t *v, const char *cfg_name, const char *field,
                            enum qlm_err *rc)
{
    *rc = QLM_OK;
    if (!v || json_is_null(v))
        return -1;
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v)) {
        *rc = qlm_error_set(b->err, QLM_E_FORMAT, "%s: %s is not a string", cfg_name, field);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (uint32_t id = 0; id < b->n_tokens; id++)
        if (b->slots[id].len == n && memcmp(b->text.p + b->slots[id].off, s, n) == 0)
            return (int32_t)id;
    *rc = qlm_error_set(b->err, QLM_E_FORMAT, "%s: %s \"%.40s\" is not a token", cfg_name, field,
                        s);
    return -1;
}

void qlm_tok_eos_add(uint32_t *eos, uint32_t *n, uint32_t cap, int32_t id)
{
    if (id < 0 || *n == cap)
        return;
    for (uint32_t i = 0; i < *n; i++)
        if (eos[i] == (uint32_t)id)
            return;
    eos[(*n)++] = (uint32_t)id;
}

static void add_eos(struct builder *b, int32_t id)
{
    qlm_tok_eos_add(b->eos, &b->n_eos, sizeof b->eos / sizeof b->eos[0], id);
}

static int32_t find_text(struct builder *b, const char *s)
{
    size_t n = strlen(s);
    for (uint32_t id = b->n_tokens; id-- > 0;)
        if (b->slots[id].len == n && memcmp(b->text.p + b->slots[id].off, s, n) == 0)
            return (int32_t)id;
    return -1;
}

static enum qlm_err load_config(struct builder *b, const char *cfg, size_t cfg_len,
                                const char *cfg_name)
{
    b->bos_id = b->pad_id = -1;
    json_t *root = NULL;
    if (cfg) {
        json_error_t je;
        root = json_loadb(cfg, cfg_len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
            return qlm_error_set(b->err, QLM_E_FORMAT, "%s: line %d column %d: %s", cfg_name,
                                 je.line, je.column, je.text);
        if (!json_is_object(root)) {
            json_decref(root);
            return qlm_error_set(b->err, QLM_E_FORMAT, "%s: not a JSON object", cfg_name);
        }
    }
    enum qlm_err rc = QLM_OK;
    int32_t eos = -1;
    if (root) {
        eos = config_token(b, json_object_get(root, "eos_token"), cfg_name, "eos_token", &rc);
        if (rc == QLM_OK)
            b->bos_id = config_token(b, json_object_get(root, "bos_token"), cfg_name,
                                     "bos_token", &rc);
        if (rc == QLM_OK)
            b->pad_id = config_token(b, json_object_get(root, "pad_token"), cfg_name,
                                     "pad_token", &rc);
        json_t *ab = json_object_get(root, "add_bos_token");
        if (rc == QLM_OK && ab && !json_is_boolean(ab) && !json_is_null(ab))
            rc = qlm_error_set(b->err, QLM_E_FORMAT, "%s: add_bos_token is not a boolean",
                               cfg_name);
        if (rc == QLM_OK && json_is_true(ab)) {
            if (b->bos_id < 0)
                rc = qlm_error_set(b->err, QLM_E_FORMAT,
                                   "%s: add_bos_token is true but there is no bos_token",
                                   cfg_name);
            b->flags |= QLM_TOKF_ADD_BOS;
        }
        json_t *ct = json_object_get(root, "chat_template");
        if (rc == QLM_OK && ct && !json_is_null(ct)) {
            json_t *pick = NULL;
            if (json_is_string(ct)) {
                pick = ct;
            } else if (json_is_array(ct)) {
                size_t i;
                json_t *e;
                json_array_foreach(ct, i, e) {
                    json_t *nm = json_object_get(e, "name");
                    if (!pick || (json_is_string(nm) &&
                                  strcmp(json_string_value(nm), "default") == 0))
                        pick = json_object_get(e, "template");
                }
            }
            if (!json_is_string(pick) || strlen(json_string_value(pick)) != json_string_length(pick))
                rc = qlm_error_set(b->err, QLM_E_FORMAT,
                                   "%s: chat_template is neither a string nor a list of "
                                   "{name, template}",
                                   cfg_name);
            else if (!(b->chat_template = strdup(json_string_value(pick))))
                rc = qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", cfg_name);
        }
    }
    if (rc == QLM_OK) {
        add_eos(b, eos);
        add_eos(b, find_text(b, "<|endoftext|>"));
        add_eos(b, find_text(b, "<|im_end|>"));
    }
    json_decref(root);
    return rc;
}

/* Pack everything into one allocation, storage_, that qlm_tokdata_free frees. */
static enum qlm_err pack(struct builder *b, struct qlm_tokdata *out)
{
    const char *ct = b->chat_template ? b->chat_template : "";
    size_t rl = strlen(b->regex), cl = strlen(ct);
    size_t off_tok = 0;
    size_t off_merge = off_tok + (size_t)b->n_tokens * sizeof(struct qlm_token);
    size_t off_eos = off_merge + (size_t)b->n_merges * sizeof(struct qlm_merge);
    size_t off_re = off_eos + (size_t)b->n_eos * sizeof(uint32_t);
    size_t off_ct = off_re + rl + 1;
    size_t off_text = off_ct + cl + 1;
    size_t total = off_text + b->text.len;
    uint8_t *mem = malloc(total);
    if (!mem)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", b->name);
    memset(out, 0, sizeof *out);
    out->storage_ = mem;
    out->n_tokens = b->n_tokens;
    out->n_merges = b->n_merges;
    out->n_eos = b->n_eos;
    out->flags = b->flags;
    out->bos_id = b->bos_id;
    out->pad_id = b->pad_id;
    out->tokens = (struct qlm_token *)(void *)(mem + off_tok);
    out->merges = (struct qlm_merge *)(void *)(mem + off_merge);
    out->eos = (uint32_t *)(void *)(mem + off_eos);
    out->regex = (char *)mem + off_re;
    out->chat_template = (char *)mem + off_ct;
    if (b->n_merges)
        memcpy(out->merges, b->merges, (size_t)b->n_merges * sizeof(struct qlm_merge));
    if (b->n_eos)
        memcpy(out->eos, b->eos, (size_t)b->n_eos * sizeof(uint32_t));
    memcpy(out->regex, b->regex, rl + 1);
    memcpy(out->chat_template, ct, cl + 1);
    uint8_t *text = mem + off_text;
    if (b->text.len)
        memcpy(text, b->text.p, b->text.len);
    for (uint32_t id = 0; id < b->n_tokens; id++)
        out->tokens[id] = (struct qlm_token){.bytes = text + b->slots[id].off,
                                             .len = b->slots[id].len,
                                             .kind = b->slots[id].kind};
    return QLM_OK;
}

/* cfg_name names the config in messages; jinja (may be NULL) is the template
 * of chat_template.jinja, used when the config has none. */
static enum qlm_err build(const char *tok_json, size_t tok_len, const char *config_json,
                          size_t config_len, const char *name, const char *cfg_name,
                          const char *jinja, struct qlm_tokdata *out, struct qlm_error *err)
{
    struct builder b = {.name = name, .err = err};
    json_error_t je;
    enum qlm_err rc = QLM_OK;
    b.root = json_loadb(tok_json, tok_len, JSON_REJECT_DUPLICATES, &je);
    if (!b.root)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: line %d column %d: %s", b.name, je.line,
                             je.column, je.text);
    json_t *model = json_object_get(b.root, "model");
    json_t *added = json_object_get(b.root, "added_tokens");
    if (!json_is_object(b.root))
        rc = fmt_err(&b, "%s: not a JSON object%s", "");
    else if (added && !json_is_array(added) && !json_is_null(added))
        rc = fmt_err(&b, "%s: added_tokens is not an array%s", "");
    if (added && json_is_null(added))
        added = NULL;
    if (rc == QLM_OK)
        rc = check_model(&b, model);
    struct qlm_hf_pipeline pl = {0};
    if (rc == QLM_OK)
        rc = qlm_hf_pipeline_check(b.root, b.name, &pl, err);
    b.flags |= pl.flags;
    b.regex = pl.regex;
    b.post_bos = pl.post_bos;
    if (rc == QLM_OK)
        rc = count_ids(&b, added);
    if (rc == QLM_OK)
        rc = load_vocab(&b);
    if (rc == QLM_OK)
        rc = load_added(&b, added);
    if (rc == QLM_OK)
        rc = check_dense(&b);
    if (rc == QLM_OK)
        rc = load_merges(&b, model);
    if (rc == QLM_OK)
        rc = load_config(&b, config_json, config_len, cfg_name);
    if (rc == QLM_OK && b.post_bos >= 0) {
        if ((uint32_t)b.post_bos >= b.n_tokens)
            rc = fmt_err(&b, "%s: post_processor %s prepends a token id past the vocabulary",
                         "TemplateProcessing");
        else if ((b.flags & QLM_TOKF_ADD_BOS) && b.bos_id != b.post_bos)
            rc = fmt_err(&b, "%s: post_processor %s prepends another BOS than "
                             "tokenizer_config.json's bos_token", "TemplateProcessing");
        b.bos_id = b.post_bos;
        b.flags |= QLM_TOKF_ADD_BOS;
    }
    if (rc == QLM_OK && !b.chat_template && jinja && !(b.chat_template = strdup(jinja)))
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", b.name);
    b.flags |= QLM_TOKF_BYTE_LEVEL;
    if (rc == QLM_OK)
        rc = pack(&b, out);
    json_decref(b.root);
    free(b.slots);
    free(b.text.p);
    free(b.merges);
    free(b.regex);
    free(b.chat_template);
    return rc;
}

enum qlm_err qlm_hf_tokenizer_from_json(const char *tok_json, size_t tok_len,
                                        const char *config_json, size_t config_len,
                                        const char *name, struct qlm_tokdata *out,
                                        struct qlm_error *err)
{
    return build(tok_json, tok_len, config_json, config_len, name ? name : "tokenizer.json",
                 "tokenizer_config.json", NULL, out, err);
}

enum qlm_err qlm_hf_tokenizer_load(const char *model_dir, struct qlm_tokdata *out,
                                   struct qlm_error *err)
{
    char *tok_path = path_join(model_dir, "tokenizer.json");
    char *gz_path = path_join(model_dir, "tokenizer.json.gz");
    char *cfg_path = path_join(model_dir, "tokenizer_config.json");
    char *jinja_path = path_join(model_dir, "chat_template.jinja");
    char *tok = NULL, *cfg = NULL, *jinja = NULL;
    size_t tok_len = 0, cfg_len = 0, jinja_len = 0;
    const char *name = tok_path;
    enum qlm_err rc;
    if (!tok_path || !gz_path || !cfg_path || !jinja_path) {
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", model_dir);
        goto done;
    }
    rc = read_plain(tok_path, &tok, &tok_len, err);
    if (rc == QLM_E_NOTFOUND) {
        name = gz_path;
        rc = read_gz(gz_path, &tok, &tok_len, err);
        if (rc == QLM_E_NOTFOUND)
            rc = qlm_error_set(err, QLM_E_NOTFOUND, "%s: no tokenizer.json (nor .gz) there",
                               model_dir);
    }
    if (rc != QLM_OK)
        goto done;
    rc = read_plain(cfg_path, &cfg, &cfg_len, err);
    if (rc == QLM_E_NOTFOUND)
        rc = QLM_OK; /* optional */
    if (rc != QLM_OK)
        goto done;
    rc = read_plain(jinja_path, &jinja, &jinja_len, err);
    if (rc == QLM_E_NOTFOUND) {
        rc = QLM_OK; /* optional */
    } else if (rc == QLM_OK) {
        if (strlen(jinja) != jinja_len) { /* read_plain NUL-terminates */
            rc = qlm_error_set(err, QLM_E_FORMAT, "%s: holds a NUL byte", jinja_path);
            goto done;
        }
    }
    if (rc != QLM_OK)
        goto done;
    rc = build(tok, tok_len, cfg, cfg_len, name, cfg_path, jinja, out, err);
done:
    free(tok);
    free(cfg);
    free(jinja);
    free(tok_path);
    free(gz_path);
    free(cfg_path);
    free(jinja_path);
    return rc;
}
