/* net64.c — a float64 MLP in the book's parameterisation on the autodiff
 * graph: the empirical NTK through vector-Jacobian products (the book's ch. 8) and
 * full-batch gradient descent with per-layer learning rates (ch. 10; docs/experiments.md). */
#include "experiments.h"
#include <math.h>
#include <string.h>

struct wick_net64 {
    wick_net64_config c;
    wick_graph *g;
    int max_batch;
    wick_node x, y, out, loss;
    wick_node *W, *b, *h;      /* [L]; h[l-1] = the input of layer l (x for l = 1) */
    size_t *nl;                /* widths n_0..n_L */
};

static wick_status check_config(const wick_net64_config *c, int max_batch) {
    if (!c) return wick_fail(WICK_EINVAL, "net64: no configuration given");
    if ((unsigned)c->act.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "net64: unknown activation %d", (int)c->act.kind);
    double v[4] = {c->cb, c->cw, c->lambda_b, c->lambda_w};
    static const char *nm[4] = {"C_b", "C_W", "lambda_b", "lambda_w"};
    for (int k = 0; k < 4; k++)
        if (!isfinite(v[k]) || v[k] < 0)
            return wick_fail(WICK_EINVAL, "net64: %s = %g must be finite and non-negative", nm[k], v[k]);
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "net64: depth %d, expected 1..4096", c->depth);
    size_t lim = (size_t)1 << 24;
    if (c->n0 < 1 || c->n0 > lim || c->width < 1 || c->width > lim || c->nout < 1 || c->nout > lim)
        return wick_fail(WICK_EINVAL, "net64: widths n0 = %zu, n = %zu, nout = %zu must be in "
                         "1..2^24", c->n0, c->width, c->nout);
    if (max_batch < 1)
        return wick_fail(WICK_EINVAL, "net64: max_batch %d, expected at least 1", max_batch);
    return WICK_OK;
}

void wick_net64_free(wick_net64 *m) {
    if (!m) return;
    wick_graph_free(m->g);
    wick_free(m->W); wick_free(m->b); wick_free(m->h); wick_free(m->nl);
    wick_free(m);
}

wick_status wick_net64_new(wick_net64 **out, const wick_net64_config *c, int max_batch) {
    *out = NULL;
    wick_status st = check_config(c, max_batch);
    if (st) return st;
    int L = c->depth;
    wick_net64 *m = wick_calloc(1, sizeof *m);
    if (!m) return wick_fail(WICK_ENOMEM, "net64: out of memory");
    m->c = *c;
    m->max_batch = max_batch;
    m->W = wick_malloc(sizeof(wick_node) * (size_t)L);
    m->b = wick_malloc(sizeof(wick_node) * (size_t)L);
    m->h = wick_malloc(sizeof(wick_node) * (size_t)L);
    m->nl = wick_malloc(sizeof(size_t) * (size_t)(L + 1));
    if (!m->W || !m->b || !m->h || !m->nl) {
        wick_net64_free(m);
        return wick_fail(WICK_ENOMEM, "net64: out of memory");
    }
    for (int l = 0; l <= L; l++) m->nl[l] = l == 0 ? c->n0 : l == L ? c->nout : c->width;
    if ((st = wick_graph_new(&m->g, WICK_DT_F64, max_batch))) { wick_net64_free(m); return st; }
    wick_graph *g = m->g;
    m->x = wick_g_input(g, "x", (int)c->n0);
    wick_node hcur = m->x;
    wick_act lin = {WICK_ACT_LINEAR, 0};
    for (int l = 1; l <= L; l++) {
        char nw[32], nb[32];
        snprintf(nw, sizeof nw, "%d.weight", 2 * (l - 1));   /* nn.Sequential names */
        snprintf(nb, sizeof nb, "%d.bias", 2 * (l - 1));
        m->h[l - 1] = hcur;
        m->W[l - 1] = wick_g_param(g, nw, (int)m->nl[l], (int)m->nl[l - 1]);
        m->b[l - 1] = wick_g_param(g, nb, 1, (int)m->nl[l]);
        hcur = wick_g_dense(g, hcur, m->W[l - 1], m->b[l - 1], l == L ? lin : c->act);
    }
    m->out = hcur;
    /* loss 1/2 sum (z - y)^2 (the book's ch. 10) */
    m->y = wick_g_input(g, "y", (int)c->nout);
    wick_node d = wick_g_add(g, m->out, wick_g_scale(g, m->y, -1.0));
    m->loss = wick_g_scale(g, wick_g_sum(g, wick_g_mul(g, d, d)), 0.5);
    if ((st = wick_graph_compile(g))) { wick_net64_free(m); return st; }
    *out = m;
    return WICK_OK;
}

