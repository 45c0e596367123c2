/* spec.c — the layer language: a network written as one token per entry of a
 * PyTorch nn.Sequential, e.g.
 *
 *   input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,flatten,linear:10
 *
 * parsed, checked through every shape before anything is allocated, and
 * summarised (output shapes, parameters, FLOPs, receptive fields).  Token k
 * after `input` is module k-1 of the nn.Sequential, so its state_dict names
 * are "<k-1>.weight", "<k-1>.running_mean", ...
 *
 * Shapes are (C, H, W) for images and (F, 0, 0) for flat tensors.  The
 * output-size formulas are PyTorch's (docs/layers.md):
 *   conv: floor((H + 2P - D(K-1) - 1) / S) + 1, pools the same with D = 1. */
#include "core/core.h"
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers, whatever the caller's locale ----------------------------- */

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_real(const char *s, double *out) {
    static locale_t c_locale;
    if (!c_locale) c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    char *end;
    errno = 0;
    double v = c_locale ? strtod_l(s, &end, c_locale) : strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* "3" or "3x5" into (a, b). */
static int parse_pair(const char *s, long lo, long hi, int *a, int *b) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *x = strchr(buf, 'x');
    long u, v;
    if (x) {
        *x = 0;
        if (!parse_long(buf, lo, hi, &u) || !parse_long(x + 1, lo, hi, &v)) return 0;
    } else {
        if (!parse_long(buf, lo, hi, &u)) return 0;
        v = u;
    }
    *a = (int)u;
    *b = (int)v;
    return 1;
}

/* ---- names -------------------------------------------------------------- */

static const char *const kind_names[] = {
    [WICK_LAYER_LINEAR] = "linear",       [WICK_LAYER_CONV2D] = "conv2d",
    [WICK_LAYER_BATCHNORM] = "batchnorm", [WICK_LAYER_DROPOUT] = "dropout",
    [WICK_LAYER_MAXPOOL] = "maxpool",     [WICK_LAYER_AVGPOOL] = "avgpool",
    [WICK_LAYER_GLOBALAVGPOOL] = "globalavgpool", [WICK_LAYER_FLATTEN] = "flatten",
    [WICK_LAYER_ACT] = "act"};

