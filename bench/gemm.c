/* gemm.c — which library should serve each dense-layer product on this
 * machine?  Times the three products of the headline net's layers
 * (784->512, 512->512, 512->10) and of the deep narrow net (128->128) at
 * batch 32, 128, 512, on 1 and 2 threads, with:
 *
 *   wick      wick_dense_new's plan: per product the library dense.c's rule
 *             picks (so this column checks the rule)
 *   openblas  wick's OpenBLAS path (backend dense.c): cblas_sgemm, the bias
 *             copied into y first (beta = 1), ReLU a second pass; the bias
 *             gradient a column sum
 *   ip        wick's oneDNN path (backend onednn.c): inner-product primitives,
 *             plain layouts, fused bias + ReLU post-op, bias gradient fused
 *   ipB       oneDNN inner product with the weights in the layout oneDNN
 *             prefers (format any; forward and data gradient only, weights
 *             already reordered: the best case for a blocked layout)
 *   mm        oneDNN matmul primitive, plain layouts with transposed strides,
 *             fused bias + ReLU; no bias gradient (not fused by matmul)
 *   xsmm      libxsmm 1.17's libxsmm_sgemm_omp, with the same bias/ReLU
 *             passes as openblas
 *
 * Before timing, every library's output is compared with the OpenBLAS path's
 * (a "# WARNING" line if they differ by more than 1e-4 of the largest entry).
 *
 * FLOPs per product: 2 B in out.  Each cell is the best and the median of
 * 7 samples of >= 4 ms; the libraries are sampled in turn so that noise from
 * other users of the machine hits them alike.  On a shared machine noise only
 * slows a sample down, so the best is the estimate of what the library can
 * do and decides the winner; the median shows how noisy the run was.  The FMA peak (fma_peak.h) is
 * measured at the start and the end of the same run.
 *
 *   build/bench/gemm [--json] [--samples N] [--ms T] [--libs openblas,ip,...]
 *                    [--threads MAX] [--batch B] [--shape IN,OUT,RELU]...
 *                    [--peak G1,G2]   (percentages of a given peak, e.g. the
 *                                      best measured when the machine is busy)
 *   (the default set: about 25 s) */
#include "fma_peak.h"
#include "backend/backend.h"
#include "core/core.h"
#include <dnnl.h>
#include <libxsmm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_WICK, L_BLAS, L_IP, L_IPB, L_MM, L_XSMM, L_N };
static const char *lname[L_N] = {"wick", "openblas", "ip", "ipB", "mm", "xsmm"};
enum { P_FWD, P_BWD_W, P_BWD_D, P_N };
static const char *pname[P_N] = {"fwd", "bwd_w", "bwd_d"};

static dnnl_engine_t eng;
static dnnl_stream_t stream;

typedef struct {
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[5];
    int nargs;
    const char *impl;
} dprim;

typedef struct {
    int B, in, out, relu;
    float *x, *W, *b, *dy, *y, *dW, *db, *dx;
    wick_dense *blas, *ip, *auto_;
    dprim mm[P_N], ipb[P_N];
} ctx;

#define DN(call)                                                                         \
    do {                                                                                 \
        dnnl_status_t s_ = (call);                                                       \
        if (s_ != dnnl_success) { fprintf(stderr, "gemm: %s: %d\n", #call, (int)s_); exit(1); } \
    } while (0)

static void md_plain(dnnl_memory_desc_t *md, int n, dnnl_dim_t d0, dnnl_dim_t d1) {
    dnnl_dims_t d = {d0, d1};
    DN(dnnl_memory_desc_init_by_tag(md, n, d, dnnl_f32, n == 1 ? dnnl_a : dnnl_ab));
}
/* a [d0, d1] view of a row-major [d1, d0] array */
static void md_trans(dnnl_memory_desc_t *md, dnnl_dim_t d0, dnnl_dim_t d1) {
    dnnl_dims_t d = {d0, d1}, s = {1, d0};
    DN(dnnl_memory_desc_init_by_strides(md, 2, d, dnnl_f32, s));
}

/* Primitive for pd; argument i is ids[i] with descriptor from query q[i]
 * index qi[i], data ptr[i] (NULL: oneDNN allocates it, zeroed). */
static void dprim_make(dprim *p, dnnl_primitive_desc_t pd, int n, const int *ids,
                       const dnnl_query_t *q, const int *qi, void *const *ptr) {
    DN(dnnl_primitive_create(&p->prim, pd));
    DN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &p->impl));
    for (int i = 0; i < n; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q[i], qi[i]);
        dnnl_memory_t m;
        DN(dnnl_memory_create(&m, md, eng, ptr[i] ? ptr[i] : DNNL_MEMORY_ALLOCATE));
        if (!ptr[i]) {
            void *h;
            DN(dnnl_memory_get_data_handle(m, &h));
            memset(h, 0, dnnl_memory_desc_get_size(md));
        }
        p->args[i].arg = ids[i];
        p->args[i].memory = m;
    }
    p->nargs = n;
}

