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

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "qlm.h"
#include "stats.h"

static const char *prog = "qlm-bench";

struct opts {
    const char *model;
    int prompt, gen, threads, reps, probe_mib;
    int kv_type;                 /* -1: the model's default */
    bool json;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s FILE.qlm [options]\n"
            "Load time, prompt processing and decoding speed, peak RSS, and decoding's\n"
            "share of the memory-bandwidth bound (measured in the same run).\n"
            "\n"
            "  -p, --prompt N      prompt tokens, evaluated in one batch (default 512)\n"
            "  -n, --gen N         tokens decoded one by one after the prompt (default 64;\n"
            "                      0 skips decoding)\n"
            "  -t, --threads N     threads (default: physical cores)\n"
            "  -r, --reps R        repetitions; figures are mean ± sd (default 3)\n"
            "      --probe-mib M   bandwidth probe buffer in MiB (default 1024; 0: no probe)\n"
            "      --kv-type T     KV cache: f16 or f32 (default: f16 for q8/q4 models,\n"
            "                      f32 for float ones)\n"
            "      --json          one JSON object on stdout\n"
            "  -h, --help          this help\n"
            "  -V, --version       version\n"
            "\n"
            "QLM_ISA=scalar|avx2|avxvnni|avx512vnni|neon forces a kernel set.\n",
            prog);
}

