/*
 * qlm-imatrix — activation statistics for calibrated quantization: for
 * every linear weight of a float .qlm model (q/k/v/o/gate/up/down of each
 * layer, and the output head), the mean over a text of x^2 for each input
 * column of the inputs the weight multiplies, written to an .imat file
 * (formats/qlm_imat.h) that qlm-convert --imatrix reads.
 *
 * Method (llama.cpp's imatrix, and qlm-ppl's chunks): the text is tokenized
 * whole and cut into chunks of --ctx tokens (a last partial chunk is
 * dropped); each chunk is evaluated from an empty cache keeping every
 * position's logits, so the head sees every token too.  The session sums
 * x^2 and counts rows per weight (qlm_session_collect_stats); the file holds
 * sum / count.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "qlm.h"
#include "qlm_imat.h"

static const char *prog = "qlm-imatrix";

/* Tokens per qlm_eval call: every position's logits are kept (for the
 * head's statistics), so this bounds them to PIECE x vocab floats. */
#define PIECE 256

struct opts {
    const char *model, *text, *out;
    int ctx, max_chunks, threads;
    bool force;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s FILE.qlm -f TEXT -o OUT.imat [options]\n"
            "Activation statistics of a float model over a text: for every linear weight,\n"
            "the mean x^2 of each input column, written for qlm-convert --imatrix.\n"
            "\n"
            "  -f, --file TEXT     text to evaluate (UTF-8, whole file, '-' = stdin)\n"
            "  -o, --output FILE   the .imat file to write (required)\n"
            "  -c, --ctx N         tokens per chunk (default 512)\n"
            "      --chunks N      evaluate at most N chunks (default: all)\n"
            "  -t, --threads N     threads (default: physical cores)\n"
            "      --force         overwrite OUT.imat if it exists\n"
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
    enum { OPT_CHUNKS = 256, OPT_FORCE };
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"ctx", required_argument, NULL, 'c'},
        {"chunks", required_argument, NULL, OPT_CHUNKS},
        {"threads", required_argument, NULL, 't'},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct qlm_error err = {0};
    memset(o, 0, sizeof *o);
    o->ctx = 512;
    *exit_now = -1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:o:c:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->text = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'c':
            if (qlm_cli_parse_int("--ctx", optarg, 1, 1 << 24, &o->ctx, &err))
                return fail("%s", err.msg);
            break;
        case OPT_CHUNKS:
            if (qlm_cli_parse_int("--chunks", optarg, 1, 1 << 30, &o->max_chunks, &err))
                return fail("%s", err.msg);
            break;
        case 't':
            if (qlm_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, &err))
                return fail("%s", err.msg);
            break;
        case OPT_FORCE:
            o->force = true;
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
    if (!o->text)
        return fail("no text: give -f TEXT (see --help)");
    if (!o->out)
        return fail("no output: give -o OUT.imat (see --help)");
    return 0;
}

/* The statistics are of a float model's activations: a quantized file
 * would measure its own rounding.  NULL when every tensor is float, else
 * the first quantized one. */
static const struct qlm_tensor_info *quantized_tensor(const struct qlm_model *m)
{
    const struct qlm_file *f = qlm_model_file(m);
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (qlm_dtype_is_quant(f->tensors[i].dtype))
            return &f->tensors[i];
    return NULL;
}

/* The collected sums as an .imat: each weight's mean x^2 per column.
 * values (n_stats pointers) are malloc'ed into vals; NULL name on success,
 * else the weight whose means are not finite. */
static const char *to_imat(const struct qlm_model *m, const struct qlm_session *s,
                           uint64_t n_tokens, uint32_t n_chunks, uint32_t ctx,
                           struct qlm_imat *im, struct qlm_imat_entry *ents, float **vals)
{
    const struct qlm_hparams *hp = qlm_model_hparams(m);
    memset(im, 0, sizeof *im);
    snprintf(im->model.arch, sizeof im->model.arch, "%s", hp->arch);
    im->model.n_layers = (uint32_t)hp->n_layers;
    im->model.hidden = (uint32_t)hp->hidden;
    im->model.ffn_hidden = (uint32_t)hp->ffn_hidden;
    im->model.n_heads = (uint32_t)hp->n_heads;
    im->model.n_kv_heads = (uint32_t)hp->n_kv_heads;
    im->model.head_dim = (uint32_t)hp->head_dim;
    im->model.vocab_size = (uint32_t)hp->vocab_size;
    im->n_tokens = n_tokens;
    im->n_chunks = n_chunks;
    im->chunk_tokens = ctx;
    im->entries = ents;
    for (int i = 0; i < qlm_session_n_stats(s); i++) {
        struct qlm_weight_stats ws;
        qlm_session_stats(s, i, &ws, NULL);
        float *v = vals[i] = malloc((size_t)ws.cols * sizeof *v);
        if (v == NULL)
            return "(out of memory)";
        for (int c = 0; c < ws.cols; c++) {
            v[c] = (float)(ws.sum_sq[c] / (double)ws.count);
            if (!isfinite(v[c]))
                return ws.name;
        }
        ents[i] = (struct qlm_imat_entry){ws.name, (uint32_t)ws.cols, ws.count, v};
        im->n_entries++;
    }
    return NULL;
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
    struct qlm_session *s = NULL;
    int32_t *toks = NULL;
    size_t n_toks = 0, text_len = 0;
    char *text = NULL;
    struct qlm_imat_entry *ents = NULL;
    float **vals = NULL;
    int n_stats = 0;

