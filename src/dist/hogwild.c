/* hogwild.c — Hogwild: T threads of asynchronous SGD on one set of shared
 * weights, without locks (Niu, Recht, Re and Wright 2011; Goodfellow et al.,
 * Deep Learning, sec. 12.1.3).  Each thread has its own model (activations,
 * gradients, optimiser state) and its own batches: batches j, j + T, j + 2T, ...
 * of the epoch's order (the order one process would take).  A step copies the
 * shared weights as they are (other threads may be writing them), computes a
 * gradient on its batch with one core, and writes its update straight into
 * the shared weights.  Nothing waits for anything within an epoch; reads and
 * writes race by design (an update lost or mixed now and then is the price
 * Hogwild pays for no synchronisation).  Not reproducible from run to run:
 * which thread writes first depends on timing.  docs/distributed.md. */
#include "dist/dist.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_SHUFFLE 1000000u   /* the trainer's: the same epoch orders */
#define MAXP 1024

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
    wick_mlp *m;
    wick_opt *opt;
    wick_node p[MAXP];
    double loss_sum;
    long steps;
} worker;

/* Rows idx[0..rows) of d into the model's input and labels (one-hot targets for MSE). */
static void fill(wick_mlp *m, const wick_dataset *d, const uint32_t *idx, int rows) {
    wick_graph *g = wick_mlp_graph(m);
    float *x = wick_graph_value(g, wick_mlp_input(m));
    for (int r = 0; r < rows; r++) memcpy(x + (size_t)r * d->dim, d->x + (size_t)idx[r] * d->dim, d->dim * sizeof *x);
    if (wick_mlp_labels(m) >= 0) {
        int32_t *y = wick_graph_value(g, wick_mlp_labels(m));
        for (int r = 0; r < rows; r++) y[r] = d->y[idx[r]];
    } else {
        int k = wick_mlp_outputs(m);
        float *y = wick_graph_value(g, wick_mlp_target(m));
        memset(y, 0, (size_t)rows * k * sizeof *y);
        for (int r = 0; r < rows; r++) y[(size_t)r * k + d->y[idx[r]]] = 1;
    }
}

