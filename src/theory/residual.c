/* residual.c — residual MLPs at initialisation (the book's appendix on
 * residual learning; docs/theory-residual.md):
 *
 *   z^(1)   = b^(1) + W^(1) x                                    (no skip: n_0 != n)
 *   z^(l+1) = xi z^(l) + gamma (b^(l+1) + W^(l+1) sigma(z^(l)))   l >= 1, widths n
 *
 * with the book's residual hyperparameters xi (the skip connection's
 * strength) and gamma (the residual branch's).  The kernel, the
 * susceptibilities, the four-point vertex and the NTK flow layer to layer;
 * the critical (C_b, C_W) is the plain MLP's times (1 - xi^2)/gamma^2; and
 * a Monte Carlo measurement of real residual networks sits beside them.
 * Plain MLP: xi = 0, gamma = 1 (then every quantity equals wick_theory_single's). */
#include "theory.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static wick_status check_residual(const wick_theory_config *c, double xi, double gamma) {
    if (!c) return wick_fail(WICK_EINVAL, "residual: no configuration given");
    if ((unsigned)c->act.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "residual: unknown activation %d", (int)c->act.kind);
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "residual: the perceptron has no derivative (its "
                         "susceptibilities and vertex are undefined)");
    if (c->depth < 1)
        return wick_fail(WICK_EINVAL, "residual: depth %d, expected at least 1 layer", c->depth);
    if (!isfinite(xi) || !isfinite(gamma) || gamma < 0)
        return wick_fail(WICK_EINVAL, "residual: xi = %g and gamma = %g must be finite, gamma "
                         ">= 0", xi, gamma);
    /* the skip adds z^(l) to z^(l+1): every hidden layer has one width */
    if (c->width_l)
        for (int l = 2; l < c->depth; l++)
            if (c->width_l[l] != c->width_l[1])
                return wick_fail(WICK_EINVAL, "residual: hidden widths differ (n_1 = %zu, n_%d = "
                                 "%zu); a skip connection needs equal widths",
                                 c->width_l[1], l, c->width_l[l]);
    for (int l = 1; l <= c->depth; l++) {
        double v[4] = {th_cb_at(c, l), th_cw_at(c, l), th_lb_at(c, l), th_lw_at(c, l)};
        for (int k = 0; k < 4; k++)
            if (!isfinite(v[k]) || v[k] < 0)
                return wick_fail(WICK_EINVAL, "residual: layer %d: C_b, C_W, lambda_b, lambda_W "
                                 "must be finite and non-negative", l);
    }
    return WICK_OK;
}

/* The vertex.  A residual layer is not a Gaussian scale mixture of the layer
 * before (z^(l+1)_i keeps xi z_i), so the order-1/n dependence of two
 * neurons is not fixed by V alone: E[f(z_i) g(z_j)] - <f><g> = C(f, g)/n for
 * i != j needs the whole pair density correction D(x, y).  Written in the
 * layer's Hermite basis beta_m(x) = N(x; K) He_m(x/sqrt K)/sqrt(m!),
 * D = sum A_mn beta_m(x) beta_n(y) and C(f, g) = sum A_mn f_m g_n with
 * f_m = <f He_m>/sqrt(m!).  Given layer l, z'_i = xi z_i + gamma sqrt(S) g_i
 * with S = C_b + C_W G fluctuating around its mean S0 by dS = C_W (G - <sigma^2>);
 * to first order in dS and 1/n (three-neuron connected terms are 1/n^2):
 *   A'_mn = mu^(m+n) A_mn + c (d_m2 r_n + r_m d_n2) + c^2 w d_m2 d_n2,
 *   mu = xi sqrt(K/K'),  c = gamma^2 C_W / (sqrt 2 K'),
 *   r_n = mu^n (h_n + sum_m A_mn h_m),  w = Var(sigma^2) + sum A_mn h_m h_n,
 * h the coefficients of sigma^2 at layer l: the skip carries each mode m by
 * mu^m (a Gaussian blur of a scaled density keeps the Hermite order), dS
 * reaches z' through d/dS of the Gaussian, mode 2.  V = C(z^2, z^2) = 2 K^2 A_22.
 * Truncated where mu^m < 1e-15.  For xi = 0 this is the MLP's V' = C_W^2
 * (Var(sigma^2) + chi^2 V / C_W^2 ...) (wick_theory_single); for the deep
 * linear net only mode 2 is ever excited. */
