/* gram.c — the kernel Grams' speed (issues 7, 20): NNGP and NTK Gram
 * matrices of N Fashion-MNIST training images through depth L at
 * criticality, ReLU and tanh, by wick_kgram (src/experiments/gram.c: the
 * input Gram by dsyrk, then one map of the input angle per entry; inputs
 * normalised to one norm).  Reports seconds (the map's build included), the
 * cost per entry per layer, and the largest difference from the theory
 * engine's layer-by-layer flow with direct quadrature per entry on the first
 * --check inputs.
 *
 *   build/bench/gram [--n 10000] [--depth 10] [--check 300] [--json] [--dump FILE]
 *
 * --old: also time the theory engine's tabulated flow (wick_gram_flow_last).
 * --dump FILE: the ReLU K and Theta of the first 64 inputs (after the same
 * preprocessing), 64 x 64 doubles each, with the learning rates set to
 * lambda_b = C_b, lambda_W = C_W, where Theta is neural-tangents' NTK in its
 * NTK parameterisation (docs/theory.md §7): bench/nt_gram.py checks its row with it. */
#include <wick.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "gram: %s: %s\n", what, wick_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    size_t n = 10000, check = 48;
    int depth = 10, json = 0, old = 0;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--depth") && i + 1 < argc) depth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--check") && i + 1 < argc) check = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--old")) old = 1;
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else { fprintf(stderr, "usage: gram [--n N] [--depth L] [--check M] [--json] [--old] [--dump FILE]\n"); return 2; }
    }
    wick_dataset *d;
    if (wick_dataset_load_idx_dir("/usr/share/datasets/fashion-mnist", "train", 10, &d)) die("data");
    if (n > d->n) n = d->n;
    if (check > n) check = n;
    size_t n0 = d->dim;
    double *x = malloc(n * n0 * sizeof *x), *G0 = old ? malloc(n * n * sizeof *G0) : NULL;
    double *K = malloc(n * n * sizeof *K), *T = malloc(n * n * sizeof *T);
    if (!x || (old && !G0) || !K || !T) { fprintf(stderr, "gram: out of memory\n"); return 1; }
    for (size_t i = 0; i < n * n0; i++) x[i] = d->x[i];
    if (wick_kernel_normalise(x, n, n0, n)) die("normalise");
    /* the outputs' pages touched before the clock: the first act would
       otherwise pay 1.6 GB of page faults at n = 10,000 and the second not */
    memset(K, 0, n * n * sizeof *K);
    memset(T, 0, n * n * sizeof *T);
    if (old && wick_input_gram(x, n, n0, G0)) die("input Gram");
    const char *acts[2] = {"relu", "tanh"};
    if (json) printf("[");
    for (int a = 0; a < 2; a++) {
        wick_act act;
        wick_act_parse(acts[a], &act);
        wick_theory_config c = wick_theory_defaults(act, depth);
        double cb, cw;
        if (wick_critical_init(act, &cb, &cw, NULL)) die("critical");
        c.cb = cb;
        c.cw = cw;
        c.tabulate = 1;
        double t0 = now(), c0 = cpu();
        wick_kgram *g;
        if (wick_kgram_new(&c, 1.0, &g)) die("kernel map");
        if (wick_kgram_sym(g, x, n, n0, K, T)) die("kernel Gram");
        double secs = now() - t0, cpus = cpu() - c0;
        wick_kgram_stats gs;
        wick_kgram_info(g, &gs);
        wick_kgram_free(g);
        double old_secs = NAN;
        if (old) {
            double *K2 = malloc(n * n * sizeof *K2), *T2 = malloc(n * n * sizeof *T2);
            if (!K2 || !T2) { fprintf(stderr, "gram: out of memory\n"); return 1; }
            double t2 = now();
            if (wick_gram_flow_last(&c, G0, n, K2, T2)) die("Gram flow");
            old_secs = now() - t2;
            free(K2); free(T2);
        }
        double entries = (double)n * (n + 1) / 2 * depth;   /* symmetric: the distinct entries */
        /* accuracy: the first `check` inputs, direct quadrature per entry */
        size_t cm = check > 64 ? check : 64;   /* the dump's 64 too */
        double *Gs = malloc(cm * cm * sizeof *Gs), *Ks = malloc(cm * cm * sizeof *Ks);
        double *Ts = malloc(cm * cm * sizeof *Ts);
        if (check && wick_input_gram(x, check, n0, Gs)) die("input Gram");
        c.tabulate = 0;
        double t1 = now();
        if (check && wick_gram_flow_last(&c, Gs, check, Ks, Ts)) die("direct Gram flow");
        double direct = now() - t1;
        double errK = 0, errT = 0, scaleK = 0, scaleT = 0;
        for (size_t i = 0; i < check; i++)
            for (size_t j = 0; j < check; j++) {
                errK = fmax(errK, fabs(K[i * n + j] - Ks[i * check + j]));
                errT = fmax(errT, fabs(T[i * n + j] - Ts[i * check + j]));
                scaleK = fmax(scaleK, fabs(Ks[i * check + j]));
                scaleT = fmax(scaleT, fabs(Ts[i * check + j]));
            }
        double direct_per = check ? direct / ((double)check * (check + 1) / 2 * depth) : NAN;
        if (json)
            printf("%s{\"act\":\"%s\",\"n\":%zu,\"depth\":%d,\"threads\":%d,\"seconds\":%.3f,"
                   "\"cpu_seconds\":%.3f,\"map_seconds\":%.3f,\"map_pieces\":%d,\"old_seconds\":%.3f,"
                   "\"ns_per_entry_layer\":%.2f,\"direct_ns_per_entry_layer\":%.1f,"
                   "\"max_rel_err_K\":%.3g,\"max_rel_err_ntk\":%.3g}",
                   a ? "," : "", acts[a], n, depth, omp_get_max_threads(), secs, cpus, gs.build_seconds,
                   gs.pieces, old_secs, 1e9 * secs / entries, 1e9 * direct_per, errK / scaleK,
                   errT / scaleT);
        else
        {
            printf("%-5s n = %zu, depth %d, %d threads: NNGP + NTK in %.2f s (%.2f s of CPU; map %.3f s, %d pieces) = "
                   "%.2f ns per entry per layer (direct quadrature: %.0f ns); vs the layer-by-layer "
                   "flow with direct quadrature on %zu inputs: max error %.2g (K), %.2g (NTK), "
                   "relative to the largest entry\n",
                   acts[a], n, depth, omp_get_max_threads(), secs, cpus, gs.build_seconds, gs.pieces,
                   1e9 * secs / entries, 1e9 * direct_per, check, errK / scaleK, errT / scaleT);
            if (old)
                printf("      the theory engine's tabulated flow (wick_gram_flow_last): %.2f s, %.1fx\n",
                       old_secs, old_secs / secs);
        }
        if (dump && a == 0 && n >= 64) {   /* ReLU, first 64 inputs, NT's parameterisation */
            const size_t m = 64;
            c.lambda_b = c.cb;
            c.lambda_w = c.cw;
            if (wick_kgram_new(&c, 1.0, &g) || wick_kgram_sym(g, x, m, n0, Ks, Ts)) die("dump");
            wick_kgram_free(g);
            FILE *f = fopen(dump, "wb");
            if (!f || fwrite(Ks, sizeof *Ks, m * m, f) != m * m || fwrite(Ts, sizeof *Ts, m * m, f) != m * m ||
                fclose(f)) {
                fprintf(stderr, "gram: cannot write %s\n", dump);
                return 1;
            }
        }
        free(Gs); free(Ks); free(Ts);
    }
    if (json) printf("]\n");
    free(x); free(G0); free(K); free(T);
    wick_dataset_free(d);
    return 0;
}
