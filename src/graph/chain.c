/* chain.c — a fast path inside the executor for the commonest graph: a chain
 * of dense ops ending in cross-entropy (an MLP classifier), float32.
 *
 * The general executor runs op after op, each product split across the cores
 * by the library that computes it; on two cores a 128 x 512 x 512 product
 * splits poorly and the threads spend a fifth of the step waiting at the
 * libraries' barriers.  Here one run of wick's thread pool runs the whole
 * step, in phases separated by barriers; within a phase the work is cut into
 * items that the threads take as they come free (a dynamic schedule: on a
 * shared machine one thread is often descheduled for a while, and the other
 * then does its share instead of waiting for it).  The pool and its barrier
 * are wick's own (core/threads.c), not OpenMP's: a thread that waits spins
 * briefly and then sleeps, so that a core the OS took away for a while is not
 * also spun away by the thread waiting for it.  Every product is wick's own
 * single-threaded kernel (backend/kernel.c).
 *
 *   forward        rows of the batch per item (row_cut: T large items,
 *                  together 3/4 of it, then T smaller ones), each through
 *                  every layer, the loss, dz of
 *                  the logits and, rows being independent there, the top
 *                  layer's input gradient and the activation derivative
 *                  below it (dz of layer L-2)
 *   ---- barrier (the loss decides whether to go on)
 *   phase l        for l = L-1 .. 0, each item one of (larger items first,
 *                  so that the phase ends evenly; the top layer's phase is
 *                  its dW item(s) alone, with no barrier after it, since
 *                  nothing below waits on them)
 *                    dW:  CHUNK..CHUNK_MAX rows of dW_l = dz_l^T x_{l-1} and
 *                         db_l, then
 *                         the optimiser on those rows of W_l and b_l, then
 *                         those rows packed for the next step (grad, W and
 *                         state still in L2)
 *                    dx:  32 columns of dx_{l-1} = dz_l W_l, then layer
 *                         l-1's activation derivative on them, in place
 *   ---- barrier after each phase but the last
 *
 * The weights stay packed between steps in the kernel's two layouts.  The
 * data-gradient copy is double-buffered: phase l's dx items read the copy of
 * W_l from before the update while its dW items write the new one.
 * Anything else that may change them goes through wick_graph_value, which
 * counts the calls (graph.c); when the count has moved, the step first
 * repacks everything.  Each item's numbers do not depend on which thread
 * computes it, so the weights are bit-identical for any thread count; the
 * loss, summed per item, may differ in its last bits across thread counts.
 *
 * Hidden activations live in the chain's own buffers with a padded row
 * stride: a 512-wide row is 2 KiB, and columns read down a power-of-two
 * stride fall into two of L1's 64 sets.  The logits stay in the graph's
 * nodes (the loss kernels read them there).
 *
 * It computes what wick_graph_forward + wick_graph_backward + the updates
 * compute (tests/test_train.c holds the two paths to each other). */
#include "graph/chain.h"
#include "backend/kernel.h"
#include "core/core.h"
#include "graph/graph_internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_pause() _mm_pause()
#else
#define cpu_pause() ((void)0)
#endif

/* bench/steptime's profile (chain.h) */
static wick_chain_profile profile;
const wick_chain_profile *wick_chain_profile_totals(void) { return &profile; }
#ifdef WICK_CHAIN_PROFILE
#define PROF_START(v) double v = omp_get_wtime()
#define PROF_ADD(t, ph, l, since)                                                               \
    do {                                                                                      \
        if ((t) < WICK_CHAIN_PROF_THREADS) profile.sec[t][ph][l] += omp_get_wtime() - (since); \
    } while (0)
#else
#define PROF_START(v) (void)0
#define PROF_ADD(t, ph, l, since) (void)0
#endif

/* Rows of W per dW or pb item: at least CHUNK (8 tiles of 6 rows), whole
 * 16-row panels (a panel packed by two items would be written by two
 * threads).  The chunk's gradient is still in L2 when the optimiser reads
 * it, and W's rows when they are packed.  With a large L2 the items grow to
 * CHUNK_MAX rows, as long as a chunk's gradient fills at most a quarter of
 * it: each column tile of the input then serves more row tiles, which is
 * faster with a 2 MiB L2 and changes nothing with 512 KiB (bench/README.md,
 * "6 December: a Xeon with AVX-512").  Columns per dx item: two panels of
 * the packed W. */
#define CHUNK 48
#define CHUNK_MAX 128
#define DXCOLS 32
_Static_assert(CHUNK % 16 == 0 && CHUNK_MAX % 16 == 0 && DXCOLS % 16 == 0, "items must hold whole 16-row panels");

/* One layer's operands as the step sees them. */
typedef struct {
    int K, N;            /* in, out */
    int ld;              /* row stride of y, z, dz */
    float *y, *z, *dz;   /* [batch, ld]; z == y when the activation needs only y */
    float *pf, *pb;      /* W packed for the forward and the data gradient */
    float *pb_next;      /* the data-gradient copy being written this step */
    int direct;          /* ReLU or linear: the forward writes y, no z */
    /* bf16 (--precision bf16): y and dz as column pairs ([batch][(ld + 1) / 2]
       words: the A of the next layer's forward and of this layer's input
       gradient) and as row pairs ([batch / 2][ld]: the weight gradient's
       operands); W packed in bf16 like pf, pb, pb_next */
    uint32_t *yb, *yp, *dzb, *dzp;
    uint32_t *pf16, *pb16, *pb16_next;
} layer;

/* One step's arguments and results, shared by its threads. */
typedef struct step_args {
    wick_chain *c;
    const float *X;
    const int32_t *Y;
    const uint32_t *idx;
    size_t first;
    double max_loss;
    wick_chain_update_fn update;
    void *user;
    int T, nf, repack;
    long stall_us;  /* WICK_TEST_STALL_US on this step, else 0 */
    long stalls;    /* the count of stalls before the step */
    double total;   /* written by thread 0 */
    int went;
    int abandon;    /* redo: an item stops once another thread committed it (WICK_REDO_ABANDON, redo_watch) */
    int prof;       /* redo: the items' CPU time by fate (WICK_REDO_PROF=1, chain.h) */
    int overlap;    /* redo: layer l-1's items start before l's dW items are done (WICK_REDO_OVERLAP, redo_one) */
    int race;       /* redo: a thread without an item races a claimed one at once (WICK_REDO_RACE=1) */
} step_args;

struct wick_chain {
    wick_graph *g;
    int L;
    node *dense[WICK_CHAIN_MAX];
    wick_node W[WICK_CHAIN_MAX], b[WICK_CHAIN_MAX];
    layer ly[WICK_CHAIN_MAX];
    node *input, *labels, *loss;
    float *xin;                /* the gathered batch, [batch, ldx] */
    int ldx;
    int bf16;                  /* products in bf16 (kernel_bf16.c) */
    int mr;                    /* the kernel's tile height (row_cut) */
    uint32_t *xb, *xp;         /* bf16: the batch as column pairs and as row pairs */
    void *mem16;               /* the bf16 buffers in one block */
    void *mem;                 /* everything above in one block */
    int fresh;                 /* the packed copies match W as of param_writes == gen */
    unsigned long gen;
    double *part;              /* per-item partial losses */
    float *scratch;            /* per thread: a dW item's rows, [chunk, max K] */
    size_t scratch_stride;
    int max_threads;
    int chunk_max;             /* rows of a dW item at most (CHUNK..CHUNK_MAX) */
    /* the step's own barrier and, per phase, the next item to take (the
       repack, the forward, then layer l's at 2 + l): libgomp's barrier and
       work-sharing loops spin for milliseconds where a thread waits
       (core/threads.c) */
    wick_barrier bar;
    _Atomic int next[2 + WICK_CHAIN_MAX];
    /* how many of the T threads take part, by timing (core.h): the items are
       cut for T, so the numbers do not depend on it */
    wick_team_tuner team;
    /* redo (step_redo below): the step's number (odd while its arguments are
       written), its arguments, a state word and a claim time per item, each
       item's typical time, each phase's count of items done, and per thread
       a private copy of every buffer a forward or dx item writes */
    _Atomic unsigned long seq;
    struct step_args *args;
    _Atomic unsigned long long *state;
    _Atomic long *since, *item_ns;
    _Atomic unsigned long *redoing;
    _Atomic int done[2 + WICK_CHAIN_MAX], done_dx[2 + WICK_CHAIN_MAX];
    _Atomic unsigned progress, progress_sleepers;
    int nitems;                /* items of the largest step */
    float *priv;               /* [max_threads][priv_stride] */
    size_t priv_stride;
    float *gb;                 /* per thread: a dW item's bias gradient, [chunk_max] */
    long steps;                /* counts steps, for WICK_TEST_STALL_US */
    long redo_left;            /* steps to run with redo (on demand) */
    long slow_at;              /* the last step REDO_SLOW times the typical one (+1; 0: none) */
    int last_redo;             /* the last step ran with redo */
    double step_s;             /* a step's typical time without redo: down at once, up slowly */
};

