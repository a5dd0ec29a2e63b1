/* signals.c — the SIGBUS, SIGINT and output-interrupt handlers; see cli.h.
 *
 * Handlers call only async-signal-safe functions (write, unlink, lstat,
 * sigaction, raise, _exit), on messages and paths prepared beforehand. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PATH_CAP = 4200 };

static void say(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t r = write(STDERR_FILENO, s, n);
        if (r <= 0 && errno != EINTR)
            return;
        if (r > 0) {
            s += r;
            n -= (size_t)r;
        }
    }
}

/* Install handler h for sig (SIG_DFL to restore); mask: block the
 * interrupt signals while h runs. */
static void handle(int sig, void (*h)(int), bool mask, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    if (mask) {
        sigaddset(&sa.sa_mask, SIGINT);
        sigaddset(&sa.sa_mask, SIGTERM);
        sigaddset(&sa.sa_mask, SIGHUP);
    }
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

/* a b c as one line ending in '\n' into buf (cap bytes), cut to fit. */
static size_t line(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
    int n = snprintf(buf, cap, "%s%s%s\n", a, b, c);
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap) {
        n = (int)cap - 1;
        buf[n - 1] = '\n';
    }
    return (size_t)n;
}

/* ---- the temporary output --------------------------------------------------- */

static char tmp_path[PATH_CAP], out_path[PATH_CAP];
static volatile sig_atomic_t tmp_set;
static bool out_existed;
static dev_t out_dev;
static ino_t out_ino;
/* "prog: interrupted: OUT not written\n", the part from OUT on at intr_skip;
 * " (removed TMP)\n" */
static char intr_msg[2 * PATH_CAP], intr_removed[PATH_CAP];
static size_t intr_len, intr_skip, intr_removed_len;

void qlm_cli_temp_output(const char *tmp, const char *out)
{
    tmp_set = 0;
    if (!tmp)
        return;
    snprintf(tmp_path, sizeof tmp_path, "%s", tmp);
    snprintf(out_path, sizeof out_path, "%s", out);
    struct stat st;
    out_existed = lstat(out, &st) == 0;
    out_dev = out_existed ? st.st_dev : 0;
    out_ino = out_existed ? st.st_ino : 0;
    char what[PATH_CAP + 32];
    snprintf(what, sizeof what, "interrupted: %s not written", out);
    intr_len = line(intr_msg, sizeof intr_msg, qlm_cli_prog(), ": ", what);
    intr_skip = strlen(qlm_cli_prog()) + strlen(": interrupted: ");
    if (intr_skip >= intr_len)
        intr_skip = 0;
    intr_removed_len = line(intr_removed, sizeof intr_removed, " (removed ", tmp, ")");
    tmp_set = 1;
}

/* The temporary file has become the output: out is now a different file
 * from the one (if any) that was there when it was registered. */
static bool output_published(void)
{
    struct stat st;
    if (lstat(out_path, &st) != 0)
        return false;
    return !out_existed || st.st_dev != out_dev || st.st_ino != out_ino;
}

/* Remove the unfinished output; true if there was one to remove. */
static bool remove_temp(void)
{
    return tmp_set && unlink(tmp_path) == 0;
}

static void on_interrupt(int sig)
{
    int saved = errno;
    /* Checked before and after the unlink: the rename may land in between,
     * and then the output is complete and stays. */
    bool removed = !output_published() && remove_temp();
    if (!removed && tmp_set && output_published()) {
        qlm_cli_interrupted = 1;
        errno = saved;
        return;
    }
    if (intr_len) {
        say(intr_msg, intr_len - (removed ? 1 : 0));
        if (removed)
            say(intr_removed, intr_removed_len);
    }
    handle(sig, SIG_DFL, false, 0);
    raise(sig); /* delivered when this handler returns: 128 + sig */
    errno = saved;
}

void qlm_cli_catch_interrupt_output(void)
{
    qlm_cli_interrupted = 0;
    handle(SIGINT, on_interrupt, true, 0);
    handle(SIGTERM, on_interrupt, true, 0);
    handle(SIGHUP, on_interrupt, true, 0);
}

/* ---- SIGBUS ----------------------------------------------------------------- */

static char sigbus_msg[PATH_CAP + 128];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
    (void)sig;
    /* the unfinished output goes too ("...; OUT not written (removed TMP)") */
    bool out = tmp_set && !output_published(), removed = out && remove_temp();
    say(sigbus_msg, sigbus_len - (out ? 1 : 0));
    if (out) {
        say("; ", 2);
        say(intr_msg + intr_skip, intr_len - intr_skip - (removed ? 1 : 0));
        if (removed)
            say(intr_removed, intr_removed_len);
    }
    _exit(1);
}

void qlm_cli_catch_sigbus(const char *path, const char *what)
{
    char head[PATH_CAP + 64];
    snprintf(head, sizeof head, "%s: %s: %s", qlm_cli_prog(), path, what);
    sigbus_len = line(sigbus_msg, sizeof sigbus_msg, head,
                      " changed or was truncated while in use (SIGBUS)", "");
    handle(SIGBUS, on_sigbus, true, 0);
}

/* ---- SIGINT ------------------------------------------------------------------ */

volatile sig_atomic_t qlm_cli_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    qlm_cli_interrupted = 1;
}

void qlm_cli_catch_sigint(void)
{
    qlm_cli_interrupted = 0;
    /* One-shot: a second ^C before we re-arm kills the program as usual.
     * No SA_RESTART: a blocking read of stdin returns EINTR. */
    handle(SIGINT, on_sigint, false, SA_RESETHAND);
}
