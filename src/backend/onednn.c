/* onednn.c — a dense layer's products through oneDNN (C API, 2.6).
 *
 * Planned once per shape: primitive descriptors and primitives; one
 * dnnl_memory per tensor argument, created without data (DNNL_MEMORY_NONE)
 * and pointed at the caller's arrays with dnnl_memory_set_data_handle on each
 * call; a user-managed scratchpad per primitive, allocated here, so that
 * oneDNN allocates nothing per execution.  Layouts are plain (tag ab), the
 * interface's layout, so there are no reorders.  Each product has its own
 * scratchpad so that an executor may overlap the two backward products of
 * different layers. */
#include "backend/onednn.h"
#include "core/core.h"
#include <dnnl.h>
#include <dnnl_debug.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAXARGS 5

typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[MAXARGS];
    int nargs;
    void *scratch;
} product;

struct wick_onednn_dense {
    int batch, in, out, relu;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    product p[WICK_PROD_COUNT];
    float *zero_bias;   /* forward called without a bias: oneDNN adds these zeros */
    float *junk_bias;   /* backward weights called without db: the bias gradient lands here */
};

static wick_status dnnl_err(dnnl_status_t s, const char *what, const wick_onednn_dense *d) {
    return wick_fail(s == dnnl_unimplemented ? WICK_EUNSUPPORTED : WICK_EINVAL,
                     "oneDNN dense [%d, %d] -> %d: %s failed: %s", d->batch, d->in, d->out, what,
                     dnnl_status2str(s));
}

#define TRY(call, what)                                                                           \
    do {                                                                                          \
        dnnl_status_t s_ = (call);                                                                \
        if (s_ != dnnl_success) return dnnl_err(s_, what, d);                                     \
    } while (0)

/* The primitive for p->pd, a memory object for each argument ids[i] (its
 * descriptor is query q[i], index qi[i], of the primitive descriptor), and
 * the scratchpad. */
static wick_status make_product(wick_onednn_dense *d, product *p, const int *ids,
                                const dnnl_query_t *q, const int *qi, int n) {
    TRY(dnnl_primitive_create(&p->prim, p->pd), "primitive_create");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    for (int i = 0; i <= n; i++) {
        const dnnl_memory_desc_t *md;
        int arg;
        if (i < n) {
            md = dnnl_primitive_desc_query_md(p->pd, q[i], qi[i]);
            arg = ids[i];
        } else {
            if (!sz) break;
            md = smd;
            arg = DNNL_ARG_SCRATCHPAD;
        }
        if (!md) return wick_fail(WICK_EINVAL, "oneDNN dense: no descriptor for argument %d", arg);
        TRY(dnnl_memory_create(&p->args[p->nargs].memory, md, d->eng, DNNL_MEMORY_NONE),
            "memory_create");
        p->args[p->nargs].arg = arg;
        p->nargs++;
    }
    if (sz) {
        if (!(p->scratch = wick_aligned_alloc(sz)))
            return wick_fail(WICK_ENOMEM, "oneDNN dense: out of memory for a %zu-byte scratchpad", sz);
        TRY(dnnl_memory_set_data_handle(p->args[n].memory, p->scratch), "set scratchpad");
    }
    return WICK_OK;
}

