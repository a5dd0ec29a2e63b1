/*
 * chat.c — a minimal chat with libqlm: each line of stdin is a user message;
 * the whole conversation goes through the model's chat template
 * (qlm_chat_tokenize) every turn, and only the tokens past what the KV cache
 * already holds are evaluated.
 *
 *   cc chat.c -o chat $(pkg-config --cflags --libs qlm)
 *   ./chat MODEL.qlm [--no-think] < questions.txt
 */
#include <qlm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TURNS 64
#define REPLY_TOKENS 64
#define CTX 2048 /* at most: the model's maximum */

static int fail(const struct qlm_error *e)
{
    fprintf(stderr, "chat: %s\n", e->msg);
    return 1;
}

/* Append n bytes to the malloc'ed string *s of length *len. */
static int append(char **s, size_t *len, const char *p, size_t n)
{
    char *q = realloc(*s, *len + n + 1);
    if (!q)
        return -1;
    memcpy(q + *len, p, n);
    *len += n;
    q[*len] = '\0';
    *s = q;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--no-think") != 0)) {
        fprintf(stderr, "usage: chat MODEL.qlm [--no-think] < messages\n");
        return 2;
    }
    unsigned flags = QLM_CHAT_GENERATION_PROMPT | (argc == 3 ? QLM_CHAT_NO_THINKING : 0);
    struct qlm_error err;
    struct qlm_model *m;
    struct qlm_session *s;
    struct qlm_sampler *smp;
    struct qlm_sampler_params sp;
    if (qlm_model_open(&m, argv[1], &err) != QLM_OK)
        return fail(&err);
    int ctx = qlm_model_hparams(m)->max_pos < CTX ? qlm_model_hparams(m)->max_pos : CTX;
    if (qlm_session_new(&s, m, ctx, 0, &err) != QLM_OK)
        return fail(&err);
    qlm_sampler_defaults(&sp);
    sp.temp = 0; /* greedy, so that a run can be compared */
    if (qlm_sampler_new(&smp, &sp, qlm_model_hparams(m)->vocab_size, &err) != QLM_OK)
        return fail(&err);

    struct qlm_chat_message msgs[2 * MAX_TURNS];
    size_t n_msgs = 0;
    int32_t *cached = NULL;  /* the ids in the KV cache */
    size_t n_cached = 0;
    char line[4096];
    while (n_msgs < 2 * MAX_TURNS && fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line)
            continue;
        msgs[n_msgs].role = "user";
        msgs[n_msgs++].content = strdup(line);

        /* The conversation's ids; keep the cache's common prefix. */
        int32_t *ids;
        size_t n;
        if (qlm_chat_tokenize(m, NULL, msgs, n_msgs, flags, &ids, &n, &err) != QLM_OK)
            return fail(&err);
        if (n + REPLY_TOKENS > (size_t)ctx) {
            fprintf(stderr, "chat: the conversation no longer fits the context\n");
            free(ids);
            break;
        }
        size_t keep = 0;
        while (keep < n_cached && keep + 1 < n && cached[keep] == ids[keep])
            keep++;
        qlm_session_rewind(s, (int)keep);
        if (qlm_eval(s, ids + keep, (int)(n - keep), false, &err) != QLM_OK)
            return fail(&err);
        free(cached);
        cached = ids;
        n_cached = n;

        /* The reply, until an end token (<|im_end|>) or REPLY_TOKENS.  The
         * cache holds every token evaluated; the next turn re-renders the
         * reply (Qwen3 drops its think block) and keeps the common prefix. */
        struct qlm_detok dt = {0};
        char *reply = NULL, buf[512];
        size_t reply_len = 0;
        for (int i = 0; i < REPLY_TOKENS; i++) {
            int32_t id = qlm_sample(smp, qlm_logits(s));
            size_t len;
            if (qlm_token_is_eos(m, id) || !qlm_token_bytes(m, id, &len) ||
                len + 16 > sizeof buf)
                break;
            size_t w = qlm_detok_push(m, &dt, id, buf, sizeof buf);
            fwrite(buf, 1, w, stdout);
            fflush(stdout);
            if (append(&reply, &reply_len, buf, w) != 0)
                return 1;
            if (i + 1 == REPLY_TOKENS)
                break;
            int32_t *grown = realloc(cached, (n_cached + 1) * sizeof *cached);
            if (!grown)
                return 1;
            cached = grown;
            cached[n_cached++] = id;
            if (qlm_eval(s, &id, 1, false, &err) != QLM_OK)
                return fail(&err);
        }
        size_t w = qlm_detok_flush(&dt, buf, sizeof buf);
        fwrite(buf, 1, w, stdout);
        putchar('\n');
        if (append(&reply, &reply_len, buf, w) != 0)
            return 1;
        msgs[n_msgs].role = "assistant";
        msgs[n_msgs++].content = reply ? reply : strdup("");
    }
    for (size_t i = 0; i < n_msgs; i++)
        free((char *)msgs[i].content);
    free(cached);
    qlm_sampler_free(smp);
    qlm_session_free(s);
    qlm_model_free(m);
    return 0;
}
