/* run_main.c — qlm-run: generate text from a .qlm model, or chat with it. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "qlm.h"

#define DEFAULT_N 128
#define DEFAULT_CTX 4096

enum { EXIT_ERR = QLM_CLI_EXIT_ERR };

static const char HELP[] =
    "Usage: qlm-run FILE.qlm (-p PROMPT | -f FILE | --tokens FILE) [OPTION]...\n"
    "       qlm-run FILE.qlm --chat [OPTION]...\n"
    "Generate text from a quantized Qwen3 model, or chat with it.\n"
    "\n"
    "Input:\n"
    "  -m, --model FILE      FILE.qlm given as an option\n"
    "  -p, --prompt TEXT     the prompt\n"
    "  -f, --file FILE       read the prompt from FILE ('-' = stdin)\n"
    "      --tokens FILE     the prompt as whitespace-separated token ids\n"
    "      --no-special      tokenize special-token text (<|im_start|>) in the\n"
    "                        prompt as plain text\n"
    "Generation:\n"
    "  -n, --n-predict N     tokens to generate (default 128; in --chat: per reply,\n"
    "                        default until the context is full)\n"
    "      --temp T          temperature (default 0.8; 0 = greedy)\n"
    "      --top-k K         keep the K most likely tokens (default 40; 0 = off)\n"
    "      --top-p P         nucleus sampling (default 0.95; 1 = off)\n"
    "      --min-p P         drop tokens below P x the top probability\n"
    "                        (default 0.05; 0 = off)\n"
    "  -s, --seed S          sampler seed (default: from the clock, printed)\n"
    "  -c, --ctx N, --ctx-size N\n"
    "                        context length in tokens (default 4096, at most the\n"
    "                        model's maximum)\n"
    "  -t, --threads N       threads (default: physical cores)\n"
    "      --kv-type T       KV cache elements: f16 or f32 (default: f16 for q8/q4\n"
    "                        models, f32 for float ones)\n"
    "Chat:\n"
    "      --chat            interactive chat (ChatML) reading stdin line by line;\n"
    "                        '/exit' or end of input ends it\n"
    "      --system TEXT     system message for --chat\n"
    "      --no-think        --chat: skip the model's thinking (empty <think> block)\n"
    "Output:\n"
    "      --tokenize        print the prompt's token ids on one line and exit\n"
    "      --print-ids       print the generated token ids instead of the text\n"
    "      --logits-out FILE write the logits of every prompt position to FILE as\n"
    "                        raw little-endian f32 (positions x vocab)\n"
    "  -q, --quiet           print only the generated text (no prompt echo, no\n"
    "                        statistics)\n"
    "  -v, --verbose         more statistics on stderr (per chat turn)\n"
    "      --no-verify       skip checking the tensor checksums at start-up\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and exit\n"
    "\n"
    "The prompt is echoed before the generated text unless -q.  The last line on\n"
    "stderr gives prompt and generation speeds.  Exit status: 0 on success (also\n"
    "when the context fills up or ^C stops generation), 1 on errors, 2 on usage\n"
    "errors.  See qlm-run(1).\n";

enum {
    OPT_TOKENS = 256, OPT_NO_SPECIAL, OPT_TEMP, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P,
    OPT_CHAT, OPT_SYSTEM, OPT_NO_THINK, OPT_TOKENIZE, OPT_PRINT_IDS, OPT_LOGITS_OUT,
    OPT_NO_VERIFY,
};

static const struct option long_opts[] = {
    QLM_CLI_LONG_MODEL,
    {"prompt", required_argument, NULL, 'p'},
    {"file", required_argument, NULL, 'f'},
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"no-special", no_argument, NULL, OPT_NO_SPECIAL},
    {"n-predict", required_argument, NULL, 'n'},
    {"temp", required_argument, NULL, OPT_TEMP},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"min-p", required_argument, NULL, OPT_MIN_P},
    {"seed", required_argument, NULL, 's'},
    QLM_CLI_LONG_CTX,
    QLM_CLI_LONG_THREADS,
    {"chat", no_argument, NULL, OPT_CHAT},
    {"system", required_argument, NULL, OPT_SYSTEM},
    {"no-think", no_argument, NULL, OPT_NO_THINK},
    {"tokenize", no_argument, NULL, OPT_TOKENIZE},
    {"print-ids", no_argument, NULL, OPT_PRINT_IDS},
    {"logits-out", required_argument, NULL, OPT_LOGITS_OUT},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
    QLM_CLI_LONG_KV_TYPE,
    QLM_CLI_LONG_STD,
    {NULL, 0, NULL, 0},
};

struct opts {
    struct qlm_cli_common co; /* model, threads (0: library default), kv_type */
    const char *prompt, *prompt_file, *tokens_file, *system, *logits_out;
    int n_predict;       /* -1: not given */
    int ctx;             /* 0: not given */
    bool chat, no_think, tokenize, print_ids, no_special, quiet, verbose, no_verify;
    bool seed_given;
    struct qlm_sampler_params sp;
};

