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

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "qlm.h"
#include "stats.h"

struct opts {
    struct qlm_cli_common co;    /* model, threads, kv_type, json */
    const char *ref, *text, *tokens;
    int ctx, max_chunks;
    bool score_all;
};

static const char HELP[] =
    "Usage: qlm-ppl FILE.qlm (-f TEXT | --tokens FILE) [options]\n"
    "Perplexity of a model on a text; with --ref, KL divergence and top-token\n"
    "agreement against a reference model on the same tokens.\n"
    "\n"
    "  -m, --model FILE    FILE.qlm given as an option\n"
    "  -f, --file TEXT     text to score (UTF-8, whole file, '-' = stdin)\n"
    "      --tokens FILE   whitespace-separated token ids instead of text\n"
    "  -c, --ctx N, --ctx-size N\n"
    "                      tokens per chunk (default 512)\n"
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
    "  -V, --version       version\n"
    "\n"
    "Exit status: 0 on success, 1 on errors, 2 on usage errors, 130 when ^C\n"
    "stopped it (the figures then cover the chunks scored).\n";

/* QLM_CLI_CONTINUE, or the status to exit with. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    enum { OPT_TOKENS = 256, OPT_CHUNKS, OPT_SCORE_ALL };
    static const struct option longopts[] = {
        QLM_CLI_LONG_MODEL,
        {"file", required_argument, NULL, 'f'},
        {"tokens", required_argument, NULL, OPT_TOKENS},
        QLM_CLI_LONG_CTX,
        {"chunks", required_argument, NULL, OPT_CHUNKS},
        {"score-all", no_argument, NULL, OPT_SCORE_ALL},
        {"ref", required_argument, NULL, 'r'},
        QLM_CLI_LONG_THREADS,
        QLM_CLI_LONG_JSON,
        QLM_CLI_LONG_KV_TYPE,
        QLM_CLI_LONG_STD,
        {NULL, 0, NULL, 0},
    };
    struct qlm_error err = {0};
    *o = (struct opts){.co = QLM_CLI_COMMON_INIT, .ctx = 512};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:f:c:r:t:hV", longopts, NULL)) != -1) {
        enum qlm_err rc = QLM_OK;
        int st = QLM_CLI_CONTINUE;
        switch (c) {
        case 'f': o->text = optarg; break;
        case OPT_TOKENS: o->tokens = optarg; break;
        case 'c': rc = qlm_cli_parse_int("--ctx", optarg, 4, 1 << 24, &o->ctx, &err); break;
        case OPT_CHUNKS:
            rc = qlm_cli_parse_int("--chunks", optarg, 1, 1 << 30, &o->max_chunks, &err);
            break;
        case OPT_SCORE_ALL: o->score_all = true; break;
        case 'r': o->ref = optarg; break;
        default: st = qlm_cli_option(c, optarg, argv, &o->co); break;
        }
        if (rc != QLM_OK)
            return qlm_cli_usage("%s", err.msg);
        if (st != QLM_CLI_CONTINUE)
            return st;
    }
    int st = qlm_cli_take_model(argc, argv, "FILE.qlm", &o->co);
    if (st != QLM_CLI_CONTINUE)
        return st;
    if (!o->text == !o->tokens)
        return qlm_cli_usage(o->text ? "give either -f TEXT or --tokens FILE, not both"
                                     : "no input: give -f TEXT or --tokens FILE (see --help)");
    qlm_cli_options_done(&o->co);
    return QLM_CLI_CONTINUE;
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
        return qlm_cli_fail("%s", err.msg);
    int max_pos = qlm_model_hparams(sd->m)->max_pos;
    if (max_pos > 0 && ctx > max_pos)
        return qlm_cli_fail("--ctx %d: longer than the %s model's context (%d positions)", ctx,
                            role, max_pos);
    if (qlm_session_new(&sd->s, sd->m, ctx, threads, &err))
        return qlm_cli_fail("%s", err.msg);
    if (kv_type >= 0 && qlm_session_set_kv_type(sd->s, (enum qlm_dtype)kv_type, &err))
        return qlm_cli_fail("%s", err.msg);
    return 0;
}

/* ---- the run ------------------------------------------------------------------ */

