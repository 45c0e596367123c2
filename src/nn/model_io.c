/* model_io.c — MLP parameters to and from safetensors files, named as a
 * PyTorch nn.Sequential state_dict ("0.weight" [out, in], "0.bias" [out]),
 * so a model moves between wick and PyTorch both ways. */
#include "core/core.h"
#include "core/cnum.h"
#include "nn/nn_internal.h"
#include "nn/model_io.h"
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
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
    wick_vsnprintf_c(buf, sizeof buf, fmt, ap);
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

wick_status nn_check_finite(const float *v, size_t n, const char *path, const char *name) {
    size_t i = nn_first_nonfinite(v, n);
    if (i == n) return WICK_OK;
    char e[96];
    return wick_fail(WICK_EFORMAT, "%s: tensor '%s' is not finite at index %zu (%g)", path,
                     wick_escape(name, e, sizeof e), i, v[i]);
}

static const char *shape_text(const wick_st_tensor *t, char *buf, size_t size) {
    buf[0] = 0;
    for (int d = 0, o = 0; d < t->ndim && o < (int)size; d++)
        o += snprintf(buf + o, size - o, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    return buf;
}

wick_status nn_check_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix) {
    /* every model tensor present, with its shape and dtype, and finite */
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
                char got[96], want[64];
                if (k) snprintf(want, sizeof want, "%lld", (long long)cols);
                else snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
                return wick_fail(WICK_ESHAPE, "%s: tensor '%s' has shape [%s], the model needs [%s]",
                                 path, name, shape_text(t, got, sizeof got), want);
            }
            wick_status s = nn_check_finite(t->data, (size_t)rows * cols, path, name);
            if (s != WICK_OK) return s;
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
                char arch[256], e[96];
                wick_arch_format(&m->c, arch, sizeof arch);
                return wick_fail(WICK_EFORMAT, "%s: tensor '%s' is not part of the model %s", path,
                                 wick_escape(nm, e, sizeof e), arch);
            }
        }
    return WICK_OK;
}

void nn_copy_params(wick_mlp *m, const wick_st_file *f, const char *prefix) {
    for (int l = 0; l < m->c.layers; l++)
        for (int k = 0; k < 2; k++) {
            wick_node n = k ? m->b[l] : m->W[l];
            char name[128];
            snprintf(name, sizeof name, "%s%s", prefix, wick_graph_name(m->g, n));
            const float *src = wick_st_find(f, name)->data;
            nn_load_rows(m, n, src, wick_graph_rows(m->g, n), wick_graph_cols(m->g, n));
        }
}

wick_status nn_load_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix) {
    wick_status s = nn_check_params(m, f, path, prefix);
    if (s == WICK_OK) nn_copy_params(m, f, prefix);   /* all checked: a refused file changes nothing */
    return s;
}

wick_status wick_mlp_load_params(wick_mlp *m, const char *path) {
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    s = nn_verify_checksum(f, path, 0);
    if (s == WICK_OK) s = nn_load_params(m, f, path, "");
    wick_st_free(f);
    return s;
}

/* The layer index k of a state_dict name "k.weight"; -1 if not of that form. */
static int weight_index(const char *name) {
    int64_t k;
    const char *dot = strchr(name, '.');
    char num[24];
    if (!dot || dot == name || (size_t)(dot - name) >= sizeof num || strcmp(dot, ".weight")) return -1;
    memcpy(num, name, (size_t)(dot - name));
    num[dot - name] = 0;
    return wick_parse_i64(num, 0, 4 * WICK_MAX_LAYERS - 1, &k) ? (int)k : -1;
}

/* The file's own tensors must be exactly those of the architecture its
 * metadata claims, so that what the caller then allocates for the
 * parameters is bounded by the file's size (a 1 KB file claiming
 * 784-[16384]x4-10 is refused here, not after a gigabyte of zeros). */
static wick_status check_arch_tensors(const wick_st_file *f, const char *path, const wick_mlp_config *c) {
    char arch[512];
    wick_arch_format(c, arch, sizeof arch);
    for (int l = 0; l < c->layers; l++)
        for (int k = 0; k < 2; k++) {
            char name[32], got[96], want[64];
            snprintf(name, sizeof name, k ? "%d.bias" : "%d.weight", 2 * l);
            const wick_st_tensor *t = wick_st_find(f, name);
            if (!t)
                return wick_fail(WICK_ESHAPE, "%s: no tensor '%s', which the architecture %s in __metadata__ needs",
                                 path, name, arch);
            int ok = t->dtype == WICK_DT_F32 &&
                     (k ? t->ndim == 1 && t->shape[0] == c->widths[l + 1]
                        : t->ndim == 2 && t->shape[0] == c->widths[l + 1] && t->shape[1] == c->widths[l]);
            if (!ok) {
                if (k) snprintf(want, sizeof want, "%d", c->widths[l + 1]);
                else snprintf(want, sizeof want, "%d, %d", c->widths[l + 1], c->widths[l]);
                return wick_fail(WICK_ESHAPE, "%s: tensor '%s' is %s [%s], but the architecture %s in __metadata__ "
                                 "needs F32 [%s]", path, name, wick_dtype_name(t->dtype),
                                 shape_text(t, got, sizeof got), arch, want);
            }
        }
    for (int i = 0; i < wick_st_count(f); i++) {
        const char *nm = wick_st_get(f, i)->name;
        if (is_prefixed(nm, "optimizer.")) continue;
        int k = weight_index(nm), ok = k >= 0 && k % 2 == 0 && k / 2 < c->layers;
        if (!ok) {
            const char *dot = strrchr(nm, '.');
            char num[24];
            int64_t j;
            if (dot && !strcmp(dot, ".bias") && (size_t)(dot - nm) < sizeof num) {
                memcpy(num, nm, (size_t)(dot - nm));
                num[dot - nm] = 0;
                ok = wick_parse_i64(num, 0, 2 * c->layers - 2, &j) && j % 2 == 0;
            }
        }
        if (!ok) {
            char e[96];
            return wick_fail(WICK_ESHAPE, "%s: tensor '%s' is not part of the architecture %s in __metadata__",
                             path, wick_escape(nm, e, sizeof e), arch);
        }
    }
    return WICK_OK;
}