const char *wick_layer_kind_name(wick_layer_kind k) {
    return (unsigned)k < WICK_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

static int is_image(const int s[3]) { return s[1] > 0; }

/* ---- one token ---------------------------------------------------------- */

/* Splits tok at ':' into at most 16 fields (in place). */
static int split_fields(char *tok, char **f) {
    int n = 0;
    for (char *p = tok; n < 16;) {
        f[n++] = p;
        p = strchr(p, ':');
        if (!p) break;
        *p++ = 0;
    }
    return n;
}

/* Parses the token's fields after the name into L (kind already set). */
static wick_status parse_args(const char *tok, wick_layer *L, char **f, int nf) {
    int npos = 0;   /* positional arguments seen */
    for (int i = 1; i < nf; i++) {
        char *eq = strchr(f[i], '=');
        if (!*f[i]) return wick_fail(WICK_EINVAL, "%s: empty argument", tok);
        if (!eq) {
            /* positional: conv2d OUT K; linear OUT; dropout P; pools K */
            npos++;
            int ok;
            switch (L->kind) {
            case WICK_LAYER_CONV2D:
                if (npos == 1) { long v = 0; ok = parse_long(f[i], 1, 1 << 20, &v); L->out = (int)v; }
                else if (npos == 2) ok = parse_pair(f[i], 1, 1 << 12, &L->kh, &L->kw);
                else return wick_fail(WICK_EINVAL, "%s: unexpected argument '%s' (write stride=, pad=, dilation=, groups=, bias=)", tok, f[i]);
                break;
            case WICK_LAYER_LINEAR:
                if (npos == 1) { long v = 0; ok = parse_long(f[i], 1, 1 << 24, &v); L->out = (int)v; }
                else return wick_fail(WICK_EINVAL, "%s: unexpected argument '%s' (linear:OUT[:bias=0])", tok, f[i]);
                break;
            case WICK_LAYER_DROPOUT:
                if (npos == 1) ok = parse_real(f[i], &L->p) && L->p >= 0 && L->p < 1;
                else return wick_fail(WICK_EINVAL, "%s: unexpected argument '%s' (dropout:P)", tok, f[i]);
                if (!ok) return wick_fail(WICK_EINVAL, "%s: the drop probability must be in [0, 1)", tok);
                break;
            case WICK_LAYER_MAXPOOL:
            case WICK_LAYER_AVGPOOL:
                if (npos == 1) ok = parse_pair(f[i], 1, 1 << 12, &L->kh, &L->kw);
                else return wick_fail(WICK_EINVAL, "%s: unexpected argument '%s' (write stride=, pad=)", tok, f[i]);
                break;
            default:
                return wick_fail(WICK_EINVAL, "%s: %s takes no argument '%s'", tok, wick_layer_kind_name(L->kind), f[i]);
            }
            if (!ok) return wick_fail(WICK_EINVAL, "%s: bad number '%s'", tok, f[i]);
            continue;
        }
        *eq = 0;
        const char *key = f[i], *val = eq + 1;
        int conv = L->kind == WICK_LAYER_CONV2D, pool = L->kind == WICK_LAYER_MAXPOOL || L->kind == WICK_LAYER_AVGPOOL;
        int ok;
        if (!strcmp(key, "stride") && (conv || pool)) ok = parse_pair(val, 1, 1 << 12, &L->sh, &L->sw);
        else if (!strcmp(key, "pad") && (conv || pool)) ok = parse_pair(val, 0, 1 << 12, &L->ph, &L->pw);
        else if (!strcmp(key, "dilation") && conv) ok = parse_pair(val, 1, 1 << 12, &L->dh, &L->dw);
        else if (!strcmp(key, "groups") && conv) { long v = 0; ok = parse_long(val, 1, 1 << 20, &v); L->groups = (int)v; }
        else if (!strcmp(key, "bias") && (conv || L->kind == WICK_LAYER_LINEAR)) {
            long v = 0;
            ok = parse_long(val, 0, 1, &v);
            L->bias = (int)v;
        } else if (!strcmp(key, "eps") && L->kind == WICK_LAYER_BATCHNORM) ok = parse_real(val, &L->eps) && L->eps > 0;
        else if (!strcmp(key, "momentum") && L->kind == WICK_LAYER_BATCHNORM)
            ok = parse_real(val, &L->momentum) && L->momentum >= 0 && L->momentum <= 1;
        else return wick_fail(WICK_EINVAL, "%s: %s has no option '%s'", tok, wick_layer_kind_name(L->kind), key);
        if (!ok) return wick_fail(WICK_EINVAL, "%s: bad value '%s' for %s", tok, val, key);
    }
    if (L->kind == WICK_LAYER_CONV2D && npos < 1) return wick_fail(WICK_EINVAL, "%s: missing output channels", tok);
    if (L->kind == WICK_LAYER_CONV2D && npos < 2) return wick_fail(WICK_EINVAL, "%s: missing kernel size", tok);
    if (L->kind == WICK_LAYER_LINEAR && npos < 1) return wick_fail(WICK_EINVAL, "%s: missing output features", tok);
    if (L->kind == WICK_LAYER_DROPOUT && npos < 1) return wick_fail(WICK_EINVAL, "%s: missing drop probability", tok);
    if ((L->kind == WICK_LAYER_MAXPOOL || L->kind == WICK_LAYER_AVGPOOL) && npos < 1)
        return wick_fail(WICK_EINVAL, "%s: missing kernel size", tok);
    return WICK_OK;
}

/* ---- shapes, parameters, FLOPs ----------------------------------------- */

/* PyTorch's output size of a window op; < 1 when the window does not fit. */
static long window_out(int in, int k, int s, int p, int d) {
    long span = (long)d * (k - 1) + 1, room = (long)in + 2L * p - span;
    return room < 0 ? 0 : room / s + 1;
}

/* Fills L->in .. flops_fwd from the input shape; the checks name the token. */
static wick_status infer(const char *tok, wick_layer *L, const int in[3], const char *prev_image_op) {
    memcpy(L->in, in, sizeof L->in);
    memcpy(L->outshape, in, sizeof L->outshape);
    L->params = 0;
    L->flops_fwd = 0;
    double insize = (double)in[0] * (is_image(in) ? (double)in[1] * in[2] : 1);
    switch (L->kind) {
    case WICK_LAYER_LINEAR:
        if (is_image(in))
            return wick_fail(WICK_ESHAPE, "%s after %s needs flatten (its input is %dx%dx%d)", tok,
                             prev_image_op ? prev_image_op : "input", in[0], in[1], in[2]);
        L->outshape[0] = L->out;
        L->params = (long long)L->out * in[0] + (L->bias ? L->out : 0);
        L->flops_fwd = 2.0 * L->out * in[0];
        break;
    case WICK_LAYER_CONV2D: {
        if (!is_image(in))
            return wick_fail(WICK_ESHAPE, "%s needs an image input (CxHxW), not %d flat features", tok, in[0]);
        if (in[0] % L->groups || L->out % L->groups)
            return wick_fail(WICK_ESHAPE, "%s: groups=%d must divide the input channels (%d) and the output channels (%d)",
                             tok, L->groups, in[0], L->out);
        long oh = window_out(in[1], L->kh, L->sh, L->ph, L->dh), ow = window_out(in[2], L->kw, L->sw, L->pw, L->dw);
        if (oh < 1 || ow < 1)
            return wick_fail(WICK_ESHAPE, "%s: kernel %dx%d with dilation %dx%d does not fit the padded input %dx%d",
                             tok, L->kh, L->kw, L->dh, L->dw, in[1] + 2 * L->ph, in[2] + 2 * L->pw);
        L->outshape[0] = L->out;
        L->outshape[1] = (int)oh;
        L->outshape[2] = (int)ow;
        long long fan_in = (long long)(in[0] / L->groups) * L->kh * L->kw;
        L->params = L->out * fan_in + (L->bias ? L->out : 0);
        L->flops_fwd = 2.0 * oh * ow * L->out * fan_in;
        break;
    }
    case WICK_LAYER_MAXPOOL:
    case WICK_LAYER_AVGPOOL: {
        if (!is_image(in))
            return wick_fail(WICK_ESHAPE, "%s needs an image input (CxHxW), not %d flat features", tok, in[0]);
        /* PyTorch: "pad should be at most half of effective kernel size" */
        if (2 * L->ph > L->kh || 2 * L->pw > L->kw)
            return wick_fail(WICK_EINVAL, "%s: padding %dx%d is more than half the kernel %dx%d", tok, L->ph, L->pw,
                             L->kh, L->kw);
        long oh = window_out(in[1], L->kh, L->sh, L->ph, 1), ow = window_out(in[2], L->kw, L->sw, L->pw, 1);
        if (oh < 1 || ow < 1)
            return wick_fail(WICK_ESHAPE, "%s: window %dx%d does not fit the padded input %dx%d", tok, L->kh, L->kw,
                             in[1] + 2 * L->ph, in[2] + 2 * L->pw);
        L->outshape[1] = (int)oh;
        L->outshape[2] = (int)ow;
        break;
    }
    case WICK_LAYER_GLOBALAVGPOOL:
        if (!is_image(in))
            return wick_fail(WICK_ESHAPE, "%s needs an image input (CxHxW), not %d flat features", tok, in[0]);
        L->outshape[1] = L->outshape[2] = 1;
        break;
    case WICK_LAYER_FLATTEN:
        if (insize > (double)(1 << 30)) return wick_fail(WICK_ESHAPE, "%s: %.0f features is too many", tok, insize);
        L->outshape[0] = (int)insize;
        L->outshape[1] = L->outshape[2] = 0;
        break;
    case WICK_LAYER_BATCHNORM:
        L->params = 2LL * in[0];   /* weight and bias; the running statistics are state */
        break;
    case WICK_LAYER_DROPOUT:
    case WICK_LAYER_ACT:
        break;
    }
    double outsize = (double)L->outshape[0] * (is_image(L->outshape) ? (double)L->outshape[1] * L->outshape[2] : 1);
    if (outsize > (double)(1 << 30)) return wick_fail(WICK_ESHAPE, "%s: output of %.0f values a sample is too large", tok, outsize);
    return WICK_OK;
}

/* Receptive field of one output unit of layer i on the input, by the
 * top-down recursion r_{j-1} = (r_j - 1) s_j + d_j (k_j - 1) + 1 from r = 1,
 * per axis; -1 once a layer mixes every position (flatten, globalavgpool). */
static void receptive_field(wick_spec *s, int i) {
    long rh = 1, rw = 1;
    for (int j = i; j >= 0; j--) {
        const wick_layer *L = &s->layer[j];
        if (L->kind == WICK_LAYER_FLATTEN || L->kind == WICK_LAYER_GLOBALAVGPOOL) {
            if (is_image(L->in)) { rh = rw = -1; break; }
            continue;
        }
        if (L->kind == WICK_LAYER_LINEAR) {   /* after flatten: handled there; on a flat input: all */
            if (!is_image(s->input)) { rh = rw = -1; break; }
            continue;
        }
        if (L->kind == WICK_LAYER_CONV2D || L->kind == WICK_LAYER_MAXPOOL || L->kind == WICK_LAYER_AVGPOOL) {
            int dh = L->kind == WICK_LAYER_CONV2D ? L->dh : 1, dw = L->kind == WICK_LAYER_CONV2D ? L->dw : 1;
            rh = (rh - 1) * L->sh + (long)dh * (L->kh - 1) + 1;
            rw = (rw - 1) * L->sw + (long)dw * (L->kw - 1) + 1;
        }
    }
    s->layer[i].rf_h = rh;
    s->layer[i].rf_w = rw;
}

/* ---- the whole spec ----------------------------------------------------- */

static wick_status parse_input(const char *tok, const char *arg, int shape[3]) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", arg ? arg : "");
    long v[3];
    int n = 0;
    for (char *p = buf, *x; n < 3; p = x + 1) {
        x = strchr(p, 'x');
        if (x) *x = 0;
        if (!parse_long(p, 1, 1 << 24, &v[n++])) return wick_fail(WICK_EINVAL, "%s: write input:CxHxW or input:FEATURES", tok);
        if (!x) break;
        if (n == 3) return wick_fail(WICK_EINVAL, "%s: write input:CxHxW or input:FEATURES", tok);
    }
    if (n == 2) return wick_fail(WICK_EINVAL, "%s: write input:CxHxW (three sizes) or input:FEATURES", tok);
    shape[0] = (int)v[0];
    shape[1] = n == 3 ? (int)v[1] : 0;
    shape[2] = n == 3 ? (int)v[2] : 0;
    if (n == 3 && (double)v[0] * v[1] * v[2] > (double)(1 << 30))
        return wick_fail(WICK_EINVAL, "%s: input too large", tok);
    return WICK_OK;
}

