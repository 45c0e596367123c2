/* mlp.c — multilayer perceptrons on the static graph: architecture specs,
 * the book's initialisation (and He, Glorot), prediction, model files. */
#include "core/core.h"
#include "core/cnum.h"
#include "nn/nn_internal.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- architecture specs ------------------------------------------------ */

wick_status wick_arch_parse(const char *spec, wick_mlp_config *c) {
    int w[WICK_MAX_LAYERS + 1], n = 0;
    const char *p = spec;
    if (!spec || !*spec) return wick_fail(WICK_EINVAL, "architecture: empty spec");
    char e[128], ep[64];   /* the spec may come from a file: escaped in messages */
    const char *es = wick_escape(spec, e, sizeof e);
    while (*p) {
        int bracket = *p == '[';
        if (bracket) p++;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1 << 24 || errno)
            return wick_fail(WICK_EINVAL, "architecture '%s': expected a width >= 1 at '%s'", es,
                             wick_escape(p, ep, sizeof ep));
        p = end;
        long rep = 1;
        if (bracket) {
            if (p[0] != ']' || (p[1] != 'x' && p[1] != '*'))
                return wick_fail(WICK_EINVAL, "architecture '%s': write a repeat as [128]x16", es);
            p += 2;
            errno = 0;
            rep = strtol(p, &end, 10);
            if (end == p || rep < 1 || errno)
                return wick_fail(WICK_EINVAL, "architecture '%s': bad repeat count", es);
            p = end;
        }
        for (long i = 0; i < rep; i++) {
            if (n > WICK_MAX_LAYERS)
                return wick_fail(WICK_EINVAL, "architecture '%s': more than %d layers", es, WICK_MAX_LAYERS);
            w[n++] = (int)v;
        }
        if (*p == '-') p++;
        else if (*p) {
            char ch[2] = {*p, 0};
            return wick_fail(WICK_EINVAL, "architecture '%s': unexpected '%s'", es, wick_escape(ch, ep, sizeof ep));
        }
    }
    if (n < 2) return wick_fail(WICK_EINVAL, "architecture '%s': needs at least inputs and outputs, e.g. 784-10", es);
    c->layers = n - 1;
    memcpy(c->widths, w, n * sizeof *w);
    return WICK_OK;
}

void wick_arch_format(const wick_mlp_config *c, char *buf, size_t size) {
    size_t o = 0;
    buf[0] = 0;
    for (int l = 0; l <= c->layers && o < size; l++)
        o += snprintf(buf + o, size - o, l ? "-%d" : "%d", c->widths[l]);
}

static const char *init_names[] = {"critical", "book", "he", "glorot"};

wick_status wick_init_parse(const char *name, wick_init_kind *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, init_names[i])) { *out = (wick_init_kind)i; return WICK_OK; }
    return wick_fail(WICK_EINVAL, "unknown initialisation '%s' (critical, book, he, glorot)", name);
}

const char *wick_init_name(wick_init_kind k) { return (unsigned)k < 4 ? init_names[k] : "unknown"; }

/* ---- construction ------------------------------------------------------ */

wick_status wick_mlp_new(wick_mlp **out, const wick_mlp_config *c, wick_dtype dtype, int max_batch) {
    if (c->layers < 1 || c->layers > WICK_MAX_LAYERS)
        return wick_fail(WICK_EINVAL, "mlp: %d layers outside [1, %d]", c->layers, WICK_MAX_LAYERS);
    for (int l = 0; l <= c->layers; l++)
        if (c->widths[l] < 1) return wick_fail(WICK_EINVAL, "mlp: width n_%d = %d < 1", l, c->widths[l]);
    if (c->loss == WICK_LOSS_XENT && c->widths[c->layers] < 2)
        return wick_fail(WICK_EINVAL, "mlp: cross-entropy needs at least 2 outputs");
    wick_mlp *m = wick_calloc(1, sizeof *m);
    if (!m) return wick_fail(WICK_ENOMEM, "mlp: out of memory");
    m->c = *c;
    m->dt = dtype;
    m->max_batch = max_batch;
    if (c->init == WICK_INIT_CRITICAL) {
        double cb, cw;
        wick_status s = wick_critical_init(c->act, &cb, &cw, NULL);
        if (s != WICK_OK) {
            wick_free(m);
            return wick_fail(s, "--init critical: %s; choose --init book with --cb and --cw", wick_last_error());
        }
        for (int l = 0; l < c->layers; l++) { m->c.cb[l] = cb; m->c.cw[l] = cw; }
    } else if (c->init == WICK_INIT_BOOK) {
        for (int l = 0; l < c->layers; l++)
            if (!(c->cb[l] >= 0) || !(c->cw[l] > 0)) {
                wick_free(m);
                return wick_fail(WICK_EINVAL, "mlp: layer %d needs C_b >= 0 and C_W > 0 (got %g, %g)",
                                 l + 1, c->cb[l], c->cw[l]);
            }
    }
    wick_status s = wick_graph_new(&m->g, dtype, max_batch);
    if (s != WICK_OK) { wick_free(m); return s; }
    wick_graph *g = m->g;
    m->x = wick_g_input(g, "input", c->widths[0]);
    wick_node h = m->x;
    for (int l = 0; l < c->layers; l++) {
        char wn[32], bn[32];
        snprintf(wn, sizeof wn, "%d.weight", 2 * l);
        snprintf(bn, sizeof bn, "%d.bias", 2 * l);
        m->W[l] = wick_g_param(g, wn, c->widths[l + 1], c->widths[l]);
        m->b[l] = wick_g_param(g, bn, 1, c->widths[l + 1]);
        wick_act a = l + 1 < c->layers ? c->act : (wick_act){WICK_ACT_LINEAR, 0};
        h = wick_g_dense(g, h, m->W[l], m->b[l], a);
    }
    m->out = h;
    if (c->loss == WICK_LOSS_XENT) {
        m->labels = wick_g_labels(g, "labels");
        m->target = -1;
        m->loss = wick_g_cross_entropy(g, h, m->labels, c->smoothing);
    } else {
        m->labels = -1;
        m->target = wick_g_input(g, "target", c->widths[c->layers]);
        m->loss = wick_g_mse(g, h, m->target);
    }
    if ((s = wick_graph_compile(g)) != WICK_OK) {
        wick_mlp_free(m);
        return s;
    }
    *out = m;
    return WICK_OK;
}

