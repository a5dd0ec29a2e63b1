/*
 * qlm-ppl — perplexity of a .qlm model on a text, and with --ref the KL
 * divergence and top-token agreement against a reference model (usually the
 * f32 conversion of the same checkpoint) on the same tokens.
 *
 * Method (llama.cpp's): the tokens are cut into non-overlapping chunks of
 * --ctx tokens (the last partial chunk is dropped); each chunk is evaluated
 * from an empty cache in one batched qlm_eval keeping every position's
 * logits; the logits at positions i in [ctx/2, ctx-1) are scored against
 * token i+1, so each scored token has at least ctx/2 tokens of context
 * (--score-all: every i in [0, ctx-1)).  PPL = exp(mean NLL) ± ppl * sd(NLL)
 * / sqrt(N).  With --ref, only one chunk's logits of each model are held.
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

static const char *prog = "qlm-ppl";

struct opts {
    const char *model, *ref, *text, *tokens;
    int ctx, max_chunks, threads;
    int kv_type;                 /* -1: the model's default */
    bool score_all, json;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s FILE.qlm (-f TEXT | --tokens FILE) [options]\n"
            "Perplexity of a model on a text; with --ref, KL divergence and top-token\n"
            "agreement against a reference model on the same tokens.\n"
            "\n"
            "  -f, --file TEXT     text to score (UTF-8, whole file, '-' = stdin)\n"
            "      --tokens FILE   whitespace-separated token ids instead of text\n"
            "  -c, --ctx N         tokens per chunk (default 512)\n"
            "      --chunks N      score at most N chunks (default: all)\n"
            "      --score-all     score every position after the first of each chunk\n"
            "                      (default: the second half, each token with >= ctx/2\n"
            "                      tokens of context)\n"
            "  -r, --ref REF.qlm   reference model (same tokenizer): PPL ratio, KLD,\n"
            "                      same top token\n"
            "  -t, --threads N     threads (default: physical cores)\n"
            "      --kv-type T     KV cache of FILE: f16 or f32 (default: f16 for q8/q4\n"
            "                      models, f32 for float ones; the reference keeps its own)\n"
            "      --json          one JSON object on stdout\n"
            "  -h, --help          this help\n"
            "  -V, --version       version\n",
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
    enum { OPT_TOKENS = 256, OPT_CHUNKS, OPT_SCORE_ALL, OPT_JSON, OPT_KV_TYPE };
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"tokens", required_argument, NULL, OPT_TOKENS},
        {"ctx", required_argument, NULL, 'c'},
        {"chunks", required_argument, NULL, OPT_CHUNKS},
        {"score-all", no_argument, NULL, OPT_SCORE_ALL},
        {"ref", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},
        {"json", no_argument, NULL, OPT_JSON},
        {"kv-type", required_argument, NULL, OPT_KV_TYPE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct qlm_error err = {0};
    memset(o, 0, sizeof *o);
    o->ctx = 512;
    o->max_chunks = 0;
    o->threads = 0;
    o->kv_type = -1;
    *exit_now = -1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:c:r:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->text = optarg;
            break;
        case OPT_TOKENS:
            o->tokens = optarg;
            break;
        case 'c':
            if (qlm_cli_parse_int("--ctx", optarg, 4, 1 << 24, &o->ctx, &err))
                return fail("%s", err.msg);
            break;
        case OPT_CHUNKS:
            if (qlm_cli_parse_int("--chunks", optarg, 1, 1 << 30, &o->max_chunks, &err))
                return fail("%s", err.msg);
            break;
        case OPT_SCORE_ALL:
            o->score_all = true;
            break;
        case 'r':
            o->ref = optarg;
            break;
        case 't':
            if (qlm_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, &err))
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
    if (!o->text == !o->tokens)
        return fail(o->text ? "give either -f TEXT or --tokens FILE, not both"
                            : "no input: give -f TEXT or --tokens FILE (see --help)");
    return 0;
}

