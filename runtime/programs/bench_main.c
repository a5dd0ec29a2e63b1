/*
 * qlm-bench — speed of a .qlm model on this machine: load time, batched
 * prompt processing (prefill) and token-by-token greedy decoding, peak RSS,
 * and decode's share of the memory-bandwidth bound.
 *
 * Decoding one token reads every weight once, so its speed is bounded by
 * weight_bytes_per_token / read bandwidth.  The bandwidth is measured in the
 * same run with the same number of threads: summing a large buffer (1 GiB by
 * default, well past any last-level cache) several times and keeping the best
 * pass.
 */
#include <config.h>

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "qlm.h"
#include "stats.h"

struct opts {
    struct qlm_cli_common co;    /* model, threads, kv_type, json */
    int prompt, gen, reps, probe_mib;
};

static const char HELP[] =
    "Usage: qlm-bench FILE.qlm [options]\n"
    "Load time, prompt processing and decoding speed, peak RSS, and decoding's\n"
    "share of the memory-bandwidth bound (measured in the same run).\n"
    "\n"
    "  -m, --model FILE    FILE.qlm given as an option\n"
    "  -p, --prompt N, --n-prompt N\n"
    "                      prompt tokens, evaluated in one batch (default 512)\n"
    "  -n, --gen N, --n-gen N\n"
    "                      tokens decoded one by one after the prompt (default 64;\n"
    "                      0 skips decoding)\n"
    "  -t, --threads N     threads (default: physical cores)\n"
    "  -r, --reps R, --repetitions R\n"
    "                      repetitions; figures are mean ± sd (default 3)\n"
    "      --probe-mib M   bandwidth probe buffer in MiB (default 1024; 0: no probe)\n"
    "      --kv-type T     KV cache: f16 or f32 (default: f16 for q8/q4 models,\n"
    "                      f32 for float ones)\n"
    "      --json          one JSON object on stdout\n"
    "  -h, --help          this help\n"
    "  -V, --version       version\n"
    "\n"
    "QLM_ISA=scalar|avx2|avxvnni|avx512vnni|neon forces a kernel set.\n"
    "Exit status: 0 on success, 1 on errors, 2 on usage errors.\n";

/* QLM_CLI_CONTINUE, or the status to exit with. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    enum { OPT_PROBE = 256 };
    static const struct option longopts[] = {
        QLM_CLI_LONG_MODEL,
        {"prompt", required_argument, NULL, 'p'},
        {"n-prompt", required_argument, NULL, 'p'},
        {"gen", required_argument, NULL, 'n'},
        {"n-gen", required_argument, NULL, 'n'},
        QLM_CLI_LONG_THREADS,
        {"reps", required_argument, NULL, 'r'},
        {"repetitions", required_argument, NULL, 'r'},
        {"probe-mib", required_argument, NULL, OPT_PROBE},
        QLM_CLI_LONG_KV_TYPE,
        QLM_CLI_LONG_JSON,
        QLM_CLI_LONG_STD,
        {NULL, 0, NULL, 0},
    };
    struct qlm_error err = {0};
    *o = (struct opts){.co = QLM_CLI_COMMON_INIT, .prompt = 512, .gen = 64, .reps = 3,
                       .probe_mib = 1024};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:p:n:t:r:hV", longopts, NULL)) != -1) {
        enum qlm_err rc = QLM_OK;
        int st = QLM_CLI_CONTINUE;
        switch (c) {
        case 'p': rc = qlm_cli_parse_int("--prompt", optarg, 1, 1 << 20, &o->prompt, &err); break;
        case 'n': rc = qlm_cli_parse_int("--gen", optarg, 0, 1 << 20, &o->gen, &err); break;
        case 'r': rc = qlm_cli_parse_int("--reps", optarg, 1, 1000, &o->reps, &err); break;
        case OPT_PROBE:
            rc = qlm_cli_parse_int("--probe-mib", optarg, 0, 1 << 20, &o->probe_mib, &err);
            break;
        default: st = qlm_cli_option(c, optarg, argv, &o->co); break;
        }
        if (rc != QLM_OK)
            return qlm_cli_usage("%s", err.msg);
        if (st != QLM_CLI_CONTINUE)
            return st;
    }
    int st = qlm_cli_take_model(argc, argv, "FILE.qlm", &o->co);
    if (st == QLM_CLI_CONTINUE)
        qlm_cli_options_done(&o->co);
    return st;
}

/* ---- read-bandwidth probe ------------------------------------------------ */