/* The buffers a step's items write (the shared ones, or a thread's private
 * copies: same shapes and strides, so an item computes the same numbers in
 * either). */
typedef struct {
    float *xin;
    int32_t *lab;
    float *y[WICK_CHAIN_MAX], *z[WICK_CHAIN_MAX], *dz[WICK_CHAIN_MAX];
    float *prob, *grad;   /* the loss's probabilities, the gradient of the logits */
    /* bf16: the layer struct's copies (column and row pairs), and the batch's */
    uint32_t *xb, *xp, *yb[WICK_CHAIN_MAX], *yp[WICK_CHAIN_MAX], *dzb[WICK_CHAIN_MAX], *dzp[WICK_CHAIN_MAX];
} view;

enum { ITEMS_REPACK, ITEMS_FORWARD, ITEMS_LAYER };

/* The next item of a phase for this thread, or n when the phase has none
 * left: items go to the threads as they come free. */
static int take(wick_chain *c, int phase, int n) {
    int i = atomic_fetch_add_explicit(&c->next[phase], 1, memory_order_relaxed);
    return i < n ? i : n;
}

/* Forward items of a step of B rows on T threads (row_cut below). */
static int forward_items(int B, int T) { return T > 1 && B >= 48 * T ? 2 * T : T; }

/* A row stride of at least n, a multiple of 16 (the kernel reads whole
 * 16-column panels) and not a multiple of 128 floats (512 bytes). */
static int padded(int n) {
    int r = (n + 15) / 16 * 16;
    return r % 128 ? r : r + 16;
}

/* The shared buffers. */
static view shared_view(const wick_chain *c) {
    view v;
    memset(&v, 0, sizeof v);
    v.xin = c->xin;
    v.lab = c->labels->val;
    for (int l = 0; l < c->L; l++) v.y[l] = c->ly[l].y, v.z[l] = c->ly[l].z, v.dz[l] = c->ly[l].dz;
    v.prob = c->loss->aux;
    v.grad = c->dense[c->L - 1]->grad;
    v.xb = c->xb, v.xp = c->xp;
    for (int l = 0; l < c->L; l++)
        v.yb[l] = c->ly[l].yb, v.yp[l] = c->ly[l].yp, v.dzb[l] = c->ly[l].dzb, v.dzp[l] = c->ly[l].dzp;
    return v;
}

/* The bf16 copies of the batch, the activations and the δ's (column and
 * row pairs), laid out from p into v (p NULL: only counts, in words); the
 * shared ones (bf16_buffers) and each thread's private ones (priv_view)
 * alike. */
static size_t bf16_acts(const wick_chain *c, uint32_t *p, view *v) {
    const size_t B = (size_t)c->g->max_batch, Bp = (B + 1) / 2;
    size_t n = 0;
#define TAKE16(dst, count) do { if (p) (dst) = p + n; n += ((count) + 15) / 16 * 16; } while (0)
    TAKE16(v->xb, B * ((c->ldx + 1) / 2));
    TAKE16(v->xp, Bp * c->ldx);
    for (int l = 0; l < c->L; l++) {
        const size_t ld = c->ly[l].ld;
        if (l < c->L - 1) {
            TAKE16(v->yb[l], B * ((ld + 1) / 2));
            TAKE16(v->yp[l], Bp * ld);
        }
        if (l > 0) TAKE16(v->dzb[l], B * ((ld + 1) / 2));   /* layer 0's δ: row pairs alone (to_bf16) */
        TAKE16(v->dzp[l], Bp * ld);
    }
#undef TAKE16
    return n;
}

/* Thread t's private copies, laid out in c->priv as priv_size counts them
 * (p NULL: only counts).  The top layer's z and dz alias y and the gradient
 * where the shared ones do. */
static size_t priv_view(const wick_chain *c, float *p, view *v) {
    const size_t B = (size_t)c->g->max_batch;
    size_t n = 0;
#define TAKE(dst, count) do { if (p) (dst) = p + n; n += ((count) + 15) / 16 * 16; } while (0)
    float *lab = NULL;
    TAKE(v->xin, B * c->ldx);
    TAKE(lab, B);
    if (p) v->lab = (int32_t *)lab;
    for (int l = 0; l < c->L; l++) {
        const layer *y = &c->ly[l];
        TAKE(v->y[l], B * y->ld);
        if (y->z != y->y) TAKE(v->z[l], B * y->ld);
        else if (p) v->z[l] = v->y[l];
        if (l < c->L - 1) TAKE(v->dz[l], B * y->ld);
    }
    const int C = c->ly[c->L - 1].N;
    TAKE(v->prob, B * C);
    TAKE(v->grad, B * C);
    const layer *top = &c->ly[c->L - 1];
    if (top->dz != c->dense[c->L - 1]->grad) TAKE(v->dz[c->L - 1], B * C);
    else if (p) v->dz[c->L - 1] = v->grad;
    if (c->bf16) n += bf16_acts(c, p ? (uint32_t *)(p + n) : NULL, v);   /* words are floats' size */
#undef TAKE
    return n;
}

/* The shared bf16 copies (bf16_acts) and the weights packed in bf16, in one
 * zeroed block: padding words stay zero, as the kernel's panels need. */
static wick_status bf16_buffers(wick_chain *c) {
    view v;
    memset(&v, 0, sizeof v);
    c->bf16 = 1;
    const size_t acts = bf16_acts(c, NULL, &v);
    size_t total = acts;
    for (int l = 0; l < c->L; l++) {
        const layer *y = &c->ly[l];
        total += (wick_kern_fwd_words_bf16(y->N, y->K) + 15) / 16 * 16;
        if (l) total += 2 * ((wick_kern_bwd_words_bf16(y->N, y->K) + 15) / 16 * 16);
    }
    uint32_t *p = c->mem16 = wick_huge_alloc(total * sizeof(uint32_t));
    if (!p) return WICK_ENOMEM;
    memset(p, 0, total * sizeof(uint32_t));
    bf16_acts(c, p, &v);
    c->xb = v.xb, c->xp = v.xp;
    p += acts;
    for (int l = 0; l < c->L; l++) {
        layer *y = &c->ly[l];
        y->yb = v.yb[l], y->yp = v.yp[l], y->dzb = v.dzb[l], y->dzp = v.dzp[l];
        y->pf16 = p, p += (wick_kern_fwd_words_bf16(y->N, y->K) + 15) / 16 * 16;
        if (l) {
            y->pb16 = p, p += (wick_kern_bwd_words_bf16(y->N, y->K) + 15) / 16 * 16;
            y->pb16_next = p, p += (wick_kern_bwd_words_bf16(y->N, y->K) + 15) / 16 * 16;
        }
    }
    return WICK_OK;
}

