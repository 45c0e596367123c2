/* test_backend.c — the dense plan's three products against a naive
 * double-precision reference, for every library the plan can use.
 *
 * Tolerance: a float product summing K terms a_k b_k in any order errs by at
 * most about K u sum|a_k b_k| (u = 2^-24), typically sqrt(K) u; for K <= 784
 * that is <= 4.7e-5 sum|a_k b_k|.  We allow 2e-5 times that sum (plus |b| for
 * the bias) per element: ~30x the typical rounding error, far below any
 * indexing or transposition mistake (which errs by O(sum|a_k b_k|)). */
#include "check.h"
#include <omp.h>
#include "backend/backend.h"
#include "core/core.h"
#include <immintrin.h>

#define RTOL 2e-5

typedef struct {
    int B, in, out;
    float *x, *W, *b, *dy;        /* inputs, N(0,1) */
    double *z, *zs;               /* x W^T + b and sum |x||W| + |b|, [B,out] */
    double *dW, *dWs, *db, *dbs;  /* dy^T x, [out,in]; column sums of dy */
    double *dx, *dxs;             /* dy W, [B,in] */
} ref;

static void ref_make(ref *r, int B, int in, int out, uint64_t seed) {
    r->B = B; r->in = in; r->out = out;
    r->x = malloc(sizeof(float) * B * in);
    r->W = malloc(sizeof(float) * out * in);
    r->b = malloc(sizeof(float) * out);
    r->dy = malloc(sizeof(float) * B * out);
    wick_fill_normal_f32(r->x, (size_t)B * in, 0, 1, seed, 1, 0);
    wick_fill_normal_f32(r->W, (size_t)out * in, 0, 1, seed, 2, 0);
    wick_fill_normal_f32(r->b, out, 0, 1, seed, 3, 0);
    wick_fill_normal_f32(r->dy, (size_t)B * out, 0, 1, seed, 4, 0);
    r->z = calloc((size_t)B * out, sizeof(double)); r->zs = calloc((size_t)B * out, sizeof(double));
    r->dW = calloc((size_t)out * in, sizeof(double)); r->dWs = calloc((size_t)out * in, sizeof(double));
    r->db = calloc(out, sizeof(double)); r->dbs = calloc(out, sizeof(double));
    r->dx = calloc((size_t)B * in, sizeof(double)); r->dxs = calloc((size_t)B * in, sizeof(double));
    for (int i = 0; i < B; i++)
        for (int o = 0; o < out; o++) {
            double s = r->b[o], a = fabs(r->b[o]);
            for (int k = 0; k < in; k++) {
                double t = (double)r->x[i * in + k] * r->W[o * in + k];
                s += t; a += fabs(t);
            }
            r->z[i * out + o] = s; r->zs[i * out + o] = a;
        }
    for (int o = 0; o < out; o++) {
        for (int k = 0; k < in; k++) {
            double s = 0, a = 0;
            for (int i = 0; i < B; i++) {
                double t = (double)r->dy[i * out + o] * r->x[i * in + k];
                s += t; a += fabs(t);
            }
            r->dW[o * in + k] = s; r->dWs[o * in + k] = a;
        }
        double s = 0, a = 0;
        for (int i = 0; i < B; i++) { s += r->dy[i * out + o]; a += fabs(r->dy[i * out + o]); }
        r->db[o] = s; r->dbs[o] = a;
    }
    for (int i = 0; i < B; i++)
        for (int k = 0; k < in; k++) {
            double s = 0, a = 0;
            for (int o = 0; o < out; o++) {
                double t = (double)r->dy[i * out + o] * r->W[o * in + k];
                s += t; a += fabs(t);
            }
            r->dx[i * in + k] = s; r->dxs[i * in + k] = a;
        }
}

static void ref_free(ref *r) {
    free(r->x); free(r->W); free(r->b); free(r->dy); free(r->z); free(r->zs); free(r->dW);
    free(r->dWs); free(r->db); free(r->dbs); free(r->dx); free(r->dxs);
}

