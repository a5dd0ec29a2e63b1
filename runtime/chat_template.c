/*
 * chat_template.c — qlm_chat_render and qlm_chat_tokenize: a conversation in
 * the model's chat template (qlm.h).
 *
 * The template stored in a .qlm is a Jinja program; we do not run Jinja.  The
 * template is recognised as one of two families, and code that does what that
 * family's template does renders the messages:
 *
 *   Qwen3 (ChatML with thinking: mentions <|im_start|>, enable_thinking and
 *   reasoning_content), without tools:
 *     <|im_start|>system\n{content}<|im_end|>\n     (messages[0] only, if a system)
 *     <|im_start|>{user|system}\n{content}<|im_end|>\n
 *     <|im_start|>assistant\n{content}<|im_end|>\n   (the <think> block dropped;
 *        kept, as <think>\n{reasoning}\n</think>\n\n, after the last user query
 *        when the message is the last one or has reasoning)
 *     <|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n
 *        (consecutive tool messages share one user block)
 *     <|im_start|>assistant\n[<think>\n\n</think>\n\n]  (the generation prompt; the
 *        empty think block when enable_thinking is false)
 *   plain ChatML (mentions <|im_start|>, no <think>, no default system text):
 *     <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
 *
 * Anything else (Llama 3's headers, Qwen2.5's default system prompt, ...) is
 * refused rather than rendered differently from its template.
 *
 * Rendering writes pieces to a sink: template text, whose special tokens are
 * tokens, and message text, whose are not, so that a message cannot inject
 * "<|im_start|>".
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tokenizer.h"

enum family { FAMILY_CHATML, FAMILY_QWEN3 };

/* Where the rendered pieces go: the text into buf; with a model, ids.  Then
 * buf holds the run of text since the last special token of the template,
 * tokenized without special tokens when the next one comes and at the end:
 * as qlm_tokenize(text, parse_special) cuts the whole text at its special
 * tokens and tokenizes the pieces between them, but only the template's
 * special tokens count. */
struct sink {
    const struct qlm_model *m;   /* NULL: text only */
    char *buf;
    size_t n, cap;
    int32_t *ids;
    size_t n_ids, cap_ids;
    struct qlm_error *err;
};

static enum qlm_err sink_grow(void **p, size_t *cap, size_t need, size_t elem,
                              struct qlm_error *err)
{
    if (need <= *cap)
        return QLM_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return qlm_error_set(err, QLM_E_NOMEM, "chat template: conversation too long");
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return qlm_error_set(err, QLM_E_NOMEM, "chat template: out of memory");
    *p = q;
    *cap = c;
    return QLM_OK;
}

/* Text (len bytes) onto the text or the run. */
static enum qlm_err put_text(struct sink *k, const char *s, size_t len)
{
    if (len > SIZE_MAX - 1 - k->n)
        return qlm_error_set(k->err, QLM_E_NOMEM, "chat template: conversation too long");
    QLM_TRY(sink_grow((void **)&k->buf, &k->cap, k->n + len + 1, 1, k->err));
    memcpy(k->buf + k->n, s, len);
    k->n += len;
    k->buf[k->n] = '\0';
    return QLM_OK;
}

static enum qlm_err put_ids(struct sink *k, const int32_t *v, size_t n)
{
    if (n > SIZE_MAX / sizeof *v - k->n_ids)
        return qlm_error_set(k->err, QLM_E_NOMEM, "chat template: conversation too long");
    QLM_TRY(sink_grow((void **)&k->ids, &k->cap_ids, k->n_ids + n, sizeof *v, k->err));
    memcpy(k->ids + k->n_ids, v, n * sizeof *v);
    k->n_ids += n;
    return QLM_OK;
}

/* Tokenize the run (special-token text in it stays text) and empty it. */
static enum qlm_err flush_run(struct sink *k)
{
    if (k->n == 0)
        return QLM_OK;
    int32_t *t = NULL;
    size_t n = 0;
    QLM_TRY(qlm_tokenize(k->m, k->buf, k->n, false, &t, &n, k->err));
    enum qlm_err rc = put_ids(k, t, n);
    free(t);
    k->n = 0;
    return rc;
}

/* Template text: its "<|...|>" tags that are special tokens of the model
 * are those tokens. */
static enum qlm_err put_tmpl(struct sink *k, const char *s)
{
    while (k->m && *s) {
        const char *open = strstr(s, "<|"), *close = open ? strstr(open + 2, "|>") : NULL;
        if (!close)
            break;
        char tag[32];
        size_t tl = (size_t)(close + 2 - open);
        int32_t id = -1;
        if (tl < sizeof tag) {
            memcpy(tag, open, tl);
            tag[tl] = '\0';
            id = qlm_token_id(k->m, tag);
        }
        if (id >= 0 && qlm_tok_is_special(k->m->tok, id)) {
            QLM_TRY(put_text(k, s, (size_t)(open - s)));
            QLM_TRY(flush_run(k));
            QLM_TRY(put_ids(k, &id, 1));
        } else
            QLM_TRY(put_text(k, s, (size_t)(close + 2 - s)));
        s = close + 2;
    }
    return put_text(k, s, strlen(s));
}

