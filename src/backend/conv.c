/* conv.c — a convolution layer's three products (conv.h), each served by the
 * implementation bench/conv measured faster (a fixed rule, pick() below, not
 * a run-time autotune: a run stays bit-identical for a given thread count).
 *
 * oneDNN path (C API, 2.6): convolution primitives planned once per shape,
 * either in the layouts oneDNN prefers (format tag any: nChw8c activations
 * and OIhw8i8o weights on AVX2) with reorder primitives from and to the
 * caller's NCHW arrays, or forced to the plain nchw / goihw layouts.  As in
 * onednn.c: memory objects for the caller's arrays are created without data
 * and pointed at them on each call; the blocked copies, and a user-managed
 * scratchpad per primitive, are allocated here; bias and ReLU are fused.
 * With a team of T > 1 the forward and input-gradient primitives are planned
 * for one thread and T parts of the batch, each thread running its part's
 * plan (split_run: one parallel region a product, each thread's reorders on
 * its own samples); oneDNN sums each output in the same order whichever
 * samples a primitive runs, so the bits are those of one primitive over the
 * team (test_conv_backend).  WICK_CONV_SPLIT=0 plans that one primitive.
 *
 * im2col path: per sample and group, the receptive fields are unrolled into
 * col [C/g kh kw, OH OW] and one OpenBLAS sgemm does the product (the
 * forward one product on wick's kernel, the bias a row of col: fwd_im2col); the
 * samples are split over the OpenMP team in fixed static chunks (OpenBLAS
 * runs single-threaded inside the team's region).  The weight gradient sums
 * each thread's chunk into its own partial, then adds the partials in thread
 * order, so it is deterministic for a given thread count. */
#include "backend/conv.h"
#include "backend/backend.h"
#include "backend/kernel.h"
#include "core/core.h"
#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <stdio.h>
#include <string.h>

enum { P_FWD = 0, P_BWD_W, P_BWD_D, P_N };
#define MAXSTEPS 5
#define MAXARGS 6
#define MAXBUFS 4

/* One primitive and its arguments.  slot[i] >= 0: argument i is the
 * caller's array number slot[i] of the product's call, set per call; -1:
 * fixed at plan time (a blocked copy or the scratchpad). */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[MAXARGS];
    int slot[MAXARGS];
    int nargs;
    int is_reorder;
    void *scratch;
    int xpose;            /* wick's own activation reorder (xpose_run): 1 nchw -> nChw8c, 2 back */
    int uslot;            /* xpose: the caller's array */
    float *blk;           /* xpose: the blocked copy */
    int xc, xhw;          /* xpose: channels, H W */
    int cstep, carg;      /* xpose: the convolution's step and argument that use blk (-1: none) */
    void *fixed[MAXARGS]; /* the plan-time buffer of each argument with slot < 0 */
} step;

typedef struct {
    wick_conv_impl impl;
    step st[MAXSTEPS];
    int nst;
    void *buf[MAXBUFS];   /* blocked copies of the operands */
    int nbuf;
    char info[48];        /* oneDNN's implementation name */
} product;

struct wick_conv {
    int B, C, H, W, OUT, OH, OW, relu;
    int kh, kw, sh, sw, ph, pw, dh, dw, G;
    int Cg, Og, Kg;       /* channels in and out per group, col rows per group */
    int threads;          /* the OpenMP team at plan time */
    int direct;           /* 1x1, stride 1, no padding: x is its own col */
    int core_only;        /* bench/conv: skip the reorders */
    int xpose;            /* activations between nchw and nChw8c by xpose_run */
    product p[P_N];
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    float *zero_bias, *junk_bias;
    int kern;             /* the im2col forward on wick's kernel (fwd_im2col) */
    size_t cs;            /* one thread's col: Kg (+ 1 row of ones with kern) x OH OW, + 16 */
    float *col;           /* im2col: threads x cs */
    float *wb;            /* kern: [W | b], OUT x (Kg + 1) */
    float *dwpart;        /* im2col weight gradient: threads - 1 partials of OUT x Kg */
    float *dbpart;        /* threads x OUT */
    /* The batch split (split_run): with a team of T > 1, oneDNN's forward
       and input-gradient products run as T one-thread plans, sub[s] for
       samples [soff[s], soff[s + 1]), one per thread in one parallel region,
       instead of one oneDNN primitive dividing its work over the team. */
    int nsub;
    wick_conv **sub;
    int *soff;
    unsigned split;       /* products served by sub[] (1 << P_*) */
    char desc[160];
};

static const char *impl_name[WICK_CONV_IMPL_COUNT] = {"auto", "dnnl-blocked", "dnnl-plain", "im2col"};

/* The measured rule (bench/conv; the numbers are in bench/README.md,
 * "Convolutions"): oneDNN's blocked primitives serve the forward and input
 * gradient products, im2col the weight gradient of ungrouped convolutions,
 * and an input with fewer than 8 channels (less than one of oneDNN's
 * 8-channel blocks, so the blocked path is mostly padding and reorders)
 * takes im2col for the forward product and the plain primitive for the
 * input gradient.  Grouped and depthwise convolutions, not measured, stay
 * with the blocked primitives. */
static wick_conv_impl pick(const wick_conv *c, int prod) {
    int few = c->G == 1 && c->C < 8;
    switch (prod) {
    case P_FWD: return few ? WICK_CONV_IM2COL : WICK_CONV_DNNL_BLOCKED;
    case P_BWD_W: return c->G == 1 ? WICK_CONV_IM2COL : WICK_CONV_DNNL_BLOCKED;
    default: return few ? WICK_CONV_DNNL_PLAIN : WICK_CONV_DNNL_BLOCKED;
    }
}

/* ---- oneDNN ------------------------------------------------------------ */