wick_status wick_chain_new(wick_chain **out, wick_graph *g, wick_node loss, int bf16) {
    *out = NULL;
    if (g->dt != WICK_DT_F32 || !g->compiled || loss < 0 || loss >= g->n || g->nodes[loss].op != OP_XENT)
        return wick_fail(WICK_EUNSUPPORTED, "chain: not a float32 graph ending in cross-entropy");
    if (!wick_kern_ok()) return wick_fail(WICK_EUNSUPPORTED, "chain: this CPU has no AVX2/FMA");
    if (bf16 && !wick_kern_bf16_ok()) return wick_fail(WICK_EUNSUPPORTED, "chain: this CPU has no AVX512-BF16");
    wick_chain *c = wick_calloc(1, sizeof *c);
    if (!c) return wick_fail(WICK_ENOMEM, "chain: out of memory");
    c->g = g;
    c->mr = bf16 ? 8 : wick_kern_tile_rows();
    c->loss = &g->nodes[loss];
    c->labels = &g->nodes[c->loss->in[1]];
    /* walk back from the logits: dense, dense, ..., input */
    node *n = &g->nodes[c->loss->in[0]];
    int L = 0;
    node *rev[WICK_CHAIN_MAX];
    wick_node rw[WICK_CHAIN_MAX], rb[WICK_CHAIN_MAX];
    while (n->op == OP_DENSE && L < WICK_CHAIN_MAX) {
        rev[L] = n;
        rw[L] = n->in[1];
        rb[L] = n->in[2];
        if (g->nodes[rw[L]].op != OP_PARAM || g->nodes[rb[L]].op != OP_PARAM) break;
        L++;
        n = &g->nodes[n->in[0]];
    }
    if (n->op != OP_INPUT || L == 0) {
        wick_free(c);
        return wick_fail(WICK_EUNSUPPORTED, "chain: not a chain of dense layers from one input");
    }
    c->input = n;
    c->L = L;
    for (int l = 0; l < L; l++) {
        c->dense[l] = rev[L - 1 - l];
        c->W[l] = rw[L - 1 - l];
        c->b[l] = rb[L - 1 - l];
    }
    /* sizes first, then one 64-byte aligned block */
    const size_t B = (size_t)g->max_batch;
    c->ldx = padded(n->cols);
    size_t total = B * c->ldx;
    for (int l = 0; l < L; l++) {
        layer *y = &c->ly[l];
        node *d = c->dense[l];
        y->K = l ? c->dense[l - 1]->cols : n->cols;
        y->N = d->cols;
        y->direct = d->act.kind == WICK_ACT_RELU || d->act.kind == WICK_ACT_LINEAR;
        y->ld = l < L - 1 ? padded(y->N) : y->N;
        if (l < L - 1) total += B * y->ld * (y->direct ? 2 : 3);
        total += (wick_kern_fwd_elems(y->N, y->K) + 15) / 16 * 16;
        if (l) total += 2 * ((wick_kern_bwd_elems(y->N, y->K) + 15) / 16 * 16);
    }
    c->max_threads = omp_get_max_threads();
    const size_t TM = c->max_threads > 0 ? (size_t)c->max_threads : 1;
    int maxK = 0;
    for (int l = 0; l < L; l++) maxK = c->ly[l].K > maxK ? c->ly[l].K : maxK;
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    long fit = l2 > 0 ? l2 / 4 / ((long)maxK * (long)sizeof(float)) / 16 * 16 : CHUNK;
    c->chunk_max = fit < CHUNK ? CHUNK : fit > CHUNK_MAX ? CHUNK_MAX : (int)fit;
    c->scratch_stride = ((size_t)c->chunk_max * maxK + 15) / 16 * 16;
    c->scratch = wick_aligned_alloc(c->scratch_stride * TM * sizeof(float));
    /* one per forward item: at most 2 per thread (forward_items) */
    c->part = wick_calloc(2 * TM, sizeof *c->part);
    c->mem = wick_huge_alloc(total * sizeof(float));
    c->gb = wick_aligned_alloc(((size_t)c->chunk_max + 16) * TM * sizeof(float));
    /* items of a step: the repack's and each layer's dW items at most
       chunks(N) <= N / 16 + 1, the forward's 2T, the dx items K / 32 + 1 */
    int items = 2 * (int)TM + 1;
    for (int l = 0; l < L; l++) items += 2 * (c->ly[l].N / 16 + 1) + c->ly[l].K / DXCOLS + 1;
    c->nitems = items;
    c->state = wick_calloc((size_t)items, sizeof *c->state);
    c->since = wick_calloc((size_t)items, sizeof *c->since);
    c->item_ns = wick_calloc((size_t)items, sizeof *c->item_ns);
    c->redoing = wick_calloc((size_t)items, sizeof *c->redoing);
    c->args = wick_calloc(1, sizeof(struct step_args));
    if (!c->part || !c->mem || !c->scratch || !c->gb || !c->state || !c->since || !c->item_ns ||
        !c->redoing || !c->args) {
        wick_chain_free(c);
        return wick_fail(WICK_ENOMEM, "chain: out of memory");
    }
    memset(c->mem, 0, total * sizeof(float));   /* padding columns stay zero */
    float *p = c->mem;
    c->xin = p, p += B * c->ldx;
    for (int l = 0; l < L; l++) {
        layer *y = &c->ly[l];
        node *d = c->dense[l];
        if (l < L - 1) {
            y->y = p, p += B * y->ld;
            y->z = y->direct ? y->y : p;
            if (!y->direct) p += B * y->ld;
            y->dz = p, p += B * y->ld;
        } else {   /* the logits: the graph's own buffers */
            y->y = d->val;
            y->z = y->direct ? y->y : d->aux;
            y->dz = d->act.kind == WICK_ACT_LINEAR ? d->grad : d->aux2;
        }
        y->pf = p, p += (wick_kern_fwd_elems(y->N, y->K) + 15) / 16 * 16;
        if (l) {
            y->pb = p, p += (wick_kern_bwd_elems(y->N, y->K) + 15) / 16 * 16;
            y->pb_next = p, p += (wick_kern_bwd_elems(y->N, y->K) + 15) / 16 * 16;
        }
    }
    if (bf16 && bf16_buffers(c) != WICK_OK) {
        wick_chain_free(c);
        return wick_fail(WICK_ENOMEM, "chain: out of memory");
    }
    *out = c;
    return WICK_OK;
}

void wick_chain_free(wick_chain *c) {
    if (!c) return;
    wick_pool_drain();   /* a late worker of a redo step may still read the chain */
    wick_free(c->gb);
    wick_free((void *)c->state);
    wick_free((void *)c->since);
    wick_free((void *)c->item_ns);
    wick_free((void *)c->redoing);
    wick_free(c->args);
    wick_free(c->priv);
    wick_free(c->part);
    wick_free(c->mem);
    wick_free(c->mem16);
    wick_free(c->scratch);
    wick_free(c);
}


/* Forward items for T threads: T large ones (3/4 of the batch) taken first,
 * then T small ones, which the threads take as they come free, so that a
 * thread slowed by a neighbour does less (in a quiet window it is level with
 * one item a thread).  Each item streams all of the packed W, so items are
 * few, and below 48 rows a thread each takes one (bench/README.md, "The
 * forward's items").  Start of item i, at a multiple of the kernel's tile
 * height mr where possible (6 rows for AVX2, 8 for AVX-512 and bf16: a cut
 * at 6 left 2-row tiles there). */
static int row_cut(int B, int T, int i, int mr) {
    if (i >= forward_items(B, T)) return B;
    /* T equal items after `start` rows, or all of them when there are only T */
    const int big = forward_items(B, T) > T ? 3 * B / (4 * T) / mr * mr : 0;
    if (i <= T && big) return i * big;
    const int start = T * big, j = big ? i - T : i;
    int c = start + (int)(((long)(B - start) * j / T + mr / 2) / mr * mr);
    return c < B ? c : B;
}

/* bf16: rows [r0, r1) (r0 even), columns [k0, k1) (k0 even) of a [batch, ld]
 * float array into its column-pair (b, rows of (ld + 1) / 2 words) and
 * row-pair (p, rows of ld words) copies; b NULL: the row pairs alone (layer
 * 0's δ, which no input gradient reads). */
static void to_bf16(const wick_chain *c, const float *x, int ld, int r0, int r1, int k0, int k1, uint32_t *b,
                    uint32_t *p) {
    if (b) wick_kern_rows_bf16(x, ld, r0, r1, k0, k1, b, (ld + 1) / 2);
    wick_kern_rowpairs_bf16(x, ld, r0, r1, c->g->batch, k0, k1, p, ld);
}

/* Rows [r0, r1) and columns [k0, k1) (k0 a multiple of 16) of layer l's
 * input gradient, then layer l-1's activation derivative on them: a dx item
 * is all rows and some columns, the top layer's all columns of a forward
 * item's rows. */