#define RES_QPAN 256
#define RES_QHALF 16.0
#define RES_MMAX 400

typedef struct {
    int nm;            /* modes 0..nm-1 */
    double *A, *A2, *r, *h, *hq; /* A, A2: nm x nm; r, h: nm; hq: nm x nodes */
    double *t, *wt;    /* nodes (standardised) and Gaussian-weighted weights */
    int nq;
} res_modes;

static void modes_free(res_modes *m) {
    free(m->A); free(m->A2); free(m->r); free(m->h); free(m->hq); free(m->t); free(m->wt);
}

static wick_status modes_new(res_modes *m, int nm) {
    memset(m, 0, sizeof *m);
    const double *x, *w;
    wick_status st = th_legendre(TH_LEG_M, &x, &w);
    if (st) return st;
    m->nm = nm;
    m->nq = RES_QPAN * TH_LEG_M;
    size_t q = (size_t)m->nq, M = (size_t)nm;
    m->A = calloc(M * M, sizeof(double)); m->A2 = calloc(M * M, sizeof(double));
    m->r = calloc(M, sizeof(double)); m->h = calloc(M, sizeof(double));
    m->hq = malloc(M * q * sizeof(double));
    m->t = malloc(q * sizeof(double)); m->wt = malloc(q * sizeof(double));
    if (!m->A || !m->A2 || !m->r || !m->h || !m->hq || !m->t || !m->wt) {
        modes_free(m);
        return wick_fail(WICK_ENOMEM, "residual: %d Hermite modes", nm);
    }
    /* composite Gauss-Legendre on [-16, 16] in the standardised variable, a
     * panel edge at 0 for the kinked activations */
    double hw = 2 * RES_QHALF / RES_QPAN;
    for (int p = 0; p < RES_QPAN; p++)
        for (int k = 0; k < TH_LEG_M; k++) {
            size_t i = (size_t)p * TH_LEG_M + (size_t)k;
            double t = -RES_QHALF + hw * (p + 0.5 * (x[k] + 1));
            m->t[i] = t;
            m->wt[i] = 0.5 * hw * w[k] * exp(-0.5 * t * t) / sqrt(2 * M_PI);
        }
    /* orthonormal Hermite values He_m(t)/sqrt(m!) by their recurrence */
    for (size_t i = 0; i < q; i++) {
        double t = m->t[i], a = 1, b = t;
        m->hq[i] = 1;
        if (M > 1) m->hq[q + i] = t;
        for (size_t k = 2; k < M; k++) {
            double c = (t * b - sqrt((double)(k - 1)) * a) / sqrt((double)k);
            m->hq[k * q + i] = c;
            a = b; b = c;
        }
    }
    return WICK_OK;
}

/* h_m = <(sigma^2 - <sigma^2>) He_m>/sqrt(m!) at variance K; *var = Var(sigma^2). */
static void modes_project(res_modes *m, wick_act act, double K, double *var) {
    size_t q = (size_t)m->nq;
    double sk = sqrt(K);
    for (int k = 0; k < m->nm; k++) m->h[k] = 0;
    double s2 = 0, s4 = 0;
    for (size_t i = 0; i < q; i++) {
        double v = wick_act_eval(act, sk * m->t[i]);
        v *= v;
        s2 += m->wt[i] * v; s4 += m->wt[i] * v * v;
        for (int k = 1; k < m->nm; k++) m->h[k] += m->wt[i] * v * m->hq[(size_t)k * q + i];
    }
    m->h[0] = 0;
    *var = s4 - s2 * s2;
}