static int fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int parse_args(int argc, char **argv, struct opts *o, int *exit_now)
{
    enum { OPT_JSON = 256, OPT_PROBE, OPT_KV_TYPE };
    static const struct option longopts[] = {
        {"prompt", required_argument, NULL, 'p'},
        {"gen", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"reps", required_argument, NULL, 'r'},
        {"probe-mib", required_argument, NULL, OPT_PROBE},
        {"kv-type", required_argument, NULL, OPT_KV_TYPE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct qlm_error err = {0};
    *o = (struct opts){.prompt = 512, .gen = 64, .threads = 0, .reps = 3, .probe_mib = 1024,
                       .kv_type = -1};
    *exit_now = -1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:n:t:r:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (qlm_cli_parse_int("--prompt", optarg, 1, 1 << 20, &o->prompt, &err))
                return fail("%s", err.msg);
            break;
        case 'n':
            if (qlm_cli_parse_int("--gen", optarg, 0, 1 << 20, &o->gen, &err))
                return fail("%s", err.msg);
            break;
        case 't':
            if (qlm_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, &err))
                return fail("%s", err.msg);
            break;
        case 'r':
            if (qlm_cli_parse_int("--reps", optarg, 1, 1000, &o->reps, &err))
                return fail("%s", err.msg);
            break;
        case OPT_PROBE:
            if (qlm_cli_parse_int("--probe-mib", optarg, 0, 1 << 20, &o->probe_mib, &err))
                return fail("%s", err.msg);
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_KV_TYPE:
            if (qlm_cli_parse_kv_type("--kv-type", optarg, &o->kv_type, &err))
                return fail("%s", err.msg);
            break;
        case 'h':
            usage(stdout);
            *exit_now = 0;
            return 0;
        case 'V':
            printf("%s %s\n", prog, qlm_version());
            *exit_now = 0;
            return 0;
        case ':':
            return fail("option %s needs an argument (see --help)", argv[optind - 1]);
        default:
            if (optopt)
                return fail("unknown option -%c (see --help)", optopt);
            return fail("unknown option %s (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return fail("no model file given (see --help)");
    if (argc - optind > 1)
        return fail("unexpected argument '%s' (one model file; see --help)", argv[optind + 1]);
    o->model = argv[optind];
    return 0;
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
    if ((rc = qlm_model_open(&m, o->model, err)))
        return rc;
    if ((rc = qlm_session_new(&s, m, o->prompt + o->gen, o->threads, err)))
        goto out;
    if (o->kv_type >= 0 && (rc = qlm_session_set_kv_type(s, (enum qlm_dtype)o->kv_type, err)))
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

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

int main(int argc, char **argv)
{
    struct opts o;
    int exit_now;
    if (parse_args(argc, argv, &o, &exit_now))
        return 1;
    if (exit_now >= 0)
        return exit_now;

    struct qlm_error err = {0};
    int rc = 1;
    struct qlm_model *m = NULL;
    int32_t *prompt = NULL;
    struct rep *reps = NULL;
    uint64_t *buf = NULL;
    double *col = NULL;
    qlm_cli_catch_sigbus(prog, o.model);

    /* Open once to check the sizes and draw the prompt ids. */
    if (qlm_model_open(&m, o.model, &err)) {
        fail("%s", err.msg);
        goto out;
    }
    const struct qlm_hparams *hp = qlm_model_hparams(m);
    if (hp->max_pos > 0 && (long)o.prompt + o.gen > hp->max_pos) {
        fail("--prompt %d + --gen %d: more than the model's %d positions", o.prompt, o.gen,
             hp->max_pos);
        goto out;
    }
    int n_ids = qlm_n_tokens(m) > 0 && qlm_n_tokens(m) <= hp->vocab_size ? qlm_n_tokens(m)
                                                                         : hp->vocab_size;
    prompt = malloc((size_t)o.prompt * sizeof *prompt);
    reps = calloc((size_t)o.reps, sizeof *reps);
    col = malloc((size_t)o.reps * sizeof *col);
    if (!prompt || !reps || !col) {
        fail("out of memory");
        goto out;
    }
    uint32_t seed = 0x9e3779b9u; /* fixed: every run evaluates the same ids */
    for (int i = 0; i < o.prompt; i++)
        prompt[i] = (int32_t)(xorshift32(&seed) % (uint32_t)n_ids);
    uint64_t wbytes = qlm_model_weight_bytes_per_token(m);
    uint64_t file_bytes = qlm_model_file(m)->size;
    char type[32];
    snprintf(type, sizeof type, "%s", qlm_dtype_name(hp->wtype));
    int group = hp->group;
    qlm_model_free(m);
    m = NULL;

    /* Repetitions: each opens the model afresh (load time), prefills, decodes. */
    int threads = 0;
    enum qlm_dtype kv = QLM_F32;
    for (int r = 0; r < o.reps; r++) {
        if (run_rep(&o, prompt, &reps[r], &threads, &kv, &err)) {
            fail("%s", err.msg);
            goto out;
        }
        if (!o.json && isatty(2))
            fprintf(stderr, "rep %d/%d: load %.1f ms, pp %.2f tok/s, tg %.2f tok/s\n", r + 1,
                    o.reps, reps[r].load_ms, reps[r].pp_tok_s, reps[r].tg_tok_s);
    }
    uint64_t peak_rss = qlm_cli_peak_rss(); /* before the probe's buffer */

    /* Bandwidth probe, after the model runs so its buffer does not inflate
     * the peak RSS reported above. */
    double probe_mean = 0, probe_sd = 0;
    size_t probe_bytes = (size_t)o.probe_mib << 20;
    if (o.probe_mib > 0) {
        buf = malloc(probe_bytes);
        if (!buf) {
            fail("bandwidth probe: cannot allocate %d MiB (try --probe-mib)", o.probe_mib);
            goto out;
        }
        for (size_t i = 0; i < probe_bytes / sizeof *buf; i++)
            buf[i] = i;
        for (int r = 0; r < o.reps; r++)
            col[r] = probe_bandwidth(buf, probe_bytes, threads, 5);
        qlm_stats_mean_sd(col, (size_t)o.reps, &probe_mean, &probe_sd);
    }

    double load_m, load_sd, pp_m, pp_sd, tg_m, tg_sd;
    for (int r = 0; r < o.reps; r++)
        col[r] = reps[r].load_ms;
    qlm_stats_mean_sd(col, (size_t)o.reps, &load_m, &load_sd);
    for (int r = 0; r < o.reps; r++)
        col[r] = reps[r].pp_tok_s;
    qlm_stats_mean_sd(col, (size_t)o.reps, &pp_m, &pp_sd);
    for (int r = 0; r < o.reps; r++)
        col[r] = reps[r].tg_tok_s;
    qlm_stats_mean_sd(col, (size_t)o.reps, &tg_m, &tg_sd);
    double tg_gbs = tg_m * (double)wbytes / 1e9;
    double frac = probe_mean > 0 && o.gen > 0 ? tg_gbs / probe_mean : NAN;
    const char *isa = qlm_isa_name();

    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(o.model));
        json_object_set_new(j, "type", json_string(type));
        json_object_set_new(j, "group", json_integer(group));
        json_object_set_new(j, "file_bytes", json_integer((json_int_t)file_bytes));
        json_object_set_new(j, "isa", json_string(isa));
        json_object_set_new(j, "threads", json_integer(threads));
        json_object_set_new(j, "kv_type", json_string(qlm_dtype_name(kv)));
        json_object_set_new(j, "reps", json_integer(o.reps));
        json_object_set_new(j, "prompt", json_integer(o.prompt));
        json_object_set_new(j, "gen", json_integer(o.gen));
        json_object_set_new(j, "load_ms", jnum(load_m));
        json_object_set_new(j, "load_ms_sd", jnum(load_sd));
        json_object_set_new(j, "pp_tok_s", jnum(pp_m));
        json_object_set_new(j, "pp_tok_s_sd", jnum(pp_sd));
        json_object_set_new(j, "tg_tok_s", o.gen > 0 ? jnum(tg_m) : json_null());
        json_object_set_new(j, "tg_tok_s_sd", o.gen > 0 ? jnum(tg_sd) : json_null());
        json_object_set_new(j, "weight_bytes_per_token", json_integer((json_int_t)wbytes));
        json_object_set_new(j, "tg_weight_gb_s", o.gen > 0 ? jnum(tg_gbs) : json_null());
        json_object_set_new(j, "probe_bytes", json_integer((json_int_t)probe_bytes));
        json_object_set_new(j, "probe_gb_s", o.probe_mib > 0 ? jnum(probe_mean) : json_null());
        json_object_set_new(j, "probe_gb_s_sd", o.probe_mib > 0 ? jnum(probe_sd) : json_null());
        json_object_set_new(j, "bw_fraction", jnum(frac));
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)peak_rss));
        char *s = json_dumps(j, JSON_REAL_PRECISION(10));
        json_decref(j);
        if (!s) {
            fail("out of memory");
            goto out;
        }
        puts(s);
        free(s);
    } else {
        printf("model     %s: %s", o.model, type);
        if (group)
            printf(" group %d", group);
        printf(", %.1f MiB, %.1f MiB of weights per token\n", (double)file_bytes / 1048576.0,
               (double)wbytes / 1048576.0);
        printf("setup     ISA %s, %d threads, KV cache %s, %d reps (mean ± sd)\n", isa, threads,
               qlm_dtype_name(kv), o.reps);
        printf("load      %.1f ± %.1f ms\n", load_m, load_sd);
        printf("prefill   %d tokens: %.2f ± %.2f tok/s\n", o.prompt, pp_m, pp_sd);
        if (o.gen > 0) {
            printf("decode    %d tokens: %.2f ± %.2f tok/s = %.2f GB/s of weights", o.gen, tg_m,
                   tg_sd, tg_gbs);
            if (o.probe_mib > 0)
                printf(" = %.1f%% of the %.2f ± %.2f GB/s probe", 100 * frac, probe_mean,
                       probe_sd);
            putchar('\n');
        } else if (o.probe_mib > 0) {
            printf("probe     %.2f ± %.2f GB/s read bandwidth\n", probe_mean, probe_sd);
        }
        printf("peak RSS  %.1f MiB\n", (double)peak_rss / 1048576.0);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fail("writing stdout: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(buf);
    free(col);
    free(reps);
    free(prompt);
    if (m)
        qlm_model_free(m);
    return rc;
}