static void dx_rows(wick_chain *c, int l, int r0, int r1, int k0, int k1, const view *in,
                    const view *ov) {
    layer *y = &c->ly[l], *p = &c->ly[l - 1];
    float *out = ov->dz[l - 1];
    if (c->bf16) {
        const int nq = (y->N + 1) / 2, ldw = (y->ld + 1) / 2;
        wick_kern_gemm_bf16(r1 - r0, k1 - k0, nq, in->dzb[l] + (size_t)r0 * ldw, ldw, 1,
                            y->pb16 + (size_t)k0 * nq, 16, 16L * nq, out + (size_t)r0 * p->ld + k0,
                            p->ld, NULL, 0);
    } else {
        wick_kern_gemm(r1 - r0, k1 - k0, y->N, in->dz[l] + (size_t)r0 * y->ld, y->ld, 1,
                       y->pb + (size_t)k0 * y->N, 16, 16L * y->N, out + (size_t)r0 * p->ld + k0,
                       p->ld, NULL, 0);
    }
    wick_act a = c->dense[l - 1]->act;
    if (a.kind != WICK_ACT_LINEAR)
        for (int r = r0; r < r1; r++) {
            size_t o = (size_t)r * p->ld + k0;
            op_act_bwd_f32(a, in->z[l - 1] + o, in->y[l - 1] + o, out + o, out + o, k1 - k0);
        }
    /* bf16: these rows and columns of dz_{l-1} for the products that read them */
    if (c->bf16) to_bf16(c, out, p->ld, r0, r1, k0, k1, l > 1 ? ov->dzb[l - 1] : NULL, ov->dzp[l - 1]);
}

/* A redo step's item under way (redo_item below): its state word and the
 * word it is computed against.  Once the word has moved (another thread
 * committed the item, or the step ended) the result cannot be committed, and
 * the item stops at its next check (between the forward's layers, between
 * the halves of a dW or dx item's product) instead of running to its end.
 * NULL on the step without redo, and with WICK_REDO_ABANDON=0. */
typedef struct {
    _Atomic unsigned long long *w;
    unsigned long long expect;
    int stopped;
} redo_watch;

static inline int watch_stop(redo_watch *rw) {
    if (!rw) return 0;
    if (__builtin_expect(atomic_load_explicit(rw->w, memory_order_relaxed) != rw->expect, 0)) rw->stopped = 1;
    return rw->stopped;
}

/* Forward item: rows [r0, r1) gathered, through every layer, their loss
 * (returned, summed) and the gradient of the logits.  Under a watch that
 * stops it, it returns early with its rows unfinished. */
#define GATHER_AHEAD 4
static void stall(long us);
static double forward_rows(wick_chain *c, const float *X, const int32_t *Y, const uint32_t *idx,
                           size_t first, int r0, int r1, const view *v, long stall_us, redo_watch *rw) {
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L, D = c->input->cols, ldx = c->ldx, R = r1 - r0;
    int32_t *lab = v->lab;
    for (int r = r0; r < r1; r++) {
        size_t i = idx ? idx[r] : first + r;
        /* the rows are scattered over the data set, each read from memory:
           ask for the one GATHER_AHEAD rows on while this one is copied
           (bench/README.md, "6 December: a Xeon with AVX-512") */
        if (idx && r + GATHER_AHEAD < r1) {
            const char *ahead = (const char *)(X + (size_t)idx[r + GATHER_AHEAD] * D);
            for (size_t o = 0; o < D * sizeof *X; o += 64) __builtin_prefetch(ahead + o, 0, 3);
        }
        memcpy(v->xin + (size_t)r * ldx, X + i * D, D * sizeof *v->xin);
        lab[r] = Y[i];
    }
    if (stall_us) stall(stall_us);   /* the tests' stand-in for a preemption mid-item */
    if (c->bf16) to_bf16(c, v->xin, ldx, r0, r1, 0, D, v->xb, v->xp);
    for (int l = 0; l < L; l++) {
        if (watch_stop(rw)) return 0;
        layer *y = &c->ly[l];
        node *d = c->dense[l];
        const float *x = l ? v->y[l - 1] : v->xin;
        const int lda = l ? c->ly[l - 1].ld : ldx;
        const int relu = d->act.kind == WICK_ACT_RELU;
        const int flags = WICK_KERN_BIAS | (relu ? WICK_KERN_RELU : 0);
        if (c->bf16) {
            const uint32_t *xb = l ? v->yb[l - 1] : v->xb;
            const int ldw = (lda + 1) / 2, kq = (y->K + 1) / 2;
            wick_kern_gemm_bf16(R, y->N, kq, xb + (size_t)r0 * ldw, ldw, 1, y->pf16, 16, 16L * kq,
                                v->z[l] + (size_t)r0 * y->ld, y->ld, g->nodes[c->b[l]].val, flags);
        } else {
            wick_kern_gemm(R, y->N, y->K, x + (size_t)r0 * lda, lda, 1, y->pf, 16, 16L * y->K,
                           v->z[l] + (size_t)r0 * y->ld, y->ld, g->nodes[c->b[l]].val, flags);
        }
        if (!y->direct)
            for (int r = r0; r < r1; r++)
                op_act_fwd_f32(d->act, v->z[l] + (size_t)r * y->ld, v->y[l] + (size_t)r * y->ld, y->N);
        if (c->bf16 && l < L - 1) to_bf16(c, v->y[l], y->ld, r0, r1, 0, y->N, v->yb[l], v->yp[l]);
    }
    node *dt = c->dense[L - 1];
    const int C = c->ly[L - 1].N;
    double loss = op_xent_rows_f32(v->y[L - 1], lab, v->prob, r0, r1, C, c->loss->scalar);
    op_xent_grad_rows_f32(v->prob, lab, 1.0f / B, v->grad, r0, r1, C, c->loss->scalar);
    if (dt->act.kind != WICK_ACT_LINEAR) {
        size_t o = (size_t)r0 * C;
        op_act_bwd_f32(dt->act, v->z[L - 1] + o, v->y[L - 1] + o, (const float *)v->grad + o,
                       v->dz[L - 1] + o, (size_t)R * C);
    }
    if (c->bf16) to_bf16(c, v->dz[L - 1], C, r0, r1, 0, C, v->dzb[L - 1], v->dzp[L - 1]);
    /* the top layer's input gradient for these rows, here rather than in a
       phase of its own: that phase was a barrier for a product of k = 10
       (W_L-1 is read before its update, from the data-gradient copy) */
    if (L > 1 && !watch_stop(rw)) dx_rows(c, L - 1, r0, r1, 0, c->ly[L - 2].N, v, v);
    return loss;
}

/* Rows [q0, q1) of layer l's W into its forward copy and, but for the first
 * layer (no data gradient), into the data-gradient copy pb. */
static void pack_rows(wick_chain *c, int l, const float *W, int q0, int q1, int next) {
    layer *y = &c->ly[l];
    if (c->bf16) {
        wick_kern_pack_fwd_bf16(W, y->N, y->K, q0, q1, y->pf16);
        if (l) wick_kern_pack_bwd_bf16(W, y->N, y->K, q0, q1, next ? y->pb16_next : y->pb16);
        return;
    }
    wick_kern_pack_fwd(W, y->N, y->K, q0, q1, y->pf);
    if (l) wick_kern_pack_bwd(W, y->N, y->K, q0, q1, next ? y->pb_next : y->pb);
}

/* dW item: rows [q0, q1) of layer l's weight and bias gradients into thread
 * t's scratch (dw_grad, which writes nothing shared), then (dw_commit) the
 * bias gradient into the graph, the optimiser on those rows, and both packed
 * copies of them (the data gradient's into the buffer of the next step).
 * Under a watch (redo) the product is two calls, on halves of the columns,
 * with a check between them and before the bias gradient: the same numbers
 * (each element's sum runs over the batch in the same order). */
static void dw_grad(wick_chain *c, int l, int q0, int q1, int t, redo_watch *rw) {
    const int B = c->g->batch;
    layer *y = &c->ly[l];
    const float *x = l ? c->ly[l - 1].y : c->xin;
    const int lda = l ? c->ly[l - 1].ld : c->ldx;
    /* the rows' gradient in this thread's scratch, which stays in L2: the
       whole dW would cost a write-back to L3 of every line each step */
    float *gW = c->scratch + (size_t)t * c->scratch_stride;
    float *gb = c->gb + (size_t)t * (c->chunk_max + 16);
    PROF_START(t0);
    if (c->bf16) {   /* one product: under redo no check between halves */
        const uint32_t *xp = l ? c->ly[l - 1].yp : c->xp;
        wick_kern_gemm_bf16(q1 - q0, y->K, (B + 1) / 2, y->dzp + q0, 1, y->ld, xp, lda, 16, gW, y->K, NULL, 0);
    } else {
        const int half = rw ? y->K / 32 * 16 : 0;
        if (half) {
            wick_kern_gemm(q1 - q0, half, B, y->dz + q0, 1, y->ld, x, lda, 16, gW, y->K, NULL, 0);
            if (watch_stop(rw)) return;
        }
        wick_kern_gemm(q1 - q0, y->K - half, B, y->dz + q0, 1, y->ld, x + half, lda, 16, gW + half, y->K, NULL, 0);
    }
    if (watch_stop(rw)) return;
    for (int j = 0; j < q1 - q0; j++) gb[j] = 0;
    for (int r = 0; r < B; r++) {
        const float *row = y->dz + (size_t)r * y->ld + q0;
        for (int j = 0; j < q1 - q0; j++) gb[j] += row[j];
    }
    PROF_ADD(t, WICK_CHAIN_PH_DW, l, t0);
}

