/* chain.c — a fast path inside the executor for the commonest graph: a chain
 * of dense ops ending in cross-entropy (an MLP classifier), float32.
 *
 * The general executor runs op after op, each product split across the cores
 * by the library that computes it; on two cores a 128 x 512 x 512 product
 * splits poorly and the threads spend a fifth of the step waiting at the
 * libraries' barriers.  Here one parallel region runs the whole step and each
 * thread owns a share of the work, every product single-threaded:
 *
 *   forward        rows of the batch       (no barrier between layers)
 *   loss, dlogits  rows of the batch
 *   weight grad    output neurons          (rows of W: no reduction)
 *   input grad     rows of the batch
 *   update         output neurons          (the optimiser, on the rows of W
 *                                           whose gradient the thread made)
 *
 * One barrier per layer in backward: dz must be complete before any dW, and
 * every dx (which reads W) must be done before W's rows are updated; the
 * update of layer l is deferred to just after the next layer's barrier.
 * It computes what wick_graph_forward + wick_graph_backward + the updates
 * compute (tests/test_train.c holds the two paths to each other). */
#include "graph/chain.h"
#include "graph/graph_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

struct wick_chain {
    wick_graph *g;
    int L;
    node *dense[WICK_CHAIN_MAX];
    wick_node W[WICK_CHAIN_MAX], b[WICK_CHAIN_MAX];
    node *input, *labels, *loss;
    double *part;              /* per-thread partial losses */
    int max_threads;
};

wick_status wick_chain_new(wick_chain **out, wick_graph *g, wick_node loss) {
    *out = NULL;
    if (g->dt != WICK_DT_F32 || !g->compiled || loss < 0 || loss >= g->n || g->nodes[loss].op != OP_XENT)
        return wick_fail(WICK_EUNSUPPORTED, "chain: not a float32 graph ending in cross-entropy");
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
    c->max_threads = omp_get_max_threads();
    c->part = wick_calloc(c->max_threads > 0 ? c->max_threads : 1, sizeof *c->part);
    if (!c->part) {
        wick_free(c);
        return wick_fail(WICK_ENOMEM, "chain: out of memory");
    }
    *out = c;
    return WICK_OK;
}

void wick_chain_free(wick_chain *c) {
    if (!c) return;
    wick_free(c->part);
    wick_free(c);
}


/* [lo, hi) of n split in T parts, part t; neuron splits fall on multiples of 8
 * so each thread's rows of W start on a SIMD boundary. */
static void share(int n, int T, int t, int align, int *lo, int *hi) {
    long a = (long)n * t / T, b = (long)n * (t + 1) / T;
    if (align > 1) {
        a = t == 0 ? 0 : (a + align / 2) / align * align;
        b = t == T - 1 ? n : (b + align / 2) / align * align;
        if (a > n) a = n;
        if (b > n) b = n;
    }
    *lo = (int)a;
    *hi = (int)(b < a ? a : b);
}

