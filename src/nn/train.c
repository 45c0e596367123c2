/* train.c — the training loop: shuffled minibatches gathered straight into
 * the graph's input, forward, backward with each weight updated by the
 * optimiser as soon as its gradient is complete, per-epoch validation, early
 * stopping that restores the best weights, divergence detection, and
 * checkpoints that resume bit-identically.
 *
 * Randomness: epoch e's order is wick_permutation(seed, STREAM_SHUFFLE + e),
 * so a resumed run recomputes it from the epoch number alone. */
#include "core/core.h"
#include "core/cnum.h"
#include "graph/chain.h"
#include "graph/graph_internal.h"
#include "nn/model_io.h"
#include "nn/nn_internal.h"
#include "nn/regular.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_SHUFFLE 1000000u
#define STREAM_AUGMENT 2000000u          /* + epoch: a sample's augmentation draws */

struct wick_trainer {
    wick_mlp *m;
    const wick_dataset *train, *val;
    wick_train_config c;
    wick_opt *opt;
    wick_chain *chain;                   /* the executor's fast path, or NULL */
    wick_sched sched;
    int np;                              /* parameter tensors: W0, b0, W1, ... */
    wick_node param[NN_MAX_TENSORS];
    int rows_maxnorm[NN_MAX_TENSORS];    /* max-norm: rows of a weight (its units), else 0 */
    int *slot;                           /* graph node -> parameter index, or -1 */
    uint32_t *perm;                      /* this epoch's order */
    int perm_epoch;                      /* which epoch perm holds (-1: none) */
    double lr;                           /* this epoch's learning rate */
    /* position and running totals: everything a checkpoint must restore */
    long step;                           /* steps done */
    int epoch;                           /* current epoch, 0-based */
    long batch_pos;                      /* next batch within the epoch */
    double epoch_loss_sum;
    long epoch_steps;
    double first_loss;                   /* NAN until the first step */
    double best_val;
    int best_epoch, bad_epochs;
    /* What a snapshot holds: the parameters, then the float state (batch
       norm's running statistics), so that the best and the last good
       weights come back with the statistics they were evaluated with. */
    wick_node snap[NN_MAX_TENSORS];
    int nsnap;
    float *best;                         /* best snapshot so far (early stopping), or NULL */
    float *good;                         /* the snapshot at the last finiteness check */
    long good_step;                      /* ... and its step */
    double seconds, samples;
    int early_stopped;
    /* data parallel (c.coll): this rank's share of the step's rows, and
       whether any rank was asked to stop (from the last step's sum) */
    double share;
    int stop_all;
    int bn_sync;                         /* batch norms synchronised over the ranks (graph_set_bn_sum) */
    /* data parallel in c.coll->shards micro-shards (dist_step_sharded): each
       shard's gradients (then its loss) at sbuf + shard * stride + soff[i] */
    double *sbuf;
    size_t stride, soff[NN_MAX_TENSORS];
    int cur_shard;
    wick_status bn_status;               /* the first failure of their sums this step */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

wick_train_config wick_train_defaults(void) {
    wick_train_config c;
    memset(&c, 0, sizeof c);
    c.epochs = 10;
    c.batch = 128;
    c.shuffle = 1;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.sched = wick_sched_defaults(WICK_SCHED_CONSTANT);
    c.sched.lr0 = 0.05;
    c.diverge_factor = 1e4;
    return c;
}

static size_t snap_total(const wick_trainer *t) {
    size_t n = 0;
    for (int i = 0; i < t->nsnap; i++) n += nn_param_size(t->m, t->snap[i]);
    return n;
}

/* Names as wick_opt_parse and wick_sched_parse take them, by kind. */
static const char *const opt_kind_names[] = {"sgd", "adam", "adamw"};
static const char *const sched_kind_names[] = {"constant", "step", "exp", "linear", "plateau"};

/* A data set's features must be finite (a NaN feature becomes 0 behind a
 * ReLU, where no loss check sees it, while it poisons the first layer's
 * weights) and its labels in [0, outputs). */
static wick_status check_data(const wick_dataset *d, int outputs, const char *what) {
    size_t total = d->n * d->dim, i = nn_first_nonfinite(d->x, total);
    if (i < total)
        return wick_fail(WICK_EINVAL, "%s data: sample %zu, feature %zu is not finite (%g)", what, i / d->dim,
                         i % d->dim, d->x[i]);
    for (size_t j = 0; j < d->n; j++)
        if (d->y[j] < 0 || d->y[j] >= outputs)
            return wick_fail(WICK_EINVAL, "%s data: sample %zu has label %d, outside [0, %d)", what, j,
                             (int)d->y[j], outputs);
    return WICK_OK;
}

static void dist_bn_sum(void *user, double *x, int n);

wick_status wick_trainer_new(wick_trainer **out, wick_mlp *m, const wick_dataset *train,
                             const wick_dataset *val, const wick_train_config *c) {
    if (m->dt != WICK_DT_F32) return wick_fail(WICK_EDTYPE, "train: the model must be float32");
    wick_status ps = wick_precision_supported(c->precision);
    if (ps != WICK_OK) return ps;
    if (c->batch < 1 || c->batch > m->max_batch)
        return wick_fail(WICK_EINVAL, "train: batch %d outside [1, %d]", c->batch, m->max_batch);
    if (c->epochs < 1) return wick_fail(WICK_EINVAL, "train: epochs %d < 1", c->epochs);
    if (!train || train->n == 0) return wick_fail(WICK_EINVAL, "train: no training data");
    const wick_dataset *sets[2] = {train, val};
    for (int k = 0; k < 2; k++) {
        const wick_dataset *d = sets[k];
        if (!d) continue;
        if (d->dim != (size_t)m->nin)
            return wick_fail(WICK_ESHAPE, "train: %s data have %zu features, the model takes %d",
                             k ? "validation" : "training", d->dim, m->nin);
        if (d->classes > m->nout)
            return wick_fail(WICK_ESHAPE, "train: %d classes but the model has %d outputs", d->classes, m->nout);
        wick_status s = check_data(d, m->nout, k ? "train: validation" : "train: training");
        if (s != WICK_OK) return s;
    }
    if (train->n > UINT32_MAX) return wick_fail(WICK_EINVAL, "train: more than 2^32 samples");
    if (wick_augment_active(&c->augment)) {
        const int *in = m->spec->input;
        wick_status s = wick_augment_check(&c->augment, in[0], in[1], in[2]);
        if (s != WICK_OK) return wick_fail(s, "train: %s", wick_last_error());
    }
    if (!(c->clip_value >= 0) || !(c->clip_norm >= 0) || !(c->max_norm >= 0))
        return wick_fail(WICK_EINVAL, "train: clip_value %g, clip_norm %g, max_norm %g: each >= 0 (0: off)",
                         c->clip_value, c->clip_norm, c->max_norm);
    wick_trainer *t = wick_calloc(1, sizeof *t);
    if (!t) return wick_fail(WICK_ENOMEM, "train: out of memory");
    t->m = m;
    t->train = train;
    t->val = val;
    t->c = *c;
    t->perm_epoch = -1;
    t->first_loss = NAN;
    t->best_val = INFINITY;
    t->np = wick_graph_params(m->g, t->param, NN_MAX_TENSORS);
    size_t sizes[NN_MAX_TENSORS];
    for (int i = 0; i < t->np; i++) {
        int k = nn_tensor_index(m, t->param[i]);
        const nn_spec_tensor *ft = k >= 0 ? &m->ft[k] : NULL;
        int weight = ft && ft->ndim >= 2 && strstr(ft->name, ".weight");
        t->rows_maxnorm[i] = weight ? wick_graph_rows(m->g, t->param[i]) : 0;
    }
    if (c->coll && !(c->coll->ranks >= 1 && c->coll->rank >= 0 && c->coll->rank < c->coll->ranks &&
                     c->coll->sum && c->coll->grad_start && c->coll->grad_finish))
        return wick_fail(WICK_EINVAL, "train: rank %d of %d or its callbacks are not valid", c->coll->rank,
                         c->coll->ranks);
    /* dropout's masks: the run's seed (with a rank > 0 of a data-parallel
       run, a key of its own: masks are drawn per row of a rank's slice);
       eval switches the mode off and back */
    wick_graph_set_seed(m->g, c->coll && c->coll->rank ? c->seed ^ (uint64_t)c->coll->rank << 48 : c->seed);
    wick_graph_set_training(m->g, 1);
    /* data parallel: batch norm's statistics over the global batch, so K
       ranks compute one process's step (and hold its running statistics);
       every rank must then have rows in every step to make the same calls */
    if (c->coll && c->coll->shards > 0) {
        int nbn = 0;
        graph_set_bn_sum(m->g, NULL, NULL, &nbn);
        wick_status bs = WICK_OK;
        if (nbn > 0)
            bs = wick_fail(WICK_EINVAL, "train: micro-shards (a K-independent sum) take no batch norm: a shard's "
                           "statistics would need every other shard's first");
        else if (c->coll->shards < c->coll->ranks)
            bs = wick_fail(WICK_EINVAL, "train: %d micro-shards for %d ranks: each rank needs one at least",
                           c->coll->shards, c->coll->ranks);
        size_t total = 1;
        for (int i = 0; i < t->np && bs == WICK_OK; i++) {
            t->soff[i] = total - 1;
            total += nn_param_size(m, t->param[i]);
        }
        t->stride = total;   /* the parameters, then the shard's loss */
        if (bs == WICK_OK && !(t->sbuf = wick_malloc(((size_t)c->coll->shards * total + 1) * sizeof *t->sbuf)))
            bs = wick_fail(WICK_ENOMEM, "train: out of memory");
        if (bs != WICK_OK) {
            wick_free(t);
            return bs;
        }
    } else if (c->coll && c->coll->ranks > 1) {
        int nbn = 0;
        wick_status bs = graph_set_bn_sum(m->g, dist_bn_sum, t, &nbn);
        size_t tail = train->n % (size_t)c->batch;
        size_t K = (size_t)c->coll->ranks;
        if (bs == WICK_OK && nbn > 0 && ((size_t)c->batch < K || (tail && tail < K)))
            bs = wick_fail(WICK_EINVAL, "train: batch norm over %d ranks needs at least %d rows in every global batch "
                           "(batch %d; the epoch's last has %zu of %zu samples): change --batch or the ranks",
                           c->coll->ranks, c->coll->ranks, c->batch, tail ? tail : (size_t)c->batch, train->n);
        if (bs != WICK_OK) {
            graph_set_bn_sum(m->g, NULL, NULL, NULL);
            wick_free(t);
            return bs;
        }
        t->bn_sync = nbn > 0;
    }
    for (int i = 0; i < t->np; i++) sizes[i] = nn_param_size(m, t->param[i]);
    for (int i = 0; i < t->np; i++) t->snap[t->nsnap++] = t->param[i];
    for (int i = 0; i < m->nt; i++)
        if (!m->ft[i].is_param && m->ft[i].dtype == WICK_DT_F32) t->snap[t->nsnap++] = m->tensor[i];
    int nodes = 0;
    while (wick_graph_value(m->g, nodes)) nodes++;
    wick_status s = WICK_OK;
    t->slot = wick_malloc(nodes * sizeof *t->slot);
    t->perm = wick_malloc(train->n * sizeof *t->perm);
    if (c->patience > 0) t->best = wick_malloc(snap_total(t) * sizeof *t->best);
    t->good = wick_malloc(snap_total(t) * sizeof *t->good);
    t->good_step = -1;
    if (!t->slot || !t->perm || !t->good || (c->patience > 0 && !t->best))
        s = wick_fail(WICK_ENOMEM, "train: out of memory");
    if (s == WICK_OK) s = wick_opt_new(&t->opt, &c->opt, t->np, sizes, NULL);
    if (s == WICK_OK) s = wick_sched_init(&t->sched, &c->sched);
    if (s != WICK_OK) {
        wick_trainer_free(t);
        return s;
    }
    /* the one-parallel-region path when the graph is a dense chain into
       cross-entropy and the step is plain; anything else runs on the general
       executor */
    int plain = !wick_augment_active(&c->augment) && c->clip_value == 0 && c->clip_norm == 0 && c->max_norm == 0;
    const int bf16 = c->precision == WICK_PRECISION_BF16;
    if (!c->general_executor && !c->coll && plain && wick_chain_new(&t->chain, m->g, m->loss, bf16) == WICK_ENOMEM) {
        wick_trainer_free(t);
        return WICK_ENOMEM;
    }
    if (bf16 && !t->chain) {   /* the bf16 products are the chain's alone */
        wick_trainer_free(t);
        return wick_fail(WICK_EUNSUPPORTED, "bf16 trains an MLP on the fast path only (dense layers into "
                         "cross-entropy, one process, no augmentation, clipping, max-norm or general "
                         "executor): train this net in float32");
    }
    for (int i = 0; i < nodes; i++) t->slot[i] = -1;
    for (int i = 0; i < t->np; i++) t->slot[t->param[i]] = i;
    *out = t;
    return WICK_OK;
}

void wick_trainer_free(wick_trainer *t) {
    if (!t) return;
    if (t->bn_sync) graph_set_bn_sum(t->m->g, NULL, NULL, NULL);   /* its callback takes t */
    wick_free(t->sbuf);
    wick_opt_free(t->opt);
    wick_chain_free(t->chain);
    wick_free(t->slot);
    wick_free(t->perm);
    wick_free(t->best);
    wick_free(t->good);
    wick_free(t);
}

long wick_trainer_steps(const wick_trainer *t) { return t->step; }
double wick_trainer_seconds(const wick_trainer *t) { return t->seconds; }
double wick_trainer_samples(const wick_trainer *t) { return t->samples; }
int wick_trainer_best_epoch(const wick_trainer *t) { return t->best_epoch; }
const char *wick_trainer_backend(const wick_trainer *t) {
    if (!t->chain) return wick_graph_backend(t->m->g);
    return t->c.precision == WICK_PRECISION_BF16
               ? "wick's own kernel (one parallel region a step), bf16 products (AVX512-BF16)"
               : "wick's own kernel (one parallel region a step)";
}

/* ---- one step ---------------------------------------------------------- */

/* Called by backward as soon as parameter p's gradient is final (with
 * clipping by global norm, after backward, the gradients scaled).  Clipping
 * by value acts on the gradient before the optimiser adds weight decay, and
 * the max-norm projection on the updated weights, as in PyTorch. */
static void update_param(void *user, wick_node p) {
    wick_trainer *t = user;
    int i = t->slot[p];
    wick_graph *g = t->m->g;
    float *w = wick_graph_value(g, p), *grad = wick_graph_grad(g, p);
    size_t n = nn_param_size(t->m, p);
    if (t->c.clip_value > 0) nn_clip_value(grad, n, t->c.clip_value);
    wick_opt_update(t->opt, i, w, grad, t->lr);
    if (t->c.max_norm > 0 && t->rows_maxnorm[i]) nn_max_norm_rows(w, (size_t)t->rows_maxnorm[i], n / t->rows_maxnorm[i], t->c.max_norm);
}

/* Backward, then every update: clip_grad_norm_ needs every gradient first. */
static void backward_clipped(wick_trainer *t) {
    wick_graph *g = t->m->g;
    wick_graph_backward(g, t->m->loss, NULL, NULL);
    double sq = 0;
    for (int i = 0; i < t->np; i++) sq += nn_sum_squares(wick_graph_grad(g, t->param[i]), nn_param_size(t->m, t->param[i]));
    double coef = nn_clip_coef(sq, t->c.clip_norm);
    for (int i = 0; i < t->np; i++) {
        if (coef < 1) nn_scale(wick_graph_grad(g, t->param[i]), nn_param_size(t->m, t->param[i]), coef);
        update_param(t, t->param[i]);
    }
}

/* The fast path's update: rows [lo, hi) of parameter p, from one thread. */
static void update_range(void *user, wick_node p, float *value, const float *grad, size_t lo, size_t hi) {
    wick_trainer *t = user;
    wick_opt_update_span(t->opt, t->slot[p], value, grad, t->lr, lo, hi);
}

static void ensure_perm(wick_trainer *t) {
    if (t->perm_epoch == t->epoch) return;
    if (t->c.shuffle) wick_permutation(t->perm, t->train->n, t->c.seed, STREAM_SHUFFLE + (uint64_t)t->epoch);
    else for (size_t i = 0; i < t->train->n; i++) t->perm[i] = (uint32_t)i;
    t->perm_epoch = t->epoch;
}

/* Copies rows idx[0..rows) of d into the graph's input and labels/targets,
 * each sample augmented when aug is active (its draws: the sample's index in
 * d, in the epoch's stream). */
static void gather(wick_mlp *m, const wick_dataset *d, const uint32_t *idx, size_t first, int rows,
                   const wick_augment *aug, uint64_t seed, int epoch) {
    wick_graph *g = m->g;
    float *x = wick_graph_value(g, m->x);
    size_t dim = d->dim;
    int augment = aug && wick_augment_active(aug);
    const int *in = m->spec->input;
    #pragma omp parallel for schedule(static) if (augment && rows > 8)
    for (int r = 0; r < rows; r++) {
        size_t i = idx ? idx[r] : first + r;
        if (augment)
            wick_augment_sample(aug, d->x + i * dim, x + (size_t)r * dim, in[0], in[1], in[2], seed,
                                STREAM_AUGMENT + (uint64_t)epoch, i);
        else
            memcpy(x + (size_t)r * dim, d->x + i * dim, dim * sizeof *x);
    }
    if (m->labels >= 0) {
        int32_t *y = wick_graph_value(g, m->labels);
        for (int r = 0; r < rows; r++) y[r] = d->y[idx ? idx[r] : first + r];
    } else {
        /* MSE on a classification set: one-hot targets */
        int nL = m->nout;
        float *y = wick_graph_value(g, m->target);
        memset(y, 0, (size_t)rows * nL * sizeof *y);
        for (int r = 0; r < rows; r++) y[(size_t)r * nL + d->y[idx ? idx[r] : first + r]] = 1;
    }
}

static long batches_per_epoch(const wick_trainer *t) {
    return (long)((t->train->n + t->c.batch - 1) / t->c.batch);
}

/* ---- data parallel (c.coll, src/dist/) -------------------------------- */

/* Backward's callback: parameter p's gradient goes to the sum over ranks. */
static void dist_ready(void *user, wick_node p) {
    wick_trainer *t = user;
    const wick_collective *k = t->c.coll;
    k->grad_start(k->user, t->slot[p], wick_graph_grad(t->m->g, p), nn_param_size(t->m, p), t->share);
}

/* After the sums: clipping by global norm, then each parameter's update, as
 * one process makes them. */
static void dist_update(wick_trainer *t) {
    wick_mlp *m = t->m;
    double sq = 0;
    if (t->c.clip_norm > 0)
        for (int i = 0; i < t->np; i++) sq += nn_sum_squares(wick_graph_grad(m->g, t->param[i]), nn_param_size(m, t->param[i]));
    double coef = t->c.clip_norm > 0 ? nn_clip_coef(sq, t->c.clip_norm) : 1;
    for (int i = 0; i < t->np; i++) {
        if (coef < 1) nn_scale(wick_graph_grad(m->g, t->param[i]), nn_param_size(m, t->param[i]), coef);
        update_param(t, t->param[i]);
    }
}

/* Batch norm's sums over the ranks (graph_set_bn_sum): a failure is kept
 * for dist_step, which reports it after the forward or backward. */
static void dist_bn_sum(void *user, double *x, int n) {
    wick_trainer *t = user;
    wick_status s = t->c.coll->sum(t->c.coll->user, x, n);
    if (s != WICK_OK && t->bn_status == WICK_OK) t->bn_status = s;
}

/* The loss above which a step counts as diverged (--diverge-factor times the
 * first step's loss), and the check every step kind makes against it. */
static double diverge_limit(const wick_trainer *t) {
    return t->c.diverge_factor > 0 && !isnan(t->first_loss) ? t->c.diverge_factor * fmax(t->first_loss, 1e-3)
                                                             : INFINITY;
}

static wick_status check_loss(wick_trainer *t, double loss, double limit) {
    if (isnan(t->first_loss)) t->first_loss = loss;
    if (!isfinite(loss) || loss > limit)
        return wick_fail(WICK_EDIVERGED, "diverged at step %ld (epoch %d): loss %g%s", t->step + 1, t->epoch + 1,
                         loss, isfinite(loss) ? " exceeds the divergence limit" : " is not finite");
    return WICK_OK;
}

/* One global batch: this rank's rows forward, the losses summed (each
 * weighted by its share of the rows, so the sum is the global batch's mean
 * loss, and every rank takes the same divergence decision), backward with
 * each gradient summed as it completes, then every update as one process
 * would make it. */
static wick_status dist_step(wick_trainer *t, double *loss_out) {
    wick_mlp *m = t->m;
    const wick_collective *k = t->c.coll;
    size_t first = (size_t)t->batch_pos * t->c.batch;
    size_t rows = t->train->n - first < (size_t)t->c.batch ? t->train->n - first : (size_t)t->c.batch;
    size_t lo = rows * k->rank / k->ranks, hi = rows * (k->rank + 1) / k->ranks;
    t->share = (double)(hi - lo) / rows;
    double part[2] = {0, t->c.stop && *t->c.stop};
    wick_status s;
    if (hi > lo) {
        if ((s = wick_graph_set_batch(m->g, (int)(hi - lo))) != WICK_OK) return s;
        gather(m, t->train, t->perm + first + lo, 0, (int)(hi - lo), &t->c.augment, t->c.seed, t->epoch);
        wick_graph_forward(m->g);
        if (t->bn_status != WICK_OK) return t->bn_status;
        part[0] = *(float *)wick_graph_value(m->g, m->loss) * t->share;
    }
    if ((s = k->sum(k->user, part, 2)) != WICK_OK) return s;
    double loss = part[0];
    t->stop_all = part[1] > 0;
    double limit = diverge_limit(t);
    if ((s = check_loss(t, loss, limit)) != WICK_OK) return s;
    if (hi > lo) wick_graph_backward(m->g, m->loss, dist_ready, t);
    else wick_graph_set_step(m->g, wick_graph_step(m->g) + 1);   /* as forward would have */
    if (hi == lo) for (int i = t->np - 1; i >= 0; i--)
        k->grad_start(k->user, i, wick_graph_grad(m->g, t->param[i]), nn_param_size(m, t->param[i]), 0);
    if (t->bn_status != WICK_OK) return t->bn_status;
    if ((s = k->grad_finish(k->user)) != WICK_OK) return s;
    dist_update(t);
    *loss_out = loss;
    return WICK_OK;
}

/* Backward's callback in a micro-shard: parameter p's gradient (this
 * shard's mean) into the shard's slot of sbuf. */
static void shard_ready(void *user, wick_node p) {
    wick_trainer *t = user;
    const float *g = wick_graph_grad(t->m->g, p);
    double *dst = t->sbuf + (size_t)t->cur_shard * t->stride + t->soff[t->slot[p]];
    for (size_t j = 0, n = nn_param_size(t->m, p); j < n; j++) dst[j] = g[j];
}

/* One global batch in S = c.coll->shards fixed micro-shards (rows
 * [R s / S, R (s + 1) / S)), rank r computing shards [S r / K, S (r + 1) / K)
 * one after another.  Each shard's mean gradient and loss go to its own slot
 * of a buffer that is zero elsewhere, so the sum over the ranks adds one
 * value and zeros to each element: exact, in any order.  Every rank then
 * adds the shards in order 0..S-1 weighted by their rows: the same
 * operations whatever K is, so K <= S ranks give the same bits.  A shard's
 * dropout draws are keyed by the shard, not the rank.  Costs S times the
 * parameters in the sum, and smaller products. */
static wick_status dist_step_sharded(wick_trainer *t, double *loss_out) {
    wick_mlp *m = t->m;
    const wick_collective *k = t->c.coll;
    int S = k->shards;
    size_t first = (size_t)t->batch_pos * t->c.batch;
    size_t rows = t->train->n - first < (size_t)t->c.batch ? t->train->n - first : (size_t)t->c.batch;
    size_t n = (size_t)S * t->stride + 1;
    memset(t->sbuf, 0, n * sizeof *t->sbuf);
    uint64_t step0 = wick_graph_step(m->g);
    wick_status s;
    for (int sh = S * k->rank / k->ranks; sh < S * (k->rank + 1) / k->ranks; sh++) {
        size_t lo = rows * sh / S, hi = rows * (sh + 1) / S;
        if (hi == lo) continue;
        if ((s = wick_graph_set_batch(m->g, (int)(hi - lo))) != WICK_OK) return s;
        gather(m, t->train, t->perm + first + lo, 0, (int)(hi - lo), &t->c.augment, t->c.seed, t->epoch);
        wick_graph_set_seed(m->g, t->c.seed ^ (uint64_t)(sh + 1) << 48);
        wick_graph_set_step(m->g, step0);
        wick_graph_forward(m->g);
        t->sbuf[(size_t)sh * t->stride + t->stride - 1] = *(float *)wick_graph_value(m->g, m->loss);
        t->cur_shard = sh;
        wick_graph_backward(m->g, m->loss, shard_ready, t);
    }
    wick_graph_set_step(m->g, step0 + 1);
    t->sbuf[n - 1] = t->c.stop && *t->c.stop;
    for (size_t o = 0; o < n; o += 1 << 24)
        if ((s = k->sum(k->user, t->sbuf + o, (int)(n - o < (1 << 24) ? n - o : 1 << 24))) != WICK_OK) return s;
    double loss = 0;
    for (int sh = 0; sh < S; sh++)
        loss += (double)(rows * (sh + 1) / S - rows * sh / S) / rows * t->sbuf[(size_t)sh * t->stride + t->stride - 1];
    t->stop_all = t->sbuf[n - 1] > 0;
    double limit = diverge_limit(t);
    if ((s = check_loss(t, loss, limit)) != WICK_OK) return s;
    for (int i = 0; i < t->np; i++) {
        float *g = wick_graph_grad(m->g, t->param[i]);
        for (size_t j = 0, np = nn_param_size(m, t->param[i]); j < np; j++) {
            double a = 0;
            for (int sh = 0; sh < S; sh++)
                a += (double)(rows * (sh + 1) / S - rows * sh / S) / rows * t->sbuf[(size_t)sh * t->stride + t->soff[i] + j];
            g[j] = (float)a;
        }
    }
    dist_update(t);
    *loss_out = loss;
    return WICK_OK;
}

/* Collective, at each epoch's end and before each checkpoint: batch norm's
 * running statistics (each rank's from its own slices) averaged over the
 * ranks, so every rank evaluates and saves the same model; then the ranks'
 * weights compared through a 20-bit hash h, equal on all ranks exactly when
 * K sum h^2 = (sum h)^2. */
static wick_status sync_replicas(wick_trainer *t) {
    const wick_collective *k = t->c.coll;
    if (!k) return WICK_OK;
    wick_mlp *m = t->m;
    wick_status s;
    for (int i = 0; i < m->nt; i++) {
        if (m->ft[i].is_param || m->ft[i].dtype != WICK_DT_F32) continue;
        float *v = wick_graph_value(m->g, m->tensor[i]);
        size_t n = nn_param_size(m, m->tensor[i]);
        for (size_t j = 0; j < n; j += 64) {
            double buf[64];
            int c = (int)(n - j < 64 ? n - j : 64);
            for (int e = 0; e < c; e++) buf[e] = v[j + e];
            if ((s = k->sum(k->user, buf, c)) != WICK_OK) return s;
            for (int e = 0; e < c; e++) v[j + e] = (float)(buf[e] / k->ranks);
        }
    }
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < t->np; i++) {
        const uint32_t *w = wick_graph_value(m->g, t->param[i]);
        for (size_t j = 0, n = nn_param_size(m, t->param[i]); j < n; j++) h = (h ^ w[j]) * 1099511628211ull;
    }
    double hh = (double)(h >> 44), x[2] = {hh, hh * hh};
    if ((s = k->sum(k->user, x, 2)) != WICK_OK) return s;
    if (x[1] * k->ranks != x[0] * x[0])
        return wick_fail(WICK_EINVAL, "train: the ranks' weights differ at step %ld (a rank computed another "
                         "update: mismatched builds or data?)", t->step);
    return WICK_OK;
}