static void dw_commit(wick_chain *c, int l, int q0, int q1, wick_chain_update_fn update, void *user,
                      int t) {
    wick_graph *g = c->g;
    layer *y = &c->ly[l];
    node *wn = &g->nodes[c->W[l]], *bn = &g->nodes[c->b[l]];
    float *W = wn->val, *b = bn->val;
    const float *gW = c->scratch + (size_t)t * c->scratch_stride;
    const float *gb = c->gb + (size_t)t * (c->chunk_max + 16);
    memcpy((float *)bn->grad + q0, gb, (size_t)(q1 - q0) * sizeof *gb);
    PROF_START(t1);
    update(user, c->W[l], W, gW, (size_t)q0 * y->K, (size_t)q1 * y->K);
    update(user, c->b[l], b, gb, (size_t)q0, (size_t)q1);
    PROF_ADD(t, WICK_CHAIN_PH_OPT, l, t1);
    PROF_START(t2);
    pack_rows(c, l, W, q0, q1, 1);
    PROF_ADD(t, WICK_CHAIN_PH_PACK, l, t2);
}

static int min_int(int a, int b) { return a < b ? a : b; }
/* dW and repack items of a layer of n neurons */
/* Rows per item of a layer of n neurons: items of at most chunk_max rows,
 * and at least min(4, n / CHUNK) of them, so that two threads share a layer
 * (the 128-wide layers of a deep net keep three items of 48). */
static int chunk_rows(const wick_chain *c, int n) {
    int items = (n + c->chunk_max - 1) / c->chunk_max, few = (n + CHUNK - 1) / CHUNK;
    if (items < 4) items = few < 4 ? few : 4;
    return ((n + items - 1) / items + 15) / 16 * 16;
}
static int chunks(const wick_chain *c, int n) {
    int r = chunk_rows(c, n);
    return (n + r - 1) / r;
}


/* Sleeps (off the CPU, as a thread the OS descheduled). */
static _Atomic long stalls, stall_wait_ns;
long wick_chain_test_stalls(void) { return atomic_load(&stalls); }
double wick_chain_test_stall_wait(void) { return atomic_load(&stall_wait_ns) * 1e-9; }
/* On a stalled step thread 0 lets a worker take an item and start its
 * stall first (at most 200 ms), so that every stalled step has one. */
static void stall_first(const step_args *a, int t) {
    if (t || !a->stall_us) return;
    const long t0 = wick_now_ns();
    for (int k = 0; k < 4000 && atomic_load(&stalls) == a->stalls; k++) {
        struct timespec d = {0, 50000};
        nanosleep(&d, NULL);
    }
    atomic_fetch_add(&stall_wait_ns, wick_now_ns() - t0);
}

static void stall(long us) {
    atomic_fetch_add(&stalls, 1);
    struct timespec d = {us / 1000000, us % 1000000 * 1000};
    while (nanosleep(&d, &d) != 0) {
    }
}

/* Repack item i: chunk k of layer l, into both packed copies. */
static void repack_item(wick_chain *c, int i) {
    int l = 0, k = i;
    while (k >= chunks(c, c->ly[l].N)) k -= chunks(c, c->ly[l].N), l++;
    const int rows = chunk_rows(c, c->ly[l].N), q = k * rows;
    pack_rows(c, l, c->g->nodes[c->W[l]].val, q, min_int(q + rows, c->ly[l].N), 0);
}

static int repack_items(const wick_chain *c) {
    int items = 0;
    for (int l = 0; l < c->L; l++) items += chunks(c, c->ly[l].N);
    return items;
}

/* Thread t of nt's part of a step.  nt may be smaller than the T the forward
 * items were cut for (the pool was busy): items are taken as threads come
 * free, so only the barrier needs nt. */
static void step_thread(void *arg, int t, int nt) {
    step_args *a = arg;
    wick_chain *c = a->c;
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L, T = a->T, nf = a->nf;
    const unsigned fp = wick_fp_enter();   /* wick.h's mode; the thread's own back at the end */
    const view sv = shared_view(c);
    stall_first(a, t);
    if (a->repack) {   /* every W in both layouts, a dW item's rows an item */
        const int items = repack_items(c);
        for (int i; (i = take(c, ITEMS_REPACK, items)) < items;) repack_item(c, i);
        wick_barrier_wait(&c->bar, nt);
    }
    PROF_START(t0);
    long stall_us = t ? a->stall_us : 0;
    for (int i; (i = take(c, ITEMS_FORWARD, nf)) < nf;) {
        int r0 = row_cut(B, T, i, c->mr), r1 = row_cut(B, T, i + 1, c->mr);
        c->part[i] = r1 > r0 ? forward_rows(c, a->X, a->Y, a->idx, a->first, r0, r1, &sv, stall_us, NULL) : 0.0;
        stall_us = 0;
    }
    PROF_ADD(t, WICK_CHAIN_PH_FORWARD, 0, t0);
    PROF_START(t1);
    wick_barrier_wait(&c->bar, nt);
    PROF_ADD(t, WICK_CHAIN_PH_WAIT_LOSS, 0, t1);
    /* every thread sums the parts in the same order: one decision */
    double s = 0;
    for (int k = 0; k < nf; k++) s += c->part[k];
    s /= B;
    const int go = isfinite(s) && s <= a->max_loss;
    if (t == 0) a->total = s, a->went = go;
    for (int l = L - 1; l >= 0 && go; l--) {
        const int N = c->ly[l].N;
        /* the top layer's input gradient was done in the forward */
        const int ndx = l && l < L - 1 ? (c->ly[l - 1].N + DXCOLS - 1) / DXCOLS : 0;
        const int ndw = chunks(c, N), rows = chunk_rows(c, N);
        for (int i; (i = take(c, ITEMS_LAYER + l, ndw + ndx)) < ndw + ndx;) {
            if (stall_us) stall(stall_us), stall_us = 0;
            if (i < ndw) {   /* timed inside, part by part */
                int q = i * rows;
                dw_grad(c, l, q, min_int(q + rows, N), t, NULL);
                dw_commit(c, l, q, min_int(q + rows, N), a->update, a->user, t);
            } else {
                PROF_START(t2);
                int k = (i - ndw) * DXCOLS;
                dx_rows(c, l, 0, B, k, min_int(k + DXCOLS, c->ly[l - 1].N), &sv, &sv);
                PROF_ADD(t, WICK_CHAIN_PH_DX, l, t2);
            }
        }
        if (l > 0 && l < L - 1) {
            PROF_START(t3);
            wick_barrier_wait(&c->bar, nt);
            PROF_ADD(t, WICK_CHAIN_PH_WAIT, l, t3);
        }
    }
    wick_fp_leave(fp);
}

/* ---- redo ---------------------------------------------------------------------
 *
 * Beside a busy neighbour the OS takes a core from one of the step's threads
 * for a time slice (milliseconds) whenever it likes, often in the middle of
 * an item; with the step above, every other thread then waits for that item
 * at the next barrier, and the step costs the whole time slice.  Here no
 * thread waits for another's computation: an item is claimed, computed into
 * the thread's private buffers (the forward's and dx items' outputs into its
 * copy of the step's buffers, a dW item's gradient into its scratch), and
 * committed by whoever wins a compare-and-swap on the item's state word:
 * the winner copies its rows into the shared buffers (a dW item: the
 * optimiser and the packing, in place).  A thread that runs out of items
 * while one is claimed but not done after a bound (twice that item's typical
 * time, measured, plus 30 us; WICK_REDO_US fixes it; WICK_REDO_RACE=1: at
 * once, racing its owner) computes it itself; the loser's result is dropped
 * when its compare-and-swap fails, and the loser stops computing it at its
 * next check once the winner has committed (redo_watch; WICK_REDO_ABANDON=0:
 * it computes it to the end).  Only a commit is waited for.  Phases end when their count of items done is
 * complete (no barrier), and thread 0 returns without waiting for the
 * others (wick_pool_run_detached): a late worker finds, when it runs again,
 * that the step's number moved on, and leaves without writing anything
 * (state words carry the step's number; each step resets them).  An item's
 * numbers do not depend on who computes it, so results are bit-identical to
 * the step above (tests/test_redo.c).  When it is used: redo_env below. */