static void dprim_run(dprim *p) {
    DN(dnnl_primitive_execute(p->prim, stream, p->nargs, p->args));
    DN(dnnl_stream_wait(stream));
}

static void dprim_free(dprim *p) {
    if (!p->prim) return;
    for (int i = 0; i < p->nargs; i++) dnnl_memory_destroy(p->args[i].memory);
    dnnl_primitive_destroy(p->prim);
    memset(p, 0, sizeof *p);
}

static dnnl_primitive_attr_t relu_attr(int relu) {
    dnnl_primitive_attr_t a;
    DN(dnnl_primitive_attr_create(&a));
    if (relu) {
        dnnl_post_ops_t po;
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DN(dnnl_primitive_attr_set_post_ops(a, po));
        dnnl_post_ops_destroy(po);
    }
    return a;
}

static void make_matmul(ctx *c) {
    int B = c->B, in = c->in, out = c->out;
    dnnl_memory_desc_t x, wt, b, y, dyt, xw, dW, dy, w, dx;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t a = relu_attr(c->relu);
    /* y[B,out] = x[B,in] . W^T[in,out] + b[1,out] */
    md_plain(&x, 2, B, in); md_trans(&wt, in, out); md_plain(&b, 2, 1, out); md_plain(&y, 2, B, out);
    DN(dnnl_matmul_desc_init(&md, &x, &wt, &b, &y));
    DN(dnnl_primitive_desc_create(&pd, &md, a, eng, NULL));
    {
        int ids[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        dnnl_query_t q[] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md, dnnl_query_dst_md};
        int qi[] = {0, 0, 1, 0};
        void *p[] = {c->x, c->W, c->b, c->y};
        dprim_make(&c->mm[P_FWD], pd, 4, ids, q, qi, p);
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(a);
    /* dW[out,in] = dy^T[out,B] . x[B,in] */
    md_trans(&dyt, out, B); md_plain(&xw, 2, B, in); md_plain(&dW, 2, out, in);
    DN(dnnl_matmul_desc_init(&md, &dyt, &xw, NULL, &dW));
    DN(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    {
        int ids[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        dnnl_query_t q[] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
        int qi[] = {0, 0, 0};
        void *p[] = {c->dy, c->x, c->dW};
        dprim_make(&c->mm[P_BWD_W], pd, 3, ids, q, qi, p);
    }
    dnnl_primitive_desc_destroy(pd);
    /* dx[B,in] = dy[B,out] . W[out,in] */
    md_plain(&dy, 2, B, out); md_plain(&w, 2, out, in); md_plain(&dx, 2, B, in);
    DN(dnnl_matmul_desc_init(&md, &dy, &w, NULL, &dx));
    DN(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    {
        int ids[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        dnnl_query_t q[] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
        int qi[] = {0, 0, 0};
        void *p[] = {c->dy, c->W, c->dx};
        dprim_make(&c->mm[P_BWD_D], pd, 3, ids, q, qi, p);
    }
    dnnl_primitive_desc_destroy(pd);
}

/* inner product with weights in oneDNN's preferred layout (tag any) */
static void make_ip_blocked(ctx *c) {
    dnnl_memory_desc_t x, w, b, y;
    dnnl_dims_t xd = {c->B, c->in}, wd = {c->out, c->in};
    md_plain(&x, 2, c->B, c->in); md_plain(&b, 1, c->out, 0); md_plain(&y, 2, c->B, c->out);
    (void)xd;
    DN(dnnl_memory_desc_init_by_tag(&w, 2, wd, dnnl_f32, dnnl_format_tag_any));
    dnnl_inner_product_desc_t fd, bd;
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_attr_t a = relu_attr(c->relu);
    DN(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &x, &w, &b, &y));
    DN(dnnl_primitive_desc_create(&fpd, &fd, a, eng, NULL));
    dnnl_primitive_attr_destroy(a);
    {
        int ids[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        dnnl_query_t q[] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md, dnnl_query_dst_md};
        int qi[] = {0, 0, 1, 0};
        void *p[] = {c->x, NULL, c->b, c->y};
        dprim_make(&c->ipb[P_FWD], fpd, 4, ids, q, qi, p);
    }
    DN(dnnl_inner_product_backward_data_desc_init(&bd, &x, &w, &y));
    DN(dnnl_primitive_desc_create(&bpd, &bd, NULL, eng, fpd));
    {
        int ids[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        dnnl_query_t q[] = {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md};
        int qi[] = {0, 0, 0};
        void *p[] = {c->dy, NULL, c->dx};
        dprim_make(&c->ipb[P_BWD_D], bpd, 3, ids, q, qi, p);
    }
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
}

/* row-major C[M,N] = op(A) op(B) + beta C through column-major libxsmm:
 * the same memory is C^T = op(B)^T op(A)^T */
static void xsmm_rm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *Bm,
                    int ldb, float beta, float *C, int ldc) {
    char tA = tb ? 'T' : 'N', tB = ta ? 'T' : 'N';
    libxsmm_blasint m = N, n = M, k = K, la = ldb, lb = lda, lc = ldc;
    float alpha = 1;
    libxsmm_sgemm_omp(&tA, &tB, &m, &n, &k, &alpha, Bm, &la, A, &lb, &beta, C, &lc);
}

static void run(ctx *c, int lib, int p) {
    int B = c->B, in = c->in, N = c->out;
    switch (lib) {
    case L_WICK:
    case L_BLAS:
    case L_IP: {
        wick_dense *d = lib == L_BLAS ? c->blas : lib == L_IP ? c->ip : c->auto_;
        if (p == P_FWD) wick_dense_forward(d, c->x, c->W, c->b, c->y);
        else if (p == P_BWD_W) wick_dense_backward_weights(d, c->x, c->dy, c->dW, c->db);
        else wick_dense_backward_data(d, c->dy, c->W, c->dx);
        break;
    }
    case L_IPB: dprim_run(&c->ipb[p]); break;
    case L_MM: dprim_run(&c->mm[p]); break;
    case L_XSMM:
        if (p == P_FWD) {
            for (int i = 0; i < B; i++) memcpy(c->y + (size_t)i * N, c->b, N * sizeof(float));
            xsmm_rm(0, 1, B, N, in, c->x, in, c->W, in, 1.0f, c->y, N);
            if (c->relu) {
                size_t n = (size_t)B * N;
                float *y = c->y;
                #pragma omp parallel for simd schedule(static) if (n > 1 << 15)
                for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
            }
        } else if (p == P_BWD_W) {
            xsmm_rm(1, 0, N, in, B, c->dy, N, c->x, in, 0.0f, c->dW, in);
            for (int j = 0; j < N; j++) c->db[j] = 0;
            for (int i = 0; i < B; i++)
                for (int j = 0; j < N; j++) c->db[j] += c->dy[(size_t)i * N + j];
        } else {
            xsmm_rm(0, 0, B, in, N, c->dy, N, c->W, in, 0.0f, c->dx, in);
        }
        break;
    }
}

static unsigned libmask = (1u << L_N) - 1;

static int available(const ctx *c, int lib, int p) {
    if (!(libmask & (1u << lib))) return 0;
    if (lib == L_IPB) return c->ipb[p].prim != NULL;
    return 1;
}

/* Each library's result against the OpenBLAS path's, once per plan, so that a
 * fast but wrong call (a transposition libxsmm ignored, say) cannot win.
 * ipB is skipped: it runs on its own reordered (zero) weights. */
static void check(ctx *c) {
    size_t n[P_N] = {(size_t)c->B * c->out, (size_t)c->out * c->in, (size_t)c->B * c->in};
    float *outp[P_N] = {c->y, c->dW, c->dx};
    for (int p = 0; p < P_N; p++) {
        float *ref = malloc(n[p] * sizeof(float));
        if (!ref) { fprintf(stderr, "gemm: out of memory\n"); exit(1); }
        run(c, L_BLAS, p);
        memcpy(ref, outp[p], n[p] * sizeof(float));
        double scale = 0;
        for (size_t i = 0; i < n[p]; i++) scale = fmax(scale, fabs(ref[i]));
        for (int l = 0; l < L_N; l++) {
            if (l == L_BLAS || l == L_IPB || !available(c, l, p)) continue;
            memset(outp[p], 0xff, n[p] * sizeof(float));   /* NaN: must be overwritten */
            run(c, l, p);
            double err = 0;
            for (size_t i = 0; i < n[p]; i++) {
                double e = fabs((double)outp[p][i] - ref[i]);
                err = e > err || e != e ? e : err;
            }
            if (!(err <= 1e-4 * scale))
                printf("# WARNING: %s %s [%d,%d]->%d differs from openblas by %.3g (max |ref| %.3g)\n",
                       lname[l], pname[p], c->B, c->in, c->out, err, scale);
        }
        free(ref);
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *buf(size_t n, uint64_t stream_id) {
    float *p = wick_aligned_alloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "gemm: out of memory\n"); exit(1); }
    wick_fill_normal_f32(p, n, 0, 1, 7, stream_id, 0);
    return p;
}

int main(int argc, char **argv) {
    int json = 0, nsamp = 7, maxthr = 2, onlybatch = 0, nshapes = 0;
    int shapes[16][3];
    double given1 = 0, given2 = 0;
    double ms = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc) nsamp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--libs") && i + 1 < argc) {
            const char *list = argv[++i];
            libmask = 0;
            for (int l = 0; l < L_N; l++) {
                const char *h = strstr(list, lname[l]);
                /* "ip" must not match inside "ipB" */
                while (h && ((h > list && h[-1] != ',') || (h[strlen(lname[l])] && h[strlen(lname[l])] != ',')))
                    h = strstr(h + 1, lname[l]);
                if (h) libmask |= 1u << l;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) maxthr = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) onlybatch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc) {
            if (sscanf(argv[++i], "%lf,%lf", &given1, &given2) != 2 || given1 <= 0 || given2 <= 0) {
                fprintf(stderr, "gemm: --peak G1,G2 (GFLOP/s on 1 and 2 threads)\n");
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && nshapes < 16) {
            int *sh = shapes[nshapes++];
            if (sscanf(argv[++i], "%d,%d,%d", &sh[0], &sh[1], &sh[2]) != 3 || sh[0] < 1 || sh[1] < 1) {
                fprintf(stderr, "gemm: --shape IN,OUT,RELU\n");
                return 2;
            }
        }
        else {
            fprintf(stderr, "usage: %s [--json] [--samples N] [--ms T] [--libs openblas,ip,ipB,mm,xsmm] "
                            "[--threads MAX] [--batch B] [--shape IN,OUT,RELU]... [--peak G1,G2]\n", argv[0]);
            return 2;
        }
    }
    if (nsamp < 1 || nsamp > 99 || ms <= 0) { fprintf(stderr, "gemm: bad --samples/--ms\n"); return 2; }
    if (!nshapes) {
        static const int def[][3] = {{784, 512, 1}, {512, 512, 1}, {512, 10, 0}, {128, 128, 1}};
        nshapes = 4;
        memcpy(shapes, def, sizeof def);
    }
    libxsmm_init();
    DN(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    double pk1, pkn, pk1e, pkne;
    int nt;
    fma_peak(15, 50, &pk1, &pkn, &nt);
    printf("# libraries: %s; oneDNN cpu_runtime %s; libxsmm %s\n", wick_library_versions(),
           v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other", LIBXSMM_VERSION);
    printf("# FMA peak at start: 1 thread %.1f, %d threads %.1f GFLOP/s\n", pk1, nt, pkn);
    if (given1 > 0) {
        pk1 = given1;
        pkn = given2;
        printf("# percentages of the given peak: %.1f, %.1f GFLOP/s\n", pk1, pkn);
    }
    static const int batches[] = {32, 128, 512};
    if (!json)
        printf("%-12s %4s %-6s %3s | %-16s %-16s %-16s %-16s %-16s %-16s | best\n", "layer", "B", "prod",
               "thr", "wick", "openblas", "ip", "ipB", "mm", "xsmm");
    for (int s = 0; s < nshapes; s++)
        for (size_t bi = 0; bi < WICK_ARRAY_LEN(batches); bi++) {
            if (onlybatch && batches[bi] != onlybatch) continue;
            ctx c = {0};
            c.B = batches[bi]; c.in = shapes[s][0]; c.out = shapes[s][1]; c.relu = shapes[s][2];
            size_t nx = (size_t)c.B * c.in, nw = (size_t)c.out * c.in, ny = (size_t)c.B * c.out;
            c.x = buf(nx, 1); c.W = buf(nw, 2); c.b = buf(c.out, 3); c.dy = buf(ny, 4);
            c.y = buf(ny, 5); c.dW = buf(nw, 6); c.db = buf(c.out, 7); c.dx = buf(nx, 8);
            for (int t = 1; t <= nt && t <= maxthr; t++) {
                wick_set_threads(t);   /* before planning: oneDNN may plan for the team size */
                if (wick_dense_new_lib(&c.blas, c.B, c.in, c.out, c.relu, WICK_LIB_OPENBLAS) ||
                    wick_dense_new_lib(&c.ip, c.B, c.in, c.out, c.relu, WICK_LIB_ONEDNN) ||
                    wick_dense_new(&c.auto_, c.B, c.in, c.out, c.relu)) {
                    fprintf(stderr, "gemm: %s\n", wick_last_error());
                    return 1;
                }
                make_matmul(&c);
                make_ip_blocked(&c);
                if (t == 1 && !json)
                    printf("# [%d,%d]->%d: oneDNN impl: ipB fwd %s, bwd_d %s; mm fwd %s\n",
                           c.B, c.in, c.out, c.ipb[P_FWD].impl, c.ipb[P_BWD_D].impl, c.mm[P_FWD].impl);
                check(&c);
                double peak = t == 1 ? pk1 : pkn;
                for (int p = 0; p < P_N; p++) {
                    double flop = 2.0 * c.B * c.in * c.out;
                    long reps[L_N];
                    double samp[L_N][100];
                    for (int l = 0; l < L_N; l++) {
                        if (!available(&c, l, p)) continue;
                        for (int w = 0; w < 3; w++) run(&c, l, p);   /* warm caches and JIT */
                        double t0 = now();
                        run(&c, l, p);
                        double dt = now() - t0;
                        reps[l] = (long)(ms / 1e3 / (dt > 1e-7 ? dt : 1e-7)) + 1;
                    }
                    for (int k = 0; k < nsamp; k++)
                        for (int l = 0; l < L_N; l++) {
                            if (!available(&c, l, p)) continue;
                            double t0 = now();
                            for (long r = 0; r < reps[l]; r++) run(&c, l, p);
                            samp[l][k] = flop * reps[l] / (now() - t0) / 1e9;
                        }
                    char layer[32];
                    snprintf(layer, sizeof layer, "%d->%d%s", c.in, c.out, c.relu ? "" : "*");
                    int best = -1;
                    double bestv = 0, med[L_N], mx[L_N];
                    for (int l = 0; l < L_N; l++) {
                        if (!available(&c, l, p)) { med[l] = mx[l] = 0; continue; }
                        qsort(samp[l], nsamp, sizeof(double), cmp);
                        med[l] = samp[l][nsamp / 2];
                        mx[l] = samp[l][nsamp - 1];
                        if (l != L_WICK && mx[l] > bestv) { bestv = mx[l]; best = l; }
                    }
                    if (json) {
                        printf("{\"in\": %d, \"out\": %d, \"batch\": %d, \"product\": \"%s\", \"threads\": %d, "
                               "\"peak\": %.1f", c.in, c.out, c.B, pname[p], t, peak);
                        for (int l = 0; l < L_N; l++)
                            if (available(&c, l, p))
                                printf(", \"%s\": [%.1f, %.1f]", lname[l], med[l], mx[l]);
                        printf("}\n");
                    } else {
                        printf("%-12s %4d %-6s %3d |", layer, c.B, pname[p], t);
                        for (int l = 0; l < L_N; l++) {
                            if (!available(&c, l, p)) { printf(" %-16s", "-"); continue; }
                            char cell[32];
                            snprintf(cell, sizeof cell, "%3.0f/%3.0f %3.0f%%", mx[l], med[l], 100 * mx[l] / peak);
                            printf(" %-16s", cell);
                        }
                        printf(" | %s%s%s\n", best >= 0 ? lname[best] : "-",
                               c.auto_ ? (strstr(wick_dense_describe(c.auto_), p == P_FWD ? "fwd=onednn" :
                                          p == P_BWD_W ? "bwd_w=onednn" : "bwd_d=onednn") ? " [wick: ip]" : " [wick: openblas]") : "",
                               p == P_BWD_D && c.in == 784 ? " (first layer: unused)" : "");
                    }
                    fflush(stdout);
                }
                wick_dense_free(c.blas);
                wick_dense_free(c.ip);
                wick_dense_free(c.auto_);
                for (int p = 0; p < P_N; p++) { dprim_free(&c.mm[p]); dprim_free(&c.ipb[p]); }
            }
            wick_free(c.x); wick_free(c.W); wick_free(c.b); wick_free(c.dy);
            wick_free(c.y); wick_free(c.dW); wick_free(c.db); wick_free(c.dx);
        }
    fma_peak(15, 50, &pk1e, &pkne, &nt);
    printf("# FMA peak at end: 1 thread %.1f, %d threads %.1f GFLOP/s "
           "(cells: best/median GFLOP/s of %d samples, best as %% of the start peak for that "
           "thread count; the machine is shared, so best is the capability and median the noise; "
           "winner by best)\n",
           pk1e, nt, pkne, nsamp);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(eng);
    libxsmm_finalize();
    return 0;
}