/* One minibatch.  The loss is checked after forward and before backward, so
 * a non-finite loss leaves the weights of the last good step. */
static wick_status train_step(wick_trainer *t, double *loss_out) {
    if (t->c.coll) return t->c.coll->shards > 0 ? dist_step_sharded(t, loss_out) : dist_step(t, loss_out);
    wick_mlp *m = t->m;
    size_t first = (size_t)t->batch_pos * t->c.batch;
    int rows = (int)(t->train->n - first < (size_t)t->c.batch ? t->train->n - first : (size_t)t->c.batch);
    wick_status s = wick_graph_set_batch(m->g, rows);
    if (s != WICK_OK) return s;
    double limit = diverge_limit(t);
    double loss;
    if (t->chain) {
        /* forward, check, backward and updates in one parallel region */
        loss = wick_chain_step(t->chain, t->train->x, t->train->y, t->perm + first, 0, limit,
                               update_range, t);
    } else {
        gather(m, t->train, t->perm + first, 0, rows, &t->c.augment, t->c.seed, t->epoch);
        wick_graph_forward(m->g);
        loss = *(float *)wick_graph_value(m->g, m->loss);
    }
    if ((s = check_loss(t, loss, limit)) != WICK_OK) return s;
    if (t->chain) wick_opt_advance(t->opt);
    else if (t->c.clip_norm > 0) backward_clipped(t);
    else wick_graph_backward(m->g, m->loss, update_param, t);
    *loss_out = loss;
    return WICK_OK;
}