/* Two models can be compared only if they map the same ids to the same bytes. */
static int same_tokenizer(const struct qlm_model *a, const struct qlm_model *b, char *why,
                          size_t cap)
{
    int va = qlm_model_hparams(a)->vocab_size, vb = qlm_model_hparams(b)->vocab_size;
    if (va != vb) {
        snprintf(why, cap, "vocab_size %d vs %d", va, vb);
        return 0;
    }
    int na = qlm_n_tokens(a), nb = qlm_n_tokens(b);
    if (na != nb) {
        snprintf(why, cap, "%d vs %d tokens", na, nb);
        return 0;
    }
    for (int32_t id = 0; id < na; id++) {
        size_t la = 0, lb = 0;
        const uint8_t *ba = qlm_token_bytes(a, id, &la), *bb = qlm_token_bytes(b, id, &lb);
        if (!ba != !bb || la != lb || (la && memcmp(ba, bb, la) != 0)) {
            snprintf(why, cap, "token %d differs", (int)id);
            return 0;
        }
    }
    return 1;
}

/* Per-position results of one chunk, filled in parallel, summed in order. */
struct scored {
    double nll, nll_ref, kld;
    bool same_top;
};

struct side {
    const char *path;
    struct qlm_model *m;
    struct qlm_session *s;
    struct qlm_stats_acc nll;
    double eval_s;
};

/* Score positions [first, last) of the current chunk: logits row i predicts
 * toks[i + 1]. */
static int score_chunk(const float *lm, const float *lr, int vocab, const int32_t *toks,
                       int first, int last, int n_threads, double *bufs, struct scored *out)
{
    int bad = -1;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int i = first; i < last; i++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        const float *rm = lm + (size_t)i * (size_t)vocab;
        size_t tgt = (size_t)toks[i + 1];
        struct scored *r = &out[i - first];
        if (!lr) {
            r->nll = qlm_stats_nll(rm, (size_t)vocab, tgt);
            r->nll_ref = r->kld = 0.0;
            r->same_top = true;
        } else {
            const float *rr = lr + (size_t)i * (size_t)vocab;
            double *scratch = bufs + (size_t)tid * (size_t)vocab;
            /* KL(ref || model): the reference is P. */
            qlm_stats_compare(rr, rm, (size_t)vocab, tgt, scratch, &r->nll_ref, &r->nll, &r->kld);
            r->same_top = qlm_stats_argmax(rm, (size_t)vocab) == qlm_stats_argmax(rr, (size_t)vocab);
        }
        if (!isfinite(r->nll) || !isfinite(r->nll_ref) || !isfinite(r->kld)) {
#pragma omp critical
            if (bad < 0 || i < bad)
                bad = i;
        }
    }
    return bad;
}

static void fmt_eta(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, cap, "?");
    else if (s >= 3600)
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, cap, "%ds", (int)s);
}