enum { ST_FREE, ST_CLAIMED, ST_COMMITTING, ST_DONE };
#define WORD(e, who, st) (((unsigned long long)(e) << 10) | ((unsigned long long)(who) << 2) | (st))
#define WORD_ST(w) ((int)((w) & 3))
#define WORD_WHO(w) ((int)(((w) >> 2) & 255))
#define WORD_E(w) ((w) >> 10)
#define REDO_SLACK_NS 30000L
#define REDO_FIRST_NS 2000000L   /* before an item's time is known */

/* Items committed by a thread that did not claim them, in this process;
 * redone_late: those whose owner was late by the bound above when the redo
 * began (what keeps redo on: wick_chain_step). */
static _Atomic long redone, redone_late;
long wick_chain_redone(void) { return atomic_load(&redone); }

static wick_chain_last last_step;
wick_chain_last wick_chain_last_step(void) { return last_step; }

/* One phase's items as the redo step numbers them. */
typedef struct {
    int phase, base, n;   /* c->done[phase]; state words base .. base + n */
    int ndx;              /* the last ndx of them are dx items (c->done_dx[phase]) */
} phase_items;

static long redo_fixed_ns(void) {
    const char *e = getenv("WICK_REDO_US");
    return e && *e ? strtol(e, NULL, 10) * 1000 : -1;
}

/* The redo items' fates, in this process (chain.h): per thread kind (0:
 * thread 0, 1: the workers) and fate, items and (with WICK_REDO_PROF=1)
 * their CPU time. */
static _Atomic long fate_n[2][WICK_CHAIN_FATES], fate_ns[2][WICK_CHAIN_FATES];
wick_chain_redo_fates wick_chain_fates(void) {
    wick_chain_redo_fates f;
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < WICK_CHAIN_FATES; j++)
            f.items[k][j] = atomic_load(&fate_n[k][j]), f.cpu[k][j] = atomic_load(&fate_ns[k][j]) * 1e-9;
    return f;
}
static long thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
static int fate(const step_args *a, int t, int what, long cpu0) {
    atomic_fetch_add_explicit(&fate_n[t > 0][what], 1, memory_order_relaxed);
    if (a->prof) atomic_fetch_add_explicit(&fate_ns[t > 0][what], thread_cpu_ns() - cpu0, memory_order_relaxed);
    return what == WICK_CHAIN_COMMITTED;
}

/* A committed forward item's bf16 rows [r0, r1) (r0 even), from its
 * private copies to the shared ones: the batch's and every hidden layer's
 * column and row pairs, the top layer's δ and, from its input gradient, the
 * one below's. */
static void copy_rows16(uint32_t *dst, const uint32_t *src, size_t r0, size_t r1, size_t ld) {
    memcpy(dst + r0 * ld, src + r0 * ld, (r1 - r0) * ld * sizeof *dst);
}
static void commit_bf16_rows(const wick_chain *c, const view *sv, const view *pv, int r0, int r1) {
    const int L = c->L;
    const size_t p0 = (size_t)r0 / 2, p1 = ((size_t)r1 + 1) / 2;
    copy_rows16(sv->xb, pv->xb, r0, r1, (c->ldx + 1) / 2);
    copy_rows16(sv->xp, pv->xp, p0, p1, c->ldx);
    for (int k = 0; k < L; k++) {
        const size_t ld = c->ly[k].ld;
        if (k < L - 1) {
            copy_rows16(sv->yb[k], pv->yb[k], r0, r1, (ld + 1) / 2);
            copy_rows16(sv->yp[k], pv->yp[k], p0, p1, ld);
        }
        if (k == L - 1 || (k == L - 2 && k > 0)) copy_rows16(sv->dzb[k], pv->dzb[k], r0, r1, (ld + 1) / 2);
        if (k >= L - 2) copy_rows16(sv->dzp[k], pv->dzp[k], p0, p1, ld);
    }
}

/* A committed input-gradient item's bf16 columns [k0, k1) of layer l's δ
 * (k0 even), every row. */
static void commit_bf16_cols(const wick_chain *c, int l, const view *pv, int k0, int k1) {
    const layer *y = &c->ly[l];
    const int B = c->g->batch, ld = y->ld, ldw = (ld + 1) / 2, w0 = k0 / 2, w1 = (k1 + 1) / 2;
    if (l > 0)   /* layer 0's δ has no column pairs (to_bf16) */
        for (int r = 0; r < B; r++)
            memcpy(y->dzb + (size_t)r * ldw + w0, pv->dzb[l] + (size_t)r * ldw + w0, (size_t)(w1 - w0) * 4);
    for (int q = 0; q < (B + 1) / 2; q++)
        memcpy(y->dzp + (size_t)q * ld + k0, pv->dzp[l] + (size_t)q * ld + k0, (size_t)(k1 - k0) * 4);
}

/* Computes item i of the phase into thread t's private buffers (pv), and
 * commits it if `expect` is still its state word; returns 1 if committed.
 * With a->abandon, stops early once the word has moved (redo_watch). */
static int redo_item(wick_chain *c, const step_args *a, const phase_items *ph, int i, int t,
                     const view *pv, unsigned long long expect, unsigned long e, long stall_us, int late) {
    const int B = c->g->batch, L = c->L;
    const long t0 = wick_now_ns(), cpu0 = a->prof ? thread_cpu_ns() : 0;
    _Atomic unsigned long long *w = &c->state[ph->base + i];
    redo_watch watch = {w, expect, 0}, *rw = a->abandon ? &watch : NULL;
    int l = 0, q0 = 0, q1 = 0, r0 = 0, r1 = 0, k0 = 0, k1 = 0, kind = 0;
    double part = 0;
    if (ph->phase == ITEMS_FORWARD) {
        r0 = row_cut(B, a->T, i, c->mr), r1 = row_cut(B, a->T, i + 1, c->mr);
        if (r1 > r0) part = forward_rows(c, a->X, a->Y, a->idx, a->first, r0, r1, pv, stall_us, rw);
    } else {
        l = ph->phase - ITEMS_LAYER;
        const int N = c->ly[l].N, ndw = chunks(c, N), rows = chunk_rows(c, N);
        kind = i < ndw ? 1 : 2;
        if (stall_us) stall(stall_us);
        if (watch_stop(rw)) {
        } else if (kind == 1) {
            q0 = i * rows, q1 = min_int(q0 + rows, N);
            dw_grad(c, l, q0, q1, t, rw);
        } else {
            k0 = (i - ndw) * DXCOLS, k1 = min_int(k0 + DXCOLS, c->ly[l - 1].N);
            const view sv = shared_view(c);
            /* under a watch, in two halves of the rows (a multiple of the
               kernel's tile height, so even: bf16's row pairs), with a
               check between them */
            const int h = rw ? B / (2 * c->mr) * c->mr : 0;
            if (h) dx_rows(c, l, 0, h, k0, k1, &sv, pv);
            if (!watch_stop(rw)) dx_rows(c, l, h, B, k0, k1, &sv, pv);
        }
    }
    if (watch.stopped) return fate(a, t, WICK_CHAIN_ABANDONED, cpu0);
    const long took = wick_now_ns() - t0;
    if (!atomic_compare_exchange_strong(w, &expect, WORD(e, t, ST_COMMITTING)))
        return fate(a, t, WICK_CHAIN_LOST, cpu0);
    fate(a, t, WICK_CHAIN_COMMITTED, cpu0);
    if (WORD_WHO(expect) != t) {
        atomic_fetch_add_explicit(&redone, 1, memory_order_relaxed);
        if (late) atomic_fetch_add_explicit(&redone_late, 1, memory_order_relaxed);
    }
    /* committing: nobody else writes these rows this step */
    /* the item's typical time: down at once, up slowly (a preempted
       computation is no measure); not on a repack step (the first, cold) */
    long m = atomic_load_explicit(&c->item_ns[ph->base + i], memory_order_relaxed);
    if (!a->repack)
        atomic_store_explicit(&c->item_ns[ph->base + i], !m || took < m ? took : m + (took - m) / 8,
                              memory_order_relaxed);
    if (kind == 0) {
        const view sv = shared_view(c);
        const int R = r1 - r0, ldx = c->ldx;
        memcpy(sv.xin + (size_t)r0 * ldx, pv->xin + (size_t)r0 * ldx, (size_t)R * ldx * sizeof(float));
        memcpy(sv.lab + r0, pv->lab + r0, (size_t)R * sizeof *sv.lab);
        for (int k = 0; k < L; k++) {
            const size_t o = (size_t)r0 * c->ly[k].ld, n = (size_t)R * c->ly[k].ld * sizeof(float);
            memcpy(sv.y[k] + o, pv->y[k] + o, n);
            if (sv.z[k] != sv.y[k]) memcpy(sv.z[k] + o, pv->z[k] + o, n);
            if (k == L - 2 || (k == L - 1 && sv.dz[k] != sv.grad)) memcpy(sv.dz[k] + o, pv->dz[k] + o, n);
        }
        const size_t C = c->ly[L - 1].N;
        memcpy(sv.prob + r0 * C, pv->prob + r0 * C, R * C * sizeof(float));
        memcpy(sv.grad + r0 * C, pv->grad + r0 * C, R * C * sizeof(float));
        if (c->bf16) commit_bf16_rows(c, &sv, pv, r0, r1);
        c->part[i] = part;
    } else if (kind == 1) {
        dw_commit(c, l, q0, q1, a->update, a->user, t);
    } else {
        const int ld = c->ly[l - 1].ld;
        float *dst = c->ly[l - 1].dz;
        for (int r = 0; r < B; r++)
            memcpy(dst + (size_t)r * ld + k0, pv->dz[l - 1] + (size_t)r * ld + k0,
                   (size_t)(k1 - k0) * sizeof(float));
        if (c->bf16) commit_bf16_cols(c, l - 1, pv, k0, k1);
    }
    atomic_store_explicit(w, WORD(e, t, ST_DONE), memory_order_release);
    if (kind == 2) atomic_fetch_add_explicit(&c->done_dx[ph->phase], 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&c->done[ph->phase], 1, memory_order_acq_rel);
    wick_change_wake(&c->progress, &c->progress_sleepers);
    return 1;
}

