/* gguf_import.c — a GGUF's hyper-parameters, tensors and tokenizer as the
 * converter reads a Hugging Face checkpoint's (gguf_import.h). */
#include "gguf_import.h"
#include "hf_tokenizer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS (1u << 24)
#define MAX_TOKEN_BYTES 65536u
#define MIN_ID(a, b) ((a) < (b) ? (a) : (b))
#define MAX_ID(a, b) ((a) < (b) ? (b) : (a))

/* ---- tensor names ----------------------------------------------------------- */

struct name_pair {
    const char *gguf, *hf;
};

static const struct name_pair model_names[] = {
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
};

static const struct name_pair layer_names[] = {
    {"attn_norm", "input_layernorm"},        {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},          {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},     {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},     {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},           {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

/* "PREFIX<N>.rest": N (decimal, no leading zero) and rest; NULL otherwise. */
static const char *layer_of(const char *s, const char *prefix, unsigned long *n)
{
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0)
        return NULL;
    s += pl;
    if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return NULL;
    unsigned long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > 1000000)
            return NULL;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    *n = v;
    return *s == '.' ? s + 1 : NULL;
}

static bool map_name(const char *name, bool to_hf, char *out, size_t len)
{
    const char *dot = strrchr(name, '.');
    if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0))
        return false;
    unsigned long n;
    const char *rest = layer_of(name, to_hf ? "blk." : "model.layers.", &n);
    const struct name_pair *tab = rest ? layer_names : model_names;
    size_t count = rest ? sizeof layer_names / sizeof layer_names[0]
                        : sizeof model_names / sizeof model_names[0];
    const char *stem = rest ? rest : name;
    size_t stem_len = (size_t)(dot - stem);
    for (size_t i = 0; i < count; i++) {
        const char *from = to_hf ? tab[i].gguf : tab[i].hf, *to = to_hf ? tab[i].hf : tab[i].gguf;
        if (strlen(from) != stem_len || strncmp(stem, from, stem_len) != 0)
            continue;
        int k = rest ? snprintf(out, len, to_hf ? "model.layers.%lu.%s%s" : "blk.%lu.%s%s", n,
                                to, dot)
                     : snprintf(out, len, "%s%s", to, dot);
        return k > 0 && (size_t)k < len;
    }
    return false;
}

bool qlm_gguf_name_to_hf(const char *gguf, char *hf, size_t len)
{
    return map_name(gguf, true, hf, len);
}

bool qlm_gguf_name_from_hf(const char *hf, char *gguf, size_t len)
{
    return map_name(hf, false, gguf, len);
}

/* ---- hyper-parameters ------------------------------------------------------- */

/* ARCH.suffix as an unsigned integer; dflt when absent (0: required). */
static enum qlm_err arch_uint(const struct qlm_gguf *g, const struct qlm_model_params *p,
                              const char *suffix, uint64_t dflt, uint64_t *v,
                              struct qlm_error *err)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", qlm_arch_name(p->arch), suffix);
    enum qlm_err rc = qlm_gguf_get_uint(g, key, UINT64_MAX, v, err);
    if (rc == QLM_E_NOTFOUND && dflt != 0) {
        *v = dflt;
        return QLM_OK;
    }
    return rc;
}

static enum qlm_err arch_real(const struct qlm_gguf *g, const struct qlm_model_params *p,
                              const char *suffix, double dflt, double *v, struct qlm_error *err)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", qlm_arch_name(p->arch), suffix);
    enum qlm_err rc = qlm_gguf_get_real(g, key, v, err);
    if (rc == QLM_E_NOTFOUND && dflt != 0) {
        *v = dflt;
        return QLM_OK;
    }
    return rc;
}

