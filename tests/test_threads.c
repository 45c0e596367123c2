/* test_threads.c — wick's own thread pool and barrier (core/threads.c): every
 * thread of a run runs once, barriers order phases, a nested or concurrent
 * run falls back to its caller alone, team sizes may change between runs,
 * workers compute in wick's floating-point mode, an idle pool sleeps
 * rather than spins, and the team-size search finds the faster size. */
#include "check.h"
#include "core/core.h"
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MAXT 8

typedef struct {
    _Atomic int ran[MAXT];
    _Atomic int bad;
    int n_seen[MAXT];
} counts;

static void count_fn(void *arg, int t, int n) {
    counts *c = arg;
    if (t < 0 || t >= MAXT || t >= n) { atomic_fetch_add(&c->bad, 1); return; }
    atomic_fetch_add(&c->ran[t], 1);
    c->n_seen[t] = n;
}

/* Team sizes change from run to run (a worker left out of one run must not
 * run the next one twice). */
static void test_pool_runs_every_thread_once(void) {
    static const int sizes[] = {1, 2, 3, 4, 2, 4, 3, 1};
    for (int rep = 0; rep < 300; rep++) {
        int n = sizes[rep % 8];
        counts c;
        memset(&c, 0, sizeof c);
        int got = wick_pool_run(n, count_fn, &c);
        if (got != n) { FAIL("run %d: pool ran %d threads, asked %d", rep, got, n); return; }
        for (int t = 0; t < MAXT; t++) {
            int want = t < n;
            if (atomic_load(&c.ran[t]) != want || (want && c.n_seen[t] != n)) {
                FAIL("run %d (n = %d): thread %d ran %d times", rep, n, t, atomic_load(&c.ran[t]));
                return;
            }
        }
        CHECK(atomic_load(&c.bad) == 0);
    }
}

typedef struct {
    wick_barrier bar;
    int phase[MAXT];
    _Atomic int bad;
} phases;

static void phase_fn(void *arg, int t, int n) {
    phases *p = arg;
    for (int k = 0; k < 400; k++) {
        p->phase[t] = k;
        wick_barrier_wait(&p->bar, n);
        for (int u = 0; u < n; u++)
            if (__atomic_load_n(&p->phase[u], __ATOMIC_RELAXED) != k) atomic_fetch_add(&p->bad, 1);
        wick_barrier_wait(&p->bar, n);
    }
}

/* More threads than cores (3 on the 2-core CI) exercise the futex path. */
static void test_barrier_orders_phases(void) {
    for (int n = 2; n <= 3; n++) {
        phases p;
        memset(&p, 0, sizeof p);
        wick_barrier_init(&p.bar);
        CHECK(wick_pool_run(n, phase_fn, &p) == n);
        CHECK(atomic_load(&p.bad) == 0);
    }
}

static void inner_fn(void *arg, int t, int n) { *(int *)arg = n; }

static void nested_fn(void *arg, int t, int n) {
    if (t == 0) *(int *)arg = wick_pool_run(2, inner_fn, (int *)arg + 1);
}

static void test_nested_run_falls_back_to_caller(void) {
    int r[2] = {0, 0};
    CHECK(wick_pool_run(2, nested_fn, r) == 2);
    CHECK(r[0] == 1);   /* the inner run: its caller alone */
    CHECK(r[1] == 1);
}

static void *other_caller(void *arg) {
    for (int i = 0; i < 200; i++) {
        counts *c = arg;
        int got = wick_pool_run(2, count_fn, c);
        if (got != 1 && got != 2) atomic_fetch_add(&c->bad, 1);
    }
    return NULL;
}

/* Two threads of the caller's use the pool at once: each run completes,
 * either on the pool or on its caller alone. */
static void test_concurrent_callers(void) {
    counts a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, other_caller, &b) == 0);
    other_caller(&a);
    pthread_join(th, NULL);
    CHECK(atomic_load(&a.bad) == 0 && atomic_load(&b.bad) == 0);
    CHECK(atomic_load(&a.ran[0]) == 200 && atomic_load(&b.ran[0]) == 200);
}

#if defined(__x86_64__)
static void mode_fn(void *arg, int t, int n) {
    if (t > 0 && (_mm_getcsr() & 0x8040) != 0x8040) atomic_fetch_add((_Atomic int *)arg, 1);
}
#endif

static void test_workers_flush_denormals(void) {
#if defined(__x86_64__)
    _Atomic int bad = 0;
    CHECK(wick_pool_run(3, mode_fn, &bad) == 3);
    CHECK(atomic_load(&bad) == 0);
#else
    SKIP("not x86-64");
#endif
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}