/* What a thread waits for once it has claimed all it could of a phase
 * (redo_phase): the phase's items all done; only its dx items (the next
 * layer's phase reads their output, dz; its dW items read nothing the
 * later phases write and may still be under way); or every layer phase's
 * items (the step's end). */
enum { GATE_PHASE, GATE_DX, GATE_ALL };

static int gate_open(wick_chain *c, const phase_items *phs, int nph, int gate) {
    const phase_items *ph = &phs[nph - 1];
    if (gate == GATE_PHASE) return atomic_load_explicit(&c->done[ph->phase], memory_order_acquire) >= ph->n;
    if (gate == GATE_DX) return atomic_load_explicit(&c->done_dx[ph->phase], memory_order_acquire) >= ph->ndx;
    for (int k = 0; k < nph; k++)
        if (atomic_load_explicit(&c->done[phs[k].phase], memory_order_acquire) < phs[k].n) return 0;
    return 1;
}

/* Redoes one item of phases phs[0..nph) (the current one first) that
 * another thread claimed and is late with; returns 1 if it tried one. */
static int redo_late(wick_chain *c, const step_args *a, const phase_items *phs, int nph, int t,
                     const view *pv, unsigned long e, long fixed) {
    const long now = wick_now_ns();
    for (int p = nph - 1; p >= 0; p--) {
        const phase_items *ph = &phs[p];
        for (int i = 0; i < ph->n; i++) {
            const unsigned long long w = atomic_load_explicit(&c->state[ph->base + i], memory_order_acquire);
            if (WORD_ST(w) != ST_CLAIMED || WORD_E(w) != e || WORD_WHO(w) == t) continue;
            const long m = atomic_load_explicit(&c->item_ns[ph->base + i], memory_order_relaxed);
            const long typical = m ? 2 * m + REDO_SLACK_NS : REDO_FIRST_NS;
            const long bound = fixed >= 0 ? fixed : a->race ? 0 : typical;
            const long held = now - atomic_load_explicit(&c->since[ph->base + i], memory_order_relaxed);
            if (held < bound) continue;
            /* one redo at a time per item */
            unsigned long r = atomic_load(&c->redoing[ph->base + i]);
            if (r == e || !atomic_compare_exchange_strong(&c->redoing[ph->base + i], &r, e)) continue;
            redo_item(c, a, ph, i, t, pv, w, e, 0, held >= typical);
            return 1;
        }
    }
    return 0;
}

/* Thread t's part of phase phs[nph - 1] of step e: claims free items (with
 * `gate` GATE_DX, the dx items first: the next phase waits for them), then,
 * until the gate opens, redoes items of phs[0..nph) claimed by others that
 * are late.  Returns 0 when the step has moved on (this thread is late: it
 * leaves). */
static int redo_phase(wick_chain *c, const step_args *a, const phase_items *phs, int nph, int gate, int t,
                      const view *pv, unsigned long e, long *stall_us) {
    const phase_items *ph = &phs[nph - 1];
    const int first = gate == GATE_PHASE ? 0 : ph->n - ph->ndx;
    for (int k = 0; k < ph->n; k++) {
        const int i = (first + k) % ph->n;
        _Atomic unsigned long long *w = &c->state[ph->base + i];
        unsigned long long f = WORD(e, 0, ST_FREE);
        if (atomic_load_explicit(w, memory_order_relaxed) != f) continue;
        atomic_store_explicit(&c->since[ph->base + i], wick_now_ns(), memory_order_relaxed);
        if (ph->phase == ITEMS_REPACK) {
            /* repacking writes the packed copies in place: not redone, only
               waited for (it happens after outside writes to W) */
            if (!atomic_compare_exchange_strong(w, &f, WORD(e, t, ST_COMMITTING))) continue;
            repack_item(c, i);
            atomic_store_explicit(w, WORD(e, t, ST_DONE), memory_order_release);
            atomic_fetch_add_explicit(&c->done[ph->phase], 1, memory_order_acq_rel);
            wick_change_wake(&c->progress, &c->progress_sleepers);
        } else {
            if (!atomic_compare_exchange_strong(w, &f, WORD(e, t, ST_CLAIMED))) continue;
            redo_item(c, a, ph, i, t, pv, WORD(e, t, ST_CLAIMED), e, *stall_us, 0);
            *stall_us = 0;
        }
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != 2 * e) return 0;
    }
    const long fixed = redo_fixed_ns(), spin = wick_spin_ns();
    long idle_since = wick_now_ns();
    while (!gate_open(c, phs, nph, gate)) {
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != 2 * e) return 0;
        const unsigned seen = atomic_load(&c->progress);
        if (redo_late(c, a, phs, nph, t, pv, e, fixed)) {
            idle_since = wick_now_ns();
        } else if (wick_now_ns() - idle_since < spin) {
            cpu_pause();
        } else {
            wick_wait_change(&c->progress, seen, &c->progress_sleepers, 100000);
        }
    }
    return 1;
}

/* A thread's part of a redo step: whichever step is current when it starts.
 * Returns 0 when that step ended under it (it was late), 1 when it saw the
 * step through. */
