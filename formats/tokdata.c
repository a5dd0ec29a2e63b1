/* tokdata.c — the "QTOK" tokenizer blob: serialize, and parse untrusted
 * bytes with every length and id checked before anything is allocated. */
#include "qlm_format.h"
#include "fmt_internal.h"

#include <stdlib.h>

#define QTOK_VERSION 1u
#define QTOK_KNOWN_FLAGS (QLM_TOKF_NFC | QLM_TOKF_ADD_BOS | QLM_TOKF_BYTE_LEVEL)

void qlm_tokdata_free(struct qlm_tokdata *t)
{
    if (!t)
        return;
    free(t->storage_);
    memset(t, 0, sizeof *t);
}

enum qlm_err qlm_tokdata_serialize(const struct qlm_tokdata *t, uint8_t **out, size_t *out_len,
                                   struct qlm_error *err)
{
    const char *re = t->regex ? t->regex : "";
    const char *ct = t->chat_template ? t->chat_template : "";
    size_t rl = strlen(re), cl = strlen(ct);
    uint64_t n = 4 + 7 * 4, part; /* magic, 7 u32 fields */
    *out = NULL;
    *out_len = 0;
    if (rl > UINT32_MAX || cl > UINT32_MAX)
        return qlm_error_set(err, QLM_E_RANGE, "tokenizer: regex or chat template too long");
    bool ok = qlm_fmt_mul(t->n_eos, 4, &part) && qlm_fmt_add(n, part, &n) &&
              qlm_fmt_add(n, 8 + rl + cl, &n) && qlm_fmt_mul(t->n_merges, 12, &part) &&
              qlm_fmt_add(n, part, &n) && qlm_fmt_mul(t->n_tokens, 5, &part) &&
              qlm_fmt_add(n, part, &n);
    for (uint32_t i = 0; ok && i < t->n_tokens; i++)
        ok = qlm_fmt_add(n, t->tokens[i].len, &n);
    if (!ok || n > SIZE_MAX)
        return qlm_error_set(err, QLM_E_RANGE, "tokenizer: too large to serialize");
    uint8_t *b = malloc((size_t)n), *p = b;
    if (!b)
        return qlm_error_set(err, QLM_E_NOMEM, "tokenizer: out of memory");
    memcpy(p, "QTOK", 4);
    qlm_fmt_wr32(p + 4, QTOK_VERSION);
    qlm_fmt_wr32(p + 8, t->n_tokens);
    qlm_fmt_wr32(p + 12, t->n_merges);
    qlm_fmt_wr32(p + 16, t->flags);
    qlm_fmt_wr32(p + 20, (uint32_t)t->bos_id);
    qlm_fmt_wr32(p + 24, (uint32_t)t->pad_id);
    qlm_fmt_wr32(p + 28, t->n_eos);
    p += 32;
    for (uint32_t i = 0; i < t->n_eos; i++, p += 4)
        qlm_fmt_wr32(p, t->eos[i]);
    qlm_fmt_wr32(p, (uint32_t)rl);
    memcpy(p + 4, re, rl);
    p += 4 + rl;
    qlm_fmt_wr32(p, (uint32_t)cl);
    memcpy(p + 4, ct, cl);
    p += 4 + cl;
    for (uint32_t i = 0; i < t->n_tokens; i++) {
        p[0] = t->tokens[i].kind;
        qlm_fmt_wr32(p + 1, t->tokens[i].len);
        if (t->tokens[i].len)
            memcpy(p + 5, t->tokens[i].bytes, t->tokens[i].len);
        p += 5 + t->tokens[i].len;
    }
    for (uint32_t i = 0; i < t->n_merges; i++, p += 12) {
        qlm_fmt_wr32(p, t->merges[i].left);
        qlm_fmt_wr32(p + 4, t->merges[i].right);
        qlm_fmt_wr32(p + 8, t->merges[i].result);
    }
    *out = b;
    *out_len = (size_t)n;
    return QLM_OK;
}

#define BAD(...) qlm_error_set(err, QLM_E_FORMAT, __VA_ARGS__)

static enum qlm_err place_owned(uint8_t *buf, size_t len, size_t tok_start, uint32_t rl,
                                uint32_t cl, struct qlm_tokdata *t);

