/* chat.c — built-in ChatML formatter for qlm-run --chat; see chat.h. */
#include "config.h"

#include "chat.h"

#include <stdlib.h>
#include <string.h>

bool qlm_chat_is_chatml(const char *tmpl)
{
    return tmpl && strstr(tmpl, "<|im_start|>") != NULL;
}

enum qlm_err qlm_chat_init(struct qlm_chat *c, const struct qlm_model *m, const char *system,
                           bool thinking, struct qlm_error *err)
{
    memset(c, 0, sizeof *c);
    const char *tmpl = qlm_chat_template(m);
    if (!tmpl || !*tmpl)
        return qlm_error_set(err, QLM_E_INVALID,
                             "--chat: the model has no chat template");
    if (!qlm_chat_is_chatml(tmpl))
        return qlm_error_set(err, QLM_E_INVALID,
                             "--chat: the model's chat template is not ChatML "
                             "(only ChatML templates are supported)");
    c->model = m;
    c->im_start = qlm_token_id(m, "<|im_start|>");
    c->im_end = qlm_token_id(m, "<|im_end|>");
    if (c->im_start < 0 || c->im_end < 0)
        return qlm_error_set(err, QLM_E_INVALID,
                             "--chat: the chat template is ChatML but the vocabulary lacks "
                             "<|im_start|> or <|im_end|>");
    c->think = qlm_token_id(m, "<think>");
    c->think_end = qlm_token_id(m, "</think>");
    c->thinking = thinking;
    if (system) {
        c->system = strdup(system);
        if (!c->system)
            return qlm_error_set(err, QLM_E_NOMEM, "--system: out of memory");
    }
    return QLM_OK;
}

void qlm_chat_free(struct qlm_chat *c)
{
    free(c->system);
    c->system = NULL;
}

/* A growing id buffer. */
struct ids {
    int32_t *v;
    size_t n, cap;
};

static enum qlm_err ids_append(struct ids *b, const int32_t *v, size_t n, struct qlm_error *err)
{
    if (n > SIZE_MAX / sizeof *b->v - b->n)
        return qlm_error_set(err, QLM_E_NOMEM, "chat: message too long");
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n)
            cap = cap > SIZE_MAX / sizeof *b->v / 2 ? b->n + n : cap * 2;
        int32_t *p = realloc(b->v, cap * sizeof *p);
        if (!p)
            return qlm_error_set(err, QLM_E_NOMEM, "chat: out of memory");
        b->v = p;
        b->cap = cap;
    }
    memcpy(b->v + b->n, v, n * sizeof *v);
    b->n += n;
    return QLM_OK;
}

/* Tokenize text (special tokens parsed or not) onto b. */
static enum qlm_err add_text(const struct qlm_chat *c, struct ids *b, const char *text,
                             size_t len, bool special, struct qlm_error *err)
{
    if (len == 0)
        return QLM_OK;
    int32_t *t = NULL;
    size_t n = 0;
    QLM_TRY(qlm_tokenize(c->model, text, len, special, &t, &n, err));
    enum qlm_err rc = ids_append(b, t, n, err);
    free(t);
    return rc;
}

static enum qlm_err add_tmpl(const struct qlm_chat *c, struct ids *b, const char *s,
                             struct qlm_error *err)
{
    return add_text(c, b, s, strlen(s), true, err);
}

static enum qlm_err build_turn(struct qlm_chat *c, struct ids *b, const char *msg, size_t len,
                               struct qlm_error *err)
{
    if (c->turns > 0)
        QLM_TRY(add_tmpl(c, b, "<|im_end|>\n", err));
    else if (c->system) {
        QLM_TRY(add_tmpl(c, b, "<|im_start|>system\n", err));
        QLM_TRY(add_text(c, b, c->system, strlen(c->system), false, err));
        QLM_TRY(add_tmpl(c, b, "<|im_end|>\n", err));
    }
    QLM_TRY(add_tmpl(c, b, "<|im_start|>user\n", err));
    QLM_TRY(add_text(c, b, msg, len, false, err));
    QLM_TRY(add_tmpl(c, b, "<|im_end|>\n<|im_start|>assistant\n", err));
    if (!c->thinking)
        QLM_TRY(add_tmpl(c, b, "<think>\n\n</think>\n\n", err));
    return QLM_OK;
}

enum qlm_err qlm_chat_turn(struct qlm_chat *c, const char *msg, size_t len, int32_t **ids,
                           size_t *n_ids, struct qlm_error *err)
{
    struct ids b = {0};
    enum qlm_err rc = build_turn(c, &b, msg, len, err);
    if (rc != QLM_OK) {
        free(b.v);
        return rc;
    }
    c->turns++;
    *ids = b.v;
    *n_ids = b.n;
    return QLM_OK;
}

bool qlm_chat_is_stop(const struct qlm_chat *c, int32_t id)
{
    return id == c->im_end || qlm_token_is_eos(c->model, id);
}