/* One run: both models, the tokens, and what was summed chunk by chunk. */
struct ppl {
    struct side mod, ref;
    int32_t *toks;
    size_t n_toks;
    char *text;
    const char *input;           /* the text's or the token file's name */
    int vocab, threads;
    int first, last;             /* scored logits rows of each chunk */
    size_t per_chunk, n_chunks, avail_chunks, done;
    double t_load, wall;
    struct qlm_stats_acc diff;   /* nll - nll_ref per position: ln ratio */
    double *klds;                /* --ref: per scored position */
    uint64_t agree;
};

/* What is printed, from a finished run. */
struct figures {
    size_t scored;
    double ppl, ppl_err, ref_ppl, ref_ppl_err, ln_ratio, ln_ratio_err, ratio;
    double kld_mean, kld_err, kld_med, kld_99, kld_999, kld_max, same, same_err;
};

static void ppl_free(struct ppl *p)
{
    free(p->klds);
    free(p->toks);
    free(p->text);
    struct side *sides[2] = {&p->mod, &p->ref};
    for (int i = 0; i < 2; i++) {
        if (sides[i]->s)
            qlm_session_free(sides[i]->s);
        if (sides[i]->m)
            qlm_model_free(sides[i]->m);
    }
}

static int open_models(const struct opts *o, struct ppl *p)
{
    double t = qlm_cli_now();
    if (cmp_side_open(&p->mod, o->ctx, o->co.threads, o->co.kv_type, "scored"))
        return 1;
    if (o->ref) {
        if (cmp_side_open(&p->ref, o->ctx, o->co.threads, -1, "reference"))
            return 1;
        char why[128];
        if (!same_tokenizer(p->mod.m, p->ref.m, why, sizeof why))
            return qlm_cli_fail("%s and %s have different tokenizers (%s): their logits "
                                "cannot be compared", o->co.model, o->ref, why);
    }
    p->t_load = qlm_cli_now() - t;
    p->vocab = qlm_model_hparams(p->mod.m)->vocab_size;
    p->threads = qlm_session_threads(p->mod.s);
    return 0;
}

/* Tokens: the whole text, no special-token parsing; or ids from a file.
 * Then the chunks and the rows scored in each. */
static int read_input(const struct opts *o, struct ppl *p)
{
    struct qlm_error err = {0};
    if (o->text) {
        size_t len;
        if (qlm_cli_read_text(o->text, &p->text, &len, &err) ||
            qlm_tokenize(p->mod.m, p->text, len, false, &p->toks, &p->n_toks, &err))
            return qlm_cli_fail("%s", err.msg);
    } else if (qlm_cli_read_tokens(o->tokens, p->vocab, &p->toks, &p->n_toks, &err)) {
        return qlm_cli_fail("%s", err.msg);
    }
    p->input = o->text ? o->text : o->tokens;
    p->n_chunks = p->avail_chunks = p->n_toks / (size_t)o->ctx;
    if (p->n_chunks == 0)
        return qlm_cli_fail("%s: %zu tokens, fewer than one chunk of --ctx %d", p->input,
                            p->n_toks, o->ctx);
    if (o->max_chunks > 0 && (size_t)o->max_chunks < p->n_chunks)
        p->n_chunks = (size_t)o->max_chunks;
    p->first = o->score_all ? 0 : o->ctx / 2;
    p->last = o->ctx - 1;
    p->per_chunk = (size_t)(p->last - p->first);
    return 0;
}

/* Evaluate a chunk from an empty cache, keeping every position's logits. */
static enum qlm_err eval_chunk(struct side *sd, const int32_t *ct, int ctx,
                               struct qlm_error *err)
{
    double t = qlm_cli_now();
    qlm_session_rewind(sd->s, 0);
    QLM_TRY(qlm_eval(sd->s, ct, ctx, true, err));
    sd->eval_s += qlm_cli_now() - t;
    return QLM_OK;
}

