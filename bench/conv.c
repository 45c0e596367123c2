/* conv.c — which implementation should serve each convolution product on
 * this machine?  Times the three products (forward, weight gradient, input
 * gradient) of the CNN's two conv layers at batch 32, 128 and 256,
 * and of two wider layers at batch 128, on 1 and 2 threads, with each
 * implementation of backend/conv.h:
 *
 *   wick      wick_conv_new's plan: the rule in src/backend/conv.c (so this
 *             row checks the rule)
 *   blocked   oneDNN convolution in its preferred (blocked) layouts, with the
 *             reorders from and to NCHW the plan runs on every call
 *   blk-core  the same primitive without its reorders: what keeping the
 *             activations in oneDNN's layout between layers would give
 *   plain     oneDNN convolution forced to nchw / oihw (no reorders)
 *   im2col    im2col + OpenBLAS sgemm per sample, threads over samples
 *
 * Before timing, each implementation's three outputs are compared with the
 * plain oneDNN path's (a "# WARNING" line past 1e-4 of the largest entry;
 * blk-core is not compared: its results are wrong by design).
 *
 * FLOPs per product: 2 B OUT OH OW (C/g) kh kw.  Each cell is the median and
 * the best of N samples of >= T ms; the implementations are sampled in turn
 * so that noise from other users of the machine hits them alike.  The FMA
 * peak (fma_peak.h) is measured at the start and the end of the run, and
 * each cell's % is of the best peak for its thread count (1 core for 1
 * thread, all cores for 2).
 *
 *   build/bench/conv [--samples N] [--ms T] [--threads MAX] [--only NAME]
 *                    [--impls wick,blocked,...] [--peak G1,G2]
 *   (the default set: about 2 min on 2 cores) */
#include "fma_peak.h"
#include "backend/backend.h"
#include "backend/conv.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int B, C, H, W, OUT;
    wick_conv2d_params p;
} shape;

#define K3P1 {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}
static const shape shapes[] = {
    {"c1 1x28x28->32 b128", 128, 1, 28, 28, 32, K3P1},
    {"c2 32x14x14->64 b128", 128, 32, 14, 14, 64, K3P1},
    {"c1 1x28x28->32 b32", 32, 1, 28, 28, 32, K3P1},
    {"c2 32x14x14->64 b32", 32, 32, 14, 14, 64, K3P1},
    {"c1 1x28x28->32 b256", 256, 1, 28, 28, 32, K3P1},
    {"c2 32x14x14->64 b256", 256, 32, 14, 14, 64, K3P1},
    {"c3 64x14x14->128 b128", 128, 64, 14, 14, 128, K3P1},
    {"s2 64x14x14->128 /2 b128", 128, 64, 14, 14, 128,
     {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .stride_h = 2, .stride_w = 2}},
};
#define NSHAPES ((int)(sizeof shapes / sizeof *shapes))

enum { I_WICK, I_BLOCKED, I_CORE, I_PLAIN, I_IM2COL, I_N };
static const char *iname[I_N] = {"wick", "blocked", "blk-core", "plain", "im2col"};
static const wick_conv_impl iimpl[I_N] = {WICK_CONV_AUTO, WICK_CONV_DNNL_BLOCKED, WICK_CONV_DNNL_BLOCKED,
                                          WICK_CONV_DNNL_PLAIN, WICK_CONV_IM2COL};
enum { P_FWD, P_BWD_W, P_BWD_D, P_N };
static const char *pname[P_N] = {"fwd", "bwd_w", "bwd_d"};

typedef struct {
    float *x, *Wt, *b, *y, *dy, *dW, *db, *dx;
} bufs;

static void run(wick_conv *c, int prod, bufs *m) {
    if (prod == P_FWD) wick_conv_forward(c, m->x, m->Wt, m->b, m->y);
    else if (prod == P_BWD_W) wick_conv_backward_weights(c, m->x, m->dy, m->dW, m->db);
    else wick_conv_backward_data(c, m->dy, m->Wt, m->dx);
}

