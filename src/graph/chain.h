/* chain.h — the executor's fast path for a chain of dense ops ending in
 * cross-entropy: one parallel region per training step (see chain.c). */
#ifndef WICK_GRAPH_CHAIN_H
#define WICK_GRAPH_CHAIN_H

#include "wick.h"

#define WICK_CHAIN_MAX WICK_MAX_LAYERS

typedef struct wick_chain wick_chain;

/* WICK_EUNSUPPORTED when the graph is not such a chain (the caller then uses
 * the general executor).  bf16: every product with bf16 operands and float32
 * sums (backend/kernel_bf16.c; WICK_EUNSUPPORTED without AVX512-BF16); the
 * weights, their gradients, the optimiser and the loss stay float32. */
wick_status wick_chain_new(wick_chain **out, wick_graph *g, wick_node loss, int bf16);
void wick_chain_free(wick_chain *c);

/* Applies the optimiser to elements [lo, hi) of parameter p, whose gradient
 * in those elements is final: value is the whole tensor, grad[0 .. hi - lo)
 * the gradient of those elements only (a weight's is never stored whole: it
 * is computed 48 to 128 rows at a time into a scratch block that stays in
 * L2); called
 * from several threads at once, on disjoint ranges.  It must not take the
 * value through wick_graph_value (that would mark the weights as written
 * from outside and force a repack every step). */
typedef void (*wick_chain_update_fn)(void *user, wick_node p, float *value, const float *grad,
                                     size_t lo, size_t hi);

/* One step on the graph's current batch: gathers rows idx[0..batch) (or
 * first.. when idx is NULL) of X (rows of the input's width) and labels Y,
 * forward, loss; then, only if the loss is finite and <= max_loss, backward
 * with every weight updated through `update`.  Returns the loss. */
double wick_chain_step(wick_chain *c, const float *X, const int32_t *Y, const uint32_t *idx,
                       size_t first, double max_loss, wick_chain_update_fn update, void *user);

/* How many items, in this process, were committed by a thread other than
 * the one that claimed them (chain.c's redo; for the tests). */
long wick_chain_redone(void);
/* How many times, in this process, a worker that found its redo step ended
 * joined the step under way (chain.c's step_redo; for the tests). */
long wick_chain_rejoined(void);
/* What became of the items a redo step's threads computed, in this process:
 * per thread kind ([0]: thread 0, [1]: the workers) and fate, how many and,
 * with WICK_REDO_PROF=1 set while they ran, the seconds of their thread's
 * CPU time (from the item's start to its commit's compare-and-swap, or to
 * where it stopped).  Lost: computed to its end, another thread committed
 * it first; abandoned: stopped early on seeing that (WICK_REDO_ABANDON). */
enum { WICK_CHAIN_COMMITTED, WICK_CHAIN_LOST, WICK_CHAIN_ABANDONED, WICK_CHAIN_FATES };
typedef struct {
    long items[2][WICK_CHAIN_FATES];
    double cpu[2][WICK_CHAIN_FATES];
} wick_chain_redo_fates;
wick_chain_redo_fates wick_chain_fates(void);
/* How many times a worker slept WICK_TEST_STALL_US in an item (the tests'
 * stand-in for a preemption: the first item a worker takes on every fourth
 * step sleeps that long in its middle). */
long wick_chain_test_stalls(void);
/* The seconds thread 0 spent waiting for those stalls to begin (the
 * worker's wake-up: scaffolding, not the step's cost). */
double wick_chain_test_stall_wait(void);

/* The last step of any chain in this process, for bench/loop: the threads
 * that ran it, whether it ran with redo, whether it repacked the weights
 * first, and its wall-clock seconds from the pool's start to its return. */
typedef struct {
    int team, redo, repack;
    double seconds;
} wick_chain_last;
wick_chain_last wick_chain_last_step(void);

/* Where a step's time goes, for bench/steptime: with -DWICK_CHAIN_PROFILE
 * each thread adds up the seconds of each phase (wall clock, per layer for
 * the backward phases) over every step of every chain; without it nothing
 * is timed and the counts stay zero.  Not for concurrent chains. */
enum {
    WICK_CHAIN_PH_FORWARD,     /* the forward item(s), loss and dz of the logits */
    WICK_CHAIN_PH_WAIT_LOSS,   /* at the barrier after the forward */
    WICK_CHAIN_PH_DW,          /* dW items: the product and the bias gradient */
    WICK_CHAIN_PH_OPT,         /* dW items: the optimiser on their rows */
    WICK_CHAIN_PH_PACK,        /* dW items: packing the updated rows */
    WICK_CHAIN_PH_DX,          /* dx items: product and activation derivative */
    WICK_CHAIN_PH_WAIT,        /* at the barrier after a layer's phase */
    WICK_CHAIN_PH_N
};
#define WICK_CHAIN_PROF_THREADS 4
typedef struct {
    long steps;
    double sec[WICK_CHAIN_PROF_THREADS][WICK_CHAIN_PH_N][WICK_CHAIN_MAX];
} wick_chain_profile;
const wick_chain_profile *wick_chain_profile_totals(void);

#endif
