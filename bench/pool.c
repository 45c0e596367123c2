/* pool.c — can a take-over work pool harvest a shared core?  (issue 22)
 *
 * A "step" here is the headline MLP's five big products (784-512-512-10,
 * batch 128: the forward of layers 1 and 2, layer 2's weight and input
 * gradients, layer 1's weight gradient; 407 of the step's 513 MFLOP) through
 * wick's own kernel, each a parallel region cut into items of ITEM columns
 * (forward, input gradient) or rows (weight gradients) taken from an atomic
 * counter.  Regions depend on nothing here (each writes its own output from
 * fixed inputs), so the mechanisms are timed, not the data flow.  Three
 * mechanisms run the regions:
 *
 *   barrier  today's MLP step: one wick_pool_run a step, wick's barrier
 *            (bounded spin, then a futex) between regions
 *   omp      an OpenMP parallel region a step, `omp for schedule(dynamic)`
 *            per region (libgomp's barrier and its GOMP_SPINCOUNT)
 *   takeover the region ends when its ITEMS are done, not when the threads
 *            arrive; a worker finds the current step by its number whenever
 *            it runs (it joins a step already under way); an item claimed
 *            by a thread quiet for longer than twice the item's measured
 *            time (+30 us) is taken over: the holder computes into private
 *            scratch and commits with a CAS CLAIMED -> COMMITTING (then
 *            copies, then DONE); a taker CASes CLAIMED -> TAKEN and computes
 *            in place; a holder that finds TAKEN drops its work
 *
 * Each mechanism is timed with 1 and with 2 threads, alternated in rounds,
 * under whatever load the machine has (bench/pool.sh adds a spinner pinned
 * on one core); the figure of merit is the 2-thread / 1-thread throughput.
 * Every output is checked against a 1-thread reference (same bits).
 *
 *   build/bench/pool [--steps N] [--rounds R] [--item COLS] [--json]
 *                    [--mech barrier,omp,takeover] */
#include "backend/kernel.h"
#include "core/core.h"
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define relax() _mm_pause()
#else
#define relax() ((void)0)
#endif

#define NREG 5
#define MAXITEMS 64
#define MAXT 2

/* One region: C[m, n] = A B, items of `step` columns (by_rows = 0) or rows. */
typedef struct {
    int m, n, k, by_rows, step, items;
    const float *A;
    ptrdiff_t rsa, csa;
    const float *Bm;
    ptrdiff_t ldb, bpanel;
    float *C;
    int ldc;
    double mflop;
} region;

static region reg[NREG];
static int ITEM = 32;

static float *randbuf(size_t n, uint64_t s) {
    float *p = wick_aligned_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(s >> 40) / (double)(1ULL << 24) - 0.5);
    }
    return p;
}

