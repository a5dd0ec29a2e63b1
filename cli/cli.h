/*
 * cli.h — the helpers every qlm program shares (qlm-run, qlm-ppl,
 * qlm-bench, qlm-inspect, qlm-convert): the program's name in messages,
 * usage errors, the options they share, strict option parsing, whole-file
 * and --tokens reading, the rule for output files, a progress bar on a
 * terminal, timing, peak RSS and the signal handlers.
 *
 * Not part of libqlm, and blind to the runtime's internals: it includes the
 * format library's header only, so the converter and qlm-inspect link it
 * without libqlm.  Functions that can fail fill struct qlm_error with one
 * line ("--threads: ...", "FILE: ...") that main() prints after "prog: ".
 */
#ifndef QLM_CLI_H
#define QLM_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlm_format.h"

/* ---- the program -------------------------------------------------------- */
/* Exit statuses, the same in every program: errors 1, usage errors 2, ^C 130
 * (128 + SIGINT). */
enum { QLM_CLI_EXIT_ERR = 1, QLM_CLI_EXIT_USAGE = 2, QLM_CLI_EXIT_INTR = 130 };
/* What an option parser returns when the program should go on (any other
 * value is the status to exit with). */
#define QLM_CLI_CONTINUE (-1)

/* Name the program for every message below ("qlm-ppl", never argv[0]'s
 * path) and give the text --help prints. */