/* The state of one run: model, session, sampler and output. */
struct run {
    const struct opts *o;
    struct qlm_model *m;
    struct qlm_session *s;
    struct qlm_sampler *smp;
    int vocab;
    bool tty_out;        /* stdout is a terminal: dim the <think> block */
    int32_t think, think_end;
    struct qlm_detok dt;
    char *buf;
    size_t cap;
    /* statistics */
    long n_prompt, n_gen, n_decode_evals;
    double t_prefill, t_decode;
};

static _Noreturn void die_err(const struct qlm_error *e)
{
    exit(qlm_cli_fail("%s", e->msg));
}

/* QLM_CLI_CONTINUE, or the status to exit with. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    struct qlm_error e = {0};
    *o = (struct opts){.co = QLM_CLI_COMMON_INIT, .n_predict = -1};
    qlm_sampler_defaults(&o->sp);
    /* qlm-run's documented defaults, whatever the library's are. */
    o->sp.temp = 0.8f;
    o->sp.top_k = 40;
    o->sp.top_p = 0.95f;
    o->sp.min_p = 0.05f;
    opterr = 0;
    int c;
    double d;
    while ((c = getopt_long(argc, argv, ":m:p:f:n:s:c:t:qvhV", long_opts, NULL)) != -1) {
        enum qlm_err rc = QLM_OK;
        int st = QLM_CLI_CONTINUE;
        switch (c) {
        case 'p': o->prompt = optarg; break;
        case 'f': o->prompt_file = optarg; break;
        case OPT_TOKENS: o->tokens_file = optarg; break;
        case OPT_NO_SPECIAL: o->no_special = true; break;
        case 'n': rc = qlm_cli_parse_int("-n", optarg, 0, 1 << 30, &o->n_predict, &e); break;
        case OPT_TEMP:
            rc = qlm_cli_parse_double("--temp", optarg, 0, 1e6, &d, &e);
            o->sp.temp = (float)d;
            break;
        case OPT_TOP_K: rc = qlm_cli_parse_int("--top-k", optarg, 0, 1 << 30, &o->sp.top_k, &e); break;
        case OPT_TOP_P:
            rc = qlm_cli_parse_double("--top-p", optarg, 0, 1, &d, &e);
            if (rc == QLM_OK && d <= 0)
                rc = qlm_error_set(&e, QLM_E_RANGE, "--top-p %s: must be above 0 and at most 1",
                                   optarg);
            o->sp.top_p = (float)d;
            break;
        case OPT_MIN_P:
            rc = qlm_cli_parse_double("--min-p", optarg, 0, 1, &d, &e);
            o->sp.min_p = (float)d;
            break;
        case 's':
            rc = qlm_cli_parse_u64("--seed", optarg, &o->sp.seed, &e);
            o->seed_given = true;
            break;
        case 'c': rc = qlm_cli_parse_int("--ctx", optarg, 1, INT32_MAX, &o->ctx, &e); break;
        case OPT_CHAT: o->chat = true; break;
        case OPT_SYSTEM: o->system = optarg; break;
        case OPT_NO_THINK: o->no_think = true; break;
        case OPT_TOKENIZE: o->tokenize = true; break;
        case OPT_PRINT_IDS: o->print_ids = true; break;
        case OPT_LOGITS_OUT: o->logits_out = optarg; break;
        case 'q': o->quiet = true; break;
        case 'v': o->verbose = true; break;
        case OPT_NO_VERIFY: o->no_verify = true; break;
        default: st = qlm_cli_option(c, optarg, argv, &o->co); break;
        }
        if (rc != QLM_OK)
            return qlm_cli_usage("%s", e.msg);
        if (st != QLM_CLI_CONTINUE)
            return st;
    }
    int st = qlm_cli_take_model(argc, argv, "FILE.qlm", &o->co);
    if (st != QLM_CLI_CONTINUE)
        return st;
    int n_in = !!o->prompt + !!o->prompt_file + !!o->tokens_file;
    if (o->chat) {
        if (n_in)
            return qlm_cli_usage("--chat reads its messages from stdin; -p, -f and --tokens do not apply");
        if (o->tokenize || o->logits_out || o->print_ids)
            return qlm_cli_usage("--chat does not combine with --tokenize, --logits-out or --print-ids");
    } else {
        if (n_in == 0)
            return qlm_cli_usage("no prompt: give -p PROMPT, -f FILE or --tokens FILE (or --chat)");
        if (n_in > 1)
            return qlm_cli_usage("give only one of -p, -f and --tokens");
        if (o->system || o->no_think)
            return qlm_cli_usage("--system and --no-think apply only to --chat");
        if (o->tokenize && o->logits_out)
            return qlm_cli_usage("--tokenize does not combine with --logits-out");
    }
    if (o->n_predict < 0)
        o->n_predict = o->chat ? -1 : DEFAULT_N;
    qlm_cli_options_done(&o->co);
    return QLM_CLI_CONTINUE;
}