static void noop_fn(void *arg, int t, int n) {}

/* Between runs the workers sleep: 10 pauses of 20 ms cost the process almost
 * no CPU time (libgomp's default spin would burn 10-15 ms of each). */
static void test_idle_pool_sleeps(void) {
    wick_pool_run(3, noop_fn, NULL);
    double c0 = cpu_seconds();
    for (int i = 0; i < 10; i++) {
        wick_pool_run(3, noop_fn, NULL);
        usleep(20000);
    }
    double used = cpu_seconds() - c0;
    if (used > 0.03) FAIL("the idle pool used %.1f ms of CPU in 200 ms", used * 1e3);
}


static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { _Atomic int ran[MAXT]; int sleep_ms; } slow;

static void slow_fn(void *arg, int t, int n) {
    slow *s = arg;
    if (t > 0 && s->sleep_ms) usleep(s->sleep_ms * 1000);
    atomic_fetch_add(&s->ran[t], 1);
}

/* A detached run returns when thread 0 is done, not waiting for a worker
 * that sleeps 200 ms; the next run leaves that worker out (its caller
 * alone, as a 2-thread run has no other worker); wick_pool_drain waits for
 * it; then runs use it again. */
static void test_detached_run_does_not_wait(void) {
    static slow a, b;
    a.sleep_ms = 200;
    double t0 = wall();
    int given = wick_pool_run_detached(2, slow_fn, &a);
    double took = wall() - t0;
    CHECK(given == 2);
    if (took > 0.1) FAIL("the detached run took %.0f ms (its worker sleeps 200)", took * 1e3);
    CHECK(wick_pool_run_detached(2, slow_fn, &b) == 1);   /* the worker is busy */
    CHECK(atomic_load(&b.ran[0]) == 1 && atomic_load(&b.ran[1]) == 0);
    wick_pool_drain();
    CHECK(atomic_load(&a.ran[1]) == 1);
    counts c;
    memset(&c, 0, sizeof c);
    CHECK(wick_pool_run(2, count_fn, &c) == 2);
    CHECK(atomic_load(&c.ran[1]) == 1);
}

/* The team-size search (core.h wick_team_tuner) against a simulated machine:
 * time per run at team size n as cost(n, run).  Returns the runs at each size.
 * Its clocks say that the threads never got their cores (the search by time
 * alone; test_team_size_no_trial_when_no_core_was_lost simulates the CPU
 * time too): the process's real CPU time would make these tests depend on
 * what else the test process runs. */
typedef double (*cost_fn)(int n, long run);
static void no_cpu(long *wall_ns, long *cpu_ns) {
    static long w;
    *wall_ns = ++w, *cpu_ns = 0;
}
/* ... and that no CPU is ever idle (the machine's /proc/stat would) */
static int never_idle(long *idle, long *total) {
    static long t;
    *idle = 0, *total = t += 100;
    return 0;
}
static void simulate(cost_fn cost, long runs, long at[3]) {
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 2;
    tt.clocks = no_cpu;
    tt.idle = never_idle;
    at[0] = at[1] = at[2] = 0;
    for (long r = 0; r < runs; r++) {
        int n = wick_team_size(&tt);
        if (n < 1 || n > 2) { FAIL("team size %d of at most 2", n); return; }
        at[n]++;
        wick_team_record(&tt, n, cost(n, r));
    }
}
/* a quiet machine: two threads take 0.55 of one's time, with 5% noise */
static double noise(long r) { return 1.0 + 0.05 * ((r * 2654435761u) % 1000) / 1000.0; }
static double quiet(int n, long r) { return (n == 2 ? 0.55 : 1.0) * noise(r); }
/* a neighbour on one core: two threads are 13% slower than one */
static double busy(int n, long r) { return (n == 2 ? 1.13 : 1.0) * noise(r); }
/* the neighbour arrives at run 2000 and leaves at 6000 */
static double comes_and_goes(int n, long r) { return r >= 2000 && r < 6000 ? busy(n, r) : quiet(n, r); }

static void test_team_size_stays_on_a_quiet_machine(void) {
    long at[3];
    simulate(quiet, 20000, at);
    /* one trial (3 runs) at one thread, in the whole run */
    CHECK(at[1] <= 3);
    CHECK(at[2] >= 20000 - 3);
}

static void test_team_size_drops_beside_a_busy_neighbour(void) {
    long at[3];
    simulate(busy, 20000, at);
    /* after the first trial, trials of two threads every 512 runs at most */
    CHECK(at[2] < 32 + 3 + 20000 / 512 * 3 + 100);
    CHECK(at[1] > 19500);
}

