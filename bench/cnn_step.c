/* cnn_step.c — an estimate of a whole training step of the CNN
 *   input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,
 *   batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10
 * with the conv products through backend/conv.h's plans and the dense ones
 * through wick_dense, everything else (batch norm in training mode, ReLU, max
 * pooling, dropout, softmax cross-entropy, SGD with momentum) as plain loops
 * over the definitions, parallel over channels or samples: not the graph
 * executor, a yardstick for what the products leave to the rest.
 *
 * Prints, for 1 and 2 threads, the median step time over --steps steps and
 * its split into the conv products, the dense products and the rest, as
 * samples/s and GFLOP/s (27.4 MFLOP a sample, torch_cnn.py's count).  The
 * data are N(0,1) images and random labels (the speed does not depend on
 * them).
 *
 *   build/bench/cnn_step [--steps N] [--batch B] [--threads MAX] */
#include "fma_peak.h"
#include "backend/backend.h"
#include "backend/conv.h"
#include "core/core.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCLS 10

typedef struct {
    int B;
    wick_conv *c1, *c2;
    wick_dense *d1, *d2;
    /* parameters, gradients and momenta: conv W and b, BN gamma and beta, dense W and b */
    float *p[12], *g[12], *m[12];
    size_t np[12];
    /* activations: x, c1 out, bn1 out (relu'd in place), pool1, c2 out, bn2, pool2 (= flat),
     * dropout1, h (linear 1 + relu), dropout2, logits */
    float *x, *z1, *a1, *q1, *z2, *a2, *q2, *r1, *h, *r2, *lg;
    float *xh1, *xh2, *is1, *is2;   /* BN: x-hat and 1/sd per channel */
    uint8_t *am1, *am2;             /* max-pool argmax in the 2x2 window */
    float *k1, *k2;                 /* dropout masks (0 or 1/(1-p)) */
    float *dlg, *dr2, *dh, *dr1, *dq2, *da2, *dz2, *dq1, *da1, *dz1;
    int *y;
    uint64_t rng;
} net;

static float *falloc(size_t n) {
    float *p = wick_aligned_alloc(n * sizeof(float) + 64);
    if (!p) { fprintf(stderr, "cnn_step: out of memory\n"); exit(1); }
    memset(p, 0, n * sizeof(float));
    return p;
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* batch norm, training mode, over [B, C, HW]: y = gamma x-hat + beta */
static void bn_forward(int B, int C, int HW, const float *x, const float *gam, const float *bet,
                       float *xh, float *is, float *y) {
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0;   /* float within a row, double across rows */
        for (int n = 0; n < B; n++) {
            const float *r = x + ((size_t)n * C + c) * HW;
            float a = 0, a2 = 0;
            #pragma omp simd reduction(+ : a, a2)
            for (int i = 0; i < HW; i++) { a += r[i]; a2 += r[i] * r[i]; }
            s += a; s2 += a2;
        }
        double N = (double)B * HW, mu = s / N, var = s2 / N - mu * mu;
        float inv = (float)(1 / sqrt(var + 1e-5)), muf = (float)mu;
        is[c] = inv;
        for (int n = 0; n < B; n++) {
            size_t o = ((size_t)n * C + c) * HW;
            #pragma omp simd
            for (int i = 0; i < HW; i++) {
                float v = (x[o + i] - muf) * inv;
                xh[o + i] = v;
                float t = gam[c] * v + bet[c];
                y[o + i] = t > 0 ? t : 0;   /* the ReLU that follows */
            }
        }
    }
}

/* dy is w.r.t. the ReLU's output y; dx, dgamma, dbeta */
static void bn_backward(int B, int C, int HW, const float *xh, const float *is, const float *gam,
                        const float *y, const float *dy, float *dx, float *dgam, float *dbet) {
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sg = 0, sb = 0;
        for (int n = 0; n < B; n++) {
            size_t o = ((size_t)n * C + c) * HW;
            float a = 0, b = 0;
            #pragma omp simd reduction(+ : a, b)
            for (int i = 0; i < HW; i++) {
                float d = y[o + i] > 0 ? dy[o + i] : 0;
                a += d; b += d * xh[o + i];
            }
            sb += a; sg += b;
        }
        double N = (double)B * HW;
        dgam[c] = (float)sg; dbet[c] = (float)sb;
        float k = gam[c] * is[c], mb = (float)(sb / N), mg = (float)(sg / N);
        for (int n = 0; n < B; n++) {
            size_t o = ((size_t)n * C + c) * HW;
            #pragma omp simd
            for (int i = 0; i < HW; i++) {
                float d = y[o + i] > 0 ? dy[o + i] : 0;
                dx[o + i] = k * (d - mb - xh[o + i] * mg);
            }
        }
    }
}

