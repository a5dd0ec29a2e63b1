/*
 * check_team.c — the thread team (runtime/team.c) on its own: long chains
 * of phases whose items each read the whole previous phase, teams of more
 * and fewer threads than cores, many batches on one team, shutdown while
 * idle, asleep or right after a batch, the workers' signal mask, and a
 * system that refuses threads.  Every chain is checked against plain loops
 * and every item against running exactly once.
 */
#include <config.h>

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "team.h"

/* Address space limits and AddressSanitizer's shadow memory do not mix. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEAM_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEAM_TEST_ASAN 1
#endif

enum { MAX_ITEMS = 61, MAX_PHASES = 3000, MAX_THREADS = 16 };

static const int thread_counts[] = { 1, 2, 3, 7, 16 };
#define N_COUNTS (int)(sizeof thread_counts / sizeof thread_counts[0])

/* ---- a chain of phases ---------------------------------------------------- */

/* Items of phase p: 1 .. MAX_ITEMS, different from one phase to the next. */
static int phase_items(int p)
{
    return 1 + (p * 37 + 11) % MAX_ITEMS;
}

static uint32_t mix(uint32_t seed, int p, int i)
{
    uint32_t x = seed ^ ((uint32_t)p * 0x9E3779B1u) ^ ((uint32_t)i * 0x85EBCA77u);
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    return x;
}

/* Item i of phase p from the previous phase's values (any of them: a phase
 * that started before the last one ended would read stale ones). */
static uint32_t item_value(uint32_t seed, int p, int i, const uint32_t *prev)
{
    uint32_t v = mix(seed, p, i);
    if (p > 0) {
        int n = phase_items(p - 1);
        v += prev[i % n] * 3u + prev[(i * 7 + 1) % n] + prev[n - 1 - i % n];
    }
    return v;
}

struct chain {
    uint32_t val[2][MAX_ITEMS];             /* phase p writes val[p & 1] */
    atomic_int hits[MAX_PHASES][MAX_ITEMS]; /* runs of each item */
};

struct chain_job {
    struct chain *c;
    int n_phase;
    uint32_t seed;
};

static void chain_fn(const void *arg, struct team_worker *w)
{
    const struct chain_job *job = arg;
    struct chain *c = job->c;
    for (int p = 0; p < job->n_phase; p++) {
        int n = phase_items(p), i;
        while (team_claim(w, n, &i)) {
            atomic_fetch_add_explicit(&c->hits[p][i], 1, memory_order_relaxed);
            c->val[p & 1][i] = item_value(job->seed, p, i, c->val[(p + 1) & 1]);
        }
        team_phase_end(w, n);
    }
}

/* Runs a chain of n_phase phases on tm (NULL: alone) and checks it against
 * plain loops and every item against running exactly once. */
