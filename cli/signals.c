/* signals.c — the SIGBUS and SIGINT handlers; see cli.h. */
#include "config.h"

#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char sigbus_msg[1024];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
    (void)sig;
    /* Only async-signal-safe calls here: write(2) and _exit(2). */
    ssize_t r = write(STDERR_FILENO, sigbus_msg, sigbus_len);
    (void)r;
    _exit(1);
}

void qlm_cli_catch_sigbus(const char *path)
{
    int n = snprintf(sigbus_msg, sizeof sigbus_msg,
                     "%s: %s: the model file changed or was truncated while in use (SIGBUS)\n",
                     qlm_cli_prog(), path);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof sigbus_msg) {
        n = (int)sizeof sigbus_msg - 1;
        sigbus_msg[n - 1] = '\n';
    }
    sigbus_len = (size_t)n;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

volatile sig_atomic_t qlm_cli_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    qlm_cli_interrupted = 1;
}

void qlm_cli_catch_sigint(void)
{
    qlm_cli_interrupted = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* One-shot: a second ^C before we re-arm kills the program as usual.
     * No SA_RESTART: a blocking read of stdin returns EINTR. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
}