/* ---- evaluation -------------------------------------------------------- */

/* Mean loss, predictions and accuracy over d, in batches. */
static wick_status eval_set(wick_mlp *m, const wick_dataset *d, int32_t *pred, double *mean_loss,
                            double *acc) {
    wick_graph *g = m->g;
    int nL = m->nout;
    double loss_sum = 0;
    size_t correct = 0;
    /* eval mode: batch norm's running statistics, no dropout or noise */
    int training = wick_graph_training(g);
    wick_graph_set_training(g, 0);
    for (size_t i = 0; i < d->n; i += m->max_batch) {
        int rows = (int)(d->n - i < (size_t)m->max_batch ? d->n - i : (size_t)m->max_batch);
        wick_status s = wick_graph_set_batch(g, rows);
        if (s != WICK_OK) {
            wick_graph_set_training(g, training);
            return s;
        }
        gather(m, d, NULL, i, rows, NULL, 0, 0);
        wick_graph_forward(g);
        double l = m->dt == WICK_DT_F32 ? *(float *)wick_graph_value(g, m->loss)
                                        : *(double *)wick_graph_value(g, m->loss);
        loss_sum += l * rows;
        const void *out = wick_graph_value(g, m->out);
        for (int r = 0; r < rows; r++) {
            int best = 0;
            for (int c = 1; c < nL; c++) {
                double a = m->dt == WICK_DT_F32 ? ((const float *)out)[(size_t)r * nL + c]
                                                : ((const double *)out)[(size_t)r * nL + c];
                double b = m->dt == WICK_DT_F32 ? ((const float *)out)[(size_t)r * nL + best]
                                                : ((const double *)out)[(size_t)r * nL + best];
                if (a > b) best = c;
            }
            if (pred) pred[i + r] = best;
            correct += best == d->y[i + r];
        }
    }
    wick_graph_set_training(g, training);
    *mean_loss = loss_sum / d->n;
    if (acc) *acc = (double)correct / d->n;
    return WICK_OK;
}