    struct stat st;
    if (!o.force && lstat(o.out, &st) == 0)
        return fail("%s: already exists; use --force to overwrite", o.out);
    qlm_cli_catch_sigbus(prog, o.model);
    if (qlm_model_open(&m, o.model, &err)) {
        fail("%s", err.msg);
        goto out;
    }
    const struct qlm_tensor_info *qt = quantized_tensor(m);
    if (qt != NULL) {
        fail("%s: tensor '%s' is %s: the statistics must come from a float model (f32, bf16 "
             "or f16; qlm-convert --type f32)", o.model, qt->name, qlm_dtype_name(qt->dtype));
        goto out;
    }
    if (qlm_session_new(&s, m, o.ctx, o.threads, &err) ||
        qlm_cli_read_text(o.text, &text, &text_len, &err) ||
        qlm_tokenize(m, text, text_len, false, &toks, &n_toks, &err)) {
        fail("%s", err.msg);
        goto out;
    }
    size_t n_chunks = n_toks / (size_t)o.ctx, avail = n_chunks;
    if (n_chunks == 0) {
        fail("%s: %zu tokens, fewer than one chunk of --ctx %d", o.text, n_toks, o.ctx);
        goto out;
    }
    if (o.max_chunks > 0 && (size_t)o.max_chunks < n_chunks)
        n_chunks = (size_t)o.max_chunks;
    if (qlm_session_collect_stats(s, true, &err)) {
        fail("%s", err.msg);
        goto out;
    }

    qlm_cli_catch_sigint();
    char label[128];
    struct qlm_cli_progress pb;
    snprintf(label, sizeof label, "imatrix");
    qlm_cli_progress_begin(&pb, label);
    double t0 = qlm_cli_now();
    size_t done = 0;
    for (size_t c = 0; c < n_chunks && !qlm_cli_interrupted; c++) {
        const int32_t *ct = toks + c * (size_t)o.ctx;
        qlm_session_rewind(s, 0);
        for (int p = 0; p < o.ctx; p += PIECE) {
            int n = o.ctx - p < PIECE ? o.ctx - p : PIECE;
            if (qlm_eval(s, ct + p, n, true, &err)) {
                qlm_cli_progress_end(&pb);
                fail("%s", err.msg);
                goto out;
            }
        }
        done = c + 1;
        snprintf(label, sizeof label, "imatrix chunk %zu/%zu", done, n_chunks);
        qlm_cli_progress_update(&pb, done, n_chunks);
    }
    qlm_cli_progress_end(&pb);
    double secs = qlm_cli_now() - t0;
    if (qlm_cli_interrupted) {
        fail("interrupted after %zu of %zu chunks; nothing written", done, n_chunks);
        rc = 130;
        goto out;
    }

    n_stats = qlm_session_n_stats(s);
    ents = calloc((size_t)n_stats, sizeof *ents);
    vals = calloc((size_t)n_stats, sizeof *vals);
    if (!ents || !vals) {
        fail("out of memory");
        goto out;
    }
    struct qlm_imat im;
    const char *bad = to_imat(m, s, (uint64_t)done * (uint64_t)o.ctx, (uint32_t)done,
                              (uint32_t)o.ctx, &im, ents, vals);
    if (bad != NULL) {
        fail("%s: the inputs of '%s' are not finite (the model file may be damaged)", o.model,
             bad);
        goto out;
    }
    if (qlm_imat_write(o.out, &im, o.force, &err)) {
        fail("%s", err.msg);
        goto out;
    }
    fprintf(stderr, "%s: wrote %s: %d weights, %zu tokens in %zu chunks of %d", prog, o.out,
            n_stats, done * (size_t)o.ctx, done, o.ctx);
    if (done < avail)
        fprintf(stderr, " (of %zu)", avail);
    fprintf(stderr, ", %.1f s (%d threads)\n", secs, qlm_session_threads(s));
    rc = 0;
out:
    for (int i = 0; vals && i < n_stats; i++)
        free(vals[i]);
    free(vals);
    free(ents);
    free(toks);
    free(text);
    qlm_session_free(s);
    qlm_model_free(m);
    return rc;
}