/* Sum of the words of buf with n_threads threads.  Each thread reads its
 * 256 KiB pieces as eight streams in lockstep, 32 KiB apart, with a software
 * prefetch 512 bytes ahead: the fastest plain read pattern found on the
 * machines measured (1 thread: 15-18 GB/s, against 10-11 for one plain
 * stream and ~12 for the decode kernels' one prefetched stream), so the
 * bound is what the memory can deliver, not what one access pattern gets. */
static uint64_t sum_words(const uint64_t *buf, size_t n, int n_threads)
{
    enum { PIECE = 32768, STREAMS = 8, PART = PIECE / STREAMS };
    uint64_t total = 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+ : total)
    for (size_t b = 0; b < n / PIECE; b++) {
        const uint64_t *p = buf + b * PIECE;
        uint64_t s = 0;
        for (size_t i = 0; i < PART; i += 8)
            for (int k = 0; k < STREAMS; k++) {
                const uint64_t *q = p + (size_t)k * PART + i;
                __builtin_prefetch(q + 64);
                s += (q[0] + q[1]) + (q[2] + q[3]) + (q[4] + q[5]) + (q[6] + q[7]);
            }
        total += s;
    }
    return total;
}

/* Best of `passes` timed passes over a buffer of `bytes`; GB/s (1e9 bytes). */
static double probe_bandwidth(uint64_t *buf, size_t bytes, int n_threads, int passes)
{
    size_t n = bytes / sizeof *buf / 32768 * 32768; /* whole pieces of sum_words */
    double best = 0;
    volatile uint64_t sink = 0;
    for (int p = 0; p < passes; p++) {
        double t = qlm_cli_now();
        sink += sum_words(buf, n, n_threads);
        t = qlm_cli_now() - t;
        double gbs = (double)(n * sizeof *buf) / t / 1e9;
        if (gbs > best)
            best = gbs;
    }
    (void)sink;
    return best;
}

/* ---- one repetition ------------------------------------------------------ */

struct rep {
    double load_ms, pp_tok_s, tg_tok_s;
};

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static enum qlm_err run_rep(const struct opts *o, const int32_t *prompt, struct rep *r,
                            int *threads_used, enum qlm_dtype *kv_used, struct qlm_error *err)
{
    struct qlm_model *m = NULL;
    struct qlm_session *s = NULL;
    enum qlm_err rc;
    double t = qlm_cli_now();
    if ((rc = qlm_model_open(&m, o->co.model, err)))
        return rc;
    if ((rc = qlm_session_new(&s, m, o->prompt + o->gen, o->co.threads, err)))
        goto out;
    if (o->co.kv_type >= 0 &&
        (rc = qlm_session_set_kv_type(s, (enum qlm_dtype)o->co.kv_type, err)))
        goto out;
    r->load_ms = (qlm_cli_now() - t) * 1e3;
    *threads_used = qlm_session_threads(s);
    *kv_used = qlm_session_kv_type(s);

    t = qlm_cli_now();
    if ((rc = qlm_eval(s, prompt, o->prompt, false, err)))
        goto out;
    r->pp_tok_s = o->prompt / (qlm_cli_now() - t);

    int vocab = qlm_model_hparams(m)->vocab_size;
    t = qlm_cli_now();
    for (int i = 0; i < o->gen; i++) {
        const float *lg = qlm_logits(s);
        int32_t next = (int32_t)qlm_stats_argmax(lg, (size_t)vocab);
        if ((rc = qlm_eval(s, &next, 1, false, err)))
            goto out;
    }
    r->tg_tok_s = o->gen > 0 ? o->gen / (qlm_cli_now() - t) : 0;
    rc = QLM_OK;
out:
    if (s)
        qlm_session_free(s);
    qlm_model_free(m);
    return rc;
}

/* ---- the run: sizes, repetitions, probe ------------------------------------ */

/* What a run measured, as printed. */
struct bench {
    char type[32];
    int group, threads;
    uint64_t file_bytes, wbytes, peak_rss;
    enum qlm_dtype kv;
    double load_m, load_sd, pp_m, pp_sd, tg_m, tg_sd, tg_gbs;
    size_t probe_bytes;
    double probe_mean, probe_sd, frac;
};