static void modes_step(res_modes *m, double mu, double c, double var) {
    int M = m->nm;
    double mp[RES_MMAX];
    mp[0] = 1;
    for (int k = 1; k < M; k++) mp[k] = mp[k - 1] * mu;
    double w = var;
    for (int a = 0; a < M; a++) {
        double s = 0;
        for (int b = 0; b < M; b++) s += m->A[b * M + a] * m->h[b];
        m->r[a] = mp[a] * (m->h[a] + s);
        w += s * m->h[a];
    }
    for (int a = 0; a < M; a++)
        for (int b = 0; b < M; b++) {
            double v = mp[a] * mp[b] * m->A[a * M + b];
            if (a == 2) v += c * m->r[b];
            if (b == 2) v += c * m->r[a];
            if (a == 2 && b == 2) v += c * c * w;
            m->A2[a * M + b] = v;
        }
    double *tmp = m->A; m->A = m->A2; m->A2 = tmp;
}

/* One input of norm q.  Given layer l, z^(l+1)_i = xi z_i + gamma eps_i with
 * eps_i ~ N(0, C_b + C_W G), G = (1/n) sum_j sigma_j^2, independent over i;
 * hence
 *   K'  = xi^2 K + gamma^2 (C_b + C_W <sigma^2>)
 *   chi_par  = xi^2 + gamma^2 C_W d<sigma^2>/dK,  chi_perp = xi^2 + gamma^2 C_W <sigma'^2>
 *   Theta' = gamma^2 (lambda_b + lambda_W <sigma^2>) + chi_perp Theta
 * (the skip's cross term with W^(l+1) averages to zero), and V by the modes
 * above.  closure = 1 instead closes the vertex on V alone, as for the MLP:
 *   V'  = chi_par^2 V + gamma^4 C_W^2 (<sigma^4> - <sigma^2>^2)
 *         + 4 xi^2 gamma^2 K^2 C_W d<sigma^2>/dK
 * which is exact for the deep linear net and at layer 2 only. */
static wick_status residual_single(const wick_theory_config *c, double xi, double gamma, double q,
                                   int closure, wick_layer_theory *out) {
    wick_status st = check_residual(c, xi, gamma);
    if (st) return st;
    if (!out) return wick_fail(WICK_EINVAL, "residual: no output array");
    if (!isfinite(q) || q < 0)
        return wick_fail(WICK_EINVAL, "residual: input norm q = %g must be a finite non-negative "
                         "number", q);
    double x2 = xi * xi, g2 = gamma * gamma;
    double K = th_cb_at(c, 1) + th_cw_at(c, 1) * q;
    double Th = th_lb_at(c, 1) + th_lw_at(c, 1) * q;
    double V = 0.0;  /* the first layer is Gaussian at any width */
    res_modes md;
    int use_modes = !closure && c->depth > 2 && xi != 0;
    if (use_modes) {
        /* mu <= |xi|: enough modes that |xi|^m < 1e-15 */
        int nm = fabs(xi) < 1 ? (int)ceil(log(1e-15) / log(fabs(xi))) + 3 : RES_MMAX;
        if (nm > RES_MMAX) nm = RES_MMAX;
        if (nm < 4) nm = 4;
        if ((st = modes_new(&md, nm))) return st;
    }
    for (int l = 1; l <= c->depth; l++) {
        th_mom1 m;   /* the perceptron is refused above */
        if ((st = th_moments1(c->act, K, &m))) { if (use_modes) modes_free(&md); return st; }
        int nx = l < c->depth ? l + 1 : l;
        double cwn = th_cw_at(c, nx);
        wick_layer_theory *o = &out[l - 1];
        o->K = K; o->V = V; o->ntk = Th;
        o->chi_par = x2 + g2 * cwn * m.ds2;
        o->chi_perp = x2 + g2 * cwn * m.s1s1;
        if (l == c->depth) break;
        double cw1 = th_cw_at(c, l + 1);
        double chi = x2 + g2 * cw1 * m.ds2;
        double Kn = x2 * K + g2 * (th_cb_at(c, l + 1) + cw1 * m.s2);
        if (use_modes) {
            double var;
            modes_project(&md, c->act, K, &var);
            modes_step(&md, xi * sqrt(K / Kn),
                       g2 * cw1 / (sqrt(2.0) * Kn), var);
            V = 2 * Kn * Kn * md.A[2 * md.nm + 2];
        } else {
            V = chi * chi * V + g2 * g2 * cw1 * cw1 * (m.s4 - m.s2 * m.s2) +
                4 * x2 * g2 * K * K * cw1 * m.ds2;
        }
        Th = g2 * (th_lb_at(c, l + 1) + th_lw_at(c, l + 1) * m.s2) + (x2 + g2 * cw1 * m.s1s1) * Th;
        K = Kn;
        if (!isfinite(K) || !isfinite(V)) {
            if (use_modes) modes_free(&md);
            return wick_fail(WICK_ENUMERIC, "residual: the kernel overflows at layer %d", l + 1);
        }
    }
    if (use_modes) modes_free(&md);
    return WICK_OK;
}