/* the number of elements of got[] outside the tolerance around want[] */
static long count_bad(const float *got, const double *want, const double *scale, size_t n,
                      int relu, const float *bias_removed, int cols) {
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        double w = want[i] - (bias_removed ? bias_removed[i % cols] : 0);
        if (relu && w < 0) w = 0;
        if (!(fabs(got[i] - w) <= RTOL * scale[i] + 1e-30)) {
            if (bad < 3)
                fprintf(stderr, "    element %zu: %.9g, expected %.9g\n", i, got[i], w);
            bad++;
        }
    }
    return bad;
}

static void fill_nan(float *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = NAN; }

/* Every product of one plan against the reference, and each repeated call
 * bit-identical to the first.  Outputs start as NaN: they must be overwritten. */
static void check_plan(const ref *r, wick_lib lib, int relu) {
    int B = r->B, in = r->in, out = r->out;
    wick_dense *d;
    CHECK_OK(wick_dense_new_lib(&d, B, in, out, relu, lib));
    if (!d) return;
    size_t ny = (size_t)B * out, nw = (size_t)out * in, nx = (size_t)B * in;
    float *y = malloc(ny * 4), *y2 = malloc(ny * 4), *dW = malloc(nw * 4), *dW2 = malloc(nw * 4);
    float *db = malloc(out * 4), *db2 = malloc(out * 4), *dx = malloc(nx * 4), *dx2 = malloc(nx * 4);
    for (int rep = 0; rep < 2; rep++) {
        float *yy = rep ? y2 : y, *ww = rep ? dW2 : dW, *bb = rep ? db2 : db, *xx = rep ? dx2 : dx;
        fill_nan(yy, ny); fill_nan(ww, nw); fill_nan(bb, out); fill_nan(xx, nx);
        wick_dense_forward(d, r->x, r->W, r->b, yy);
        wick_dense_backward_weights(d, r->x, r->dy, ww, bb);
        wick_dense_backward_data(d, r->dy, r->W, xx);
    }
    CHECK(count_bad(y, r->z, r->zs, ny, relu, NULL, out) == 0);
    CHECK(count_bad(dW, r->dW, r->dWs, nw, 0, NULL, in) == 0);
    CHECK(count_bad(db, r->db, r->dbs, out, 0, NULL, out) == 0);
    CHECK(count_bad(dx, r->dx, r->dxs, nx, 0, NULL, in) == 0);
    CHECK(memcmp(y, y2, ny * 4) == 0);
    CHECK(memcmp(dW, dW2, nw * 4) == 0);
    CHECK(memcmp(db, db2, out * 4) == 0);
    CHECK(memcmp(dx, dx2, nx * 4) == 0);
    /* without a bias, and without a bias gradient: dW is the same product */
    fill_nan(y, ny); fill_nan(dW2, nw);
    wick_dense_forward(d, r->x, r->W, NULL, y);
    CHECK(count_bad(y, r->z, r->zs, ny, relu, r->b, out) == 0);
    wick_dense_backward_weights(d, r->x, r->dy, dW2, NULL);
    CHECK(memcmp(dW, dW2, nw * 4) == 0);
    free(y); free(y2); free(dW); free(dW2); free(db); free(db2); free(dx); free(dx2);
    wick_dense_free(d);
}

static const int shapes[][3] = {{7, 13, 5}, {1, 13, 5}, {1, 784, 512}, {13, 100, 10},
                                {33, 128, 128}, {128, 784, 512}, {127, 512, 10}};

static void test_products_all_libraries(void) {
    for (size_t s = 0; s < WICK_ARRAY_LEN(shapes); s++) {
        ref r;
        ref_make(&r, shapes[s][0], shapes[s][1], shapes[s][2], 100 + s);
        for (int threads = 1; threads <= 2; threads++) {
            wick_set_threads(threads);
            for (int lib = WICK_LIB_AUTO; lib <= WICK_LIB_ONEDNN; lib++)
                for (int relu = 0; relu <= 1; relu++) {
                    int f0 = chk_cur_failed;
                    chk_cur_failed = 0;
                    check_plan(&r, (wick_lib)lib, relu);
                    if (chk_cur_failed)
                        fprintf(stderr, "    ^ shape [%d, %d] -> %d, lib %d, relu %d, %d threads\n",
                                r.B, r.in, r.out, lib, relu, threads);
                    chk_cur_failed |= f0;
                }
        }
        ref_free(&r);
    }
    wick_set_threads(0);
}

