/* model_io.c — MLP parameters to and from safetensors files, named as a
 * PyTorch nn.Sequential state_dict ("0.weight" [out, in], "0.bias" [out]),
 * so a model moves between wick and PyTorch both ways. */
#include "core/core.h"
#include "nn/nn_internal.h"
#include "nn/model_io.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ----------------------------------------------------------- */

void nn_model_meta(const wick_mlp *m, nn_meta *meta) {
    meta->n = 0;
    char arch[512];
    wick_arch_format(&m->c, arch, sizeof arch);
    nn_meta_set(meta, "format", "wick-model");
    nn_meta_set(meta, "wick_version", WICK_VERSION);
    nn_meta_set(meta, "arch", arch);
    nn_meta_set(meta, "act", wick_act_name(m->c.act));
    nn_meta_setf(meta, "act_slope", "%.17g", m->c.act.slope);
    nn_meta_set(meta, "init", wick_init_name(m->c.init));
    nn_meta_set(meta, "loss", m->c.loss == WICK_LOSS_XENT ? "cross_entropy" : "mse");
}

void nn_meta_set(nn_meta *meta, const char *key, const char *value) {
    if (meta->n >= NN_META_MAX) return;
    snprintf(meta->key[meta->n], sizeof meta->key[0], "%s", key);
    snprintf(meta->val[meta->n], sizeof meta->val[0], "%s", value);
    meta->n++;
}

void nn_meta_setf(nn_meta *meta, const char *key, const char *fmt, ...) {
    char buf[sizeof meta->val[0]];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    nn_meta_set(meta, key, buf);
}

/* Parameter tensor descriptors in state_dict order.  Float64 models are
 * converted into *scratch (freed by the caller). */
wick_status nn_param_tensors(wick_mlp *m, wick_st_tensor *t, float **scratch) {
    size_t total = 0;
    *scratch = NULL;
    for (int l = 0; l < m->c.layers; l++)
        total += nn_param_size(m, m->W[l]) + nn_param_size(m, m->b[l]);
    if (m->dt != WICK_DT_F32 && !(*scratch = wick_malloc(total * sizeof(float))))
        return wick_fail(WICK_ENOMEM, "model: out of memory converting to float32");
    size_t off = 0;
    for (int l = 0; l < m->c.layers; l++) {
        for (int k = 0; k < 2; k++) {
            wick_node n = k ? m->b[l] : m->W[l];
            wick_st_tensor *d = &t[2 * l + k];
            memset(d, 0, sizeof *d);
            d->name = wick_graph_name(m->g, n);
            d->dtype = WICK_DT_F32;
            d->ndim = k ? 1 : 2;
            d->shape[0] = wick_graph_rows(m->g, n) * (k ? wick_graph_cols(m->g, n) : 1);
            d->shape[1] = wick_graph_cols(m->g, n);
            size_t e = nn_param_size(m, n);
            if (*scratch) {
                const double *v = wick_graph_value(m->g, n);
                for (size_t i = 0; i < e; i++) (*scratch)[off + i] = (float)v[i];
                d->data = *scratch + off;
                off += e;
            } else {
                d->data = wick_graph_value(m->g, n);
            }
        }
    }
    return WICK_OK;
}

wick_status wick_mlp_save(wick_mlp *m, const char *path) {
    wick_st_tensor t[2 * WICK_MAX_LAYERS];
    float *scratch;
    wick_status s = nn_param_tensors(m, t, &scratch);
    if (s != WICK_OK) return s;
    nn_meta meta;
    nn_model_meta(m, &meta);
    s = nn_write(path, t, 2 * m->c.layers, &meta);
    wick_free(scratch);
    return s;
}

/* ---- reading ----------------------------------------------------------- */