/* ---- output --------------------------------------------------------------- */

static void out_bytes(const char *p, size_t n)
{
    if (n && fwrite(p, 1, n, stdout) != n) {
        /* stdout closed (qlm-run ... | head): stop quietly like other filters. */
        if (errno == EPIPE)
            exit(0);
        exit(qlm_cli_fail("<stdout>: %s", strerror(errno)));
    }
}

static void out_flush(void)
{
    if (fflush(stdout) != 0) {
        if (errno == EPIPE)
            exit(0);
        exit(qlm_cli_fail("<stdout>: %s", strerror(errno)));
    }
}

/* Print token id as text (streaming UTF-8-safe) or as an id. */
static void emit_token(struct run *r, int32_t id, bool as_id, bool first)
{
    if (as_id) {
        printf(first ? "%" PRId32 : " %" PRId32, id);
        return;
    }
    size_t len = 0;
    qlm_token_bytes(r->m, id, &len);
    if (len + 16 > r->cap) {
        size_t cap = len + 64;
        char *p = realloc(r->buf, cap);
        if (!p) {
            exit(qlm_cli_fail("out of memory"));
        }
        r->buf = p;
        r->cap = cap;
    }
    if (r->tty_out && id == r->think && id >= 0)
        out_bytes("\033[2m", 4);
    out_bytes(r->buf, qlm_detok_push(r->m, &r->dt, id, r->buf, r->cap));
    if (r->tty_out && id == r->think_end && id >= 0)
        out_bytes("\033[0m", 4);
}

static void emit_flush_detok(struct run *r)
{
    char tail[16];
    out_bytes(tail, qlm_detok_flush(&r->dt, tail, sizeof tail));
}

static void print_stats(const struct run *r)
{
    if (r->o->quiet)
        return;
    if (r->o->verbose)
        fprintf(stderr, "peak RSS %.1f MiB\n", (double)qlm_cli_peak_rss() / (1024.0 * 1024.0));
    double pre = r->t_prefill > 0 ? (double)r->n_prompt / r->t_prefill : 0;
    double dec = r->t_decode > 0 ? (double)r->n_decode_evals / r->t_decode : 0;
    fprintf(stderr, "prompt %ld tokens, prefill %.2f tok/s; generated %ld tokens, decode %.2f tok/s\n",
            r->n_prompt, pre, r->n_gen, dec);
}

/* ---- evaluation ------------------------------------------------------------ */

static void eval_or_die(struct run *r, const int32_t *ids, int n, bool all_logits, double *t)
{
    struct qlm_error e = {0};
    double t0 = qlm_cli_now();
    if (qlm_eval(r->s, ids, n, all_logits, &e) != QLM_OK)
        die_err(&e);
    *t += qlm_cli_now() - t0;
}