static wick_status parse_token(const char *tok, wick_layer *L) {
    char buf[256];
    if (strlen(tok) >= sizeof buf) return wick_fail(WICK_EINVAL, "token '%.40s...' is too long", tok);
    snprintf(buf, sizeof buf, "%s", tok);
    char *f[16];
    int nf = split_fields(buf, f);
    memset(L, 0, sizeof *L);
    L->sh = L->sw = 0;
    L->dh = L->dw = 1;
    L->groups = 1;
    L->bias = 1;
    L->eps = 1e-5;
    L->momentum = 0.1;
    static const struct { const char *name; wick_layer_kind kind; } names[] = {
        {"linear", WICK_LAYER_LINEAR}, {"conv2d", WICK_LAYER_CONV2D}, {"batchnorm", WICK_LAYER_BATCHNORM},
        {"dropout", WICK_LAYER_DROPOUT}, {"maxpool", WICK_LAYER_MAXPOOL}, {"avgpool", WICK_LAYER_AVGPOOL},
        {"globalavgpool", WICK_LAYER_GLOBALAVGPOOL}, {"flatten", WICK_LAYER_FLATTEN}};
    int found = 0;
    for (size_t i = 0; i < WICK_ARRAY_LEN(names) && !found; i++)
        if (!strcmp(f[0], names[i].name)) { L->kind = names[i].kind; found = 1; }
    if (!found) {
        /* an activation: "relu", "leaky_relu:0.1" (the whole token) */
        L->kind = WICK_LAYER_ACT;
        if (wick_act_parse(tok, &L->act) != WICK_OK)
            return wick_fail(WICK_EINVAL, "%s: unknown layer (linear conv2d batchnorm dropout maxpool avgpool "
                             "globalavgpool flatten, or an activation)", tok);
        return WICK_OK;
    }
    wick_status s = parse_args(tok, L, f, nf);
    if (s) return s;
    if (L->kind == WICK_LAYER_MAXPOOL || L->kind == WICK_LAYER_AVGPOOL) {
        if (!L->sh) { L->sh = L->kh; L->sw = L->kw; }   /* PyTorch: stride defaults to the kernel */
    } else if (!L->sh) {
        L->sh = L->sw = 1;
    }
    return WICK_OK;
}