/* The keys of features the runtime does not execute: refused by name. */
static enum qlm_err refuse_features(const struct qlm_gguf *g, const struct qlm_model_params *p,
                                    struct qlm_error *err)
{
    const char *an = qlm_arch_name(p->arch);
    char key[96];
    uint64_t v;
    snprintf(key, sizeof key, "%s.rope.scaling.type", an);
    if (qlm_gguf_find(g, key)) {
        char *type;
        QLM_TRY(qlm_gguf_get_str(g, key, &type, err));
        bool none = strcmp(type, "none") == 0;
        enum qlm_err rc = none ? QLM_OK
                               : qlm_error_set(err, QLM_E_FORMAT,
                                               "%s: metadata '%s' = '%.40s': RoPE scaling is "
                                               "not supported", g->path, key, type);
        free(type);
        QLM_TRY(rc);
    }
    if (arch_uint(g, p, "rope.dimension_count", UINT64_MAX, &v, err) != QLM_OK ||
        (v != UINT64_MAX && v != p->head_dim))
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: metadata '%s.rope.dimension_count' is not head_dim %" PRIu64
                             " (RoPE rotates all of head_dim)", g->path, an, p->head_dim);
    if (arch_uint(g, p, "expert_count", UINT64_MAX, &v, err) != QLM_OK ||
        (v != UINT64_MAX && v != 0))
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: metadata '%s.expert_count': a mixture of experts is not "
                             "supported", g->path, an);
    return QLM_OK;
}

enum qlm_err qlm_gguf_params(const struct qlm_gguf *g, struct qlm_model_params *p,
                             struct qlm_error *err)
{
    memset(p, 0, sizeof *p);
    char *arch;
    QLM_TRY(qlm_gguf_get_str(g, "general.architecture", &arch, err));
    int a = qlm_arch_from_name(arch);
    if (a < 0)
        qlm_error_set(err, QLM_E_FORMAT,
                      "%s: general.architecture '%.40s' is not supported (qwen3, qwen2, llama)",
                      g->path, arch);
    free(arch);
    if (a < 0)
        return QLM_E_FORMAT;
    p->arch = (enum qlm_arch)a;
    const char *an = qlm_arch_name(p->arch);
    QLM_TRY(arch_uint(g, p, "block_count", 0, &p->n_layers, err));
    QLM_TRY(arch_uint(g, p, "embedding_length", 0, &p->hidden, err));
    QLM_TRY(arch_uint(g, p, "feed_forward_length", 0, &p->ffn_hidden, err));
    QLM_TRY(arch_uint(g, p, "attention.head_count", 0, &p->n_heads, err));
    QLM_TRY(arch_uint(g, p, "attention.head_count_kv", p->n_heads, &p->n_kv_heads, err));
    QLM_TRY(arch_uint(g, p, "context_length", 0, &p->max_pos, err));
    uint64_t hd = p->n_heads && p->hidden % p->n_heads == 0 ? p->hidden / p->n_heads : 0;
    enum qlm_err rc = arch_uint(g, p, "attention.key_length", hd, &p->head_dim, err);
    if (rc == QLM_E_NOTFOUND)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: no '%s.attention.key_length' and embedding_length %" PRIu64
                             " is not a multiple of head_count %" PRIu64, g->path, an,
                             p->hidden, p->n_heads);
    QLM_TRY(rc);
    uint64_t vl;
    QLM_TRY(arch_uint(g, p, "attention.value_length", p->head_dim ? p->head_dim : 1, &vl, err));
    if (p->head_dim && vl != p->head_dim)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: metadata '%s.attention.value_length' = %" PRIu64 " differs "
                             "from key_length %" PRIu64 " (not supported)", g->path, an, vl,
                             p->head_dim);
    QLM_TRY(arch_real(g, p, "attention.layer_norm_rms_epsilon", 0, &p->rms_eps, err));
    QLM_TRY(arch_real(g, p, "rope.freq_base", 10000.0, &p->rope_theta, err));
    QLM_TRY(refuse_features(g, p, err));

    /* the vocabulary is the embedding's rows (ne = {hidden, vocab}) */
    const struct qlm_gguf_tensor *emb = qlm_gguf_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: %s tensor 'token_embd.weight'", g->path,
                             emb ? "no 2-dimensional" : "missing");
    p->vocab_size = emb->ne[1];
    uint64_t vs;
    QLM_TRY(arch_uint(g, p, "vocab_size", p->vocab_size ? p->vocab_size : 1, &vs, err));
    if (vs != p->vocab_size)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: metadata '%s.vocab_size' = %" PRIu64 " but token_embd.weight "
                             "has %" PRIu64 " rows", g->path, an, vs, p->vocab_size);
    p->tied = qlm_gguf_tensor(g, "output.weight") == NULL;
    p->qk_norm = p->arch == QLM_ARCH_QWEN3;
    p->qkv_bias = p->arch == QLM_ARCH_QWEN2;
    return qlm_schema_check(p, g->path, QLM_SCHEMA_GGUF, err);
}

