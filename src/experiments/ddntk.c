/* ddntk.c — the two ddNTKs of real finite-width networks (the book's ch.
 * 11; docs/theory-finite-width.md): their means R, S, T, U measured over M
 * networks beside wick_theory_ddntk.
 *
 * With G_i = lambda grad z_i and v_ab = Hess(z_a) G_b (parameters of
 * layers 1..l, layer l's preactivations z):
 *   ddI_i0i1i2i3  = D^3 z_i0 [G_i1, G_i2, G_i3],
 *   ddII_i1i2i3i4 = < v_i1i3, lambda v_i2i4 >.
 * Both are n^4 tensors; what is computed instead are their contractions
 * with two Rademacher probes xi, eta of layer l (Hutchinson: E[xi_a xi_b]
 * = delta_ab), each an exact derivative of the scalar u . z:
 *   D^3 (xi.z) [G_xi, G_eta, G_eta]      -> sum_jm ddI_jjmm  = (n^2 + 2n) R / n_{l-1}
 *   |Hess(xi.z) G_eta|^2_lambda          -> sum_jm ddII_jjmm = (n^2 S + n T + n U) / n_{l-1}
 *   <Hess(xi.z) G_xi, Hess(eta.z) G_eta> -> sum_jm ddII_jmjm (T, n^2 times)
 *   <Hess(xi.z) G_eta, Hess(eta.z) G_xi> -> sum_jm ddII_jmmj (U, n^2 times)
 * with G_u = lambda grad(u.z).  Times n_{l-1}/n^2 each estimates its tensor
 * + O(1/n).  The gradient by backpropagation, Hess(u.z) a by its forward
 * tangent (forward over reverse), and D^3 (u.z)[a, b, b] by a Taylor jet in
 * two variables, f(theta + s a + t b) truncated at s t^2: all exact, so
 * kinks need no care (sigma'' = sigma''' = 0 on either side; the
 * probability that a preactivation sits exactly on one is 0). */
#include "ddnet.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* The network (ddnet.h) has one input, x = sqrt(q); its parameters first
 * in a thread's buffer, then its workspace. */
static size_t dd_doubles(size_t n, int L) { return ddnet_off(n, 1, L + 1) + ddnet_work(n, L); }

static wick_status dd_check(const wick_ntk_fluct_config *c, const char *what) {
    if (!c) return wick_fail(WICK_EINVAL, "%s: no configuration given", what);
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "%s: %s has no derivative (a delta): its ddNTKs are "
                         "undefined", what, wick_act_name(c->act));
    double v[5] = {c->cb, c->cw, c->lambda_b, c->lambda_w, c->q};
    static const char *nm[5] = {"C_b", "C_W", "lambda_b", "lambda_w", "q"};
    for (int i = 0; i < 5; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            return wick_fail(WICK_EINVAL, "%s: %s = %g must be finite and non-negative", what,
                             nm[i], v[i]);
    if (c->depth < 1 || c->depth > 64)
        return wick_fail(WICK_EINVAL, "%s: depth %d, expected 1..64", what, c->depth);
    if (c->width < 2 || c->width > 2048)
        return wick_fail(WICK_EINVAL, "%s: width %zu, expected 2..2048", what, c->width);
    if ((size_t)c->depth * c->width * c->width > ((size_t)1 << 25))
        return wick_fail(WICK_EINVAL, "%s: depth %d x width %zu^2 is over 2^25", what, c->depth,
                         c->width);
    return WICK_OK;
}

size_t wick_ddntk_nparams(const wick_ntk_fluct_config *c) {
    if (!c || c->depth < 1) return 0;
    return ddnet_off(c->width, 1, c->depth + 1);
}