/* 2x2 max pooling, stride 2, over [B*C] planes of H x W (even) */
static void pool_forward(int planes, int H, int W, const float *x, float *y, uint8_t *am) {
    int OH = H / 2, OW = W / 2;
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const float *r = x + (size_t)p * H * W + 2 * i * W + 2 * j;
                float v[4] = {r[0], r[1], r[W], r[W + 1]};
                int k = 0;
                for (int u = 1; u < 4; u++) if (v[u] > v[k]) k = u;
                y[(size_t)p * OH * OW + i * OW + j] = v[k];
                am[(size_t)p * OH * OW + i * OW + j] = (uint8_t)k;
            }
}

static void pool_backward(int planes, int H, int W, const float *dy, const uint8_t *am, float *dx) {
    int OH = H / 2, OW = W / 2;
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                float *r = dx + (size_t)p * H * W + 2 * i * W + 2 * j;
                size_t o = (size_t)p * OH * OW + i * OW + j;
                int k = am[o];
                r[0] = k == 0 ? dy[o] : 0; r[1] = k == 1 ? dy[o] : 0;
                r[W] = k == 2 ? dy[o] : 0; r[W + 1] = k == 3 ? dy[o] : 0;
            }
}

static void dropout_mask(float *k, size_t n, float p, uint64_t *rng) {
    float keep = 1 / (1 - p);
    uint32_t th = (uint32_t)(p * 4294967296.0);
    for (size_t i = 0; i < n; i++) k[i] = (uint32_t)xorshift(rng) < th ? 0 : keep;
}