wick_status wick_spec_parse(const char *text, wick_spec **out) {
    if (!text || !out) return wick_fail(WICK_EINVAL, "spec: NULL argument");
    *out = NULL;
    if (!*text) return wick_fail(WICK_EINVAL, "spec: empty");
    size_t len = strlen(text);
    if (len > 1 << 16) return wick_fail(WICK_EINVAL, "spec: longer than 65536 characters");
    char *buf = wick_malloc(len + 1);
    wick_spec *s = wick_calloc(1, sizeof *s);
    if (!buf || !s) {
        wick_free(buf);
        wick_free(s);
        return wick_fail(WICK_ENOMEM, "spec: out of memory");
    }
    memcpy(buf, text, len + 1);
    wick_status st = WICK_OK;
    int first = 1, shape[3] = {0, 0, 0};
    const char *last_image_op = NULL;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';) *--e = 0;
        if (first) {
            if (strncmp(tok, "input:", 6) != 0) {
                st = wick_fail(WICK_EINVAL, "spec must start with input:CxHxW or input:FEATURES, not '%s'", tok);
                break;
            }
            if ((st = parse_input(tok, tok + 6, s->input))) break;
            memcpy(shape, s->input, sizeof shape);
            first = 0;
            continue;
        }
        if (s->n == WICK_SPEC_MAX) {
            st = wick_fail(WICK_EINVAL, "spec: more than %d layers", WICK_SPEC_MAX);
            break;
        }
        wick_layer *L = &s->layer[s->n];
        if ((st = parse_token(tok, L))) break;
        if ((st = infer(tok, L, shape, last_image_op))) break;
        if (L->kind == WICK_LAYER_CONV2D || L->kind == WICK_LAYER_MAXPOOL || L->kind == WICK_LAYER_AVGPOOL ||
            L->kind == WICK_LAYER_GLOBALAVGPOOL)
            last_image_op = kind_names[L->kind];
        memcpy(shape, L->outshape, sizeof shape);
        s->n++;
    }
    if (st == WICK_OK && first) st = wick_fail(WICK_EINVAL, "spec: empty");
    if (st == WICK_OK && s->n == 0) st = wick_fail(WICK_EINVAL, "spec: no layer after input");
    if (st == WICK_OK && is_image(shape))
        st = wick_fail(WICK_ESHAPE, "spec: the output is an image (%dx%dx%d): end with flatten and linear", shape[0],
                       shape[1], shape[2]);
    wick_free(buf);
    if (st) {
        wick_free(s);
        return st;
    }
    /* FLOPs of a training step: forward, the weight gradient (as many as
       forward) and the input gradient (as many again), except that nothing
       before the first layer with parameters needs an input gradient. */
    int seen_params = 0;
    for (int i = 0; i < s->n; i++) {
        wick_layer *L = &s->layer[i];
        int gemm = L->kind == WICK_LAYER_LINEAR || L->kind == WICK_LAYER_CONV2D;
        L->flops_train = gemm ? L->flops_fwd * (seen_params ? 3 : 2) : 0;
        if (L->params) seen_params = 1;
        s->params += L->params;
        s->flops_fwd += L->flops_fwd;
        s->flops_train += L->flops_train;
        receptive_field(s, i);
    }
    s->outputs = shape[0];
    *out = s;
    return WICK_OK;
}

