/* optim.c — SGD (momentum, Nesterov), Adam and AdamW on plain float arrays,
 * with torch.optim's semantics (the single-tensor code paths of
 * torch/optim/sgd.py, adam.py, adamw.py; torch 1.13 and 2.x agree).
 *
 * Why plain arrays and one tensor per call: the executor updates a weight as
 * soon as its gradient is complete, so tensors are updated in any order within
 * a step.  Each tensor therefore keeps its own step count, exactly as torch
 * keeps state['step'] per parameter.
 *
 * Arithmetic is float throughout, operation for operation as torch does it on
 * float tensors: the hyperparameters are rounded to float where torch passes
 * them as scalars to a float kernel, and the bias corrections are computed in
 * double (torch computes them in Python).  torch's vectorised CPU kernels use
 * fused multiply-adds in places where we round twice, so the two agree to a
 * few ulps per step, not bit for bit (tests/test_optim_torch.py measures it).
 *
 * The loops are element-wise (no reductions), so the result does not depend on
 * the thread count; big tensors are split across threads. */
#include "core/core.h"
#include "nn/nn_internal.h"
#include <math.h>
#include <string.h>

/* Tensors larger than this are updated in parallel. */
#define OPT_PARALLEL_MIN ((size_t)1 << 15)
/* ... in chunks of this many elements */
#define OPT_CHUNK ((size_t)8192)

struct wick_opt {
    wick_opt_config c;
    int nparam;
    int nstate;          /* state buffers per tensor: 0, 1 (momentum) or 2 */
    size_t *sizes;
    unsigned char *decay;
    uint64_t *steps;
    float **state;       /* state[i]: nstate * sizes[i] floats, zeroed; NULL if nstate = 0 */
};

static const char *opt_name(wick_opt_kind k) {
    switch (k) {
    case WICK_OPT_SGD: return "sgd";
    case WICK_OPT_ADAM: return "adam";
    case WICK_OPT_ADAMW: return "adamw";
    }
    return "?";
}

wick_opt_config wick_opt_defaults(wick_opt_kind kind) {
    wick_opt_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.momentum = 0.0;
    c.nesterov = 0;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = kind == WICK_OPT_ADAMW ? 0.01 : 0.0;
    c.l1 = 0.0;
    return c;
}

wick_status wick_opt_parse(const char *name, wick_opt_kind *out) {
    static const wick_opt_kind kinds[] = {WICK_OPT_SGD, WICK_OPT_ADAM, WICK_OPT_ADAMW};
    if (!name || !out) return wick_fail(WICK_EINVAL, "wick_opt_parse: NULL argument");
    for (size_t k = 0; k < WICK_ARRAY_LEN(kinds); k++)
        if (strcmp(name, opt_name(kinds[k])) == 0) {
            *out = kinds[k];
            return WICK_OK;
        }
    return wick_fail(WICK_EINVAL, "unknown optimiser '%s' (expected sgd, adam or adamw)", name);
}

/* A coefficient that must be finite and >= 0; the message follows torch's. */
static int bad_nonneg(double x) { return !(x >= 0.0) || !isfinite(x); }

static wick_status check_config(const wick_opt_config *c) {
    if (c->kind != WICK_OPT_SGD && c->kind != WICK_OPT_ADAM && c->kind != WICK_OPT_ADAMW)
        return wick_fail(WICK_EINVAL, "optimiser: unknown kind %d", (int)c->kind);
    const char *k = opt_name(c->kind);
    if (bad_nonneg(c->weight_decay))
        return wick_fail(WICK_EINVAL, "%s: invalid weight_decay value: %g (must be finite and >= 0)",
                         k, c->weight_decay);
    if (bad_nonneg(c->l1))
        return wick_fail(WICK_EINVAL, "%s: invalid l1 value: %g (must be finite and >= 0)", k, c->l1);
    if (c->kind == WICK_OPT_SGD) {
        if (bad_nonneg(c->momentum))
            return wick_fail(WICK_EINVAL, "sgd: invalid momentum value: %g (must be finite and >= 0)",
                             c->momentum);
        if (c->nesterov && c->momentum == 0.0)
            return wick_fail(WICK_EINVAL, "sgd: Nesterov momentum requires a momentum > 0");
        return WICK_OK;
    }
    /* Adam, AdamW: momentum lives in beta1; a momentum here is a mistake. */
    if (c->momentum != 0.0 || c->nesterov)
        return wick_fail(WICK_EINVAL, "%s: momentum/nesterov apply to sgd only (%s uses beta1)", k, k);
    if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
        return wick_fail(WICK_EINVAL, "%s: invalid beta parameter at index 0: %g (must be in [0, 1))",
                         k, c->beta1);
    if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
        return wick_fail(WICK_EINVAL, "%s: invalid beta parameter at index 1: %g (must be in [0, 1))",
                         k, c->beta2);
    if (!(c->eps > 0.0) || !isfinite(c->eps))
        return wick_fail(WICK_EINVAL, "%s: invalid epsilon value: %g (must be finite and > 0)", k, c->eps);
    return WICK_OK;
}