wick_status wick_residual_single(const wick_theory_config *c, double xi, double gamma, double q,
                                 wick_layer_theory *out) {
    return residual_single(c, xi, gamma, q, 0, out);
}

wick_status wick_residual_closure(const wick_theory_config *c, double xi, double gamma, double q,
                                  wick_layer_theory *out) {
    return residual_single(c, xi, gamma, q, 1, out);
}

/* With C~ = gamma^2 C / (1 - xi^2), the residual fixed point (1 - xi^2) K* =
 * gamma^2 (C_b + C_W <sigma^2>_K*) and chi_par = chi_perp = 1 read as the
 * plain MLP's conditions in C~_b, C~_W: the same K* and class, the critical
 * (C_b, C_W) scaled by (1 - xi^2)/gamma^2.  The K*=0 class's a1 (K' = K +
 * a1 K^2) scales by the same factor, so K^(l) ~ 1/((1 - xi^2) (-a1) l). */
wick_status wick_residual_critical(wick_act a, double xi, double gamma, wick_critical_info *out) {
    if (!out) return wick_fail(WICK_EINVAL, "residual criticality: no output");
    if (!isfinite(xi) || !isfinite(gamma) || gamma <= 0 || xi * xi >= 1)
        return wick_fail(WICK_EINVAL, "residual criticality: needs xi^2 < 1 and gamma > 0 (xi = "
                         "%g, gamma = %g); at xi^2 >= 1 the skip alone gives chi >= 1", xi, gamma);
    wick_status st = wick_critical(a, out);
    double s = (1 - xi * xi) / (gamma * gamma);
    out->cb *= s; out->cw *= s;
    if (isfinite(out->a1)) {
        out->a1 *= 1 - xi * xi;
        out->power_coeff = 1.0 / (-out->a1);
    }
    return st;
}

/* ---------------------------------------------------------------------------
 * Measurement: M residual networks of width n, one input.
 * ------------------------------------------------------------------------- */

/* For one input, b_i + sum_j W_ij sigma_j given layer l is N(0, C_b + C_W G)
 * and independent over i (the W rows are), so sampling it directly draws
 * exactly the network's joint law of preactivations with n, not n^2, normals
 * per layer.  full = 1 draws W and b and multiplies instead (the check that
 * the shortcut is the network; n^2 per layer). */
