/* threads.c — the thread count (--threads, else OMP_NUM_THREADS, else the
 * core count) and the barrier of wick's own parallel regions.
 *
 * Why wick's own barrier: libgomp's waits spin for GOMP_SPINCOUNT pause
 * instructions (300,000 by default, which libgomp takes for 3 ms and which
 * is 15 ms on a Zen 3, where a pause takes 50 ns) before they sleep.  On a
 * machine where another process holds a core, the OS often deschedules one
 * of wick's threads; the other then spins at the barrier for the whole of
 * that time, and its core, which the OS could have given to the descheduled
 * thread, does nothing.  This barrier spins for a bounded time (WICK_SPIN_US,
 * default below) and then sleeps on a futex, so that the core goes idle and
 * the scheduler moves the waiting-to-run thread onto it.  The OpenBLAS and
 * oneDNN hooks of the thread count live with the backend (backend/libs.c):
 * core includes no third-party header. */
#include "core.h"
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#else
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

static int threads_set;

int wick_default_threads(void) {
    const char *e = getenv("OMP_NUM_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int wick_core_set_threads(int n) {
    threads_set = n > 0 ? n : wick_default_threads();
    omp_set_num_threads(threads_set);
    return threads_set;
}

int wick_threads(void) {
    if (!threads_set) wick_core_set_threads(0);
    return threads_set;
}

const char *wick_version(void) { return WICK_VERSION; }

/* ---- the barrier ---------------------------------------------------------- */

/* How long a thread spins at a barrier before it sleeps.  The chain step's
 * barriers on a quiet machine wait a few microseconds to a few tens; a futex
 * sleep and wake-up costs about as much again, so the spin covers those
 * waits, and a longer wait (the other thread descheduled for a time slice,
 * milliseconds) costs at most this much of a core (bench/README.md, "a busy
 * neighbour"). */
#define SPIN_US_DEFAULT 50

static long spin_ns(void) {
    static _Atomic long ns = -1;
    long v = atomic_load_explicit(&ns, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("WICK_SPIN_US");
        long us = e && *e ? strtol(e, NULL, 10) : SPIN_US_DEFAULT;
        v = us < 0 ? 0 : us > 1000000 ? 1000000000L : us * 1000;
        atomic_store_explicit(&ns, v, memory_order_relaxed);
    }
    return v;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void futex_wait(_Atomic unsigned *w, unsigned v) {
#ifdef __linux__
    syscall(SYS_futex, (unsigned *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
#else
    (void)w, (void)v;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic unsigned *w) {
#ifdef __linux__
    syscall(SYS_futex, (unsigned *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)w;
#endif
}

/* Waits until *w is no longer v: spins up to spin_ns(), then sleeps, counted
 * in *sleepers.  A sleeper is counted before it reads *w, and a waker reads
 * the count after it changes *w (both sequentially consistent): a wake-up
 * cannot be missed. */
static void wait_change(_Atomic unsigned *w, unsigned v, _Atomic unsigned *sleepers) {
    const long limit = spin_ns();
    if (limit > 0) {
        const long t0 = now_ns();
        for (;;) {
            for (int i = 0; i < 16; i++) {
                if (atomic_load_explicit(w, memory_order_acquire) != v) return;
                cpu_relax();
            }
            if (now_ns() - t0 >= limit) break;
        }
    }
    atomic_fetch_add(sleepers, 1);
    while (atomic_load(w) == v) futex_wait(w, v);
    atomic_fetch_sub(sleepers, 1);
}

/* Moves *w on and wakes whoever sleeps on it. */
static void change_wake(_Atomic unsigned *w, _Atomic unsigned *sleepers) {
    atomic_fetch_add(w, 1);
    if (atomic_load(sleepers)) futex_wake_all(w);
}

void wick_barrier_init(wick_barrier *b) {
    atomic_store(&b->arrived, 0);
    atomic_store(&b->gen, 0);
    atomic_store(&b->sleepers, 0);
}

void wick_barrier_wait(wick_barrier *b, int n) {
    if (n <= 1) return;
    /* the generation is read before arriving: the last thread's increment
       cannot come before this read */
    const unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == (unsigned)n) {
        /* nobody arrives at the next use before seeing the new generation,
           whose store orders this reset before it */
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        change_wake(&b->gen, &b->sleepers);
        return;
    }
    wait_change(&b->gen, g, &b->sleepers);
}

/* ---- the pool ---------------------------------------------------------------
 *
 * Persistent worker threads for wick_pool_run, created when first needed.
 * The caller is thread 0.  Each worker has its own mailbox: the caller writes
 * a job there only while the worker is idle (not busy), then moves the
 * worker's `go` on; the worker runs the job, marks itself idle and, for a
 * joined run, counts itself out of `left` (the last moves `fin` on).  A
 * detached run (wick_pool_run_detached) is not waited for: a worker still
 * busy with one when the next run starts is left out of that run.  Between
 * runs the workers wait on `go` (a bounded spin, then a futex), so an idle
 * pool costs nothing. */
#define POOL_MAX 256

typedef struct {
    _Atomic unsigned go, go_sleepers;
    _Atomic int busy;       /* given a job it has not finished: the mailbox is its */
    wick_pool_fn fn;        /* the mailbox */
    void *arg;
    int t, n, joined;
} __attribute__((aligned(64))) pool_slot;

static struct {
    pthread_mutex_t lock;   /* one run at a time (others run alone) */
    int workers;            /* started so far, slots 1..workers */
    pool_slot slot[POOL_MAX];
    _Atomic int left;       /* workers of this joined run still working */
    _Atomic unsigned fin, fin_sleepers;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *pool_worker(void *p) {
    pool_slot *s = &pool.slot[(intptr_t)p];
    wick_fp_flush_here();   /* wick's own thread: always wick's mode (wick.h) */
    unsigned seen = 0;
    for (;;) {
        wait_change(&s->go, seen, &s->go_sleepers);
        seen = atomic_load(&s->go);
        const int joined = s->joined;
        s->fn(s->arg, s->t, s->n);
        /* the mailbox is the caller's again from here */
        atomic_store_explicit(&s->busy, 0, memory_order_release);
        if (joined && atomic_fetch_sub_explicit(&pool.left, 1, memory_order_acq_rel) == 1)
            change_wake(&pool.fin, &pool.fin_sleepers);
    }
    return NULL;
}

/* Starts workers up to n - 1 (fewer if the system refuses). */
static void pool_grow(int n) {
    while (pool.workers < n - 1) {
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int bad = pthread_create(&th, &a, pool_worker, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&a);
        if (bad) break;
        pool.workers++;
    }
}

static void pool_give(int k, wick_pool_fn fn, void *arg, int t, int n, int joined) {
    pool_slot *s = &pool.slot[k];
    s->fn = fn, s->arg = arg, s->t = t, s->n = n, s->joined = joined;
    atomic_store_explicit(&s->busy, 1, memory_order_relaxed);
    change_wake(&s->go, &s->go_sleepers);   /* publishes the job (seq_cst) */
}

int wick_pool_run(int n, wick_pool_fn fn, void *arg) {
    if (n > POOL_MAX) n = POOL_MAX;
    /* a run already in progress (another thread's, or this one's: a nested
       call) leaves this one to the caller alone */
    if (n <= 1 || pthread_mutex_trylock(&pool.lock) != 0) {
        fn(arg, 0, 1);
        return 1;
    }
    pool_grow(n);
    /* the idle workers, numbered 1.. in the order found (a worker still busy
       with a detached run stays out of this one) */
    int idle[POOL_MAX], m = 0;
    for (int k = 1; k <= pool.workers && m < n - 1; k++)
        if (!atomic_load_explicit(&pool.slot[k].busy, memory_order_acquire)) idle[m++] = k;
    n = m + 1;
    if (n > 1) {
        atomic_store(&pool.left, n - 1);
        const unsigned f = atomic_load(&pool.fin);
        for (int j = 0; j < m; j++) pool_give(idle[j], fn, arg, j + 1, n, 1);
        fn(arg, 0, n);
        wait_change(&pool.fin, f, &pool.fin_sleepers);
    } else {
        fn(arg, 0, 1);
    }
    pthread_mutex_unlock(&pool.lock);
    return n;
}

int wick_pool_run_detached(int n, wick_pool_fn fn, void *arg) {
    if (n > POOL_MAX) n = POOL_MAX;
    if (n <= 1 || pthread_mutex_trylock(&pool.lock) != 0) {
        fn(arg, 0, 1);
        return 1;
    }
    pool_grow(n);
    int given = 1;
    for (int k = 1; k < n && k <= pool.workers; k++)
        if (!atomic_load_explicit(&pool.slot[k].busy, memory_order_acquire)) {
            pool_give(k, fn, arg, k, n, 0);
            given++;
        }
    fn(arg, 0, n);
    pthread_mutex_unlock(&pool.lock);
    return given;
}

void wick_pool_drain(void) {
    pthread_mutex_lock(&pool.lock);
    for (int k = 1; k <= pool.workers; k++)
        while (atomic_load_explicit(&pool.slot[k].busy, memory_order_acquire)) {
            struct timespec d = {0, 20000};
            nanosleep(&d, NULL);
        }
    pthread_mutex_unlock(&pool.lock);
}

void wick_wait_change(_Atomic unsigned *w, unsigned v, _Atomic unsigned *sleepers, long timeout_ns) {
    atomic_fetch_add(sleepers, 1);
    if (atomic_load(w) == v) {
#ifdef __linux__
        struct timespec d = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
        syscall(SYS_futex, (unsigned *)w, FUTEX_WAIT_PRIVATE, v, &d, NULL, 0);
#else
        sched_yield();
#endif
    }
    atomic_fetch_sub(sleepers, 1);
}

void wick_change_wake(_Atomic unsigned *w, _Atomic unsigned *sleepers) { change_wake(w, sleepers); }

long wick_spin_ns(void) { return spin_ns(); }
long wick_now_ns(void) { return now_ns(); }

/* ---- the team size ----------------------------------------------------------
 *
 * A 1-D search over the team size by timing runs.  A trial runs TRIAL runs at
 * a neighbouring size (the first a warm-up, not counted) and moves there when
 * they were faster than the current size's running mean by MARGIN; a run
 * slower than it by LOSING ends the trial at once (beside a neighbour a
 * trial of the wrong size costs a whole step).  At the largest team it
 * tries a smaller one once, after FIRST runs, and then only
 * when its runs slow down by SLOWER (a neighbour arrived), and either only
 * if its threads got less than LOST of their cores' time in the last WINDOW
 * runs (on a quiet machine, none: bench/README.md, "The headline's loop");
 * below it, it tries
 * a larger one every `period` runs, the period doubling each time the trial
 * loses (the neighbour may have left), and at once when a CPU was mostly
 * idle through the last IDLE_WINDOW runs (it has).  On a quiet machine it
 * costs one clock read a window and no trial. */
#define TRIAL 3
#define FIRST 8
#define PERIOD_MIN 32
#define PERIOD_MAX 512
#define MARGIN 0.03
#define SLOWER 1.15
#define LOSING 1.25   /* a counted trial run this much slower ends the trial */
#define WINDOW 8      /* runs at the largest team per measure of the CPU it got */
#define LOST 0.9      /* below this share of team x wall time, a core was taken */
#define IDLE_WINDOW 16   /* runs below the largest team per look at the idle CPUs */
#define IDLE_FREE 0.75   /* this much of a CPU idle over a window: try one thread more */

/* WICK_TEAM_TUNE=0 keeps every run at the largest team; WICK_TEAM_SIZE=n
 * fixes the team at n (for A/B runs and the tests).  Read at every run: a
 * getenv is nothing beside a step. */
static int team_fixed(int max) {
    const char *e = getenv("WICK_TEAM_SIZE");
    if (e && atoi(e) > 0) return atoi(e) < max ? atoi(e) : max;
    e = getenv("WICK_TEAM_TUNE");
    return e && *e == '0' ? max : 0;
}

static void real_clocks(long *wall_ns, long *cpu_ns) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    *cpu_ns = t.tv_sec * 1000000000L + t.tv_nsec;
    *wall_ns = now_ns();
}

/* Counts a run at the largest team into the window; at the window's end,
 * the share of CPU time its threads got, and 1.  (One clock read of each
 * kind a window: the process's CPU time is a system call.) */
static int team_window(wick_team_tuner *tt) {
    if (tt->win_on && ++tt->win_runs < WINDOW) return 0;
    long w, c;
    (tt->clocks ? tt->clocks : real_clocks)(&w, &c);
    int ended = 0;
    if (tt->win_on) {
        tt->share = w > tt->wall0 ? (double)(c - tt->cpu0) / ((double)(w - tt->wall0) * tt->max) : 0;
        ended = 1;
    }
    tt->win_on = 1, tt->win_runs = 0, tt->wall0 = w, tt->cpu0 = c;
    return ended;
}

/* The machine's idle (idle + iowait) and total CPU time, summed over its
 * CPUs, from /proc/stat's first line; 0 when read. */
static int proc_idle(long *idle, long *total) {
#ifdef __linux__
    char buf[256];
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 4 || strncmp(buf, "cpu ", 4)) return -1;
    buf[n] = 0;
    long v[8] = {0};
    char *p = buf + 4;
    for (int i = 0; i < 8; i++) v[i] = strtol(p, &p, 10);
    *idle = v[3] + v[4];
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    return 0;
#else
    (void)idle, (void)total;
    return -1;
#endif
}

/* Below the largest team: counts a run into the window and, at its end,
 * says whether a CPU was mostly idle through it (the neighbour that made
 * fewer threads faster has left).  One read of /proc/stat a window. */
static int team_idle(wick_team_tuner *tt) {
    if (tt->idle_on && ++tt->idle_runs < IDLE_WINDOW) return 0;
    long idle, total;
    if ((tt->idle ? tt->idle : proc_idle)(&idle, &total)) return tt->idle_on = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int free = tt->idle_on && total > tt->total0 && ncpu > 0 &&
               (double)(idle - tt->idle0) >= IDLE_FREE * (double)(total - tt->total0) / ncpu;
    tt->idle_on = 1, tt->idle_runs = 0, tt->idle0 = idle, tt->total0 = total;
    return free;
}

static void team_start_trial(wick_team_tuner *tt) {
    int down = tt->cur > 1 && (tt->down || tt->cur == tt->max);
    int up = tt->cur < tt->max;
    if (!down && !up) { tt->until = -1; return; }
    tt->trial = down ? tt->cur - 1 : tt->cur + 1;
    tt->down = !down;   /* alternate where both ways are open */
    tt->trial_left = TRIAL, tt->trial_seen = 0, tt->trial_sum = 0;
}

int wick_team_size(wick_team_tuner *tt) {
    if (tt->max <= 1) return 1;
    const int fixed = team_fixed(tt->max);
    if (fixed) return fixed;
    if (!tt->cur) tt->cur = tt->max, tt->until = FIRST, tt->period = PERIOD_MIN;
    return tt->trial_left > 0 ? tt->trial : tt->cur;
}

void wick_team_record(wick_team_tuner *tt, int n, double t) {
    if (tt->max <= 1 || !tt->cur || !(t > 0)) return;
    if (tt->trial_left > 0 && n == tt->trial) {
        tt->win_on = tt->idle_on = 0;   /* the next windows start after the trial */
        if (tt->trial_left-- < TRIAL) {
            tt->trial_sum += t, tt->trial_seen++;
            if (t > LOSING * tt->ema) tt->trial_left = 0;   /* clearly losing */
        }
        if (tt->trial_left) return;
        const double m = tt->trial_sum / tt->trial_seen;
        if (m < tt->ema * (1 - MARGIN)) {   /* move */
            tt->cur = tt->trial, tt->ema = tt->best = m;
            tt->period = PERIOD_MIN;
        } else if (tt->period < PERIOD_MAX) {
            tt->period *= 2;
        }
        tt->until = tt->cur == tt->max ? -1 : tt->period;
        return;
    }
    if (n != tt->cur) return;
    tt->ema = tt->ema > 0 ? 0.875 * tt->ema + 0.125 * t : t;
    if (!(tt->best > 0) || tt->ema < tt->best) tt->best = tt->ema;
    if (tt->cur == tt->max && tt->until < 0 && !tt->due && tt->ema > SLOWER * tt->best) {
        tt->until = 0, tt->best = tt->ema;   /* slowed down: try fewer, from this level */
        tt->period = PERIOD_MIN;
    }
    if (tt->cur < tt->max) {
        tt->win_on = 0;   /* a window counts runs at the largest team only */
        /* the cores it left went idle: the trial of one more thread now,
           not after the period (up to PERIOD_MAX runs at a fraction of the
           machine once trials have lost) */
        if (team_idle(tt) && tt->until > 0) tt->until = 0, tt->down = 0;
        if (tt->until >= 0 && tt->until-- == 0) team_start_trial(tt);
        return;
    }
    tt->idle_on = 0;
    /* At the largest team a trial of fewer threads waits for the end of a
     * window of runs, and is made only if the threads lost CPU time in it:
     * when every thread had its core, fewer cannot be faster, and the trial
     * would cost its runs at half speed for nothing (on a quiet machine the
     * first trial, and one after each slow step that a hiccup made). */
    if (tt->until >= 0 && tt->until-- == 0) tt->due = 1, tt->until = -1;
    if (team_window(tt) && tt->due) {
        tt->due = 0;
        if (tt->share < LOST) team_start_trial(tt);
        else tt->best = tt->ema;   /* this level is the machine's, not a neighbour's */
    }
}
