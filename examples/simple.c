/*
 * simple.c — the smallest libqlm program: open a model, tokenize a prompt,
 * generate greedily, print the text as it comes.
 *
 *   cc simple.c -o simple $(pkg-config --cflags --libs qlm)
 *   ./simple MODEL.qlm "Once upon a time" [N]
 */
#include <qlm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const struct qlm_error *e)
{
    fprintf(stderr, "simple: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: simple MODEL.qlm PROMPT [N]\n");
        return 2;
    }
    int n_gen = argc == 4 ? atoi(argv[3]) : 32;
    struct qlm_error err;
    struct qlm_model *m;
    if (qlm_model_open(&m, argv[1], &err) != QLM_OK)
        return fail(&err);

    /* The prompt's ids: special-token text such as <|im_start|> is a token. */
    int32_t *ids;
    size_t n_ids;
    if (qlm_tokenize(m, argv[2], strlen(argv[2]), true, &ids, &n_ids, &err) != QLM_OK)
        return fail(&err);

    /* A context for the prompt and the reply; 0 threads: the physical cores. */
    struct qlm_session *s;
    if (qlm_session_new(&s, m, (int)n_ids + n_gen, 0, &err) != QLM_OK)
        return fail(&err);
    struct qlm_sampler_params sp;
    qlm_sampler_defaults(&sp);
    sp.temp = 0; /* greedy */
    struct qlm_sampler *smp;
    if (qlm_sampler_new(&smp, &sp, qlm_model_hparams(m)->vocab_size, &err) != QLM_OK)
        return fail(&err);

    /* Evaluate the prompt, then one token at a time: each sampled token is
     * printed (the detokenizer holds back half a UTF-8 character) and
     * evaluated to give the next one's logits. */
    if (qlm_eval(s, ids, (int)n_ids, false, &err) != QLM_OK)
        return fail(&err);
    struct qlm_detok dt = {0};
    char buf[512];
    for (int i = 0; i < n_gen; i++) {
        int32_t id = qlm_sample(smp, qlm_logits(s));
        if (qlm_token_is_eos(m, id))
            break;
        size_t len;
        if (qlm_token_bytes(m, id, &len) && len + 16 <= sizeof buf)
            fwrite(buf, 1, qlm_detok_push(m, &dt, id, buf, sizeof buf), stdout);
        fflush(stdout);
        if (i + 1 < n_gen && qlm_eval(s, &id, 1, false, &err) != QLM_OK)
            return fail(&err);
    }
    fwrite(buf, 1, qlm_detok_flush(&dt, buf, sizeof buf), stdout);
    putchar('\n');

    free(ids);
    qlm_sampler_free(smp);
    qlm_session_free(s);
    qlm_model_free(m);
    return 0;
}