/* Open the model once to check the sizes and draw the prompt ids. */
static int model_sizes(const struct opts *o, struct bench *b, int32_t *prompt)
{
    struct qlm_error err = {0};
    struct qlm_model *m = NULL;
    if (qlm_model_open(&m, o->co.model, &err))
        return qlm_cli_fail("%s", err.msg);
    const struct qlm_hparams *hp = qlm_model_hparams(m);
    if (hp->max_pos > 0 && (long)o->prompt + o->gen > hp->max_pos) {
        int rc = qlm_cli_fail("--prompt %d + --gen %d: more than the model's %d positions",
                              o->prompt, o->gen, hp->max_pos);
        qlm_model_free(m); /* hp with it */
        return rc;
    }
    int n_ids = qlm_n_tokens(m) > 0 && qlm_n_tokens(m) <= hp->vocab_size ? qlm_n_tokens(m)
                                                                         : hp->vocab_size;
    uint32_t seed = 0x9e3779b9u; /* fixed: every run evaluates the same ids */
    for (int i = 0; i < o->prompt; i++)
        prompt[i] = (int32_t)(xorshift32(&seed) % (uint32_t)n_ids);
    b->wbytes = qlm_model_weight_bytes_per_token(m);
    b->file_bytes = qlm_model_file(m)->size;
    snprintf(b->type, sizeof b->type, "%s", qlm_dtype_name(hp->wtype));
    b->group = hp->group;
    qlm_model_free(m);
    return 0;
}

/* Mean and sd of one double field (at offset off) over the repetitions. */
static void rep_mean_sd(const struct rep *r, int n, size_t off, double *col, double *m,
                        double *sd)
{
    for (int i = 0; i < n; i++)
        memcpy(&col[i], (const char *)&r[i] + off, sizeof *col);
    qlm_stats_mean_sd(col, (size_t)n, m, sd);
}

/* Bandwidth probe, after the model runs so its buffer does not inflate the
 * peak RSS; col: o->reps doubles. */
static int probe(const struct opts *o, struct bench *b, double *col)
{
    b->probe_bytes = (size_t)o->probe_mib << 20;
    if (o->probe_mib == 0)
        return 0;
    uint64_t *buf = malloc(b->probe_bytes);
    if (!buf)
        return qlm_cli_fail("bandwidth probe: cannot allocate %d MiB (try --probe-mib)",
                            o->probe_mib);
    for (size_t i = 0; i < b->probe_bytes / sizeof *buf; i++)
        buf[i] = i;
    for (int r = 0; r < o->reps; r++)
        col[r] = probe_bandwidth(buf, b->probe_bytes, b->threads, 5);
    qlm_stats_mean_sd(col, (size_t)o->reps, &b->probe_mean, &b->probe_sd);
    free(buf);
    return 0;
}

/* Repetitions: each opens the model afresh (load time), prefills, decodes. */
static int measure(const struct opts *o, struct bench *b)
{
    struct qlm_error err = {0};
    int32_t *prompt = malloc((size_t)o->prompt * sizeof *prompt);
    struct rep *reps = calloc((size_t)o->reps, sizeof *reps);
    double *col = malloc((size_t)o->reps * sizeof *col);
    int rc = !prompt || !reps || !col ? qlm_cli_fail("out of memory") : 0;
    if (rc == 0)
        rc = model_sizes(o, b, prompt);
    for (int r = 0; rc == 0 && r < o->reps; r++) {
        if (run_rep(o, prompt, &reps[r], &b->threads, &b->kv, &err)) {
            rc = qlm_cli_fail("%s", err.msg);
            break;
        }
        if (!o->co.json && isatty(2))
            fprintf(stderr, "rep %d/%d: load %.1f ms, pp %.2f tok/s, tg %.2f tok/s\n", r + 1,
                    o->reps, reps[r].load_ms, reps[r].pp_tok_s, reps[r].tg_tok_s);
    }
    b->peak_rss = qlm_cli_peak_rss(); /* before the probe's buffer */
    if (rc == 0)
        rc = probe(o, b, col);
    if (rc == 0) {
        rep_mean_sd(reps, o->reps, offsetof(struct rep, load_ms), col, &b->load_m, &b->load_sd);
        rep_mean_sd(reps, o->reps, offsetof(struct rep, pp_tok_s), col, &b->pp_m, &b->pp_sd);
        rep_mean_sd(reps, o->reps, offsetof(struct rep, tg_tok_s), col, &b->tg_m, &b->tg_sd);
        b->tg_gbs = b->tg_m * (double)b->wbytes / 1e9;
        b->frac = b->probe_mean > 0 && o->gen > 0 ? b->tg_gbs / b->probe_mean : NAN;
    }
    free(col);
    free(reps);
    free(prompt);
    return rc;
}

