/* dist.h — data-parallel training across processes over MPI, for the wick
 * program (not part of libwick: the library takes a wick_collective and
 * needs no MPI runtime, so a library user, the Python ctypes layer and every
 * test that does not start ranks load it without one).  docs/distributed.md. */
#ifndef WICK_DIST_H
#define WICK_DIST_H

#include "wick.h"

typedef struct wick_dist wick_dist;

/* Records a one-line message for the program's error report (cli_last_error)
 * and returns s: src/dist uses include/wick.h only, not the library's
 * internal wick_fail (error.c). */
wick_status wick_dist_error(wick_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 when this process was started by mpirun (Open MPI's or a PMIx launcher's
 * environment is set), so `wick train` should join the job. */
int wick_dist_launched(void);
/* 1 when this build has MPI (else wick_dist_init fails saying so). */
int wick_dist_available(void);

/* Joins the job (MPI_Init_thread).  Ranks that share a host: local_ranks. */
wick_status wick_dist_init(wick_dist **out);
int wick_dist_rank(const wick_dist *d);
int wick_dist_ranks(const wick_dist *d);
int wick_dist_local_ranks(const wick_dist *d);

/* Collective start-up check, after every rank has loaded its data and built
 * (or resumed) its model: `local` is this rank's status so far and `why` its
 * message (NULL: wick_last_error()).  Every rank returns the same answer: WICK_OK when each
 * rank got this far and all agree on the build, the training data, the
 * configuration text `config` and the initial weights (checksums); else a
 * failure naming the first rank that differs or failed, and why. */
wick_status wick_dist_agree(wick_dist *d, wick_status local, const char *why, const wick_dataset *train,
                            const wick_dataset *val, wick_mlp *m, const char *config);

/* The trainer's callbacks for model m: gradients summed in double (f32:
 * float), in buckets of about bucket_bytes started as backward completes
 * them; shards > 0: that many micro-shards (wick_collective.shards).  The
 * start-up check (wick_dist_agree, after this) refuses ranks whose f32 or
 * shards differ. */
wick_status wick_dist_collective(wick_dist *d, wick_mlp *m, size_t bucket_bytes, int f32, int shards,
                                 const wick_collective **out);

/* Seconds spent waiting in the gradient sum so far (what backward did not hide). */
double wick_dist_wait_seconds(const wick_dist *d);

/* Ends the job from this rank: every rank stops (MPI_Abort). */
void wick_dist_abort(wick_dist *d, int code);
/* Leaves the job normally and frees d. */
void wick_dist_finish(wick_dist *d);

/* ---- Hogwild (hogwild.c): lock-free asynchronous SGD on one machine ---- */

typedef struct {
    long steps;
    double seconds, samples;
} wick_hogwild_totals;

/* Trains m's weights with `threads` threads, each on its own batches of the
 * epoch's order and its own copy of the optimiser, all updating m's weights
 * in place without locks.  new_model makes a model of m's architecture for a
 * thread.  From c: epochs, batch, seed, shuffle, opt, sched, max_steps,
 * stop, on_step, on_epoch, user (nothing else: no checkpoints, clipping,
 * augmentation or early stopping).  Not reproducible from run to run. */
wick_status wick_hogwild_train(wick_mlp *m, const wick_dataset *train, const wick_dataset *val,
                               const wick_train_config *c, int threads,
                               wick_status (*new_model)(void *user, wick_mlp **out), void *user,
                               wick_hogwild_totals *tot);

#endif