/* Why generation stopped. */
enum stop { STOP_LIMIT, STOP_EOS, STOP_CTX, STOP_INTR };

/* Sample up to limit tokens (-1: no limit), the first from logits, printing
 * each and evaluating each one that is followed by another.  The reply ends
 * at the model's end tokens (or, with chat, at <|im_end|>).  The caller arms
 * the SIGINT flag. */
static enum stop generate(struct run *r, int limit, const float *logits,
                          const struct qlm_chat *chat)
{
    int ctx = qlm_session_ctx(r->s);
    bool as_id = r->o->print_ids;
    for (long i = 0; limit < 0 || i < limit; i++) {
        if (qlm_cli_interrupted)
            return STOP_INTR;
        int32_t id = qlm_sample(r->smp, i == 0 ? logits : qlm_logits(r->s));
        if (chat ? qlm_chat_is_stop(chat, id) : qlm_token_is_eos(r->m, id))
            return STOP_EOS;
        emit_token(r, id, as_id, i == 0);
        out_flush();
        r->n_gen++;
        if (limit >= 0 && i + 1 >= limit)
            break;
        if (qlm_session_pos(r->s) >= ctx)
            return STOP_CTX;
        eval_or_die(r, &id, 1, false, &r->t_decode);
        r->n_decode_evals++;
    }
    return qlm_cli_interrupted ? STOP_INTR : STOP_LIMIT;
}

static void report_stop(const struct run *r, enum stop why)
{
    if (why == STOP_CTX)
        fprintf(stderr, "[context of %d tokens is full; generation stopped]\n",
                qlm_session_ctx(r->s));
    else if (why == STOP_INTR)
        fputs("[interrupted]\n", stderr);
}

/* ---- --logits-out ---------------------------------------------------------- */

static bool host_is_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* The logits of n_pos positions as little-endian f32, through cli/'s rule
 * for output files (a regular file atomically; a FIFO or device in place). */
static void write_logits(const char *path, const float *logits, size_t n_pos, size_t vocab)
{
    struct qlm_error e = {0};
    struct qlm_cli_out *o;
    if (qlm_cli_out_open(&o, path, &e) != QLM_OK)
        die_err(&e);
    uint8_t *row = host_is_le() ? NULL : malloc(vocab * 4);
    if (!host_is_le() && !row) {
        qlm_cli_out_abort(o);
        exit(qlm_cli_fail("out of memory"));
    }
    for (size_t p = 0; p < n_pos; p++) {
        const float *src = logits + p * vocab;
        for (size_t i = 0; row && i < vocab; i++) {
            uint32_t u;
            memcpy(&u, src + i, 4);
            for (int k = 0; k < 4; k++)
                row[4 * i + (size_t)k] = (uint8_t)(u >> (8 * k));
        }
        if (qlm_cli_out_write(o, row ? (const void *)row : (const void *)src, vocab * 4, &e)) {
            free(row);
            die_err(&e);
        }
    }
    free(row);
    if (qlm_cli_out_commit(o, &e) != QLM_OK)
        die_err(&e);
}

/* ---- modes ----------------------------------------------------------------- */

static uint64_t clock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    /* Keep it short enough to retype: 9 decimal digits. */
    return s % 1000000000u;
}

static void print_ids(const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf(i ? " %" PRId32 : "%" PRId32, ids[i]);
    putchar('\n');
    out_flush();
}

/* The settings a run can be reproduced with, on stderr. */
static void print_setup(const struct run *r)
{
    const struct opts *o = r->o;
    fprintf(stderr,
            "seed %" PRIu64 ", temp %g, top-k %d, top-p %g, min-p %g, ctx %d (KV cache %s), "
            "threads %d\n", o->sp.seed, (double)o->sp.temp, o->sp.top_k, (double)o->sp.top_p,
            (double)o->sp.min_p, qlm_session_ctx(r->s), qlm_dtype_name(qlm_session_kv_type(r->s)),
            qlm_session_threads(r->s));
}

