/* cnn_prof.c — where a training step of a spec's network goes, op by op,
 * through the graph executor itself (not a re-implementation, as cnn_step.c
 * is): each node's forward and backward timed alone, in the order
 * wick_graph_forward and wick_graph_backward run them, plus the SGD update.
 * The data are N(0,1) images and random labels.
 *
 *   build/bench/cnn_prof [--arch SPEC] [--batch B] [--steps N] [--threads T]
 *
 * WICK_GRAPH_CONV=general takes the convolutions off their backend plans.
 * Prints one line per op kind and direction: median ms per step over the
 * steps (after 3 warmup steps) and its share of the median step. */
#include "graph/graph_internal.h"
#include "wick.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CNN "input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm," \
            "relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"

/* WICK_PROF_CPU=1: the process's CPU time instead of the wall clock, so that
 * on a loaded machine a 1-thread profile counts the work, not the waiting.
 * WICK_PROF_CPU=2: the calling thread's (thread 0's) CPU time alone: with
 * several threads waiting passively (OMP_WAIT_POLICY=passive), an op whose
 * work is shared evenly shows 1/T of its process CPU time here, a serial one
 * all of it, so the ratio to the 1-thread profile says how each op scales
 * without a quiet machine. */
static double now(void) {
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("WICK_PROF_CPU") ? atoi(getenv("WICK_PROF_CPU")) : 0;
    struct timespec t;
    clock_gettime(cpu == 2 ? CLOCK_THREAD_CPUTIME_ID : cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static const char *op_name(const wick_graph *g, const node *nd) {
    static char buf[64];
    switch (nd->op) {
    case OP_CONV2D:
        snprintf(buf, sizeof buf, "conv %dx%dx%d->%d", g->nodes[nd->in[0]].C, g->nodes[nd->in[0]].H,
                 g->nodes[nd->in[0]].W, nd->C);
        return buf;
    case OP_BATCHNORM: snprintf(buf, sizeof buf, "batchnorm %dx%dx%d", nd->C, nd->H, nd->W); return buf;
    case OP_ACT: snprintf(buf, sizeof buf, "act [%d]", nd->cols); return buf;
    case OP_MAXPOOL2D: snprintf(buf, sizeof buf, "maxpool %dx%dx%d", nd->C, nd->H, nd->W); return buf;
    case OP_DROPOUT: snprintf(buf, sizeof buf, "dropout [%d]", nd->cols); return buf;
    case OP_DENSE: snprintf(buf, sizeof buf, "dense ->%d", nd->cols); return buf;
    case OP_XENT: return "cross-entropy";
    case OP_VIEW: return "view";
    default: snprintf(buf, sizeof buf, "op %d", (int)nd->op); return buf;
    }
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *arch = CNN;
    int B = 128, steps = 20, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else { fprintf(stderr, "cnn_prof: unknown option %s\n", argv[i]); return 2; }
    }
    wick_set_threads(threads);
    wick_spec *spec;
    wick_net *net;
    wick_mlp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.init = WICK_INIT_HE;
    if (wick_spec_parse(arch, &spec) || wick_net_new(&net, spec, &cfg, WICK_DT_F32, B)) {
        fprintf(stderr, "cnn_prof: %s\n", wick_last_error());
        return 1;
    }
    wick_mlp_init(net, 1);
    wick_graph *g = wick_mlp_graph(net);
    int n_in = wick_mlp_inputs(net), ncls = wick_mlp_outputs(net);
    float *x = wick_graph_value(g, wick_mlp_input(net));
    int32_t *lab = wick_graph_value(g, wick_mlp_labels(net));
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)B * n_in; i++) {
        double u = 0;   /* Irwin-Hall: near enough N(0,1) for timing */
        for (int k = 0; k < 4; k++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; u += (s >> 11) * 0x1p-53; }
        x[i] = (float)((u - 2) * 1.7320508);
    }
    for (int r = 0; r < B; r++) lab[r] = r % ncls;
    wick_node loss = wick_mlp_loss(net);
    int n = g->n, total = steps + 3;
    /* t[(step * n + node) * 2 + dir] */
    double *t = calloc((size_t)total * n * 2 + total * 2, sizeof *t), *tstep = t + (size_t)total * n * 2;
    double *tsgd = tstep + total;
    wick_node params[256];
    int np = wick_graph_params(g, params, 256);
    /* as wick_graph_forward: the whole graph runs, so a batch norm fused
       with its pool computes the pool (graph.c wick_graph_forward_to) */
    g->fwd_end = g->n - 1;
    for (int st = 0; st < total; st++) {
        double s0 = now();
        for (int i = 0; i < n; i++) {
            node *nd = &g->nodes[i];
            if (op_is_leaf(nd->op)) continue;
            double a = now();
            op_forward(g, nd);
            t[((size_t)st * n + i) * 2] = now() - a;
        }
        g->step++;
        for (int i = 0; i < n; i++) g->nodes[i].grad_begun = 0;
        ((float *)g->nodes[loss].grad)[0] = 1;
        g->nodes[loss].grad_begun = 1;
        for (int i = loss; i >= 0; i--) {
            node *nd = &g->nodes[i];
            if (!nd->needs_grad || op_is_leaf(nd->op)) continue;
            double a = now();
            op_backward(g, nd);
            t[((size_t)st * n + i) * 2 + 1] = now() - a;
        }
        double a = now();
        for (int k = 0; k < np; k++) {   /* plain SGD, lr 0.01 */
            float *w = wick_graph_value(g, params[k]), *dw = wick_graph_grad(g, params[k]);
            size_t m = (size_t)wick_graph_rows(g, params[k]) * wick_graph_cols(g, params[k]);
            for (size_t j = 0; j < m; j++) w[j] -= 0.01f * dw[j];
        }
        tsgd[st] = now() - a;
        tstep[st] = now() - s0;
    }
    double *col = malloc(total * sizeof *col);
    for (int k = 0; k < steps; k++) col[k] = tstep[k + 3];
    qsort(col, steps, sizeof *col, cmpd);
    double med = col[steps / 2];
    printf("# %s\n# batch %d, %d threads, conv path %s, %d steps: median step %.2f ms (%.0f samples/s); "
           "the first step %.2f ms\n", arch, B, threads, g->conv_general ? "general" : "plans", steps, 1e3 * med,
           B / med, 1e3 * tstep[0]);
    printf("%-28s %-4s %9s %7s\n", "node", "dir", "ms", "share");
    double sum = 0;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 2; d++) {
            node *nd = &g->nodes[i];
            if (op_is_leaf(nd->op) || (d && !nd->needs_grad)) continue;
            for (int k = 0; k < steps; k++) col[k] = t[((size_t)(k + 3) * n + i) * 2 + d];
            qsort(col, steps, sizeof *col, cmpd);
            double m = col[steps / 2];
            sum += m;
            if (m < 5e-6) continue;
            printf("%-28s %-4s %9.3f %6.1f%%\n", op_name(g, nd), d ? "bwd" : "fwd", 1e3 * m, 100 * m / med);
        }
    for (int k = 0; k < steps; k++) col[k] = tsgd[k + 3];
    qsort(col, steps, sizeof *col, cmpd);
    printf("%-28s %-4s %9.3f %6.1f%%\n", "sgd", "", 1e3 * col[steps / 2], 100 * col[steps / 2] / med);
    printf("%-28s %-4s %9.3f %6.1f%%\n", "(sum of medians)", "", 1e3 * (sum + col[steps / 2]),
           100 * (sum + col[steps / 2]) / med);
    free(col);
    free(t);
    wick_mlp_free(net);
    wick_spec_free(spec);
    return 0;
}