void wick_opt_free(wick_opt *o) {
    if (!o) return;
    if (o->state)
        for (int i = 0; i < o->nparam; i++) wick_free(o->state[i]);
    wick_free(o->state);
    wick_free(o->steps);
    wick_free(o->decay);
    wick_free(o->sizes);
    wick_free(o);
}

wick_status wick_opt_new(wick_opt **out, const wick_opt_config *c, int nparam,
                         const size_t *sizes, const int *decay) {
    if (!out || !c) return wick_fail(WICK_EINVAL, "wick_opt_new: NULL argument");
    *out = NULL;
    wick_status s = check_config(c);
    if (s) return s;
    if (nparam < 0) return wick_fail(WICK_EINVAL, "%s: negative tensor count %d", opt_name(c->kind), nparam);
    if (nparam > 0 && !sizes) return wick_fail(WICK_EINVAL, "%s: sizes is NULL", opt_name(c->kind));

    int nstate = c->kind == WICK_OPT_SGD ? (c->momentum != 0.0) : 2;
    size_t np = (size_t)nparam;
    for (int i = 0; i < nparam; i++) {
        size_t bytes;
        if (!wick_mul_size(sizes[i], (size_t)nstate * sizeof(float), &bytes))
            return wick_fail(WICK_EINVAL, "%s: tensor %d: size %zu overflows", opt_name(c->kind), i,
                             sizes[i]);
    }

    wick_opt *o = wick_calloc(1, sizeof *o);
    if (!o) return wick_fail(WICK_ENOMEM, "%s: out of memory", opt_name(c->kind));
    o->c = *c;
    o->c.nesterov = c->nesterov != 0;
    o->nparam = nparam;
    o->nstate = nstate;
    o->sizes = wick_malloc(np * sizeof *o->sizes);
    o->decay = wick_malloc(np);
    o->steps = wick_calloc(np, sizeof *o->steps);
    o->state = wick_calloc(np, sizeof *o->state);
    if (!o->sizes || !o->decay || !o->steps || !o->state) goto nomem;
    for (int i = 0; i < nparam; i++) {
        o->sizes[i] = sizes[i];
        o->decay[i] = decay ? decay[i] != 0 : 1;
        if (nstate) {
            /* zeroed, so that a checkpoint of a fresh optimiser is well
               defined; huge pages, as the weights (graph.c), since every
               step streams it */
            const size_t bytes = sizes[i] * (size_t)nstate * sizeof(float);
            o->state[i] = wick_huge_alloc(bytes);
            if (!o->state[i]) goto nomem;
            memset(o->state[i], 0, bytes);
        }
    }
    *out = o;
    return WICK_OK;
nomem:
    wick_opt_free(o);
    return wick_fail(WICK_ENOMEM, "%s: out of memory for the state of %d tensors", opt_name(c->kind),
                     nparam);
}

/* sign(0) = 0 (and sign(NaN) = 0), as torch.sign. */
static inline float sgnf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }

/* One tensor's update with its scalars precomputed.  The kernels below run
 * over one range of elements, called once for a small tensor and per fixed
 * chunk for a big one; they are plain functions with restrict arguments, so
 * that GCC unswitches the flags and vectorises each variant (an OpenMP
 * "parallel for simd" body is vectorised in one variant only). */
