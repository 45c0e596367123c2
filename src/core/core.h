/* core.h — what every part of wick shares internally: errors, allocation with
 * failure injection, small helpers.  Not installed. */
#ifndef WICK_CORE_H
#define WICK_CORE_H

#include "wick.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Records a one-line message for wick_last_error() and returns s, so that a
 * failure reads:  return wick_fail(WICK_EFORMAT, "%s: bad magic", path); */
wick_status wick_fail(wick_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Allocation goes through these so that tests can inject failure at the Nth
 * call (wick_alloc_fail_at).  wick_malloc never returns memory for n == 0
 * unless asked: it returns a unique small block. */
void *wick_malloc(size_t n);
void *wick_calloc(size_t count, size_t size);
void *wick_realloc(void *p, size_t n);
void *wick_aligned_alloc(size_t n);     /* 64-byte aligned, free with wick_free */
void *wick_huge_alloc(size_t n);        /* 2 MiB aligned, huge pages advised; wick_free */
void  wick_free(void *p);

/* sigma''' of an activation (wick.h's wick_act_deriv2 stops at sigma''); 0
 * for the piecewise-linear ones and the perceptron.  act.c. */
double wick_act_deriv3(wick_act a, double z);

/* Test hook: the n-th allocation from now fails (n >= 1); 0 disables.
 * Returns how many allocations have been made since the last call. */
long  wick_alloc_fail_at(long n);
long  wick_alloc_count(void);

/* Checked size arithmetic: 0 on overflow, else 1 and *out set. */
static inline int wick_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int wick_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- threads (threads.c) ---- */

/* The default count (OMP_NUM_THREADS, else the online cores); the count set
 * for OpenMP, n <= 0 meaning the default (wick_set_threads, in backend/libs.c,
 * also passes it to the BLAS). */
int wick_default_threads(void);
int wick_core_set_threads(int n);

/* A barrier for the threads of one parallel region that spins a bounded time
 * (WICK_SPIN_US, default 50 us) and then sleeps on a futex, so that a thread
 * waiting for a descheduled one gives its core back (threads.c says why).
 * Zero-initialised or wick_barrier_init'ed; every thread of the region passes
 * the same n (the team's size) to every wait. */
typedef struct {
    _Atomic unsigned arrived, gen, sleepers;
} wick_barrier;
void wick_barrier_init(wick_barrier *b);
void wick_barrier_wait(wick_barrier *b, int n);

/* Runs fn(arg, t, n) on n threads, t = 0 the caller and 1..n-1 wick's own
 * persistent workers, and returns when all have returned; returns n (fewer
 * while workers are still busy with a detached run: n is what fn sees).  The
 * workers wait between runs as the barrier does (a bounded spin, then a
 * futex), unlike OpenMP's, which spin for milliseconds.  While one run is in
 * progress, another (from another thread, or nested) runs fn on its caller
 * alone and returns 1.  fn must not start OpenMP parallel regions: on a
 * worker, which is not an OpenMP thread, one would start a new team. */
typedef void (*wick_pool_fn)(void *arg, int t, int n);
int wick_pool_run(int n, wick_pool_fn fn, void *arg);
/* As wick_pool_run, but returns as soon as fn has returned on the caller,
 * without waiting for the workers: for work that thread 0 can finish alone
 * (chain.c's redo), where waiting for a descheduled worker would cost its
 * whole time off the CPU.  A worker still busy with an earlier detached run
 * is left out (it keeps its t, the worker's number, 1..n-1, so per-thread
 * scratch indexed by t is never shared); returns how many threads were given
 * the job.  fn and arg must stay valid until wick_pool_drain. */
int wick_pool_run_detached(int n, wick_pool_fn fn, void *arg);
/* Waits until every worker has finished its job (before freeing what a
 * detached run's fn may still read). */
void wick_pool_drain(void);
/* Sleeps while *w == v, at most timeout_ns (a futex wait, counted in
 * *sleepers); wick_change_wake moves *w on and wakes the sleepers.  The spin
 * bound (WICK_SPIN_US) and a monotonic clock in ns, for waits built on them. */
void wick_wait_change(_Atomic unsigned *w, unsigned v, _Atomic unsigned *sleepers, long timeout_ns);
void wick_change_wake(_Atomic unsigned *w, _Atomic unsigned *sleepers);
long wick_spin_ns(void);
long wick_now_ns(void);

/* How many of a run's T threads to use, chosen by measuring.  On a machine
 * where another process holds a core, a team of T waits at every barrier for
 * the thread the OS descheduled, and fewer threads can be faster (threads.c
 * says how it chooses).  The runs must compute the same whatever the team
 * size: the caller cuts its work for T and lets any team take it.  Zero it
 * and set max; WICK_TEAM_TUNE=0 in the environment keeps every run at max,
 * WICK_TEAM_SIZE=n at n. */
typedef struct {
    int max;        /* T: the largest team */
    int cur;        /* the size in use (0: not started) */
    int trial, trial_left, trial_seen;   /* a size under trial, its runs to go */
    double trial_sum;
    double ema, best;   /* time per unit of work at cur: running mean, its best since chosen */
    long until;         /* runs of cur before the next trial (-1: only on a slow-down) */
    long period;        /* the spacing of trials while cur < max */
    int down;           /* the next trial goes down (else up) */
    /* the CPU the process's threads got over windows of runs at max (its
       CPU time / (team x wall time)): a trial of fewer threads only after a
       window in which they lost some (a neighbour took a core) */
    int due;            /* a trial down waits for the window's end */
    int win_on;         /* a window has started */
    long win_runs;      /* runs in it so far */
    long wall0, cpu0;   /* ns at the window's start */
    double share;       /* the last complete window's (0: none yet) */
    void (*clocks)(long *wall_ns, long *cpu_ns);   /* NULL: the monotonic clock and the
                                                       process's CPU time (tests simulate) */
    /* below max: the CPUs left idle over windows of runs, so that the trial
       of more threads comes as soon as a neighbour has left */
    int idle_on;
    long idle_runs, idle0, total0;   /* runs in the window; the jiffies at its start */
    int (*idle)(long *idle, long *total);   /* the machine's idle and total CPU time in
                                               jiffies, summed over its CPUs: 0 if known;
                                               NULL: /proc/stat (tests simulate) */
} wick_team_tuner;
/* The team size for the next run, and the run's time per unit of work. */
int wick_team_size(wick_team_tuner *tt);
void wick_team_record(wick_team_tuner *tt, int n, double seconds_per_unit);

/* ---- floating-point mode (fpmode.c; the policy is in wick.h) ---- */

/* Sets flush-to-zero and denormals-are-zero on the calling thread and returns
 * its mode as it was, for wick_fp_leave on the way out of the call. */
unsigned wick_fp_enter(void);
void wick_fp_leave(unsigned saved);
/* Sets them on the calling thread for good: for OpenMP's worker threads. */
void wick_fp_flush_here(void);

#define WICK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
