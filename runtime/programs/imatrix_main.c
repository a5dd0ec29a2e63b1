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

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "qlm.h"
#include "qlm_imat.h"

/* Tokens per qlm_eval call: every position's logits are kept (for the
 * head's statistics), so this bounds them to PIECE x vocab floats. */
#define PIECE 256

struct opts {
    struct qlm_cli_common co;    /* model, threads */
    const char *text, *out;
    int ctx, max_chunks;
    bool force;
};

static const char HELP[] =
    "Usage: qlm-imatrix FILE.qlm -f TEXT -o OUT.imat [options]\n"
    "Activation statistics of a float model over a text: for every linear weight,\n"
    "the mean x^2 of each input column, written to an .imat file for qlm-convert.\n"
    "\n"
    "  -m, --model FILE    FILE.qlm given as an option\n"
    "  -f, --file TEXT     text to evaluate (UTF-8, whole file, '-' = stdin)\n"
    "  -o, --output FILE   the .imat file to write (required)\n"
    "  -c, --ctx N, --ctx-size N\n"
    "                      tokens per chunk (default 512)\n"
    "      --chunks N      evaluate at most N chunks (default: all)\n"
    "  -t, --threads N     threads (default: physical cores)\n"
    "      --force         overwrite OUT.imat if it exists\n"
    "  -h, --help          this help\n"
    "  -V, --version       version\n"
    "\n"
    "Exit status: 0 on success, 1 on errors, 2 on usage errors, 130 when ^C\n"
    "stopped it (nothing is written then).\n";

/* QLM_CLI_CONTINUE, or the status to exit with. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    enum { OPT_CHUNKS = 256, OPT_FORCE };
    static const struct option longopts[] = {
        QLM_CLI_LONG_MODEL,
        {"file", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        QLM_CLI_LONG_CTX,
        {"chunks", required_argument, NULL, OPT_CHUNKS},
        QLM_CLI_LONG_THREADS,
        {"force", no_argument, NULL, OPT_FORCE},
        QLM_CLI_LONG_STD,
        {NULL, 0, NULL, 0},
    };
    struct qlm_error err = {0};
    *o = (struct opts){.co = QLM_CLI_COMMON_INIT, .ctx = 512};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:f:o:c:t:hV", longopts, NULL)) != -1) {
        enum qlm_err rc = QLM_OK;
        int st = QLM_CLI_CONTINUE;
        switch (c) {
        case 'f': o->text = optarg; break;
        case 'o': o->out = optarg; break;
        case 'c': rc = qlm_cli_parse_int("--ctx", optarg, 1, 1 << 24, &o->ctx, &err); break;
        case OPT_CHUNKS:
            rc = qlm_cli_parse_int("--chunks", optarg, 1, 1 << 30, &o->max_chunks, &err);
            break;
        case OPT_FORCE: o->force = true; break;
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
    if (!o->text)
        return qlm_cli_usage("no text: give -f TEXT (see --help)");
    if (!o->out)
        return qlm_cli_usage("no output: give -o OUT.imat (see --help)");
    qlm_cli_options_done(&o->co);
    return QLM_CLI_CONTINUE;
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

/* The model's sizes, the tokens, and for each weight its mean x^2 per
 * column (into vals[i], malloc'ed; ents has n_stats slots).  NULL on
 * success, else the weight whose means are not finite (or "out of
 * memory"). */