/* Score the chunks in order until done or ^C; a progress bar on a terminal. */
static int score(const struct opts *o, struct ppl *p)
{
    size_t n_scored = p->n_chunks * p->per_chunk; /* <= n_toks: no overflow */
    struct scored *res = calloc(p->per_chunk, sizeof *res);
    double *bufs = NULL;
    if (o->ref) {
        bufs = malloc((size_t)p->threads * (size_t)p->vocab * sizeof *bufs);
        p->klds = malloc(n_scored * sizeof *p->klds);
    }
    if (!res || (o->ref && (!bufs || !p->klds))) {
        free(res);
        free(bufs);
        return qlm_cli_fail("out of memory");
    }
    qlm_cli_catch_sigint();
    struct qlm_cli_progress pb;
    char label[512] = "ppl";
    qlm_cli_progress_begin(&pb, label);
    struct qlm_error err = {0};
    size_t k = 0;
    double t0 = qlm_cli_now();
    int rc = 0;
    for (size_t c = 0; c < p->n_chunks && !qlm_cli_interrupted; c++) {
        const int32_t *ct = p->toks + c * (size_t)o->ctx;
        if (eval_chunk(&p->mod, ct, o->ctx, &err) ||
            (o->ref && eval_chunk(&p->ref, ct, o->ctx, &err))) {
            qlm_cli_progress_end(&pb);
            rc = qlm_cli_fail("%s", err.msg);
            break;
        }
        const float *lr = o->ref ? qlm_logits(p->ref.s) : NULL;
        int bad = score_chunk(qlm_logits(p->mod.s), lr, p->vocab, ct, p->first, p->last,
                              p->threads, bufs, res);
        if (bad >= 0) {
            qlm_cli_progress_end(&pb);
            rc = qlm_cli_fail("chunk %zu, position %d: non-finite logits (the model file may "
                              "be damaged)", c + 1, bad);
            break;
        }
        for (size_t i = 0; i < p->per_chunk; i++) {
            qlm_stats_acc_add(&p->mod.nll, res[i].nll);
            if (o->ref) {
                qlm_stats_acc_add(&p->ref.nll, res[i].nll_ref);
                qlm_stats_acc_add(&p->diff, res[i].nll - res[i].nll_ref);
                p->klds[k++] = res[i].kld;
                p->agree += res[i].same_top;
            }
        }
        p->done = c + 1;
        double el = qlm_cli_now() - t0;
        char es[32];
        fmt_eta(el / (double)p->done * (double)(p->n_chunks - p->done), es, sizeof es);
        snprintf(label, sizeof label, "ppl chunk %zu/%zu PPL %.4f ETA %s", p->done,
                 p->n_chunks, exp(p->mod.nll.mean), es);
        qlm_cli_progress_update(&pb, p->done, p->n_chunks);
    }
    qlm_cli_progress_end(&pb);
    p->wall = qlm_cli_now() - t0;
    free(res);
    free(bufs);
    if (rc == 0 && p->done == 0) { /* ^C before the first chunk finished */
        qlm_cli_fail("interrupted before the first chunk was scored");
        rc = QLM_CLI_EXIT_INTR;
    }
    return rc;
}

