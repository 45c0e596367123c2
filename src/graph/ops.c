/* ops.c — instantiates ops_impl.h for float and double and dispatches on the
 * graph's dtype: one source per op, two precisions. */
#include "graph/graph_internal.h"
#include <string.h>
#include <tgmath.h>

/* glibc (2.35+) ships 8-wide AVX2 versions of these in libmvec, within 4 ulp;
 * its headers declare them SIMD only under -ffast-math, which would also drop
 * NaN checks.  Declaring them here lets the vectoriser call them in the float
 * activation loops (tanh, sigmoid, GELU, ...) and nowhere else. */
#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float sinf(float);
__attribute__((simd("notinbranch"))) float cosf(float);
__attribute__((simd("notinbranch"))) float log1pf(float);
__attribute__((simd("notinbranch"))) float erff(float);
#endif

#define T float
#define SFX(name) name##_f32
#define IS_FLOAT 1
#define GEMM wick_gemm_f32
#include "graph/ops_impl.h"
#undef T
#undef SFX
#undef IS_FLOAT
#undef GEMM

#define T double
#define SFX(name) name##_f64
#define IS_FLOAT 0
#define GEMM wick_gemm_f64
#include "graph/ops_impl.h"
#undef T
#undef SFX
#undef IS_FLOAT
#undef GEMM

void op_forward(wick_graph *g, node *nd) {
    if (g->dt == WICK_DT_F32) forward_f32(g, nd);
    else forward_f64(g, nd);
}

void op_backward(wick_graph *g, node *nd) {
    if (g->dt == WICK_DT_F32) backward_f32(g, nd);
    else backward_f64(g, nd);
}

size_t op_aux_elems(const wick_graph *g, const node *nd, size_t *aux2) {
    *aux2 = 0;
    switch (nd->op) {
    case OP_DENSE: {
        int k = nd->act.kind;
        if (k != WICK_ACT_LINEAR && nd->needs_grad) *aux2 = node_elems(nd);    /* dz */
        return (k == WICK_ACT_RELU || k == WICK_ACT_LINEAR) ? 0 : node_elems(nd); /* z */
    }
    case OP_XENT: return node_elems(&g->nodes[nd->in[0]]);                    /* p */
    default: return 0;
    }
}

/* Row-range kernels for the chain executor (chain.c), float only. */
void op_act_fwd_f32(wick_act a, const float *z, float *y, size_t n) { act_fwd_f32(a, z, y, n); }
void op_act_bwd_f32(wick_act a, const float *z, const float *y, const float *dy, float *dz, size_t n) {
    act_bwd_f32(a, z, y, dy, dz, n, 0);
}
double op_xent_rows_f32(const float *x, const int32_t *lab, float *p, int r0, int r1, int cols, double eps) {
    return xent_rows_f32(x, lab, p, r0, r1, cols, eps);
}
void op_xent_grad_rows_f32(const float *p, const int32_t *lab, float scale, float *dx, int r0, int r1,
                           int cols, double eps) {
    xent_grad_rows_f32(p, lab, scale, dx, r0, r1, cols, eps, 0);
}