wick_status wick_ddntk_probe(const wick_ntk_fluct_config *c, uint64_t k, const double *at,
                             const double *u, const double *a, const double *b, double *G,
                             double *hvp, double *d3) {
    wick_status st = dd_check(c, "ddntk");
    if (st) return st;
    if (!u || (hvp && !a) || (d3 && (!a || !b)))
        return wick_fail(WICK_EINVAL, "ddntk: a probe or direction is missing");
    double *buf = wick_malloc(sizeof(double) * dd_doubles(c->width, c->depth));
    if (!buf) return wick_fail(WICK_ENOMEM, "ddntk: out of memory (width %zu)", c->width);
    double x = sqrt(c->q);
    ddnet N;
    ddnet_bind(&N, c, 1, buf, &x, buf + ddnet_off(c->width, 1, c->depth + 1));
    if (at) memcpy(N.th, at, sizeof(double) * N.np);
    else ddnet_draw(&N, k);
    ddnet_forward(&N);
    if (G) ddnet_grad(&N, c->depth, u, G);
    if (hvp) ddnet_hvp(&N, c->depth, u, a, hvp);
    if (d3) *d3 = ddnet_d3(&N, c->depth, u, a, b);
    wick_free(buf);
    return WICK_OK;
}

/* Per network k: stats[(l-1)*4 + {R,S,T,U}] (0 at l = 1).  vec: 6 parameter
 * vectors and 2 probes of workspace. */
static void dd_network(ddnet *N, uint64_t k, double *vec, double *stats) {
    size_t n = N->n, np = N->np;
    const wick_ntk_fluct_config *c = N->c;
    double *Gx = vec, *Ge = Gx + np, *vxe = Ge + np, *vex = vxe + np, *vxx = vex + np,
           *vee = vxx + np, *xi = vee + np, *eta = xi + n;
    ddnet_draw(N, k);
    ddnet_forward(N);
    memset(stats, 0, sizeof(double) * 4);
    for (int l = 2; l <= N->L; l++) {
        /* the probes: signs of Philox normals on streams of their own per layer */
        ex_fill_normal(xi, n, c->seed, ex_stream(k, 0xC0000 | l), 0);
        ex_fill_normal(eta, n, c->seed, ex_stream(k, 0xD0000 | l), 0);
        for (size_t i = 0; i < n; i++) {
            xi[i] = xi[i] >= 0 ? 1.0 : -1.0;
            eta[i] = eta[i] >= 0 ? 1.0 : -1.0;
        }
        ddnet_grad(N, l, xi, Gx);
        ddnet_grad(N, l, eta, Ge);
        ddnet_hvp(N, l, xi, Ge, vxe);
        ddnet_hvp(N, l, eta, Gx, vex);
        ddnet_hvp(N, l, xi, Gx, vxx);
        ddnet_hvp(N, l, eta, Ge, vee);
        double nrm = 1.0 / (double)n;   /* n_{l-1} / n^2, n_{l-1} = n */
        double *o = stats + (size_t)(l - 1) * 4;
        o[0] = nrm * ddnet_d3(N, l, xi, Gx, Ge);
        o[1] = nrm * ddnet_dot(N, l, vxe, vxe);
        o[2] = nrm * ddnet_dot(N, l, vxx, vee);
        o[3] = nrm * ddnet_dot(N, l, vxe, vex);
    }
}

wick_status wick_ddntk_measure(const wick_ntk_fluct_config *c, double *val, double *se) {
    wick_status st = dd_check(c, "ddntk ensemble");
    if (st) return st;
    if (!val || !se) return wick_fail(WICK_EINVAL, "ddntk ensemble: no output arrays");
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "ddntk ensemble: %zu networks, expected at least 2",
                         c->samples);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples, np = ddnet_off(n, 1, c->depth + 1);
    int nt = wick_threads();
    size_t per_t = dd_doubles(n, c->depth) + 6 * np + 2 * n;
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * 4);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "ddntk ensemble: out of memory (width %zu, %zu networks)",
                         n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
    for (size_t k = 0; k < M; k++) {
        double *buf = bufs + per_t * (size_t)omp_get_thread_num(), x = sqrt(c->q);
        ddnet N;
        ddnet_bind(&N, c, 1, buf, &x, buf + np);
        dd_network(&N, k, buf + dd_doubles(n, c->depth), stats + k * L * 4);
    }
    ex_mean_se(stats, M, L * 4, val, se);
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}

wick_status wick_ddntk_draw(const wick_ntk_fluct_config *c, uint64_t k, double *theta) {
    wick_status st = dd_check(c, "ddntk");
    if (st) return st;
    if (!theta) return wick_fail(WICK_EINVAL, "ddntk: no parameter output");
    ddnet N;
    N.n = c->width; N.n0 = 1; N.L = c->depth; N.c = c; N.th = theta;
    ddnet_draw(&N, k);
    return WICK_OK;
}