static wick_status dnnl_err(dnnl_status_t s, const char *what, const wick_conv *c) {
    return wick_fail(s == dnnl_unimplemented ? WICK_EUNSUPPORTED : WICK_EINVAL,
                     "oneDNN conv %dx%dx%d -> %d (%dx%d kernel): %s failed: %s", c->C, c->H, c->W,
                     c->OUT, c->kh, c->kw, what, dnnl_status2str(s));
}

#define TRY(call, what)                                                                           \
    do {                                                                                          \
        dnnl_status_t s_ = (call);                                                                \
        if (s_ != dnnl_success) return dnnl_err(s_, what, c);                                     \
    } while (0)

typedef struct {
    int arg;                        /* DNNL_ARG_* */
    const dnnl_memory_desc_t *md;
    int slot;                       /* caller's array number, or -1 */
    void *fixed;                    /* when slot < 0 */
} argspec;

/* Appends the primitive of pd with arguments a[0..n) and its scratchpad. */
static wick_status add_step(wick_conv *c, product *pr, const_dnnl_primitive_desc_t pd,
                            const argspec *a, int n) {
    if (pr->nst == MAXSTEPS) return wick_fail(WICK_EINVAL, "conv: too many steps");
    step *s = &pr->st[pr->nst++];
    TRY(dnnl_primitive_create(&s->prim, pd), "primitive_create");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    for (int i = 0; i <= n; i++) {
        argspec x = i < n ? a[i] : (argspec){DNNL_ARG_SCRATCHPAD, smd, -1, NULL};
        if (i == n) {
            if (!sz) break;
            if (!(s->scratch = wick_aligned_alloc(sz)))
                return wick_fail(WICK_ENOMEM, "conv: out of memory for a %zu-byte scratchpad", sz);
            memset(s->scratch, 0, sz);   /* as new_buf's copies */
            x.fixed = s->scratch;
        }
        TRY(dnnl_memory_create(&s->args[s->nargs].memory, x.md, c->eng, DNNL_MEMORY_NONE),
            "memory_create");
        if (x.slot < 0) TRY(dnnl_memory_set_data_handle(s->args[s->nargs].memory, x.fixed), "set handle");
        s->fixed[s->nargs] = x.slot < 0 ? x.fixed : NULL;
        s->args[s->nargs].arg = x.arg;
        s->slot[s->nargs] = x.slot;
        s->nargs++;
    }
    return WICK_OK;
}

static wick_status new_buf(wick_conv *c, product *pr, const dnnl_memory_desc_t *md, void **out) {
    (void)c;
    if (pr->nbuf == MAXBUFS) return wick_fail(WICK_EINVAL, "conv: too many buffers");
    size_t sz = dnnl_memory_desc_get_size(md);
    if (!(*out = pr->buf[pr->nbuf++] = wick_aligned_alloc(sz ? sz : 64)))
        return wick_fail(WICK_ENOMEM, "conv: out of memory for a %zu-byte blocked copy", sz);
    /* touched here, so that the first training step does not take the page
       faults (conv2's four copies: ~19 MB at batch 128) */
    memset(*out, 0, sz);
    return WICK_OK;
}

/* 1 when md is an activation [B, C, H, W] of this plan in oneDNN's nChw8c
 * with C a multiple of 8 (no padded channels): xpose_run's layout. */
static int is_nchw8c(const wick_conv *c, const dnnl_memory_desc_t *md) {
    if (md->ndims != 4 || md->dims[0] != c->B || md->dims[1] % 8) return 0;
    dnnl_memory_desc_t b8;
    if (dnnl_memory_desc_init_by_tag(&b8, 4, md->dims, dnnl_f32, dnnl_nChw8c) != dnnl_success) return 0;
    return dnnl_memory_desc_equal(md, &b8);
}

static wick_status reorder(wick_conv *c, product *pr, const dnnl_memory_desc_t *from, int from_slot,
                           void *from_buf, const dnnl_memory_desc_t *to, int to_slot, void *to_buf,
                           const_dnnl_primitive_attr_t attr) {
    /* An activation between nchw and nChw8c: wick's own transpose (xpose_run),
       faster than oneDNN 2.6's jit:blk reorder on these shapes (bench/README.md,
       "conv2's activation reorders"); the weights' reorders stay with oneDNN. */
    int to8 = from_slot >= 0 && is_nchw8c(c, to), from8 = to_slot >= 0 && is_nchw8c(c, from);
    if (c->xpose && (to8 || from8)) {
        if (pr->nst == MAXSTEPS) return wick_fail(WICK_EINVAL, "conv: too many steps");
        step *s = &pr->st[pr->nst++];
        const dnnl_memory_desc_t *md = to8 ? to : from;
        s->is_reorder = 1;
        s->cstep = s->carg = -1;   /* plan_product links them */
        s->xpose = to8 ? 1 : 2;
        s->uslot = to8 ? from_slot : to_slot;
        s->blk = to8 ? to_buf : from_buf;
        s->xc = (int)md->dims[1];
        s->xhw = (int)(md->dims[2] * md->dims[3]);
        return WICK_OK;
    }
    dnnl_primitive_desc_t pd;
    TRY(dnnl_reorder_primitive_desc_create(&pd, from, c->eng, to, c->eng, attr), "reorder");
    argspec a[2] = {{DNNL_ARG_FROM, from, from_slot, from_buf}, {DNNL_ARG_TO, to, to_slot, to_buf}};
    wick_status s = add_step(c, pr, pd, a, 2);
    if (!s) pr->st[pr->nst - 1].is_reorder = 1;
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* The convolution's operand `u` (a caller's array, slot, in the user layout
 * umd) as the primitive wants it (cmd): directly when the layouts agree,
 * else through a blocked copy; reorders in (input) run before the
 * convolution, out (output) after, so inputs are planned first and outputs'
 * reorders appended after the convolution's step (see plan_product). */