static void res_network(const wick_theory_config *c, double xi, double gamma, double q, size_t n,
                        int full, uint64_t seed, uint64_t k, double *z, double *s, double *g,
                        double *out) {
    int L = c->depth;
    size_t nd = full ? n * n + n : n;
    uint64_t off = 0;
    wick_fill_normal_fast(g, n, seed, k, off); off += n;
    if (full) {
        /* n_0 = 1, x = sqrt(q): z_i = b_i + W_i1 x has the law of any input of norm q */
        double *bw = g + n;
        wick_fill_normal_fast(bw, n, seed, k, off); off += n;
        for (size_t i = 0; i < n; i++)
            z[i] = sqrt(th_cb_at(c, 1)) * g[i] + sqrt(th_cw_at(c, 1)) * bw[i] * sqrt(q);
    } else {
        double sd = sqrt(th_cb_at(c, 1) + th_cw_at(c, 1) * q);
        for (size_t i = 0; i < n; i++) z[i] = sd * g[i];
    }
    for (int l = 1; l <= L; l++) {
        double G = 0, z4 = 0;
        for (size_t i = 0; i < n; i++) { double v = z[i] * z[i]; G += v; z4 += v * v; }
        double dn = (double)n;
        out[2 * (l - 1)] = G / dn;
        /* Y = mean over pairs i != j of z_i^2 z_j^2 */
        out[2 * (l - 1) + 1] = (G * G - z4) / (dn * (dn - 1));
        if (l == L) break;
        double cb = th_cb_at(c, l + 1), cw = th_cw_at(c, l + 1);
        double S = 0;
        for (size_t i = 0; i < n; i++) { s[i] = wick_act_eval(c->act, z[i]); S += s[i] * s[i]; }
        wick_fill_normal_fast(g, nd, seed, k, off); off += nd;
        if (full) {
            const double *W = g + n;
            double sw = sqrt(cw / dn), sb = sqrt(cb);
            for (size_t i = 0; i < n; i++) {
                double a = 0;
                for (size_t j = 0; j < n; j++) a += W[i * n + j] * s[j];
                z[i] = xi * z[i] + gamma * (sb * g[i] + sw * a);
            }
        } else {
            double sd = gamma * sqrt(cb + cw * S / dn);
            for (size_t i = 0; i < n; i++) z[i] = xi * z[i] + sd * g[i];
        }
    }
}

