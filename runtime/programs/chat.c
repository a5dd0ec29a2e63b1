/* chat.c — built-in ChatML formatter for qlm-run --chat; see chat.h. */
#include "config.h"

#include "chat.h"

#include <stdlib.h>
#include <string.h>

enum qlm_err qlm_chat_init(struct qlm_chat *c, const struct qlm_model *m, const char *system,
                           bool thinking, struct qlm_error *err)
{
    memset(c, 0, sizeof *c);
    /* a first message rendered now refuses a template qlm cannot render */
    struct qlm_chat_message probe = {"user", "x"};
    char *text;
    size_t len;
    QLM_TRY(qlm_chat_render(m, NULL, &probe, 1, 0, &text, &len, err));
    free(text);
    c->model = m;
    c->im_end = qlm_token_id(m, "<|im_end|>");
    if (c->im_end < 0)
        return qlm_error_set(err, QLM_E_INVALID,
                             "--chat: the chat template is ChatML but the vocabulary lacks "
                             "<|im_end|>");
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

/* The turn: the closing "<|im_end|>\n" of the previous reply, then the
 * messages (the system one first) as the model's template renders them,
 * with the generation prompt. */
static enum qlm_err build_turn(struct qlm_chat *c, struct ids *b, const char *msg,
                               struct qlm_error *err)
{
    int32_t *t = NULL;
    size_t n = 0;
    if (c->turns > 0) {
        QLM_TRY(qlm_tokenize(c->model, "<|im_end|>\n", 11, true, &t, &n, err));
        enum qlm_err rc = ids_append(b, t, n, err);
        free(t);
        QLM_TRY(rc);
    }
    struct qlm_chat_message msgs[2];
    size_t n_msgs = 0;
    if (c->turns == 0 && c->system)
        msgs[n_msgs++] = (struct qlm_chat_message){"system", c->system};
    msgs[n_msgs++] = (struct qlm_chat_message){"user", msg};
    unsigned flags = QLM_CHAT_GENERATION_PROMPT | (c->thinking ? 0 : QLM_CHAT_NO_THINKING);
    QLM_TRY(qlm_chat_tokenize(c->model, NULL, msgs, n_msgs, flags, &t, &n, err));
    enum qlm_err rc = ids_append(b, t, n, err);
    free(t);
    return rc;
}

enum qlm_err qlm_chat_turn(struct qlm_chat *c, const char *msg, size_t len, int32_t **ids,
                           size_t *n_ids, struct qlm_error *err)
{
    if (memchr(msg, '\0', len))
        return qlm_error_set(err, QLM_E_INVALID, "--chat: a message holds a NUL byte");
    char *text = malloc(len + 1);
    if (!text)
        return qlm_error_set(err, QLM_E_NOMEM, "--chat: out of memory");
    memcpy(text, msg, len);
    text[len] = '\0';
    struct ids b = {0};
    enum qlm_err rc = build_turn(c, &b, text, err);
    free(text);
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