wick_status wick_evaluate(wick_mlp *m, const wick_dataset *d, wick_metrics **out, double *mean_loss) {
    if (d->dim != (size_t)m->nin)
        return wick_fail(WICK_ESHAPE, "evaluate: data have %zu features, the model takes %d", d->dim, m->nin);
    if (d->classes > m->nout)
        return wick_fail(WICK_ESHAPE, "evaluate: %d classes but the model has %d outputs", d->classes, m->nout);
    wick_status cs = check_data(d, m->nout, "evaluate:");
    if (cs != WICK_OK) return cs;
    int32_t *pred = wick_malloc(d->n * sizeof *pred);
    if (!pred) return wick_fail(WICK_ENOMEM, "evaluate: out of memory");
    double loss;
    const unsigned fp = wick_fp_enter();
    wick_status s = eval_set(m, d, pred, &loss, NULL);
    wick_fp_leave(fp);
    if (s == WICK_OK) s = wick_metrics_compute(d->y, pred, d->n, m->nout, out);
    if (s == WICK_OK && mean_loss) *mean_loss = loss;
    wick_free(pred);
    return s;
}

/* ---- early stopping ---------------------------------------------------- */

static void copy_params(wick_trainer *t, int to_best) {
    size_t off = 0;
    for (int i = 0; i < t->nsnap; i++) {
        size_t n = nn_param_size(t->m, t->snap[i]);
        float *v = wick_graph_value(t->m->g, t->snap[i]);
        if (to_best) memcpy(t->best + off, v, n * sizeof *v);
        else memcpy(v, t->best + off, n * sizeof *v);
        off += n;
    }
}

