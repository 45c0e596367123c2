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
#include <string.h>
#include <unistd.h>

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
} layer;

struct wick_chain {
    wick_graph *g;
    int L;
    node *dense[WICK_CHAIN_MAX];
    wick_node W[WICK_CHAIN_MAX], b[WICK_CHAIN_MAX];
    layer ly[WICK_CHAIN_MAX];
    node *input, *labels, *loss;
    float *xin;                /* the gathered batch, [batch, ldx] */
    int ldx;
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
};

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

wick_status wick_chain_new(wick_chain **out, wick_graph *g, wick_node loss) {
    *out = NULL;
    if (g->dt != WICK_DT_F32 || !g->compiled || loss < 0 || loss >= g->n || g->nodes[loss].op != OP_XENT)
        return wick_fail(WICK_EUNSUPPORTED, "chain: not a float32 graph ending in cross-entropy");
    if (!wick_kern_ok()) return wick_fail(WICK_EUNSUPPORTED, "chain: this CPU has no AVX2/FMA");
    wick_chain *c = wick_calloc(1, sizeof *c);
    if (!c) return wick_fail(WICK_ENOMEM, "chain: out of memory");
    c->g = g;
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
    if (!c->part || !c->mem || !c->scratch) {
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
    *out = c;
    return WICK_OK;
}

void wick_chain_free(wick_chain *c) {
    if (!c) return;
    wick_free(c->part);
    wick_free(c->mem);
    wick_free(c->scratch);
    wick_free(c);
}


/* Forward items for T threads: T large ones (3/4 of the batch) taken first,
 * then T small ones, which the threads take as they come free, so that a
 * thread slowed by a neighbour does less (in a quiet window it is level with
 * one item a thread).  Each item streams all of the packed W, so items are
 * few, and below 48 rows a thread each takes one (bench/README.md, "The
 * forward's items").  Start of item i, at a multiple of the kernel's 6-row
 * tile where possible. */
static int row_cut(int B, int T, int i) {
    if (i >= forward_items(B, T)) return B;
    /* T equal items after `start` rows, or all of them when there are only T */
    const int big = forward_items(B, T) > T ? 3 * B / (4 * T) / 6 * 6 : 0;
    if (i <= T && big) return i * big;
    const int start = T * big, j = big ? i - T : i;
    int c = start + (int)(((long)(B - start) * j / T + 3) / 6 * 6);
    return c < B ? c : B;
}

/* Rows [r0, r1) and columns [k0, k1) (k0 a multiple of 16) of layer l's
 * input gradient, then layer l-1's activation derivative on them: a dx item
 * is all rows and some columns, the top layer's all columns of a forward
 * item's rows. */
static void dx_rows(wick_chain *c, int l, int r0, int r1, int k0, int k1) {
    layer *y = &c->ly[l], *p = &c->ly[l - 1];
    wick_kern_gemm(r1 - r0, k1 - k0, y->N, y->dz + (size_t)r0 * y->ld, y->ld, 1,
                   y->pb + (size_t)k0 * y->N, 16, 16L * y->N, p->dz + (size_t)r0 * p->ld + k0,
                   p->ld, NULL, 0);
    wick_act a = c->dense[l - 1]->act;
    if (a.kind != WICK_ACT_LINEAR)
        for (int r = r0; r < r1; r++) {
            size_t o = (size_t)r * p->ld + k0;
            op_act_bwd_f32(a, p->z + o, p->y + o, p->dz + o, p->dz + o, k1 - k0);
        }
}

/* Forward item: rows [r0, r1) gathered, through every layer, their loss
 * (returned, summed) and the gradient of the logits. */
#define GATHER_AHEAD 4
static double forward_rows(wick_chain *c, const float *X, const int32_t *Y, const uint32_t *idx,
                           size_t first, int r0, int r1) {
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L, D = c->input->cols, ldx = c->ldx, R = r1 - r0;
    int32_t *lab = c->labels->val;
    for (int r = r0; r < r1; r++) {
        size_t i = idx ? idx[r] : first + r;
        /* the rows are scattered over the data set, each read from memory:
           ask for the one GATHER_AHEAD rows on while this one is copied
           (bench/README.md, "6 December: a Xeon with AVX-512") */
        if (idx && r + GATHER_AHEAD < r1) {
            const char *ahead = (const char *)(X + (size_t)idx[r + GATHER_AHEAD] * D);
            for (size_t o = 0; o < D * sizeof *X; o += 64) __builtin_prefetch(ahead + o, 0, 3);
        }
        memcpy(c->xin + (size_t)r * ldx, X + i * D, D * sizeof *c->xin);
        lab[r] = Y[i];
    }
    for (int l = 0; l < L; l++) {
        layer *y = &c->ly[l];
        node *d = c->dense[l];
        const float *x = l ? c->ly[l - 1].y : c->xin;
        const int lda = l ? c->ly[l - 1].ld : ldx;
        const int relu = d->act.kind == WICK_ACT_RELU;
        wick_kern_gemm(R, y->N, y->K, x + (size_t)r0 * lda, lda, 1, y->pf, 16, 16L * y->K,
                       y->z + (size_t)r0 * y->ld, y->ld, g->nodes[c->b[l]].val,
                       WICK_KERN_BIAS | (relu ? WICK_KERN_RELU : 0));
        if (!y->direct)
            for (int r = r0; r < r1; r++)
                op_act_fwd_f32(d->act, y->z + (size_t)r * y->ld, y->y + (size_t)r * y->ld, y->N);
    }
    layer *top = &c->ly[L - 1];
    node *dt = c->dense[L - 1];
    const int C = top->N;
    double loss = op_xent_rows_f32(top->y, lab, c->loss->aux, r0, r1, C, c->loss->scalar);
    op_xent_grad_rows_f32(c->loss->aux, lab, 1.0f / B, dt->grad, r0, r1, C, c->loss->scalar);
    if (dt->act.kind != WICK_ACT_LINEAR) {
        size_t o = (size_t)r0 * C;
        op_act_bwd_f32(dt->act, top->z + o, top->y + o, (const float *)dt->grad + o, top->dz + o,
                       (size_t)R * C);
    }
    /* the top layer's input gradient for these rows, here rather than in a
       phase of its own: that phase was a barrier for a product of k = 10
       (W_L-1 is read before its update, from the data-gradient copy) */
    if (L > 1) dx_rows(c, L - 1, r0, r1, 0, c->ly[L - 2].N);
    return loss;
}

/* Rows [q0, q1) of layer l's W into its forward copy and, but for the first
 * layer (no data gradient), into the data-gradient copy pb. */
static void pack_rows(wick_chain *c, int l, const float *W, int q0, int q1, float *pb) {
    layer *y = &c->ly[l];
    wick_kern_pack_fwd(W, y->N, y->K, q0, q1, y->pf);
    if (l) wick_kern_pack_bwd(W, y->N, y->K, q0, q1, pb);
}

/* dW item: rows [q0, q1) of layer l's weight and bias gradients, the
 * optimiser on them, and both packed copies of those rows of W (the data
 * gradient's into the buffer of the next step). */
static void dw_rows(wick_chain *c, int l, int q0, int q1, wick_chain_update_fn update, void *user,
                    int t) {
    wick_graph *g = c->g;
    const int B = g->batch;
    layer *y = &c->ly[l];
    const float *x = l ? c->ly[l - 1].y : c->xin;
    const int lda = l ? c->ly[l - 1].ld : c->ldx;
    node *wn = &g->nodes[c->W[l]], *bn = &g->nodes[c->b[l]];
    float *W = wn->val, *b = bn->val, *gb = bn->grad;
    /* the rows' gradient in this thread's scratch, which stays in L2: the
       whole dW would cost a write-back to L3 of every line each step */
    float *gW = c->scratch + (size_t)t * c->scratch_stride;
    PROF_START(t0);
    wick_kern_gemm(q1 - q0, y->K, B, y->dz + q0, 1, y->ld, x, lda, 16, gW, y->K, NULL, 0);
    for (int j = q0; j < q1; j++) gb[j] = 0;
    for (int r = 0; r < B; r++) {
        const float *row = y->dz + (size_t)r * y->ld;
        for (int j = q0; j < q1; j++) gb[j] += row[j];
    }
    PROF_ADD(t, WICK_CHAIN_PH_DW, l, t0);
    PROF_START(t1);
    update(user, c->W[l], W, gW, (size_t)q0 * y->K, (size_t)q1 * y->K);
    update(user, c->b[l], b, gb + q0, (size_t)q0, (size_t)q1);
    PROF_ADD(t, WICK_CHAIN_PH_OPT, l, t1);
    PROF_START(t2);
    pack_rows(c, l, W, q0, q1, y->pb_next);
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

/* One step's arguments and results, shared by its threads. */
typedef struct {
    wick_chain *c;
    const float *X;
    const int32_t *Y;
    const uint32_t *idx;
    size_t first;
    double max_loss;
    wick_chain_update_fn update;
    void *user;
    int T, nf, repack;
    double total;   /* written by thread 0 */
    int went;
} step_args;

/* Thread t of nt's part of a step.  nt may be smaller than the T the forward
 * items were cut for (the pool was busy): items are taken as threads come
 * free, so only the barrier needs nt. */
static void step_thread(void *arg, int t, int nt) {
    step_args *a = arg;
    wick_chain *c = a->c;
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L, T = a->T, nf = a->nf;
    const unsigned fp = wick_fp_enter();   /* wick.h's mode; the thread's own back at the end */
    if (a->repack) {   /* every W in both layouts, a dW item's rows an item */
        int items = 0;
        for (int l = 0; l < L; l++) items += chunks(c, c->ly[l].N);
        for (int i; (i = take(c, ITEMS_REPACK, items)) < items;) {
            int l = 0, k = i;   /* item i is chunk k of layer l */
            while (k >= chunks(c, c->ly[l].N)) k -= chunks(c, c->ly[l].N), l++;
            const int rows = chunk_rows(c, c->ly[l].N), q = k * rows;
            pack_rows(c, l, g->nodes[c->W[l]].val, q, min_int(q + rows, c->ly[l].N), c->ly[l].pb);
        }
        wick_barrier_wait(&c->bar, nt);
    }
    PROF_START(t0);
    for (int i; (i = take(c, ITEMS_FORWARD, nf)) < nf;) {
        int r0 = row_cut(B, T, i), r1 = row_cut(B, T, i + 1);
        c->part[i] = r1 > r0 ? forward_rows(c, a->X, a->Y, a->idx, a->first, r0, r1) : 0.0;
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
            if (i < ndw) {   /* timed inside, part by part */
                int q = i * rows;
                dw_rows(c, l, q, min_int(q + rows, N), a->update, a->user, t);
            } else {
                PROF_START(t2);
                int k = (i - ndw) * DXCOLS;
                dx_rows(c, l, 0, B, k, min_int(k + DXCOLS, c->ly[l - 1].N));
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

double wick_chain_step(wick_chain *c, const float *X, const int32_t *Y, const uint32_t *idx,
                       size_t first, double max_loss, wick_chain_update_fn update, void *user) {
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L;
    int T = omp_get_max_threads();
    if (T > c->max_threads) T = c->max_threads;
    if (T > B) T = B;
    if (T < 1) T = 1;
    step_args a = {c, X, Y, idx, first, max_loss, update, user, T, forward_items(B, T),
                   !c->fresh || c->gen != g->param_writes, 0, 0};
    for (int k = 0; k < 2 + L; k++) atomic_store_explicit(&c->next[k], 0, memory_order_relaxed);
    if (c->team.max != T) memset(&c->team, 0, sizeof c->team), c->team.max = T;
    const double t0 = omp_get_wtime();
    const int nt = wick_pool_run(wick_team_size(&c->team), step_thread, &a);
    wick_team_record(&c->team, nt, (omp_get_wtime() - t0) / B);
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
        }
    c->fresh = 1;
    c->gen = g->param_writes;
    return total;
}