static int redo_one(wick_chain *c, int t) {
    /* the step's arguments: read between two equal even numbers */
    step_args a;
    unsigned long s0;
    for (;;) {
        s0 = atomic_load_explicit(&c->seq, memory_order_acquire);
        if (s0 & 1) { cpu_pause(); continue; }
        memcpy(&a, c->args, sizeof a);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&c->seq, memory_order_relaxed) == s0) break;
    }
    const unsigned long e = s0 / 2;
    const int B = c->g->batch, L = c->L;
    view pv;
    priv_view(c, c->priv + (size_t)t * c->priv_stride, &pv);
    long stall_us = t ? a.stall_us : 0;
    stall_first(&a, t);
    /* state words: the forward's items, each layer's, then the repack's (an
       item keeps its word, and its measured time, from step to step) */
    int base = a.nf;
    for (int l = L - 1; l >= 0; l--)
        base += chunks(c, c->ly[l].N) + (l && l < L - 1 ? (c->ly[l - 1].N + DXCOLS - 1) / DXCOLS : 0);
    phase_items ph;
    if (a.repack) {
        ph = (phase_items){ITEMS_REPACK, base, repack_items(c), 0};
        if (!redo_phase(c, &a, &ph, 1, GATE_PHASE, t, &pv, e, &stall_us)) return 0;
    }
    base = 0;
    ph = (phase_items){ITEMS_FORWARD, base, a.nf, 0};
    base += ph.n;
    if (!redo_phase(c, &a, &ph, 1, GATE_PHASE, t, &pv, e, &stall_us)) return 0;
    double s = 0;
    for (int k = 0; k < a.nf; k++) s += c->part[k];
    s /= B;
    const int go = isfinite(s) && s <= a.max_loss;
    if (t == 0) c->args->total = s, c->args->went = go;
    /* layer phases: with a.overlap, a thread goes on to layer l-1 once
       layer l's dx items are done, its dW items possibly still under way,
       and waits for all of them only at the end */
    phase_items phs[WICK_CHAIN_MAX];
    for (int l = L - 1, k = 0; l >= 0 && go; l--, k++) {
        const int ndx = l && l < L - 1 ? (c->ly[l - 1].N + DXCOLS - 1) / DXCOLS : 0;
        phs[k] = (phase_items){ITEMS_LAYER + l, base, chunks(c, c->ly[l].N) + ndx, ndx};
        base += phs[k].n;
        const int gate = !a.overlap ? GATE_PHASE : l ? GATE_DX : GATE_ALL;
        if (!redo_phase(c, &a, phs, k + 1, gate, t, &pv, e, &stall_us)) return 0;
    }
    return 1;
}

/* Steps a late worker joined after its own had ended, in this process. */
static _Atomic long rejoined;
long wick_chain_rejoined(void) { return atomic_load(&rejoined); }

/* WICK_REDO_REJOIN=0: a late worker leaves (for A/B runs). */
static int rejoin_on(void) {
    const char *e = getenv("WICK_REDO_REJOIN");
    return !(e && *e == '0');
}

static void step_redo(void *arg, int t, int nt) {
    (void)nt;
    wick_chain *c = arg;
    const unsigned fp = wick_fp_enter();
    /* A worker that finds, when the OS gives it a core again, that its step
     * has ended joins the step under way instead of leaving: the pool left
     * it out of that step (it was still busy), and it would otherwise sit
     * idle through the rest of it, which beside a neighbour that takes its
     * core in time slices about as long as a step is most of the time it
     * has the core.  Its private buffers and scratch are its own (t is its
     * worker's number, which no other thread of the pool has). */
    while (!redo_one(c, t) && t && rejoin_on()) atomic_fetch_add_explicit(&rejoined, 1, memory_order_relaxed);
    wick_fp_leave(fp);
}

/* WICK_REDO=0: never, 1: always; unset: on demand.  A redo step's items
 * copy their rows out of private buffers (the forward's and dx items': 1.5
 * MB a step for the headline), which a quiet machine need not pay.  So the
 * step runs without redo until two steps within REDO_NEAR take REDO_SLOW
 * times the typical step (a thread was descheduled and the others waited;
 * one such step may be a hiccup), then with redo for REDO_KEEP steps,
 * renewed whenever an item is redone whose owner was late by the bound
 * (redo_late: a race won by an idle thread is no sign of a neighbour). */
#define REDO_SLOW 3.0
#define REDO_KEEP 1000
#define REDO_NEAR 64
static int redo_env(void) {
    const char *e = getenv("WICK_REDO");
    return e && *e ? (*e == '0' ? 0 : 1) : -1;
}

static long stall_on(const wick_chain *c) {
    const char *e = getenv("WICK_TEST_STALL_US");
    long us = e && *e ? strtol(e, NULL, 10) : 0;
    return us > 0 && c->steps % 4 == 1 ? us : 0;
}

double wick_chain_step(wick_chain *c, const float *X, const int32_t *Y, const uint32_t *idx,
                       size_t first, double max_loss, wick_chain_update_fn update, void *user) {
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L;
    int T = omp_get_max_threads();
    if (T > c->max_threads) T = c->max_threads;
    if (T > B) T = B;
    if (T < 1) T = 1;
    step_args a = {c, X, Y, idx, first, max_loss, update, user, T, forward_items(B, T),
                   !c->fresh || c->gen != g->param_writes, stall_on(c), atomic_load(&stalls), 0, 0, 0, 0, 0, 0};
    c->steps++;
    if (c->team.max != T) memset(&c->team, 0, sizeof c->team), c->team.max = T;
    const int team = wick_team_size(&c->team);
    const int want = redo_env();
    int redo = team > 1 && (want == 1 || (want < 0 && c->redo_left > 0));
    if (redo && !c->priv) {
        view v;
        c->priv_stride = priv_view(c, NULL, &v);
        c->priv = wick_aligned_alloc(c->priv_stride * (size_t)c->max_threads * sizeof(float));
        if (!c->priv) redo = 0;   /* then the step without redo */
    }
    const long redone_before = atomic_load(&redone_late);
    const double t0 = omp_get_wtime();
    int nt;
    if (redo) {
        /* the new step's number, its arguments, fresh state words */
        const unsigned long e = atomic_load(&c->seq) / 2 + 1;
        atomic_store(&c->seq, 2 * e - 1);
        const char *ab = getenv("WICK_REDO_ABANDON"), *pr = getenv("WICK_REDO_PROF"),
                   *ov = getenv("WICK_REDO_OVERLAP"), *ra = getenv("WICK_REDO_RACE");
        a.abandon = !(ab && *ab == '0');
        a.prof = pr && *pr == '1';
        a.overlap = !(ov && *ov == '0');
        a.race = ra && *ra == '1';
        *c->args = a;
        for (int k = 0; k < c->nitems; k++) {
            atomic_store_explicit(&c->state[k], WORD(e, 0, ST_FREE), memory_order_relaxed);
            atomic_store_explicit(&c->redoing[k], 0, memory_order_relaxed);
        }
        for (int k = 0; k < 2 + L; k++) {
            atomic_store_explicit(&c->done[k], 0, memory_order_relaxed);
            atomic_store_explicit(&c->done_dx[k], 0, memory_order_relaxed);
        }
        atomic_store(&c->seq, 2 * e);
        nt = wick_pool_run_detached(team, step_redo, c);
        a.total = c->args->total, a.went = c->args->went;
    } else {
        /* a late worker of a redo step still uses its scratch, which a joined
           run's numbering could give another worker (rare: redo ends after
           REDO_KEEP steps without a redone item) */
        if (c->last_redo) wick_pool_drain();
        for (int k = 0; k < 2 + L; k++) atomic_store_explicit(&c->next[k], 0, memory_order_relaxed);
        nt = wick_pool_run(team, step_thread, &a);
    }
    c->last_redo = redo;
    const double took = omp_get_wtime() - t0;
    wick_team_record(&c->team, nt, took / B);
    last_step = (wick_chain_last){nt, redo, a.repack, took};
    if (redo) {
        if (c->redo_left > 0) c->redo_left--;
        if (atomic_load(&redone_late) != redone_before) c->redo_left = REDO_KEEP;
    } else if (team > 1 && !a.repack) {
        if (c->step_s > 0 && took > REDO_SLOW * c->step_s) {
            if (c->slow_at && c->steps - c->slow_at <= REDO_NEAR) c->redo_left = REDO_KEEP;
            c->slow_at = c->steps;
        }
        c->step_s = !(c->step_s > 0) || took < c->step_s ? took : c->step_s + (took - c->step_s) / 16;
    }
    const double total = a.total;
    const int went = a.went;
#ifdef WICK_CHAIN_PROFILE
    profile.steps++;
#endif
    /* the packed copies match W again (every row was repacked after its update) */
    if (went)
        for (int l = 1; l < L; l++) {
            float *p = c->ly[l].pb;
            c->ly[l].pb = c->ly[l].pb_next;
            c->ly[l].pb_next = p;
            uint32_t *p16 = c->ly[l].pb16;
            c->ly[l].pb16 = c->ly[l].pb16_next;
            c->ly[l].pb16_next = p16;
        }
    c->fresh = 1;
    c->gen = g->param_writes;
    return total;
}