static wick_status plan(wick_onednn_dense *d, unsigned need) {
    dnnl_memory_desc_t x_md, w_md, b_md, y_md;
    dnnl_dims_t xd = {d->batch, d->in}, wd = {d->out, d->in}, bd = {d->out}, yd = {d->batch, d->out};
    TRY(dnnl_memory_desc_init_by_tag(&x_md, 2, xd, dnnl_f32, dnnl_ab), "x desc");
    TRY(dnnl_memory_desc_init_by_tag(&w_md, 2, wd, dnnl_f32, dnnl_ab), "W desc");
    TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a), "b desc");
    TRY(dnnl_memory_desc_init_by_tag(&y_md, 2, yd, dnnl_f32, dnnl_ab), "y desc");

    /* forward: y = x W^T + b, then ReLU as an eltwise post-op */
    dnnl_primitive_attr_t fattr = NULL, battr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_inner_product_desc_t fd, bwd, bdd;
    dnnl_primitive_desc_t fwd_hint = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&fattr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(fattr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && d->relu) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success) st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(fattr, po);
    }
    if (st == dnnl_success)
        st = dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &x_md, &w_md, &b_md, &y_md);
    /* the backward primitives take the forward descriptor as a hint even when
     * another library serves the forward product */
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&fwd_hint, &fd, fattr, d->eng, NULL);
    if (st == dnnl_success) st = dnnl_primitive_attr_create(&battr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(battr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && (need & (1u << WICK_PROD_BWD_W))) {
        st = dnnl_inner_product_backward_weights_desc_init(&bwd, &x_md, &w_md, &b_md, &y_md);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&d->p[WICK_PROD_BWD_W].pd, &bwd, battr, d->eng, fwd_hint);
    }
    if (st == dnnl_success && (need & (1u << WICK_PROD_BWD_D))) {
        st = dnnl_inner_product_backward_data_desc_init(&bdd, &x_md, &w_md, &y_md);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&d->p[WICK_PROD_BWD_D].pd, &bdd, battr, d->eng, fwd_hint);
    }
    if (po) dnnl_post_ops_destroy(po);
    if (fattr) dnnl_primitive_attr_destroy(fattr);
    if (battr) dnnl_primitive_attr_destroy(battr);
    if (st != dnnl_success) {
        if (fwd_hint) dnnl_primitive_desc_destroy(fwd_hint);
        return dnnl_err(st, "primitive descriptor", d);
    }
    if (need & (1u << WICK_PROD_FWD)) d->p[WICK_PROD_FWD].pd = fwd_hint;
    else dnnl_primitive_desc_destroy(fwd_hint);

    wick_status s = WICK_OK;
    if (need & (1u << WICK_PROD_FWD)) {
        int ids[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        dnnl_query_t q[] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md, dnnl_query_dst_md};
        int qi[] = {0, 0, 1, 0};
        s = make_product(d, &d->p[WICK_PROD_FWD], ids, q, qi, 4);
    }
    if (!s && (need & (1u << WICK_PROD_BWD_W))) {
        int ids[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
        dnnl_query_t q[] = {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md,
                            dnnl_query_diff_weights_md};
        int qi[] = {0, 0, 0, 1};
        s = make_product(d, &d->p[WICK_PROD_BWD_W], ids, q, qi, 4);
    }
    if (!s && (need & (1u << WICK_PROD_BWD_D))) {
        int ids[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        dnnl_query_t q[] = {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md};
        int qi[] = {0, 0, 0};
        s = make_product(d, &d->p[WICK_PROD_BWD_D], ids, q, qi, 3);
    }
    return s;
}

/* oneDNN generates its GEMM's JIT kernels (the inner products run on them)
 * on the process's first GEMM call, not when a primitive is made: ~15 ms on
 * the Zen 3, which fell in a conv net's first training step (its dense
 * layer's forward, 17.3 ms against 2.4 after; bench/README.md, "The conv
 * net's loop against its step").  One small product at the first plan makes
 * them, once per process, with the plans' other one-time work; the same
 * kernels run after, so the same bits.  WICK_GEMM_WARM=0 leaves it to the
 * first product (A/B). */
static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;

static void gemm_warm(void) {
    float a[64] = {0}, b[64] = {0}, c[64];
    dnnl_sgemm('N', 'N', 8, 8, 8, 1.0f, a, 8, b, 8, 0.0f, c, 8);
}

wick_status wick_onednn_dense_new(wick_onednn_dense **out, int batch, int in, int outdim,
                                  int relu, unsigned need) {
    *out = NULL;
    if (batch <= 0 || in <= 0 || outdim <= 0)
        return wick_fail(WICK_EINVAL, "oneDNN dense: non-positive shape [%d, %d] -> %d", batch, in, outdim);
    wick_onednn_dense *d = wick_calloc(1, sizeof *d);
    if (!d) return wick_fail(WICK_ENOMEM, "oneDNN dense: out of memory");
    d->batch = batch; d->in = in; d->out = outdim; d->relu = relu;
    wick_status s = WICK_OK;
    dnnl_status_t st = dnnl_engine_create(&d->eng, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags);
    if (st != dnnl_success) s = dnnl_err(st, "engine/stream", d);
    if (!s) {
        d->zero_bias = wick_aligned_alloc((size_t)outdim * sizeof(float));
        d->junk_bias = wick_aligned_alloc((size_t)outdim * sizeof(float));
        if (!d->zero_bias || !d->junk_bias) s = wick_fail(WICK_ENOMEM, "oneDNN dense: out of memory");
        else memset(d->zero_bias, 0, (size_t)outdim * sizeof(float));
    }
    if (!s) s = plan(d, need);
    if (s) { wick_onednn_dense_free(d); return s; }
    if (!getenv("WICK_GEMM_WARM") || atoi(getenv("WICK_GEMM_WARM"))) pthread_once(&gemm_once, gemm_warm);
    *out = d;
    return WICK_OK;
}

void wick_onednn_dense_free(wick_onednn_dense *d) {
    if (!d) return;
    for (int i = 0; i < WICK_PROD_COUNT; i++) {
        product *p = &d->p[i];
        for (int a = 0; a < p->nargs; a++) dnnl_memory_destroy(p->args[a].memory);
        if (p->prim) dnnl_primitive_destroy(p->prim);
        if (p->pd) dnnl_primitive_desc_destroy(p->pd);
        wick_free(p->scratch);
    }
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->eng) dnnl_engine_destroy(d->eng);
    wick_free(d->zero_bias);
    wick_free(d->junk_bias);
    wick_free(d);
}