typedef struct {
    int arg, slot, out;
    const dnnl_memory_desc_t *umd;
} operand;

static wick_status plan_product(wick_conv *c, product *pr, dnnl_primitive_desc_t pd,
                                const operand *o, int n, const_dnnl_primitive_attr_t attr) {
    argspec a[MAXARGS];
    const dnnl_memory_desc_t *cmd[MAXARGS];
    for (int i = 0; i < n; i++) {
        cmd[i] = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, o[i].arg);
        if (!cmd[i]) return wick_fail(WICK_EINVAL, "conv: no descriptor for argument %d", o[i].arg);
        a[i] = (argspec){o[i].arg, cmd[i], o[i].slot, NULL};
        if (dnnl_memory_desc_equal(cmd[i], o[i].umd)) continue;
        void *buf;
        wick_status s = new_buf(c, pr, cmd[i], &buf);
        if (s) return s;
        a[i].slot = -1;
        a[i].fixed = buf;
        if (!o[i].out && (s = reorder(c, pr, o[i].umd, o[i].slot, NULL, cmd[i], -1, buf, attr))) return s;
    }
    wick_status s = add_step(c, pr, pd, a, n);
    for (int i = 0; i < n && !s; i++)
        if (o[i].out && a[i].slot < 0)
            s = reorder(c, pr, cmd[i], -1, a[i].fixed, o[i].umd, o[i].slot, NULL, attr);
    /* each transpose's copy, as the convolution's argument: a caller whose
       array is already in nChw8c has it read or written there directly
       (run_dnnl's blk) */
    for (int k = 0; k < pr->nst && !s; k++) {
        step *t = &pr->st[k];
        for (int j = 0; j < pr->nst && t->xpose; j++)
            for (int i = 0; i < pr->st[j].nargs && !pr->st[j].is_reorder; i++)
                if (pr->st[j].slot[i] < 0 && pr->st[j].fixed[i] == t->blk) {
                    t->cstep = j;
                    t->carg = i;
                }
    }
    const char *info = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info);
    snprintf(pr->info, sizeof pr->info, "%s", info ? info : "?");
    return s;
}

static wick_status plan_dnnl(wick_conv *c, int blocked, unsigned need) {
    dnnl_memory_desc_t xu, wu, bu, yu, xa, wa, ya;
    dnnl_dims_t xd = {c->B, c->C, c->H, c->W}, yd = {c->B, c->OUT, c->OH, c->OW}, bd = {c->OUT};
    dnnl_dims_t wd = {c->G, c->Og, c->Cg, c->kh, c->kw};
    int wnd = c->G > 1 ? 5 : 4;
    const int64_t *wdp = c->G > 1 ? wd : wd + 1;
    TRY(dnnl_memory_desc_init_by_tag(&xu, 4, xd, dnnl_f32, dnnl_nchw), "x desc");
    TRY(dnnl_memory_desc_init_by_tag(&wu, wnd, wdp, dnnl_f32, c->G > 1 ? dnnl_goihw : dnnl_oihw), "W desc");
    TRY(dnnl_memory_desc_init_by_tag(&bu, 1, bd, dnnl_f32, dnnl_a), "b desc");
    TRY(dnnl_memory_desc_init_by_tag(&yu, 4, yd, dnnl_f32, dnnl_nchw), "y desc");
    xa = xu; wa = wu; ya = yu;
    if (blocked) {
        TRY(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any), "x desc");
        TRY(dnnl_memory_desc_init_by_tag(&wa, wnd, wdp, dnnl_f32, dnnl_format_tag_any), "W desc");
        TRY(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any), "y desc");
    }
    dnnl_dims_t str = {c->sh, c->sw}, dil = {c->dh - 1, c->dw - 1}, pad = {c->ph, c->pw};

    dnnl_primitive_attr_t fattr = NULL, battr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_convolution_desc_t fd, bwd, bdd;
    dnnl_primitive_desc_t hint = NULL, pw = NULL, pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&fattr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(fattr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && c->relu) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success) st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(fattr, po);
    }
    if (st == dnnl_success) st = dnnl_primitive_attr_create(&battr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(battr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success)
        st = dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                        &xa, &wa, &bu, &ya, str, dil, pad, pad);
    /* the backward primitives take the forward one as a hint */
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&hint, &fd, fattr, c->eng, NULL);
    if (st == dnnl_success && (need & (1u << P_BWD_W))) {
        st = dnnl_dilated_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &xa, &wa,
                                                                 &bu, &ya, str, dil, pad, pad);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(&pw, &bwd, battr, c->eng, hint);
    }
    if (st == dnnl_success && (need & (1u << P_BWD_D))) {
        st = dnnl_dilated_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &xa, &wa,
                                                              &ya, str, dil, pad, pad);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &bdd, battr, c->eng, hint);
    }
    if (po) dnnl_post_ops_destroy(po);
    wick_status s = st == dnnl_success ? WICK_OK : dnnl_err(st, "primitive descriptor", c);
    if (!s && (need & (1u << P_FWD))) {
        operand o[] = {{DNNL_ARG_SRC, 0, 0, &xu}, {DNNL_ARG_WEIGHTS, 1, 0, &wu},
                       {DNNL_ARG_BIAS, 2, 0, &bu}, {DNNL_ARG_DST, 3, 1, &yu}};
        s = plan_product(c, &c->p[P_FWD], hint, o, 4, battr);
    }
    if (!s && pw) {
        operand o[] = {{DNNL_ARG_SRC, 0, 0, &xu}, {DNNL_ARG_DIFF_DST, 1, 0, &yu},
                       {DNNL_ARG_DIFF_WEIGHTS, 2, 1, &wu}, {DNNL_ARG_DIFF_BIAS, 3, 1, &bu}};
        s = plan_product(c, &c->p[P_BWD_W], pw, o, 4, battr);
    }
    if (!s && pd) {
        operand o[] = {{DNNL_ARG_DIFF_DST, 0, 0, &yu}, {DNNL_ARG_WEIGHTS, 1, 0, &wu},
                       {DNNL_ARG_DIFF_SRC, 2, 1, &xu}};
        s = plan_product(c, &c->p[P_BWD_D], pd, o, 3, battr);
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (pw) dnnl_primitive_desc_destroy(pw);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fattr) dnnl_primitive_attr_destroy(fattr);
    if (battr) dnnl_primitive_attr_destroy(battr);
    return s;
}

