/* allreduce.c — time MPI_Allreduce (in place, MPI_SUM over doubles, as
 * src/dist/mpi.c sums gradients) for message sizes from 8 bytes to 32 MiB.
 * Prints "ranks bytes seconds" per size (the median over repetitions of the
 * slowest rank's time).  bench/mpi_scaling.sh builds and runs it:
 *   mpicc -O2 bench/mpi/allreduce.c -o allreduce && mpirun -np 4 ./allreduce */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    size_t maxn = (argc > 1 ? (size_t)atol(argv[1]) : 32u << 20) / sizeof(double);
    double *x = calloc(maxn, sizeof *x);
    for (size_t n = 1; n <= maxn; n *= 4) {
        int reps = n < 4096 ? 200 : n < (1u << 18) ? 40 : 8;
        double t[200];
        for (int r = -2; r < reps; r++) {   /* two warm-ups */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            double dt = MPI_Wtime() - t0, worst;
            MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r >= 0) t[r] = worst;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        if (rank == 0) printf("%d %zu %.9g\n", ranks, n * sizeof *x, t[reps / 2]);
    }
    free(x);
    MPI_Finalize();
    return 0;
}