/* ---- tensors ------------------------------------------------------------------ */

enum qlm_err qlm_gguf_checkpoint(const struct qlm_gguf *g, struct qlm_st_model **m,
                                 struct qlm_error *err)
{
    typedef char hf_name[128];
    hf_name *names = malloc(((size_t)g->n_tensors + 1) * sizeof *names);
    const char **ptrs = malloc(((size_t)g->n_tensors + 1) * sizeof *ptrs);
    enum qlm_err rc = QLM_OK;
    if (!names || !ptrs)
        rc = qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_tensors && rc == QLM_OK; i++) {
        const struct qlm_gguf_tensor *t = &g->tensors[i];
        uint32_t ty = t->type;
        if (!qlm_gguf_name_to_hf(t->name, names[i], sizeof names[i]))
            rc = qlm_error_set(err, QLM_E_FORMAT,
                               "%s: unexpected tensor '%s' (a dense Qwen3, Qwen2 or Llama "
                               "holds token_embd, blk.N.attn_* and ffn_*, output_norm, output)",
                               g->path, t->name);
        else if (ty != QLM_GGML_F32 && ty != QLM_GGML_F16 && ty != QLM_GGML_BF16 &&
                 ty != QLM_GGML_Q8_0 && ty != QLM_GGML_Q4_0)
            rc = qlm_error_set(err, QLM_E_FORMAT,
                               "%s: tensor '%s' is %s; qlm-convert reads F32, F16, BF16, Q8_0 "
                               "and Q4_0 tensors (convert the original checkpoint, or a Q8_0 "
                               "GGUF)", g->path, t->name, qlm_ggml_type_name(ty));
        ptrs[i] = names[i];
    }
    if (rc == QLM_OK)
        rc = qlm_gguf_st_view(g, ptrs, m, err);
    free(names);
    free(ptrs);
    return rc;
}

void qlm_gguf_mark_rows(const struct qlm_model_params *p, struct qlm_plan *plan)
{
    if (p->arch != QLM_ARCH_LLAMA)
        return;
    const char *suffix[] = {".self_attn.q_proj.weight", ".self_attn.k_proj.weight"};
    for (size_t i = 0; i < plan->n; i++) {
        size_t n = strlen(plan->items[i].name);
        for (int k = 0; k < 2; k++) {
            size_t sl = strlen(suffix[k]);
            if (n > sl && strcmp(plan->items[i].name + n - sl, suffix[k]) == 0)
                plan->items[i].perm_head_dim = p->head_dim;
        }
    }
}

/* llama.cpp's permute(): per head, rows (j, i) for j < 2, i < head_dim / 2
 * go to row 2i + j; Hugging Face row j * head_dim / 2 + i is read there. */
uint64_t qlm_gguf_src_row(const struct qlm_plan_item *it, uint64_t r)
{
    const uint64_t hd = it->perm_head_dim;
    if (hd == 0)
        return r;
    const uint64_t h = r / hd, w = r % hd, half = hd / 2;
    return h * hd + 2 * (w % half) + w / half;
}

