/* ddnet.h — private to src/experiments: the float64 network of the ddNTK
 * measurements (ddntk.c, one input; ddntk2.c, two), seen at one input x of
 * n0 components, with its exact first, second and third derivatives in the
 * parameters: the gradient by backpropagation, Hessian-vector products by
 * forward over reverse, D^3 [a, b, b] by a Taylor jet.  Parameters flat,
 * layer by layer: W^(l) row-major (n x fan-in, fan-in n0 at layer 1) then
 * b^(l). */
#ifndef WICK_DDNET_H
#define WICK_DDNET_H
#include "experiments.h"

typedef struct {
    size_t n, n0, np;
    int L;
    const wick_ntk_fluct_config *c;
    const double *x;                    /* the input, n0 */
    double *th;                         /* parameters, np */
    double *z, *s, *d, *e, *f;          /* per layer: z, sigma, sigma', sigma'', sigma''' (L x n) */
    double *dl, *ddl, *zt, *st, *t1, *t2; /* backward/tangent workspace (n each; zt, st: L x n) */
    double *jz, *jy, *ja, *jb;          /* jets: 6 x n each */
} ddnet;

/* where layer l's W starts in the flat parameters (l = L + 1: their count) */
static inline size_t ddnet_off(size_t n, size_t n0, int l) {
    return l == 1 ? 0 : (n0 + 1) * n + (size_t)(l - 2) * (n * n + n);
}
static inline size_t ddnet_fanin(size_t n, size_t n0, int l) { return l == 1 ? n0 : n; }
/* the doubles of workspace ddnet_bind takes (parameters not included) */
static inline size_t ddnet_work(size_t n, int L) {
    return 5 * (size_t)L * n + 4 * n + 2 * (size_t)L * n + 24 * n;
}

/* N sees parameters th (c->depth layers, width c->width) at input x (n0) */
void ddnet_bind(ddnet *N, const wick_ntk_fluct_config *c, size_t n0, double *th, const double *x,
                double *work);
/* network k's parameters, layer by layer from its Philox streams */
void ddnet_draw(const ddnet *N, uint64_t k);
/* z, sigma, sigma', sigma'', sigma''' of every layer */
void ddnet_forward(ddnet *N);
/* G = lambda grad(u . z^(L)) over layers 1..L (lambda_b on b, lambda_W /
 * fan-in on W); zero beyond layer L */
void ddnet_grad(ddnet *N, int L, const double *u, double *G);
/* out = Hess(u . z^(L)) a (no lambda); zero beyond layer L */
void ddnet_hvp(ddnet *N, int L, const double *u, const double *a, double *out);
/* D^3 (u . z^(L)) [a, b, b] */
double ddnet_d3(ddnet *N, int L, const double *u, const double *a, const double *b);
/* < v, lambda w > over layers 1..L */
double ddnet_dot(const ddnet *N, int L, const double *v, const double *w);
#endif