static int team(const wick_conv *c);

/* nchw [B, C, HW] <-> nChw8c [B, C/8, HW, 8] (dir 1: to the blocked copy),
 * 8 channels x 8 positions a register transpose; a pure copy, so the same
 * bits as oneDNN's reorder. */
static void xpose_run(const wick_conv *c, const step *s, float *u) {
    int HW = s->xhw, nb = s->xc / 8, dir = s->xpose;
    float *blk = s->blk;
    int nt = team(c);
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < c->B * nb; t++) {
        float *pl = u + (size_t)t * 8 * HW, *bl = blk + (size_t)t * 8 * HW;
        int p = 0;
#ifdef __AVX2__
        for (; p + 8 <= HW; p += 8) {
            __m256 r[8];
            if (dir == 1)
                for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(pl + (size_t)k * HW + p);
            else
                for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(bl + (size_t)(p + k) * 8);
            wick_xpose8(r);
            if (dir == 1)
                for (int k = 0; k < 8; k++) _mm256_storeu_ps(bl + (size_t)(p + k) * 8, r[k]);
            else
                for (int k = 0; k < 8; k++) _mm256_storeu_ps(pl + (size_t)k * HW + p, r[k]);
        }
#endif
        for (; p < HW; p++)
            for (int k = 0; k < 8; k++) {
                if (dir == 1) bl[(size_t)p * 8 + k] = pl[(size_t)k * HW + p];
                else pl[(size_t)k * HW + p] = bl[(size_t)p * 8 + k];
            }
    }
}

/* Runs the product's steps with the caller's arrays ptr[]; the arrays of
 * the slots in the mask blk are in nChw8c already (wick_conv_nchw8c): the
 * convolution reads or writes them in place of its copy, and their
 * transposes are skipped. */
static void run_dnnl(wick_conv *c, product *pr, void *const *ptr, unsigned blk) {
    for (int k = 0; k < pr->nst; k++) {
        step *s = &pr->st[k];
        if (s->xpose && s->cstep >= 0)
            dnnl_memory_set_data_handle(pr->st[s->cstep].args[s->carg].memory,
                                        (blk >> s->uslot) & 1 ? ptr[s->uslot] : s->blk);
    }
    for (int k = 0; k < pr->nst; k++) {
        step *s = &pr->st[k];
        if (s->is_reorder && c->core_only) continue;
        if (s->xpose && s->cstep >= 0 && ((blk >> s->uslot) & 1)) continue;
        if (s->xpose) {
            if (s->xpose == 2) dnnl_stream_wait(c->stream);   /* the convolution's output is complete */
            xpose_run(c, s, ptr[s->uslot]);
            continue;
        }
        for (int i = 0; i < s->nargs; i++)
            if (s->slot[i] >= 0) dnnl_memory_set_data_handle(s->args[i].memory, ptr[s->slot[i]]);
        dnnl_primitive_execute(s->prim, c->stream, s->nargs, s->args);
    }
    dnnl_stream_wait(c->stream);
}

/* ---- im2col ------------------------------------------------------------ */

/* The ow range [*lo, *hi) whose input column ow*sw - pw + kj*dw lies in [0, W). */
static void ow_range(const wick_conv *c, int kj, int *lo, int *hi) {
    int off = kj * c->dw - c->pw;   /* iw = ow sw + off */
    int a = off >= 0 ? 0 : (-off + c->sw - 1) / c->sw;
    int b = c->W - off <= 0 ? 0 : (c->W - off + c->sw - 1) / c->sw;   /* first ow with iw >= W */
    if (b > c->OW) b = c->OW;
    if (a > b) a = b;
    *lo = a; *hi = b;
}

/* col [Cg kh kw, OH OW] from one sample's group of channels x [Cg, H, W]. */
static void im2col(const wick_conv *c, const float *x, float *col) {
    int OHW = c->OH * c->OW;
    for (int ci = 0; ci < c->Cg; ci++)
        for (int ki = 0; ki < c->kh; ki++)
            for (int kj = 0; kj < c->kw; kj++) {
                float *r = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * OHW;
                int lo, hi, off = kj * c->dw - c->pw;
                ow_range(c, kj, &lo, &hi);
                for (int oh = 0; oh < c->OH; oh++, r += c->OW) {
                    int ih = oh * c->sh - c->ph + ki * c->dh;
                    if (ih < 0 || ih >= c->H) { memset(r, 0, c->OW * sizeof *r); continue; }
                    const float *xr = x + ((size_t)ci * c->H + ih) * c->W + off;
                    for (int ow = 0; ow < lo; ow++) r[ow] = 0;
                    if (c->sw == 1) memcpy(r + lo, xr + lo, (hi - lo) * sizeof *r);
                    else for (int ow = lo; ow < hi; ow++) r[ow] = xr[ow * c->sw];
                    for (int ow = hi; ow < c->OW; ow++) r[ow] = 0;
                }
            }
}

