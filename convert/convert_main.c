/*
 * convert_main.c — qlm-convert: options, progress bar, summary, signals.
 */
#include "config.h"

#include "cli.h"
#include "convert.h"
#include "policy.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char HELP[] =
    "Usage: qlm-convert MODEL_DIR -o OUT.qlm [OPTIONS]\n"
    "Convert a Hugging Face Qwen3 (or Qwen2, Llama) checkpoint into one .qlm file.\n"
    "MODEL_DIR holds config.json, model.safetensors (or model.safetensors.index.json\n"
    "and its shards), tokenizer.json and, optionally, tokenizer_config.json.\n"
    "\n"
    "  -m, --model MODEL_DIR  MODEL_DIR given as an option\n"
    "  -o, --output OUT.qlm   the file to write (required)\n"
    "  -T, --type T           f32, bf16, f16, q8 or q4 (default q8); norms and biases\n"
    "                         stay f32, the embedding and head stay q8 under q4\n"
    "  -g, --group N          quantization group along the input dimension, a\n"
    "                         multiple of 32 (default 32)\n"
    "  -f, --force            overwrite OUT.qlm if it exists\n"
    "  -t, -j, --threads N    quantizing threads (default: the online CPUs)\n"
    "      --allow-nonfinite  replace NaN with 0 and clamp Inf (with a warning)\n"
    "                         instead of refusing the checkpoint\n"
    "      --imatrix F.imat   per-column importance from qlm-imatrix, for the\n"
    "                         quantizer (today's q8 and q4 do not weight by it)\n"
    "  -q, --quiet            no progress bar and no summary\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on errors, 2 on usage errors, 128 + the signal\n"
    "(130 for ^C) when interrupted before OUT.qlm was complete.\n";

/* The bar: "tensor i/n  done/total MB  rate MB/s [####....]  42% 3.1s". */
struct ui {
    struct qlm_cli_progress bar;
    char label[96];
    double t0;
};

static void on_progress(size_t i, size_t n, uint64_t done, uint64_t total, void *ctx)
{
    struct ui *u = ctx;
    if (!u->bar.enabled)
        return;
    double t = qlm_cli_now();
    if (done == 0 && i == 0) {
        u->t0 = t; /* config, tokenizer and plan are done: time the data */
        return;
    }
    double mb = (double)done / 1e6, el = t - u->t0;
    snprintf(u->label, sizeof u->label, "tensor %zu/%zu  %.0f/%.0f MB  %.0f MB/s",
             i < n ? i + 1 : n, n, mb, (double)total / 1e6, el > 0 ? mb / el : 0.0);
    qlm_cli_progress_update(&u->bar, done, total);
}

static void on_warn(const char *msg, void *ctx)
{
    struct ui *u = ctx;
    qlm_cli_progress_end(&u->bar);
    qlm_cli_warn("%s", msg);
}

/* QLM_CLI_CONTINUE, or the status to exit with. */
static int parse_args(int argc, char **argv, struct qlm_convert_opts *o, bool *quiet)
{
    enum { OPT_NONFINITE = 256, OPT_IMATRIX };
    static const struct option opts[] = {
        QLM_CLI_LONG_MODEL,
        {"output", required_argument, NULL, 'o'},
        {"type", required_argument, NULL, 'T'},
        {"group", required_argument, NULL, 'g'},
        {"force", no_argument, NULL, 'f'},
        QLM_CLI_LONG_THREADS,
        {"allow-nonfinite", no_argument, NULL, OPT_NONFINITE},
        {"imatrix", required_argument, NULL, OPT_IMATRIX},
        {"quiet", no_argument, NULL, 'q'},
        QLM_CLI_LONG_STD,
        {NULL, 0, NULL, 0},
    };
    *o = (struct qlm_convert_opts){.type = QLM_Q8, .group = QLM_DEFAULT_GROUP};
    struct qlm_cli_common co = QLM_CLI_COMMON_INIT;
    struct qlm_error err = {0};
    char b[32];
    int ch, v, t;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":m:o:T:g:ft:j:qhV", opts, NULL)) != -1) {
        int st = QLM_CLI_CONTINUE;
        switch (ch) {
        case 'o': o->out_path = optarg; break;
        case 'T':
            if ((t = qlm_dtype_from_name(optarg)) < 0)
                return qlm_cli_usage("--type '%s': not one of f32, bf16, f16, q8, q4",
                                     qlm_cli_shown(optarg, b, sizeof b));
            o->type = (enum qlm_dtype)t;
            break;
        case 'g':
            if (qlm_cli_parse_int("--group", optarg, 32, 4096, &v, &err))
                return qlm_cli_usage("%s", err.msg);
            if (!qlm_policy_group_ok((uint32_t)v))
                return qlm_cli_usage("--group %d: not a multiple of 32", v);
            o->group = (uint32_t)v;
            break;
        case 'f': o->force = true; break;
        case 'j': st = qlm_cli_option('t', optarg, argv, &co); break; /* make's letter */
        case OPT_NONFINITE: o->allow_nonfinite = true; break;
        case OPT_IMATRIX: o->imatrix = optarg; break;
        case 'q': *quiet = true; break;
        default: st = qlm_cli_option(ch, optarg, argv, &co); break;
        }
        if (st != QLM_CLI_CONTINUE)
            return st;
    }
    int st = qlm_cli_take_model(argc, argv, "MODEL_DIR", &co);
    if (st != QLM_CLI_CONTINUE)
        return st;
    if (!o->out_path)
        return qlm_cli_usage("missing -o OUT.qlm (see --help)");
    o->model_dir = co.model;
    o->threads = co.threads;
    qlm_cli_options_done(&co);
    return QLM_CLI_CONTINUE;
}

