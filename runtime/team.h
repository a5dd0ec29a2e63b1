/*
 * team.h — internal: a team of persistent threads that run one function
 * together, as a sequence of phases.
 *
 * team_run(tm, fn, arg, size) runs fn(arg, worker) on every thread of the
 * team, the caller's included (the workers get a copy of arg), and returns
 * when the caller's fn does.
 * Inside fn every thread goes through the same phases in the same order: a
 * phase of n items is
 *
 *     int i;
 *     while (team_claim(w, n, &i))
 *         work(i);
 *     team_phase_end(w, n);
 *
 * Items are claimed from an atomic counter, each by exactly one thread, and
 * team_phase_end returns when all n are *done* — not when every thread has
 * arrived.  So a thread the OS has descheduled holds up the others only while
 * it holds an item: when it runs again it finds the finished phases fully
 * claimed and catches up (or, if the batch is over, does nothing more), and
 * on an overloaded machine the caller's thread can run the whole batch alone
 * at single-thread speed.  A worker that wakes after its batch is over
 * still runs fn to its end, claiming nothing: so fn writes shared data only
 * inside claimed items, and reads outside them only its argument (the
 * worker's own copy) and data that outlives the team.  Every item is done by
 * one thread with the same code whatever the thread count, so results need
 * not depend on it.
 */
#ifndef QLM_TEAM_H
#define QLM_TEAM_H

#include <stdbool.h>
#include <stddef.h>

struct team;
struct team_worker;

/* What every thread of the team runs for one batch. */
typedef void team_fn(const void *arg, struct team_worker *w);

/* The largest argument team_run copies, in bytes. */
#define TEAM_ARG_MAX 64

/* A team of n threads (the caller and n - 1 workers) with n_phase phase
 * slots, the most phases one batch may have; NULL when out of memory.
 * Fewer workers start when the system refuses threads.  Workers block all
 * asynchronous signals (a Ctrl-C reaches the caller), and sleep between
 * batches. */
struct team *team_new(int n, int n_phase);

/* Stops and joins the workers (idle, or still finishing a batch). */
void team_free(struct team *tm);

/* Threads the team has, the caller's included: n of team_new, or fewer. */
int team_size(const struct team *tm);

/* Runs fn on every thread with a copy of arg (size <= TEAM_ARG_MAX bytes);
 * tm NULL or of size 1: on the caller's thread alone, with plain loops. */
void team_run(struct team *tm, team_fn *fn, const void *arg, size_t size);

/* 0 for the caller's thread, 1 .. team_size - 1 for the workers. */
int team_worker_id(const struct team_worker *w);

/* Claims the next item of the current phase of n (>= 1) items into *item;
 * false when none is left for this thread. */
bool team_claim(struct team_worker *w, int n, int *item);

/* Ends the current phase of n items: reports this thread's items done, then
 * waits until all n are. */
void team_phase_end(struct team_worker *w, int n);

#endif
