/*
 * convert_main.c — qlm-convert: options, progress bar, summary, signals.
 */
#include "config.h"

#include "convert.h"
#include "policy.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "qlm-convert"

static const char HELP[] =
    "Usage: qlm-convert MODEL_DIR -o OUT.qlm [OPTIONS]\n"
    "Convert a Hugging Face Qwen3 (or Qwen2, Llama) checkpoint into one .qlm file.\n"
    "MODEL_DIR holds config.json, model.safetensors (or model.safetensors.index.json\n"
    "and its shards), tokenizer.json and tokenizer_config.json.\n"
    "\n"
    "  -o, --output OUT.qlm   the file to write (required)\n"
    "  -t, --type T           f32, bf16, f16, q8 or q4 (default q8); norms and biases\n"
    "                         stay f32, the embedding and head stay q8 under q4\n"
    "  -g, --group N          quantization group along the input dimension, a\n"
    "                         multiple of 32 (default 32)\n"
    "  -f, --force            overwrite OUT.qlm if it exists\n"
    "  -j, --threads N        quantizing threads (default: the online CPUs)\n"
    "      --allow-nonfinite  replace NaN with 0 and clamp Inf (with a warning)\n"
    "                         instead of refusing the checkpoint\n"
    "      --imatrix F.imat   per-column importance from qlm-imatrix, for the\n"
    "                         quantizer (today's q8 and q4 do not weight by it)\n"
    "  -q, --quiet            no progress bar and no summary\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n";

static char tmp_path[4200];

static void on_signal(int sig)
{
    /* Leave nothing behind: the writer's temporary file is all there is. */
    if (tmp_path[0])
        unlink(tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

struct ui {
    bool bar;
    double t0, last;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_progress(size_t i, size_t n, uint64_t done, uint64_t total, void *ctx)
{
    struct ui *u = ctx;
    if (!u->bar)
        return;
    double t = now();
    if (done == 0 && i == 0) {
        u->t0 = t; /* config, tokenizer and plan are done: time the data */
        return;
    }
    if (t - u->last < 0.1 && i < n)
        return;
    u->last = t;
    double frac = total ? (double)done / (double)total : 1.0;
    int width = 30, fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int k = 0; k < width; k++)
        bar[k] = k < fill ? '#' : '.';
    bar[width] = '\0';
    double mb = (double)done / 1e6, el = t - u->t0;
    fprintf(stderr, "\r[%s] tensor %zu/%zu  %.0f/%.0f MB  %.0f MB/s ", bar, i < n ? i + 1 : n,
            n, mb, (double)total / 1e6, el > 0 ? mb / el : 0.0);
    if (i >= n)
        fputc('\n', stderr);
}

static void on_warn(const char *msg, void *ctx)
{
    struct ui *u = ctx;
    if (u->bar)
        fputc('\n', stderr);
    fprintf(stderr, PROG ": warning: %s\n", msg);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *v)
{
    char *end;
    if (!s[0] || s[0] == '-' || s[0] == '+')
        return false;
    errno = 0;
    unsigned long x = strtoul(s, &end, 10);
    if (errno || *end || x > max)
        return false;
    *v = x;
    return true;
}

int main(int argc, char **argv)
{
    enum { OPT_NONFINITE = 256, OPT_IMATRIX };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"type", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},  {"force", no_argument, NULL, 'f'},
        {"threads", required_argument, NULL, 'j'},
        {"allow-nonfinite", no_argument, NULL, OPT_NONFINITE},
        {"imatrix", required_argument, NULL, OPT_IMATRIX},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    struct qlm_convert_opts o = {.type = QLM_Q8, .group = QLM_DEFAULT_GROUP};
    bool quiet = false;
    unsigned long v;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:t:g:fj:qhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': o.out_path = optarg; break;
        case 't': {
            int t = qlm_dtype_from_name(optarg);
            if (t < 0) {
                fprintf(stderr, PROG ": --type '%s' is not one of f32, bf16, f16, q8, q4\n",
                        optarg);
                return 2;
            }
            o.type = (enum qlm_dtype)t;
            break;
        }
        case 'g':
            if (!parse_uint(optarg, 4096, &v) || !qlm_policy_group_ok((uint32_t)v)) {
                fprintf(stderr, PROG ": --group '%s' must be a multiple of 32 from 32 to 4096\n",
                        optarg);
                return 2;
            }
            o.group = (uint32_t)v;
            break;
        case 'f': o.force = true; break;
        case 'j':
            if (!parse_uint(optarg, 1024, &v) || v == 0) {
                fprintf(stderr, PROG ": --threads '%s' must be an integer from 1 to 1024\n",
                        optarg);
                return 2;
            }
            o.threads = (int)v;
            break;
        case OPT_NONFINITE: o.allow_nonfinite = true; break;
        case OPT_IMATRIX: o.imatrix = optarg; break;
        case 'q': quiet = true; break;
        case 'h': fputs(HELP, stdout); return 0;
        case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
        case ':':
            fprintf(stderr, PROG ": option '%s' needs an argument (try '" PROG " --help')\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, PROG ": unknown option '%s' (try '" PROG " --help')\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, PROG ": missing MODEL_DIR (try '" PROG " --help')\n");
        return 2;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (try '" PROG " --help')\n",
                argv[optind + 1]);
        return 2;
    }
    o.model_dir = argv[optind];
    if (!o.out_path) {
        fprintf(stderr, PROG ": missing -o OUT.qlm (try '" PROG " --help')\n");
        return 2;
    }

    struct ui u = {.bar = !quiet && isatty(2), .t0 = now()};
    o.progress = on_progress;
    o.warn = on_warn;
    o.ctx = &u;
    qlm_convert_tmp_path(o.out_path, tmp_path, sizeof tmp_path);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    struct qlm_convert_stats st;
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_convert(&o, &st, &err);
    if (rc != QLM_OK) {
        if (u.bar)
            fputc('\n', stderr);
        fprintf(stderr, PROG ": %s\n", err.msg[0] ? err.msg : qlm_strerror(rc));
        return 1;
    }
    if (!quiet) {
        double bpw = st.n_params ? 8.0 * (double)st.bytes_out / (double)st.n_params : 0.0;
        fprintf(stderr,
                PROG ": wrote %s: %zu tensors, %llu parameters%s, %.1f MB in, %.1f MB out "
                "(file %.1f MB), %.2f bits/weight, %.1f s\n",
                o.out_path, st.n_tensors, (unsigned long long)st.n_params,
                st.tied ? " (head tied to the embedding)" : "", (double)st.bytes_in / 1e6,
                (double)st.bytes_out / 1e6, (double)st.file_size / 1e6, bpw, st.seconds);
    }
    return 0;
}