static int run_prompt(struct run *r, int32_t *ids, size_t n_ids, const char *text, size_t text_len)
{
    const struct opts *o = r->o;
    int ctx = qlm_session_ctx(r->s);
    if (n_ids > (size_t)ctx) {
        return qlm_cli_fail("the prompt is %zu tokens, longer than the context of %d tokens "
                            "(--ctx)", n_ids, ctx);
    }
    r->n_prompt = (long)n_ids;
    bool generating = o->n_predict > 0;
    if (!o->quiet && generating)
        print_setup(r);
    /* Echo the prompt as llama.cpp does (not with -q or --print-ids). */
    if (!o->quiet && !o->print_ids && generating) {
        if (text)
            out_bytes(text, text_len);
        else {
            for (size_t i = 0; i < n_ids; i++)
                emit_token(r, ids[i], false, false);
        }
        out_flush();
    }
    qlm_cli_catch_sigint();
    eval_or_die(r, ids, (int)n_ids, o->logits_out != NULL, &r->t_prefill);
    if (o->logits_out)
        write_logits(o->logits_out, qlm_logits(r->s), n_ids, (size_t)r->vocab);
    enum stop why = STOP_LIMIT;
    if (generating) {
        /* With --logits-out qlm_logits holds every position: start from the last. */
        const float *last = qlm_logits(r->s);
        if (o->logits_out)
            last += (n_ids - 1) * (size_t)r->vocab;
        why = generate(r, o->n_predict, last, NULL);
    }
    emit_flush_detok(r);
    if (generating || o->print_ids)
        out_bytes("\n", 1);
    out_flush();
    report_stop(r, why);
    print_stats(r);
    return 0;
}

static int run_chat(struct run *r)
{
    const struct opts *o = r->o;
    struct qlm_error e = {0};
    struct qlm_chat chat;
    if (qlm_chat_init(&chat, r->m, o->system, !o->no_think, &e) != QLM_OK)
        die_err(&e);
    bool tty_in = isatty(STDIN_FILENO) == 1;
    int ctx = qlm_session_ctx(r->s);
    if (!o->quiet)
        print_setup(r);
    if (tty_in && !o->quiet)
        fputs("chat: type a message and Enter; /exit or Ctrl-D ends\n", stderr);
    char *line = NULL;
    size_t line_cap = 0;
    int status = 0;
    long line_no = 0;
    for (int turn = 1;; turn++) {
        if (tty_in) {
            out_bytes("> ", 2);
            out_flush();
        }
        qlm_cli_catch_sigint();
        errno = 0;
        ssize_t len = getline(&line, &line_cap, stdin);
        line_no++;
        if (len < 0) {
            if (ferror(stdin) && errno != EINTR) {
                status = qlm_cli_fail("<stdin>: %s", strerror(errno));
            }
            if (tty_in)
                out_bytes("\n", 1);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strcmp(line, "/exit") == 0)
            break;
        if (len == 0) {
            turn--;
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "<stdin>: line %ld", line_no);
        if (qlm_cli_check_utf8(what, line, (size_t)len, &e) != QLM_OK) {
            /* at a terminal, a mistyped byte should not end the conversation */
            if (!tty_in)
                die_err(&e);
            fprintf(stderr, "[%s; message ignored]\n", e.msg);
            turn--;
            continue;
        }
        int32_t *ids;
        size_t n;
        if (qlm_chat_turn(&chat, line, (size_t)len, &ids, &n, &e) != QLM_OK)
            die_err(&e);
        int pos = qlm_session_pos(r->s);
        if (n >= (size_t)(ctx - pos)) {
            free(ids);
            fprintf(stderr, "[context of %d tokens is full (%d used, this message needs %zu); "
                            "chat ended]\n", ctx, pos, n);
            break;
        }
        double t = 0;
        eval_or_die(r, ids, (int)n, false, &t);
        r->t_prefill += t;
        r->n_prompt += (long)n;
        free(ids);
        if (o->verbose)
            fprintf(stderr, "[turn %d: evaluated %zu new tokens in %.2f s, cache %d of %d]\n",
                    turn, n, t, qlm_session_pos(r->s), ctx);
        long gen0 = r->n_gen;
        enum stop why = generate(r, o->n_predict, qlm_logits(r->s), &chat);
        emit_flush_detok(r);
        out_bytes("\n", 1);
        out_flush();
        if (o->verbose)
            fprintf(stderr, "[turn %d: generated %ld tokens]\n", turn, r->n_gen - gen0);
        if (why == STOP_CTX) {
            report_stop(r, why);
            break;
        }
        if (why == STOP_INTR)
            fputs("[interrupted]\n", stderr);
    }
    free(line);
    qlm_chat_free(&chat);
    print_stats(r);
    return status;
}