static void compute_figures(const struct opts *o, struct ppl *p, struct figures *f)
{
    memset(f, 0, sizeof *f);
    size_t n = f->scored = p->done * p->per_chunk;
    f->ppl = exp(p->mod.nll.mean);
    f->ppl_err = f->ppl * qlm_stats_acc_sem(&p->mod.nll);
    if (!o->ref)
        return;
    f->ref_ppl = exp(p->ref.nll.mean);
    f->ref_ppl_err = f->ref_ppl * qlm_stats_acc_sem(&p->ref.nll);
    f->ln_ratio = p->diff.mean;
    f->ln_ratio_err = qlm_stats_acc_sem(&p->diff);
    f->ratio = exp(f->ln_ratio);
    double sd;
    qlm_stats_mean_sd(p->klds, n, &f->kld_mean, &sd);
    f->kld_err = n > 1 ? sd / sqrt((double)n) : 0.0;
    qlm_stats_sort(p->klds, n);
    f->kld_med = qlm_stats_percentile_sorted(p->klds, n, 50);
    f->kld_99 = qlm_stats_percentile_sorted(p->klds, n, 99);
    f->kld_999 = qlm_stats_percentile_sorted(p->klds, n, 99.9);
    f->kld_max = p->klds[n - 1];
    f->same = (double)p->agree / (double)n;
    f->same_err = sqrt(f->same * (1 - f->same) / (double)n);
}

/* ---- output ------------------------------------------------------------------ */

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void json_ref(json_t *j, const struct opts *o, const struct ppl *p,
                     const struct figures *f)
{
    json_object_set_new(j, "ref", json_string(o->ref));
    json_object_set_new(j, "ref_type",
                        json_string(qlm_dtype_name(qlm_model_hparams(p->ref.m)->wtype)));
    json_object_set_new(j, "ref_nll", jnum(p->ref.nll.mean));
    json_object_set_new(j, "ref_ppl", jnum(f->ref_ppl));
    json_object_set_new(j, "ref_ppl_err", jnum(f->ref_ppl_err));
    json_object_set_new(j, "ppl_ratio", jnum(f->ratio));
    json_object_set_new(j, "ln_ppl_ratio", jnum(f->ln_ratio));
    json_object_set_new(j, "ln_ppl_ratio_err", jnum(f->ln_ratio_err));
    json_object_set_new(j, "kld_mean", jnum(f->kld_mean));
    json_object_set_new(j, "kld_err", jnum(f->kld_err));
    json_object_set_new(j, "kld_median", jnum(f->kld_med));
    json_object_set_new(j, "kld_p99", jnum(f->kld_99));
    json_object_set_new(j, "kld_p999", jnum(f->kld_999));
    json_object_set_new(j, "kld_max", jnum(f->kld_max));
    json_object_set_new(j, "same_top", jnum(f->same));
    json_object_set_new(j, "same_top_err", jnum(f->same_err));
    json_object_set_new(j, "ref_eval_seconds", jnum(p->ref.eval_s));
}

static int print_json(const struct opts *o, const struct ppl *p, const struct figures *f)
{
    const struct qlm_hparams *hp = qlm_model_hparams(p->mod.m);
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(o->co.model));
    json_object_set_new(j, "type", json_string(qlm_dtype_name(hp->wtype)));
    json_object_set_new(j, "kv_type", json_string(qlm_dtype_name(qlm_session_kv_type(p->mod.s))));
    json_object_set_new(j, "input", json_string(p->input));
    json_object_set_new(j, "n_tokens", json_integer((json_int_t)p->n_toks));
    json_object_set_new(j, "ctx", json_integer(o->ctx));
    json_object_set_new(j, "chunks", json_integer((json_int_t)p->done));
    json_object_set_new(j, "chunks_available", json_integer((json_int_t)p->avail_chunks));
    json_object_set_new(j, "method", json_string(o->score_all ? "all" : "second-half"));
    json_object_set_new(j, "first_scored", json_integer(p->first));
    json_object_set_new(j, "n_scored", json_integer((json_int_t)f->scored));
    json_object_set_new(j, "nll", jnum(p->mod.nll.mean));
    json_object_set_new(j, "nll_sd", jnum(qlm_stats_acc_sd(&p->mod.nll)));
    json_object_set_new(j, "ppl", jnum(f->ppl));
    json_object_set_new(j, "ppl_err", jnum(f->ppl_err));
    if (o->ref)
        json_ref(j, o, p, f);
    json_object_set_new(j, "threads", json_integer(p->threads));
    json_object_set_new(j, "load_seconds", jnum(p->t_load));
    json_object_set_new(j, "eval_seconds", jnum(p->mod.eval_s));
    json_object_set_new(j, "seconds_per_chunk", jnum(p->mod.eval_s / (double)p->done));
    json_object_set_new(j, "wall_seconds", jnum(p->wall));
    json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)qlm_cli_peak_rss()));
    json_object_set_new(j, "interrupted", json_boolean(qlm_cli_interrupted != 0));
    char *s = json_dumps(j, JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!s)
        return qlm_cli_fail("out of memory");
    puts(s);
    free(s);
    return 0;
}