typedef struct {
    int use_l1, use_wd, use_shrink, first, nesterov;
    float l1, wd, shrink, mom, nlr;                 /* SGD; l1, wd, shrink also Adam */
    float b1, omb1, b2, omb2, nstep, bc2s, eps;     /* Adam */
} upd;

/* torch: d_p = grad (+ L1, our addition, so that it acts as a penalty's
 * gradient); d_p = d_p.add(param, alpha=weight_decay);
 * buf = clone(d_p) on the first step, else buf.mul_(momentum).add_(d_p);
 * nesterov: d_p = d_p.add(buf, alpha=momentum), else d_p = buf;
 * param.add_(d_p, alpha=-lr). */
static void sgd_range(const upd *u, size_t n, float *restrict p, const float *restrict g,
                      float *restrict buf, float *restrict unused) {
    (void)unused;
    const int use_l1 = u->use_l1, use_wd = u->use_wd, first = u->first, nesterov = u->nesterov;
    const float l1 = u->l1, wd = u->wd, mom = u->mom, nlr = u->nlr;
    if (!buf) {
        for (size_t j = 0; j < n; j++) {
            float d = g[j];
            if (use_l1) d = d + l1 * sgnf(p[j]);
            if (use_wd) d = d + wd * p[j];
            p[j] = p[j] + nlr * d;
        }
        return;
    }
    for (size_t j = 0; j < n; j++) {
        float d = g[j];
        if (use_l1) d = d + l1 * sgnf(p[j]);
        if (use_wd) d = d + wd * p[j];
        float b = first ? d : buf[j] * mom + d;
        buf[j] = b;
        d = nesterov ? d + mom * b : b;
        p[j] = p[j] + nlr * d;
    }
}

/* torch (adam.py, single tensor): step += 1; AdamW: param.mul_(1 - lr*wd);
 * Adam: grad = grad.add(param, alpha=wd);
 * exp_avg.mul_(beta1).add_(grad, alpha=1-beta1);
 * exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2);
 * bc1 = 1 - beta1**step; bc2 = 1 - beta2**step  (double);
 * denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps);
 * param.addcdiv_(exp_avg, denom, value=-lr/bc1).
 * The loop vectorises only without errno from sqrtf: the Makefile builds this
 * file with -fno-math-errno (GCC cannot switch it per function).  The
 * argument is a sum of squares, so errno would never be set anyway. */
static void adam_range(const upd *u, size_t n, float *restrict p, const float *restrict g,
                       float *restrict m, float *restrict v) {
    const int use_shrink = u->use_shrink, use_l1 = u->use_l1, use_wd = u->use_wd;
    const float shrink = u->shrink, l1 = u->l1, wd = u->wd, b1 = u->b1, omb1 = u->omb1;
    const float b2 = u->b2, omb2 = u->omb2, nstep = u->nstep, bc2s = u->bc2s, eps = u->eps;
    for (size_t j = 0; j < n; j++) {
        float w = p[j];
        if (use_shrink) w = w * shrink;
        float d = g[j];
        if (use_l1) d = d + l1 * sgnf(w);
        if (use_wd) d = d + wd * w;
        float mj = m[j] * b1 + omb1 * d;
        float vj = v[j] * b2 + omb2 * d * d;
        m[j] = mj;
        v[j] = vj;
        float denom = sqrtf(vj) / bc2s + eps;
        p[j] = w + nstep * mj / denom;
    }
}

typedef void (*range_fn)(const upd *, size_t, float *restrict, const float *restrict,
                         float *restrict, float *restrict);

/* Element-wise, so the result is the same whichever thread takes a chunk. */
static void run(range_fn k, const upd *u, size_t n, float *p, const float *g, float *s0, float *s1) {
    if (n <= OPT_PARALLEL_MIN) {
        k(u, n, p, g, s0, s1);
        return;
    }
    size_t nchunk = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunk; c++) {
        size_t lo = c * OPT_CHUNK, len = n - lo < OPT_CHUNK ? n - lo : OPT_CHUNK;
        k(u, len, p + lo, g + lo, s0 ? s0 + lo : NULL, s1 ? s1 + lo : NULL);
    }
}