double wick_chain_step(wick_chain *c, const float *X, const int32_t *Y, const uint32_t *idx,
                       size_t first, double max_loss, wick_chain_update_fn update, void *user) {
    wick_graph *g = c->g;
    const int B = g->batch, L = c->L, D = c->input->cols;
    const int C = c->loss->n_in ? g->nodes[c->loss->in[0]].cols : 0;
    float *xin = c->input->val;
    int32_t *lab = c->labels->val;
    double total = 0;
    int T = omp_get_max_threads();
    if (T > c->max_threads) T = c->max_threads;
    if (T > B) T = B;
    if (T < 1) T = 1;

    #pragma omp parallel num_threads(T)
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int r0, r1;
        share(B, nt, t, 1, &r0, &r1);
        const int R = r1 - r0;
        /* gather this thread's rows of the batch */
        for (int r = r0; r < r1; r++) {
            size_t i = idx ? idx[r] : first + r;
            memcpy(xin + (size_t)r * D, X + i * D, D * sizeof *xin);
            lab[r] = Y[i];
        }
        /* forward over own rows: no other thread's rows are needed */
        for (int l = 0; l < L && R > 0; l++) {
            node *d = c->dense[l];
            const node *xn = l ? c->dense[l - 1] : c->input;
            const int K = xn->cols, N = d->cols;
            const float *x = xn->val, *W = g->nodes[c->W[l]].val, *b = g->nodes[c->b[l]].val;
            const int direct = d->act.kind == WICK_ACT_RELU || d->act.kind == WICK_ACT_LINEAR;
            float *y = d->val, *z = direct ? y : (float *)d->aux;
            for (int r = r0; r < r1; r++) memcpy(z + (size_t)r * N, b, N * sizeof *z);
            wick_gemm_f32(0, 1, R, N, K, 1.0f, x + (size_t)r0 * K, K, W, K, 1.0f, z + (size_t)r0 * N, N);
            if (d->act.kind != WICK_ACT_LINEAR)
                op_act_fwd_f32(d->act, z + (size_t)r0 * N, y + (size_t)r0 * N, (size_t)R * N);
        }
        node *top = c->dense[L - 1];
        c->part[t] = op_xent_rows_f32(top->val, lab, c->loss->aux, r0, r1, C, c->loss->scalar);
        op_xent_grad_rows_f32(c->loss->aux, lab, 1.0f / B, top->grad, r0, r1, C, c->loss->scalar);
        #pragma omp barrier
        /* every thread sums the parts in the same order: one decision */
        double s = 0;
        for (int k = 0; k < nt; k++) s += c->part[k];
        s /= B;
        int ok = isfinite(s) && s <= max_loss;
        if (t == 0) total = s;
        if (ok) {
            for (int l = L - 1; l >= 0; l--) {
                node *d = c->dense[l];
                const node *xn = l ? c->dense[l - 1] : c->input;
                const int K = xn->cols, N = d->cols;
                node *wn = &g->nodes[c->W[l]], *bn = &g->nodes[c->b[l]];
                const float *dz = d->grad;
                if (d->act.kind != WICK_ACT_LINEAR && R > 0) {
                    const int direct = d->act.kind == WICK_ACT_RELU;
                    size_t o = (size_t)r0 * N;
                    op_act_bwd_f32(d->act, direct ? NULL : (const float *)d->aux + o, (const float *)d->val + o,
                                   (const float *)d->grad + o, (float *)d->aux2 + o, (size_t)R * N);
                    dz = d->aux2;
                } else if (d->act.kind != WICK_ACT_LINEAR) {
                    dz = d->aux2;
                }
                #pragma omp barrier
                /* every dx of layer l+1 is done: its weights may change now */
                if (l + 1 < L) {
                    int n0, n1, Kp = d->cols;
                    share(c->dense[l + 1]->cols, nt, t, 8, &n0, &n1);
                    if (n1 > n0) {
                        update(user, c->W[l + 1], (size_t)n0 * Kp, (size_t)n1 * Kp);
                        update(user, c->b[l + 1], (size_t)n0, (size_t)n1);
                    }
                }
                int n0, n1;
                share(N, nt, t, 8, &n0, &n1);
                if (n1 > n0) {
                    /* dW[n0:n1, :] = dz[:, n0:n1]^T x; db[n0:n1] = column sums */
                    wick_gemm_f32(1, 0, n1 - n0, K, B, 1.0f, dz + n0, N, xn->val, K, 0.0f,
                                  (float *)wn->grad + (size_t)n0 * K, K);
                    float *db = bn->grad;
                    for (int j = n0; j < n1; j++) db[j] = 0;
                    for (int r = 0; r < B; r++) {
                        const float *row = dz + (size_t)r * N;
                        for (int j = n0; j < n1; j++) db[j] += row[j];
                    }
                }
                if (l > 0 && R > 0)   /* dx = dz W over own rows */
                    wick_gemm_f32(0, 0, R, K, N, 1.0f, dz + (size_t)r0 * N, N, wn->val, K, 0.0f,
                                  (float *)c->dense[l - 1]->grad + (size_t)r0 * K, K);
            }
            /* the first layer: nobody reads W[0] after its own gradient */
            int n0, n1, K0 = c->input->cols;
            share(c->dense[0]->cols, nt, t, 8, &n0, &n1);
            if (n1 > n0) {
                update(user, c->W[0], (size_t)n0 * K0, (size_t)n1 * K0);
                update(user, c->b[0], (size_t)n0, (size_t)n1);
            }
        }
    }
    return total;
}