wick_status wick_residual_measure(const wick_theory_config *c, double xi, double gamma, double q,
                                  size_t n, size_t M, uint64_t seed, int full, double *K,
                                  double *K_se, double *V, double *V_se) {
    wick_status st = check_residual(c, xi, gamma);
    if (st) return st;
    if (n < 2 || M < 2)
        return wick_fail(WICK_EINVAL, "residual ensemble: width %zu and %zu networks (need 2 "
                         "and 2 at least)", n, M);
    if (full && n > 4096)
        return wick_fail(WICK_EINVAL, "residual ensemble: full weights at width %zu (n^2 draws "
                         "per layer; at most 4096)", n);
    if (!isfinite(q) || q < 0)
        return wick_fail(WICK_EINVAL, "residual ensemble: q = %g", q);
    if (!K || !V) return wick_fail(WICK_EINVAL, "residual ensemble: no output arrays");
    int L = c->depth;
    size_t nd = full ? n * n + n : n;
    double *per = malloc(sizeof(double) * 2 * (size_t)L * M);
    if (!per) return wick_fail(WICK_ENOMEM, "residual ensemble: %zu networks", M);
    int bad = 0;
#pragma omp parallel reduction(| : bad)
    {
        double *z = malloc(sizeof(double) * n), *s = malloc(sizeof(double) * n),
               *g = malloc(sizeof(double) * nd);
        if (!z || !s || !g) bad = 1;
#pragma omp for schedule(static)
        for (size_t k = 0; k < M; k++)
            if (!bad) res_network(c, xi, gamma, q, n, full, seed, k, z, s, g, per + 2 * (size_t)L * k);
        free(z); free(s); free(g);
    }
    if (bad) { free(per); return wick_fail(WICK_ENOMEM, "residual ensemble: width %zu", n); }
    /* V = n (E[z_i^2 z_j^2] - E[z^2]^2) + O(1/n); its error by the delta
     * method: Y - 2 Gbar G is the estimator's linearisation */
    double dM = (double)M;
    for (int l = 0; l < L; l++) {
        double sG = 0, sY = 0;
        for (size_t k = 0; k < M; k++) { sG += per[2 * (L * k + l)]; sY += per[2 * (L * k + l) + 1]; }
        double Gb = sG / dM, Yb = sY / dM, vG = 0, vP = 0;
        for (size_t k = 0; k < M; k++) {
            double G = per[2 * (L * k + l)], Y = per[2 * (L * k + l) + 1];
            vG += (G - Gb) * (G - Gb);
            double p = (Y - Yb) - 2 * Gb * (G - Gb);
            vP += p * p;
        }
        K[l] = Gb;
        if (K_se) K_se[l] = sqrt(vG / (dM - 1) / dM);
        V[l] = (double)n * (Yb - Gb * Gb);
        if (V_se) V_se[l] = (double)n * sqrt(vP / (dM - 1) / dM);
    }
    free(per);
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * The optimal aspect ratio (the book's appendix on information in deep
 * learning): with V/(n K^2) ~ nu L/n at the output, the book balances the
 * order-1/n interactions (what a deep net learns beyond the kernel) against
 * the order-1/n^2 ones (what makes it unpredictable) and finds the mutual
 * information between output neurons largest at nu r* = 4/(20 + 3 n_L).
 * nu here is the growth of V/K^2 per layer at criticality, measured between
 * layers 100 and 200 of the flow (the scale-invariant MLP: 3 A4/A2^2 - 1 at
 * every layer; the K*=0 class: -> 2/3), residual or not.
 * ------------------------------------------------------------------------- */
wick_status wick_aspect_ratio(wick_act a, double xi, double gamma, int n_out, double *nu,
                              double *rstar) {
    if (n_out < 1) return wick_fail(WICK_EINVAL, "aspect ratio: %d outputs", n_out);
    wick_critical_info ci;
    wick_status st = xi == 0 ? wick_critical(a, &ci) : wick_residual_critical(a, xi, gamma, &ci);
    if (st) return st;
    enum { L1 = 100, L2 = 200 };
    wick_theory_config c = wick_theory_defaults(a, L2);
    c.cb = ci.cb; c.cw = ci.cw;
    wick_layer_theory *o = malloc(sizeof *o * L2);
    if (!o) return wick_fail(WICK_ENOMEM, "aspect ratio: %d layers", L2);
    /* the half-stable class's flow starts at its K*, the others anywhere */
    double q = isfinite(ci.kstar) && ci.kstar > 0 ? (ci.kstar - ci.cb) / ci.cw : 1.0;
    st = wick_residual_single(&c, xi, gamma, q, o);
    if (!st) {
        double v1 = o[L1 - 1].V / (o[L1 - 1].K * o[L1 - 1].K);
        double v2 = o[L2 - 1].V / (o[L2 - 1].K * o[L2 - 1].K);
        double g = (v2 - v1) / (L2 - L1);
        if (nu) *nu = g;
        if (rstar) *rstar = 4.0 / ((20.0 + 3.0 * n_out) * g);
    }
    free(o);
    return st;
}

/* ---------------------------------------------------------------------------
 * The NTK mean measured: real weights, one output neuron (index 0) of layer
 * L, H = sum over parameters of lambda (dz/dtheta)^2 with the book's
 * normalisation (lambda_W / n_{l-1} on the weights of layer l; n_0 = 1 and
 * x = sqrt(q) here).  Backward: g^(l) = dz/dz^(l), and
 * g^(l-1) = xi g^(l) + gamma sigma'(z^(l-1)) * (W^(l)T g^(l)).
 * ------------------------------------------------------------------------- */
static double res_ntk_network(const wick_theory_config *c, double xi, double gamma, double q,
                              size_t n, uint64_t seed, uint64_t k, double *Z, double *Wt,
                              double *g, double *h) {
    int L = c->depth;
    double dn = (double)n;
    uint64_t off = 0;
    /* forward, keeping z^(l) (Z[(l-1) n + i]) and W^(l) (Wt[(l-2) n^2 ...]) */
    double *z = Z;
    wick_fill_normal_fast(g, 2 * n, seed, k, off); off += 2 * n;
    for (size_t i = 0; i < n; i++)
        z[i] = sqrt(th_cb_at(c, 1)) * g[i] + sqrt(th_cw_at(c, 1)) * g[n + i] * sqrt(q);
    for (int l = 2; l <= L; l++) {
        double *W = Wt + (size_t)(l - 2) * n * n, *zp = Z + (size_t)(l - 2) * n, *zn = zp + n;
        wick_fill_normal_fast(W, n * n, seed, k, off); off += n * n;
        wick_fill_normal_fast(g, n, seed, k, off); off += n;
        double sw = sqrt(th_cw_at(c, l) / dn), sb = sqrt(th_cb_at(c, l));
        for (size_t j = 0; j < n; j++) h[j] = wick_act_eval(c->act, zp[j]);
        for (size_t i = 0; i < n; i++) {
            double a = 0;
            for (size_t j = 0; j < n; j++) a += W[i * n + j] * h[j];
            zn[i] = xi * zp[i] + gamma * (sb * g[i] + sw * a);
        }
    }
    /* backward from e_0 */
    for (size_t i = 0; i < n; i++) g[i] = i == 0;
    double H = 0, g2 = gamma * gamma;
    for (int l = L; l >= 2; l--) {
        const double *W = Wt + (size_t)(l - 2) * n * n, *zp = Z + (size_t)(l - 2) * n;
        double gg = 0, ss = 0;
        for (size_t i = 0; i < n; i++) gg += g[i] * g[i];
        for (size_t j = 0; j < n; j++) { double s = wick_act_eval(c->act, zp[j]); ss += s * s; }
        /* W is drawn standard normal and scaled by sqrt(C_W / n) in the forward */
        H += g2 * gg * (th_lb_at(c, l) + th_lw_at(c, l) * ss / dn);
        double sw = sqrt(th_cw_at(c, l) / dn);
        for (size_t j = 0; j < n; j++) {
            double a = 0;
            for (size_t i = 0; i < n; i++) a += W[i * n + j] * g[i];
            h[j] = xi * g[j] + gamma * sw * a * wick_act_deriv(c->act, zp[j]);
        }
        memcpy(g, h, sizeof(double) * n);
    }
    double gg = 0;
    for (size_t i = 0; i < n; i++) gg += g[i] * g[i];
    return H + gg * (th_lb_at(c, 1) + th_lw_at(c, 1) * q);
}

wick_status wick_residual_ntk_measure(const wick_theory_config *c, double xi, double gamma,
                                      double q, size_t n, size_t M, uint64_t seed, double *mean,
                                      double *se) {
    wick_status st = check_residual(c, xi, gamma);
    if (st) return st;
    if (n < 1 || n > 1024 || M < 2)
        return wick_fail(WICK_EINVAL, "residual NTK ensemble: width %zu (1 to 1024), %zu networks",
                         n, M);
    if (!isfinite(q) || q < 0) return wick_fail(WICK_EINVAL, "residual NTK ensemble: q = %g", q);
    if (!mean) return wick_fail(WICK_EINVAL, "residual NTK ensemble: no output");
    int L = c->depth;
    double *Hs = malloc(sizeof(double) * M);
    if (!Hs) return wick_fail(WICK_ENOMEM, "residual NTK ensemble: %zu networks", M);
    int bad = 0;
#pragma omp parallel reduction(| : bad)
    {
        double *Z = malloc(sizeof(double) * n * (size_t)L),
               *Wt = malloc(sizeof(double) * n * n * (size_t)(L > 1 ? L - 1 : 1)),
               *g = malloc(sizeof(double) * 2 * n), *h = malloc(sizeof(double) * n);
        if (!Z || !Wt || !g || !h) bad = 1;
#pragma omp for schedule(static)
        for (size_t k = 0; k < M; k++)
            if (!bad) Hs[k] = res_ntk_network(c, xi, gamma, q, n, seed, k, Z, Wt, g, h);
        free(Z); free(Wt); free(g); free(h);
    }
    if (bad) { free(Hs); return wick_fail(WICK_ENOMEM, "residual NTK ensemble: width %zu", n); }
    double s = 0, v = 0;
    for (size_t k = 0; k < M; k++) s += Hs[k];
    s /= (double)M;
    for (size_t k = 0; k < M; k++) v += (Hs[k] - s) * (Hs[k] - s);
    *mean = s;
    if (se) *se = sqrt(v / ((double)M - 1) / (double)M);
    free(Hs);
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Several inputs at infinite width: the Gram matrices layer by layer,
 *   K'_ab = xi^2 K_ab + gamma^2 (C_b + C_W <sigma_a sigma_b>)
 *   Theta'_ab = gamma^2 (lambda_b + lambda_W <sigma_a sigma_b>) + (xi^2 + gamma^2 C_W <sigma'_a sigma'_b>) Theta_ab
 * (<.> over the layer's 2 x 2 kernel of a and b; closed forms as th_pair_ss).
 * ------------------------------------------------------------------------- */
wick_status wick_residual_gram(const wick_theory_config *c, double xi, double gamma,
                               const double *G0, size_t n, double *K, double *Theta) {
    wick_status st = check_residual(c, xi, gamma);
    if (st) return st;
    if (!G0 || !K || n < 1)
        return wick_fail(WICK_EINVAL, "residual Gram: no inputs or no output");
    for (size_t a = 0; a < n; a++)
        if (!isfinite(G0[a * n + a]) || G0[a * n + a] < 0)
            return wick_fail(WICK_EINVAL, "residual Gram: input %zu has squared norm %g", a,
                             G0[a * n + a]);
    size_t nn = n * n;
    double x2 = xi * xi, g2 = gamma * gamma;
    for (size_t i = 0; i < nn; i++) {
        K[i] = th_cb_at(c, 1) + th_cw_at(c, 1) * G0[i];
        if (Theta) Theta[i] = th_lb_at(c, 1) + th_lw_at(c, 1) * G0[i];
    }
    for (int l = 1; l < c->depth; l++) {
        const double *Kp = K + (size_t)(l - 1) * nn, *Tp = Theta ? Theta + (size_t)(l - 1) * nn : NULL;
        double *Kn = K + (size_t)l * nn, *Tn = Theta ? Theta + (size_t)l * nn : NULL;
        double cb = th_cb_at(c, l + 1), cw = th_cw_at(c, l + 1), lb = th_lb_at(c, l + 1), lw = th_lw_at(c, l + 1);
        for (size_t a = 0; a < n; a++)
            for (size_t b = a; b < n; b++) {
                double k12 = Kp[a * n + b], ss, s1s1;
                if ((st = th_check_cov(Kp[a * n + a], &k12, Kp[b * n + b], "residual Gram")))
                    return st;
                if ((st = th_pair_ss(c->act, Kp[a * n + a], k12, Kp[b * n + b], &ss, &s1s1)))
                    return st;
                double kv = x2 * Kp[a * n + b] + g2 * (cb + cw * ss);
                Kn[a * n + b] = Kn[b * n + a] = kv;
                if (Tn) {
                    double tv = g2 * (lb + lw * ss) + (x2 + g2 * cw * s1s1) * Tp[a * n + b];
                    Tn[a * n + b] = Tn[b * n + a] = tv;
                }
            }
    }
    return WICK_OK;
}