/* Seconds per call over >= ms milliseconds of calls. */
static double sample(wick_conv *c, int prod, bufs *m, double ms) {
    int calls = 0;
    double t0 = now(), dt;
    do {
        run(c, prod, m);
        calls++;
        dt = now() - t0;
    } while (dt < ms / 1e3);
    return dt / calls;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double maxdiff(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || e != e) d = e;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}

int main(int argc, char **argv) {
    int samples = 7, maxthreads = 2;
    double ms = 25, peak_given[2] = {0, 0};
    const char *only = NULL;
    int use[I_N] = {1, 1, 1, 1, 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--samples") && i + 1 < argc) samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) maxthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc) {
            if (sscanf(argv[++i], "%lf,%lf", &peak_given[0], &peak_given[1]) != 2) goto usage;
        } else if (!strcmp(argv[i], "--impls") && i + 1 < argc) {
            memset(use, 0, sizeof use);
            char *list = strdup(argv[++i]);
            for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
                int k = 0;
                while (k < I_N && strcmp(t, iname[k])) k++;
                if (k == I_N) { fprintf(stderr, "conv: unknown implementation %s\n", t); return 2; }
                use[k] = 1;
            }
            free(list);
        } else {
        usage:
            fprintf(stderr, "usage: %s [--samples N] [--ms T] [--threads MAX] [--only NAME] "
                            "[--impls wick,blocked,blk-core,plain,im2col] [--peak G1,G2]\n", argv[0]);
            return 2;
        }
    }
    if (samples < 1 || ms <= 0 || maxthreads < 1) { fprintf(stderr, "conv: bad option value\n"); return 2; }

    double p1, pn;
    int nt;
    fma_peak(5, 100, &p1, &pn, &nt);
    printf("# fp32 FMA peak at start: 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n", p1, nt, pn);
    printf("# %s\n", wick_library_versions());
    printf("# median (best) of %d samples of >= %.0f ms; %% of the %s peak for the thread count\n",
           samples, ms, peak_given[0] > 0 ? "given" : "start's");
    static double res[NSHAPES][2][I_N][P_N][2];   /* median, best seconds per call */
    char desc[NSHAPES][2][200];
    for (int t = 1; t <= maxthreads && t <= 2; t++) {
        wick_set_threads(t);
        for (int si = 0; si < NSHAPES; si++) {
            const shape *s = &shapes[si];
            if (only && !strstr(s->name, only)) continue;
            wick_conv *c[I_N] = {0};
            for (int k = 0; k < I_N; k++) {
                if (!use[k]) continue;
                if (wick_conv_new_impl(&c[k], s->B, s->C, s->H, s->W, s->OUT, &s->p, 0, iimpl[k])) {
                    fprintf(stderr, "conv: %s %s: %s\n", s->name, iname[k], wick_last_error());
                    return 1;
                }
                if (k == I_CORE) wick_conv_bench_core_only(c[k], 1);
            }
            int OH, OW;
            wick_conv *any = NULL;
            for (int k = 0; k < I_N && !any; k++) any = c[k];
            if (!any) continue;
            wick_conv_out_hw(any, &OH, &OW);
            if (c[I_WICK]) snprintf(desc[si][t - 1], sizeof desc[si][t - 1], "%s", wick_conv_describe(c[I_WICK]));
            size_t nx = (size_t)s->B * s->C * s->H * s->W, ny = (size_t)s->B * s->OUT * OH * OW;
            size_t nw = (size_t)s->OUT * (s->C / (s->p.groups ? s->p.groups : 1)) * s->p.kh * s->p.kw;
            bufs m[I_N];
            for (int k = 0; k < I_N; k++) {
                m[k].x = wick_aligned_alloc(nx * 4); m[k].dx = wick_aligned_alloc(nx * 4);
                m[k].y = wick_aligned_alloc(ny * 4); m[k].dy = wick_aligned_alloc(ny * 4);
                m[k].Wt = wick_aligned_alloc(nw * 4); m[k].dW = wick_aligned_alloc(nw * 4);
                m[k].b = wick_aligned_alloc(s->OUT * 4); m[k].db = wick_aligned_alloc(s->OUT * 4);
                wick_fill_normal_f32(m[k].x, nx, 0, 1, 1, 1, 0);
                wick_fill_normal_f32(m[k].dy, ny, 0, 1, 1, 2, 0);
                wick_fill_normal_f32(m[k].Wt, nw, 0, 0.1f, 1, 3, 0);
                wick_fill_normal_f32(m[k].b, s->OUT, 0, 0.1f, 1, 4, 0);
            }
            /* every implementation's outputs against the plain path's */
            for (int k = 0; k < I_N; k++)
                if (c[k]) for (int p = 0; p < P_N; p++) run(c[k], p, &m[k]);
            int ref = c[I_PLAIN] ? I_PLAIN : I_IM2COL;
            for (int k = 0; k < I_N && c[ref]; k++) {
                if (!c[k] || k == I_CORE || k == ref) continue;
                double d[3] = {maxdiff(m[k].y, m[ref].y, ny), maxdiff(m[k].dW, m[ref].dW, nw),
                               maxdiff(m[k].dx, m[ref].dx, nx)};
                for (int p = 0; p < P_N; p++)
                    if (!(d[p] <= 1e-4))
                        printf("# WARNING %s %s %s differs from %s by %.3g of the largest entry\n", s->name,
                               iname[k], pname[p], iname[ref], d[p]);
            }
            for (int p = 0; p < P_N; p++) {
                double sm[I_N][64];
                int ns = samples > 64 ? 64 : samples;
                for (int r = 0; r < ns; r++)
                    for (int k = 0; k < I_N; k++)
                        if (c[k]) sm[k][r] = sample(c[k], p, &m[k], ms);
                for (int k = 0; k < I_N; k++) {
                    if (!c[k]) continue;
                    qsort(sm[k], ns, sizeof(double), cmp_double);
                    res[si][t - 1][k][p][0] = sm[k][ns / 2];
                    res[si][t - 1][k][p][1] = sm[k][0];
                }
            }
            double gf = wick_conv_flops(any) / 1e9;
            for (int p = 0; p < P_N; p++)
                for (int k = 0; k < I_N; k++) {
                    if (!c[k]) continue;
                    if (k == I_CORE && !wick_conv_reorders(c[k], p)) continue;   /* same as blocked */
                    double med = res[si][t - 1][k][p][0], best = res[si][t - 1][k][p][1];
                    double pk = peak_given[0] > 0 ? peak_given[t - 1] : (t == 1 ? p1 : pn);
                    printf("%-26s %-6s %d thr %-9s %8.3f ms (%8.3f) %7.1f GFLOP/s (%6.1f) %5.1f%% (%5.1f%%)\n",
                           s->name, pname[p], t, iname[k], med * 1e3, best * 1e3, gf / med, gf / best,
                           100 * gf / med / pk, 100 * gf / best / pk);
                }
            if (c[I_WICK]) printf("# %s, %d thr: wick = %s\n", s->name, t, desc[si][t - 1]);
            if (c[I_BLOCKED])
                printf("# %s: blocked reorders per call: fwd %d, bwd_w %d, bwd_d %d\n", s->name,
                       wick_conv_reorders(c[I_BLOCKED], 0), wick_conv_reorders(c[I_BLOCKED], 1),
                       wick_conv_reorders(c[I_BLOCKED], 2));
            fflush(stdout);
            for (int k = 0; k < I_N; k++) {
                wick_conv_free(c[k]);
                wick_free(m[k].x); wick_free(m[k].dx); wick_free(m[k].y); wick_free(m[k].dy);
                wick_free(m[k].Wt); wick_free(m[k].dW); wick_free(m[k].b); wick_free(m[k].db);
            }
        }
    }
    double q1, qn;
    fma_peak(5, 100, &q1, &qn, &nt);
    printf("# fp32 FMA peak at end: 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n", q1, nt, qn);
    return 0;
}
