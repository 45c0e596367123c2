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

static const char *init_names[] = {"critical", "book", "he", "glorot", "torch"};

wick_status wick_init_parse(const char *name, wick_init_kind *out) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, init_names[i])) { *out = (wick_init_kind)i; return WICK_OK; }
    return wick_fail(WICK_EINVAL, "unknown initialisation '%s' (critical, book, he, glorot, torch)", name);
}

const char *wick_init_name(wick_init_kind k) { return (unsigned)k < 5 ? init_names[k] : "unknown"; }

/* ---- construction ------------------------------------------------------ */

/* Resolves C_b, C_W for CRITICAL (from the spec's activation) and checks
 * them for BOOK, for the spec's k layers with weights. */
static wick_status resolve_init(wick_mlp *m, int k) {
    wick_mlp_config *c = &m->c;
    if (c->init == WICK_INIT_CRITICAL) {
        wick_act act = c->act;
        int has = nn_spec_activation(m->spec, &act);
        if (has < 0)
            return wick_fail(WICK_EINVAL, "--init critical needs one activation throughout the net; choose --init "
                             "he, glorot, torch or book");
        if (has == 0) act = (wick_act){WICK_ACT_LINEAR, 0};
        double cb, cw;
        wick_status s = wick_critical_init(act, &cb, &cw, NULL);
        if (s != WICK_OK)
            return wick_fail(s, "--init critical: %s; choose --init book with --cb and --cw", wick_last_error());
        for (int l = 0; l < k; l++) { c->cb[l] = cb; c->cw[l] = cw; }
    } else if (c->init == WICK_INIT_BOOK) {
        for (int l = 0; l < k; l++)
            if (!(c->cb[l] >= 0) || !(c->cw[l] > 0))
                return wick_fail(WICK_EINVAL, "mlp: layer %d needs C_b >= 0 and C_W > 0 (got %g, %g)", l + 1,
                                 c->cb[l], c->cw[l]);
    }
    return WICK_OK;
}

/* The graph of m->spec, the loss, and the list of file tensors. */
static wick_status build(wick_mlp *m) {
    const wick_spec *sp = m->spec;
    int k = nn_spec_weighted_layers(sp);
    if (k > WICK_MAX_LAYERS)
        return wick_fail(WICK_EINVAL, "net: %d layers with weights, at most %d", k, WICK_MAX_LAYERS);
    m->nin = sp->input[0] * (sp->input[1] ? sp->input[1] * sp->input[2] : 1);
    m->nout = sp->outputs;
    if (m->c.loss == WICK_LOSS_XENT && m->nout < 2)
        return wick_fail(WICK_EINVAL, "net: cross-entropy needs at least 2 outputs");
    wick_status s = resolve_init(m, k);
    if (s != WICK_OK) return s;
    if ((s = wick_graph_new(&m->g, m->dt, m->max_batch)) != WICK_OK) return s;
    wick_graph *g = m->g;
    nn_spec_build(g, sp, &m->nodes);
    m->x = m->nodes.x;
    m->out = m->nodes.out;
    if (m->is_mlp)
        for (int l = 0; l < m->c.layers; l++) {
            m->W[l] = m->nodes.weight[2 * l];
            m->b[l] = m->nodes.bias[2 * l];
        }
    if (m->c.loss == WICK_LOSS_XENT) {
        m->labels = wick_g_labels(g, "labels");
        m->target = -1;
        m->loss = wick_g_cross_entropy(g, m->out, m->labels, m->c.smoothing);
    } else {
        m->labels = -1;
        m->target = wick_g_input(g, "target", m->nout);
        m->loss = wick_g_mse(g, m->out, m->target);
    }
    if (m->c.act_l1 < 0 || !isfinite(m->c.act_l1))
        return wick_fail(WICK_EINVAL, "net: activation L1 penalty %g is not >= 0", m->c.act_l1);
    if (m->c.act_l1 > 0)
        for (int i = 0; i < sp->n; i++)
            if (sp->layer[i].kind == WICK_LAYER_ACT && m->nodes.node[i] != m->out)
                m->loss = wick_g_add(g, m->loss, wick_g_scale(g, wick_g_l1(g, m->nodes.node[i]), m->c.act_l1));
    if ((s = wick_graph_compile(g)) != WICK_OK) return s;
    /* parameters and states merged in creation order: the state_dict's */
    wick_node p[NN_MAX_TENSORS], st[NN_MAX_TENSORS];
    int np = wick_graph_params(g, p, NN_MAX_TENSORS), ns = wick_graph_states(g, st, NN_MAX_TENSORS);
    if (np + ns > NN_MAX_TENSORS) return wick_fail(WICK_EINVAL, "net: more than %d tensors", NN_MAX_TENSORS);
    for (int i = 0, j = 0; i < np || j < ns;)
        m->tensor[m->nt++] = j >= ns || (i < np && p[i] < st[j]) ? p[i++] : st[j++];
    /* the same list, as files hold it: a mismatch would be a bug in net.c */
    if (!(m->ft = wick_malloc((size_t)(m->nt ? m->nt : 1) * sizeof *m->ft)))
        return wick_fail(WICK_ENOMEM, "net: out of memory");
    int nf = nn_spec_tensors(sp, m->ft, m->nt);
    for (int i = 0; i < m->nt; i++)
        if (nf != m->nt || strcmp(m->ft[i].name, wick_graph_name(g, m->tensor[i])))
            return wick_fail(WICK_EINVAL, "net: tensor %d is '%s' in the graph, '%s' in the spec", i,
                             wick_graph_name(g, m->tensor[i]), i < nf ? m->ft[i].name : "");
    return WICK_OK;
}