/* ---- finiteness of the weights ----------------------------------------- */

/* The loss check misses a weight gone NaN behind a ReLU (max(NaN, 0) is 0
 * downstream, and its gradient 0 keeps it NaN), so the weights and the
 * optimiser's state are checked at each epoch's end, before each checkpoint
 * and at the end of the run: a pass over the parameters, nothing per step.
 * Finite: they become the last good weights.  Not: the last good weights
 * come back and the run stops as diverged, naming the tensor. */
static void keep_good(wick_trainer *t, int restore) {
    float *keep = t->best;
    t->best = t->good;
    copy_params(t, !restore);
    t->best = keep;
    if (!restore) t->good_step = t->step;
}

static wick_status check_state(wick_trainer *t) {
    for (int i = 0; i < t->np; i++) {
        wick_node p = t->param[i];
        size_t n = nn_param_size(t->m, p);
        const float *v = wick_graph_value(t->m->g, p);
        const char *sn = NULL;
        size_t at = nn_first_nonfinite(v, n);
        for (int k = 0; k < wick_opt_state_count(t->opt, i) && at == n; k++) {
            v = wick_opt_state(t->opt, i, k, &sn);
            at = nn_first_nonfinite(v, n);
        }
        if (at == n) continue;
        double x = v[at];
        char name[128];
        if (at < n && sn) snprintf(name, sizeof name, "optimizer.%s.%s", wick_graph_name(t->m->g, p), sn);
        else snprintf(name, sizeof name, "%s", wick_graph_name(t->m->g, p));
        if (t->good_step < 0)
            return wick_fail(WICK_EINVAL, "train: tensor '%s' is not finite at index %zu (%g) before the first step",
                             name, at, x);
        keep_good(t, 1);
        return wick_fail(WICK_EDIVERGED, "diverged by step %ld (epoch %d): tensor '%s' is not finite at index %zu "
                         "(%g) while the loss is; the weights are those of step %ld", t->step, t->epoch + 1, name,
                         at, x, t->good_step);
    }
    keep_good(t, 0);
    return WICK_OK;
}

/* Finite weights and state, then the checkpoint. */
static wick_status checked_save(wick_trainer *t, const char *path) {
    wick_status s = check_state(t);
    return s ? s : wick_trainer_save(t, path);
}

/* ---- checkpoints ------------------------------------------------------- */