/* own: NULL to copy buf, else buf itself (malloc'ed), taken over. */
static enum qlm_err parse(const uint8_t *buf, size_t len, const char *name,
                          struct qlm_tokdata *t, struct qlm_error *err, uint8_t *own)
{
    struct qlm_fmt_cur c = {buf, len, 0, true};
    memset(t, 0, sizeof *t);
    if (!name)
        name = "tokenizer";
    const uint8_t *magic = qlm_fmt_take(&c, 4);
    if (!magic || memcmp(magic, "QTOK", 4) != 0)
        return BAD("%s: tokenizer: bad magic (not a QTOK blob)", name);
    uint32_t version = qlm_fmt_get32(&c);
    uint32_t n_tokens = qlm_fmt_get32(&c), n_merges = qlm_fmt_get32(&c);
    uint32_t flags = qlm_fmt_get32(&c);
    int32_t bos = (int32_t)qlm_fmt_get32(&c), pad = (int32_t)qlm_fmt_get32(&c);
    uint32_t n_eos = qlm_fmt_get32(&c);
    if (!c.ok)
        return BAD("%s: tokenizer: truncated header", name);
    if (version != QTOK_VERSION)
        return qlm_error_set(err, QLM_E_VERSION, "%s: tokenizer: QTOK version %u unsupported",
                             name, version);
    if (flags & ~QTOK_KNOWN_FLAGS)
        return BAD("%s: tokenizer: unknown flags 0x%x", name, flags);
    if (bos < -1 || (bos >= 0 && (uint32_t)bos >= n_tokens))
        return BAD("%s: tokenizer: bos id %d out of range (%u tokens)", name, bos, n_tokens);
    if (pad < -1 || (pad >= 0 && (uint32_t)pad >= n_tokens))
        return BAD("%s: tokenizer: pad id %d out of range (%u tokens)", name, pad, n_tokens);
    /* Bound every count by the bytes left before trusting it with malloc. */
    size_t left = len - c.pos;
    if ((uint64_t)n_eos * 4 > left || (uint64_t)n_tokens * 5 > left ||
        (uint64_t)n_merges * 12 > left)
        return BAD("%s: tokenizer: counts (%u tokens, %u merges, %u eos) exceed the %zu-byte "
                   "blob", name, n_tokens, n_merges, n_eos, len);
    const uint8_t *eos = qlm_fmt_take(&c, (size_t)n_eos * 4);
    uint32_t rl = qlm_fmt_get32(&c);
    const uint8_t *re = qlm_fmt_take(&c, rl);
    uint32_t cl = qlm_fmt_get32(&c);
    const uint8_t *ct = qlm_fmt_take(&c, cl);
    if (!c.ok)
        return BAD("%s: tokenizer: regex or chat template length past the end", name);
    if (memchr(re, 0, rl) || memchr(ct, 0, cl))
        return BAD("%s: tokenizer: NUL byte in regex or chat template", name);
    for (uint32_t i = 0; i < n_eos; i++)
        if (qlm_fmt_rd32(eos + 4 * i) >= n_tokens)
            return BAD("%s: tokenizer: eos id %u out of range (%u tokens)", name,
                       qlm_fmt_rd32(eos + 4 * i), n_tokens);
    size_t tok_start = c.pos;
    uint64_t text_len = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        uint8_t kind = qlm_fmt_get8(&c);
        uint32_t tl = qlm_fmt_get32(&c);
        qlm_fmt_take(&c, tl);
        if (!c.ok)
            return BAD("%s: tokenizer: token %u length past the end", name, i);
        if (kind > QLM_TOK_SPECIAL)
            return BAD("%s: tokenizer: token %u has unknown kind %u", name, i, kind);
        text_len += tl;
    }
    if ((uint64_t)n_merges * 12 != len - c.pos)
        return BAD("%s: tokenizer: %zu bytes where %u merges need %llu", name, len - c.pos,
                   n_merges, (unsigned long long)n_merges * 12);
    const uint8_t *mp = buf + c.pos;
    for (uint32_t i = 0; i < 3 * n_merges; i++)
        if (qlm_fmt_rd32(mp + 4 * (size_t)i) >= n_tokens)
            return BAD("%s: tokenizer: merge %u names token id %u of %u", name, i / 3,
                       qlm_fmt_rd32(mp + 4 * (size_t)i), n_tokens);

    if (own) {
        t->n_tokens = n_tokens;
        t->n_merges = n_merges;
        t->n_eos = n_eos;
        t->flags = flags;
        t->bos_id = bos;
        t->pad_id = pad;
        if (place_owned(own, len, tok_start, rl, cl, t) != QLM_OK) {
            memset(t, 0, sizeof *t);
            return qlm_error_set(err, QLM_E_NOMEM, "%s: tokenizer: out of memory", name);
        }
        return QLM_OK;
    }
    /* One allocation, as every producer of qlm_tokdata does. */
    size_t off_merge = (size_t)n_tokens * sizeof(struct qlm_token);
    size_t off_eos = off_merge + (size_t)n_merges * sizeof(struct qlm_merge);
    size_t off_re = off_eos + (size_t)n_eos * 4;
    size_t off_ct = off_re + rl + 1;
    size_t off_text = off_ct + cl + 1;
    size_t total = off_text + (size_t)text_len;
    uint8_t *mem = malloc(total ? total : 1);
    if (!mem)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: tokenizer: out of memory", name);
    t->storage_ = mem;
    t->n_tokens = n_tokens;
    t->n_merges = n_merges;
    t->n_eos = n_eos;
    t->flags = flags;
    t->bos_id = bos;
    t->pad_id = pad;
    t->tokens = (struct qlm_token *)(void *)mem;
    t->merges = (struct qlm_merge *)(void *)(mem + off_merge);
    t->eos = (uint32_t *)(void *)(mem + off_eos);
    t->regex = (char *)mem + off_re;
    t->chat_template = (char *)mem + off_ct;
    for (uint32_t i = 0; i < n_eos; i++)
        t->eos[i] = qlm_fmt_rd32(eos + 4 * i);
    memcpy(t->regex, re, rl);
    t->regex[rl] = 0;
    memcpy(t->chat_template, ct, cl);
    t->chat_template[cl] = 0;
    uint8_t *text = mem + off_text;
    const uint8_t *p = buf + tok_start;
    for (uint32_t i = 0; i < n_tokens; i++) {
        uint32_t tl = qlm_fmt_rd32(p + 1);
        t->tokens[i] = (struct qlm_token){.bytes = text, .len = tl, .kind = p[0]};
        memcpy(text, p + 5, tl);
        text += tl;
        p += 5 + tl;
    }
    for (uint32_t i = 0; i < n_merges; i++)
        t->merges[i] = (struct qlm_merge){qlm_fmt_rd32(mp + 12 * (size_t)i),
                                          qlm_fmt_rd32(mp + 12 * (size_t)i + 4),
                                          qlm_fmt_rd32(mp + 12 * (size_t)i + 8)};
    return QLM_OK;
}