/* ---- output ------------------------------------------------------------------ */

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int print_json(const struct opts *o, const struct bench *b)
{
    bool gen = o->gen > 0, pr = o->probe_mib > 0;
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(o->co.model));
    json_object_set_new(j, "type", json_string(b->type));
    json_object_set_new(j, "group", json_integer(b->group));
    json_object_set_new(j, "file_bytes", json_integer((json_int_t)b->file_bytes));
    json_object_set_new(j, "isa", json_string(qlm_isa_name()));
    json_object_set_new(j, "threads", json_integer(b->threads));
    json_object_set_new(j, "kv_type", json_string(qlm_dtype_name(b->kv)));
    json_object_set_new(j, "reps", json_integer(o->reps));
    json_object_set_new(j, "prompt", json_integer(o->prompt));
    json_object_set_new(j, "gen", json_integer(o->gen));
    json_object_set_new(j, "load_ms", jnum(b->load_m));
    json_object_set_new(j, "load_ms_sd", jnum(b->load_sd));
    json_object_set_new(j, "pp_tok_s", jnum(b->pp_m));
    json_object_set_new(j, "pp_tok_s_sd", jnum(b->pp_sd));
    json_object_set_new(j, "tg_tok_s", gen ? jnum(b->tg_m) : json_null());
    json_object_set_new(j, "tg_tok_s_sd", gen ? jnum(b->tg_sd) : json_null());
    json_object_set_new(j, "weight_bytes_per_token", json_integer((json_int_t)b->wbytes));
    json_object_set_new(j, "tg_weight_gb_s", gen ? jnum(b->tg_gbs) : json_null());
    json_object_set_new(j, "probe_bytes", json_integer((json_int_t)b->probe_bytes));
    json_object_set_new(j, "probe_gb_s", pr ? jnum(b->probe_mean) : json_null());
    json_object_set_new(j, "probe_gb_s_sd", pr ? jnum(b->probe_sd) : json_null());
    json_object_set_new(j, "bw_fraction", jnum(b->frac));
    json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)b->peak_rss));
    char *s = json_dumps(j, JSON_REAL_PRECISION(10));
    json_decref(j);
    if (!s)
        return qlm_cli_fail("out of memory");
    puts(s);
    free(s);
    return 0;
}

static void print_text(const struct opts *o, const struct bench *b)
{
    printf("model     %s: %s", o->co.model, b->type);
    if (b->group)
        printf(" group %d", b->group);
    printf(", %.1f MiB, %.1f MiB of weights per token\n", (double)b->file_bytes / 1048576.0,
           (double)b->wbytes / 1048576.0);
    printf("setup     ISA %s, %d threads, KV cache %s, %d reps (mean ± sd)\n", qlm_isa_name(),
           b->threads, qlm_dtype_name(b->kv), o->reps);
    printf("load      %.1f ± %.1f ms\n", b->load_m, b->load_sd);
    printf("prefill   %d tokens: %.2f ± %.2f tok/s\n", o->prompt, b->pp_m, b->pp_sd);
    if (o->gen > 0) {
        printf("decode    %d tokens: %.2f ± %.2f tok/s = %.2f GB/s of weights", o->gen, b->tg_m,
               b->tg_sd, b->tg_gbs);
        if (o->probe_mib > 0)
            printf(" = %.1f%% of the %.2f ± %.2f GB/s probe", 100 * b->frac, b->probe_mean,
                   b->probe_sd);
        putchar('\n');
    } else if (o->probe_mib > 0) {
        printf("probe     %.2f ± %.2f GB/s read bandwidth\n", b->probe_mean, b->probe_sd);
    }
    printf("peak RSS  %.1f MiB\n", (double)b->peak_rss / 1048576.0);
}

int main(int argc, char **argv)
{
    qlm_cli_init("qlm-bench", HELP);
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != QLM_CLI_CONTINUE)
        return rc;
    qlm_cli_catch_sigbus(o.co.model, "the model file");
    struct bench b = {.kv = QLM_F32};
    if ((rc = measure(&o, &b)) != 0)
        return rc;
    if (o.co.json)
        rc = print_json(&o, &b);
    else
        print_text(&o, &b);
    return rc ? rc : qlm_cli_flush_stdout();
}