static const char *to_imat(const struct qlm_model *m, const struct qlm_session *s,
                           uint64_t n_tokens, uint32_t n_chunks, uint32_t ctx,
                           struct qlm_imat *im, struct qlm_imat_entry *ents, float **vals)
{
    const struct qlm_hparams *hp = qlm_model_hparams(m);
    *im = (struct qlm_imat){.n_tokens = n_tokens, .n_chunks = n_chunks, .chunk_tokens = ctx,
                            .entries = ents};
    snprintf(im->model.arch, sizeof im->model.arch, "%s", hp->arch);
    im->model.n_layers = (uint32_t)hp->n_layers;
    im->model.hidden = (uint32_t)hp->hidden;
    im->model.ffn_hidden = (uint32_t)hp->ffn_hidden;
    im->model.n_heads = (uint32_t)hp->n_heads;
    im->model.n_kv_heads = (uint32_t)hp->n_kv_heads;
    im->model.head_dim = (uint32_t)hp->head_dim;
    im->model.vocab_size = (uint32_t)hp->vocab_size;
    for (int i = 0; i < qlm_session_n_stats(s); i++) {
        struct qlm_weight_stats ws;
        qlm_session_stats(s, i, &ws, NULL);
        float *v = vals[i] = malloc((size_t)ws.cols * sizeof *v);
        if (v == NULL)
            return "out of memory";
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

/* Every chunk evaluated with the statistics on; *done: the chunks done
 * (fewer after ^C).  0, or the status to exit with. */
static int evaluate(struct qlm_session *s, const int32_t *toks, size_t n_chunks, int ctx,
                    size_t *done)
{
    struct qlm_error err = {0};
    if (qlm_session_collect_stats(s, true, &err))
        return qlm_cli_fail("%s", err.msg);
    qlm_cli_catch_sigint();
    char label[96];
    struct qlm_cli_progress pb;
    snprintf(label, sizeof label, "imatrix");
    qlm_cli_progress_begin(&pb, label);
    *done = 0;
    for (size_t c = 0; c < n_chunks && !qlm_cli_interrupted; c++) {
        const int32_t *ct = toks + c * (size_t)ctx;
        qlm_session_rewind(s, 0);
        for (int p = 0; p < ctx; p += PIECE) {
            int n = ctx - p < PIECE ? ctx - p : PIECE;
            if (qlm_eval(s, ct + p, n, true, &err)) {
                qlm_cli_progress_end(&pb);
                return qlm_cli_fail("%s", err.msg);
            }
        }
        *done = c + 1;
        snprintf(label, sizeof label, "imatrix chunk %zu/%zu", *done, n_chunks);
        qlm_cli_progress_update(&pb, *done, n_chunks);
    }
    qlm_cli_progress_end(&pb);
    if (qlm_cli_interrupted) {
        qlm_cli_fail("interrupted after %zu of %zu chunks; nothing written", *done, n_chunks);
        return QLM_CLI_EXIT_INTR;
    }
    return 0;
}

/* The .imat at path (cli/'s rule: the file a link names, through the
 * writer's temporary file, which a SIGBUS removes).  0 or the status. */
static int write_imat(const char *path, const struct qlm_imat *im, bool force)
{
    struct qlm_error err = {0};
    size_t n = qlm_writer_tmp_path(path, NULL, 0) + 1;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return qlm_cli_fail("out of memory");
    qlm_writer_tmp_path(path, tmp, n);
    qlm_cli_temp_output(tmp, path);
    enum qlm_err rc = qlm_imat_write(path, im, force, &err);
    qlm_cli_temp_output(NULL, NULL);
    free(tmp);
    return rc == QLM_OK ? 0 : qlm_cli_fail("%s", err.msg);
}

/* Evaluate the text, write the statistics; 0 or the status. */
static int run(const struct opts *o, const char *out)
{
    struct qlm_error err = {0};
    struct qlm_model *m = NULL;
    struct qlm_session *s = NULL;
    int32_t *toks = NULL;
    size_t n_toks = 0, text_len = 0, done = 0, n_chunks = 0;
    char *text = NULL;
    struct qlm_imat_entry *ents = NULL;
    float **vals = NULL;
    int n_stats = 0, st = QLM_CLI_EXIT_ERR;
    const struct qlm_tensor_info *qt;

    if (qlm_model_open(&m, o->co.model, &err)) {
        qlm_cli_fail("%s", err.msg);
    } else if ((qt = quantized_tensor(m)) != NULL) {
        qlm_cli_fail("%s: tensor '%s' is %s: the statistics must come from a float model "
                     "(f32, bf16 or f16; qlm-convert --type f32)", o->co.model, qt->name,
                     qlm_dtype_name(qt->dtype));
    } else if (qlm_session_new(&s, m, o->ctx, o->co.threads, &err) ||
               qlm_cli_read_text(o->text, &text, &text_len, &err) ||
               qlm_tokenize(m, text, text_len, false, &toks, &n_toks, &err)) {
        qlm_cli_fail("%s", err.msg);
    } else if ((n_chunks = n_toks / (size_t)o->ctx) == 0) {
        qlm_cli_fail("%s: %zu tokens, fewer than one chunk of --ctx %d", o->text, n_toks,
                     o->ctx);
    } else {
        size_t avail = n_chunks;
        if (o->max_chunks > 0 && (size_t)o->max_chunks < n_chunks)
            n_chunks = (size_t)o->max_chunks;
        double t0 = qlm_cli_now();
        st = evaluate(s, toks, n_chunks, o->ctx, &done);
        double secs = qlm_cli_now() - t0;
        n_stats = qlm_session_n_stats(s);
        ents = st == 0 ? calloc((size_t)n_stats, sizeof *ents) : NULL;
        vals = st == 0 ? calloc((size_t)n_stats, sizeof *vals) : NULL;
        struct qlm_imat im;
        const char *bad;
        if (st != 0) {
            /* reported */
        } else if (!ents || !vals) {
            st = qlm_cli_fail("out of memory");
        } else if ((bad = to_imat(m, s, (uint64_t)done * (uint64_t)o->ctx, (uint32_t)done,
                                  (uint32_t)o->ctx, &im, ents, vals)) != NULL) {
            st = qlm_cli_fail("%s: the inputs of '%s' are not finite (the model file may be "
                              "damaged)", o->co.model, bad);
        } else if ((st = write_imat(out, &im, o->force)) == 0) {
            fprintf(stderr, "%s: wrote %s: %d weights, %zu tokens in %zu chunks of %d",
                    qlm_cli_prog(), out, n_stats, done * (size_t)o->ctx, done, o->ctx);
            if (done < avail)
                fprintf(stderr, " (of %zu)", avail);
            fprintf(stderr, ", %.1f s (%d threads)\n", secs, qlm_session_threads(s));
        }
    }
    for (int i = 0; vals && i < n_stats; i++)
        free(vals[i]);
    free(vals);
    free(ents);
    free(toks);
    free(text);
    qlm_session_free(s);
    qlm_model_free(m);
    return st;
}

int main(int argc, char **argv)
{
    qlm_cli_init("qlm-imatrix", HELP);
    struct opts o;
    int st = parse_args(argc, argv, &o);
    if (st != QLM_CLI_CONTINUE)
        return st;
    /* cli/'s rule for outputs, checked before the evaluation: a directory,
     * a link to nothing, a FIFO or a device cannot take an .imat (it is
     * written to a temporary file and renamed); an existing file is kept
     * unless --force. */
    struct qlm_cli_target out;
    struct qlm_error err = {0};
    struct stat sb;
    if (qlm_cli_output_target(o.out, &out, &err) != QLM_OK)
        return qlm_cli_fail("%s", err.msg);
    if (out.in_place)
        st = qlm_cli_fail("%s: not a regular file (an .imat is written to a temporary file and "
                          "renamed)", o.out);
    else if (!o.force && lstat(out.path, &sb) == 0)
        st = qlm_cli_fail("%s: already exists; use --force to overwrite", o.out);
    else {
        qlm_cli_catch_sigbus(o.co.model, "the model file");
        st = run(&o, out.path);
    }
    qlm_cli_target_free(&out);
    return st;
}
