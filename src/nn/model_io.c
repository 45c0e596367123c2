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
    nn_meta_set(meta, "format", "wick-model");
    nn_meta_set(meta, "wick_version", WICK_VERSION);
    if (m->is_mlp) {
        char arch[512];
        wick_arch_format(&m->c, arch, sizeof arch);
        nn_meta_set(meta, "arch", arch);
        nn_meta_set(meta, "act", wick_act_name(m->c.act));
        nn_meta_setf(meta, "act_slope", "%.17g", m->c.act.slope);
    } else {
        /* the layer spec in full: activations, dropout, pooling are in it */
        char spec[sizeof meta->val[0]];
        if (wick_spec_format(m->spec, spec, sizeof spec) < sizeof spec) nn_meta_set(meta, "spec", spec);
    }
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

/* The model's tensors in state_dict order, shaped as files hold them.
 * Float64 models are converted into *scratch (freed by the caller). */
wick_status nn_param_tensors(wick_mlp *m, wick_st_tensor *t, float **scratch) {
    size_t total = 0;
    *scratch = NULL;
    for (int i = 0; i < m->nt; i++)
        if (m->ft[i].dtype == WICK_DT_F32) total += nn_spec_tensor_elems(&m->ft[i]);
    if (m->dt != WICK_DT_F32 && !(*scratch = wick_malloc((total ? total : 1) * sizeof(float))))
        return wick_fail(WICK_ENOMEM, "model: out of memory converting to float32");
    size_t off = 0;
    for (int i = 0; i < m->nt; i++) {
        const nn_spec_tensor *f = &m->ft[i];
        wick_st_tensor *d = &t[i];
        memset(d, 0, sizeof *d);
        d->name = wick_graph_name(m->g, m->tensor[i]);
        d->dtype = f->dtype;
        d->ndim = f->ndim;
        for (int k = 0; k < f->ndim; k++) d->shape[k] = f->shape[k];
        d->data = wick_graph_value(m->g, m->tensor[i]);
        if (*scratch && f->dtype == WICK_DT_F32) {
            size_t e = nn_spec_tensor_elems(f);
            const double *v = d->data;
            for (size_t j = 0; j < e; j++) (*scratch)[off + j] = (float)v[j];
            d->data = *scratch + off;
            off += e;
        }
    }
    return WICK_OK;
}

wick_status wick_mlp_save(wick_mlp *m, const char *path) {
    wick_st_tensor *t = wick_calloc((size_t)(m->nt ? m->nt : 1), sizeof *t);
    nn_meta *meta = wick_malloc(sizeof *meta);
    float *scratch = NULL;
    wick_status s = !t || !meta ? wick_fail(WICK_ENOMEM, "%s: out of memory", path) : WICK_OK;
    if (s == WICK_OK) s = nn_param_tensors(m, t, &scratch);
    if (s == WICK_OK) {
        nn_model_meta(m, meta);
        s = nn_write(path, t, m->nt, meta);
    }
    wick_free(scratch);
    wick_free(t);
    wick_free(meta);
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

/* Tensor f_t of a file against the model's file tensor want: dtype, shape,
 * finite values (a counter: >= 0). */
static wick_status check_tensor(const wick_st_tensor *t, const nn_spec_tensor *want, const char *path,
                                const char *name) {
    char got[96], e[96];
    if (t->dtype != want->dtype)
        return wick_fail(WICK_EDTYPE, "%s: tensor '%s' is %s, the model needs %s", path,
                         wick_escape(name, e, sizeof e), wick_dtype_name(t->dtype), wick_dtype_name(want->dtype));
    int ok = t->ndim == want->ndim;
    for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == want->shape[d];
    /* a counter written as [1] rather than PyTorch's 0-D [] (numpy's
       ascontiguousarray makes that of a scalar) is the same count */
    if (!ok && want->dtype == WICK_DT_I64 && want->ndim == 0) ok = t->ndim == 1 && t->shape[0] == 1;
    if (!ok) {
        char w[96] = "";
        for (int d = 0, o = 0; d < want->ndim && o < (int)sizeof w; d++)
            o += snprintf(w + o, sizeof w - o, d ? ", %lld" : "%lld", (long long)want->shape[d]);
        return wick_fail(WICK_ESHAPE, "%s: tensor '%s' has shape [%s], the model needs [%s]", path,
                         wick_escape(name, e, sizeof e), shape_text(t, got, sizeof got), w);
    }
    if (want->dtype == WICK_DT_I64) {
        int64_t v;
        memcpy(&v, t->data, sizeof v);
        if (v < 0)
            return wick_fail(WICK_EFORMAT, "%s: tensor '%s' is %lld, a count must be >= 0", path,
                             wick_escape(name, e, sizeof e), (long long)v);
        return WICK_OK;
    }
    return nn_check_finite(t->data, nn_spec_tensor_elems(want), path, name);
}

wick_status nn_check_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix) {
    /* every model tensor present, with its shape and dtype, and finite; under
       a prefix (the best snapshot of a checkpoint) the float ones only: the
       parameters and batch norm's running statistics, not its counter */
    for (int i = 0; i < m->nt; i++) {
        if (*prefix && m->ft[i].dtype != WICK_DT_F32) continue;
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, m->ft[i].name);
        const wick_st_tensor *t = wick_st_find(f, name);
        if (!t) return wick_fail(WICK_EFORMAT, "%s: no tensor '%s' (the model needs it)", path, name);
        wick_status s = check_tensor(t, &m->ft[i], path, name);
        if (s != WICK_OK) return s;
    }
    /* and nothing the model lacks (the optimiser's state aside) */
    if (!*prefix)
        for (int i = 0; i < wick_st_count(f); i++) {
            const char *nm = wick_st_get(f, i)->name;
            if (is_prefixed(nm, "optimizer.")) continue;
            int found = 0;
            for (int k = 0; k < m->nt && !found; k++) found = !strcmp(nm, m->ft[k].name);
            if (!found) {
                char arch[256], e[96];
                if (m->is_mlp) wick_arch_format(&m->c, arch, sizeof arch);
                else if (wick_spec_format(m->spec, arch, sizeof arch) >= sizeof arch) strcpy(arch + sizeof arch - 4, "...");
                return wick_fail(WICK_EFORMAT, "%s: tensor '%s' is not part of the model %s", path,
                                 wick_escape(nm, e, sizeof e), arch);
            }
        }
    return WICK_OK;
}