wick_status wick_trainer_save(wick_trainer *t, const char *path) {
    wick_mlp *m = t->m;
    enum { MAXT = NN_MAX_TENSORS * 4 };
    wick_st_tensor *ts = wick_calloc(MAXT, sizeof *ts);
    char (*names)[96] = wick_calloc(MAXT, sizeof *names);
    nn_meta *meta = wick_malloc(sizeof *meta);
    float *scratch = NULL;
    wick_status s = WICK_OK;
    if (!ts || !names || !meta) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", path); goto done; }
    if ((s = nn_param_tensors(m, ts, &scratch)) != WICK_OK) goto done;
    int n = m->nt;
    for (int i = 0; i < t->np; i++) {
        const wick_st_tensor *pt = &ts[nn_tensor_index(m, t->param[i])];
        for (int k = 0; k < wick_opt_state_count(t->opt, i); k++) {
            const char *sn;
            float *buf = wick_opt_state(t->opt, i, k, &sn);
            snprintf(names[n], sizeof names[n], "optimizer.%s.%s", pt->name, sn);
            ts[n] = *pt;
            ts[n].name = names[n];
            ts[n].data = buf;
            n++;
        }
    }
    if (t->best && t->best_epoch > 0) {
        size_t off = 0;
        for (int i = 0; i < t->nsnap; i++) {
            const wick_st_tensor *pt = &ts[nn_tensor_index(m, t->snap[i])];
            snprintf(names[n], sizeof names[n], "optimizer.best.%s", pt->name);
            ts[n] = *pt;
            ts[n].name = names[n];
            ts[n].data = t->best + off;
            off += nn_param_size(m, t->snap[i]);
            n++;
        }
    }
    nn_model_meta(m, meta);   /* its first key is "format" */
    snprintf(meta->val[0], sizeof meta->val[0], "wick-checkpoint");
    char steps[1024] = "";
    for (int i = 0, o = 0; i < t->np && o < (int)sizeof steps; i++)
        o += snprintf(steps + o, sizeof steps - o, i ? ",%llu" : "%llu",
                      (unsigned long long)wick_opt_steps(t->opt, i));
    /* the keys and their formats: checksum.c's table (nn_meta_keys); the
       optimiser and the schedule too, so that a resumed run takes them from
       the checkpoint rather than from flags repeated by hand */
    nn_ckpt_meta v = {
        .seed = t->c.seed, .shuffle = t->c.shuffle, .batch = t->c.batch, .train_samples = (int64_t)t->train->n,
        .step = t->step, .epoch = t->epoch, .batch_in_epoch = t->batch_pos, .epoch_loss_sum = t->epoch_loss_sum,
        .epoch_steps = t->epoch_steps, .first_loss = t->first_loss, .best_val = t->best_val,
        .best_epoch = t->best_epoch, .bad_epochs = t->bad_epochs, .sched_lr = t->sched.lr,
        .sched_best = t->sched.best, .sched_bad_epochs = t->sched.bad_epochs, .optimizer_steps = steps,
        .seconds = t->seconds, .samples = t->samples, .graph_step = wick_graph_step(m->g),
        .optimizer = opt_kind_names[t->c.opt.kind], .lr = t->c.sched.lr0, .momentum = t->c.opt.momentum,
        .weight_decay = t->c.opt.weight_decay, .schedule = sched_kind_names[t->c.sched.kind],
        .label_smoothing = m->c.smoothing, .input = t->c.input,
        .precision = t->c.precision == WICK_PRECISION_BF16 ? "bf16" : "f32"};
    nn_ckpt_meta_write(meta, &v);
    s = nn_write(path, ts, n, meta);
done:
    wick_free(scratch);
    wick_free(ts);
    wick_free(names);
    wick_free(meta);
    return s;
}

/* ---- resuming ---------------------------------------------------------- */

/* A checkpoint's metadata is input like any other: each field is parsed
 * strictly (integers as integers, no trailing junk, finite unless said),
 * range-checked and checked against the others and this run before any of
 * it is used; the first problem is reported naming the key and the value. */
typedef struct {
    const wick_st_file *f;
    const char *path;
    wick_status s;           /* the first failure; later reads do nothing */
} meta_rd;

static const char *meta_str(meta_rd *r, const char *key) {
    if (r->s) return NULL;
    const char *v = wick_st_meta(r->f, key);
    if (!v) r->s = wick_fail(WICK_EFORMAT, "%s: __metadata__ lacks '%s' (not a complete wick checkpoint)", r->path, key);
    return v;
}