static int is_prefixed(const char *name, const char *prefix) {
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

wick_status nn_load_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix) {
    /* every model tensor present, with its shape and dtype */
    for (int l = 0; l < m->c.layers; l++)
        for (int k = 0; k < 2; k++) {
            wick_node n = k ? m->b[l] : m->W[l];
            char name[128];
            snprintf(name, sizeof name, "%s%s", prefix, wick_graph_name(m->g, n));
            const wick_st_tensor *t = wick_st_find(f, name);
            int64_t rows = wick_graph_rows(m->g, n), cols = wick_graph_cols(m->g, n);
            if (!t) return wick_fail(WICK_EFORMAT, "%s: no tensor '%s' (the model needs it)", path, name);
            if (t->dtype != WICK_DT_F32)
                return wick_fail(WICK_EDTYPE, "%s: tensor '%s' is %s, the model needs F32", path, name,
                                 wick_dtype_name(t->dtype));
            int ok = k ? (t->ndim == 1 && t->shape[0] == cols)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
            if (!ok) {
                char got[96] = "", want[64];
                for (int d = 0, o = 0; d < t->ndim && o < (int)sizeof got; d++)
                    o += snprintf(got + o, sizeof got - o, d ? ", %lld" : "%lld", (long long)t->shape[d]);
                if (k) snprintf(want, sizeof want, "%lld", (long long)cols);
                else snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
                return wick_fail(WICK_ESHAPE, "%s: tensor '%s' has shape [%s], the model needs [%s]",
                                 path, name, got, want);
            }
        }
    /* and nothing the model lacks (the optimiser's state aside) */
    if (!*prefix)
        for (int i = 0; i < wick_st_count(f); i++) {
            const char *nm = wick_st_get(f, i)->name;
            if (is_prefixed(nm, "optimizer.")) continue;
            int found = 0;
            for (int l = 0; l < m->c.layers && !found; l++)
                found = !strcmp(nm, wick_graph_name(m->g, m->W[l])) || !strcmp(nm, wick_graph_name(m->g, m->b[l]));
            if (!found) {
                char arch[256];
                wick_arch_format(&m->c, arch, sizeof arch);
                return wick_fail(WICK_EFORMAT, "%s: tensor '%s' is not part of the model %s", path, nm, arch);
            }
        }
    /* all checked: now copy, so a refused file changes nothing */
    for (int l = 0; l < m->c.layers; l++)
        for (int k = 0; k < 2; k++) {
            wick_node n = k ? m->b[l] : m->W[l];
            char name[128];
            snprintf(name, sizeof name, "%s%s", prefix, wick_graph_name(m->g, n));
            const float *src = wick_st_find(f, name)->data;
            nn_load_rows(m, n, src, wick_graph_rows(m->g, n), wick_graph_cols(m->g, n));
        }
    return WICK_OK;
}

wick_status wick_mlp_load_params(wick_mlp *m, const char *path) {
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    s = nn_verify_checksum(f, path);
    if (s == WICK_OK) s = nn_load_params(m, f, path, "");
    wick_st_free(f);
    return s;
}

/* The layer index k of a state_dict name "k.weight"; -1 if not of that form. */
static int weight_index(const char *name) {
    char *end;
    long k = strtol(name, &end, 10);
    return end != name && !strcmp(end, ".weight") && k >= 0 && k < 4 * WICK_MAX_LAYERS ? (int)k : -1;
}

wick_status wick_mlp_config_from_file(const char *path, wick_mlp_config *c, int *has_act) {
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    const char *arch = wick_st_meta(f, "arch"), *act = wick_st_meta(f, "act");
    *has_act = 0;
    if (arch) {
        s = wick_arch_parse(arch, c);
        if (s == WICK_OK && act) {
            s = wick_act_parse(act, &c->act);
            const char *slope = wick_st_meta(f, "act_slope");
            if (s == WICK_OK && slope) c->act.slope = strtod(slope, NULL);
            *has_act = s == WICK_OK;
        }
        const char *loss = wick_st_meta(f, "loss");
        if (loss && !strcmp(loss, "mse")) c->loss = WICK_LOSS_MSE;
        if (s != WICK_OK) s = wick_fail(s, "%s: __metadata__: %s", path, wick_last_error());
        wick_st_free(f);
        return s;
    }
    /* No metadata (e.g. saved by PyTorch): the Linear layers' shapes, in
     * index order, give the widths; they must chain. */
    int idx[WICK_MAX_LAYERS], n = 0;
    for (int i = 0; i < wick_st_count(f); i++) {
        const wick_st_tensor *t = wick_st_get(f, i);
        int k = weight_index(t->name);
        if (k < 0 || t->ndim != 2) continue;
        if (n == WICK_MAX_LAYERS) { s = wick_fail(WICK_EFORMAT, "%s: too many layers", path); break; }
        int j = n++;
        while (j > 0 && idx[j - 1] > k) { idx[j] = idx[j - 1]; j--; }
        idx[j] = k;
    }
    if (s == WICK_OK && n == 0) s = wick_fail(WICK_EFORMAT, "%s: no '<k>.weight' matrices and no 'arch' in __metadata__", path);
    for (int l = 0; s == WICK_OK && l < n; l++) {
        char name[32];
        snprintf(name, sizeof name, "%d.weight", idx[l]);
        const wick_st_tensor *t = wick_st_find(f, name);
        if (l == 0) c->widths[0] = (int)t->shape[1];
        else if (t->shape[1] != c->widths[l])
            s = wick_fail(WICK_ESHAPE, "%s: '%s' takes %lld inputs but the layer before gives %d", path,
                          name, (long long)t->shape[1], c->widths[l]);
        c->widths[l + 1] = (int)t->shape[0];
        if (idx[l] != 2 * l)
            s = wick_fail(WICK_EFORMAT, "%s: expected '%d.weight' (Linear layers at 0, 2, 4, ...), found '%s'",
                          path, 2 * l, name);
    }
    c->layers = n;
    wick_st_free(f);
    return s;
}