void wick_mlp_free(wick_mlp *m) {
    if (!m) return;
    wick_graph_free(m->g);
    wick_free(m);
}

const wick_mlp_config *wick_mlp_config_of(const wick_mlp *m) { return &m->c; }
wick_graph *wick_mlp_graph(wick_mlp *m) { return m->g; }
wick_node wick_mlp_input(const wick_mlp *m) { return m->x; }
wick_node wick_mlp_output(const wick_mlp *m) { return m->out; }
wick_node wick_mlp_labels(const wick_mlp *m) { return m->labels; }
wick_node wick_mlp_target(const wick_mlp *m) { return m->target; }
wick_node wick_mlp_loss(const wick_mlp *m) { return m->loss; }
wick_node wick_mlp_weight(const wick_mlp *m, int l) { return l >= 0 && l < m->c.layers ? m->W[l] : -1; }
wick_node wick_mlp_bias(const wick_mlp *m, int l) { return l >= 0 && l < m->c.layers ? m->b[l] : -1; }

double wick_mlp_flops_per_sample(const wick_mlp *m) {
    double f = 0;
    for (int l = 0; l < m->c.layers; l++) {
        double mn = (double)m->c.widths[l] * m->c.widths[l + 1];
        f += 2 * mn * (l == 0 ? 2 : 3);   /* forward, weight gradient, input gradient but first */
    }
    return f;
}

/* ---- initialisation ---------------------------------------------------- */

static void fill(wick_mlp *m, wick_node n, int normal, double mean_or_lo, double std_or_hi,
                 uint64_t seed, uint64_t stream) {
    size_t k = nn_param_size(m, n);
    void *v = wick_graph_value(m->g, n);
    int f32 = m->dt == WICK_DT_F32;
    if (normal) {
        if (f32) wick_fill_normal_f32(v, k, mean_or_lo, std_or_hi, seed, stream, 0);
        else wick_fill_normal_f64(v, k, mean_or_lo, std_or_hi, seed, stream, 0);
        return;
    }
    for (size_t i = 0; i < k; i++) {
        double u = mean_or_lo + (std_or_hi - mean_or_lo) * wick_rand_uniform(seed, stream, i);
        if (f32) ((float *)v)[i] = (float)u;
        else ((double *)v)[i] = u;
    }
}

void wick_mlp_init(wick_mlp *m, uint64_t seed) {
    for (int l = 0; l < m->c.layers; l++) {
        double fan_in = m->c.widths[l], fan_out = m->c.widths[l + 1];
        uint64_t sw = 2 * (uint64_t)l, sb = sw + 1;
        switch (m->c.init) {
        case WICK_INIT_CRITICAL:
        case WICK_INIT_BOOK:
            fill(m, m->W[l], 1, 0, sqrt(m->c.cw[l] / fan_in), seed, sw);
            fill(m, m->b[l], 1, 0, sqrt(m->c.cb[l]), seed, sb);
            break;
        case WICK_INIT_HE:
            fill(m, m->W[l], 1, 0, sqrt(2 / fan_in), seed, sw);
            fill(m, m->b[l], 1, 0, 0, seed, sb);
            break;
        case WICK_INIT_GLOROT: {
            double a = sqrt(6 / (fan_in + fan_out));
            fill(m, m->W[l], 0, -a, a, seed, sw);
            fill(m, m->b[l], 1, 0, 0, seed, sb);
            break;
        }
        }
    }
}

/* ---- prediction -------------------------------------------------------- */

wick_status wick_mlp_predict(wick_mlp *m, const float *x, size_t n, float *out) {
    int mb = m->max_batch, n0 = m->c.widths[0], nL = m->c.widths[m->c.layers];
    for (size_t i = 0; i < n; i += mb) {
        int rows = (int)(n - i < (size_t)mb ? n - i : (size_t)mb);
        wick_status s = wick_graph_set_batch(m->g, rows);
        if (s != WICK_OK) return s;
        nn_load_rows(m, m->x, x + i * n0, rows, n0);
        wick_graph_forward_to(m->g, m->out);
        nn_store_rows(m, m->out, out + i * nL, rows, nL);
    }
    return WICK_OK;
}