/* x [Cg, H, W] += the columns of col, the adjoint of im2col (x zeroed by the caller). */
static void col2im(const wick_conv *c, const float *col, float *x) {
    int OHW = c->OH * c->OW;
    for (int ci = 0; ci < c->Cg; ci++)
        for (int ki = 0; ki < c->kh; ki++)
            for (int kj = 0; kj < c->kw; kj++) {
                const float *r = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * OHW;
                int lo, hi, off = kj * c->dw - c->pw;
                ow_range(c, kj, &lo, &hi);
                for (int oh = 0; oh < c->OH; oh++, r += c->OW) {
                    int ih = oh * c->sh - c->ph + ki * c->dh;
                    if (ih < 0 || ih >= c->H) continue;
                    float *xr = x + ((size_t)ci * c->H + ih) * c->W + off;
                    if (c->sw == 1) {
                        #pragma omp simd
                        for (int ow = lo; ow < hi; ow++) xr[ow] += r[ow];
                    } else {
                        for (int ow = lo; ow < hi; ow++) xr[ow * c->sw] += r[ow];
                    }
                }
            }
}

static int team(const wick_conv *c) {
    int t = omp_get_max_threads();
    return t < c->threads ? t : c->threads;
}

/* With kern, the bias rides in the product as one more column of W against
 * a row of ones below the patches (set at plan time; im2col writes the rows
 * above it), so y is written once, not filled with the bias and then read
 * and written again by the sgemm (bench/README.md, "The weight gradient on
 * wick's kernel"). */
static void fwd_im2col(wick_conv *c, const float *x, const float *Wt, const float *b, float *y) {
    int OHW = c->OH * c->OW, K1 = c->Kg + 1;
    size_t xs = (size_t)c->C * c->H * c->W, ys = (size_t)c->OUT * OHW, cs = c->cs;
    if (c->kern)
        for (int o = 0; o < c->OUT; o++) {
            memcpy(c->wb + (size_t)o * K1, Wt + (size_t)o * c->Kg, c->Kg * sizeof *c->wb);
            c->wb[(size_t)o * K1 + c->Kg] = b ? b[o] : 0;
        }
    #pragma omp parallel num_threads(team(c))
    {
        float *col = c->col + omp_get_thread_num() * cs;
        #pragma omp for schedule(static)
        for (int n = 0; n < c->B; n++)
            for (int g = 0; g < c->G; g++) {
                const float *xg = x + n * xs + (size_t)g * c->Cg * c->H * c->W;
                float *yg = y + n * ys + (size_t)g * c->Og * OHW;
                if (!c->direct) im2col(c, xg, col);
                if (c->kern) {
                    wick_kern_gemm(c->Og, OHW, K1, c->wb + (size_t)g * c->Og * K1, K1, 1, col, OHW, 16, yg, OHW,
                                   NULL, c->relu ? WICK_KERN_RELU : 0);
                    continue;
                }
                if (b)
                    for (int o = 0; o < c->Og; o++) {
                        float v = b[g * c->Og + o];
                        for (int i = 0; i < OHW; i++) yg[(size_t)o * OHW + i] = v;
                    }
                wick_gemm_f32(0, 0, c->Og, OHW, c->Kg, 1.0f, Wt + (size_t)g * c->Og * c->Kg, c->Kg,
                              c->direct ? xg : col, OHW, b ? 1.0f : 0.0f, yg, OHW);
                if (c->relu) {
                    size_t m = (size_t)c->Og * OHW;
                    #pragma omp simd
                    for (size_t i = 0; i < m; i++) yg[i] = yg[i] > 0 ? yg[i] : 0;
                }
            }
    }
}

static void bwd_w_im2col(wick_conv *c, const float *x, const float *dy, float *dW, float *db) {
    int OHW = c->OH * c->OW;
    size_t xs = (size_t)c->C * c->H * c->W, ys = (size_t)c->OUT * OHW, cs = c->cs;
    size_t wn = (size_t)c->OUT * c->Kg;
    int T = team(c);
    #pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *col = c->col + t * cs;
        float *dw = t ? c->dwpart + (t - 1) * wn : dW;   /* thread 0 sums into dW itself */
        float *dbt = c->dbpart + (size_t)t * c->OUT;
        memset(dw, 0, wn * sizeof *dw);
        memset(dbt, 0, c->OUT * sizeof *dbt);
        #pragma omp for schedule(static)
        for (int n = 0; n < c->B; n++)
            for (int g = 0; g < c->G; g++) {
                const float *xg = x + n * xs + (size_t)g * c->Cg * c->H * c->W;
                const float *dyg = dy + n * ys + (size_t)g * c->Og * OHW;
                if (!c->direct) im2col(c, xg, col);
                wick_gemm_f32(0, 1, c->Og, c->Kg, OHW, 1.0f, dyg, OHW, c->direct ? xg : col, OHW, 1.0f,
                              dw + (size_t)g * c->Og * c->Kg, c->Kg);
                for (int o = 0; o < c->Og; o++) {
                    const float *r = dyg + (size_t)o * OHW;
                    float s = 0;
                    #pragma omp simd reduction(+ : s)
                    for (int i = 0; i < OHW; i++) s += r[i];
                    dbt[g * c->Og + o] += s;
                }
            }
        /* the implicit barrier of the loop: every partial is complete */
        #pragma omp for schedule(static)
        for (size_t i = 0; i < wn; i++)
            for (int u = 1; u < nt; u++) dW[i] += c->dwpart[(u - 1) * wn + i];
        #pragma omp single
        if (db)
            for (int o = 0; o < c->OUT; o++) {
                float s = 0;
                for (int u = 0; u < nt; u++) s += c->dbpart[(size_t)u * c->OUT + o];
                db[o] = s;
            }
    }
}

