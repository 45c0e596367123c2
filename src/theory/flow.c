/* flow.c — the layer-to-layer flows of the infinite-width theory and its
 * 1/n correction: the kernel (docs/theory.md §3), chi_par / chi_perp (§4), the
 * four-point vertex (§6) and the NTK (§7), for one input and for Gram
 * matrices, plus the deep linear network's exact finite-width oracle (§5). */
#include "theory.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

wick_theory_config wick_theory_defaults(wick_act act, int depth) {
    wick_theory_config c;
    memset(&c, 0, sizeof c);
    c.act = act;
    c.depth = depth;
    c.cb = 0.0; c.cw = 1.0;
    c.lambda_b = 1.0; c.lambda_w = 1.0;
    c.width = 128;
    return c;
}

/* Re-fails with context around the current message; the message is copied
 * first because wick_fail formats into the buffer wick_last_error returns. */
static wick_status refail(wick_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static wick_status refail(wick_status st, const char *fmt, ...) {
    char old[512], pre[256];
    snprintf(old, sizeof old, "%s", wick_last_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    return wick_fail(st, "%s: %s", pre, old);
}

static wick_status check_config(const wick_theory_config *c) {
    if (!c) return wick_fail(WICK_EINVAL, "theory: no configuration given");
    if ((unsigned)c->act.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "theory: unknown activation %d", (int)c->act.kind);
    if (c->depth < 1)
        return wick_fail(WICK_EINVAL, "theory: depth %d, expected at least 1 layer", c->depth);
    for (int l = 1; l <= c->depth; l++) {
        double v[4] = {th_cb_at(c, l), th_cw_at(c, l), th_lb_at(c, l), th_lw_at(c, l)};
        static const char *nm[4] = {"C_b", "C_W", "lambda_b", "lambda_w"};
        for (int k = 0; k < 4; k++)
            if (!isfinite(v[k]) || v[k] < 0)
                return wick_fail(WICK_EINVAL, "theory: layer %d: %s = %g must be a finite "
                                 "non-negative number (it is a variance or a learning rate)",
                                 l, nm[k], v[k]);
    }
    for (int l = 1; l < c->depth; l++)
        if (th_width_at(c, l) < 1)
            return wick_fail(WICK_EINVAL, "theory: hidden width n_%d is 0", l);
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Single input
 * ------------------------------------------------------------------------- */

/* theory.h: the single-input moments, here and in residual.c */
wick_status th_moments1(wick_act act, double K, th_mom1 *m) {
    double ap, am;
    if (th_scale_invariant(act, &ap, &am)) {
        double A2 = 0.5 * (ap * ap + am * am), A4 = 0.5 * (ap * ap * ap * ap + am * am * am * am);
        m->s2 = A2 * K; m->s4 = 3 * A4 * K * K; m->s1s1 = A2; m->ds2 = A2;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_PERCEPTRON) {
        m->s2 = m->s4 = K > 0 ? 0.5 : 1.0;
        m->s1s1 = m->ds2 = NAN;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_SIN) {
        /* closed forms from <cos(k z)>_K = e^{-k^2 K/2}: order-1/n quantities
         * are differences of these, which quadrature leaves at 1e-16
         * absolute (chi_par = C_W e^{-2K} is 1e-8 of that at K = 9) */
        double e2 = exp(-2 * K), e8 = exp(-8 * K);
        m->s2 = -0.5 * expm1(-2 * K);
        m->s4 = (3 - 4 * e2 + e8) / 8;
        m->s1s1 = 0.5 * (1 + e2);
        m->ds2 = e2;
        return WICK_OK;
    }
    /* d<sigma^2>/dK = (1/2) <(sigma^2)''> = <sigma'^2 + sigma sigma''> (Price) */
    static const int b[4] = {TB_SQ, TB_QUART, TB_S1SQ, TB_SS2};
    double o[4];
    wick_status st = th_expect1(act, K, 4, b, o, NULL);
    if (st) return st;
    m->s2 = o[0]; m->s4 = o[1]; m->s1s1 = o[2]; m->ds2 = o[2] + o[3];
    return WICK_OK;
}

wick_status wick_chi(wick_act a, double cw, double K, double *chi_par, double *chi_perp) {
    if ((unsigned)a.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "chi: unknown activation %d", (int)a.kind);
    if (a.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: chi_par and chi_perp are undefined (its "
                         "derivative is a delta)");
    if (!isfinite(K) || K < 0)
        return wick_fail(WICK_EINVAL, "chi: K = %g is not a finite non-negative variance", K);
    if (!isfinite(cw) || cw < 0)
        return wick_fail(WICK_EINVAL, "chi: C_W = %g is not a finite non-negative variance", cw);
    th_mom1 m;
    wick_status st = th_moments1(a, K, &m);
    if (st) return st;
    if (chi_par) *chi_par = cw * m.ds2;
    if (chi_perp) *chi_perp = cw * m.s1s1;
    return WICK_OK;
}

wick_status wick_theory_single(const wick_theory_config *c, double q, wick_layer_theory *out) {
    wick_status st = check_config(c);
    if (st) return st;
    if (!out) return wick_fail(WICK_EINVAL, "theory: no output array");
    if (!isfinite(q) || q < 0)
        return wick_fail(WICK_EINVAL, "theory: input norm q = |x|^2/n0 = %g must be a finite "
                         "non-negative number", q);
    int undefined = c->act.kind == WICK_ACT_PERCEPTRON;
    double K = th_cb_at(c, 1) + th_cw_at(c, 1) * q;   /* docs/theory.md §3 */
    double Th = th_lb_at(c, 1) + th_lw_at(c, 1) * q;  /* docs/theory.md §7 */
    double V = 0.0;                             /* docs/theory.md §6: V^(1) = 0 */
    for (int l = 1; l <= c->depth; l++) {
        th_mom1 m;
        if ((st = th_moments1(c->act, K, &m)))
            return refail(st, "theory: layer %d (K = %g)", l, K);
        int nx = l < c->depth ? l + 1 : l;
        double cwn = th_cw_at(c, nx);
        wick_layer_theory *o = &out[l - 1];
        o->K = K;
        o->chi_par = undefined ? NAN : cwn * m.ds2;
        o->chi_perp = undefined ? NAN : cwn * m.s1s1;
        o->V = undefined ? NAN : V;
        o->ntk = undefined ? NAN : Th;
        if (l == c->depth) break;
        double ratio = th_width_at(c, l) / th_width_at(c, l - 1 >= 0 ? l - 1 : 0);
        if (l == 1) ratio = 1.0;  /* V^(1) = 0: n_0 never matters */
        double cw1 = th_cw_at(c, l + 1);
        double chi = cw1 * m.ds2;
        V = cw1 * cw1 * (m.s4 - m.s2 * m.s2) + ratio * chi * chi * V;
        Th = th_lb_at(c, l + 1) + th_lw_at(c, l + 1) * m.s2 + cw1 * m.s1s1 * Th;
        K = th_cb_at(c, l + 1) + cw1 * m.s2;
        if (!isfinite(K))
            return wick_fail(WICK_ENUMERIC, "theory: the kernel overflows at layer %d", l + 1);
    }
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Gram matrices
 * ------------------------------------------------------------------------- */

wick_status wick_input_gram(const double *x, size_t n, size_t n0, double *G0) {
    if (!x || !G0 || n == 0 || n0 == 0)
        return wick_fail(WICK_EINVAL, "input Gram: %zu inputs of dimension %zu", n, n0);
    for (size_t i = 0; i < n * n0; i++)
        if (!isfinite(x[i]))
            return wick_fail(WICK_EINVAL, "input Gram: input %zu, component %zu is not finite",
                             i / n0, i % n0);
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b <= a; b++) {
            double s = 0;
            for (size_t j = 0; j < n0; j++) s += x[a * n0 + j] * x[b * n0 + j];
            G0[a * n + b] = G0[b * n + a] = s / (double)n0;
        }
    return WICK_OK;
}

/* The correlation table of a layer whose diagonal is the constant Kd:
 * f(theta) = <sigma sigma> and g(theta) = <sigma' sigma'> at
 * K12 = Kd cos(theta), with their theta-derivatives from Price's theorem
 * (d<F>/dK12 = <F'F'>), for cubic Hermite interpolation. */
#define TH_TABLE_N 512
typedef struct { double f[TH_TABLE_N + 1], df[TH_TABLE_N + 1], g[TH_TABLE_N + 1], dg[TH_TABLE_N + 1]; } corr_table;

static double hermite_interp(const double *v, const double *dv, double theta) {
    double h = M_PI / TH_TABLE_N, x = theta / h;
    int i = (int)x;
    if (i >= TH_TABLE_N) i = TH_TABLE_N - 1;
    if (i < 0) i = 0;
    double t = x - i, t2 = t * t, t3 = t2 * t;
    return (2 * t3 - 3 * t2 + 1) * v[i] + (t3 - 2 * t2 + t) * h * dv[i] +
           (-2 * t3 + 3 * t2) * v[i + 1] + (t3 - t2) * h * dv[i + 1];
}

/* Direct quadrature of one entry's <sigma sigma> (and <sigma' sigma'>). */
typedef struct {
    wick_status st;
    char msg[256];
} par_err;

static void record_err(par_err *e, wick_status st) {
#pragma omp critical(wick_theory_err)
    if (!e->st) {
        e->st = st;
        snprintf(e->msg, sizeof e->msg, "%s", wick_last_error());
    }
}

static wick_status build_table(wick_act act, double Kd, int want_g, corr_table *t) {
    par_err err = {0, ""};
    th_pair p[3] = {{TB_S, TB_S}, {TB_S1, TB_S1}, {TB_S2, TB_S2}};
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i <= TH_TABLE_N; i++) {
        double th = M_PI * i / TH_TABLE_N, o[3] = {0, 0, 0};
        double K12 = i == 0 ? Kd : i == TH_TABLE_N ? -Kd : Kd * cos(th);
        wick_status st = th_expect2(act, Kd, K12, Kd, want_g ? 3 : 2, p, o, NULL);
        if (st) record_err(&err, st);
        double dk = -Kd * sin(th);  /* dK12/dtheta */
        t->f[i] = o[0]; t->df[i] = dk * o[1];
        t->g[i] = o[1]; t->dg[i] = dk * o[2];
    }
    if (err.st) return wick_fail(err.st, "%s", err.msg);
    return WICK_OK;
}

/* Validates the input Gram matrix (finite, symmetric, every 2x2 minor PSD). */
static wick_status check_input_gram(const double *G0, size_t n) {
    for (size_t a = 0; a < n; a++)
        for (size_t b = a; b < n; b++) {
            double g = G0[a * n + b];
            if (!isfinite(g) || g != G0[b * n + a])
                return wick_fail(WICK_EINVAL, "Gram flow: input Gram entry (%zu, %zu) = %g is not "
                                 "finite and symmetric", a, b, g);
            double k12 = g;
            wick_status st = th_check_cov(G0[a * n + a], &k12, G0[b * n + b], "input Gram");
            if (st) return refail(st, "Gram flow: inputs %zu, %zu", a, b);
        }
    return WICK_OK;
}

/* One layer, in place: K (and Theta) hold layer l and receive layer l+1.
 * Entry (a, b) of layer l+1 needs K_aa, K_bb, K_ab and Theta_ab of layer l,
 * so the old diagonal is kept in diag[] and every other entry is read before
 * it is overwritten by its own update. */
#define GRAM_TILE 64
static wick_status gram_step(const wick_theory_config *c, int l, size_t n, double *K,
                             double *Theta, double *diag, corr_table *tab) {
    wick_status st;
    double cb = th_cb_at(c, l + 1), cw = th_cw_at(c, l + 1), lb = th_lb_at(c, l + 1), lw = th_lw_at(c, l + 1);
    for (size_t a = 0; a < n; a++) diag[a] = K[a * n + a];
    /* a constant diagonal makes every entry a function of the correlation */
    int use_tab = 0;
    double Kd = diag[0];
    if (tab) {
        use_tab = Kd > 0;
        for (size_t a = 1; a < n && use_tab; a++)
            if (fabs(diag[a] - Kd) > 1e-12 * Kd) use_tab = 0;
        if (use_tab && (st = build_table(c->act, Kd, Theta != NULL, tab)))
            return refail(st, "Gram flow: layer %d", l);
    }
    par_err err = {0, ""};
    /* Tiles of GRAM_TILE x GRAM_TILE entries of the upper triangle, each
     * entry mirrored into the lower one: row by row, the mirrored writes
     * would each land on a new page (a stride of n doubles, 80 KB at
     * n = 10,000), a TLB miss apiece; in a tile they reuse GRAM_TILE pages.
     * Every entry reads only its own upper-triangle value, so the tiles may
     * run in any order. */
    const size_t nt = (n + GRAM_TILE - 1) / GRAM_TILE;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t ta = 0; ta < nt; ta++)
        for (size_t tb = ta; tb < nt; tb++) {
            const size_t a1 = ta * GRAM_TILE + GRAM_TILE < n ? ta * GRAM_TILE + GRAM_TILE : n;
            const size_t b0 = tb * GRAM_TILE, b1 = b0 + GRAM_TILE < n ? b0 + GRAM_TILE : n;
            for (size_t a = ta * GRAM_TILE; a < a1; a++) {
                for (size_t b = a > b0 ? a : b0; b < b1; b++) {
                    double K11 = diag[a], K22 = diag[b], K12 = K[a * n + b];
                    double ss, s1 = 0;
                    if (fabs(K12) > sqrt(K11 * K22)) K12 = copysign(sqrt(K11 * K22), K12);  /* rounding */
                    if (use_tab) {
                        double rho = K12 / Kd;
                        double th = rho >= 1 ? 0 : rho <= -1 ? M_PI : acos(rho);
                        ss = hermite_interp(tab->f, tab->df, th);
                        if (Theta) s1 = hermite_interp(tab->g, tab->dg, th);
                    } else {
                        wick_status s2 = th_pair_ss(c->act, K11, K12, K22, &ss, Theta ? &s1 : NULL);
                        if (s2) { record_err(&err, s2); continue; }
                    }
                    K[a * n + b] = K[b * n + a] = cb + cw * ss;
                    if (Theta)
                        Theta[a * n + b] = Theta[b * n + a] = lb + lw * ss + cw * s1 * Theta[a * n + b];
                }
            }
        }
    if (err.st) return wick_fail(err.st, "Gram flow: layer %d: %s", l + 1, err.msg);
    return WICK_OK;
}

/* The common driver: every layer into K[(l-1) n^2 ...] when all_layers,
 * else only the last layer, in place (n^2 memory whatever the depth). */
static wick_status gram_flow(const wick_theory_config *c, const double *G0, size_t n, double *K,
                             double *Theta, int all_layers) {
    wick_status st = check_config(c);
    if (st) return st;
    if (!G0 || !K || n == 0) return wick_fail(WICK_EINVAL, "Gram flow: no inputs");
    if (Theta && c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the NTK is undefined (its derivative is a "
                         "delta)");
    size_t nn;
    if (!wick_mul_size(n, n, &nn)) return wick_fail(WICK_EINVAL, "Gram flow: %zu inputs", n);
    if ((st = check_input_gram(G0, n))) return st;
    for (size_t i = 0; i < nn; i++) {  /* layer 1 */
        K[i] = th_cb_at(c, 1) + th_cw_at(c, 1) * G0[i];
        if (Theta) Theta[i] = th_lb_at(c, 1) + th_lw_at(c, 1) * G0[i];
    }
    double ap, am;
    int closed = th_scale_invariant(c->act, &ap, &am) || c->act.kind == WICK_ACT_PERCEPTRON;
    corr_table *tab = NULL;
    double *diag = wick_malloc(sizeof(double) * n);
    if (!diag) return wick_fail(WICK_ENOMEM, "Gram flow: out of memory for %zu inputs", n);
    if (c->tabulate && !closed && !(tab = wick_malloc(sizeof *tab))) {
        wick_free(diag);
        return wick_fail(WICK_ENOMEM, "Gram flow: out of memory for the table");
    }
    for (int l = 1; l < c->depth && !st; l++) {
        double *Kl = K, *Tl = Theta;
        if (all_layers) {
            Kl = K + (size_t)l * nn;
            memcpy(Kl, Kl - nn, sizeof(double) * nn);
            if (Theta) {
                Tl = Theta + (size_t)l * nn;
                memcpy(Tl, Tl - nn, sizeof(double) * nn);
            }
        }
        st = gram_step(c, l, n, Kl, Tl, diag, tab);
    }
    wick_free(tab);
    wick_free(diag);
    return st;
}

wick_status wick_gram_flow(const wick_theory_config *c, const double *G0, size_t n, double *K,
                           double *Theta) {
    return gram_flow(c, G0, n, K, Theta, 1);
}

wick_status wick_gram_flow_last(const wick_theory_config *c, const double *G0, size_t n,
                                double *K, double *Theta) {
    return gram_flow(c, G0, n, K, Theta, 0);
}

/* ---------------------------------------------------------------------------
 * Four-point vertex, two inputs (docs/theory.md §6)
 * ------------------------------------------------------------------------- */

wick_status wick_vertex2(const wick_theory_config *c, const double G0[4], double *V) {
    wick_status st = check_config(c);
    if (st) return st;
    if (!G0 || !V) return wick_fail(WICK_EINVAL, "vertex: no input Gram or output");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the vertex is undefined (its derivative is a "
                         "delta)");
    double g12 = G0[1];
    if (G0[1] != G0[2])
        return wick_fail(WICK_EINVAL, "vertex: input Gram is not symmetric (%g vs %g)", G0[1], G0[2]);
    if ((st = th_check_cov(G0[0], &g12, G0[3], "vertex: input Gram"))) return st;
    double k[2][2];
    k[0][0] = th_cb_at(c, 1) + th_cw_at(c, 1) * G0[0];
    k[1][1] = th_cb_at(c, 1) + th_cw_at(c, 1) * G0[3];
    k[0][1] = k[1][0] = th_cb_at(c, 1) + th_cw_at(c, 1) * g12;
    double Vc[16] = {0}, ap, am;
    int si = th_scale_invariant(c->act, &ap, &am);
    for (int l = 1; l <= c->depth; l++) {
        memcpy(V + (size_t)(l - 1) * 16, Vc, sizeof Vc);
        if (l == c->depth) break;
        double cw = th_cw_at(c, l + 1), cb = th_cb_at(c, l + 1);
        double ratio = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        if ((st = th_check_cov(k[0][0], &k[0][1], k[1][1], "vertex")))
            return refail(st, "vertex: layer %d", l);
        k[1][0] = k[0][1];
        th_mom1 m[2];
        for (int a = 0; a < 2; a++)
            if ((st = th_moments1(c->act, k[a][a], &m[a])))
                return refail(st, "vertex: layer %d", l);
        /* E4[c] = <sigma_0^c sigma_1^(4-c)>, E2 the two-point functions */
        double E4[5], ss, s1s1, dK00, dK11;
        E4[4] = m[0].s4; E4[0] = m[1].s4;
        th_pair p4[3] = {{TB_CUBE, TB_S}, {TB_SQ, TB_SQ}, {TB_S, TB_CUBE}};
        double o[7];
        if (si) {
            th_si_pair(ap, am, k[0][0], k[0][1], k[1][1], &ss, &s1s1, &dK00, &dK11);
            st = th_expect2(c->act, k[0][0], k[0][1], k[1][1], 3, p4, o, NULL);
        } else {
            th_pair p[7] = {{TB_CUBE, TB_S}, {TB_SQ, TB_SQ}, {TB_S, TB_CUBE}, {TB_S, TB_S},
                            {TB_S1, TB_S1}, {TB_S2, TB_S}, {TB_S, TB_S2}};
            st = th_expect2(c->act, k[0][0], k[0][1], k[1][1], 7, p, o, NULL);
            /* Price: dG/dK_aa = (1/2) <sigma''_a sigma_b> */
            ss = o[3]; s1s1 = o[4]; dK00 = 0.5 * o[5]; dK11 = 0.5 * o[6];
        }
        if (st) return refail(st, "vertex: layer %d", l);
        E4[3] = o[0]; E4[2] = o[1]; E4[1] = o[2];
        double E2[2][2] = {{m[0].s2, ss}, {ss, m[1].s2}};
        /* F and D over ordered pairs p = 2 a1 + a2 */
        double F[4][4], D[4][4] = {{0}};
        for (int pi = 0; pi < 4; pi++)
            for (int qi = 0; qi < 4; qi++) {
                int idx[4] = {pi >> 1, pi & 1, qi >> 1, qi & 1}, zeros = 0;
                for (int j = 0; j < 4; j++) zeros += idx[j] == 0;
                F[pi][qi] = E4[zeros] - E2[idx[0]][idx[1]] * E2[idx[2]][idx[3]];
            }
        D[0][0] = cw * m[0].ds2;       /* (00) on (00): chi_par */
        D[3][3] = cw * m[1].ds2;
        for (int pi = 1; pi <= 2; pi++) {  /* (01) and (10) */
            D[pi][0] = cw * dK00;
            D[pi][3] = cw * dK11;
            D[pi][1] = D[pi][2] = 0.5 * cw * s1s1;
        }
        double DV[4][4] = {{0}}, Vn[16];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                for (int t = 0; t < 4; t++) DV[i][j] += D[i][t] * Vc[t * 4 + j];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                double s = 0;
                for (int t = 0; t < 4; t++) s += DV[i][t] * D[j][t];
                Vn[i * 4 + j] = cw * cw * F[i][j] + ratio * s;
            }
        memcpy(Vc, Vn, sizeof Vc);
        double k00 = cb + cw * m[0].s2, k11 = cb + cw * m[1].s2, k01 = cb + cw * ss;
        k[0][0] = k00; k[1][1] = k11; k[0][1] = k[1][0] = k01;
    }
    return WICK_OK;
}

double wick_four_point(const double V[16], size_t n_prev, const int i[4], const int a[4]) {
#define VP(x, y, z, w) V[(2 * a[x] + a[y]) * 4 + 2 * a[z] + a[w]]
    double s = 0;
    if (i[0] == i[1] && i[2] == i[3]) s += VP(0, 1, 2, 3);
    if (i[0] == i[2] && i[1] == i[3]) s += VP(0, 2, 1, 3);
    if (i[0] == i[3] && i[1] == i[2]) s += VP(0, 3, 1, 2);
#undef VP
    return s / (double)n_prev;
}

wick_status wick_deep_linear(double cw, double K1, int l, size_t n, double *K, double *Ez4) {
    if (!isfinite(cw) || cw < 0 || !isfinite(K1) || K1 < 0)
        return wick_fail(WICK_EINVAL, "deep linear: C_W = %g and K1 = %g must be finite and "
                         "non-negative", cw, K1);
    if (l < 1 || n < 1)
        return wick_fail(WICK_EINVAL, "deep linear: layer %d, width %zu", l, n);
    double k = K1 * pow(cw, l - 1);  /* docs/theory.md §5 */
    if (K) *K = k;
    if (Ez4) *Ez4 = 3 * k * k * pow(1 + 2.0 / (double)n, l - 1);
    return WICK_OK;
}