/* The conversion, its summary, and its signals; o->out_path is the file to
 * write (a regular file or none). */
static int convert(struct qlm_convert_opts *o, bool quiet)
{
    struct ui u;
    qlm_cli_progress_begin(&u.bar, u.label);
    u.bar.enabled &= !quiet;
    snprintf(u.label, sizeof u.label, "reading %s", o->model_dir);
    u.t0 = qlm_cli_now();
    o->progress = on_progress;
    o->warn = on_warn;
    o->ctx = &u;
    /* ^C (or SIGBUS) removes the unfinished output, unless it is complete */
    char tmp[4200];
    qlm_writer_tmp_path(o->out_path, tmp, sizeof tmp);
    qlm_cli_temp_output(tmp, o->out_path);
    qlm_cli_catch_interrupt_output();
    /* the checkpoint's shards are mapped: one cut short while read */
    qlm_cli_catch_sigbus(o->model_dir, "a checkpoint file");

    struct qlm_convert_stats st;
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_convert(o, &st, &err);
    qlm_cli_progress_end(&u.bar);
    if (rc != QLM_OK)
        return qlm_cli_fail("%s", err.msg[0] ? err.msg : qlm_strerror(rc));
    if (qlm_cli_interrupted)
        qlm_cli_warn("interrupted after %s was complete: it is kept", o->out_path);
    if (!quiet) {
        double bpw = st.n_params ? 8.0 * (double)st.bytes_out / (double)st.n_params : 0.0;
        fprintf(stderr,
                "%s: wrote %s: %zu tensors, %llu parameters%s, %.1f MB in, %.1f MB out "
                "(file %.1f MB), %.2f bits/weight, %.1f s\n",
                qlm_cli_prog(), o->out_path, st.n_tensors, (unsigned long long)st.n_params,
                st.tied ? " (head tied to the embedding)" : "", (double)st.bytes_in / 1e6,
                (double)st.bytes_out / 1e6, (double)st.file_size / 1e6, bpw, st.seconds);
    }
    return 0;
}

int main(int argc, char **argv)
{
    qlm_cli_init("qlm-convert", HELP);
    struct qlm_convert_opts o;
    bool quiet = false;
    int st = parse_args(argc, argv, &o, &quiet);
    if (st != QLM_CLI_CONTINUE)
        return st;
    /* cli/'s rule for outputs: through a temporary file and a rename, into
     * the file a link names; a FIFO or a device cannot take a .qlm (the
     * writer seeks, and renames the finished file). */
    struct qlm_cli_target out;
    struct qlm_error err = {0};
    if (qlm_cli_output_target(o.out_path, &out, &err) != QLM_OK)
        return qlm_cli_fail("%s", err.msg);
    if (out.in_place)
        st = qlm_cli_fail("%s: not a regular file (a .qlm is written to a temporary file "
                          "and renamed)", o.out_path);
    else {
        o.out_path = out.path;
        st = convert(&o, quiet);
    }
    qlm_cli_target_free(&out);
    return st;
}