static void test_team_size_follows_a_neighbour(void) {
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 2;
    tt.clocks = no_cpu;
    tt.idle = never_idle;
    long one_by = -1, two_by = -1;
    for (long r = 0; r < 9000; r++) {
        int n = wick_team_size(&tt);
        if (r >= 2000 && r < 6000 && n == 1 && one_by < 0) one_by = r;
        if (r >= 6000 && n == 2 && two_by < 0) {
            /* back for good? (not just a trial) */
            int back = 1;
            wick_team_tuner probe = tt;
            for (int k = 0; k < 10; k++) {
                int m = wick_team_size(&probe);
                wick_team_record(&probe, m, comes_and_goes(m, r + k));
                if (m != 2) back = 0;
            }
            if (back) two_by = r;
        }
        wick_team_record(&tt, n, comes_and_goes(n, r));
    }
    /* the neighbour noticed within a hundred runs, its leaving within the
       longest trial period (512 runs) and a few trials */
    if (!(one_by >= 2000 && one_by < 2100) || !(two_by >= 6000 && two_by < 7100))
        FAIL("one thread from run %ld, two again from %ld", one_by, two_by);
}

/* The first trial comes early (a neighbour costs every step until then),
 * and a trial that clearly loses ends after its warm-up and one run. */
static void test_team_size_trials_early_and_short(void) {
    long at[3];
    simulate(quiet, 2000, at);
    CHECK(at[1] == 2);
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 2;
    tt.clocks = no_cpu;
    tt.idle = never_idle;
    long first_one = -1;
    for (long r = 0; r < 100 && first_one < 0; r++) {
        int n = wick_team_size(&tt);
        if (n == 1) first_one = r;
        wick_team_record(&tt, n, busy(n, r));
    }
    if (first_one < 0 || first_one > 10) FAIL("the first trial of one thread at run %ld", first_one);
}

/* A simulated machine's clocks for the tuner's CPU-share windows: each run
 * adds its time to the wall clock and, per thread of the team, that time
 * times the share of its core the thread got. */
static long sim_wall, sim_cpu;
static void sim_clocks(long *wall_ns, long *cpu_ns) { *wall_ns = sim_wall, *cpu_ns = sim_cpu; }
static void sim_run(int n, double t, double share) {
    sim_wall += (long)(t * 1e6);
    sim_cpu += (long)(t * 1e6 * n * share);
}
/* the runs at each size on a machine that gives the team's threads `share`
   of their cores (share(n, r)), with times cost(n, r) */
typedef double (*share_fn)(int n, long r);
static void simulate_shares(cost_fn cost, share_fn share, long runs, long at[3]) {
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 2;
    tt.clocks = sim_clocks;
    tt.idle = never_idle;
    sim_wall = sim_cpu = 0;
    at[0] = at[1] = at[2] = 0;
    for (long r = 0; r < runs; r++) {
        int n = wick_team_size(&tt);
        if (n < 1 || n > 2) { FAIL("team size %d of at most 2", n); return; }
        at[n]++;
        sim_run(n, cost(n, r), share(n, r));
        wick_team_record(&tt, n, cost(n, r));
    }
}
/* quiet: every thread has its core, but for a run in 50 that a hiccup (a
   thread preempted for a whole run) makes 2x slower */
static double whole(int n, long r) { return r % 50 == 7 ? 0.75 : 0.99; }
static double hiccups(int n, long r) { return quiet(n, r) * (r % 50 == 7 ? 2.0 : 1.0); }
/* a neighbour on one core: a 2-thread team gets 3/4 of its cores */
static double shared(int n, long r) { return n == 2 ? 0.75 : 1.0; }
static double comes_and_goes_share(int n, long r) { return r >= 2000 && r < 6000 ? shared(n, r) : whole(n, r); }

/* With every thread on its core the whole time, the tuner makes no trial of
 * fewer threads, not even the first, nor after hiccups; beside a neighbour
 * it drops as soon as without the CPU-share check, and follows one that
 * comes and goes. */
