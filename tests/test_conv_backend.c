/* test_conv_backend.c — the conv plan's three products (backend/conv.h)
 * against a direct convolution in double precision (loops over the
 * definition, torch.nn.functional.conv2d's cross-correlation), for every
 * implementation the plan can use, on shapes that exercise each index path:
 * odd and non-square sizes, stride 2, padding larger than half the kernel,
 * dilation 2, groups 2, depthwise (with a channel multiplier), 1x1 (the
 * im2col path's copy-free case) and the two conv layers of the CNN.
 *
 * Tolerance: as test_backend.c, a float sum of K products errs by at most
 * about K u sum|a_k b_k| (u = 2^-24), typically sqrt(K) u.  We allow RTOL
 * times sum|a_k b_k| (plus |b|) per element: ~30x the typical error for the
 * largest K here (the weight gradient of 32x14x14, K = 2 x 196), far below
 * an indexing mistake, which errs by O(sum|a_k b_k|). */
#include "check.h"
#include "backend/backend.h"
#include "backend/conv.h"
#include "core/core.h"

#define RTOL 2e-5

typedef struct {
    const char *name;
    int B, C, H, W, OUT;
    wick_conv2d_params p;
} shape;

static const shape shapes[] = {
    {"3x7x5->4 k3 pad1", 3, 3, 7, 5, 4, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
    {"4x9x8->6 k3 stride2 pad1", 2, 4, 9, 8, 6, {.kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}},
    {"2x10x9->3 k3 dil2 pad2", 2, 2, 10, 9, 3, {.kh = 3, .kw = 3, .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2}},
    {"4x6x7->6 k3 pad1 groups2", 2, 4, 6, 7, 6, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .groups = 2}},
    {"5x8x7->5 k3 pad1 depthwise", 2, 5, 8, 7, 5, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .groups = 5}},
    {"3x6x6->6 k5 pad2 depthwise x2", 2, 3, 6, 6, 6, {.kh = 5, .kw = 5, .pad_h = 2, .pad_w = 2, .groups = 3}},
    {"8x5x6->4 1x1", 3, 8, 5, 6, 4, {.kh = 1, .kw = 1}},
    {"8x7x6->4 1x1 stride2", 2, 8, 7, 6, 4, {.kh = 1, .kw = 1, .stride_h = 2, .stride_w = 2}},
    {"3x9x11->5 k2x3 stride(1,2) pad(1,0)", 2, 3, 9, 11, 5, {.kh = 2, .kw = 3, .stride_w = 2, .pad_h = 1}},
    {"2x8x8->3 k3 pad2 stride3", 2, 2, 8, 8, 3, {.kh = 3, .kw = 3, .stride_h = 3, .stride_w = 3, .pad_h = 2, .pad_w = 2}},
    {"2x3x3->2 k5 pad1 (kernel wider than the input)", 2, 2, 3, 3, 2, {.kh = 5, .kw = 5, .pad_h = 1, .pad_w = 1}},
    {"CNN layer 1: 1x28x28->32 k3 pad1", 2, 1, 28, 28, 32, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
    {"CNN layer 2: 32x14x14->64 k3 pad1", 2, 32, 14, 14, 64, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
    {"16x5x3->24 k3 pad1 (blocked activations, 15 positions a plane)", 3, 16, 5, 3, 24, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
    {"8x4x4->8 k3 stride2 pad1 (blocked, 4 positions out)", 2, 8, 4, 4, 8, {.kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}},
};
#define NSHAPES ((int)(sizeof shapes / sizeof *shapes))

typedef struct {
    int B, C, H, W, OUT, OH, OW, G, Cg, Og, kh, kw, sh, sw, ph, pw, dh, dw;
    size_t nx, nw, ny;
    float *x, *Wt, *b, *dy;
    double *z, *zs, *dW, *dWs, *db, *dbs, *dx, *dxs;   /* values and sums of |terms| */
} ref;

static int one(int v) { return v ? v : 1; }

/* The direct convolution and its two gradients, by the definition. */
static void ref_make(ref *r, const shape *s, uint64_t seed) {
    const wick_conv2d_params *p = &s->p;
    *r = (ref){.B = s->B, .C = s->C, .H = s->H, .W = s->W, .OUT = s->OUT, .G = one(p->groups),
               .kh = p->kh, .kw = p->kw, .sh = one(p->stride_h), .sw = one(p->stride_w),
               .ph = p->pad_h, .pw = p->pad_w, .dh = one(p->dil_h), .dw = one(p->dil_w)};
    r->OH = (r->H + 2 * r->ph - r->dh * (r->kh - 1) - 1) / r->sh + 1;
    r->OW = (r->W + 2 * r->pw - r->dw * (r->kw - 1) - 1) / r->sw + 1;
    r->Cg = r->C / r->G; r->Og = r->OUT / r->G;
    r->nx = (size_t)r->B * r->C * r->H * r->W;
    r->nw = (size_t)r->OUT * r->Cg * r->kh * r->kw;
    r->ny = (size_t)r->B * r->OUT * r->OH * r->OW;
    r->x = malloc(sizeof(float) * r->nx); r->Wt = malloc(sizeof(float) * r->nw);
    r->b = malloc(sizeof(float) * r->OUT); r->dy = malloc(sizeof(float) * r->ny);
    wick_fill_normal_f32(r->x, r->nx, 0, 1, seed, 1, 0);
    wick_fill_normal_f32(r->Wt, r->nw, 0, 1, seed, 2, 0);
    wick_fill_normal_f32(r->b, r->OUT, 0, 1, seed, 3, 0);
    wick_fill_normal_f32(r->dy, r->ny, 0, 1, seed, 4, 0);
    r->z = calloc(r->ny, sizeof(double)); r->zs = calloc(r->ny, sizeof(double));
    r->dW = calloc(r->nw, sizeof(double)); r->dWs = calloc(r->nw, sizeof(double));
    r->db = calloc(r->OUT, sizeof(double)); r->dbs = calloc(r->OUT, sizeof(double));
    r->dx = calloc(r->nx, sizeof(double)); r->dxs = calloc(r->nx, sizeof(double));
    for (int n = 0; n < r->B; n++)
        for (int o = 0; o < r->OUT; o++) {
            int g = o / r->Og;
            for (int oh = 0; oh < r->OH; oh++)
                for (int ow = 0; ow < r->OW; ow++) {
                    size_t yi = (((size_t)n * r->OUT + o) * r->OH + oh) * r->OW + ow;
                    double zv = r->b[o], za = fabs(r->b[o]), d = r->dy[yi];
                    r->db[o] += d; r->dbs[o] += fabs(d);
                    for (int ci = 0; ci < r->Cg; ci++)
                        for (int ki = 0; ki < r->kh; ki++)
                            for (int kj = 0; kj < r->kw; kj++) {
                                int ih = oh * r->sh - r->ph + ki * r->dh, iw = ow * r->sw - r->pw + kj * r->dw;
                                if (ih < 0 || ih >= r->H || iw < 0 || iw >= r->W) continue;
                                size_t xi = (((size_t)n * r->C + g * r->Cg + ci) * r->H + ih) * r->W + iw;
                                size_t wi = (((size_t)o * r->Cg + ci) * r->kh + ki) * r->kw + kj;
                                double t = (double)r->x[xi] * r->Wt[wi];
                                zv += t; za += fabs(t);
                                t = d * r->x[xi]; r->dW[wi] += t; r->dWs[wi] += fabs(t);
                                t = d * r->Wt[wi]; r->dx[xi] += t; r->dxs[xi] += fabs(t);
                            }
                    r->z[yi] = zv; r->zs[yi] = za;
                }
        }
}

static void ref_free(ref *r) {
    free(r->x); free(r->Wt); free(r->b); free(r->dy); free(r->z); free(r->zs); free(r->dW);
    free(r->dWs); free(r->db); free(r->dbs); free(r->dx); free(r->dxs);
}

/* Elements of got[] outside RTOL * scale (+ 1e-30) of want[]; relu: compare
 * with max(0, want); bias_off: want minus the bias of channel (i / per) %
 * nb, for a forward run without bias. */
static long count_bad(const float *got, const double *want, const double *scale, size_t n, int relu,
                      const float *bias_off, size_t per, int nb) {
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        double w = want[i], sc = scale[i];
        if (bias_off) { w -= bias_off[(i / per) % nb]; sc -= fabs(bias_off[(i / per) % nb]); }
        if (relu && w < 0) w = 0;
        if (!(fabs(got[i] - w) <= RTOL * sc + 1e-30)) {
            if (bad < 3)
                fprintf(stderr, "    [%zu] got %.9g want %.9g (scale %.3g)\n", i, got[i], w, sc);
            bad++;
        }
    }
    return bad;
}

static const char *impl_label[WICK_CONV_IMPL_COUNT] = {"auto", "dnnl-blocked", "dnnl-plain", "im2col"};

/* Fills a with NaN, so that an output the plan does not overwrite shows. */
static void poison(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

/* One plan's three products at one shape, twice each: against the reference
 * and bit-identical to the first call.  Returns the number of failures and
 * leaves the outputs in y, dW, db, dx for the caller's thread comparison. */
static int check_plan(const shape *s, const ref *r, wick_conv_impl impl, int relu, int bias,
                      float *y, float *dW, float *db, float *dx) {
    wick_conv *c = NULL;
    wick_status st = wick_conv_new_impl(&c, s->B, s->C, s->H, s->W, s->OUT, &s->p, relu, impl);
    if (st) {
        fprintf(stderr, "  %s, %s: %s\n", s->name, impl_label[impl], wick_last_error());
        return 1;
    }
    int OH, OW;
    wick_conv_out_hw(c, &OH, &OW);
    int fails = 0;
    if (OH != r->OH || OW != r->OW) {
        fprintf(stderr, "  %s: output %dx%d, expected %dx%d\n", s->name, OH, OW, r->OH, r->OW);
        fails++;
    }
    float *y2 = malloc(sizeof(float) * r->ny), *dW2 = malloc(sizeof(float) * r->nw);
    float *db2 = malloc(sizeof(float) * r->OUT), *dx2 = malloc(sizeof(float) * r->nx);
    for (int rep = 0; rep < 2; rep++) {
        float *yy = rep ? y2 : y, *ww = rep ? dW2 : dW, *bb = rep ? db2 : db, *xx = rep ? dx2 : dx;
        poison(yy, r->ny); poison(ww, r->nw); poison(bb, r->OUT); poison(xx, r->nx);
        wick_conv_forward(c, r->x, r->Wt, bias ? r->b : NULL, yy);
        wick_conv_backward_weights(c, r->x, r->dy, ww, bias ? bb : NULL);
        wick_conv_backward_data(c, r->dy, r->Wt, xx);
    }
    long bad[4] = {
        count_bad(y, r->z, r->zs, r->ny, relu, bias ? NULL : r->b, (size_t)r->OH * r->OW, r->OUT),
        count_bad(dW, r->dW, r->dWs, r->nw, 0, NULL, 1, 1),
        bias ? count_bad(db, r->db, r->dbs, r->OUT, 0, NULL, 1, 1) : 0,
        count_bad(dx, r->dx, r->dxs, r->nx, 0, NULL, 1, 1)};
    static const char *what[4] = {"forward", "weight gradient", "bias gradient", "input gradient"};
    for (int k = 0; k < 4; k++)
        if (bad[k]) {
            fprintf(stderr, "  %s, %s (%s), relu %d bias %d: %s: %ld of the elements off\n", s->name,
                    impl_label[impl], wick_conv_describe(c), relu, bias, what[k], bad[k]);
            fails++;
        }
    if (memcmp(y, y2, sizeof(float) * r->ny) || memcmp(dW, dW2, sizeof(float) * r->nw) ||
        (bias && memcmp(db, db2, sizeof(float) * r->OUT)) || memcmp(dx, dx2, sizeof(float) * r->nx)) {
        fprintf(stderr, "  %s, %s: a second call gave different bits\n", s->name, impl_label[impl]);
        fails++;
    }
    free(y2); free(dW2); free(db2); free(dx2);
    wick_conv_free(c);
    return fails;
}

/* Every shape, implementation, relu and bias combination, on `threads`
 * threads. */
static void check_all(int threads) {
    wick_set_threads(threads);
    for (int i = 0; i < NSHAPES; i++) {
        ref r;
        ref_make(&r, &shapes[i], 100 + i);
        float *y = malloc(sizeof(float) * r.ny), *dW = malloc(sizeof(float) * r.nw);
        float *db = malloc(sizeof(float) * r.OUT), *dx = malloc(sizeof(float) * r.nx);
        for (int impl = 0; impl < WICK_CONV_IMPL_COUNT; impl++)
            for (int v = 0; v < 4; v++)
                CHECK(check_plan(&shapes[i], &r, impl, v & 1, v >> 1, y, dW, db, dx) == 0);
        free(y); free(dW); free(db); free(dx);
        ref_free(&r);
    }
}

static void test_products_1_thread(void) { check_all(1); }
static void test_products_2_threads(void) { check_all(2); }

/* The same plan on 1 and 2 threads: each within RTOL of the reference (the
 * tests above), so within 2 RTOL sum|terms| of each other; here stated
 * directly on the CNN's second layer at batch 8, where the im2col weight
 * gradient sums the two threads' partials. */
static void test_threads_agree(void) {
    shape s = {"32x14x14->64", 8, 32, 14, 14, 64, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}};
    ref r;
    ref_make(&r, &s, 7);
    for (int impl = 1; impl < WICK_CONV_IMPL_COUNT; impl++) {
        float *out[2][4];
        for (int t = 0; t < 2; t++) {
            wick_set_threads(t + 1);
            out[t][0] = malloc(sizeof(float) * r.ny); out[t][1] = malloc(sizeof(float) * r.nw);
            out[t][2] = malloc(sizeof(float) * r.OUT); out[t][3] = malloc(sizeof(float) * r.nx);
            CHECK(check_plan(&s, &r, impl, 0, 1, out[t][0], out[t][1], out[t][2], out[t][3]) == 0);
        }
        size_t n[4] = {r.ny, r.nw, (size_t)r.OUT, r.nx};
        const double *sc[4] = {r.zs, r.dWs, r.dbs, r.dxs};
        for (int k = 0; k < 4; k++) {
            long bad = 0;
            for (size_t j = 0; j < n[k]; j++)
                if (!(fabs(out[0][k][j] - out[1][k][j]) <= 2 * RTOL * sc[k][j])) bad++;
            if (bad) fprintf(stderr, "  %s: output %d: %ld elements differ between 1 and 2 threads\n",
                             impl_label[impl], k, bad);
            CHECK(bad == 0);
            free(out[0][k]); free(out[1][k]);
        }
    }
    ref_free(&r);
}

/* The blocked plan moves activations with at least 8 channels a block
 * between nchw and oneDNN's nChw8c by wick's own transpose (conv.c
 * xpose_run): a copy, so every product has the bits of the plan that runs
 * oneDNN's reorder primitives instead (WICK_CONV_XPOSE=0), on planes that
 * are and are not a multiple of the 8-position register tile. */
static void test_xpose_as_onednn_reorders(void) {
    static const shape sh[] = {
        {"32x14x14->64", 2, 32, 14, 14, 64, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
        {"16x5x3->24", 3, 16, 5, 3, 24, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
        {"8x8x4->16", 2, 8, 8, 4, 16, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
    };
    for (int i = 0; i < 3; i++)
        for (int t = 1; t <= 2; t++) {
            wick_set_threads(t);
            ref r;
            ref_make(&r, &sh[i], 40 + i);
            float *o[2][4];
            for (int v = 0; v < 2; v++) {   /* v 0: oneDNN's reorders; 1: xpose_run */
                setenv("WICK_CONV_XPOSE", v ? "1" : "0", 1);
                o[v][0] = malloc(sizeof(float) * r.ny); o[v][1] = malloc(sizeof(float) * r.nw);
                o[v][2] = malloc(sizeof(float) * r.OUT); o[v][3] = malloc(sizeof(float) * r.nx);
                CHECK(check_plan(&sh[i], &r, WICK_CONV_DNNL_BLOCKED, 1, 1, o[v][0], o[v][1], o[v][2],
                                 o[v][3]) == 0);
            }
            unsetenv("WICK_CONV_XPOSE");
            size_t n[4] = {r.ny, r.nw, (size_t)r.OUT, r.nx};
            for (int k = 0; k < 4; k++) {
                if (memcmp(o[0][k], o[1][k], n[k] * sizeof(float)))
                    fprintf(stderr, "  %s, %d threads: output %d differs from oneDNN's reorders\n", sh[i].name, t, k);
                CHECK(memcmp(o[0][k], o[1][k], n[k] * sizeof(float)) == 0);
                free(o[0][k]); free(o[1][k]);
            }
            ref_free(&r);
        }
}

/* With a team of two, the oneDNN forward and input-gradient products run as
 * two one-thread plans, one per half of the batch (conv.c split_run), unless
 * WICK_CONV_SPLIT=0.  oneDNN's kernels sum each output over the same
 * channels and taps in the same order whoever runs which samples, so the
 * split plan has the unsplit plan's bits; checked at odd batch sizes (parts
 * of unequal size), a batch of one (no split) and the CNN's 128. */
static void test_batch_split_as_unsplit(void) {
    static const shape sh[] = {
        {"32x14x14->64, batch 7", 7, 32, 14, 14, 64, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
        {"32x14x14->64, batch 128", 128, 32, 14, 14, 64, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
        {"16x5x3->24, batch 3", 3, 16, 5, 3, 24, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}},
        {"4x6x7->6 groups2, batch 5", 5, 4, 6, 7, 6, {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .groups = 2}},
        {"8x5x6->4 1x1, batch 1", 1, 8, 5, 6, 4, {.kh = 1, .kw = 1}},
    };
    wick_set_threads(2);
    for (int i = 0; i < 5; i++) {
        const shape *s = &sh[i];
        int OH = s->H + 2 * s->p.pad_h - s->p.kh + 1, OW = s->W + 2 * s->p.pad_w - s->p.kw + 1;
        size_t nx = (size_t)s->B * s->C * s->H * s->W, ny = (size_t)s->B * s->OUT * OH * OW;
        size_t nw = (size_t)s->OUT * s->C / one(s->p.groups) * s->p.kh * s->p.kw;
        float *x = malloc(sizeof(float) * nx), *dy = malloc(sizeof(float) * ny);
        float *Wt = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * s->OUT);
        wick_fill_normal_f32(x, nx, 0, 1, 60 + i, 1, 0);
        wick_fill_normal_f32(Wt, nw, 0, 1, 60 + i, 2, 0);
        wick_fill_normal_f32(b, s->OUT, 0, 1, 60 + i, 3, 0);
        wick_fill_normal_f32(dy, ny, 0, 1, 60 + i, 4, 0);
        float *y[2], *dx[2];
        for (int v = 0; v < 2; v++) {   /* v 0: oneDNN's own team split; 1: the batch split */
            setenv("WICK_CONV_SPLIT", v ? "1" : "0", 1);
            wick_conv *c = NULL;
            CHECK(wick_conv_new_impl(&c, s->B, s->C, s->H, s->W, s->OUT, &s->p, 1, WICK_CONV_DNNL_BLOCKED) ==
                  WICK_OK);
            y[v] = malloc(sizeof(float) * ny);
            dx[v] = malloc(sizeof(float) * nx);
            poison(y[v], ny);
            poison(dx[v], nx);
            if (c) {
                int parts = strstr(wick_conv_describe(c), "2 parts") != NULL;
                CHECK(parts == (v && s->B > 1));
                wick_conv_forward(c, x, Wt, b, y[v]);
                wick_conv_backward_data(c, dy, Wt, dx[v]);
            }
            wick_conv_free(c);
        }
        unsetenv("WICK_CONV_SPLIT");
        if (memcmp(y[0], y[1], sizeof(float) * ny)) fprintf(stderr, "  %s: the forward differs\n", s->name);
        if (memcmp(dx[0], dx[1], sizeof(float) * nx)) fprintf(stderr, "  %s: the input gradient differs\n", s->name);
        CHECK(memcmp(y[0], y[1], sizeof(float) * ny) == 0);
        CHECK(memcmp(dx[0], dx[1], sizeof(float) * nx) == 0);
        for (int v = 0; v < 2; v++) { free(y[v]); free(dx[v]); }
        free(x); free(dy); free(Wt); free(b);
    }
}

static void test_bad_geometry(void) {
    wick_conv *c = NULL;
    wick_conv2d_params p = {.kh = 3, .kw = 3, .groups = 2};
    CHECK_FAILS(wick_conv_new(&c, 2, 3, 8, 8, 4, &p, 0), WICK_EINVAL, "groups");
    p = (wick_conv2d_params){.kh = 5, .kw = 5};
    CHECK_FAILS(wick_conv_new(&c, 2, 3, 4, 4, 4, &p, 0), WICK_EINVAL, "larger than");
    p = (wick_conv2d_params){.kh = 0, .kw = 3};
    CHECK_FAILS(wick_conv_new(&c, 2, 3, 4, 4, 4, &p, 0), WICK_EINVAL, "non-positive");
    CHECK(c == NULL);
}

int main(void) {
    RUN(test_products_1_thread);
    RUN(test_products_2_threads);
    RUN(test_threads_agree);
    RUN(test_xpose_as_onednn_reorders);
    RUN(test_batch_split_as_unsplit);
    RUN(test_bad_geometry);
    return chk_finish();
}