static wick_status new_model(wick_mlp **out, wick_mlp *m) {
    wick_status s = build(m);
    if (s != WICK_OK) {
        wick_mlp_free(m);
        return s;
    }
    *out = m;
    return WICK_OK;
}

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
    m->is_mlp = 1;
    wick_status s = wick_spec_from_mlp(c, &m->spec);
    if (s != WICK_OK) {
        wick_free(m);
        return s;
    }
    return new_model(out, m);
}

wick_status wick_net_new(wick_mlp **out, const wick_spec *spec, const wick_mlp_config *c, wick_dtype dtype,
                         int max_batch) {
    if (!out || !spec || !c) return wick_fail(WICK_EINVAL, "wick_net_new: NULL argument");
    if (max_batch < 1) return wick_fail(WICK_EINVAL, "net: max batch %d < 1", max_batch);
    wick_mlp *m = wick_calloc(1, sizeof *m);
    if (!m || !(m->spec = wick_malloc(sizeof *m->spec))) {
        wick_free(m);
        return wick_fail(WICK_ENOMEM, "net: out of memory");
    }
    *m->spec = *spec;
    m->c = *c;
    m->c.layers = 0;
    m->dt = dtype;
    m->max_batch = max_batch;
    return new_model(out, m);
}

void wick_mlp_free(wick_mlp *m) {
    if (!m) return;
    wick_graph_free(m->g);
    wick_spec_free(m->spec);
    wick_free(m->ft);
    wick_free(m);
}

const wick_spec *wick_mlp_spec(const wick_mlp *m) { return m->spec; }
int wick_mlp_inputs(const wick_mlp *m) { return m->nin; }
int wick_mlp_outputs(const wick_mlp *m) { return m->nout; }

const wick_mlp_config *wick_mlp_config_of(const wick_mlp *m) { return &m->c; }
wick_graph *wick_mlp_graph(wick_mlp *m) { return m->g; }
wick_node wick_mlp_input(const wick_mlp *m) { return m->x; }
wick_node wick_mlp_output(const wick_mlp *m) { return m->out; }
wick_node wick_mlp_labels(const wick_mlp *m) { return m->labels; }
wick_node wick_mlp_target(const wick_mlp *m) { return m->target; }
wick_node wick_mlp_loss(const wick_mlp *m) { return m->loss; }
wick_node wick_mlp_weight(const wick_mlp *m, int l) { return l >= 0 && l < m->c.layers ? m->W[l] : -1; }
wick_node wick_mlp_bias(const wick_mlp *m, int l) { return l >= 0 && l < m->c.layers ? m->b[l] : -1; }

double wick_mlp_flops_per_sample(const wick_mlp *m) { return m->spec->flops_train; }

/* ---- initialisation ---------------------------------------------------- */

void wick_mlp_init(wick_mlp *m, uint64_t seed) {
    nn_spec_init(m->g, m->spec, &m->nodes, m->c.init, m->c.cb, m->c.cw, seed);
}

/* ---- prediction -------------------------------------------------------- */

wick_status wick_mlp_predict(wick_mlp *m, const float *x, size_t n, float *out) {
    int mb = m->max_batch, n0 = m->nin, nL = m->nout;
    int training = wick_graph_training(m->g);
    wick_graph_set_training(m->g, 0);   /* running statistics, no dropout */
    wick_status s = WICK_OK;
    for (size_t i = 0; i < n && s == WICK_OK; i += mb) {
        int rows = (int)(n - i < (size_t)mb ? n - i : (size_t)mb);
        if ((s = wick_graph_set_batch(m->g, rows)) != WICK_OK) break;
        nn_load_rows(m, m->x, x + i * n0, rows, n0);
        wick_graph_forward_to(m->g, m->out);
        nn_store_rows(m, m->out, out + i * nL, rows, nL);
    }
    wick_graph_set_training(m->g, training);
    return s;
}