int main(int argc, char **argv)
{
    qlm_cli_init("qlm-run", HELP);
    struct opts o;
    int st = parse_args(argc, argv, &o);
    if (st != QLM_CLI_CONTINUE)
        return st;
    if (!o.seed_given)
        o.sp.seed = clock_seed();

    struct qlm_error e = {0};
    struct run r = {.o = &o};
    r.tty_out = isatty(STDOUT_FILENO) == 1;

    /* Read the prompt before mapping the model: cheap errors first. */
    char *text = NULL;
    size_t text_len = 0;
    if (o.prompt) {
        text = strdup(o.prompt);
        text_len = strlen(o.prompt);
        if (!text) {
            return qlm_cli_fail("out of memory");
        }
    } else if (o.prompt_file && qlm_cli_read_text(o.prompt_file, &text, &text_len, &e) != QLM_OK)
        die_err(&e);
    if (o.prompt && qlm_cli_check_utf8("prompt (-p)", text, text_len, &e) != QLM_OK) {
        free(text);
        die_err(&e);
    }
    if (text && text_len == 0 && !o.tokenize) {
        /* Qwen3 has no BOS token: an empty prompt has nothing to condition on
         * (but it has a tokenization: none, as Hugging Face's gives []). */
        free(text);
        return qlm_cli_fail("empty prompt");
    }

    qlm_cli_catch_sigbus(o.co.model, "the model file");
    if (qlm_model_open(&r.m, o.co.model, &e) != QLM_OK)
        die_err(&e);
    if (!o.no_verify) {
        struct qlm_cli_progress pb;
        qlm_cli_progress_begin(&pb, "verifying");
        enum qlm_err rc = qlm_file_verify(qlm_model_file(r.m), qlm_cli_progress_cb, &pb, &e);
        qlm_cli_progress_end(&pb);
        if (rc != QLM_OK)
            die_err(&e);
    }
    const struct qlm_hparams *hp = qlm_model_hparams(r.m);
    r.vocab = hp->vocab_size;
    r.think = qlm_token_id(r.m, "<think>");
    r.think_end = qlm_token_id(r.m, "</think>");

    /* The prompt's token ids. */
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (o.tokens_file) {
        if (qlm_cli_read_tokens(o.tokens_file, hp->vocab_size, &ids, &n_ids, &e) != QLM_OK)
            die_err(&e);
    } else if (text) {
        if (qlm_tokenize(r.m, text, text_len, !o.no_special, &ids, &n_ids, &e) != QLM_OK)
            die_err(&e);
        if (n_ids == 0 && !o.tokenize) {
            qlm_cli_fail("empty prompt (no tokens)");
            free(ids);
            free(text);
            qlm_model_free(r.m);
            return EXIT_ERR;
        }
    }
    if (o.tokenize) {
        print_ids(ids, n_ids);
        free(ids);
        free(text);
        qlm_model_free(r.m);
        return 0;
    }

    int ctx = o.ctx;
    if (ctx > hp->max_pos) {
        qlm_cli_fail("--ctx %d exceeds the model's maximum of %d", ctx, hp->max_pos);
        free(ids);
        free(text);
        qlm_model_free(r.m);
        return EXIT_ERR;
    }
    if (ctx == 0)
        ctx = DEFAULT_CTX < hp->max_pos ? DEFAULT_CTX : hp->max_pos;
    if (qlm_session_new(&r.s, r.m, ctx, o.co.threads, &e) != QLM_OK)
        die_err(&e);
    if (o.co.kv_type >= 0 && qlm_session_set_kv_type(r.s, (enum qlm_dtype)o.co.kv_type, &e) != QLM_OK)
        die_err(&e);
    if (qlm_sampler_new(&r.smp, &o.sp, hp->vocab_size, &e) != QLM_OK)
        die_err(&e);

    int status = o.chat ? run_chat(&r) : run_prompt(&r, ids, n_ids, text, text_len);

    free(r.buf);
    free(ids);
    free(text);
    qlm_sampler_free(r.smp);
    qlm_session_free(r.s);
    qlm_model_free(r.m);
    return status;
}