void wick_spec_free(wick_spec *s) { wick_free(s); }

static const char *fmt_real(double v, char *b, size_t n);

wick_status wick_spec_from_mlp(const wick_mlp_config *c, wick_spec **out) {
    char buf[8192];
    size_t o = snprintf(buf, sizeof buf, "input:%d", c->widths[0]);
    char act[64], num[32];
    if (c->act.kind == WICK_ACT_LEAKY_RELU) snprintf(act, sizeof act, "leaky_relu:%s", fmt_real(c->act.slope, num, sizeof num));
    else snprintf(act, sizeof act, "%s", wick_act_name(c->act));
    for (int l = 1; l <= c->layers && o < sizeof buf; l++)
        o += snprintf(buf + o, sizeof buf - o, l < c->layers ? ",linear:%d,%s" : ",linear:%d", c->widths[l], act);
    if (o >= sizeof buf) return wick_fail(WICK_EINVAL, "spec: MLP too long to write as a spec");
    return wick_spec_parse(buf, out);
}

/* ---- writing it back ---------------------------------------------------- */

/* The shortest "%.Ng" of v that reads back as v, in the C locale. */
static const char *fmt_real(double v, char *b, size_t n) {
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0), old = c ? uselocale(c) : 0;
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(b, n, "%.*g", digits, v);
        if (strtod(b, NULL) == v) break;
    }
    if (c) { uselocale(old); freelocale(c); }
    return b;
}