void qlm_cli_init(const char *prog, const char *help);
const char *qlm_cli_prog(void);
/* "prog: message" on stderr; returns QLM_CLI_EXIT_ERR. */
int qlm_cli_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* "prog: message" on stderr; returns QLM_CLI_EXIT_USAGE. */
int qlm_cli_usage(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* "prog: warning: message" on stderr. */
void qlm_cli_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Flush stdout; on a write error "prog: writing stdout: ..." and 1, else 0. */
int qlm_cli_flush_stdout(void);

/* ---- the options every program spells alike ----------------------------- */
/* One dialect, with llama.cpp's letters where they do not clash.  A program
 * puts the entries it takes in its getopt_long table (and their letters in
 * its short options, after a leading ':'), runs getopt_long with opterr = 0,
 * and hands every value its own switch does not handle to qlm_cli_option:
 *   -m, --model PATH     the model, instead of the operand
 *   -t, --threads N      1..1024 (a warning when above the online CPUs)
 *       --kv-type T      f16 or f32
 *       --json           figures as one JSON object
 *   -h, --help           the text given to qlm_cli_init
 *   -V, --version        "prog VERSION"
 * and anything else is a usage error: "unknown option X (see --help)",
 * "option X needs an argument (see --help)".  The context, -c, --ctx N
 * (alias --ctx-size), has the same spelling everywhere but bounds of each
 * program's own, so the program parses it. */
enum { QLM_CLI_OPT_JSON = 0x1000, QLM_CLI_OPT_KV_TYPE };
#define QLM_CLI_LONG_MODEL {"model", required_argument, NULL, 'm'}
#define QLM_CLI_LONG_THREADS {"threads", required_argument, NULL, 't'}
#define QLM_CLI_LONG_CTX                                                       \
    {"ctx", required_argument, NULL, 'c'}, {"ctx-size", required_argument, NULL, 'c'}
#define QLM_CLI_LONG_KV_TYPE {"kv-type", required_argument, NULL, QLM_CLI_OPT_KV_TYPE}
#define QLM_CLI_LONG_JSON {"json", no_argument, NULL, QLM_CLI_OPT_JSON}
#define QLM_CLI_LONG_STD {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}

struct qlm_cli_common {
    const char *model;   /* -m, or the operand (qlm_cli_finish) */
    int threads;         /* 0: not given */
    int kv_type;         /* QLM_F16 / QLM_F32; -1: not given */
    bool json;
};
#define QLM_CLI_COMMON_INIT {.model = NULL, .threads = 0, .kv_type = -1, .json = false}
/* c is what getopt_long returned (optarg its argument).  QLM_CLI_CONTINUE
 * when c was one of the above, else the status to exit with (0 after --help
 * and --version). */
int qlm_cli_option(int c, const char *arg, char *const *argv, struct qlm_cli_common *co);
/* After the options: the model is -m or the single operand (what names it
 * in "missing WHAT (see --help)").  QLM_CLI_CONTINUE, or the usage status. */
int qlm_cli_take_model(int argc, char *const *argv, const char *what, struct qlm_cli_common *co);
/* Once the options passed every check: the warnings they deserve (--threads
 * above the online CPUs). */
void qlm_cli_options_done(const struct qlm_cli_common *co);

/* ---- strict parsing ----------------------------------------------------- */
/* At most 24 bytes of s for a message, non-printables as '?', "..." when
 * cut; buf of cap >= 32 bytes. */
const char *qlm_cli_shown(const char *s, char *buf, size_t cap);
/* The whole of s must be the number (no blanks, no trailing garbage, no
 * overflow), within [min, max]; opt names the option in the message, e.g.
 * "--threads 0: must be between 1 and 1024". */
enum qlm_err qlm_cli_parse_long(const char *opt, const char *s, long min, long max, long *out,
                                struct qlm_error *err);
/* Like qlm_cli_parse_long into an int (min/max must fit an int). */
enum qlm_err qlm_cli_parse_int(const char *opt, const char *s, int min, int max, int *out,
                               struct qlm_error *err);
/* Decimal or 0x-hex unsigned 64-bit (a leading '-' is refused). */
enum qlm_err qlm_cli_parse_u64(const char *opt, const char *s, uint64_t *out,
                               struct qlm_error *err);
/* A finite number within [min, max] ("nan", "inf" refused). */
enum qlm_err qlm_cli_parse_double(const char *opt, const char *s, double min, double max,
                                  double *out, struct qlm_error *err);

/* --kv-type: "f32" -> QLM_F32, "f16" -> QLM_F16 into *out. */
enum qlm_err qlm_cli_parse_kv_type(const char *opt, const char *s, int *out,
                                   struct qlm_error *err);

/* ---- input files -------------------------------------------------------- */
/* Whole file into a malloc'ed buffer with a NUL after the last byte (the
 * length excludes it; the text may itself contain NULs).  "-" is stdin.
 * Refuses directories and other non-regular files that cannot be read. */
enum qlm_err qlm_cli_read_file(const char *path, char **buf, size_t *len, struct qlm_error *err);
/* qlm_cli_read_file for a text to tokenize: also refuses bytes that are not
 * UTF-8, naming the file and the byte offset (the tokenizer would name the
 * model instead). */
enum qlm_err qlm_cli_read_text(const char *path, char **buf, size_t *len, struct qlm_error *err);
/* The same check on text from elsewhere (what: how the message names it). */
enum qlm_err qlm_cli_check_utf8(const char *what, const char *text, size_t len,
                                struct qlm_error *err);
/* A --tokens file: token ids separated by whitespace (decimal, >= 0).  Each
 * must be < n_vocab; the message names the position (1-based) of the first
 * bad one: "ids.txt: token 3 (70000) is out of range [0, 1000)".  An empty
 * file is an error.  *ids is malloc'ed. */
enum qlm_err qlm_cli_read_tokens(const char *path, int n_vocab, int32_t **ids, size_t *n_ids,
                                 struct qlm_error *err);

/* ---- output files ------------------------------------------------------- */
/* One rule for every file a program writes (qlm-run --logits-out,
 * qlm-convert -o):
 *   - a regular file, or nothing, at PATH: the output goes to the writer's
 *     temporary "<PATH>.tmp.<pid>" (qlm_writer_tmp_path) and is renamed
 *     onto PATH when complete, so PATH is whole before and after;
 *   - a symbolic link: the rule applies to the file it names, and the link
 *     stays a link (a link to nothing is refused);
 *   - a FIFO or a character device (/dev/null, a terminal): written in
 *     place, since a rename would replace the node with a regular file;
 *   - a directory, a socket or a block device: refused.
 * qlm_cli_output_target classifies PATH: target->path is where to write
 * (malloc'ed: PATH, or the file a link names), in_place for the FIFO and
 * device case.  Errors name PATH. */
struct qlm_cli_target {
    char *path;
    bool in_place;
};
enum qlm_err qlm_cli_output_target(const char *path, struct qlm_cli_target *t,
                                   struct qlm_error *err);
void qlm_cli_target_free(struct qlm_cli_target *t);
/* A file written by that rule: open (the temporary file is registered with
 * qlm_cli_temp_output, for the SIGBUS handler), write, then commit (fsync,
 * rename; frees) or abort (removes the temporary file; frees).  A failing
 * write or commit aborts itself. */
struct qlm_cli_out;
enum qlm_err qlm_cli_out_open(struct qlm_cli_out **o, const char *path, struct qlm_error *err);
enum qlm_err qlm_cli_out_write(struct qlm_cli_out *o, const void *buf, size_t n,
                               struct qlm_error *err);
enum qlm_err qlm_cli_out_commit(struct qlm_cli_out *o, struct qlm_error *err);
void qlm_cli_out_abort(struct qlm_cli_out *o);

/* ---- progress, time, memory -------------------------------------------- */
/* A one-line bar on stderr, "LABEL [####......]  42% 3.1s", redrawn at
 * most every 1% and only when stderr is a terminal (otherwise every call is
 * a no-op; a caller may also clear enabled after begin, for --quiet).  The
 * label is read at each redraw, so a caller may rewrite its buffer. */
struct qlm_cli_progress {
    bool enabled;
    const char *label;
    int last_permille;
    double t0;
};
void qlm_cli_progress_begin(struct qlm_cli_progress *p, const char *label);
void qlm_cli_progress_update(struct qlm_cli_progress *p, uint64_t done, uint64_t total);
/* Clears the line; a later update draws the bar again. */
void qlm_cli_progress_end(struct qlm_cli_progress *p);
/* Callback shape of qlm_file_verify's progress; ctx is a qlm_cli_progress. */
void qlm_cli_progress_cb(uint64_t done, uint64_t total, void *ctx);

double qlm_cli_now(void);          /* monotonic seconds */
uint64_t qlm_cli_peak_rss(void);   /* peak resident set in bytes; 0 if unknown */

/* ---- signals ------------------------------------------------------------ */
/* SIGBUS: models and checkpoints are mapped read-only and MAP_SHARED, so if
 * a file is truncated or rewritten while in use, touching a vanished page
 * raises SIGBUS instead of returning an error.  The handler writes one line,
 * "prog: PATH: WHAT changed or was truncated while in use (SIGBUS)" (what:
 * "the model file", "a checkpoint file"), followed, while a temporary output
 * is registered (qlm_cli_temp_output), by "; OUT not written (removed TMP)"
 * as it removes it, and _exit(1)s.  The strings are copied. */
void qlm_cli_catch_sigbus(const char *path, const char *what);
/* SIGINT sets qlm_cli_interrupted (once); a second ^C kills as usual. */
extern volatile sig_atomic_t qlm_cli_interrupted;
void qlm_cli_catch_sigint(void);
/* The temporary file tmp a program writes its output into before renaming
 * it to out (NULL: none any more).  Paths are copied; out's identity (or
 * absence) is noted now, so that a handler can tell later whether tmp has
 * become out. */
void qlm_cli_temp_output(const char *tmp, const char *out);
/* For a program whose work is that output (qlm-convert): SIGINT, SIGTERM
 * and SIGHUP remove the temporary file, print one line ("prog: interrupted:
 * OUT not written (removed TMP)") and end the program by the signal (status
 * 128 + sig: 130 for ^C).  Once tmp has been renamed to out the output is
 * complete: the signal then only sets qlm_cli_interrupted, and the program
 * finishes and reports success. */
void qlm_cli_catch_interrupt_output(void);

#endif
