/* experiments.h — private to src/experiments: helpers shared by the
 * ensemble, empirical-NTK and training experiments. */
#ifndef WICK_EXPERIMENTS_H
#define WICK_EXPERIMENTS_H
#include "core/core.h"
#include <math.h>

/* The Philox stream of network k's layer l (1-based): every network and layer
 * has its own stream, so network k is the same whatever M, the thread count
 * or the depth (a depth-16 network is the first 16 layers of the depth-64
 * one with the same seed and index). */
static inline uint64_t ex_stream(uint64_t k, int l) { return (k << 20) | (uint64_t)l; }
#define EX_MAX_DEPTH ((1 << 20) - 1)

/* x[i] = wick_rand_normal(seed, stream, offset + i) for i < n (the same
 * Philox bits and Box-Muller pairs, to within a few ulps: with AVX2, four
 * blocks at a time with glibc's vector log/sin/cos), using both halves of
 * each pair: about 10x faster than drawing one by one.  The values depend
 * only on the arguments (and the build), never on the thread count. */
static inline void ex_fill_normal(double *x, size_t n, uint64_t seed, uint64_t stream,
                                  uint64_t offset) {
    wick_fill_normal_fast(x, n, seed, stream, offset);
}

/* The covariance's symmetric square root factor: F (n x n) with F F^T = K,
 * from the eigendecomposition with negative eigenvalues (rounding) set to
 * 0, so rank-deficient Grams (repeated inputs) work.  WICK_ENUMERIC if an
 * eigenvalue is clearly negative (K is not PSD). */
wick_status ex_sqrt_psd(const double *K, size_t n, double *F);

/* The MLP of docs/theory.md §1 in float64 with hidden and output width n (n_0 = n0),
 * weights drawn as wick_ensemble_run draws them for network k.  Raw standard
 * normals: W^(l) = sqrt(C_W/n_{l-1}) * raw, b^(l) = sqrt(C_b) * raw.  The
 * layer-l stream holds W (row-major [n_l, n_{l-1}]) then b. */
void ex_draw_layer(double *W, double *b, size_t nout, size_t nin, double cb, double cw,
                   uint64_t seed, uint64_t k, int l);
/* The mean of y[0..M) with control variates cv[k*p + a] (p <= 64, each of
 * known mean 0) regressed out over the M samples (least squares, a small
 * ridge for collinear controls), and its standard error from the residual.
 * Deterministic order (src/experiments/ntk_ensemble.c). */
void ex_cv_mean(const double *y, const double *cv, size_t M, int p, double *mean, double *se);
/* Per statistic q < P of stats[k*P + q] (network k < M, M >= 2): val[q] its
 * mean over the networks, se[q] the mean's standard error (the sample
 * variance with M - 1).  Sums in network order, so the result does not
 * depend on the thread count that filled stats (src/experiments/fit.c). */
void ex_mean_se(const double *stats, size_t M, size_t P, double *val, double *se);
/* Cov(u, v) and its standard error over M mirror pairs (u = cu . x, v = cv . x
 * on ncol columns a network; fit.c). */
void ex_pair_cov(const double *x, size_t M, int ncol, const double *cu, const double *cv,
                 double *val, double *se);

/* The two inputs (n_0 = 2) of the two-input measurements, rows of x, with
 * x_a . x_b / 2 = G0_ab (G0 row-major 2 x 2, G0_11 > 0; the callers check
 * it): the Cholesky factor, the second input's remainder clamped at 0 so a
 * Gram that rounding leaves barely indefinite gives parallel inputs. */
static inline void ex_two_inputs(const double G0[4], double x[2][2]) {
    x[0][0] = sqrt(2 * G0[0]); x[0][1] = 0;
    x[1][0] = 2 * G0[1] / x[0][0];
    double r2 = 2 * G0[3] - x[1][0] * x[1][0];
    x[1][1] = sqrt(r2 > 0 ? r2 : 0);
}

/* Gradient descent of network k (m) on its nt training inputs (the first nt
 * rows of x, targets tg) at rate eta: T > 0, T steps; T <= 0, fully trained:
 * until every training output is within 1e-14 of its target (relative to
 * 1 + |target|; checked every 8 steps, at most 10^6 steps), and then within
 * 1e-12 or WICK_ENUMERIC naming network k.  Then z = the outputs at all nx
 * inputs (the training ones first), *steps the steps taken. */
wick_status ex_gd_train(wick_net64 *m, const double *x, size_t nx, const double *tg, size_t nt, double eta,
                        long T, size_t k, double *z, long *steps);
#endif