static size_t put_pair(char *b, size_t n, const char *key, int a, int c, int dflt) {
    if (a == dflt && c == dflt) return 0;
    return a == c ? (size_t)snprintf(b, n, ":%s=%d", key, a) : (size_t)snprintf(b, n, ":%s=%dx%d", key, a, c);
}

size_t wick_layer_format(const wick_layer *L, char *b, size_t n) {
    size_t o = 0;
    char num[32];
#define PUT(...) (o += (size_t)snprintf(b + o, o < n ? n - o : 0, __VA_ARGS__))
#define PAIR(key, a, c, d) (o += put_pair(b + o, o < n ? n - o : 0, key, a, c, d))
    switch (L->kind) {
    case WICK_LAYER_LINEAR:
        PUT("linear:%d", L->out);
        if (!L->bias) PUT(":bias=0");
        break;
    case WICK_LAYER_CONV2D:
        if (L->kh == L->kw) PUT("conv2d:%d:%d", L->out, L->kh);
        else PUT("conv2d:%d:%dx%d", L->out, L->kh, L->kw);
        PAIR("stride", L->sh, L->sw, 1);
        PAIR("pad", L->ph, L->pw, 0);
        PAIR("dilation", L->dh, L->dw, 1);
        if (L->groups != 1) PUT(":groups=%d", L->groups);
        if (!L->bias) PUT(":bias=0");
        break;
    case WICK_LAYER_MAXPOOL:
    case WICK_LAYER_AVGPOOL:
        if (L->kh == L->kw) PUT("%s:%d", kind_names[L->kind], L->kh);
        else PUT("%s:%dx%d", kind_names[L->kind], L->kh, L->kw);
        if (L->sh != L->kh || L->sw != L->kw) PAIR("stride", L->sh, L->sw, -1);
        PAIR("pad", L->ph, L->pw, 0);
        break;
    case WICK_LAYER_DROPOUT:
        PUT("dropout:%s", fmt_real(L->p, num, sizeof num));
        break;
    case WICK_LAYER_BATCHNORM:
        PUT("batchnorm");
        if (L->eps != 1e-5) PUT(":eps=%s", fmt_real(L->eps, num, sizeof num));
        if (L->momentum != 0.1) PUT(":momentum=%s", fmt_real(L->momentum, num, sizeof num));
        break;
    case WICK_LAYER_ACT:
        if (L->act.kind == WICK_ACT_LEAKY_RELU && L->act.slope != WICK_LEAKY_DEFAULT) {
            PUT("leaky_relu:%s", fmt_real(L->act.slope, num, sizeof num));
        } else {
            PUT("%s", wick_act_name(L->act));
        }
        break;
    default:
        PUT("%s", kind_names[L->kind]);
    }
#undef PUT
#undef PAIR
    return o;
}

size_t wick_spec_format(const wick_spec *s, char *buf, size_t n) {
    size_t o;
    if (is_image(s->input)) o = (size_t)snprintf(buf, n, "input:%dx%dx%d", s->input[0], s->input[1], s->input[2]);
    else o = (size_t)snprintf(buf, n, "input:%d", s->input[0]);
    for (int i = 0; i < s->n; i++) {
        o += (size_t)snprintf(buf + (o < n ? o : n), o < n ? n - o : 0, ",");
        o += wick_layer_format(&s->layer[i], buf + (o < n ? o : n), o < n ? n - o : 0);
    }
    return o;
}

/* The PyTorch module a layer is, as Python source (for summaries and the
 * interop tests); activations PyTorch has no module for are written as a
 * comment-free name wick's tests define (Sin, Perceptron). */