static void setup(void) {
    const int Bt = 128, n0 = 784, n1 = 512, n2 = 512;
    float *x = randbuf((size_t)Bt * n0, 1), *y1 = randbuf((size_t)Bt * n1, 2), *dz2 = randbuf((size_t)Bt * n2, 3),
          *dz1 = randbuf((size_t)Bt * n1, 4);
    float *W1 = randbuf((size_t)n1 * n0, 5), *W2 = randbuf((size_t)n2 * n1, 6);
    float *P1 = wick_aligned_alloc(wick_kern_fwd_elems(n1, n0) * sizeof(float));
    float *P2 = wick_aligned_alloc(wick_kern_fwd_elems(n2, n1) * sizeof(float));
    float *Q2 = wick_aligned_alloc(wick_kern_bwd_elems(n2, n1) * sizeof(float));
    wick_kern_pack_fwd(W1, n1, n0, 0, n1, P1);
    wick_kern_pack_fwd(W2, n2, n1, 0, n2, P2);
    wick_kern_pack_bwd(W2, n2, n1, 0, n2, Q2);
    /* forward: y = x W^T; input gradient: dx = dz W; weight gradient: dW = dz^T x */
    reg[0] = (region){Bt, n1, n0, 0, 0, 0, x, n0, 1, P1, 16, 16L * n0, NULL, n1, 0};
    reg[1] = (region){Bt, n2, n1, 0, 0, 0, y1, n1, 1, P2, 16, 16L * n1, NULL, n2, 0};
    reg[2] = (region){n2, n1, Bt, 1, 0, 0, dz2, 1, n2, y1, n1, 16, NULL, n1, 0};
    reg[3] = (region){Bt, n1, n2, 0, 0, 0, dz2, n2, 1, Q2, 16, 16L * n2, NULL, n1, 0};
    reg[4] = (region){n1, n0, Bt, 1, 0, 0, dz1, 1, n1, x, n0, 16, NULL, n0, 0};
    for (int r = 0; r < NREG; r++) {
        region *g = &reg[r];
        g->C = wick_aligned_alloc((size_t)g->m * g->ldc * sizeof(float));
        g->step = ITEM;
        const int len = g->by_rows ? g->m : g->n;
        g->items = (len + g->step - 1) / g->step;
        if (g->items > MAXITEMS) g->items = MAXITEMS, g->step = (len + MAXITEMS - 1) / MAXITEMS;
        g->mflop = 2e-6 * g->m * g->n * g->k;
    }
    free(W1), free(W2);
}

/* Item i of region r into out (ldo its row stride; the item's own origin). */
static void item(int r, int i, float *out, int ldo) {
    const region *g = &reg[r];
    if (g->by_rows) {
        const int q0 = i * g->step, q1 = q0 + g->step < g->m ? q0 + g->step : g->m;
        wick_kern_gemm(q1 - q0, g->n, g->k, g->A + (size_t)q0 * g->rsa, g->rsa, g->csa, g->Bm, g->ldb,
                       g->bpanel, out, ldo, NULL, 0);
    } else {
        const int j0 = i * g->step, j1 = j0 + g->step < g->n ? j0 + g->step : g->n;
        wick_kern_gemm(g->m, j1 - j0, g->k, g->A, g->rsa, g->csa, g->Bm + (size_t)(j0 / 16) * g->bpanel,
                       g->ldb, g->bpanel, out, ldo, NULL, 0);
    }
}

static float *item_dst(int r, int i) {
    const region *g = &reg[r];
    return g->by_rows ? g->C + (size_t)i * g->step * g->ldc : g->C + (size_t)i * g->step;
}

/* Copies an item's block from scratch (row stride ldo) into C. */
static void item_copy(int r, int i, const float *s, int ldo) {
    const region *g = &reg[r];
    int rows = g->m, cols = g->n;
    if (g->by_rows) {
        const int q0 = i * g->step;
        rows = q0 + g->step < g->m ? g->step : g->m - q0;
    } else {
        const int j0 = i * g->step;
        cols = j0 + g->step < g->n ? g->step : g->n - j0;
    }
    float *d = item_dst(r, i);
    for (int a = 0; a < rows; a++) memcpy(d + (size_t)a * g->ldc, s + (size_t)a * ldo, cols * sizeof(float));
}

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* ---- (a) today's step: one pool run, wick's barrier between regions ---- */

static wick_barrier bar;
static _Atomic int next_item[NREG];

static void step_barrier(void *arg, int t, int nt) {
    (void)arg, (void)t;
    for (int r = 0; r < NREG; r++) {
        for (int i; (i = atomic_fetch_add(&next_item[r], 1)) < reg[r].items;) item(r, i, item_dst(r, i), reg[r].ldc);
        wick_barrier_wait(&bar, nt);
    }
}

static void run_barrier(int nt) {
    for (int r = 0; r < NREG; r++) atomic_store(&next_item[r], 0);
    wick_pool_run(nt, step_barrier, NULL);
}

/* ---- (a') OpenMP ---- */

static void run_omp(int nt) {
#pragma omp parallel num_threads(nt)
    for (int r = 0; r < NREG; r++) {
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < reg[r].items; i++) item(r, i, item_dst(r, i), reg[r].ldc);
    }
}

