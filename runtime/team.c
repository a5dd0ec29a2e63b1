/*
 * team.c — the thread team of team.h: persistent workers, asleep between
 * batches, that share out the items of each phase through atomic counters.
 *
 * A batch is published seqlock-style (gen odd while its function and
 * argument are written) and numbered by gen; each phase slot counts claimed
 * and done items tagged with the generation, so counters left by an earlier
 * batch read as zero without being reset, and a thread of a finished batch
 * sees a newer generation and stops.  Waiting threads spin briefly, then
 * yield, then sleep on a futex, giving their core back to the thread they
 * wait for.
 */
#include <config.h>

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "team.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Sleep while *word == val (or not at all); wake everyone sleeping on word. */
static void word_sleep(_Atomic uint32_t *word, uint32_t val)
{
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)word;
    (void)val;
    struct timespec ts = { 0, 50000 };
    nanosleep(&ts, NULL);
#endif
}

static void word_wake(_Atomic uint32_t *word)
{
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

/* Claimed and completed items of one phase: (generation << 32) | count, so
 * counters left by an earlier batch read as zero without being reset. */
struct phase {
    _Atomic uint64_t claimed;
    _Atomic uint64_t done;
    char pad[64 - 2 * sizeof(uint64_t)];
};

/* team_run's argument as the workers copy it, word by word. */
#define ARG_WORDS (TEAM_ARG_MAX / sizeof(uint64_t))
union team_arg {
    uint64_t word[ARG_WORDS];
    max_align_t align;
};

struct team {
    int n;                     /* threads, the caller's included */
    int n_phase;               /* phase slots */
    struct phase *ph;
    pthread_t *tid;            /* n - 1 workers */
    /* the batch, published seqlock-style: gen odd while being written */
    _Alignas(64) _Atomic uint32_t gen;
    _Atomic int idle_sleepers;
    _Atomic(team_fn *) job_fn;
    _Atomic uint64_t job_arg[ARG_WORDS];
    atomic_bool quit;
    _Alignas(64) _Atomic uint32_t event; /* bumped when a phase completes */
    _Atomic int phase_sleepers;
};

/* One thread's view of the batch it works on. */
struct team_worker {
    struct team *tm;           /* NULL: alone, no atomics */
    int id;
    uint32_t gen;
    int phase;                 /* index of the current phase */
    int claimed;               /* items this thread claimed in it */
    int next;                  /* alone: the next item */
    bool stale;                /* the batch moved on: do nothing more */
};

/* Spin (a few microseconds), then yield, then sleep on *word until ready. */
enum { SPIN_ROUNDS = 2000, YIELD_ROUNDS = 20 };

static bool phase_ready(struct team_worker *w, uint64_t want)
{
    struct team *tm = w->tm;
    if (atomic_load_explicit(&tm->ph[w->phase].done, memory_order_acquire) == want)
        return true;
    if (atomic_load_explicit(&tm->gen, memory_order_relaxed) != w->gen) {
        w->stale = true;
        return true;
    }
    return false;
}

static void phase_wait(struct team_worker *w, uint64_t want)
{
    struct team *tm = w->tm;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (phase_ready(w, want))
            return;
        cpu_relax();
    }
    for (int i = 0; i < YIELD_ROUNDS; i++) {
        if (phase_ready(w, want))
            return;
        sched_yield();
    }
    for (;;) {
        uint32_t ev = atomic_load(&tm->event);
        atomic_fetch_add(&tm->phase_sleepers, 1);
        if (phase_ready(w, want)) {
            atomic_fetch_sub(&tm->phase_sleepers, 1);
            return;
        }
        word_sleep(&tm->event, ev);
        atomic_fetch_sub(&tm->phase_sleepers, 1);
    }
}

int team_worker_id(const struct team_worker *w)
{
    return w->id;
}

