/* peak.c — this machine's fp32 FMA throughput, the ceiling every wick speed
 * figure is divided by (issue 7).  The loop is in fma_peak.h: 12 independent
 * FMA chains per thread of the widest vectors the CPU has (zmm with
 * AVX-512, else ymm), enough for two FMA pipes.  The best of
 * several repetitions is reported, because the cores are shared.
 *
 *   build/bench/peak [--json] [--reps N] [--ms T]
 * prints GFLOP/s on 1 thread and on all (omp_get_num_procs()) threads; on a
 * CPU with AVX512-BF16 also the bf16 dot product's (fma_peak.h, bf16_peak). */
#include "fma_peak.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int json = 0, reps = 7;
    double ms = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--json] [--reps N] [--ms T]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || ms <= 0) { fprintf(stderr, "peak: --reps and --ms must be positive\n"); return 2; }
    double g1, gn;
    int nt;
    fma_peak(reps, ms, &g1, &gn, &nt);
    double b1, bn;
    bf16_peak(reps, ms, &b1, &bn);
    if (json)
        printf("{\"peak_gflops_1\": %.1f, \"peak_gflops_all\": %.1f, \"threads_all\": %d, "
               "\"chains\": %d, \"vector_bits\": %d, \"reps\": %d, \"bf16_peak_gflops_1\": %.1f, "
               "\"bf16_peak_gflops_all\": %.1f}\n", g1, gn, nt, NACC, 32 * fma_lanes(), reps, b1, bn);
    else {
        printf("fp32 FMA peak (%d %s chains, best of %d): 1 thread %.1f GFLOP/s, "
               "%d threads %.1f GFLOP/s\n", NACC, fma_lanes() == 16 ? "zmm" : "ymm", reps, g1, nt, gn);
        if (b1 > 0)
            printf("bf16 dot-product peak (%d vdpbf16ps chains): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n",
                   NACC_BF16, b1, nt, bn);
    }
    return 0;
}
