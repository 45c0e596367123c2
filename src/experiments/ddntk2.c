/* ddntk2.c — the ddNTK means of two inputs, R, S, T, U for every sample
 * placement, measured on real finite-width networks beside
 * wick_theory_ddntk_two (the book's ch. 11; docs/theory-finite-width.md).
 * The single-input measurement (ddntk.c) with n_0 = 2 and a forward pass
 * per input (the network of ddnet.h): Rademacher probes xi, eta of layer l, G_{u;a} = lambda
 * grad(u . z_{;a}) (backpropagation), v = Hess(u . z_{;a}) w (forward over
 * reverse), D^3 (u . z_{;a})[x, y, y] (a Taylor jet); every one exact in
 * float64, so kinks are seen pathwise (sigma'' = sigma''' = 0 beside one).
 *   D^3 (xi.z_a0)[G_{xi;a1}, G_{eta;a2}, G_{eta;a3}]  -> sum_jm ddI_{jjmm}  (R, n^2 times)
 *   <Hess(xi.z_a1) G_{eta;a3}, Hess(xi.z_a2) G_{eta;a4}> -> sum_jm ddII_{jjmm} (S)
 *   <Hess(xi.z_a1) G_{xi;a3}, Hess(eta.z_a2) G_{eta;a4}> -> sum_jm ddII_{jmjm} (T)
 *   <Hess(xi.z_a1) G_{eta;a3}, Hess(eta.z_a2) G_{xi;a4}> -> sum_jm ddII_{jmmj} (U)
 * times n_{l-1}/n^2: the tensor + O(1/n).  D^3 with two different
 * directions by polarisation, D^3[x, y, w] = (D^3[x, y+w, y+w] -
 * D^3[x, y-w, y-w]) / 4. */
#include "ddnet.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* per network k: st[(l-1)*64 + 16 t + 8 a0 + 4 a1 + 2 a2 + a3], t = R, S, T, U.
 * ws: 20 parameter vectors + 2 probes + 2 forward workspaces */
static void d2_network(const wick_ntk_fluct_config *c, const double x[2][2], uint64_t k, double *ws,
                       double *st) {
    size_t n = c->width, np = ddnet_off(n, 2, c->depth + 1), L = (size_t)c->depth;
    double *th = ws, *G = th + np, *V = G + 4 * np, *p1 = V + 16 * np, *p2 = p1 + np,
           *xi = p2 + np, *eta = xi + n, *w0 = eta + n, *w1 = w0 + ddnet_work(n, c->depth);
    ddnet N[2];
    ddnet_bind(&N[0], c, 2, th, x[0], w0);
    ddnet_bind(&N[1], c, 2, th, x[1], w1);
    ddnet_draw(&N[0], k);
    ddnet_forward(&N[0]);
    ddnet_forward(&N[1]);
    memset(st, 0, sizeof(double) * 64 * L);
    for (int l = 2; l <= c->depth; l++) {
        ex_fill_normal(xi, n, c->seed, ex_stream(k, 0xC0000 | l), 0);
        ex_fill_normal(eta, n, c->seed, ex_stream(k, 0xD0000 | l), 0);
        for (size_t i = 0; i < n; i++) {
            xi[i] = xi[i] >= 0 ? 1.0 : -1.0;
            eta[i] = eta[i] >= 0 ? 1.0 : -1.0;
        }
        const double *pr[2] = {xi, eta};
        /* G[(2u + a) np]: G_{u;a};  V[(8u + 4a + 2w + b) np]: Hess(u.z_a) G_{w;b} */
        for (int u = 0; u < 2; u++)
            for (int a = 0; a < 2; a++) ddnet_grad(&N[a], l, pr[u], G + (size_t)(2 * u + a) * np);
        for (int u = 0; u < 2; u++)
            for (int a = 0; a < 2; a++)
                for (int w = 0; w < 2; w++)
                    for (int b = 0; b < 2; b++)
                        ddnet_hvp(&N[a], l, pr[u], G + (size_t)(2 * w + b) * np,
                               V + (size_t)(8 * u + 4 * a + 2 * w + b) * np);
        double nrm = 1.0 / (double)n, *o = st + (size_t)(l - 1) * 64;
#define GV(u, a) (G + (size_t)(2 * (u) + (a)) * np)
#define VV(u, a, w, b) (V + (size_t)(8 * (u) + 4 * (a) + 2 * (w) + (b)) * np)
        for (int a0 = 0; a0 < 2; a0++)
            for (int a1 = 0; a1 < 2; a1++)
                for (int a2 = 0; a2 < 2; a2++)
                    for (int a3 = 0; a3 < 2; a3++) {
                        int ix = 8 * a0 + 4 * a1 + 2 * a2 + a3;
                        double d3;
                        if (a2 == a3) {
                            d3 = ddnet_d3(&N[a0], l, xi, GV(0, a1), GV(1, a2));
                        } else {
                            for (size_t i = 0; i < np; i++) {
                                p1[i] = GV(1, a2)[i] + GV(1, a3)[i];
                                p2[i] = GV(1, a2)[i] - GV(1, a3)[i];
                            }
                            d3 = 0.25 * (ddnet_d3(&N[a0], l, xi, GV(0, a1), p1) -
                                         ddnet_d3(&N[a0], l, xi, GV(0, a1), p2));
                        }
                        o[ix] = nrm * d3;
                        o[16 + ix] = nrm * ddnet_dot(&N[0], l, VV(0, a0, 1, a2), VV(0, a1, 1, a3));
                        o[32 + ix] = nrm * ddnet_dot(&N[0], l, VV(0, a0, 0, a2), VV(1, a1, 1, a3));
                        o[48 + ix] = nrm * ddnet_dot(&N[0], l, VV(0, a0, 1, a2), VV(1, a1, 0, a3));
                    }
#undef GV
#undef VV
    }
}

wick_status wick_ddntk_two_measure(const wick_ntk_fluct_config *c, const double G0[4], double *val,
                                   double *se) {
    if (!c || !G0 || !val || !se) return wick_fail(WICK_EINVAL, "two-input ddntk: no input or output");
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "two-input ddntk: %s has no derivative (a delta)",
                         wick_act_name(c->act));
    if (c->depth < 1 || c->depth > 64 || c->width < 2 || c->width > 2048 ||
        (size_t)c->depth * c->width * c->width > ((size_t)1 << 24))
        return wick_fail(WICK_EINVAL, "two-input ddntk: depth %d, width %zu: expected 1..64, "
                         "2..2048, depth x width^2 <= 2^24", c->depth, c->width);
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "two-input ddntk: %zu networks, expected at least 2",
                         c->samples);
    if (!(G0[0] > 0) || !(G0[3] > 0) || !(G0[0] * G0[3] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "two-input ddntk: the Gram matrix is not positive "
                         "semi-definite");
    double x[2][2];   /* x_a . x_b / 2 = G0_ab */
    ex_two_inputs(G0, x);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples, np = ddnet_off(n, 2, c->depth + 1);
    int nt = wick_threads();
    size_t per_t = 23 * np + 2 * n + 2 * ddnet_work(n, c->depth);
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * 64);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "two-input ddntk: out of memory (width %zu, %zu networks)",
                         n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
    for (size_t k = 0; k < M; k++)
        d2_network(c, (const double(*)[2])x, k, bufs + per_t * (size_t)omp_get_thread_num(),
                   stats + k * L * 64);
    ex_mean_se(stats, M, L * 64, val, se);
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}