wick_status nn_config_from_st(const wick_st_file *f, const char *path, wick_mlp_config *c, int *has_act) {
    wick_status s = nn_verify_checksum(f, path, 0);
    if (s != WICK_OK) return s;
    const char *arch = wick_st_meta(f, "arch"), *act = wick_st_meta(f, "act");
    char e[96];
    *has_act = 0;
    if (arch) {
        wick_mlp_config got = *c;
        if ((s = wick_arch_parse(arch, &got)) != WICK_OK)
            return wick_fail(s, "%s: __metadata__: %s", path, wick_last_error());
        if (act) {
            if ((s = wick_act_parse(act, &got.act)) != WICK_OK)
                return wick_fail(s, "%s: __metadata__: %s", path, wick_last_error());
            const char *slope = wick_st_meta(f, "act_slope");
            if (slope && !wick_parse_f64(slope, 0, &got.act.slope))
                return wick_fail(WICK_EFORMAT, "%s: __metadata__ act_slope = '%s' is not a finite number", path,
                                 wick_escape(slope, e, sizeof e));
        }
        const char *loss = wick_st_meta(f, "loss");
        if (!loss || !strcmp(loss, "cross_entropy")) got.loss = WICK_LOSS_XENT;
        else if (!strcmp(loss, "mse")) got.loss = WICK_LOSS_MSE;
        else
            return wick_fail(WICK_EFORMAT, "%s: __metadata__ loss = '%s' is neither cross_entropy nor mse", path,
                             wick_escape(loss, e, sizeof e));
        if ((s = check_arch_tensors(f, path, &got)) != WICK_OK) return s;
        *c = got;
        *has_act = act != NULL;
        return WICK_OK;
    }
    /* No metadata (e.g. saved by PyTorch): the Linear layers' shapes, in
     * index order, give the widths; they must chain. */
    int idx[WICK_MAX_LAYERS], n = 0;
    for (int i = 0; i < wick_st_count(f); i++) {
        const wick_st_tensor *t = wick_st_get(f, i);
        int k = weight_index(t->name);
        if (k < 0 || t->ndim != 2) continue;
        if (n == WICK_MAX_LAYERS) return wick_fail(WICK_EFORMAT, "%s: more than %d layers", path, WICK_MAX_LAYERS);
        int j = n++;
        while (j > 0 && idx[j - 1] > k) { idx[j] = idx[j - 1]; j--; }
        idx[j] = k;
    }
    if (n == 0) return wick_fail(WICK_EFORMAT, "%s: no '<k>.weight' matrices and no 'arch' in __metadata__", path);
    wick_mlp_config got = *c;
    for (int l = 0; l < n; l++) {
        char name[32];
        snprintf(name, sizeof name, "%d.weight", idx[l]);
        const wick_st_tensor *t = wick_st_find(f, name);
        if (idx[l] != 2 * l)
            return wick_fail(WICK_EFORMAT, "%s: expected '%d.weight' (Linear layers at 0, 2, 4, ...), found '%s'",
                             path, 2 * l, name);
        for (int d = 0; d < 2; d++)
            if (t->shape[d] < 1 || t->shape[d] > 1 << 24)
                return wick_fail(WICK_ESHAPE, "%s: '%s' has a dimension of %lld (widths are 1 to %d)", path, name,
                                 (long long)t->shape[d], 1 << 24);
        if (l == 0) got.widths[0] = (int)t->shape[1];
        else if (t->shape[1] != got.widths[l])
            return wick_fail(WICK_ESHAPE, "%s: '%s' takes %lld inputs but the layer before gives %d", path,
                             name, (long long)t->shape[1], got.widths[l]);
        got.widths[l + 1] = (int)t->shape[0];
    }
    got.layers = n;
    *c = got;
    return WICK_OK;
}

wick_status wick_mlp_config_from_file(const char *path, wick_mlp_config *c, int *has_act) {
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    s = nn_config_from_st(f, path, c, has_act);
    wick_st_free(f);
    return s;
}