enum qlm_err qlm_tokdata_parse(const uint8_t *buf, size_t len, const char *name,
                               struct qlm_tokdata *t, struct qlm_error *err)
{
    return parse(buf, len, name, t, err, NULL);
}

enum qlm_err qlm_tokdata_parse_owned(uint8_t *buf, size_t len, const char *name,
                                     struct qlm_tokdata *t, struct qlm_error *err)
{
    enum qlm_err rc = parse(buf, len, name, t, err, buf);
    if (rc != QLM_OK)
        free(buf); /* on success it is t->storage_ */
    return rc;
}

/* The owned blob (already checked) becomes the storage: buf grows by the
 * token table, eos ids, regex and template (realloc, which moves rather than
 * copies big blocks on most systems); token bytes stay where they are and
 * the merges are used in place, shifted up to 3 bytes into slack to align
 * them (byte-swapped there on a big-endian host). */
static enum qlm_err place_owned(uint8_t *buf, size_t len, size_t tok_start, uint32_t rl,
                                uint32_t cl, struct qlm_tokdata *t)
{
    uint64_t merge_at = len - (uint64_t)t->n_merges * 12, base, total, part;
    bool ok = sizeof(struct qlm_merge) == 12 && qlm_fmt_align(len + 3, 8, &base) &&
              qlm_fmt_mul(t->n_tokens, sizeof(struct qlm_token), &total) &&
              qlm_fmt_add(total, base, &total) && qlm_fmt_mul(t->n_eos, 4, &part) &&
              qlm_fmt_add(total, part, &total) && qlm_fmt_add(total, (uint64_t)rl + cl + 2, &total) &&
              total <= SIZE_MAX;
    uint8_t *mem = ok ? realloc(buf, (size_t)total) : NULL;
    if (!mem)
        return QLM_E_NOMEM; /* buf is still the caller's */
    struct qlm_token *tokens = (struct qlm_token *)(void *)(mem + base);
    uint32_t *eos = (uint32_t *)(void *)(mem + base + (size_t)t->n_tokens * sizeof *tokens);
    char *re = (char *)(eos + t->n_eos), *ct = re + rl + 1;
    const uint8_t *p = mem + 32; /* the header's eos ids, then regex, template */
    for (uint32_t i = 0; i < t->n_eos; i++, p += 4)
        eos[i] = qlm_fmt_rd32(p);
    memcpy(re, p + 4, rl);
    re[rl] = 0;
    memcpy(ct, p + 8 + rl, cl);
    ct[cl] = 0;
    p = mem + tok_start;
    for (uint32_t i = 0; i < t->n_tokens; i++) {
        uint32_t tl = qlm_fmt_rd32(p + 1);
        tokens[i] = (struct qlm_token){.bytes = p + 5, .len = tl, .kind = p[0]};
        p += 5 + tl;
    }
    size_t m_at = (size_t)merge_at + (4 - (size_t)merge_at % 4) % 4;
    memmove(mem + m_at, mem + merge_at, (size_t)t->n_merges * 12);
    const uint32_t probe = 1;
    if (*(const uint8_t *)&probe != 1)
        for (size_t i = 0; i < (size_t)t->n_merges * 3; i++) {
            uint32_t v = qlm_fmt_rd32(mem + m_at + 4 * i);
            memcpy(mem + m_at + 4 * i, &v, 4);
        }
    t->storage_ = mem;
    t->tokens = tokens;
    t->merges = (struct qlm_merge *)(void *)(mem + m_at);
    t->eos = eos;
    t->regex = re;
    t->chat_template = ct;
    return QLM_OK;
}