/* ---- the template's family -------------------------------------------------- */

/* A default system message written into the template, as Qwen2.5's
 * '<|im_start|>system\nYou are Qwen...': the Jinja source has "system\n"
 * (backslash n) followed by text rather than by the end of the quoted
 * string. */
static bool has_default_system(const char *tmpl)
{
    static const char key[] = "<|im_start|>system\\n";
    for (const char *p = strstr(tmpl, key); p; p = strstr(p + 1, key)) {
        char c = p[sizeof key - 1];
        if (c != '\'' && c != '"')
            return true;
    }
    return false;
}

static enum qlm_err template_family(const char *tmpl, enum family *f, struct qlm_error *err)
{
    if (!tmpl || !*tmpl)
        return qlm_error_set(err, QLM_E_NOTFOUND, "chat template: the model has none");
    if (strstr(tmpl, "<|im_start|>")) {
        if (strstr(tmpl, "enable_thinking") && strstr(tmpl, "reasoning_content") &&
            !has_default_system(tmpl)) {
            *f = FAMILY_QWEN3;
            return QLM_OK;
        }
        if (!strstr(tmpl, "<think>") && !has_default_system(tmpl)) {
            *f = FAMILY_CHATML;
            return QLM_OK;
        }
    }
    return qlm_error_set(err, QLM_E_INVALID,
                         "chat template: not one qlm renders (ChatML, or Qwen3's with "
                         "enable_thinking)");
}

/* ---- Python's str methods, on (pointer, length) ------------------------------- */

struct span {
    const char *p;
    size_t n;
};

static struct span span_of(const char *s) { return (struct span){s, strlen(s)}; }

/* First (last = false) or last occurrence of needle, or NULL. */
static const char *span_find(struct span s, const char *needle, bool last)
{
    size_t k = strlen(needle);
    const char *hit = NULL;
    for (size_t i = 0; k <= s.n && i <= s.n - k; i++)
        if (memcmp(s.p + i, needle, k) == 0) {
            hit = s.p + i;
            if (!last)
                break;
        }
    return hit;
}

static struct span lstrip_nl(struct span s)
{
    while (s.n && *s.p == '\n')
        s.p++, s.n--;
    return s;
}

static struct span rstrip_nl(struct span s)
{
    while (s.n && s.p[s.n - 1] == '\n')
        s.n--;
    return s;
}

static bool starts_with(struct span s, const char *pre)
{
    size_t k = strlen(pre);
    return s.n >= k && memcmp(s.p, pre, k) == 0;
}

static bool ends_with(struct span s, const char *suf)
{
    size_t k = strlen(suf);
    return s.n >= k && memcmp(s.p + s.n - k, suf, k) == 0;
}

/* ---- rendering ---------------------------------------------------------------- */

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL };

static enum qlm_err check_messages(const struct qlm_chat_message *msgs, size_t n,
                                   enum role *roles, struct qlm_error *err)
{
    static const char *const names[] = {"system", "user", "assistant", "tool"};
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return qlm_error_set(err, QLM_E_INVALID, "chat message %zu: no %s", i,
                                 msgs[i].role ? "content" : "role");
        size_t r = 0;
        while (r < 4 && strcmp(msgs[i].role, names[r]) != 0)
            r++;
        if (r == 4)
            return qlm_error_set(err, QLM_E_INVALID,
                                 "chat message %zu: role '%.40s' is not system, user, "
                                 "assistant or tool", i, msgs[i].role);
        roles[i] = (enum role)r;
    }
    return QLM_OK;
}

static enum qlm_err chatml_block(struct sink *k, const char *role, struct span text)
{
    QLM_TRY(put_tmpl(k, "<|im_start|>"));
    QLM_TRY(put_tmpl(k, role));
    QLM_TRY(put_tmpl(k, "\n"));
    QLM_TRY(put_text(k, text.p, text.n));
    return put_tmpl(k, "<|im_end|>\n");
}

/* An assistant message of Qwen3's template.  With a </think>, the reply is
 * what follows the last one and the reasoning what lies between the last
 * <think> before the first </think> and that </think>.  The think block is
 * kept only after the last user query, when the message is the last one or
 * has reasoning. */
static enum qlm_err qwen3_assistant(struct sink *k, struct span c, bool after_query,
                                    bool last)
{
    struct span reply = c, reason = {c.p, 0};
    const char *last_end = span_find(c, "</think>", true);
    if (last_end) {
        reply = lstrip_nl((struct span){last_end + 8, (size_t)(c.p + c.n - last_end - 8)});
        const char *first_end = span_find(c, "</think>", false);
        struct span before = rstrip_nl((struct span){c.p, (size_t)(first_end - c.p)});
        const char *open = span_find(before, "<think>", true);
        if (open)
            before = (struct span){open + 7, (size_t)(before.p + before.n - open - 7)};
        reason = lstrip_nl(before);
    }
    QLM_TRY(put_tmpl(k, "<|im_start|>assistant\n"));
    if (after_query && (last || reason.n)) {
        QLM_TRY(put_tmpl(k, "<think>\n"));
        reason = rstrip_nl(reason);
        QLM_TRY(put_text(k, reason.p, reason.n));
        QLM_TRY(put_tmpl(k, "\n</think>\n\n"));
        reply = lstrip_nl(reply);
    }
    QLM_TRY(put_text(k, reply.p, reply.n));
    return put_tmpl(k, "<|im_end|>\n");
}