bool team_claim(struct team_worker *w, int n, int *item)
{
    if (w->tm == NULL) {
        if (w->next >= n)
            return false;
        *item = w->next++;
        return true;
    }
    if (w->stale)
        return false;
    struct phase *ph = &w->tm->ph[w->phase];
    uint64_t v = atomic_load_explicit(&ph->claimed, memory_order_relaxed), nv;
    uint32_t c;
    bool fresh;
    do {
        uint32_t g = (uint32_t)(v >> 32);
        fresh = g != w->gen;
        if (!fresh) {
            c = (uint32_t)v;
            if (c >= (uint32_t)n)
                return false;
            nv = v + 1;
        } else if ((int32_t)(g - w->gen) > 0) {
            w->stale = true;
            return false;
        } else {
            c = 0;
            nv = (uint64_t)w->gen << 32 | 1;
        }
    } while (!atomic_compare_exchange_weak_explicit(&ph->claimed, &v, nv, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (fresh && atomic_load(&w->tm->gen) != w->gen) {
        w->stale = true; /* first claim of a phase, by a thread of a finished batch */
        return false;
    }
    w->claimed++;
    *item = (int)c;
    return true;
}

void team_phase_end(struct team_worker *w, int n)
{
    struct team *tm = w->tm;
    if (tm == NULL) {
        w->next = 0;
        return;
    }
    if (!w->stale) {
        uint64_t want = (uint64_t)w->gen << 32 | (uint32_t)n;
        struct phase *ph = &tm->ph[w->phase];
        bool ready = false;
        if (w->claimed > 0) {
            uint64_t v = atomic_load_explicit(&ph->done, memory_order_relaxed), nv;
            do
                nv = (uint32_t)(v >> 32) == w->gen ? v + (uint64_t)w->claimed
                                                    : ((uint64_t)w->gen << 32 | (uint32_t)w->claimed);
            while (!atomic_compare_exchange_weak_explicit(&ph->done, &v, nv, memory_order_acq_rel,
                                                          memory_order_relaxed));
            if (nv == want) {
                ready = true;
                atomic_fetch_add(&tm->event, 1);
                if (atomic_load(&tm->phase_sleepers) > 0)
                    word_wake(&tm->event);
            }
        }
        if (!ready)
            phase_wait(w, want);
    }
    w->claimed = 0;
    w->phase++;
    if (tm != NULL && w->phase >= tm->n_phase)
        w->stale = true; /* cannot happen: n_phase bounds a batch's phases */
}

static bool job_posted(struct team *tm, uint32_t last)
{
    uint32_t g = atomic_load_explicit(&tm->gen, memory_order_acquire);
    return g != last && (g & 1) == 0;
}

static void *worker_main(void *arg)
{
    struct team_worker w = *(struct team_worker *)arg;
    free(arg);
    struct team *tm = w.tm;
    uint32_t last = 0;
    for (;;) {
        /* wait for the next batch */
        int i = 0;
        while (!job_posted(tm, last)) {
            if (i < SPIN_ROUNDS) {
                cpu_relax();
            } else if (i < SPIN_ROUNDS + YIELD_ROUNDS) {
                sched_yield();
            } else {
                uint32_t g = atomic_load(&tm->gen);
                atomic_fetch_add(&tm->idle_sleepers, 1);
                if (!job_posted(tm, last))
                    word_sleep(&tm->gen, g);
                atomic_fetch_sub(&tm->idle_sleepers, 1);
            }
            i++;
        }
        /* read the batch; retry if it was rewritten meanwhile */
        uint32_t g = atomic_load_explicit(&tm->gen, memory_order_acquire);
        if (atomic_load_explicit(&tm->quit, memory_order_relaxed))
            return NULL;
        team_fn *fn = atomic_load_explicit(&tm->job_fn, memory_order_relaxed);
        union team_arg a;
        for (size_t k = 0; k < ARG_WORDS; k++)
            a.word[k] = atomic_load_explicit(&tm->job_arg[k], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&tm->gen, memory_order_relaxed) != g || (g & 1) != 0)
            continue;
        last = g;
        w.gen = g;
        w.phase = 0;
        w.claimed = 0;
        w.stale = false;
        fn(&a, &w);
    }
}

/* Publish a batch (fn with argument a, or the quit order) to the workers;
 * returns its generation. */
static uint32_t team_post(struct team *tm, team_fn *fn, const union team_arg *a, bool quit)
{
    uint32_t g = atomic_load_explicit(&tm->gen, memory_order_relaxed);
    atomic_store_explicit(&tm->gen, g + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&tm->job_fn, fn, memory_order_relaxed);
    for (size_t i = 0; i < ARG_WORDS; i++)
        atomic_store_explicit(&tm->job_arg[i], a != NULL ? a->word[i] : 0, memory_order_relaxed);
    atomic_store_explicit(&tm->quit, quit, memory_order_relaxed);
    atomic_store(&tm->gen, g + 2);
    if (atomic_load(&tm->idle_sleepers) > 0)
        word_wake(&tm->gen);
    return g + 2;
}

void team_free(struct team *tm)
{
    if (tm == NULL)
        return;
    team_post(tm, NULL, NULL, true);
    for (int i = 0; i < tm->n - 1; i++)
        pthread_join(tm->tid[i], NULL);
    free(tm->tid);
    free(tm->ph);
    free(tm);
}

struct team *team_new(int n, int n_phase)
{
    struct team *tm = calloc(1, sizeof *tm);
    if (tm == NULL)
        return NULL;
    tm->n_phase = n_phase;
    tm->ph = aligned_alloc(64, (size_t)n_phase * sizeof *tm->ph);
    tm->tid = calloc((size_t)n, sizeof *tm->tid);
    if (tm->ph == NULL || tm->tid == NULL) {
        free(tm->ph);
        free(tm->tid);
        free(tm);
        return NULL;
    }
    for (int i = 0; i < n_phase; i++) {
        atomic_init(&tm->ph[i].claimed, 0);
        atomic_init(&tm->ph[i].done, 0);
    }
    atomic_init(&tm->gen, 0);
    atomic_init(&tm->event, 0);
    atomic_init(&tm->idle_sleepers, 0);
    atomic_init(&tm->phase_sleepers, 0);
    atomic_init(&tm->quit, false);
    /* workers take no asynchronous signals: a Ctrl-C must reach the caller */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    tm->n = 1;
    for (int i = 1; i < n; i++) {
        struct team_worker *w = calloc(1, sizeof *w);
        if (w == NULL)
            break;
        w->tm = tm;
        w->id = i;
        if (pthread_create(&tm->tid[i - 1], NULL, worker_main, w) != 0) {
            free(w);
            break;
        }
        tm->n++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return tm;
}

int team_size(const struct team *tm)
{
    return tm->n;
}

void team_run(struct team *tm, team_fn *fn, const void *arg, size_t size)
{
    struct team_worker w = { 0 };
    if (tm != NULL && tm->n > 1) {
        union team_arg a = { { 0 } };
        assert(size <= sizeof a.word);
        memcpy(&a, arg, size);
        w.tm = tm;
        w.gen = team_post(tm, fn, &a, false);
    }
    fn(arg, &w);
}