static void test_team_size_no_trial_when_no_core_was_lost(void) {
    long at[3];
    simulate_shares(quiet, whole, 20000, at);
    CHECK(at[1] == 0);
    simulate_shares(hiccups, whole, 20000, at);
    CHECK(at[1] == 0);
    simulate_shares(busy, shared, 20000, at);
    CHECK(at[2] < 32 + 3 + 20000 / 512 * 3 + 100);
    CHECK(at[1] > 19500);
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 2;
    tt.clocks = sim_clocks;
    tt.idle = never_idle;
    sim_wall = sim_cpu = 0;
    long first_one = -1, one_by = -1, two_at = 0;
    for (long r = 0; r < 9000; r++) {
        int n = wick_team_size(&tt);
        if (n == 1 && first_one < 0) first_one = r;
        if (r >= 2000 && r < 6000 && n == 1 && one_by < 0) one_by = r;
        if (r >= 7500 && n == 2) two_at++;
        sim_run(n, comes_and_goes(n, r), comes_and_goes_share(n, r));
        wick_team_record(&tt, n, comes_and_goes(n, r));
    }
    if (first_one != one_by || one_by < 2000 || one_by >= 2100 || two_at < 1400)
        FAIL("first one thread at run %ld, beside the neighbour from %ld; %ld of the last 1500 runs on two",
             first_one, one_by, two_at);
}

/* A 2-CPU machine's idle time: the CPU that the team leaves free is idle
 * unless the neighbour (runs 2000-6000 of comes_and_goes) holds it. */
static long sim_idle, sim_total;
static int sim_idle_cpus(long *idle, long *total) {
    *idle = sim_idle, *total = sim_total;
    return 0;
}
static long back_after_neighbour(int with_idle) {
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 2;
    tt.clocks = no_cpu;
    tt.idle = with_idle ? sim_idle_cpus : never_idle;
    sim_idle = sim_total = 0;
    long two_by = -1;
    for (long r = 0; r < 9000; r++) {
        int n = wick_team_size(&tt);
        if (r >= 6000 && n == 2 && two_by < 0) {
            int back = 1;   /* for good, not a trial: as test_team_size_follows_a_neighbour */
            wick_team_tuner probe = tt;
            long si = sim_idle, st = sim_total;
            for (int k = 0; k < 10; k++) {
                int m = wick_team_size(&probe);
                wick_team_record(&probe, m, comes_and_goes(m, r + k));
                if (m != 2) back = 0;
            }
            sim_idle = si, sim_total = st;
            if (back) two_by = r;
        }
        const double t = comes_and_goes(n, r);
        sim_total += (long)(2 * 100 * t);   /* jiffies: 100 a unit of time a CPU */
        if (n == 1 && !(r >= 2000 && r < 6000)) sim_idle += (long)(100 * t);
        wick_team_record(&tt, n, t);
    }
    return two_by;
}

/* When the neighbour leaves, the CPU it held goes idle, and the tuner's
 * trial of two threads comes within a window or two of runs, not after its
 * period (which its lost trials have doubled up to 512 runs). */
static void test_team_size_back_when_a_cpu_goes_idle(void) {
    long with = back_after_neighbour(1), without = back_after_neighbour(0);
    if (!(with >= 6000 && with < 6040) || !(without > with))
        FAIL("two threads again from run %ld (with the idle CPUs), %ld (without)", with, without);
}

static void test_team_size_fixed_by_environment(void) {
    wick_team_tuner tt;
    memset(&tt, 0, sizeof tt);
    tt.max = 4;
    setenv("WICK_TEAM_SIZE", "3", 1);
    CHECK(wick_team_size(&tt) == 3);
    setenv("WICK_TEAM_SIZE", "9", 1);
    CHECK(wick_team_size(&tt) == 4);
    unsetenv("WICK_TEAM_SIZE");
    setenv("WICK_TEAM_TUNE", "0", 1);
    for (long r = 0; r < 1000; r++) {
        int n = wick_team_size(&tt);
        CHECK(n == 4);
        wick_team_record(&tt, n, busy(n > 1 ? 2 : 1, r));
    }
    unsetenv("WICK_TEAM_TUNE");
}

int main(void) {
    RUN(test_pool_runs_every_thread_once);
    RUN(test_barrier_orders_phases);
    RUN(test_nested_run_falls_back_to_caller);
    RUN(test_concurrent_callers);
    RUN(test_workers_flush_denormals);
    RUN(test_idle_pool_sleeps);
    RUN(test_detached_run_does_not_wait);
    RUN(test_team_size_stays_on_a_quiet_machine);
    RUN(test_team_size_drops_beside_a_busy_neighbour);
    RUN(test_team_size_follows_a_neighbour);
    RUN(test_team_size_trials_early_and_short);
    RUN(test_team_size_no_trial_when_no_core_was_lost);
    RUN(test_team_size_back_when_a_cpu_goes_idle);
    RUN(test_team_size_fixed_by_environment);
    return chk_finish();
}
