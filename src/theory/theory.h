/* theory.h — private to src/theory: the quadrature engine behind the
 * Gaussian expectations of docs/theory.md §2, shared by the flows and the tests. */
#ifndef WICK_THEORY_H
#define WICK_THEORY_H
#include "core/core.h"

/* Basis functions of one preactivation z; the flows need expectations of
 * products B_a(z1) B_b(z2), which th_expect2 computes for requested pairs. */
enum {
    TB_ONE = 0, TB_S, TB_S1, TB_S2,  /* 1, sigma, sigma', sigma'' */
    TB_SQ, TB_CUBE, TB_QUART,        /* sigma^2, sigma^3, sigma^4 */
    TB_S1SQ, TB_SS2,                 /* sigma'^2, sigma sigma'' */
    TB_ZS, TB_ZSS1,                  /* z sigma, z sigma sigma' */
    TB_S1QUART, TB_SQS1SQ,           /* sigma'^4, sigma^2 sigma'^2 */
    TB_Z2S1SQ, TB_Z4S1SQ,            /* z^2 sigma'^2, z^4 sigma'^2 */
    TB_Z2DSQ,                        /* z^2 (sigma'^2 + sigma sigma'') */
    TB_S1CUBE,                       /* sigma'^3 */
    TB_SS1, TB_SQS1, TB_SS1SQ,       /* sigma sigma', sigma^2 sigma', sigma sigma'^2 */
    TB_ZS1,                          /* z sigma' */
    TB_SS1SQS2,                      /* sigma sigma'^2 sigma'' (the dNTK's P, Q) */
    TB_COUNT
};

typedef struct { int a, b; } th_pair;

/* A test function outside wick_act for the quadrature: erf(z), whose pair
 * expectation has a closed form (docs/theory.md §2).  Only th_expect1/2 accept it. */
#define TH_ACT_ERF ((wick_act_kind)100)

/* How to integrate: TH_AUTO picks Gauss-Hermite for smooth activations at
 * small variance and the graded composite Gauss-Legendre rule otherwise. */
enum { TH_AUTO = 0, TH_HERMITE, TH_COMPOSITE };
typedef struct {
    int method;
    int gh_n;      /* Gauss-Hermite nodes (default TH_GH_N) */
    int leg_m;     /* Gauss-Legendre nodes per panel (default TH_LEG_M) */
} th_quad;

#define TH_GH_N 96
#define TH_LEG_M 16
#define TH_GH_MAX 1024
#define TH_LEG_MAX 64

/* Probabilists' Gauss-Hermite nodes and weights (weights sum to 1), and
 * Gauss-Legendre on [-1, 1]; computed once (Golub-Welsch, LAPACKE_dstev). */
/* E[z^k] for z ~ N(0, K): (k-1)!! K^(k/2), 0 for odd k (the gd algebras' means). */
double th_gauss_moment(int k, double K);
wick_status th_hermite(int n, const double **x, const double **w);
wick_status th_legendre(int m, const double **x, const double **w);

/* out[k] = <B_{p[k].a}(z1) B_{p[k].b}(z2)> over [[K11,K12],[K12,K22]] by
 * quadrature (no closed forms).  q may be NULL.  The covariance must be
 * valid (checked by the callers). */
wick_status th_expect2(wick_act act, double K11, double K12, double K22, int np,
                       const th_pair *p, double *out, const th_quad *q);
/* out[k] = <B_{b[k]}(z)>, z ~ N(0, K). */
wick_status th_expect1(wick_act act, double K, int nb, const int *b, double *out,
                       const th_quad *q);

/* The scale-invariant class sigma = a+ z (z >= 0), a- z (z < 0): 1 with a+, a-. */
int th_scale_invariant(wick_act act, double *ap, double *am);
/* Closed forms (docs/theory.md §2): <sigma sigma> and <sigma' sigma'> for the scale-
 * invariant class, <sigma sigma> for the perceptron.  G11 = dG/dK11 (the
 * diagonal variable) for the scale-invariant class. */
void th_si_pair(double ap, double am, double K11, double K12, double K22, double *ss,
                double *s1s1, double *dss_dK11, double *dss_dK22);
double th_perceptron_pair(double K11, double K12, double K22);
/* sin: <sin z1 sin z2> and <cos z1 cos z2> (either may be NULL). */
void th_sin_pair(double K11, double K12, double K22, double *ss, double *cc);