static void bwd_d_im2col(wick_conv *c, const float *dy, const float *Wt, float *dx) {
    int OHW = c->OH * c->OW;
    size_t xs = (size_t)c->C * c->H * c->W, ys = (size_t)c->OUT * OHW, cs = c->cs;
    #pragma omp parallel num_threads(team(c))
    {
        float *col = c->col + omp_get_thread_num() * cs;
        #pragma omp for schedule(static)
        for (int n = 0; n < c->B; n++)
            for (int g = 0; g < c->G; g++) {
                float *dxg = dx + n * xs + (size_t)g * c->Cg * c->H * c->W;
                const float *dyg = dy + n * ys + (size_t)g * c->Og * OHW;
                wick_gemm_f32(1, 0, c->Kg, OHW, c->Og, 1.0f, Wt + (size_t)g * c->Og * c->Kg, c->Kg, dyg,
                              OHW, 0.0f, c->direct ? dxg : col, OHW);
                if (c->direct) continue;
                memset(dxg, 0, (size_t)c->Cg * c->H * c->W * sizeof *dxg);
                col2im(c, col, dxg);
            }
    }
}

/* ---- the plan ---------------------------------------------------------- */

/* sub: a one-thread plan of the batch split (struct wick_conv's sub[]),
 * planning only the oneDNN forward and input-gradient products. */
static wick_status conv_create(wick_conv **out, int batch, int C, int H, int W, int OUT,
                               const wick_conv2d_params *p, int relu, wick_conv_impl impl, int sub) {
    *out = NULL;
    int G = p->groups ? p->groups : 1;
    int sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1;
    int dh = p->dil_h ? p->dil_h : 1, dw = p->dil_w ? p->dil_w : 1;
    if (batch <= 0 || C <= 0 || H <= 0 || W <= 0 || OUT <= 0 || p->kh <= 0 || p->kw <= 0 || G < 0 ||
        sh < 0 || sw < 0 || dh < 0 || dw < 0 || p->pad_h < 0 || p->pad_w < 0)
        return wick_fail(WICK_EINVAL, "conv: non-positive size in batch %d, %dx%dx%d -> %d, kernel %dx%d",
                         batch, C, H, W, OUT, p->kh, p->kw);
    if (C % G || OUT % G)
        return wick_fail(WICK_EINVAL, "conv: groups %d do not divide channels %d -> %d", G, C, OUT);
    int OH = (H + 2 * p->pad_h - dh * (p->kh - 1) - 1) / sh + 1;
    int OW = (W + 2 * p->pad_w - dw * (p->kw - 1) - 1) / sw + 1;
    if (H + 2 * p->pad_h < dh * (p->kh - 1) + 1 || W + 2 * p->pad_w < dw * (p->kw - 1) + 1)
        return wick_fail(WICK_EINVAL, "conv: the %dx%d kernel (dilation %d, %d) is larger than the padded "
                         "%dx%d input", p->kh, p->kw, dh, dw, H + 2 * p->pad_h, W + 2 * p->pad_w);
    wick_conv *c = wick_calloc(1, sizeof *c);
    if (!c) return wick_fail(WICK_ENOMEM, "conv: out of memory");
    *c = (wick_conv){.B = batch, .C = C, .H = H, .W = W, .OUT = OUT, .OH = OH, .OW = OW, .relu = relu,
                     .kh = p->kh, .kw = p->kw, .sh = sh, .sw = sw, .ph = p->pad_h, .pw = p->pad_w,
                     .dh = dh, .dw = dw, .G = G, .Cg = C / G, .Og = OUT / G,
                     .Kg = C / G * p->kh * p->kw, .threads = omp_get_max_threads()};
    const char *xe = getenv("WICK_CONV_XPOSE");   /* 0: oneDNN's reorders (bench A/B, tests) */
    c->xpose = !(xe && !strcmp(xe, "0"));
    c->direct = p->kh == 1 && p->kw == 1 && sh == 1 && sw == 1 && p->pad_h == 0 && p->pad_w == 0;
    unsigned need = 0, blocked = 0, im2col_need = 0;
    for (int k = 0; k < P_N; k++) {
        product *pr = &c->p[k];
        pr->impl = impl == WICK_CONV_AUTO ? pick(c, k) : impl;
        if (pr->impl == WICK_CONV_IM2COL) im2col_need |= 1u << k;
        else need |= 1u << k;
        if (pr->impl == WICK_CONV_DNNL_BLOCKED) blocked |= 1u << k;
    }
    /* The batch split, for oneDNN's forward and input-gradient products (the
       weight gradient would need partials summed; grouped convolutions only
       take it from oneDNN).  WICK_CONV_SPLIT=0 turns it off (A/B, tests). */
    const char *se = getenv("WICK_CONV_SPLIT");
    if (sub) {
        need &= (1u << P_FWD) | (1u << P_BWD_D);
        im2col_need = 0;
    } else if (c->threads > 1 && batch > 1 && !(se && !strcmp(se, "0"))) {
        c->split = need & ((1u << P_FWD) | (1u << P_BWD_D));
        need &= ~c->split;
    }
    wick_status s = WICK_OK;
    size_t T = c->threads, OHW = (size_t)OH * OW;
    c->zero_bias = wick_aligned_alloc(OUT * sizeof(float));
    c->junk_bias = wick_aligned_alloc(OUT * sizeof(float));
    if (!c->zero_bias || !c->junk_bias) s = wick_fail(WICK_ENOMEM, "conv: out of memory");
    else memset(c->zero_bias, 0, OUT * sizeof(float));
    if (!s && im2col_need) {
        /* the kernel reads B 16 columns at a time: a row's last panel reads
           on into the next row (never stored), the last row's into 16 floats
           of slack */
        c->kern = (im2col_need & (1u << P_FWD)) && !c->direct && wick_kern_ok();
        c->cs = ((c->Kg + c->kern) * OHW + 16 + 15) & ~(size_t)15;
        c->col = wick_aligned_alloc(T * c->cs * sizeof(float));
        if (c->kern && c->col) {
            c->wb = wick_aligned_alloc((size_t)OUT * (c->Kg + 1) * sizeof(float));
            for (size_t t = 0; t < T; t++) {
                float *ones = c->col + t * c->cs + (size_t)c->Kg * OHW;
                for (size_t i = 0; i < OHW + 16; i++) ones[i] = i < OHW ? 1.0f : 0.0f;
            }
            if (!c->wb) {
                wick_free(c->col);
                c->col = NULL;
            }
        }
        c->dwpart = wick_aligned_alloc((T > 1 ? T - 1 : 1) * OUT * c->Kg * sizeof(float));
        c->dbpart = wick_aligned_alloc(T * OUT * sizeof(float));
        if (!c->col || !c->dwpart || !c->dbpart)
            s = wick_fail(WICK_ENOMEM, "conv: out of memory for the im2col buffers");
    }
    if (!s && need) {
        dnnl_status_t st = dnnl_engine_create(&c->eng, dnnl_cpu, 0);
        if (st == dnnl_success) st = dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags);
        if (st != dnnl_success) s = dnnl_err(st, "engine/stream", c);
    }
    /* a plan may mix the blocked and the plain oneDNN paths */
    if (!s && (need & blocked)) s = plan_dnnl(c, 1, need & blocked);
    if (!s && (need & ~blocked)) s = plan_dnnl(c, 0, need & ~blocked);
    if (!s && c->split) {
        /* the samples divided as OpenMP's static schedule divides them; each
           part planned with a team of one, so that oneDNN sizes its blocking
           and scratchpad for one thread (oneDNN's OpenMP runtime runs a
           primitive on the calling thread alone inside a parallel region) */
        int np = c->threads < batch ? c->threads : batch, q = batch / np, r = batch % np;
        c->sub = wick_calloc(np, sizeof *c->sub);
        c->soff = wick_calloc(np + 1, sizeof *c->soff);
        if (!c->sub || !c->soff) s = wick_fail(WICK_ENOMEM, "conv: out of memory");
        int saved = omp_get_max_threads();
        if (!s) omp_set_num_threads(1);
        for (int t = 0; t < np && !s; t++) {
            c->soff[t + 1] = c->soff[t] + q + (t < r);
            s = conv_create(&c->sub[t], q + (t < r), C, H, W, OUT, p, relu, impl, 1);
            if (!s) c->nsub = t + 1;
        }
        omp_set_num_threads(saved);
        for (int k = 0; k < P_N && !s; k++)
            if (c->split & (1u << k))
                snprintf(c->p[k].info, sizeof c->p[k].info, "%s, %d parts", c->sub[0]->p[k].info, np);
    }
    if (s) { wick_conv_free(c); return s; }
    int n = 0;
    static const char *pn[P_N] = {"fwd", "bwd_w", "bwd_d"};
    for (int k = 0; k < P_N && !sub; k++) {
        product *pr = &c->p[k];
        n += snprintf(c->desc + n, sizeof c->desc - n, "%s%s=%s", k ? " " : "", pn[k], impl_name[pr->impl]);
        if (pr->impl != WICK_CONV_IM2COL && n < (int)sizeof c->desc)
            n += snprintf(c->desc + n, sizeof c->desc - n, "(%s)", pr->info);
        if (n >= (int)sizeof c->desc) break;
    }
    wick_flush_denormals();
    *out = c;
    return WICK_OK;
}