double *wick_net64_weight(wick_net64 *m, int l) {
    return l >= 1 && l <= m->c.depth ? wick_graph_value(m->g, m->W[l - 1]) : NULL;
}
double *wick_net64_bias(wick_net64 *m, int l) {
    return l >= 1 && l <= m->c.depth ? wick_graph_value(m->g, m->b[l - 1]) : NULL;
}

void wick_net64_init(wick_net64 *m, uint64_t seed, uint64_t k) {
    for (int l = 1; l <= m->c.depth; l++)
        ex_draw_layer(wick_net64_weight(m, l), wick_net64_bias(m, l), m->nl[l], m->nl[l - 1],
                      m->c.cb, m->c.cw, seed, k, l);
}

static wick_status set_rows(wick_net64 *m, size_t n) {
    return wick_graph_set_batch(m->g, (int)n);
}

wick_status wick_net64_forward(wick_net64 *m, const double *x, size_t n, double *z) {
    size_t n0 = m->c.n0, no = m->c.nout;
    for (size_t r0 = 0; r0 < n; r0 += (size_t)m->max_batch) {
        size_t cnt = n - r0 < (size_t)m->max_batch ? n - r0 : (size_t)m->max_batch;
        wick_status st = set_rows(m, cnt);
        if (st) return st;
        memcpy(wick_graph_value(m->g, m->x), x + r0 * n0, sizeof(double) * cnt * n0);
        wick_graph_forward_to(m->g, m->out);
        memcpy(z + r0 * no, wick_graph_value(m->g, m->out), sizeof(double) * cnt * no);
    }
    return WICK_OK;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

wick_status wick_net64_ntk(wick_net64 *m, const double *x, size_t n, int direct, double *H) {
    int L = m->c.depth;
    size_t n0 = m->c.n0, no = m->c.nout, R = n * no;
    wick_graph *g = m->g;
    /* per row (a, i): delta^(l) for each layer, and per input the layer inputs
     * h^(l-1); or, direct, every parameter's gradient */
    size_t sd = 0, sh = 0, sp = 0;
    for (int l = 1; l <= L; l++) {
        sd += m->nl[l];
        sh += m->nl[l - 1];
        sp += m->nl[l] * m->nl[l - 1] + m->nl[l];
    }
    double *D = wick_malloc(sizeof(double) * R * (direct ? sp : sd));
    double *Hh = wick_malloc(sizeof(double) * n * sh);
    double *seed = wick_calloc(no, sizeof(double));
    if (!D || !Hh || !seed) {
        wick_free(D); wick_free(Hh); wick_free(seed);
        return wick_fail(WICK_ENOMEM, "net64: out of memory for the NTK of %zu inputs", n);
    }
    wick_status st = set_rows(m, 1);
    if (st) goto out;
    for (size_t a = 0; a < n; a++) {
        memcpy(wick_graph_value(g, m->x), x + a * n0, sizeof(double) * n0);
        wick_graph_forward_to(g, m->out);
        double *hp = Hh + a * sh;
        for (int l = 1; l <= L; l++) {
            memcpy(hp, wick_graph_value(g, m->h[l - 1]), sizeof(double) * m->nl[l - 1]);
            hp += m->nl[l - 1];
        }
        for (size_t i = 0; i < no; i++) {
            seed[i] = 1.0;
            wick_graph_backward_seed(g, m->out, seed, NULL, NULL);
            seed[i] = 0.0;
            double *dp = D + (a * no + i) * (direct ? sp : sd);
            for (int l = 1; l <= L; l++) {
                size_t nl = m->nl[l], np = m->nl[l - 1];
                if (direct) {
                    /* scaled so that plain dot products give H: sqrt(lambda) */
                    double sw = sqrt(m->c.lambda_w / (double)np), sb = sqrt(m->c.lambda_b);
                    const double *gw = wick_graph_grad(g, m->W[l - 1]);
                    const double *gb = wick_graph_grad(g, m->b[l - 1]);
                    for (size_t q = 0; q < nl * np; q++) dp[q] = sw * gw[q];
                    dp += nl * np;
                    for (size_t q = 0; q < nl; q++) dp[q] = sb * gb[q];
                    dp += nl;
                } else {
                    memcpy(dp, wick_graph_grad(g, m->b[l - 1]), sizeof(double) * nl);
                    dp += nl;
                }
            }
        }
    }
    for (size_t r = 0; r < R; r++)
        for (size_t s = r; s < R; s++) {
            double v = 0;
            if (direct) {
                v = dot(D + r * sp, D + s * sp, sp);
            } else {
                const double *dr = D + r * sd, *ds = D + s * sd;
                const double *ha = Hh + (r / no) * sh, *hb = Hh + (s / no) * sh;
                for (int l = 1; l <= L; l++) {
                    size_t nl = m->nl[l], np = m->nl[l - 1];
                    v += dot(dr, ds, nl) * (m->c.lambda_b + m->c.lambda_w / (double)np * dot(ha, hb, np));
                    dr += nl; ds += nl; ha += np; hb += np;
                }
            }
            H[r * R + s] = H[s * R + r] = v;
        }
out:
    wick_free(D); wick_free(Hh); wick_free(seed);
    return st;
}

wick_status wick_net64_gd_step(wick_net64 *m, const double *x, const double *y, size_t n,
                               double eta, double *loss) {
    if (n < 1 || n > (size_t)m->max_batch)
        return wick_fail(WICK_EINVAL, "net64: a full batch of %zu inputs, expected 1..%d", n,
                         m->max_batch);
    if (!isfinite(eta) || eta <= 0)
        return wick_fail(WICK_EINVAL, "net64: learning rate %g must be positive", eta);
    wick_graph *g = m->g;
    wick_status st = set_rows(m, n);
    if (st) return st;
    memcpy(wick_graph_value(g, m->x), x, sizeof(double) * n * m->c.n0);
    memcpy(wick_graph_value(g, m->y), y, sizeof(double) * n * m->c.nout);
    wick_graph_forward(g);
    double lv = *(const double *)wick_graph_value(g, m->loss);
    if (loss) *loss = lv;
    if (!isfinite(lv))
        return wick_fail(WICK_EDIVERGED, "net64: the loss is %g: gradient descent diverged", lv);
    wick_graph_backward(g, m->loss, NULL, NULL);
    for (int l = 1; l <= m->c.depth; l++) {
        size_t nl = m->nl[l], np = m->nl[l - 1];
        double ew = eta * m->c.lambda_w / (double)np, eb = eta * m->c.lambda_b;
        double *W = wick_graph_value(g, m->W[l - 1]), *b = wick_graph_value(g, m->b[l - 1]);
        const double *gw = wick_graph_grad(g, m->W[l - 1]), *gb = wick_graph_grad(g, m->b[l - 1]);
        for (size_t q = 0; q < nl * np; q++) W[q] -= ew * gw[q];
        for (size_t q = 0; q < nl; q++) b[q] -= eb * gb[q];
    }
    return WICK_OK;
}