/* ---- (b) the take-over pool ---- */

enum { FREE, CLAIMED, COMMITTING, TAKEN, DONE };
#define W_(e, who, st) (((uint64_t)(e) << 8) | ((uint64_t)(who) << 4) | (st))
#define W_ST(w) ((int)((w) & 15))
#define W_WHO(w) ((int)(((w) >> 4) & 15))

static _Atomic uint64_t state[NREG][MAXITEMS];
static _Atomic long since[NREG][MAXITEMS], item_ns[NREG][MAXITEMS];
static _Atomic int done[NREG];
static _Atomic unsigned long seq;   /* the step's number e */
static _Atomic unsigned go, go_sleepers, prog, prog_sleepers;   /* go: moved on at each 2-thread step */
static _Atomic int stop_workers, active_workers;
static float *scratch[MAXT];
static _Atomic long takeovers, dropped;
static _Atomic int pool_nt;   /* threads in use for this run (workers t >= pool_nt stay out) */

static long ns(void) { return wick_now_ns(); }

/* Thread t's part of step e; returns 0 if the step moved on under it. */
static int takeover_step(int t, unsigned long e) {
    const long spin = wick_spin_ns();
    for (int r = 0; r < NREG; r++) {
        const region *g = &reg[r];
        for (int i = 0; i < g->items; i++) {
            uint64_t f = W_(e, 0, FREE);
            if (atomic_load_explicit(&state[r][i], memory_order_relaxed) != f) continue;
            if (!atomic_compare_exchange_strong(&state[r][i], &f, W_(e, t, CLAIMED))) continue;
            const long t0 = ns();
            atomic_store_explicit(&since[r][i], t0, memory_order_relaxed);
            const int ldo = g->by_rows ? g->n : g->step;
            item(r, i, scratch[t], ldo);
            uint64_t c = W_(e, t, CLAIMED);
            if (!atomic_compare_exchange_strong(&state[r][i], &c, W_(e, t, COMMITTING))) {
                atomic_fetch_add(&dropped, 1);   /* taken over (or the step moved on) */
                if (atomic_load(&seq) != e) return 0;
                continue;
            }
            item_copy(r, i, scratch[t], ldo);
            const long took = ns() - t0, m = atomic_load_explicit(&item_ns[r][i], memory_order_relaxed);
            atomic_store_explicit(&item_ns[r][i], !m || took < m ? took : m + (took - m) / 8, memory_order_relaxed);
            atomic_store_explicit(&state[r][i], W_(e, t, DONE), memory_order_release);
            atomic_fetch_add(&done[r], 1);
            wick_change_wake(&prog, &prog_sleepers);
        }
        long idle = ns();
        while (atomic_load_explicit(&done[r], memory_order_acquire) < g->items) {
            if (atomic_load(&seq) != e) return 0;
            const unsigned seen = atomic_load(&prog);
            int took_one = 0;
            for (int i = 0; i < g->items && !took_one; i++) {
                uint64_t w = atomic_load_explicit(&state[r][i], memory_order_acquire);
                if (W_ST(w) != CLAIMED || (w >> 8) != e || W_WHO(w) == t) continue;
                const long m = atomic_load_explicit(&item_ns[r][i], memory_order_relaxed);
                const long bound = m ? 2 * m + 30000 : 2000000;
                if (ns() - atomic_load_explicit(&since[r][i], memory_order_relaxed) < bound) continue;
                if (!atomic_compare_exchange_strong(&state[r][i], &w, W_(e, t, TAKEN))) continue;
                item(r, i, item_dst(r, i), g->ldc);   /* in place: the holder can no longer commit */
                atomic_fetch_add(&takeovers, 1);
                atomic_store_explicit(&state[r][i], W_(e, t, DONE), memory_order_release);
                atomic_fetch_add(&done[r], 1);
                wick_change_wake(&prog, &prog_sleepers);
                took_one = 1;
            }
            if (took_one) idle = ns();
            else if (ns() - idle < spin) relax();
            else wick_wait_change(&prog, seen, &prog_sleepers, 100000);
        }
    }
    return 1;
}