wick_status wick_hogwild_train(wick_mlp *m, const wick_dataset *train, const wick_dataset *val,
                               const wick_train_config *c, int threads,
                               wick_status (*new_model)(void *user, wick_mlp **out), void *user,
                               wick_hogwild_totals *tot) {
    memset(tot, 0, sizeof *tot);
    wick_graph *g = wick_mlp_graph(m);
    wick_node shared_p[MAXP], st[4];
    int np = wick_graph_params(g, shared_p, MAXP);
    if (np > MAXP) return wick_dist_error(WICK_EINVAL, "hogwild: more than %d parameter tensors", MAXP);
    if (wick_graph_states(g, st, 4) > 0)
        return wick_dist_error(WICK_EINVAL, "hogwild: batch norm's running statistics would be shared state too; "
                              "train a net without batch norm");
    if (threads < 1 || threads > 256)
        return wick_dist_error(WICK_EINVAL, "hogwild: %d threads outside [1, 256]", threads);
    if (c->batch < 1 || !train || train->n == 0 || train->n > UINT32_MAX)
        return wick_dist_error(WICK_EINVAL, "hogwild: no training data or a batch < 1");
    size_t sizes[MAXP];
    float *shared[MAXP];
    for (int i = 0; i < np; i++) {
        sizes[i] = (size_t)wick_graph_rows(g, shared_p[i]) * wick_graph_cols(g, shared_p[i]);
        shared[i] = wick_graph_value(g, shared_p[i]);
    }
    worker *w = calloc((size_t)threads, sizeof *w);
    uint32_t *perm = malloc(train->n * sizeof *perm);
    wick_status s = w && perm ? WICK_OK : wick_dist_error(WICK_ENOMEM, "hogwild: out of memory");
    for (int j = 0; j < threads && s == WICK_OK; j++) {
        if ((s = new_model(user, &w[j].m)) != WICK_OK) break;
        wick_graph *gj = wick_mlp_graph(w[j].m);
        if (wick_graph_params(gj, w[j].p, MAXP) != np) {
            s = wick_dist_error(WICK_EINVAL, "hogwild: a thread's model has other parameters");
            break;
        }
        wick_graph_set_training(gj, 1);
        wick_graph_set_seed(gj, c->seed ^ (uint64_t)j << 48);   /* dropout: each thread its own masks */
        s = wick_opt_new(&w[j].opt, &c->opt, np, sizes, NULL);
    }
    wick_sched sched;
    if (s == WICK_OK) s = wick_sched_init(&sched, &c->sched);
    long nb = (long)((train->n + c->batch - 1) / c->batch), step = 0;
    volatile int bad = 0;   /* a thread saw a non-finite loss */
    double first_loss = NAN, t_all = 0;
    int saved_levels = omp_get_max_active_levels();
    omp_set_max_active_levels(1);   /* each thread's model runs on its one core */
    for (int e = 0; e < c->epochs && s == WICK_OK; e++) {
        double lr = c->sched.kind == WICK_SCHED_PLATEAU ? sched.lr : wick_sched_lr(&sched, e);
        if (c->shuffle) wick_permutation(perm, train->n, c->seed, STREAM_SHUFFLE + (uint64_t)e);
        else for (size_t i = 0; i < train->n; i++) perm[i] = (uint32_t)i;
        long epoch_steps = nb;
        if (c->max_steps > 0 && c->max_steps - step < epoch_steps) epoch_steps = c->max_steps - step;
        double t0 = now();
        #pragma omp parallel num_threads(threads)
        {
            int j = omp_get_thread_num();
            worker *me = &w[j];
            wick_graph *gj = wick_mlp_graph(me->m);
            wick_node loss = wick_mlp_loss(me->m);
            me->loss_sum = 0;
            me->steps = 0;
            for (long b = j; b < epoch_steps && !bad && !(c->stop && *c->stop); b += threads) {
                size_t first = (size_t)b * c->batch;
                int rows = (int)(train->n - first < (size_t)c->batch ? train->n - first : (size_t)c->batch);
                for (int i = 0; i < np; i++) memcpy(wick_graph_value(gj, me->p[i]), shared[i], sizes[i] * sizeof(float));
                wick_graph_set_batch(gj, rows);
                fill(me->m, train, perm + first, rows);
                wick_graph_forward(gj);
                double l = *(float *)wick_graph_value(gj, loss);
                if (!isfinite(l)) { bad = 1; break; }
                wick_graph_backward(gj, loss, NULL, NULL);
                for (int i = 0; i < np; i++) wick_opt_update(me->opt, i, shared[i], wick_graph_grad(gj, me->p[i]), lr);
                me->loss_sum += l;
                me->steps++;
                if (c->on_step) {
                    #pragma omp critical(hogwild_step)
                    c->on_step(c->user, step + b + 1, e + 1, (int)(b + 1), (int)nb, l);
                }
            }
        }
        double secs = now() - t0;
        t_all += secs;
        double loss_sum = 0;
        long done = 0;
        for (int j = 0; j < threads; j++) {
            loss_sum += w[j].loss_sum;
            done += w[j].steps;
        }
        step += done;
        tot->steps = step;
        tot->seconds = t_all;
        tot->samples += done == nb ? (double)train->n : (double)done * c->batch;
        if (bad) {
            s = wick_dist_error(WICK_EDIVERGED, "hogwild: diverged in epoch %d: a thread's loss is not finite",
                                e + 1);
            break;
        }
        if (isnan(first_loss) && done) first_loss = loss_sum / done;
        if (done < nb) break;   /* max_steps or a stop request */
        wick_epoch_report r = {.epoch = e + 1, .lr = lr, .seconds = secs, .train_loss = loss_sum / done,
                               .val_loss = NAN, .val_acc = NAN, .samples_per_s = secs > 0 ? train->n / secs : 0};
        if (val && val->n) {
            wick_metrics *mt = NULL;
            if ((s = wick_evaluate(m, val, &mt, &r.val_loss)) != WICK_OK) break;
            r.val_acc = mt->accuracy;
            wick_metrics_free(mt);
            wick_sched_observe(&sched, r.val_loss);
        }
        if (c->on_epoch) c->on_epoch(c->user, &r);
    }
    omp_set_max_active_levels(saved_levels);
    if (s == WICK_OK && c->stop && *c->stop)
        s = wick_dist_error(WICK_EINTERRUPTED, "hogwild: interrupted at step %ld", step);
    for (int j = 0; w && j < threads; j++) {
        wick_opt_free(w[j].opt);
        wick_mlp_free(w[j].m);
    }
    free(w);
    free(perm);
    return s;
}