/* Validates a 2x2 covariance and clamps |K12| to sqrt(K11 K22) when it is
 * over by rounding only; `what` names it in the message. */
wick_status th_check_cov(double K11, double *K12, double K22, const char *what);

/* <sigma sigma> and (if s1s1) <sigma' sigma'> for one entry, closed form
 * where one exists. */
wick_status th_pair_ss(wick_act act, double K11, double K12, double K22, double *ss,
                       double *s1s1);

/* <sigma^2>, <sigma^4>, <sigma'^2> and d<sigma^2>/dK at K, one preactivation
 * z ~ N(0, K): closed forms for the scale-invariant class and sin, quadrature
 * else; NAN where the perceptron's delta makes them undefined
 * (src/theory/flow.c; the MLP's and the residual net's single-input flows). */
typedef struct { double s2, s4, s1s1, ds2; } th_mom1;
wick_status th_moments1(wick_act act, double K, th_mom1 *m);

/* Layer l's C_b, C_W, lambda_b, lambda_W (l = 1..L) and width n_l (l = 0..L):
 * the per-layer array where given, else the scalar (wick_theory_config). */
static inline double th_cb_at(const wick_theory_config *c, int l) {
    return c->cb_l ? c->cb_l[l - 1] : c->cb;
}
static inline double th_cw_at(const wick_theory_config *c, int l) {
    return c->cw_l ? c->cw_l[l - 1] : c->cw;
}
static inline double th_lb_at(const wick_theory_config *c, int l) {
    return c->lambda_b_l ? c->lambda_b_l[l - 1] : c->lambda_b;
}
static inline double th_lw_at(const wick_theory_config *c, int l) {
    return c->lambda_w_l ? c->lambda_w_l[l - 1] : c->lambda_w;
}
static inline double th_width_at(const wick_theory_config *c, int l) {
    return (double)(c->width_l ? c->width_l[l] : c->width);
}

/* finite.c's one-input moments at variance K: g = <s^2>, h = <s'^2> and
 * their first two K-derivatives, <s^4>, <s'^4>, <s^2 s'^2>, ss2 = <s s''>,
 * x3 = <s s'^2 s''> (closed forms where they exist). */
typedef struct { double g, g1, g2, h, h1, h2, s4, p4, sp, ss2, x3; } th_fmom;
wick_status th_finite_moments(wick_act act, double K, th_fmom *m);
/* <u(z_a) u(z_b)> for u = sigma (v[0]) or sigma' (v[1]) over the ordered pairs
 * p = 2a + b of the 2 x 2 kernel k (k[0], k[1], k[3]): value, gradient and
 * Hessian in the ordered-pair variables (finite.c: central differences of
 * th_pair_ss off the diagonal). */
typedef struct { double v[2][4], g[2][4][4], h[2][4][4][4]; } th_pderiv;
wick_status th_pair_derivs(wick_act act, const double *k, th_pderiv *P);
/* th_expect1/2's basis function for sigma^s sigma'^d, s + d <= 4 (finite.c; -1
 * where there is none). */
int th_sd_basis(int s, int d);
/* The subleading kernel's off-diagonal step at kernel entries (k00, k01, k11)
 * (finite.c): G = <sigma sigma>'s central-difference gradient (step h) against
 * k1 plus half its Hessian against V, over the ordered pairs op = (aa, ab, ba,
 * bb) indexing k1 and V's rows (stride ld). */
wick_status th_kernel1_pair(wick_act act, double k00, double k01, double k11, double h,
                            const double *k1, const double *V, int ld, const int op[4], double *out);
/* <sigma'(z0)^p sigma'(z1)^q> over [[k00, k01], [k01, k11]] (finite.c). */
wick_status th_dpow_pair(wick_act act, int p, int q, double k00, double k01, double k11, double *out);
/* Every layer's order-1/n tensors of m = 2 or 3 inputs (wick_*_two or
 * wick_*_multi, in their layouts) for the GD means (gd2.c); pq: 0 the dNTK's
 * P, Q, 1 their pathwise form, 2 Pb, Qb. */
wick_status th_gd_tensors_all(const wick_theory_config *c, int m, const double *G0, int pq, double *T1,
                              double *A, double *D, double *F, double *B, double *P, double *Q,
                              double *R, double *S, double *Tt, double *U);
#endif