static void mul(float *y, const float *a, const float *b, size_t n) {
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

/* dh = dr (times the dropout mask) where the ReLU's output h is positive */
static void relu_dropout_backward(float *dh, const float *h, const float *dr, const float *k, size_t n) {
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dh[i] = h[i] > 0 ? dr[i] * k[i] : 0;
}

enum { T_CONV, T_DENSE, T_REST, T_N };

static void step(net *t, double tm[T_N]) {
    int B = t->B;
    double t0;
#define CLOCK(k, body) do { t0 = now(); body; tm[k] += now() - t0; } while (0)
    /* forward */
    CLOCK(T_CONV, wick_conv_forward(t->c1, t->x, t->p[0], t->p[1], t->z1));
    CLOCK(T_REST, bn_forward(B, 32, 784, t->z1, t->p[2], t->p[3], t->xh1, t->is1, t->a1);
          pool_forward(B * 32, 28, 28, t->a1, t->q1, t->am1));
    CLOCK(T_CONV, wick_conv_forward(t->c2, t->q1, t->p[4], t->p[5], t->z2));
    CLOCK(T_REST, bn_forward(B, 64, 196, t->z2, t->p[6], t->p[7], t->xh2, t->is2, t->a2);
          pool_forward(B * 64, 14, 14, t->a2, t->q2, t->am2);
          dropout_mask(t->k1, (size_t)B * 3136, 0.25f, &t->rng); mul(t->r1, t->q2, t->k1, (size_t)B * 3136));
    CLOCK(T_DENSE, wick_dense_forward(t->d1, t->r1, t->p[8], t->p[9], t->h));
    CLOCK(T_REST, dropout_mask(t->k2, (size_t)B * 256, 0.5f, &t->rng); mul(t->r2, t->h, t->k2, (size_t)B * 256));
    CLOCK(T_DENSE, wick_dense_forward(t->d2, t->r2, t->p[10], t->p[11], t->lg));
    /* softmax cross-entropy */
    t0 = now();
    for (int n = 0; n < B; n++) {
        float *l = t->lg + n * NCLS, *d = t->dlg + n * NCLS, mx = l[0], s = 0;
        for (int k = 1; k < NCLS; k++) if (l[k] > mx) mx = l[k];
        for (int k = 0; k < NCLS; k++) s += d[k] = expf(l[k] - mx);
        for (int k = 0; k < NCLS; k++) d[k] = (d[k] / s - (k == t->y[n])) / B;
    }
    tm[T_REST] += now() - t0;
    /* backward */
    CLOCK(T_DENSE, wick_dense_backward_weights(t->d2, t->r2, t->dlg, t->g[10], t->g[11]);
          wick_dense_backward_data(t->d2, t->dlg, t->p[10], t->dr2));
    CLOCK(T_REST, relu_dropout_backward(t->dh, t->h, t->dr2, t->k2, (size_t)B * 256));
    CLOCK(T_DENSE, wick_dense_backward_weights(t->d1, t->r1, t->dh, t->g[8], t->g[9]);
          wick_dense_backward_data(t->d1, t->dh, t->p[8], t->dr1));
    CLOCK(T_REST, mul(t->dq2, t->dr1, t->k1, (size_t)B * 3136);
          pool_backward(B * 64, 14, 14, t->dq2, t->am2, t->da2);
          bn_backward(B, 64, 196, t->xh2, t->is2, t->p[6], t->a2, t->da2, t->dz2, t->g[6], t->g[7]));
    CLOCK(T_CONV, wick_conv_backward_weights(t->c2, t->q1, t->dz2, t->g[4], t->g[5]);
          wick_conv_backward_data(t->c2, t->dz2, t->p[4], t->dq1));
    CLOCK(T_REST, pool_backward(B * 32, 28, 28, t->dq1, t->am1, t->da1);
          bn_backward(B, 32, 784, t->xh1, t->is1, t->p[2], t->a1, t->da1, t->dz1, t->g[2], t->g[3]));
    CLOCK(T_CONV, wick_conv_backward_weights(t->c1, t->x, t->dz1, t->g[0], t->g[1]));
    /* SGD, momentum 0.9 */
    t0 = now();
    for (int k = 0; k < 12; k++) {
        float *p = t->p[k], *g = t->g[k], *m = t->m[k];
        size_t n = t->np[k];
        #pragma omp parallel for simd schedule(static) if (n > 8192)
        for (size_t i = 0; i < n; i++) { m[i] = 0.9f * m[i] + g[i]; p[i] -= 0.01f * m[i]; }
    }
    tm[T_REST] += now() - t0;
#undef CLOCK
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int steps = 40, B = 128, maxthreads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) maxthreads = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--steps N] [--batch B] [--threads MAX]\n", argv[0]); return 2; }
    }
    if (steps < 1 || B < 1 || maxthreads < 1) { fprintf(stderr, "cnn_step: bad option value\n"); return 2; }
    const double flops = 27411456.0;   /* a sample's step, torch_cnn.py's count */
    double p1, pn;
    int nt;
    fma_peak(5, 100, &p1, &pn, &nt);
    printf("# fp32 FMA peak: 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s; batch %d, median of %d steps\n",
           p1, nt, pn, B, steps);
    wick_conv2d_params k3 = {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1};
    for (int th = 1; th <= maxthreads && th <= 2; th++) {
        wick_set_threads(th);
        net t = {.B = B, .rng = 88172645463325252ull};
        if (wick_conv_new(&t.c1, B, 1, 28, 28, 32, &k3, 0) || wick_conv_new(&t.c2, B, 32, 14, 14, 64, &k3, 0) ||
            wick_dense_new(&t.d1, B, 3136, 256, 1) || wick_dense_new(&t.d2, B, 256, NCLS, 0)) {
            fprintf(stderr, "cnn_step: %s\n", wick_last_error());
            return 1;
        }
        size_t np[12] = {32 * 9, 32, 32, 32, 64 * 288, 64, 64, 64, 256 * 3136, 256, NCLS * 256, NCLS};
        for (int k = 0; k < 12; k++) {
            t.np[k] = np[k];
            t.p[k] = falloc(np[k]); t.g[k] = falloc(np[k]); t.m[k] = falloc(np[k]);
            int fan = k < 2 ? 9 : k < 4 ? 1 : k < 6 ? 288 : k < 8 ? 1 : k < 10 ? 3136 : 256;
            if (k == 2 || k == 6) for (size_t i = 0; i < np[k]; i++) t.p[k][i] = 1;
            else if (k != 3 && k != 7) wick_fill_normal_f32(t.p[k], np[k], 0, (float)(1 / sqrt(fan)), 5, k, 0);
        }
        size_t b = B;
        t.x = falloc(b * 784); t.z1 = falloc(b * 25088); t.a1 = falloc(b * 25088); t.q1 = falloc(b * 6272);
        t.z2 = falloc(b * 12544); t.a2 = falloc(b * 12544); t.q2 = falloc(b * 3136); t.r1 = falloc(b * 3136);
        t.h = falloc(b * 256); t.r2 = falloc(b * 256); t.lg = falloc(b * NCLS);
        t.xh1 = falloc(b * 25088); t.xh2 = falloc(b * 12544); t.is1 = falloc(32); t.is2 = falloc(64);
        t.am1 = malloc(b * 6272); t.am2 = malloc(b * 3136);
        t.k1 = falloc(b * 3136); t.k2 = falloc(b * 256);
        t.dlg = falloc(b * NCLS); t.dr2 = falloc(b * 256); t.dh = falloc(b * 256); t.dr1 = falloc(b * 3136);
        t.dq2 = falloc(b * 3136); t.da2 = falloc(b * 12544); t.dz2 = falloc(b * 12544);
        t.dq1 = falloc(b * 6272); t.da1 = falloc(b * 25088); t.dz1 = falloc(b * 25088);
        t.y = malloc(b * sizeof(int));
        wick_fill_normal_f32(t.x, b * 784, 0, 1, 9, 1, 0);
        for (int n = 0; n < B; n++) t.y[n] = (int)(xorshift(&t.rng) % NCLS);
        double tm[T_N] = {0}, *st = malloc(sizeof(double) * steps), part[T_N] = {0};
        for (int w = 0; w < 3; w++) step(&t, tm);
        for (int s = 0; s < steps; s++) {
            double t0 = now();
            step(&t, tm);
            st[s] = now() - t0;
        }
        /* the split: a second pass, summed (the median of a sum is not the sum of medians) */
        for (int s = 0; s < steps; s++) step(&t, part);
        qsort(st, steps, sizeof(double), cmp_double);
        double med = st[steps / 2], tot = part[T_CONV] + part[T_DENSE] + part[T_REST];
        double pk = th == 1 ? p1 : pn;
        printf("%d thr: step %.2f ms (best %.2f): %.0f samples/s, %.1f GFLOP/s, %.1f%% of the peak; "
               "conv %.0f%%, dense %.0f%%, rest %.0f%% of the time\n", th, med * 1e3, st[0] * 1e3, B / med,
               flops * B / med / 1e9, 100 * flops * B / med / 1e9 / pk, 100 * part[T_CONV] / tot,
               100 * part[T_DENSE] / tot, 100 * part[T_REST] / tot);
        printf("# %d thr: c1 %s; c2 %s\n", th, wick_conv_describe(t.c1), wick_conv_describe(t.c2));
        fflush(stdout);
        free(st);
        wick_conv_free(t.c1); wick_conv_free(t.c2); wick_dense_free(t.d1); wick_dense_free(t.d2);
        for (int k = 0; k < 12; k++) { wick_free(t.p[k]); wick_free(t.g[k]); wick_free(t.m[k]); }
        float *fl[] = {t.x, t.z1, t.a1, t.q1, t.z2, t.a2, t.q2, t.r1, t.h, t.r2, t.lg, t.xh1, t.xh2, t.is1,
                       t.is2, t.k1, t.k2, t.dlg, t.dr2, t.dh, t.dr1, t.dq2, t.da2, t.dz2, t.dq1, t.da1, t.dz1};
        for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) wick_free(fl[i]);
        free(t.am1); free(t.am2); free(t.y);
    }
    return 0;
}