static void test_describe(void) {
    wick_dense *d;
    CHECK_OK(wick_dense_new_lib(&d, 4, 6, 3, 1, WICK_LIB_ONEDNN));
    if (d) CHECK(!strcmp(wick_dense_describe(d), "fwd=onednn bwd_w=onednn bwd_d=onednn"));
    wick_dense_free(d);
    CHECK_OK(wick_dense_new_lib(&d, 4, 6, 3, 1, WICK_LIB_OPENBLAS));
    if (d) CHECK(!strcmp(wick_dense_describe(d), "fwd=openblas bwd_w=openblas bwd_d=openblas"));
    wick_dense_free(d);
    /* the measured rule of dense.c on the headline net's layers */
    CHECK_OK(wick_dense_new(&d, 128, 784, 512, 1));
    if (d) CHECK(!strcmp(wick_dense_describe(d), "fwd=onednn bwd_w=onednn bwd_d=onednn"));
    wick_dense_free(d);
    CHECK_OK(wick_dense_new(&d, 128, 512, 512, 1));
    if (d) CHECK(!strcmp(wick_dense_describe(d), "fwd=onednn bwd_w=openblas bwd_d=openblas"));
    wick_dense_free(d);
    CHECK_OK(wick_dense_new(&d, 128, 512, 10, 0));
    if (d) CHECK(!strcmp(wick_dense_describe(d), "fwd=onednn bwd_w=onednn bwd_d=onednn"));
    wick_dense_free(d);
}

static void test_bad_shapes(void) {
    wick_dense *d = (wick_dense *)1;
    CHECK_FAILS(wick_dense_new(&d, 0, 3, 3, 0), WICK_EINVAL, "non-positive shape");
    CHECK(d == NULL);
    CHECK_FAILS(wick_dense_new(&d, 3, -1, 3, 0), WICK_EINVAL, "[3, -1] -> 3");
    CHECK_FAILS(wick_dense_new_lib(&d, 3, 3, 0, 0, WICK_LIB_ONEDNN), WICK_EINVAL, "non-positive");
}

/* Every allocation of the plan failing in turn: ENOMEM, nothing leaked (ASan). */
static void test_alloc_failure(void) {
    int failed = 0, n;
    for (n = 1; n < 50; n++) {
        wick_dense *d = NULL;
        wick_alloc_fail_at(n);
        wick_status s = wick_dense_new_lib(&d, 8, 16, 4, 1, WICK_LIB_ONEDNN);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) { wick_dense_free(d); break; }
        CHECK(s == WICK_ENOMEM && d == NULL);
        failed++;
    }
    CHECK(failed >= 3 && n < 50);   /* the struct, the two bias buffers, scratchpads */
}

/* After planning, the OpenMP team's workers flush float denormals; the
 * calling thread's mode is its own (wick.h, "Floating-point mode": the
 * computing calls set it and put it back).  clang's libomp copies the
 * caller's MXCSR to its workers at every fork (KMP_INHERIT_FP_CONTROL), so
 * there the workers' mode is the caller's. */
static void test_flush_denormals(void) {
    const unsigned caller = _mm_getcsr();
    wick_dense *d;
    CHECK_OK(wick_dense_new(&d, 2, 3, 4, 0));
    wick_dense_free(d);
    CHECK(_mm_getcsr() == caller);
    int ok = 1;
    #pragma omp parallel reduction(&& : ok)
    {
        unsigned m = _mm_getcsr();
#ifdef __clang__
        ok = omp_get_thread_num() == 0 || (m & ~0x3fu) == (caller & ~0x3fu);   /* control bits, not flags */
#else
        ok = omp_get_thread_num() == 0 || (m & 0x8040) == 0x8040;
#endif
    }
    CHECK(ok);
}

int main(void) {
    RUN(test_products_all_libraries);
    RUN(test_describe);
    RUN(test_bad_shapes);
    RUN(test_alloc_failure);
    RUN(test_flush_denormals);
    return chk_finish();
}
