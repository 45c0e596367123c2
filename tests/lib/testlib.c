/* testlib.c — helpers several tests share (testlib.h). */
#include "lib/testlib.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

wick_act chk_act(const char *name) {
    wick_act a;
    if (wick_act_parse(name, &a)) {
        fprintf(stderr, "bad activation %s in a test: %s\n", name, wick_last_error());
        exit(2);
    }
    return a;
}

void chk_dense_solve(const double *A0, const double *B0, int n, int m, double *X) {
    double *A = malloc(sizeof(double) * (size_t)n * n), *B = malloc(sizeof(double) * (size_t)n * m);
    if (!A || !B) { fprintf(stderr, "chk_dense_solve: out of memory\n"); exit(2); }
    memcpy(A, A0, sizeof(double) * (size_t)n * n);
    memcpy(B, B0, sizeof(double) * (size_t)n * m);
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++) if (fabs(A[i * n + k]) > fabs(A[p * n + k])) p = i;
        for (int j = 0; j < n; j++) { double t = A[k * n + j]; A[k * n + j] = A[p * n + j]; A[p * n + j] = t; }
        for (int j = 0; j < m; j++) { double t = B[k * m + j]; B[k * m + j] = B[p * m + j]; B[p * m + j] = t; }
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (int j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
            for (int j = 0; j < m; j++) B[i * m + j] -= f * B[k * m + j];
        }
    }
    for (int i = n - 1; i >= 0; i--)
        for (int j = 0; j < m; j++) {
            double s = B[i * m + j];
            for (int c = i + 1; c < n; c++) s -= A[i * n + c] * X[c * m + j];
            X[i * m + j] = s / A[i * n + i];
        }
    free(A);
    free(B);
}
