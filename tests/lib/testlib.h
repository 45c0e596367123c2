/* testlib.h — helpers several tests share (tests/lib/testlib.c; the Makefile
 * links every .c file in tests/lib into each test binary). */
#ifndef WICK_TESTLIB_H
#define WICK_TESTLIB_H

#include "wick.h"

/* The activation NAME (wick_act_parse's syntax, e.g. "leaky_relu:0.1");
 * a name it refuses ends the test program with exit code 2: a typo in a test
 * is the test's bug. */
wick_act chk_act(const char *name);

/* Solves A X = B (A n x n, B and X n x m, row-major; A and B are copied) by
 * Gaussian elimination with partial pivoting: an independent reference for
 * the library's Cholesky solves.  Exits with code 2 when out of memory. */
void chk_dense_solve(const double *A, const double *B, int n, int m, double *X);

#endif