wick_status wick_conv_new_impl(wick_conv **out, int batch, int C, int H, int W, int OUT,
                               const wick_conv2d_params *p, int relu, wick_conv_impl impl) {
    return conv_create(out, batch, C, H, W, OUT, p, relu, impl, 0);
}

wick_status wick_conv_new(wick_conv **out, int batch, int C, int H, int W, int OUT,
                          const wick_conv2d_params *p, int relu) {
    return wick_conv_new_impl(out, batch, C, H, W, OUT, p, relu, WICK_CONV_AUTO);
}

void wick_conv_free(wick_conv *c) {
    if (!c) return;
    for (int t = 0; t < c->nsub; t++) wick_conv_free(c->sub[t]);
    wick_free(c->sub);
    wick_free(c->soff);
    for (int k = 0; k < P_N; k++) {
        product *pr = &c->p[k];
        for (int j = 0; j < pr->nst; j++) {
            step *s = &pr->st[j];
            for (int a = 0; a < s->nargs; a++) dnnl_memory_destroy(s->args[a].memory);
            if (s->prim) dnnl_primitive_destroy(s->prim);
            wick_free(s->scratch);
        }
        for (int j = 0; j < pr->nbuf; j++) wick_free(pr->buf[j]);
    }
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->eng) dnnl_engine_destroy(c->eng);
    wick_free(c->zero_bias);
    wick_free(c->junk_bias);
    wick_free(c->col);
    wick_free(c->wb);
    wick_free(c->dwpart);
    wick_free(c->dbpart);
    wick_free(c);
}

/* The product prod on each part of the batch by its one-thread plan, the
 * parts divided over the team (one each on the planned team; a smaller team
 * takes several in turn, with the same bits). */
static void split_run(wick_conv *c, int prod, const float *a, const float *Wt, const float *b, float *o,
                      unsigned blk) {
    size_t xs = (size_t)c->C * c->H * c->W, ys = (size_t)c->OUT * c->OH * c->OW;
    size_t as = prod == P_FWD ? xs : ys, os = prod == P_FWD ? ys : xs;
    int nt = team(c);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    for (int t = omp_get_thread_num(); t < c->nsub; t += omp_get_num_threads()) {
        wick_conv *u = c->sub[t];
        const float *at = a + c->soff[t] * as;
        float *ot = o + c->soff[t] * os;
        if (prod == P_FWD) {
            void *ptr[] = {(void *)at, (void *)Wt, (void *)(b ? b : c->zero_bias), ot};
            run_dnnl(u, &u->p[P_FWD], ptr, blk);
        } else {
            void *ptr[] = {(void *)at, (void *)Wt, ot};
            run_dnnl(u, &u->p[P_BWD_D], ptr, blk);
        }
    }
}

