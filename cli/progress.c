/* progress.c — the progress bar, the clock and peak RSS; see cli.h. */
#include "config.h"

#include "cli.h"

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double qlm_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void qlm_cli_progress_begin(struct qlm_cli_progress *p, const char *label)
{
    p->enabled = isatty(STDERR_FILENO) == 1;
    p->label = label;
    p->last_permille = -1;
    p->t0 = qlm_cli_now();
}

void qlm_cli_progress_update(struct qlm_cli_progress *p, uint64_t done, uint64_t total)
{
    if (!p->enabled || total == 0)
        return;
    if (done > total)
        done = total;
    int pm = (int)((double)done * 1000.0 / (double)total);
    if (p->last_permille >= 0 && pm / 10 == p->last_permille / 10 && done != total)
        return;
    p->last_permille = pm;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int fill = pm * WIDTH / 1000;
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%% %.1fs\033[K", p->label, bar, pm / 10,
            qlm_cli_now() - p->t0);
    fflush(stderr);
}

void qlm_cli_progress_end(struct qlm_cli_progress *p)
{
    if (p->enabled && p->last_permille >= 0) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->last_permille = -1;
}

void qlm_cli_progress_cb(uint64_t done, uint64_t total, void *ctx)
{
    qlm_cli_progress_update(ctx, done, total);
}

uint64_t qlm_cli_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0)
        return 0;
#if defined(__APPLE__)
    return (uint64_t)ru.ru_maxrss;          /* bytes on macOS */
#else
    return (uint64_t)ru.ru_maxrss * 1024u;  /* KiB on Linux and the BSDs */
#endif
}