__attribute__((format(printf, 3, 4)))
static void meta_bad(meta_rd *r, const char *key, const char *fmt, ...) {
    if (r->s) return;
    char why[512], e[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *v = wick_st_meta(r->f, key);
    r->s = wick_fail(WICK_EFORMAT, "%s: __metadata__ %s = '%s' %s", r->path, key, wick_escape(v ? v : "", e, sizeof e), why);
}

/* A number >= lo; +inf too where allow_inf, NaN where allow_nan. */
static double meta_real(meta_rd *r, const char *key, double lo, int allow_inf, int allow_nan) {
    const char *v = meta_str(r, key);
    double x = 0;
    if (v && (!wick_parse_f64(v, 1, &x) || (isnan(x) && !allow_nan) || (isinf(x) && !(allow_inf && x > 0)) ||
              x < lo))
        meta_bad(r, key, "is not a number >= %g%s%s", lo, allow_inf ? " or inf" : "", allow_nan ? " or nan" : "");
    return r->s ? 0 : x;
}

/* Everything a checkpoint restores, parsed and checked, not yet applied. */
typedef struct {
    uint64_t seed, graph_step, opt_steps[NN_MAX_TENSORS];
    int shuffle, epoch, best_epoch, bad_epochs, sched_bad_epochs;
    long step, batch_pos, epoch_steps;
    double epoch_loss_sum, first_loss, best_val, sched_lr, sched_best, seconds, samples;
} ckpt_state;

static wick_status read_state(wick_trainer *t, meta_rd *r, ckpt_state *k) {
    const wick_mlp *m = t->m;
    char want[4096];
    /* the model: architecture, activation (or the whole spec), loss */
    const char *v;
    if (m->is_mlp) {
        wick_arch_format(&m->c, want, sizeof want);
        v = meta_str(r, "arch");
        if (v && strcmp(v, want)) meta_bad(r, "arch", "differs from this run's model %s", want);
        wick_act act;
        if ((v = meta_str(r, "act")) && (wick_act_parse(v, &act) || act.kind != m->c.act.kind))
            meta_bad(r, "act", "differs from this run's activation %s", wick_act_name(m->c.act));
        double slope = meta_real(r, "act_slope", -INFINITY, 0, 0);
        if (!r->s && m->c.act.kind == WICK_ACT_LEAKY_RELU && slope != m->c.act.slope)
            meta_bad(r, "act_slope", "differs from this run's slope %.17g", m->c.act.slope);
    } else {
        wick_spec_format(m->spec, want, sizeof want);
        v = meta_str(r, "spec");
        if (v && strcmp(v, want)) meta_bad(r, "spec", "differs from this run's network %s", want);
    }
    const char *loss = m->c.loss == WICK_LOSS_XENT ? "cross_entropy" : "mse";
    if ((v = meta_str(r, "loss")) && strcmp(v, loss)) meta_bad(r, "loss", "differs from this run's loss %s", loss);
    /* every field by its type and range (checksum.c's nn_meta_keys), then
       the checks between them and against this run */
    nn_ckpt_meta f = {0};
    if (!r->s) r->s = nn_ckpt_meta_read(r->f, r->path, &f);
    /* written since the optimiser was recorded: an older checkpoint has none */
    if (!r->s && f.optimizer && strcmp(f.optimizer, opt_kind_names[t->c.opt.kind]))
        meta_bad(r, "optimizer", "differs from this run's optimizer %s", opt_kind_names[t->c.opt.kind]);
    /* the products' precision may change on resume (a run moves between
       CPUs: the caller's choice), but it must be one wick writes */
    if (!r->s && f.precision && strcmp(f.precision, "f32") && strcmp(f.precision, "bf16"))
        meta_bad(r, "precision", "is neither f32 nor bf16");
    /* the data order */
    k->seed = f.seed;
    k->shuffle = (int)f.shuffle;
    if (!r->s && f.batch != t->c.batch)
        meta_bad(r, "batch", "differs from this run's batch %d (the data order would not continue)", t->c.batch);
    if (!r->s && (uint64_t)f.train_samples != t->train->n)
        meta_bad(r, "train_samples", "differs from this run's %zu training samples", t->train->n);
    /* the position: step = epoch * batches + batch_in_epoch, exactly */
    long nb = batches_per_epoch(t);
    k->epoch = (int)f.epoch;
    k->batch_pos = (long)f.batch_in_epoch;
    k->step = (long)f.step;
    if (!r->s && k->batch_pos > nb) meta_bad(r, "batch_in_epoch", "is not an integer in [0, %ld]", nb);
    long expect;
    if (!r->s && (__builtin_mul_overflow((long)k->epoch, nb, &expect) ||
                  __builtin_add_overflow(expect, k->batch_pos, &expect) || expect != k->step))
        meta_bad(r, "step", "is not epoch %d x %ld batches + batch_in_epoch %ld", k->epoch, nb, k->batch_pos);
    k->epoch_steps = (long)f.epoch_steps;
    if (!r->s && k->epoch_steps > nb) meta_bad(r, "epoch_steps", "is not an integer in [0, %ld]", nb);
    if (!r->s && k->epoch_steps != k->batch_pos)
        meta_bad(r, "epoch_steps", "differs from batch_in_epoch %ld", k->batch_pos);
    k->epoch_loss_sum = f.epoch_loss_sum;
    if (!r->s && k->epoch_steps == 0 && k->epoch_loss_sum != 0)
        meta_bad(r, "epoch_loss_sum", "is not 0 at the start of an epoch");
    k->first_loss = f.first_loss;
    if (!r->s && isnan(k->first_loss) != (k->step == 0))
        meta_bad(r, "first_loss", "%s", k->step ? "is not a finite loss after step 0" : "is not nan before the first step");
    /* early stopping and the schedule */
    k->best_epoch = (int)f.best_epoch;
    if (!r->s && k->best_epoch > k->epoch) meta_bad(r, "best_epoch", "is not an integer in [0, %d]", k->epoch);
    k->best_val = f.best_val;
    if (!r->s && isinf(k->best_val) != (k->best_epoch == 0))
        meta_bad(r, "best_val", "does not go with best_epoch %d", k->best_epoch);
    k->bad_epochs = (int)f.bad_epochs;
    if (!r->s && k->bad_epochs > k->epoch - k->best_epoch)
        meta_bad(r, "bad_epochs", "is not an integer in [0, %d]", k->epoch - k->best_epoch);
    k->sched_lr = f.sched_lr;
    if (!r->s && !(k->sched_lr > 0)) meta_bad(r, "sched_lr", "is not a learning rate > 0");
    k->sched_best = f.sched_best;
    k->sched_bad_epochs = (int)f.sched_bad_epochs;
    if (!r->s && k->sched_bad_epochs > k->epoch) meta_bad(r, "sched_bad_epochs", "is not an integer in [0, %d]", k->epoch);
    /* the optimiser's step counts: one per parameter tensor, none past step */
    if (!r->s && (v = f.optimizer_steps)) {
        const char *p = v;
        for (int i = 0; i < t->np && !r->s; i++) {
            char num[24];
            size_t len = strcspn(p, ",");
            if (len >= sizeof num) len = sizeof num - 1;
            memcpy(num, p, len);
            num[len] = 0;
            int64_t x = 0;
            if (!wick_parse_i64(num, 0, k->step, &x) || p[len] != (i + 1 < t->np ? ',' : 0))
                meta_bad(r, "optimizer_steps", "is not %d step counts in [0, step %ld] separated by commas "
                         "(one per parameter tensor)", t->np, k->step);
            k->opt_steps[i] = (uint64_t)x;
            p += len + 1;
        }
    }
    /* dropout's draws continue where they were: the graph's step counter
       (absent from checkpoints of versions before it: 0, no random layers) */
    k->graph_step = f.graph_step;
    /* totals */
    k->seconds = f.seconds;
    k->samples = f.samples;
    double part = (double)k->batch_pos * t->c.batch, ns = (double)t->train->n;
    if (!r->s && k->samples != (double)k->epoch * ns + (part < ns ? part : ns))
        meta_bad(r, "samples", "is not what epoch %d and batch_in_epoch %ld give", k->epoch, k->batch_pos);
    return r->s;
}

/* The optimiser's buffer k of parameter i in the file, checked. */
static const wick_st_tensor *opt_tensor(wick_trainer *t, const wick_st_file *f, const char *path, int i, int k,
                                        wick_status *s) {
    const char *sn;
    wick_opt_state(t->opt, i, k, &sn);
    char name[128];
    wick_node p = t->param[i];
    snprintf(name, sizeof name, "optimizer.%s.%s", wick_graph_name(t->m->g, p), sn);
    const wick_st_tensor *ts = wick_st_find(f, name);
    int rows = wick_graph_rows(t->m->g, p), cols = wick_graph_cols(t->m->g, p);
    const nn_spec_tensor *want = &t->m->ft[nn_tensor_index(t->m, p)];   /* the parameter's file shape */
    int ok = ts && ts->dtype == WICK_DT_F32 && ts->ndim == want->ndim;
    for (int d = 0; ok && d < ts->ndim; d++) ok = ts->shape[d] == want->shape[d];
    if (!ok) {
        *s = wick_fail(WICK_EFORMAT, "%s: optimiser state '%s' missing or not F32 of the parameter's shape "
                       "(was the checkpoint made with another optimiser?)", path, name);
        return NULL;
    }
    *s = nn_check_finite(ts->data, (size_t)rows * cols, path, name);
    return *s ? NULL : ts;
}

wick_status nn_trainer_resume_st(wick_trainer *t, const wick_st_file *f, const char *path) {
    const char *fmt = wick_st_meta(f, "format");
    char e[96];
    if (!fmt || strcmp(fmt, "wick-checkpoint") != 0)
        return wick_fail(WICK_EFORMAT, "%s: not a wick checkpoint (__metadata__ format is '%s')", path,
                         wick_escape(fmt ? fmt : "", e, sizeof e));
    wick_status s = nn_verify_checksum(f, path, 1);
    if (s != WICK_OK) return s;
    ckpt_state k;
    memset(&k, 0, sizeof k);
    meta_rd r = {f, path, WICK_OK};
    if ((s = read_state(t, &r, &k)) != WICK_OK) return s;
    /* weights, optimiser state, best weights: all checked before any copy */
    if ((s = nn_check_params(t->m, f, path, "")) != WICK_OK) return s;
    for (int i = 0; i < t->np; i++)
        for (int j = 0; j < wick_opt_state_count(t->opt, i); j++)
            if (!opt_tensor(t, f, path, i, j, &s)) return s;
    int with_best = t->best && k.best_epoch > 0;
    if (with_best && (s = nn_check_params(t->m, f, path, "optimizer.best.")) != WICK_OK) return s;
    /* no tensor under "optimizer." that this run would not read (best weights aside) */
    for (int i = 0; i < wick_st_count(f); i++) {
        const char *nm = wick_st_get(f, i)->name;
        if (strncmp(nm, "optimizer.", 10)) continue;
        int known = 0;
        for (int p = 0; p < t->nsnap && !known; p++) {
            const char *pn = wick_graph_name(t->m->g, t->snap[p]);
            char name[128];
            snprintf(name, sizeof name, "optimizer.best.%s", pn);
            known = !strcmp(nm, name);
            for (int j = 0; p < t->np && j < wick_opt_state_count(t->opt, p) && !known; j++) {
                const char *sn;
                wick_opt_state(t->opt, p, j, &sn);
                snprintf(name, sizeof name, "optimizer.%s.%s", pn, sn);
                known = !strcmp(nm, name);
            }
        }
        if (!known)
            return wick_fail(WICK_EFORMAT, "%s: tensor '%s' is no state of this run's optimiser (was the checkpoint "
                             "made with another one?)", path, wick_escape(nm, e, sizeof e));
    }
    /* all checked: apply */
    nn_copy_params(t->m, f, "");
    for (int i = 0; i < t->np; i++) {
        for (int j = 0; j < wick_opt_state_count(t->opt, i); j++) {
            const char *sn;
            const wick_st_tensor *ts = opt_tensor(t, f, path, i, j, &s);
            memcpy(wick_opt_state(t->opt, i, j, &sn), ts->data, nn_param_size(t->m, t->param[i]) * sizeof(float));
        }
        wick_opt_set_steps(t->opt, i, k.opt_steps[i]);
    }
    if (with_best) {
        size_t off = 0;
        for (int i = 0; i < t->nsnap; i++) {
            char name[128];
            snprintf(name, sizeof name, "optimizer.best.%s", wick_graph_name(t->m->g, t->snap[i]));
            size_t n = nn_param_size(t->m, t->snap[i]);
            memcpy(t->best + off, wick_st_find(f, name)->data, n * sizeof *t->best);
            off += n;
        }
    }
    t->c.seed = k.seed;
    t->c.shuffle = k.shuffle;
    t->step = k.step;
    t->epoch = k.epoch;
    t->batch_pos = k.batch_pos;
    t->epoch_loss_sum = k.epoch_loss_sum;
    t->epoch_steps = k.epoch_steps;
    t->first_loss = k.first_loss;
    t->best_val = k.best_val;
    t->best_epoch = k.best_epoch;
    t->bad_epochs = k.bad_epochs;
    t->sched.lr = k.sched_lr;
    t->sched.best = k.sched_best;
    t->sched.bad_epochs = k.sched_bad_epochs;
    t->seconds = k.seconds;
    t->samples = k.samples;
    wick_graph_set_step(t->m->g, k.graph_step);
    t->perm_epoch = -1;
    /* a checkpoint written as early stopping ended the run stays ended */
    t->early_stopped = t->c.patience > 0 && t->bad_epochs >= t->c.patience;
    return WICK_OK;
}

wick_status wick_trainer_resume(wick_trainer *t, const char *path) {
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    s = nn_trainer_resume_st(t, f, path);
    wick_st_free(f);
    return s;
}

/* ---- the run ----------------------------------------------------------- */

static wick_status end_epoch(wick_trainer *t, double seconds) {
    wick_epoch_report r = {.epoch = t->epoch + 1, .lr = t->lr, .seconds = seconds,
                           .val_loss = NAN, .val_acc = NAN};
    r.train_loss = t->epoch_steps ? t->epoch_loss_sum / t->epoch_steps : NAN;
    r.samples_per_s = seconds > 0 ? t->train->n / seconds : 0;
    if (t->val && t->val->n) {
        wick_status s = eval_set(t->m, t->val, NULL, &r.val_loss, &r.val_acc);
        if (s != WICK_OK) return s;
        wick_sched_observe(&t->sched, r.val_loss);
        if (r.val_loss < t->best_val) {
            t->best_val = r.val_loss;
            t->best_epoch = t->epoch + 1;
            t->bad_epochs = 0;
            if (t->best) copy_params(t, 1);
        } else {
            t->bad_epochs++;
        }
    }
    t->epoch++;
    t->batch_pos = 0;
    t->epoch_loss_sum = 0;
    t->epoch_steps = 0;
    if (t->c.patience > 0 && t->bad_epochs >= t->c.patience) t->early_stopped = 1;
    if (t->c.stop_val_loss > 0 && r.val_loss <= t->c.stop_val_loss) t->early_stopped = 1;
    if (t->c.on_epoch) t->c.on_epoch(t->c.user, &r);
    return WICK_OK;
}

/* A loss that diverged: the weights are this step's, unless they were not
 * finite already (then the last good ones come back). */
static wick_status diverged(wick_trainer *t) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", wick_last_error());
    long at = t->step;
    for (int i = 0; i < t->np; i++) {
        size_t n = nn_param_size(t->m, t->param[i]);
        if (nn_first_nonfinite(wick_graph_value(t->m->g, t->param[i]), n) < n) {
            keep_good(t, 1);
            at = t->good_step;
            break;
        }
    }
    return wick_fail(WICK_EDIVERGED, "%s; the weights are those of step %ld", msg, at);
}