void nn_copy_params(wick_mlp *m, const wick_st_file *f, const char *prefix) {
    for (int i = 0; i < m->nt; i++) {
        if (*prefix && m->ft[i].dtype != WICK_DT_F32) continue;
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, m->ft[i].name);
        const wick_st_tensor *t = wick_st_find(f, name);
        wick_node n = m->tensor[i];
        if (m->ft[i].dtype == WICK_DT_I64) memcpy(wick_graph_value(m->g, n), t->data, sizeof(int64_t));
        else nn_load_rows(m, n, t->data, wick_graph_rows(m->g, n), wick_graph_cols(m->g, n));
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

/* ---- layer specs ------------------------------------------------------- */

wick_status nn_spec_from_st(const wick_st_file *f, const char *path, const char *given, wick_spec **out,
                            wick_mlp_config *c) {
    *out = NULL;
    wick_status s = nn_verify_checksum(f, path, 0);
    if (s != WICK_OK) return s;
    const char *text = wick_st_meta(f, "spec");
    char e[160];
    if (!text && !given) return WICK_OK;   /* an MLP, or a file that needs --arch */
    wick_spec *sp = NULL, *g = NULL;
    if (text && (s = wick_spec_parse(text, &sp)) != WICK_OK)
        return wick_fail(s, "%s: __metadata__ spec: %s", path, wick_last_error());
    if (given && (s = wick_spec_parse(given, &g)) != WICK_OK) {
        wick_spec_free(sp);
        return s;
    }
    if (sp && g) {
        char a[4096], b[4096];
        wick_spec_format(sp, a, sizeof a);
        wick_spec_format(g, b, sizeof b);
        wick_spec_free(g);
        g = NULL;
        if (strcmp(a, b)) {
            wick_spec_free(sp);
            return wick_fail(WICK_ESHAPE, "%s holds the network %s, not --arch %s", path, wick_escape(a, e, sizeof e), b);
        }
    }
    if (!sp) sp = g;
    /* the file's tensors must be exactly the spec's, so that what the caller
       allocates for the model is bounded by the file's own size */
    nn_spec_tensor *want = wick_malloc(NN_MAX_TENSORS * sizeof *want);
    if (!want) {
        wick_spec_free(sp);
        return wick_fail(WICK_ENOMEM, "%s: out of memory", path);
    }
    int n = nn_spec_tensors(sp, want, NN_MAX_TENSORS);
    if (n > NN_MAX_TENSORS) s = wick_fail(WICK_EINVAL, "%s: the spec has more than %d tensors", path, NN_MAX_TENSORS);
    for (int i = 0; i < n && s == WICK_OK; i++) {
        const wick_st_tensor *t = wick_st_find(f, want[i].name);
        if (!t) s = wick_fail(WICK_ESHAPE, "%s: no tensor '%s', which the network needs", path, want[i].name);
        else s = check_tensor(t, &want[i], path, want[i].name);
    }
    for (int i = 0; i < wick_st_count(f) && s == WICK_OK; i++) {
        const char *nm = wick_st_get(f, i)->name;
        if (is_prefixed(nm, "optimizer.")) continue;
        int found = 0;
        for (int k = 0; k < n && !found; k++) found = !strcmp(nm, want[k].name);
        if (!found)
            s = wick_fail(WICK_ESHAPE, "%s: tensor '%s' is not part of the network", path, wick_escape(nm, e, sizeof e));
    }
    wick_free(want);
    const char *loss = wick_st_meta(f, "loss"), *init = wick_st_meta(f, "init");
    if (s == WICK_OK && loss && strcmp(loss, "cross_entropy") && strcmp(loss, "mse"))
        s = wick_fail(WICK_EFORMAT, "%s: __metadata__ loss = '%s' is neither cross_entropy nor mse", path,
                      wick_escape(loss, e, sizeof e));
    if (s != WICK_OK) {
        wick_spec_free(sp);
        return s;
    }
    c->loss = loss && !strcmp(loss, "mse") ? WICK_LOSS_MSE : WICK_LOSS_XENT;
    if (init) wick_init_parse(init, &c->init);   /* informative only: the weights are in the file */
    *out = sp;
    return WICK_OK;
}

wick_status wick_net_spec_from_file(const char *path, const char *given, wick_spec **out, wick_mlp_config *c) {
    if (!path || !out || !c) return wick_fail(WICK_EINVAL, "wick_net_spec_from_file: NULL argument");
    *out = NULL;
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    s = nn_spec_from_st(f, path, given, out, c);
    wick_st_free(f);
    return s;
}