void wick_conv_forward(wick_conv *c, const float *x, const float *Wt, const float *b, float *y) {
    if (c->split & (1u << P_FWD)) { split_run(c, P_FWD, x, Wt, b, y, 0); return; }
    if (c->p[P_FWD].impl == WICK_CONV_IM2COL) { fwd_im2col(c, x, Wt, b, y); return; }
    void *ptr[] = {(void *)x, (void *)Wt, (void *)(b ? b : c->zero_bias), y};
    run_dnnl(c, &c->p[P_FWD], ptr, 0);
}

/* 1 when product prod's caller array `slot` goes through a transpose whose
 * copy the convolution reads or writes (so the caller may pass it in
 * nChw8c), in every part of a split plan. */
static int nchw8c_slot(const wick_conv *c, int prod, int slot) {
    if (c->split & (1u << prod)) {
        for (int t = 0; t < c->nsub; t++)
            if (!nchw8c_slot(c->sub[t], prod, slot)) return 0;
        return c->nsub > 0;
    }
    const product *pr = &c->p[prod];
    if (pr->impl == WICK_CONV_IM2COL) return 0;
    for (int k = 0; k < pr->nst; k++)
        if (pr->st[k].xpose && pr->st[k].uslot == slot && pr->st[k].cstep >= 0) return 1;
    return 0;
}

int wick_conv_nchw8c_out(const wick_conv *c) { return !c->core_only && nchw8c_slot(c, P_FWD, 3); }
int wick_conv_nchw8c_dy(const wick_conv *c) { return !c->core_only && nchw8c_slot(c, P_BWD_D, 0); }
int wick_conv_nchw8c_in(const wick_conv *c) { return !c->core_only && nchw8c_slot(c, P_FWD, 0); }
int wick_conv_nchw8c_dx(const wick_conv *c) { return !c->core_only && nchw8c_slot(c, P_BWD_D, 2); }

void wick_conv_backward_data_dxblk(wick_conv *c, const float *dy, const float *Wt, float *dx, int dyblk) {
    unsigned blk = 1u << 2 | (dyblk ? 1u << 0 : 0);
    if (c->split & (1u << P_BWD_D)) { split_run(c, P_BWD_D, dy, Wt, NULL, dx, blk); return; }
    void *ptr[] = {(void *)dy, (void *)Wt, dx};
    run_dnnl(c, &c->p[P_BWD_D], ptr, blk);
}

void wick_conv_backward_data_nchw8c(wick_conv *c, const float *dy, const float *Wt, float *dx) {
    if (c->split & (1u << P_BWD_D)) { split_run(c, P_BWD_D, dy, Wt, NULL, dx, 1u << 0); return; }
    void *ptr[] = {(void *)dy, (void *)Wt, dx};
    run_dnnl(c, &c->p[P_BWD_D], ptr, 1u << 0);
}

void wick_conv_forward_nchw8c(wick_conv *c, const float *x, const float *Wt, const float *b, float *y) {
    if (c->split & (1u << P_FWD)) { split_run(c, P_FWD, x, Wt, b, y, 1u << 3); return; }
    void *ptr[] = {(void *)x, (void *)Wt, (void *)(b ? b : c->zero_bias), y};
    run_dnnl(c, &c->p[P_FWD], ptr, 1u << 3);
}

void wick_conv_forward_xblk(wick_conv *c, const float *x, const float *Wt, const float *b, float *y, int yblk) {
    unsigned blk = 1u << 0 | (yblk ? 1u << 3 : 0);
    if (c->split & (1u << P_FWD)) { split_run(c, P_FWD, x, Wt, b, y, blk); return; }
    void *ptr[] = {(void *)x, (void *)Wt, (void *)(b ? b : c->zero_bias), y};
    run_dnnl(c, &c->p[P_FWD], ptr, blk);
}

void wick_conv_backward_weights(wick_conv *c, const float *x, const float *dy, float *dW,
                                float *db) {
    if (c->p[P_BWD_W].impl == WICK_CONV_IM2COL) { bwd_w_im2col(c, x, dy, dW, db); return; }
    void *ptr[] = {(void *)x, (void *)dy, dW, db ? db : c->junk_bias};
    run_dnnl(c, &c->p[P_BWD_W], ptr, 0);
}

void wick_conv_backward_data(wick_conv *c, const float *dy, const float *Wt, float *dx) {
    if (c->split & (1u << P_BWD_D)) { split_run(c, P_BWD_D, dy, Wt, NULL, dx, 0); return; }
    if (c->p[P_BWD_D].impl == WICK_CONV_IM2COL) { bwd_d_im2col(c, dy, Wt, dx); return; }
    void *ptr[] = {(void *)dy, (void *)Wt, dx};
    run_dnnl(c, &c->p[P_BWD_D], ptr, 0);
}

void wick_conv_out_hw(const wick_conv *c, int *OH, int *OW) {
    *OH = c->OH;
    *OW = c->OW;
}

double wick_conv_flops(const wick_conv *c) {
    return 2.0 * c->B * c->OUT * c->OH * c->OW * c->Kg;
}

const char *wick_conv_describe(const wick_conv *c) { return c->desc; }

void wick_conv_bench_core_only(wick_conv *c, int on) {
    c->core_only = on;
    for (int t = 0; t < c->nsub; t++) c->sub[t]->core_only = on;
}

int wick_conv_reorders(const wick_conv *c, int prod) {
    int n = 0;
    if (prod >= 0 && prod < P_N && (c->split & (1u << prod))) return wick_conv_reorders(c->sub[0], prod);
    for (int k = 0; prod >= 0 && prod < P_N && k < c->p[prod].nst; k++) n += c->p[prod].st[k].is_reorder;
    return n;
}