/* ---- tokenizer -------------------------------------------------------------------- */

/* llama.cpp's tokenizer.ggml.pre names and what they stand for. */
static const struct {
    const char *name;
    const char *regex;   /* NULL: refused, for the reason */
    uint32_t flags;
    const char *reason;
} pre_types[] = {
    {"qwen2",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
     "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     QLM_TOKF_NFC, NULL},
    {"llama-bpe", NULL, 0,
     "Llama 3's tokenizer skips the merges of words that are whole tokens (ignore_merges), "
     "which qlm's tokenizer does not do"},
};

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* A byte-level token's GGUF text, for looking merge parts up. */
struct entry {
    const char *s;
    uint64_t len;
    uint32_t id;
};

static int cmp_bytes(const char *a, uint64_t al, const char *b, uint64_t bl)
{
    int c = memcmp(a, b, (size_t)(al < bl ? al : bl));
    return c ? c : (al > bl) - (al < bl);
}

static int cmp_entry(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    return cmp_bytes(a->s, a->len, b->s, b->len);
}

struct tokb {
    const struct qlm_gguf *g;
    struct qlm_error *err;
    const struct qlm_gguf_kv *toks, *types;
    uint32_t n;               /* tokens kept (trailing UNUSED ones dropped) */
    struct qlm_token *tok;
    uint8_t *text;
    size_t text_len;
    struct entry *index;      /* the byte-level (NORMAL) tokens, sorted */
    uint32_t n_index;
    struct qlm_merge *merges;
    uint32_t n_merges;
    uint32_t eos[8], n_eos;
    char *chat_template;
};

static int64_t type_of(const struct tokb *b, uint32_t id)
{
    return b->types ? qlm_gguf_int_at(b->types, id) : TT_NORMAL;
}

/* The next code point of s[0, len) from *i; -1 for malformed UTF-8. */
static int32_t utf8_cp(const uint8_t *s, uint64_t len, uint64_t *i)
{
    uint8_t c = s[*i];
    int k = c < 0x80               ? 0
            : (c & 0xe0) == 0xc0 ? 1
            : (c & 0xf0) == 0xe0 ? 2
            : (c & 0xf8) == 0xf0 ? 3
                                 : -1;
    if (k < 0 || len - *i <= (uint64_t)k)
        return -1;
    uint32_t cp = k ? c & (0x3fu >> k) : c;
    for (int j = 1; j <= k; j++) {
        if ((s[*i + (uint64_t)j] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[*i + (uint64_t)j] & 0x3f);
    }
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += (uint64_t)k + 1;
    return (int32_t)cp;
}

/* Token id's GGUF text into b->text: byte-level decoded, or raw. */
static enum qlm_err add_token(struct tokb *b, uint32_t id)
{
    const struct qlm_gguf_str *s = &b->toks->strs[id];
    const uint8_t *p = (const uint8_t *)s->ptr;
    int64_t type = type_of(b, id);
    if (s->len == 0 || s->len > 2 * MAX_TOKEN_BYTES)
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: token %u is %s", b->g->path, id,
                             s->len ? "too long" : "empty");
    uint8_t kind = QLM_TOK_NORMAL;
    size_t start = b->text_len;
    if (type == TT_CONTROL || type == TT_USER) {
        kind = type == TT_CONTROL ? QLM_TOK_SPECIAL : QLM_TOK_ADDED;
        memcpy(b->text + start, p, (size_t)s->len);
        b->text_len += (size_t)s->len;
    } else if (type == TT_NORMAL || type == TT_UNUSED) {
        for (uint64_t i = 0; i < s->len;) {
            int32_t cp = utf8_cp(p, s->len, &i);
            int byte = cp < 0 ? -1 : qlm_bytelevel_byte((uint32_t)cp);
            if (byte < 0)
                return qlm_error_set(b->err, QLM_E_FORMAT,
                                     "%s: token %u is not in the byte-level alphabet (a gpt2 "
                                     "tokenizer's)", b->g->path, id);
            b->text[b->text_len++] = (uint8_t)byte;
        }
        if (type == TT_NORMAL)
            b->index[b->n_index++] = (struct entry){s->ptr, s->len, id};
    } else {
        return qlm_error_set(b->err, QLM_E_FORMAT,
                             "%s: token %u has type %" PRId64 " (a gpt2 tokenizer has NORMAL, "
                             "CONTROL, USER_DEFINED and UNUSED tokens)", b->g->path, id, type);
    }
    b->tok[id] = (struct qlm_token){b->text + start, (uint32_t)(b->text_len - start), kind};
    return QLM_OK;
}

static enum qlm_err load_tokens(struct tokb *b)
{
    const struct qlm_gguf *g = b->g;
    QLM_TRY(qlm_gguf_get_array(g, "tokenizer.ggml.tokens", QLM_GGUF_STRING, &b->toks, b->err));
    if (qlm_gguf_find(g, "tokenizer.ggml.token_type")) {
        QLM_TRY(qlm_gguf_get_array(g, "tokenizer.ggml.token_type", QLM_GGUF_I32, &b->types,
                                   b->err));
        if (b->types->n != b->toks->n)
            return qlm_error_set(b->err, QLM_E_FORMAT,
                                 "%s: %" PRIu64 " token types for %" PRIu64 " tokens", g->path,
                                 b->types->n, b->toks->n);
    }
    uint64_t n = b->toks->n;
    while (n > 0 && type_of(b, (uint32_t)(n - 1)) == TT_UNUSED)
        n--;
    if (n == 0 || n >= MAX_TOKENS)
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: %" PRIu64 " tokens (1 to %u expected)",
                             g->path, n, MAX_TOKENS - 1);
    b->n = (uint32_t)n;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < b->n; i++)
        bytes += b->toks->strs[i].len; /* each below the file size: no overflow */
    b->tok = calloc(b->n, sizeof *b->tok);
    b->index = malloc((size_t)b->n * sizeof *b->index);
    b->text = malloc((size_t)bytes + 1);
    if (!b->tok || !b->index || !b->text)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", g->path);
    for (uint32_t i = 0; i < b->n; i++) /* decoded texts are no longer than the GGUF's */
        QLM_TRY(add_token(b, i));
    qsort(b->index, b->n_index, sizeof *b->index, cmp_entry);
    for (uint32_t i = 1; i < b->n_index; i++)
        if (cmp_entry(&b->index[i - 1], &b->index[i]) == 0)
            return qlm_error_set(b->err, QLM_E_FORMAT, "%s: tokens %u and %u have the same text",
                                 g->path, MIN_ID(b->index[i - 1].id, b->index[i].id),
                                 MAX_ID(b->index[i - 1].id, b->index[i].id));
    return QLM_OK;
}