size_t wick_layer_torch(const wick_layer *L, char *b, size_t n) {
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0), old = c ? uselocale(c) : 0;
    size_t o = 0;
    const char *bias = L->bias ? "" : ", bias=False";
    switch (L->kind) {
    case WICK_LAYER_LINEAR: o = snprintf(b, n, "Linear(%d, %d%s)", L->in[0], L->out, bias); break;
    case WICK_LAYER_CONV2D:
        o = snprintf(b, n, "Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d), dilation=(%d, %d), groups=%d%s)",
                     L->in[0], L->out, L->kh, L->kw, L->sh, L->sw, L->ph, L->pw, L->dh, L->dw, L->groups, bias);
        break;
    case WICK_LAYER_BATCHNORM:
        o = snprintf(b, n, "BatchNorm%dd(%d, eps=%.17g, momentum=%.17g)", is_image(L->in) ? 2 : 1, L->in[0], L->eps,
                     L->momentum);
        break;
    case WICK_LAYER_DROPOUT: o = snprintf(b, n, "Dropout(p=%.17g)", L->p); break;
    case WICK_LAYER_MAXPOOL:
        o = snprintf(b, n, "MaxPool2d(kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d))", L->kh, L->kw, L->sh, L->sw,
                     L->ph, L->pw);
        break;
    case WICK_LAYER_AVGPOOL:
        o = snprintf(b, n, "AvgPool2d(kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d))", L->kh, L->kw, L->sh, L->sw,
                     L->ph, L->pw);
        break;
    case WICK_LAYER_GLOBALAVGPOOL: o = snprintf(b, n, "AdaptiveAvgPool2d(1)"); break;
    case WICK_LAYER_FLATTEN: o = snprintf(b, n, "Flatten()"); break;
    case WICK_LAYER_ACT:
        switch (L->act.kind) {
        case WICK_ACT_RELU: o = snprintf(b, n, "ReLU()"); break;
        case WICK_ACT_TANH: o = snprintf(b, n, "Tanh()"); break;
        case WICK_ACT_SIGMOID: o = snprintf(b, n, "Sigmoid()"); break;
        case WICK_ACT_GELU: o = snprintf(b, n, "GELU()"); break;
        case WICK_ACT_SWISH: o = snprintf(b, n, "SiLU()"); break;
        case WICK_ACT_SOFTPLUS: o = snprintf(b, n, "Softplus()"); break;
        case WICK_ACT_LINEAR: o = snprintf(b, n, "Identity()"); break;
        case WICK_ACT_LEAKY_RELU: o = snprintf(b, n, "LeakyReLU(%.17g)", L->act.slope); break;
        case WICK_ACT_SIN: o = snprintf(b, n, "Sin()"); break;
        default: o = snprintf(b, n, "Perceptron()"); break;
        }
        break;
    }
    if (c) { uselocale(old); freelocale(c); }
    return o;
}

/* ---- summary ------------------------------------------------------------ */

static void shape_str(const int s[3], char *b, size_t n) {
    if (is_image(s)) snprintf(b, n, "%dx%dx%d", s[0], s[1], s[2]);
    else snprintf(b, n, "%d", s[0]);
}

void wick_spec_print(FILE *f, const wick_spec *s) {
    char in[48], tok[160], out[48], rf[32];
    shape_str(s->input, in, sizeof in);
    fprintf(f, "%-4s %-30s %-12s %12s %14s %14s %9s\n", "#", "layer", "output", "parameters", "MFLOP fwd", "MFLOP train",
            "RF");
    fprintf(f, "%-4s %-30s %-12s %12s %14s %14s %9s\n", "", "input", in, "", "", "", "");
    for (int i = 0; i < s->n; i++) {
        const wick_layer *L = &s->layer[i];
        wick_layer_format(L, tok, sizeof tok);
        shape_str(L->outshape, out, sizeof out);
        if (L->rf_h < 0) snprintf(rf, sizeof rf, "all");
        else snprintf(rf, sizeof rf, "%ldx%ld", L->rf_h, L->rf_w);
        fprintf(f, "%-4d %-30s %-12s %12lld %14.4f %14.4f %9s\n", i, tok, out, L->params, L->flops_fwd / 1e6,
                L->flops_train / 1e6, rf);
    }
    fprintf(f, "%-4s %-30s %-12s %12lld %14.4f %14.4f\n", "", "total", "", s->params, s->flops_fwd / 1e6,
            s->flops_train / 1e6);
}