static void *takeover_worker(void *p) {
    const int t = (int)(intptr_t)p;
    wick_fp_flush_here();
    unsigned long last = 0;
    while (!atomic_load(&stop_workers)) {
        /* go before seq: a step published after this read moves go on */
        const unsigned g = atomic_load(&go);
        const unsigned long e = atomic_load(&seq);
        if (e == last || t >= atomic_load(&pool_nt)) {
            /* wait for the next step: spin, then sleep */
            const long t0 = ns(), spin = wick_spin_ns();
            while (atomic_load(&go) == g && ns() - t0 < spin) relax();
            if (atomic_load(&go) == g) wick_wait_change(&go, g, &go_sleepers, 1000000);
            continue;
        }
        last = e;   /* joins step e wherever it is; a late return just waits for the next */
        takeover_step(t, e);
    }
    atomic_fetch_sub(&active_workers, 1);
    return NULL;
}

static void run_takeover(int nt) {
    atomic_store(&pool_nt, nt);
    const unsigned long e = atomic_load(&seq) + 1;
    for (int r = 0; r < NREG; r++) {
        for (int i = 0; i < reg[r].items; i++) atomic_store_explicit(&state[r][i], W_(e, 0, FREE), memory_order_relaxed);
        atomic_store(&done[r], 0);
    }
    atomic_store(&seq, e);   /* publishes the reset */
    if (nt > 1) wick_change_wake(&go, &go_sleepers);
    takeover_step(0, e);
}

/* ---- timing ---- */

static void run(const char *mech, int nt) {
    if (!strcmp(mech, "barrier")) run_barrier(nt);
    else if (!strcmp(mech, "omp")) run_omp(nt);
    else run_takeover(nt);
}

static int check(const float *const *ref) {
    for (int r = 0; r < NREG; r++)
        if (memcmp(ref[r], reg[r].C, (size_t)reg[r].m * reg[r].ldc * sizeof(float))) return r + 1;
    return 0;
}