static void print_text(const struct opts *o, const struct ppl *p, const struct figures *f)
{
    const struct qlm_hparams *hp = qlm_model_hparams(p->mod.m);
    printf("model        %s (%s, KV cache %s)\n", o->co.model, qlm_dtype_name(hp->wtype),
           qlm_dtype_name(qlm_session_kv_type(p->mod.s)));
    if (o->ref)
        printf("reference    %s (%s)\n", o->ref,
               qlm_dtype_name(qlm_model_hparams(p->ref.m)->wtype));
    printf("text         %s: %zu tokens, %zu chunks of %d", p->input, p->n_toks, p->done, o->ctx);
    if (p->done < p->avail_chunks)
        printf(" (of %zu)", p->avail_chunks);
    printf(", %zu positions scored (%s)\n", f->scored,
           o->score_all ? "all after the first of each chunk" : "second half of each chunk");
    if (!o->ref) {
        printf("PPL          %.4f ± %.4f\n", f->ppl, f->ppl_err);
    } else {
        printf("PPL model    %.4f ± %.4f\n", f->ppl, f->ppl_err);
        printf("PPL ref      %.4f ± %.4f\n", f->ref_ppl, f->ref_ppl_err);
        printf("PPL ratio    %.5f (ln ratio %.6f ± %.6f)\n", f->ratio, f->ln_ratio,
               f->ln_ratio_err);
        printf("KLD mean     %.6f ± %.6f\n", f->kld_mean, f->kld_err);
        printf("KLD median   %.6f\n", f->kld_med);
        printf("KLD 99%%      %.6f\n", f->kld_99);
        printf("KLD 99.9%%    %.6f\n", f->kld_999);
        printf("KLD max      %.6f\n", f->kld_max);
        printf("same top     %.3f%% ± %.3f%%\n", 100 * f->same, 100 * f->same_err);
    }
    printf("time         %.2f s per chunk (%d threads)", p->mod.eval_s / (double)p->done,
           p->threads);
    if (o->ref)
        printf(", reference %.2f s per chunk", p->ref.eval_s / (double)p->done);
    printf("; %.1f s in all; peak RSS %.1f MiB\n", p->wall,
           (double)qlm_cli_peak_rss() / 1048576.0);
}

int main(int argc, char **argv)
{
    qlm_cli_init("qlm-ppl", HELP);
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != QLM_CLI_CONTINUE)
        return rc;
    struct ppl p = {.mod = {.path = o.co.model}, .ref = {.path = o.ref}};
    qlm_cli_catch_sigbus(o.co.model, "the model file");
    if (!(rc = open_models(&o, &p)) && !(rc = read_input(&o, &p)) && !(rc = score(&o, &p))) {
        struct figures f;
        compute_figures(&o, &p, &f);
        rc = o.co.json ? print_json(&o, &p, &f) : (print_text(&o, &p, &f), 0);
        if (rc == 0)
            rc = qlm_cli_flush_stdout();
        if (rc == 0 && qlm_cli_interrupted) {
            qlm_cli_fail("interrupted after %zu of %zu chunks (figures above cover those)",
                         p.done, p.n_chunks);
            rc = QLM_CLI_EXIT_INTR;
        }
    }
    ppl_free(&p);
    return rc;
}