static bool lookup(const struct tokb *b, const char *s, uint64_t len, uint32_t *id)
{
    struct entry key = {s, len, 0};
    const struct entry *e = bsearch(&key, b->index, b->n_index, sizeof *b->index, cmp_entry);
    if (e)
        *id = e->id;
    return e != NULL;
}

static enum qlm_err load_merges(struct tokb *b)
{
    const struct qlm_gguf *g = b->g;
    const struct qlm_gguf_kv *kv;
    QLM_TRY(qlm_gguf_get_array(g, "tokenizer.ggml.merges", QLM_GGUF_STRING, &kv, b->err));
    if (kv->n >= MAX_TOKENS)
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: %" PRIu64 " merges (at most %u)",
                             g->path, kv->n, MAX_TOKENS - 1);
    b->merges = malloc(((size_t)kv->n + 1) * sizeof *b->merges);
    char *cat = NULL;
    size_t cap = 0;
    if (!b->merges)
        return qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", g->path);
    enum qlm_err rc = QLM_OK;
    for (uint64_t i = 0; i < kv->n && rc == QLM_OK; i++) {
        const struct qlm_gguf_str *s = &kv->strs[i];
        const char *sp = memchr(s->ptr, ' ', (size_t)s->len);
        uint64_t la = sp ? (uint64_t)(sp - s->ptr) : 0, lc = sp ? s->len - la - 1 : 0;
        struct qlm_merge m;
        /* byte-level tokens hold no space: "a b" splits at its one space */
        if (!sp || la == 0 || lc == 0 || memchr(sp + 1, ' ', (size_t)lc)) {
            rc = qlm_error_set(b->err, QLM_E_FORMAT, "%s: merge %" PRIu64 " is not \"a b\"",
                               g->path, i);
            break;
        }
        if (cap < s->len) {
            char *c = realloc(cat, (size_t)s->len);
            if (!c) {
                rc = qlm_error_set(b->err, QLM_E_NOMEM, "%s: out of memory", g->path);
                break;
            }
            cat = c;
            cap = (size_t)s->len;
        }
        memcpy(cat, s->ptr, (size_t)la);
        memcpy(cat + la, sp + 1, (size_t)lc);
        if (!lookup(b, s->ptr, la, &m.left) || !lookup(b, sp + 1, lc, &m.right))
            rc = qlm_error_set(b->err, QLM_E_FORMAT,
                               "%s: merge %" PRIu64 ": a part is not a token", g->path, i);
        else if (!lookup(b, cat, la + lc, &m.result))
            rc = qlm_error_set(b->err, QLM_E_FORMAT,
                               "%s: merge %" PRIu64 ": the merged token is not a token", g->path,
                               i);
        else
            b->merges[b->n_merges++] = m;
    }
    free(cat);
    return rc;
}