static wick_status trainer_run(wick_trainer *t);

/* flush-to-zero while training, the caller's mode back after (wick.h) */
wick_status wick_trainer_run(wick_trainer *t) {
    const unsigned fp = wick_fp_enter();
    wick_status s = trainer_run(t);
    wick_pool_drain();   /* a late worker of the fast path's last step may still read the data (chain.c) */
    wick_fp_leave(fp);
    return s;
}

static wick_status trainer_run(wick_trainer *t) {
    long nb = batches_per_epoch(t);
    t->good_step = -1;
    wick_status s = check_state(t);   /* finite weights to start from, kept as the last good ones */
    if (s != WICK_OK) return s;
    while (t->epoch < t->c.epochs && !t->early_stopped) {
        t->lr = t->c.sched.kind == WICK_SCHED_PLATEAU ? t->sched.lr : wick_sched_lr(&t->sched, t->epoch);
        ensure_perm(t);
        double t0 = now(), t_epoch = 0;
        while (t->batch_pos < nb) {
            if (t->c.stop && (t->c.coll ? t->stop_all : *t->c.stop)) {
                t->seconds += now() - t0;
                if ((s = sync_replicas(t)) != WICK_OK) return s;
                if (t->c.checkpoint && (s = checked_save(t, t->c.checkpoint)) != WICK_OK) return s;
                return wick_fail(WICK_EINTERRUPTED, "interrupted at step %ld (epoch %d)%s%s", t->step,
                                 t->epoch + 1, t->c.checkpoint ? "; checkpoint written to " : "",
                                 t->c.checkpoint ? t->c.checkpoint : "");
            }
            if (t->c.max_steps > 0 && t->step >= t->c.max_steps) break;
            double loss = 0;
            int rows = (int)(t->train->n - (size_t)t->batch_pos * t->c.batch < (size_t)t->c.batch
                                 ? t->train->n - (size_t)t->batch_pos * t->c.batch : (size_t)t->c.batch);
            if ((s = train_step(t, &loss)) != WICK_OK) {
                t->seconds += now() - t0;
                return s == WICK_EDIVERGED ? diverged(t) : s;
            }
            t->step++;
            t->batch_pos++;
            t->epoch_loss_sum += loss;
            t->epoch_steps++;
            t->samples += rows;
            if (t->c.on_step) t->c.on_step(t->c.user, t->step, t->epoch + 1, (int)t->batch_pos, (int)nb, loss);
            if ((t->c.checkpoint || t->c.coll) && t->c.checkpoint_steps > 0 && t->step % t->c.checkpoint_steps == 0) {
                double tc = now();
                if ((s = sync_replicas(t)) != WICK_OK) return s;
                if (t->c.checkpoint && (s = checked_save(t, t->c.checkpoint)) != WICK_OK) return s;
                t0 += now() - tc;   /* checkpoints are not training time */
            }
        }
        t_epoch = now() - t0;
        t->seconds += t_epoch;
        if (t->batch_pos < nb) break;   /* max_steps reached mid-epoch */
        if ((s = sync_replicas(t)) != WICK_OK) return s;
        if ((s = check_state(t)) != WICK_OK) return s;
        if ((s = end_epoch(t, t_epoch)) != WICK_OK) return s;
        if (t->c.checkpoint && (s = wick_trainer_save(t, t->c.checkpoint)) != WICK_OK) return s;
    }
    /* With early stopping on, a finished run keeps the weights of the best
     * validation loss (when the last epoch was not the best). */
    if ((s = sync_replicas(t)) != WICK_OK) return s;
    if ((s = check_state(t)) != WICK_OK) return s;
    int finished = t->early_stopped || t->epoch >= t->c.epochs;
    if (finished && t->best && t->best_epoch > 0 && t->bad_epochs > 0) copy_params(t, 0);
    if (t->c.checkpoint && (s = wick_trainer_save(t, t->c.checkpoint)) != WICK_OK) return s;
    return WICK_OK;
}