/* Qwen3's template without tools.  Its first system message is written
 * before its loop over the messages, the others in it, alike. */
static enum qlm_err render_qwen3(struct sink *k, const struct qlm_chat_message *msgs,
                                 const enum role *roles, size_t n)
{
    /* The last user message that is not a wrapped tool response (else the
     * last message). */
    size_t last_query = n - 1;
    for (size_t i = n; i-- > 0;) {
        struct span c = span_of(msgs[i].content);
        if (roles[i] == ROLE_USER &&
            !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct span c = span_of(msgs[i].content);
        switch (roles[i]) {
        case ROLE_SYSTEM:
        case ROLE_USER:
            QLM_TRY(chatml_block(k, msgs[i].role, c));
            break;
        case ROLE_ASSISTANT:
            QLM_TRY(qwen3_assistant(k, c, i > last_query, i == n - 1));
            break;
        case ROLE_TOOL:
            if (i == 0 || roles[i - 1] != ROLE_TOOL)
                QLM_TRY(put_tmpl(k, "<|im_start|>user"));
            QLM_TRY(put_tmpl(k, "\n<tool_response>\n"));
            QLM_TRY(put_text(k, c.p, c.n));
            QLM_TRY(put_tmpl(k, "\n</tool_response>"));
            if (i == n - 1 || roles[i + 1] != ROLE_TOOL)
                QLM_TRY(put_tmpl(k, "<|im_end|>\n"));
            break;
        }
    }
    return QLM_OK;
}

static enum qlm_err render(struct sink *k, const char *tmpl, const struct qlm_chat_message *msgs,
                           size_t n, unsigned flags)
{
    enum family f = FAMILY_CHATML;
    QLM_TRY(template_family(tmpl, &f, k->err));
    if (n == 0)
        return qlm_error_set(k->err, QLM_E_INVALID, "chat template: no messages");
    if (n > SIZE_MAX / sizeof(enum role))
        return qlm_error_set(k->err, QLM_E_NOMEM, "chat template: too many messages");
    enum role *roles = malloc(n * sizeof *roles);
    if (!roles)
        return qlm_error_set(k->err, QLM_E_NOMEM, "chat template: out of memory");
    enum qlm_err rc = check_messages(msgs, n, roles, k->err);
    if (rc == QLM_OK && f == FAMILY_QWEN3)
        rc = render_qwen3(k, msgs, roles, n);
    for (size_t i = 0; rc == QLM_OK && f == FAMILY_CHATML && i < n; i++)
        rc = chatml_block(k, msgs[i].role, span_of(msgs[i].content));
    free(roles);
    if (rc == QLM_OK && (flags & QLM_CHAT_GENERATION_PROMPT)) {
        rc = put_tmpl(k, "<|im_start|>assistant\n");
        if (rc == QLM_OK && f == FAMILY_QWEN3 && (flags & QLM_CHAT_NO_THINKING))
            rc = put_tmpl(k, "<think>\n\n</think>\n\n");
    }
    if (rc == QLM_OK && k->m)
        rc = flush_run(k);
    return rc;
}

static const char *template_of(const struct qlm_model *m, const char *tmpl)
{
    return tmpl ? tmpl : m ? qlm_chat_template(m) : NULL;
}

enum qlm_err qlm_chat_render(const struct qlm_model *m, const char *tmpl,
                             const struct qlm_chat_message *msgs, size_t n_msgs, unsigned flags,
                             char **text, size_t *len, struct qlm_error *err)
{
    *text = NULL;
    *len = 0;
    struct sink k = {.err = err};
    enum qlm_err rc = render(&k, template_of(m, tmpl), msgs, n_msgs, flags);
    if (rc != QLM_OK) {
        free(k.buf);
        return rc;
    }
    *text = k.buf;
    *len = k.n;
    return QLM_OK;
}

enum qlm_err qlm_chat_tokenize(const struct qlm_model *m, const char *tmpl,
                               const struct qlm_chat_message *msgs, size_t n_msgs,
                               unsigned flags, int32_t **ids, size_t *n_ids,
                               struct qlm_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    if (!m)
        return qlm_error_set(err, QLM_E_INVALID, "chat template: no model to tokenize with");
    struct sink k = {.m = m, .err = err};
    enum qlm_err rc = render(&k, template_of(m, tmpl), msgs, n_msgs, flags);
    free(k.buf);
    if (rc != QLM_OK) {
        free(k.ids);
        return rc;
    }
    *ids = k.ids;
    *n_ids = k.n_ids;
    return QLM_OK;
}