/* A token id key (absent: -1), which must name a kept token. */
static enum qlm_err token_id(struct tokb *b, const char *key, int32_t *id)
{
    uint64_t v;
    enum qlm_err rc = qlm_gguf_get_uint(b->g, key, UINT32_MAX, &v, b->err);
    *id = -1;
    if (rc == QLM_E_NOTFOUND)
        return QLM_OK;
    QLM_TRY(rc);
    if (v >= b->n)
        return qlm_error_set(b->err, QLM_E_FORMAT, "%s: %s = %" PRIu64 " is not a token (of %u)",
                             b->g->path, key, v, b->n);
    *id = (int32_t)v;
    return QLM_OK;
}

static void add_eos(struct tokb *b, int32_t id)
{
    qlm_tok_eos_add(b->eos, &b->n_eos, sizeof b->eos / sizeof b->eos[0], id);
}

static int32_t find_text(const struct tokb *b, const char *s)
{
    size_t n = strlen(s);
    for (uint32_t id = b->n; id-- > 0;)
        if (b->tok[id].len == n && memcmp(b->tok[id].bytes, s, n) == 0)
            return (int32_t)id;
    return -1;
}

/* model, pre: which tokenizer; *pre_i its row of pre_types. */
static enum qlm_err check_kind(struct tokb *b, size_t *pre_i)
{
    const struct qlm_gguf *g = b->g;
    char *model = NULL, *pre = NULL;
    enum qlm_err rc = qlm_gguf_get_str(g, "tokenizer.ggml.model", &model, b->err);
    if (rc == QLM_OK && strcmp(model, "gpt2") != 0)
        rc = qlm_error_set(b->err, QLM_E_FORMAT,
                           "%s: tokenizer.ggml.model '%.40s' is not supported (gpt2: "
                           "byte-level BPE)", g->path, model);
    if (rc == QLM_OK)
        rc = qlm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, b->err);
    if (rc == QLM_E_NOTFOUND)
        rc = qlm_error_set(b->err, QLM_E_FORMAT,
                           "%s: no tokenizer.ggml.pre: which pre-split regex the tokenizer "
                           "uses is unknown", g->path);
    size_t i = 0, n = sizeof pre_types / sizeof pre_types[0];
    while (rc == QLM_OK && i < n && strcmp(pre, pre_types[i].name) != 0)
        i++;
    if (rc == QLM_OK && i == n)
        rc = qlm_error_set(b->err, QLM_E_FORMAT,
                           "%s: tokenizer.ggml.pre '%.40s' is not supported (qwen2)", g->path,
                           pre);
    else if (rc == QLM_OK && !pre_types[i].regex)
        rc = qlm_error_set(b->err, QLM_E_FORMAT,
                           "%s: tokenizer.ggml.pre '%s' is not supported: %s", g->path, pre,
                           pre_types[i].reason);
    free(model);
    free(pre);
    *pre_i = i;
    return rc;
}