static int cmp_side_open(struct side *sd, int ctx, int threads, int kv_type, const char *role)
{
    struct qlm_error err = {0};
    if (qlm_model_open(&sd->m, sd->path, &err))
        return fail("%s", err.msg);
    int max_pos = qlm_model_hparams(sd->m)->max_pos;
    if (max_pos > 0 && ctx > max_pos)
        return fail("--ctx %d: longer than the %s model's context (%d positions)", ctx, role,
                    max_pos);
    if (qlm_session_new(&sd->s, sd->m, ctx, threads, &err))
        return fail("%s", err.msg);
    if (kv_type >= 0 && qlm_session_set_kv_type(sd->s, (enum qlm_dtype)kv_type, &err))
        return fail("%s", err.msg);
    return 0;
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
    struct side mod = {.path = o.model}, ref = {.path = o.ref};
    int32_t *toks = NULL;
    size_t n_toks = 0;
    char *text = NULL;
    double *bufs = NULL, *klds = NULL;
    struct scored *res = NULL;

    qlm_cli_catch_sigbus(prog, o.model);
    double t_load = qlm_cli_now();
    if (cmp_side_open(&mod, o.ctx, o.threads, o.kv_type, "scored"))
        goto out;
    if (o.ref) {
        if (cmp_side_open(&ref, o.ctx, o.threads, -1, "reference"))
            goto out;
        char why[128];
        if (!same_tokenizer(mod.m, ref.m, why, sizeof why)) {
            fail("%s and %s have different tokenizers (%s): their logits cannot be compared",
                 o.model, o.ref, why);
            goto out;
        }
    }
    t_load = qlm_cli_now() - t_load;
    int vocab = qlm_model_hparams(mod.m)->vocab_size;
    int threads = qlm_session_threads(mod.s);

    /* Tokens: the whole text, no special-token parsing; or ids from a file. */
    if (o.text) {
        size_t len;
        if (qlm_cli_read_text(o.text, &text, &len, &err)) {
            fail("%s", err.msg);
            goto out;
        }
        if (qlm_tokenize(mod.m, text, len, false, &toks, &n_toks, &err)) {
            fail("%s", err.msg);
            goto out;
        }
    } else if (qlm_cli_read_tokens(o.tokens, vocab, &toks, &n_toks, &err)) {
        fail("%s", err.msg);
        goto out;
    }
    const char *input = o.text ? o.text : o.tokens;
    size_t n_chunks = n_toks / (size_t)o.ctx;
    if (n_chunks == 0) {
        fail("%s: %zu tokens, fewer than one chunk of --ctx %d", input, n_toks, o.ctx);
        goto out;
    }
    size_t avail_chunks = n_chunks;
    if (o.max_chunks > 0 && (size_t)o.max_chunks < n_chunks)
        n_chunks = (size_t)o.max_chunks;
    int first = o.score_all ? 0 : o.ctx / 2, last = o.ctx - 1;
    size_t per_chunk = (size_t)(last - first);
    size_t n_scored = n_chunks * per_chunk; /* <= n_toks: no overflow */

    res = calloc(per_chunk, sizeof *res);
    if (o.ref) {
        bufs = malloc((size_t)threads * (size_t)vocab * sizeof *bufs);
        klds = malloc(n_scored * sizeof *klds);
    }
    if (!res || (o.ref && (!bufs || !klds))) {
        fail("out of memory");
        goto out;
    }

    qlm_cli_catch_sigint();
    struct qlm_cli_progress pb;
    char label[512];
    snprintf(label, sizeof label, "ppl");
    qlm_cli_progress_begin(&pb, label);
    struct qlm_stats_acc diff = {0}; /* nll - nll_ref per position: ln ratio */
    uint64_t agree = 0;
    size_t done = 0, k = 0;
    double t0 = qlm_cli_now();
    for (size_t c = 0; c < n_chunks && !qlm_cli_interrupted; c++) {
        const int32_t *ct = toks + c * (size_t)o.ctx;
        double t = qlm_cli_now();
        qlm_session_rewind(mod.s, 0);
        if (qlm_eval(mod.s, ct, o.ctx, true, &err)) {
            qlm_cli_progress_end(&pb);
            fail("%s", err.msg);
            goto out;
        }
        mod.eval_s += qlm_cli_now() - t;
        const float *lr = NULL;
        if (o.ref) {
            t = qlm_cli_now();
            qlm_session_rewind(ref.s, 0);
            if (qlm_eval(ref.s, ct, o.ctx, true, &err)) {
                qlm_cli_progress_end(&pb);
                fail("%s", err.msg);
                goto out;
            }
            ref.eval_s += qlm_cli_now() - t;
            lr = qlm_logits(ref.s);
        }
        int bad = score_chunk(qlm_logits(mod.s), lr, vocab, ct, first, last, threads, bufs, res);
        if (bad >= 0) {
            qlm_cli_progress_end(&pb);
            fail("chunk %zu, position %d: non-finite logits (the model file may be damaged)",
                 c + 1, bad);
            goto out;
        }
        for (size_t i = 0; i < per_chunk; i++) {
            qlm_stats_acc_add(&mod.nll, res[i].nll);
            if (o.ref) {
                qlm_stats_acc_add(&ref.nll, res[i].nll_ref);
                qlm_stats_acc_add(&diff, res[i].nll - res[i].nll_ref);
                klds[k++] = res[i].kld;
                agree += res[i].same_top;
            }
        }
        done = c + 1;
        double el = qlm_cli_now() - t0, eta = el / (double)done * (double)(n_chunks - done);
        char es[32];
        fmt_eta(eta, es, sizeof es);
        snprintf(label, sizeof label, "ppl chunk %zu/%zu PPL %.4f ETA %s", done, n_chunks,
                 exp(mod.nll.mean), es);
        qlm_cli_progress_update(&pb, done, n_chunks);
    }
    qlm_cli_progress_end(&pb);
    if (done == 0) { /* ^C before the first chunk finished */
        fail("interrupted before the first chunk was scored");
        rc = 130;
        goto out;
    }
    double wall = qlm_cli_now() - t0;
    size_t scored = done * per_chunk;

    /* Figures. */
    double ppl = exp(mod.nll.mean), ppl_err = ppl * qlm_stats_acc_sem(&mod.nll);
    double ref_ppl = 0, ref_ppl_err = 0, ln_ratio = 0, ln_ratio_err = 0, ratio = 0;
    double kld_mean = 0, kld_err = 0, kld_med = 0, kld_99 = 0, kld_999 = 0, kld_max = 0;
    double same = 0, same_err = 0;
    if (o.ref) {
        ref_ppl = exp(ref.nll.mean);
        ref_ppl_err = ref_ppl * qlm_stats_acc_sem(&ref.nll);
        ln_ratio = diff.mean;
        ln_ratio_err = qlm_stats_acc_sem(&diff);
        ratio = exp(ln_ratio);
        double sd;
        qlm_stats_mean_sd(klds, scored, &kld_mean, &sd);
        kld_err = scored > 1 ? sd / sqrt((double)scored) : 0.0;
        qlm_stats_sort(klds, scored);
        kld_med = qlm_stats_percentile_sorted(klds, scored, 50);
        kld_99 = qlm_stats_percentile_sorted(klds, scored, 99);
        kld_999 = qlm_stats_percentile_sorted(klds, scored, 99.9);
        kld_max = klds[scored - 1];
        same = (double)agree / (double)scored;
        same_err = sqrt(same * (1 - same) / (double)scored);
    }
    const struct qlm_hparams *hp = qlm_model_hparams(mod.m);
    const char *method = o.score_all ? "all" : "second-half";

    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(o.model));
        json_object_set_new(j, "type", json_string(qlm_dtype_name(hp->wtype)));
        json_object_set_new(j, "kv_type", json_string(qlm_dtype_name(qlm_session_kv_type(mod.s))));
        json_object_set_new(j, "input", json_string(input));
        json_object_set_new(j, "n_tokens", json_integer((json_int_t)n_toks));
        json_object_set_new(j, "ctx", json_integer(o.ctx));
        json_object_set_new(j, "chunks", json_integer((json_int_t)done));
        json_object_set_new(j, "chunks_available", json_integer((json_int_t)avail_chunks));
        json_object_set_new(j, "method", json_string(method));
        json_object_set_new(j, "first_scored", json_integer(first));
        json_object_set_new(j, "n_scored", json_integer((json_int_t)scored));
        json_object_set_new(j, "nll", jnum(mod.nll.mean));
        json_object_set_new(j, "nll_sd", jnum(qlm_stats_acc_sd(&mod.nll)));
        json_object_set_new(j, "ppl", jnum(ppl));
        json_object_set_new(j, "ppl_err", jnum(ppl_err));
        if (o.ref) {
            json_object_set_new(j, "ref", json_string(o.ref));
            json_object_set_new(j, "ref_type",
                                json_string(qlm_dtype_name(qlm_model_hparams(ref.m)->wtype)));
            json_object_set_new(j, "ref_nll", jnum(ref.nll.mean));
            json_object_set_new(j, "ref_ppl", jnum(ref_ppl));
            json_object_set_new(j, "ref_ppl_err", jnum(ref_ppl_err));
            json_object_set_new(j, "ppl_ratio", jnum(ratio));
            json_object_set_new(j, "ln_ppl_ratio", jnum(ln_ratio));
            json_object_set_new(j, "ln_ppl_ratio_err", jnum(ln_ratio_err));
            json_object_set_new(j, "kld_mean", jnum(kld_mean));
            json_object_set_new(j, "kld_err", jnum(kld_err));
            json_object_set_new(j, "kld_median", jnum(kld_med));
            json_object_set_new(j, "kld_p99", jnum(kld_99));
            json_object_set_new(j, "kld_p999", jnum(kld_999));
            json_object_set_new(j, "kld_max", jnum(kld_max));
            json_object_set_new(j, "same_top", jnum(same));
            json_object_set_new(j, "same_top_err", jnum(same_err));
            json_object_set_new(j, "ref_eval_seconds", jnum(ref.eval_s));
        }
        json_object_set_new(j, "threads", json_integer(threads));
        json_object_set_new(j, "load_seconds", jnum(t_load));
        json_object_set_new(j, "eval_seconds", jnum(mod.eval_s));
        json_object_set_new(j, "seconds_per_chunk", jnum(done ? mod.eval_s / (double)done : 0));
        json_object_set_new(j, "wall_seconds", jnum(wall));
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)qlm_cli_peak_rss()));
        json_object_set_new(j, "interrupted", json_boolean(qlm_cli_interrupted != 0));
        char *s = json_dumps(j, JSON_REAL_PRECISION(17));
        json_decref(j);
        if (!s) {
            fail("out of memory");
            goto out;
        }
        puts(s);
        free(s);
    } else {
        printf("model        %s (%s, KV cache %s)\n", o.model, qlm_dtype_name(hp->wtype),
               qlm_dtype_name(qlm_session_kv_type(mod.s)));
        if (o.ref)
            printf("reference    %s (%s)\n", o.ref,
                   qlm_dtype_name(qlm_model_hparams(ref.m)->wtype));
        printf("text         %s: %zu tokens, %zu chunks of %d", input, n_toks, done, o.ctx);
        if (done < avail_chunks)
            printf(" (of %zu)", avail_chunks);
        printf(", %zu positions scored (%s)\n", scored,
               o.score_all ? "all after the first of each chunk" : "second half of each chunk");
        if (!o.ref) {
            printf("PPL          %.4f ± %.4f\n", ppl, ppl_err);
        } else {
            printf("PPL model    %.4f ± %.4f\n", ppl, ppl_err);
            printf("PPL ref      %.4f ± %.4f\n", ref_ppl, ref_ppl_err);
            printf("PPL ratio    %.5f (ln ratio %.6f ± %.6f)\n", ratio, ln_ratio,
                   ln_ratio_err);
            printf("KLD mean     %.6f ± %.6f\n", kld_mean, kld_err);
            printf("KLD median   %.6f\n", kld_med);
            printf("KLD 99%%      %.6f\n", kld_99);
            printf("KLD 99.9%%    %.6f\n", kld_999);
            printf("KLD max      %.6f\n", kld_max);
            printf("same top     %.3f%% ± %.3f%%\n", 100 * same, 100 * same_err);
        }
        printf("time         %.2f s per chunk (%d threads)", done ? mod.eval_s / (double)done : 0,
               threads);
        if (o.ref)
            printf(", reference %.2f s per chunk", done ? ref.eval_s / (double)done : 0);
        printf("; %.1f s in all; peak RSS %.1f MiB\n", wall, (double)qlm_cli_peak_rss() / 1048576.0);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fail("writing stdout: %s", strerror(errno));
        goto out;
    }
    if (qlm_cli_interrupted) {
        fail("interrupted after %zu of %zu chunks (figures above cover those)", done, n_chunks);
        rc = 130;
        goto out;
    }
    rc = 0;
out:
    free(res);
    free(bufs);
    free(klds);
    free(toks);
    free(text);
    if (mod.s)
        qlm_session_free(mod.s);
    if (ref.s)
        qlm_session_free(ref.s);
    if (mod.m)
        qlm_model_free(mod.m);
    if (ref.m)
        qlm_model_free(ref.m);
    return rc;
}