/* Points the product's first n arguments at ptr[0..n) and runs it.  Execution
 * on a CPU engine with valid handles does not fail in practice; the interface
 * returns void, so a failure would show as wrong numbers in the tests. */
static void run(wick_onednn_dense *d, product *p, void *const *ptr, int n) {
    for (int i = 0; i < n; i++) dnnl_memory_set_data_handle(p->args[i].memory, ptr[i]);
    dnnl_primitive_execute(p->prim, d->stream, p->nargs, p->args);
    dnnl_stream_wait(d->stream);
}

void wick_onednn_forward(wick_onednn_dense *d, const float *x, const float *W, const float *b,
                         float *y) {
    void *ptr[] = {(void *)x, (void *)W, (void *)(b ? b : d->zero_bias), y};
    run(d, &d->p[WICK_PROD_FWD], ptr, 4);
}

void wick_onednn_backward_weights(wick_onednn_dense *d, const float *x, const float *dy,
                                  float *dW, float *db) {
    void *ptr[] = {(void *)x, (void *)dy, dW, db ? db : d->junk_bias};
    run(d, &d->p[WICK_PROD_BWD_W], ptr, 4);
}

void wick_onednn_backward_data(wick_onednn_dense *d, const float *dy, const float *W, float *dx) {
    void *ptr[] = {(void *)dy, (void *)W, dx};
    run(d, &d->p[WICK_PROD_BWD_D], ptr, 3);
}

const char *wick_onednn_impl(const wick_onednn_dense *d, int p) {
    const char *s = NULL;
    if (d && p >= 0 && p < WICK_PROD_COUNT && d->p[p].pd)
        dnnl_primitive_desc_query(d->p[p].pd, dnnl_query_impl_info_str, 0, &s);
    return s ? s : "";
}

int wick_onednn_uses_openmp(void) { return dnnl_version()->cpu_runtime == DNNL_RUNTIME_OMP; }