int main(int argc, char **argv) {
    int steps = 30, rounds = 21, json = 0;
    char mechs[256] = "barrier,omp,takeover";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--item") && i + 1 < argc) ITEM = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mech") && i + 1 < argc) snprintf(mechs, sizeof mechs, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "pool: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || rounds < 1 || ITEM < 16 || ITEM % 16) {
        fprintf(stderr, "pool: --steps, --rounds >= 1; --item a multiple of 16\n");
        return 2;
    }
    if (!wick_kern_ok()) {
        fprintf(stderr, "pool: this CPU has no AVX2/FMA\n");
        return 1;
    }
    wick_fp_flush_here();
    setup();
    double mflop = 0;
    for (int r = 0; r < NREG; r++) mflop += reg[r].mflop;
    wick_barrier_init(&bar);
    for (int t = 0; t < MAXT; t++) scratch[t] = wick_aligned_alloc((size_t)784 * ITEM * sizeof(float) + 4096);
    pthread_t th;
    atomic_store(&active_workers, 1);
    pthread_create(&th, NULL, takeover_worker, (void *)(intptr_t)1);
    /* the reference: one thread, the barrier path */
    float *ref[NREG];
    run_barrier(1);
    for (int r = 0; r < NREG; r++) {
        ref[r] = malloc((size_t)reg[r].m * reg[r].ldc * sizeof(float));
        memcpy(ref[r], reg[r].C, (size_t)reg[r].m * reg[r].ldc * sizeof(float));
    }
    const char *names[3];
    int nm = 0;
    for (char *s = strtok(mechs, ","); s && nm < 3; s = strtok(NULL, ",")) {
        if (strcmp(s, "barrier") && strcmp(s, "omp") && strcmp(s, "takeover")) {
            fprintf(stderr, "pool: unknown mechanism %s\n", s);
            return 2;
        }
        names[nm++] = s;
    }
    double rate[3][2][64], cores[3][2][64];
    long takes = 0, drops = 0;
    int bad = 0;
    if (rounds > 64) rounds = 64;
    for (int k = 0; k < rounds; k++)
        for (int m = 0; m < nm; m++)
            for (int q = 0; q < 2; q++) {
                const int nt = (k + q + m) % 2 ? 1 : 2;   /* alternate which goes first */
                for (int r = 0; r < NREG; r++) memset(reg[r].C, 0, (size_t)reg[r].m * reg[r].ldc * sizeof(float));
                const long tk = atomic_load(&takeovers), dr = atomic_load(&dropped);
                const double t0 = now_s(), c0 = cpu_s();
                for (int s = 0; s < steps; s++) run(names[m], nt);
                const double dt = now_s() - t0;
                cores[m][nt - 1][k] = (cpu_s() - c0) / dt;
                if (!strcmp(names[m], "takeover")) takes += atomic_load(&takeovers) - tk, drops += atomic_load(&dropped) - dr;
                /* the last step's outputs, once every item is done (a late
                   worker never writes after its step: checked here) */
                if (check((const float *const *)ref)) bad++;
                rate[m][nt - 1][k] = steps / dt;
            }
    atomic_store(&stop_workers, 1);
    atomic_fetch_add(&seq, 1);
    wick_change_wake(&go, &go_sleepers);
    wick_change_wake(&prog, &prog_sleepers);
    pthread_join(th, NULL);
    double load = 0;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load) != 1) load = 0;
        fclose(lf);
    }
    if (!json) printf("pool: %d rounds x %d steps, item %d, %.0f MFLOP a step; load %.2f at the end\n", rounds, steps,
                      ITEM, mflop, load);
    for (int m = 0; m < nm; m++) {
        double r1[64], r2[64], q[64], u1[64], u2[64];
        for (int k = 0; k < rounds; k++)
            r1[k] = rate[m][0][k], r2[k] = rate[m][1][k], q[k] = r2[k] / r1[k], u1[k] = cores[m][0][k], u2[k] = cores[m][1][k];
        /* medians */
        for (int a = 0; a < rounds; a++)
            for (int b = a + 1; b < rounds; b++) {
                double *v[5] = {r1, r2, q, u1, u2};
                for (int z = 0; z < 5; z++)
                    if (v[z][b] < v[z][a]) { double x = v[z][a]; v[z][a] = v[z][b]; v[z][b] = x; }
            }
        const double m1 = r1[rounds / 2], m2 = r2[rounds / 2], mq = q[rounds / 2];
        if (json)
            printf("{\"mech\": \"%s\", \"item\": %d, \"steps_s_1\": %.1f, \"steps_s_2\": %.1f, \"ratio_2_1\": %.4f, "
                   "\"ratio_lo\": %.4f, \"ratio_hi\": %.4f, \"gflops_2\": %.2f, \"cores_1\": %.3f, \"cores_2\": %.3f}\n",
                   names[m], ITEM, m1, m2, mq, q[0], q[rounds - 1], m2 * mflop * 1e-3, u1[rounds / 2], u2[rounds / 2]);
        else
            printf("%-9s 1 thread %7.1f steps/s (%.2f cores), 2 threads %7.1f (%.2f cores, %5.1f GFLOP/s): "
                   "2/1 = %.3f (rounds %.3f-%.3f)\n",
                   names[m], m1, u1[rounds / 2], m2, u2[rounds / 2], m2 * mflop * 1e-3, mq, q[0], q[rounds - 1]);
    }
    for (int r = 0; r < NREG; r++) free(ref[r]);
    if (!json) printf("takeover: %ld items taken over, %ld holders' results dropped; outputs %s\n", takes, drops,
                      bad ? "DIFFER" : "bit-identical to one thread");
    return bad ? 1 : 0;
}
