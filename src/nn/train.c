/* train.c — the training loop: shuffled minibatches gathered straight into
 * the graph's input, forward, backward with each weight updated by the
 * optimiser as soon as its gradient is complete, per-epoch validation, early
 * stopping that restores the best weights, divergence detection, and
 * checkpoints that resume bit-identically.
 *
 * Randomness: epoch e's order is wick_permutation(seed, STREAM_SHUFFLE + e),
 * so a resumed run recomputes it from the epoch number alone. */
#include "core/core.h"
#include "graph/chain.h"
#include "nn/model_io.h"
#include "nn/nn_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

#define STREAM_SHUFFLE 1000000u

struct wick_trainer {
    wick_mlp *m;
    const wick_dataset *train, *val;
    wick_train_config c;
    wick_opt *opt;
    wick_chain *chain;                   /* the executor's fast path, or NULL */
    wick_sched sched;
    int np;                              /* parameter tensors: W0, b0, W1, ... */
    wick_node param[2 * WICK_MAX_LAYERS];
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
    float *best;                         /* best weights so far (early stopping), or NULL */
    double seconds, samples;
    int early_stopped;
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

static size_t params_total(const wick_trainer *t) {
    size_t n = 0;
    for (int i = 0; i < t->np; i++) n += nn_param_size(t->m, t->param[i]);
    return n;
}

wick_status wick_trainer_new(wick_trainer **out, wick_mlp *m, const wick_dataset *train,
                             const wick_dataset *val, const wick_train_config *c) {
    const wick_mlp_config *mc = &m->c;
    if (m->dt != WICK_DT_F32) return wick_fail(WICK_EDTYPE, "train: the model must be float32");
    if (c->batch < 1 || c->batch > m->max_batch)
        return wick_fail(WICK_EINVAL, "train: batch %d outside [1, %d]", c->batch, m->max_batch);
    if (c->epochs < 1) return wick_fail(WICK_EINVAL, "train: epochs %d < 1", c->epochs);
    if (!train || train->n == 0) return wick_fail(WICK_EINVAL, "train: no training data");
    const wick_dataset *sets[2] = {train, val};
    for (int k = 0; k < 2; k++) {
        const wick_dataset *d = sets[k];
        if (!d) continue;
        if (d->dim != (size_t)mc->widths[0])
            return wick_fail(WICK_ESHAPE, "train: %s data have %zu features, the model takes %d",
                             k ? "validation" : "training", d->dim, mc->widths[0]);
        if (d->classes > mc->widths[mc->layers])
            return wick_fail(WICK_ESHAPE, "train: %d classes but the model has %d outputs", d->classes,
                             mc->widths[mc->layers]);
    }
    if (train->n > UINT32_MAX) return wick_fail(WICK_EINVAL, "train: more than 2^32 samples");
    wick_trainer *t = wick_calloc(1, sizeof *t);
    if (!t) return wick_fail(WICK_ENOMEM, "train: out of memory");
    t->m = m;
    t->train = train;
    t->val = val;
    t->c = *c;
    t->perm_epoch = -1;
    t->first_loss = NAN;
    t->best_val = INFINITY;
    t->np = wick_graph_params(m->g, t->param, 2 * WICK_MAX_LAYERS);
    size_t sizes[2 * WICK_MAX_LAYERS];
    for (int i = 0; i < t->np; i++) sizes[i] = nn_param_size(m, t->param[i]);
    int nodes = 0;
    while (wick_graph_value(m->g, nodes)) nodes++;
    wick_status s = WICK_OK;
    t->slot = wick_malloc(nodes * sizeof *t->slot);
    t->perm = wick_malloc(train->n * sizeof *t->perm);
    if (c->patience > 0) t->best = wick_malloc(params_total(t) * sizeof *t->best);
    if (!t->slot || !t->perm || (c->patience > 0 && !t->best))
        s = wick_fail(WICK_ENOMEM, "train: out of memory");
    if (s == WICK_OK) s = wick_opt_new(&t->opt, &c->opt, t->np, sizes, NULL);
    if (s == WICK_OK) s = wick_sched_init(&t->sched, &c->sched);
    if (s != WICK_OK) {
        wick_trainer_free(t);
        return s;
    }
    /* the one-parallel-region path when the graph is a dense chain into
       cross-entropy; anything else runs on the general executor */
    if (!c->general_executor && wick_chain_new(&t->chain, m->g, m->loss) == WICK_ENOMEM) {
        wick_trainer_free(t);
        return WICK_ENOMEM;
    }
    for (int i = 0; i < nodes; i++) t->slot[i] = -1;
    for (int i = 0; i < t->np; i++) t->slot[t->param[i]] = i;
    *out = t;
    return WICK_OK;
}

void wick_trainer_free(wick_trainer *t) {
    if (!t) return;
    wick_opt_free(t->opt);
    wick_chain_free(t->chain);
    wick_free(t->slot);
    wick_free(t->perm);
    wick_free(t->best);
    wick_free(t);
}

long wick_trainer_steps(const wick_trainer *t) { return t->step; }
double wick_trainer_seconds(const wick_trainer *t) { return t->seconds; }
double wick_trainer_samples(const wick_trainer *t) { return t->samples; }
int wick_trainer_best_epoch(const wick_trainer *t) { return t->best_epoch; }

/* ---- one step ---------------------------------------------------------- */

/* Called by backward as soon as parameter p's gradient is final. */
static void update_param(void *user, wick_node p) {
    wick_trainer *t = user;
    int i = t->slot[p];
    wick_graph *g = t->m->g;
    wick_opt_update(t->opt, i, wick_graph_value(g, p), wick_graph_grad(g, p), t->lr);
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

/* Copies rows idx[0..rows) of d into the graph's input and labels/targets. */
static void gather(wick_mlp *m, const wick_dataset *d, const uint32_t *idx, size_t first, int rows) {
    wick_graph *g = m->g;
    float *x = wick_graph_value(g, m->x);
    size_t dim = d->dim;
    for (int r = 0; r < rows; r++) {
        size_t i = idx ? idx[r] : first + r;
        memcpy(x + (size_t)r * dim, d->x + i * dim, dim * sizeof *x);
    }
    if (m->labels >= 0) {
        int32_t *y = wick_graph_value(g, m->labels);
        for (int r = 0; r < rows; r++) y[r] = d->y[idx ? idx[r] : first + r];
    } else {
        /* MSE on a classification set: one-hot targets */
        int nL = m->c.widths[m->c.layers];
        float *y = wick_graph_value(g, m->target);
        memset(y, 0, (size_t)rows * nL * sizeof *y);
        for (int r = 0; r < rows; r++) y[(size_t)r * nL + d->y[idx ? idx[r] : first + r]] = 1;
    }
}

static long batches_per_epoch(const wick_trainer *t) {
    return (long)((t->train->n + t->c.batch - 1) / t->c.batch);
}

/* One minibatch.  The loss is checked after forward and before backward, so
 * a non-finite loss leaves the weights of the last good step. */
static wick_status train_step(wick_trainer *t, double *loss_out) {
    wick_mlp *m = t->m;
    size_t first = (size_t)t->batch_pos * t->c.batch;
    int rows = (int)(t->train->n - first < (size_t)t->c.batch ? t->train->n - first : (size_t)t->c.batch);
    wick_status s = wick_graph_set_batch(m->g, rows);
    if (s != WICK_OK) return s;
    double limit = t->c.diverge_factor > 0 && !isnan(t->first_loss)
                       ? t->c.diverge_factor * fmax(t->first_loss, 1e-3) : INFINITY;
    double loss;
    if (t->chain) {
        /* forward, check, backward and updates in one parallel region */
        loss = wick_chain_step(t->chain, t->train->x, t->train->y, t->perm + first, 0, limit,
                               update_range, t);
    } else {
        gather(m, t->train, t->perm + first, 0, rows);
        wick_graph_forward(m->g);
        loss = *(float *)wick_graph_value(m->g, m->loss);
    }
    if (isnan(t->first_loss)) t->first_loss = loss;
    if (!isfinite(loss) || loss > limit)
        return wick_fail(WICK_EDIVERGED,
                         "diverged at step %ld (epoch %d): loss %g%s; the weights are those of step %ld",
                         t->step + 1, t->epoch + 1, loss,
                         isfinite(loss) ? " exceeds the divergence limit" : " is not finite", t->step);
    if (t->chain) wick_opt_advance(t->opt);
    else wick_graph_backward(m->g, m->loss, update_param, t);
    *loss_out = loss;
    return WICK_OK;
}

/* ---- evaluation -------------------------------------------------------- */

/* Mean loss, predictions and accuracy over d, in batches. */
static wick_status eval_set(wick_mlp *m, const wick_dataset *d, int32_t *pred, double *mean_loss,
                            double *acc) {
    wick_graph *g = m->g;
    int nL = m->c.widths[m->c.layers];
    double loss_sum = 0;
    size_t correct = 0;
    for (size_t i = 0; i < d->n; i += m->max_batch) {
        int rows = (int)(d->n - i < (size_t)m->max_batch ? d->n - i : (size_t)m->max_batch);
        wick_status s = wick_graph_set_batch(g, rows);
        if (s != WICK_OK) return s;
        gather(m, d, NULL, i, rows);
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
    *mean_loss = loss_sum / d->n;
    if (acc) *acc = (double)correct / d->n;
    return WICK_OK;
}

wick_status wick_evaluate(wick_mlp *m, const wick_dataset *d, wick_metrics **out, double *mean_loss) {
    if (d->dim != (size_t)m->c.widths[0])
        return wick_fail(WICK_ESHAPE, "evaluate: data have %zu features, the model takes %d", d->dim, m->c.widths[0]);
    if (d->classes > m->c.widths[m->c.layers])
        return wick_fail(WICK_ESHAPE, "evaluate: %d classes but the model has %d outputs", d->classes,
                         m->c.widths[m->c.layers]);
    int32_t *pred = wick_malloc(d->n * sizeof *pred);
    if (!pred) return wick_fail(WICK_ENOMEM, "evaluate: out of memory");
    double loss;
    wick_status s = eval_set(m, d, pred, &loss, NULL);
    if (s == WICK_OK) s = wick_metrics_compute(d->y, pred, d->n, m->c.widths[m->c.layers], out);
    if (s == WICK_OK && mean_loss) *mean_loss = loss;
    wick_free(pred);
    return s;
}

/* ---- early stopping ---------------------------------------------------- */

static void copy_params(wick_trainer *t, int to_best) {
    size_t off = 0;
    for (int i = 0; i < t->np; i++) {
        size_t n = nn_param_size(t->m, t->param[i]);
        float *v = wick_graph_value(t->m->g, t->param[i]);
        if (to_best) memcpy(t->best + off, v, n * sizeof *v);
        else memcpy(v, t->best + off, n * sizeof *v);
        off += n;
    }
}

/* ---- checkpoints ------------------------------------------------------- */

wick_status wick_trainer_save(wick_trainer *t, const char *path) {
    wick_mlp *m = t->m;
    enum { MAXT = 2 * WICK_MAX_LAYERS * 4 };
    wick_st_tensor *ts = wick_calloc(MAXT, sizeof *ts);
    char (*names)[96] = wick_calloc(MAXT, sizeof *names);
    nn_meta *meta = wick_malloc(sizeof *meta);
    float *scratch = NULL;
    wick_status s = WICK_OK;
    if (!ts || !names || !meta) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", path); goto done; }
    if ((s = nn_param_tensors(m, ts, &scratch)) != WICK_OK) goto done;
    int n = t->np;
    for (int i = 0; i < t->np; i++) {
        for (int k = 0; k < wick_opt_state_count(t->opt, i); k++) {
            const char *sn;
            float *buf = wick_opt_state(t->opt, i, k, &sn);
            snprintf(names[n], sizeof names[n], "optimizer.%s.%s", ts[i].name, sn);
            ts[n] = ts[i];
            ts[n].name = names[n];
            ts[n].data = buf;
            n++;
        }
    }
    if (t->best && t->best_epoch > 0) {
        size_t off = 0;
        for (int i = 0; i < t->np; i++) {
            snprintf(names[n], sizeof names[n], "optimizer.best.%s", ts[i].name);
            ts[n] = ts[i];
            ts[n].name = names[n];
            ts[n].data = t->best + off;
            off += nn_param_size(m, t->param[i]);
            n++;
        }
    }
    nn_model_meta(m, meta);   /* its first key is "format" */
    snprintf(meta->val[0], sizeof meta->val[0], "wick-checkpoint");
    char steps[1024] = "";
    for (int i = 0, o = 0; i < t->np && o < (int)sizeof steps; i++)
        o += snprintf(steps + o, sizeof steps - o, i ? ",%llu" : "%llu",
                      (unsigned long long)wick_opt_steps(t->opt, i));
    nn_meta_setf(meta, "seed", "%llu", (unsigned long long)t->c.seed);
    nn_meta_setf(meta, "shuffle", "%d", t->c.shuffle);
    nn_meta_setf(meta, "batch", "%d", t->c.batch);
    nn_meta_setf(meta, "train_samples", "%zu", t->train->n);
    nn_meta_setf(meta, "step", "%ld", t->step);
    nn_meta_setf(meta, "epoch", "%d", t->epoch);
    nn_meta_setf(meta, "batch_in_epoch", "%ld", t->batch_pos);
    nn_meta_setf(meta, "epoch_loss_sum", "%.17g", t->epoch_loss_sum);
    nn_meta_setf(meta, "epoch_steps", "%ld", t->epoch_steps);
    nn_meta_setf(meta, "first_loss", "%.17g", t->first_loss);
    nn_meta_setf(meta, "best_val", "%.17g", t->best_val);
    nn_meta_setf(meta, "best_epoch", "%d", t->best_epoch);
    nn_meta_setf(meta, "bad_epochs", "%d", t->bad_epochs);
    nn_meta_setf(meta, "sched_lr", "%.17g", t->sched.lr);
    nn_meta_setf(meta, "sched_best", "%.17g", t->sched.best);
    nn_meta_setf(meta, "sched_bad_epochs", "%d", t->sched.bad_epochs);
    nn_meta_set(meta, "optimizer_steps", steps);
    nn_meta_setf(meta, "seconds", "%.17g", t->seconds);
    nn_meta_setf(meta, "samples", "%.17g", t->samples);
    s = nn_write(path, ts, n, meta);
done:
    wick_free(scratch);
    wick_free(ts);
    wick_free(names);
    wick_free(meta);
    return s;
}

/* Reads a number from the checkpoint's metadata. */
static int meta_num(const wick_st_file *f, const char *key, double *out) {
    const char *v = wick_st_meta(f, key);
    if (!v) return 0;
    char *end;
    *out = strtod(v, &end);
    return end != v && *end == 0;
}

wick_status wick_trainer_resume(wick_trainer *t, const char *path) {
    wick_st_file *f;
    wick_status s = wick_st_read(path, &f);
    if (s != WICK_OK) return s;
    if ((s = nn_verify_checksum(f, path)) != WICK_OK) goto done;
    const char *fmt = wick_st_meta(f, "format");
    if (!fmt || strcmp(fmt, "wick-checkpoint") != 0) {
        s = wick_fail(WICK_EFORMAT, "%s: not a wick checkpoint (__metadata__ format is '%s')", path, fmt ? fmt : "");
        goto done;
    }
    static const char *keys[] = {"seed", "shuffle", "batch", "train_samples", "step", "epoch",
                                 "batch_in_epoch", "epoch_loss_sum", "epoch_steps", "first_loss",
                                 "best_val", "best_epoch", "bad_epochs", "sched_lr", "sched_best",
                                 "sched_bad_epochs", "seconds", "samples"};
    double v[WICK_ARRAY_LEN(keys)];
    for (size_t i = 0; i < WICK_ARRAY_LEN(keys); i++)
        if (!meta_num(f, keys[i], &v[i])) {
            s = wick_fail(WICK_EFORMAT, "%s: __metadata__ lacks a number '%s'", path, keys[i]);
            goto done;
        }
    if ((int)v[2] != t->c.batch || (size_t)v[3] != t->train->n) {
        s = wick_fail(WICK_EINVAL, "%s: the checkpoint was made with batch %d on %zu samples, this run has "
                      "batch %d on %zu", path, (int)v[2], (size_t)v[3], t->c.batch, t->train->n);
        goto done;
    }
    /* weights, optimiser state, best weights: all checked before any copy */
    if ((s = nn_load_params(t->m, f, path, "")) != WICK_OK) goto done;
    for (int i = 0; i < t->np && s == WICK_OK; i++)
        for (int k = 0; k < wick_opt_state_count(t->opt, i); k++) {
            const char *sn;
            float *buf = wick_opt_state(t->opt, i, k, &sn);
            char name[128];
            snprintf(name, sizeof name, "optimizer.%s.%s", wick_graph_name(t->m->g, t->param[i]), sn);
            const wick_st_tensor *ts = wick_st_find(f, name);
            size_t n = nn_param_size(t->m, t->param[i]), have = 1;
            if (ts) for (int d = 0; d < ts->ndim; d++) have *= (size_t)ts->shape[d];
            if (!ts || ts->dtype != WICK_DT_F32 || have != n) {
                s = wick_fail(WICK_EFORMAT, "%s: optimiser state '%s' missing or of the wrong shape "
                              "(was the checkpoint made with another optimiser?)", path, name);
                break;
            }
            memcpy(buf, ts->data, n * sizeof *buf);
        }
    if (s != WICK_OK) goto done;
    const char *steps = wick_st_meta(f, "optimizer_steps");
    for (int i = 0; i < t->np; i++) {
        char *end;
        unsigned long long k = steps ? strtoull(steps, &end, 10) : 0;
        if (!steps || end == steps) { s = wick_fail(WICK_EFORMAT, "%s: bad optimizer_steps", path); goto done; }
        wick_opt_set_steps(t->opt, i, k);
        steps = *end == ',' ? end + 1 : end;
    }
    t->c.seed = (uint64_t)strtoull(wick_st_meta(f, "seed"), NULL, 10);
    t->c.shuffle = (int)v[1];
    t->step = (long)v[4];
    t->epoch = (int)v[5];
    t->batch_pos = (long)v[6];
    t->epoch_loss_sum = v[7];
    t->epoch_steps = (long)v[8];
    t->first_loss = v[9];
    t->best_val = v[10];
    t->best_epoch = (int)v[11];
    t->bad_epochs = (int)v[12];
    t->sched.lr = v[13];
    t->sched.best = v[14];
    t->sched.bad_epochs = (int)v[15];
    t->seconds = v[16];
    t->samples = v[17];
    if (t->best && t->best_epoch > 0) {
        /* the best weights go into t->best: load them through the model, then swap back */
        size_t tot = params_total(t);
        float *cur = wick_malloc(tot * sizeof *cur);
        if (!cur) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", path); goto done; }
        float *keep = t->best;
        t->best = cur;
        copy_params(t, 1);            /* cur = current weights */
        s = nn_load_params(t->m, f, path, "optimizer.best.");
        t->best = keep;
        if (s == WICK_OK) copy_params(t, 1);   /* best = loaded best */
        t->best = cur;
        copy_params(t, 0);            /* weights = cur */
        t->best = keep;
        wick_free(cur);
    }
    t->perm_epoch = -1;
done:
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
    if (t->c.on_epoch) t->c.on_epoch(t->c.user, &r);
    return WICK_OK;
}

wick_status wick_trainer_run(wick_trainer *t) {
    /* Denormals cost a hundred cycles each and change nothing that training
     * can see: flush them, as oneDNN and PyTorch do. */
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
    long nb = batches_per_epoch(t);
    wick_status s = WICK_OK;
    while (t->epoch < t->c.epochs && !t->early_stopped) {
        t->lr = t->c.sched.kind == WICK_SCHED_PLATEAU ? t->sched.lr : wick_sched_lr(&t->sched, t->epoch);
        ensure_perm(t);
        double t0 = now(), t_epoch = 0;
        while (t->batch_pos < nb) {
            if (t->c.stop && *t->c.stop) {
                t->seconds += now() - t0;
                if (t->c.checkpoint && (s = wick_trainer_save(t, t->c.checkpoint)) != WICK_OK) return s;
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
                return s;
            }
            t->step++;
            t->batch_pos++;
            t->epoch_loss_sum += loss;
            t->epoch_steps++;
            t->samples += rows;
            if (t->c.on_step) t->c.on_step(t->c.user, t->step, t->epoch + 1, (int)t->batch_pos, (int)nb, loss);
            if (t->c.checkpoint && t->c.checkpoint_steps > 0 && t->step % t->c.checkpoint_steps == 0) {
                double tc = now();
                if ((s = wick_trainer_save(t, t->c.checkpoint)) != WICK_OK) return s;
                t0 += now() - tc;   /* checkpoints are not training time */
            }
        }
        t_epoch = now() - t0;
        t->seconds += t_epoch;
        if (t->batch_pos < nb) break;   /* max_steps reached mid-epoch */
        if ((s = end_epoch(t, t_epoch)) != WICK_OK) return s;
        if (t->c.checkpoint && (s = wick_trainer_save(t, t->c.checkpoint)) != WICK_OK) return s;
    }
    /* With early stopping on, a finished run keeps the weights of the best
     * validation loss (when the last epoch was not the best). */
    int finished = t->early_stopped || t->epoch >= t->c.epochs;
    if (finished && t->best && t->best_epoch > 0 && t->bad_epochs > 0) copy_params(t, 0);
    if (t->c.checkpoint && (s = wick_trainer_save(t, t->c.checkpoint)) != WICK_OK) return s;
    return WICK_OK;
}