static enum qlm_err build_tokdata(struct tokb *b, size_t pre_i, struct qlm_tokdata *out)
{
    const struct qlm_gguf *g = b->g;
    int32_t bos, eos, eot, eom, pad;
    QLM_TRY(token_id(b, "tokenizer.ggml.bos_token_id", &bos));
    QLM_TRY(token_id(b, "tokenizer.ggml.eos_token_id", &eos));
    QLM_TRY(token_id(b, "tokenizer.ggml.eot_token_id", &eot));
    QLM_TRY(token_id(b, "tokenizer.ggml.eom_token_id", &eom));
    QLM_TRY(token_id(b, "tokenizer.ggml.padding_token_id", &pad));
    bool add_bos = false;
    enum qlm_err rc = qlm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, b->err);
    if (rc != QLM_OK && rc != QLM_E_NOTFOUND)
        return rc;
    if (add_bos && bos < 0)
        return qlm_error_set(b->err, QLM_E_FORMAT,
                             "%s: tokenizer.ggml.add_bos_token is true but there is no "
                             "bos_token_id", g->path);
    rc = qlm_gguf_get_str(g, "tokenizer.chat_template", &b->chat_template, b->err);
    if (rc != QLM_OK && rc != QLM_E_NOTFOUND)
        return rc;
    add_eos(b, eos);
    add_eos(b, eot);
    add_eos(b, eom);
    add_eos(b, find_text(b, "<|endoftext|>"));
    add_eos(b, find_text(b, "<|im_end|>"));
    const char *regex = pre_types[pre_i].regex;
    QLM_TRY(qlm_schema_regex(regex, g->path, NULL, b->err));
    struct qlm_tokdata t = {
        .n_tokens = b->n, .n_merges = b->n_merges, .n_eos = b->n_eos,
        .flags = QLM_TOKF_BYTE_LEVEL | pre_types[pre_i].flags | (add_bos ? QLM_TOKF_ADD_BOS : 0),
        .bos_id = bos, .pad_id = pad, .eos = b->eos, .regex = (char *)regex,
        .chat_template = b->chat_template ? b->chat_template : (char *)"",
        .tokens = b->tok, .merges = b->merges,
    };
    /* one allocation, as every tokdata: through the QTOK blob, whose parser
     * checks every id once more */
    uint8_t *blob;
    size_t len;
    QLM_TRY(qlm_tokdata_serialize(&t, &blob, &len, b->err));
    return qlm_tokdata_parse_owned(blob, len, g->path, out, b->err);
}

enum qlm_err qlm_gguf_tokenizer(const struct qlm_gguf *g, struct qlm_tokdata *out,
                                struct qlm_error *err)
{
    memset(out, 0, sizeof *out);
    struct tokb b = {.g = g, .err = err};
    size_t pre_i;
    enum qlm_err rc = check_kind(&b, &pre_i);
    if (rc == QLM_OK)
        rc = load_tokens(&b);
    if (rc == QLM_OK)
        rc = load_merges(&b);
    if (rc == QLM_OK)
        rc = build_tokdata(&b, pre_i, out);
    free(b.tok);
    free(b.text);
    free(b.index);
    free(b.merges);
    free(b.chat_template);
    return rc;
}