static void check_chain(struct team *tm, int n_phase, uint32_t seed)
{
    static struct chain c;
    memset(&c, 0, sizeof c);
    struct chain_job job = { &c, n_phase, seed };
    team_run(tm, chain_fn, &job, sizeof job);

    uint32_t ref[2][MAX_ITEMS] = { { 0 } };
    for (int p = 0; p < n_phase; p++)
        for (int i = 0; i < phase_items(p); i++)
            ref[p & 1][i] = item_value(seed, p, i, ref[(p + 1) & 1]);
    int last = (n_phase - 1) & 1;
    for (int i = 0; i < phase_items(n_phase - 1); i++)
        ck_assert_msg(c.val[last][i] == ref[last][i],
                      "%d threads, %d phases: item %d is %08x, not %08x",
                      tm ? team_size(tm) : 1, n_phase, i, c.val[last][i], ref[last][i]);
    for (int p = 0; p < n_phase; p++)
        for (int i = 0; i < MAX_ITEMS; i++) {
            int want = i < phase_items(p) ? 1 : 0, got = atomic_load(&c.hits[p][i]);
            ck_assert_msg(got == want, "phase %d item %d ran %d times", p, i, got);
        }
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(test_alone)
{
    check_chain(NULL, MAX_PHASES, 1);
    struct team *tm = team_new(1, MAX_PHASES);
    ck_assert_ptr_nonnull(tm);
    ck_assert_int_eq(team_size(tm), 1);
    check_chain(tm, MAX_PHASES, 1);
    team_free(tm);
}
END_TEST

/* Thousands of phases in a row, for every thread count. */
START_TEST(test_many_phases)
{
    for (int k = 0; k < N_COUNTS; k++) {
        struct team *tm = team_new(thread_counts[k], MAX_PHASES);
        ck_assert_ptr_nonnull(tm);
        ck_assert_int_eq(team_size(tm), thread_counts[k]);
        check_chain(tm, MAX_PHASES, 7);
        team_free(tm);
    }
}
END_TEST

/* Many batches of different lengths on one team: counters left by the last
 * batch must not leak into the next. */
START_TEST(test_many_batches)
{
    for (int k = 0; k < N_COUNTS; k++) {
        struct team *tm = team_new(thread_counts[k], 64);
        ck_assert_ptr_nonnull(tm);
        for (int b = 0; b < 300; b++)
            check_chain(tm, 1 + (b * 13) % 64, (uint32_t)b);
        team_free(tm);
    }
}
END_TEST

/* Stop a team that never ran, one right after its batch (workers may still
 * be in it), and one whose workers went to sleep. */
START_TEST(test_shutdown)
{
    for (int k = 0; k < N_COUNTS; k++) {
        int n = thread_counts[k];
        for (int r = 0; r < 20; r++) {
            team_free(team_new(n, 8));
            struct team *tm = team_new(n, 8);
            ck_assert_ptr_nonnull(tm);
            check_chain(tm, 8, (uint32_t)r);
            team_free(tm);
        }
        struct team *tm = team_new(n, 8);
        ck_assert_ptr_nonnull(tm);
        check_chain(tm, 8, 3);
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        team_free(tm);
    }
    team_free(NULL);
}
END_TEST

/* One phase of team_size items, each held until every thread holds one: so
 * every worker runs, and records its signal mask. */
struct rendezvous {
    int n;
    atomic_int arrived;
    atomic_int seen[MAX_THREADS];
    atomic_int masked[MAX_THREADS]; /* SIGINT blocked, SIGSEGV not */
    atomic_bool timed_out;
};

static void rendezvous_fn(const void *arg, struct team_worker *w)
{
    struct rendezvous *r = *(struct rendezvous *const *)arg;
    int i;
    while (team_claim(w, r->n, &i)) {
        int id = team_worker_id(w);
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        atomic_fetch_add(&r->seen[id], 1);
        atomic_store(&r->masked[id], sigismember(&cur, SIGINT) && !sigismember(&cur, SIGSEGV));
        atomic_fetch_add(&r->arrived, 1);
        time_t t0 = time(NULL);
        while (atomic_load(&r->arrived) < r->n && !atomic_load(&r->timed_out)) {
            sched_yield();
            if (time(NULL) - t0 > 20)
                atomic_store(&r->timed_out, true);
        }
    }
    team_phase_end(w, r->n);
}

START_TEST(test_every_thread_runs)
{
    for (int k = 1; k < N_COUNTS; k++) {
        struct team *tm = team_new(thread_counts[k], 1);
        ck_assert_ptr_nonnull(tm);
        static struct rendezvous r;
        memset(&r, 0, sizeof r);
        r.n = team_size(tm);
        struct rendezvous *rp = &r;
        team_run(tm, rendezvous_fn, &rp, sizeof rp);
        ck_assert_msg(!atomic_load(&r.timed_out), "%d threads: not all of them ran", r.n);
        for (int id = 0; id < r.n; id++)
            ck_assert_int_eq(atomic_load(&r.seen[id]), 1);
        ck_assert_msg(!atomic_load(&r.masked[0]), "the caller's signal mask changed");
        for (int id = 1; id < r.n; id++)
            ck_assert_msg(atomic_load(&r.masked[id]), "worker %d takes SIGINT or blocks SIGSEGV",
                          id);
        team_free(tm);
    }
}
END_TEST

#if defined(__linux__) && !defined(TEAM_TEST_ASAN)
/* Address space for little more than what the process maps now: no thread
 * stack fits, so pthread_create fails and the caller is the team. */
START_TEST(test_threads_refused)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1u << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    struct team *tm = team_new(MAX_THREADS, MAX_PHASES);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    ck_assert_ptr_nonnull(tm);
    ck_assert_int_eq(team_size(tm), 1);
    check_chain(tm, MAX_PHASES, 5);
    team_free(tm);
}
END_TEST
#endif

static Suite *team_suite(void)
{
    Suite *s = suite_create("team");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_alone);
    tcase_add_test(tc, test_many_phases);
    tcase_add_test(tc, test_many_batches);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_every_thread_runs);
#if defined(__linux__) && !defined(TEAM_TEST_ASAN)
    tcase_add_test(tc, test_threads_refused);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(team_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