/* The kernel, its scalars and state buffers for tensor i at step `step`. */
static range_fn prepare(const wick_opt *o, int i, uint64_t step, double lr, upd *u, float **s0,
                        float **s1) {
    const wick_opt_config *c = &o->c;
    size_t n = o->sizes[i];
    int decay = o->decay[i];
    /* hyperparameters rounded to float where torch hands them to a float kernel */
    *u = (upd){
        .use_l1 = decay && c->l1 != 0.0,
        .l1 = (float)c->l1,
        .wd = (float)c->weight_decay,
    };
    if (c->kind == WICK_OPT_SGD) {
        u->use_wd = decay && c->weight_decay != 0.0;
        u->first = step == 1;          /* torch: the buffer is None before the first step */
        u->nesterov = c->nesterov;
        u->mom = (float)c->momentum;
        u->nlr = (float)-lr;
        *s0 = o->state[i];
        *s1 = NULL;
        return sgd_range;
    }
    const int adamw = c->kind == WICK_OPT_ADAMW;
    u->use_wd = !adamw && decay && c->weight_decay != 0.0;
    u->use_shrink = adamw && decay && c->weight_decay != 0.0;
    u->shrink = (float)(1.0 - lr * c->weight_decay);
    u->b1 = (float)c->beta1;
    u->omb1 = (float)(1.0 - c->beta1);
    u->b2 = (float)c->beta2;
    u->omb2 = (float)(1.0 - c->beta2);
    const double bc1 = 1.0 - pow(c->beta1, (double)step);  /* in double, as torch in Python */
    const double bc2 = 1.0 - pow(c->beta2, (double)step);
    u->nstep = (float)-(lr / bc1);
    u->bc2s = (float)sqrt(bc2);
    u->eps = (float)c->eps;
    *s0 = o->state[i];
    *s1 = o->state[i] + n;
    return adam_range;
}

void wick_opt_update(wick_opt *o, int i, float *param, const float *grad, double lr) {
    /* A bad index is a programming error the void signature cannot report;
     * doing nothing is safer than writing out of bounds. */
    if (!o || i < 0 || i >= o->nparam) return;
    upd u;
    float *s0, *s1;
    range_fn k = prepare(o, i, ++o->steps[i], lr, &u, &s0, &s1);
    run(k, &u, o->sizes[i], param, grad, s0, s1);
}

void wick_opt_update_span(wick_opt *o, int i, float *param, const float *grad_span, double lr,
                          size_t lo, size_t hi) {
    if (!o || i < 0 || i >= o->nparam || hi > o->sizes[i] || lo >= hi) return;
    upd u;
    float *s0, *s1;
    range_fn k = prepare(o, i, o->steps[i] + 1, lr, &u, &s0, &s1);
    k(&u, hi - lo, param + lo, grad_span, s0 ? s0 + lo : NULL, s1 ? s1 + lo : NULL);
}

void wick_opt_update_range(wick_opt *o, int i, float *param, const float *grad, double lr,
                           size_t lo, size_t hi) {
    if (grad) wick_opt_update_span(o, i, param, grad + lo, lr, lo, hi);
}

void wick_opt_advance(wick_opt *o) {
    for (int i = 0; o && i < o->nparam; i++) o->steps[i]++;
}

int wick_opt_state_count(const wick_opt *o, int i) {
    if (!o || i < 0 || i >= o->nparam) return 0;
    return o->nstate;
}

float *wick_opt_state(wick_opt *o, int i, int k, const char **name) {
    if (name) *name = NULL;
    if (!o || i < 0 || i >= o->nparam || k < 0 || k >= o->nstate) return NULL;
    if (name)
        *name = o->c.kind == WICK_OPT_SGD ? "momentum" : k == 0 ? "exp_avg" : "exp_avg_sq";
    return o->state[i] + (size_t)k * o->sizes[i];
}

uint64_t wick_opt_steps(const wick_opt *o, int i) {
    if (!o || i < 0 || i >= o->nparam) return 0;
    return o->steps[i];
}

void wick_opt_set_steps(wick_opt *o, int i, uint64_t steps) {
    if (!o || i < 0 || i >= o->nparam) return;
    o->steps[i] = steps;
}
