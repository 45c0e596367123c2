/* wick.h — the one public header of wick, a deep-learning system in C.
 *
 * wick trains neural networks on the CPU (MLPs, fast) and predicts them from
 * first principles with the effective theory of "The Principles of Deep
 * Learning Theory" (Roberts, Yaida, Hanin).  Everything public is prefixed
 * wick_ / WICK_.
 *
 * Conventions:
 *  - Functions that can fail return a wick_status; wick_last_error() gives a
 *    one-line message naming the problem (file, offset, tensor, ...).  The
 *    library never prints and never exits.
 *  - Who allocates frees: every _new / _read has its _free.
 *  - Randomness is counter based (Philox4x32-10): a draw depends only on
 *    (seed, stream, index), never on the thread count.
 */
#ifndef WICK_H
#define WICK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WICK_API __attribute__((visibility("default")))
#else
#define WICK_API
#endif

#define WICK_VERSION "0.1.0"

/* ---------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------- */

typedef enum {
    WICK_OK = 0,
    WICK_EINVAL,       /* an argument is out of range or inconsistent */
    WICK_ENOMEM,       /* allocation failed */
    WICK_EIO,          /* a file could not be opened, read or written */
    WICK_EFORMAT,      /* a file's content is malformed */
    WICK_ESHAPE,       /* shapes do not match */
    WICK_EDTYPE,       /* element types do not match */
    WICK_ENUMERIC,     /* a numerical failure: not positive definite, no convergence */
    WICK_EDIVERGED,    /* a training run produced a non-finite or exploding loss */
    WICK_EINTERRUPTED, /* stopped by a signal */
    WICK_EUNSUPPORTED  /* a valid request this build cannot serve */
} wick_status;

/* A fixed short description of a status code. */
WICK_API const char *wick_strerror(wick_status s);

/* The message of the last failure on this thread (one line, no newline);
 * "" when there was none. */
WICK_API const char *wick_last_error(void);

/* Version of wick and of the libraries it links, e.g. for a run's first line. */
WICK_API const char *wick_version(void);
WICK_API const char *wick_library_versions(void);

/* ---------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------- */

/* Number of threads wick uses: set explicitly, else OMP_NUM_THREADS, else the
 * core count.  n <= 0 restores that default.  Results do not depend on it
 * except for the order of floating-point sums. */
WICK_API void wick_set_threads(int n);
WICK_API int  wick_threads(void);

/* ---------------------------------------------------------------------------
 * Activations (the book's ch. 2.2; SPEC §1)
 * ------------------------------------------------------------------------- */

typedef enum {
    WICK_ACT_PERCEPTRON = 0, /* 1 if z >= 0 else 0 */
    WICK_ACT_SIGMOID,
    WICK_ACT_TANH,
    WICK_ACT_SIN,
    WICK_ACT_LINEAR,
    WICK_ACT_RELU,
    WICK_ACT_LEAKY_RELU,     /* z if z >= 0 else slope*z */
    WICK_ACT_SOFTPLUS,
    WICK_ACT_SWISH,          /* z * sigmoid(z) */
    WICK_ACT_GELU,           /* z * Phi(z), exact erf form */
    WICK_ACT_COUNT
} wick_act_kind;

typedef struct {
    wick_act_kind kind;
    double slope;            /* leaky ReLU's negative slope (default 0.01); unused otherwise */
} wick_act;

#define WICK_LEAKY_DEFAULT 0.01

/* Parses "relu", "tanh", "leaky_relu", "leaky_relu:0.1", "gelu", ... */
WICK_API wick_status wick_act_parse(const char *name, wick_act *out);
/* The canonical name ("leaky_relu" for any slope). */
WICK_API const char *wick_act_name(wick_act a);
/* sigma(z), sigma'(z), sigma''(z) in double precision.  The perceptron's
 * derivatives are deltas: its deriv returns 0 away from z = 0 and
 * wick_act_has_derivative() says they are not usable. */
WICK_API double wick_act_eval(wick_act a, double z);
WICK_API double wick_act_deriv(wick_act a, double z);
WICK_API double wick_act_deriv2(wick_act a, double z);
WICK_API int    wick_act_has_derivative(wick_act a);

/* ---------------------------------------------------------------------------
 * Random numbers: Philox4x32-10, keyed by seed, addressed by (stream, index)
 * ------------------------------------------------------------------------- */

/* The raw generator: 4 x 32 random bits for a 128-bit counter and 64-bit key. */
WICK_API void wick_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Draw number `index` of stream `stream` under `seed`: a uniform in (0, 1)
 * and a standard normal.  Pure functions of their arguments. */
WICK_API double wick_rand_uniform(uint64_t seed, uint64_t stream, uint64_t index);
WICK_API double wick_rand_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* Fill x[0..n) with mean + std * N(0,1), draw i being index offset+i of the
 * stream; parallel and identical for every thread count. */
WICK_API void wick_fill_normal_f32(float *x, size_t n, double mean, double std,
                                   uint64_t seed, uint64_t stream, uint64_t offset);
WICK_API void wick_fill_normal_f64(double *x, size_t n, double mean, double std,
                                   uint64_t seed, uint64_t stream, uint64_t offset);

/* A uniformly random permutation of 0..n-1 (Fisher-Yates on stream draws). */
WICK_API void wick_permutation(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream);

/* ---------------------------------------------------------------------------
 * Data sets and readers (src/io)
 * ------------------------------------------------------------------------- */

/* A labelled data set held in memory: x is n rows of dim floats, y the labels
 * in [0, classes). */
typedef struct {
    size_t n, dim;
    int classes;
    float *x;
    int32_t *y;
} wick_dataset;

WICK_API void wick_dataset_free(wick_dataset *d);

/* A decoded IDX file (MNIST format), plain or gzip-compressed. */
typedef struct {
    uint8_t type;            /* 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 */
    int ndim;
    uint32_t dims[8];
    size_t count;            /* product of dims */
    void *data;              /* count elements in host order */
} wick_idx;

#define WICK_IDX_MAX_DIMS 8

WICK_API wick_status wick_idx_read(const char *path, wick_idx **out);
WICK_API void        wick_idx_free(wick_idx *t);

/* Images (u8, any trailing shape, scaled to [0,1]) and labels (u8 below
 * `classes`) into a data set.  classes <= 0 means 1 + the largest label. */
WICK_API wick_status wick_dataset_load_idx(const char *images, const char *labels,
                                           int classes, wick_dataset **out);

/* A numeric CSV: rows x cols doubles, parsed in the C locale.  Refuses ragged
 * rows, empty fields, junk, nan/inf (unless allow_nonfinite), overflow, an
 * empty file; the message names the line. */
WICK_API wick_status wick_csv_read(const char *path, int allow_nonfinite,
                                   double **out, size_t *rows, size_t *cols);

/* A labelled CSV: one sample per row, the label in column label_col (0 the
 * first, -1 the last), a non-negative integer. */
WICK_API wick_status wick_dataset_load_csv(const char *path, int label_col, int classes,
                                           wick_dataset **out);

/* ---------------------------------------------------------------------------
 * safetensors (src/io/safetensors.c)
 * ------------------------------------------------------------------------- */

typedef enum {
    WICK_DT_F32 = 0, WICK_DT_F64, WICK_DT_F16, WICK_DT_BF16,
    WICK_DT_I64, WICK_DT_I32, WICK_DT_I16, WICK_DT_I8, WICK_DT_U8, WICK_DT_BOOL,
    WICK_DT_COUNT
} wick_dtype;

WICK_API const char *wick_dtype_name(wick_dtype t);   /* "F32", ... */
WICK_API size_t      wick_dtype_size(wick_dtype t);

#define WICK_ST_MAX_DIMS 8

/* One tensor to write, or one read. */
typedef struct {
    const char *name;
    wick_dtype dtype;
    int ndim;
    int64_t shape[WICK_ST_MAX_DIMS];
    const void *data;        /* little-endian, C order */
} wick_st_tensor;

typedef struct wick_st_file wick_st_file;  /* a parsed, validated file */

/* Reads and validates a whole file (every case of the bad-input checklist). */
WICK_API wick_status wick_st_read(const char *path, wick_st_file **out);
WICK_API void        wick_st_free(wick_st_file *f);
WICK_API int         wick_st_count(const wick_st_file *f);
/* Tensor i in file order of offsets; NULL past the end. */
WICK_API const wick_st_tensor *wick_st_get(const wick_st_file *f, int i);
WICK_API const wick_st_tensor *wick_st_find(const wick_st_file *f, const char *name);
/* The __metadata__ string for key, or NULL. */
WICK_API const char *wick_st_meta(const wick_st_file *f, const char *key);

/* Writes n tensors and nmeta key/value pairs (meta[2k], meta[2k+1]) to path
 * atomically: a temporary file in the same directory, fsync, rename, fsync of
 * the directory.  On failure the old file at path is untouched. */
WICK_API wick_status wick_st_write(const char *path, const wick_st_tensor *t, int n,
                                   const char *const *meta, int nmeta);

/* ---------------------------------------------------------------------------
 * Plots through gnuplot (src/io/plot.c)
 * ------------------------------------------------------------------------- */

typedef struct {
    const char *title;        /* legend entry */
    const double *x, *y;
    const double *err;        /* error bars, or NULL */
    size_t n;
    int points;               /* 1: points (with error bars if err), 0: a line */
} wick_series;

/* Draws the series into a PNG.  logx/logy select log axes.  WICK_EUNSUPPORTED
 * with a clear message when gnuplot is not installed. */
WICK_API wick_status wick_plot_png(const char *path, const char *title, const char *xlabel,
                                   const char *ylabel, const wick_series *s, int ns,
                                   int logx, int logy);

/* ---------------------------------------------------------------------------
 * Optimisers, learning-rate schedules, metrics (src/nn/optim.c, schedule.c,
 * metrics.c).  They work on plain float arrays, so the executor can update a
 * weight as soon as its gradient is complete.  Semantics follow torch.optim
 * exactly, so a wick run and a PyTorch run take the same steps.
 * ------------------------------------------------------------------------- */

typedef enum { WICK_OPT_SGD = 0, WICK_OPT_ADAM, WICK_OPT_ADAMW } wick_opt_kind;

typedef struct {
    wick_opt_kind kind;
    double momentum;          /* SGD: heavy-ball coefficient; 0 is plain SGD */
    int nesterov;             /* SGD with momentum: Nesterov's form (torch's nesterov=True) */
    double beta1, beta2, eps; /* Adam, AdamW */
    double weight_decay;      /* SGD, Adam: L2, wd*w added to the gradient; AdamW: decoupled */
    double l1;                /* L1: l1*sign(w) added to the gradient (all kinds) */
} wick_opt_config;

/* Defaults of torch.optim: momentum 0, betas (0.9, 0.999), eps 1e-8, weight
 * decay 0 (AdamW: 0.01), no L1. */
WICK_API wick_opt_config wick_opt_defaults(wick_opt_kind kind);
WICK_API wick_status wick_opt_parse(const char *name, wick_opt_kind *out); /* sgd|adam|adamw */

typedef struct wick_opt wick_opt;

/* An optimiser for nparam tensors of sizes[i] floats.  decay[i] (NULL: all 1)
 * says whether weight decay and L1 apply to tensor i. */
WICK_API wick_status wick_opt_new(wick_opt **out, const wick_opt_config *c, int nparam,
                                  const size_t *sizes, const int *decay);
WICK_API void wick_opt_free(wick_opt *o);

/* One update of tensor i with this step's gradient, at learning rate lr.
 * Each tensor keeps its own step count (Adam's bias correction), as torch
 * does, so tensors may be updated in any order within a step. */
WICK_API void wick_opt_update(wick_opt *o, int i, float *param, const float *grad, double lr);

/* The optimiser's state, for checkpoints: tensor i has wick_opt_state_count
 * buffers of sizes[i] floats, named e.g. "momentum", "exp_avg", "exp_avg_sq",
 * and a step count. */
WICK_API int    wick_opt_state_count(const wick_opt *o, int i);
WICK_API float *wick_opt_state(wick_opt *o, int i, int k, const char **name);
WICK_API uint64_t wick_opt_steps(const wick_opt *o, int i);
WICK_API void     wick_opt_set_steps(wick_opt *o, int i, uint64_t steps);

/* Learning-rate schedules, per epoch. */
typedef enum {
    WICK_SCHED_CONSTANT = 0,
    WICK_SCHED_STEP,          /* lr0 * gamma^floor(epoch / step_size) */
    WICK_SCHED_EXP,           /* lr0 * gamma^epoch */
    WICK_SCHED_LINEAR,        /* lr0 -> floor linearly over `epochs`, then floor */
    WICK_SCHED_PLATEAU        /* lr *= factor after `patience` epochs without improvement */
} wick_sched_kind;

typedef struct {
    wick_sched_kind kind;
    double lr0;
    int step_size;            /* STEP */
    double gamma;             /* STEP, EXP */
    double floor;             /* LINEAR: final lr; PLATEAU: lowest lr */
    int epochs;               /* LINEAR: epochs to reach the floor */
    int patience;             /* PLATEAU */
    double factor;            /* PLATEAU, e.g. 0.1 */
    double threshold;         /* PLATEAU: relative improvement that counts (torch: 1e-4) */
} wick_sched_config;

/* The schedule's whole state: a checkpoint stores these numbers. */
typedef struct {
    wick_sched_config c;
    double lr;                /* the current learning rate */
    double best;              /* PLATEAU: best observed metric */
    int bad_epochs;           /* PLATEAU */
} wick_sched;

WICK_API wick_status wick_sched_parse(const char *name, wick_sched_kind *out); /* constant|step|exp|linear|plateau */
WICK_API wick_status wick_sched_init(wick_sched *s, const wick_sched_config *c);
/* The learning rate for epoch e (0-based); for PLATEAU the current one. */
WICK_API double wick_sched_lr(wick_sched *s, int epoch);
/* PLATEAU: report the epoch's validation loss (lower is better). */
WICK_API void   wick_sched_observe(wick_sched *s, double val_loss);

/* Classification metrics from true and predicted labels. */
typedef struct {
    int classes;
    size_t n;
    double accuracy;
    int64_t *confusion;       /* classes x classes, [true][predicted] */
    double *precision, *recall, *f1;   /* per class; 0 where undefined (no predictions / no samples) */
    double macro_f1;
} wick_metrics;

WICK_API wick_status wick_metrics_compute(const int32_t *truth, const int32_t *pred, size_t n,
                                          int classes, wick_metrics **out);
WICK_API void wick_metrics_free(wick_metrics *m);
/* A readable report: accuracy, per-class precision/recall/F1, the confusion matrix. */
WICK_API void wick_metrics_print(FILE *f, const wick_metrics *m, const char *const *class_names);

/* @@NN@@ */

/* ---------------------------------------------------------------------------
 * Theory engine (src/theory; SPEC.md).  No dependency on the training engine.
 * ------------------------------------------------------------------------- */

/* Universality classes of criticality (SPEC §4). */
typedef enum {
    WICK_UNIV_NONE = 0,        /* no critical initialisation (sigmoid, softplus, perceptron) */
    WICK_UNIV_SCALE_INVARIANT, /* linear, ReLU, leaky ReLU: chi_par = chi_perp = C_W A2 at every K */
    WICK_UNIV_KSTAR_ZERO,      /* sigma(0) = 0, a1 < 0 (tanh, sin): K* = 0, power-law approach */
    WICK_UNIV_HALF_STABLE      /* sigma(0) = 0, a1 > 0 (swish, gelu): a non-zero K* */
} wick_universality;

/* "scale-invariant", "K*=0", "half-stable", "none". */
WICK_API const char *wick_universality_name(wick_universality u);

/* A network for the theory engine: activation, depth L and per-layer
 * hyperparameters (SPEC §1, §7).  Scalars apply to every layer unless the
 * per-layer array (index l-1 for layer l) is given. */
typedef struct {
    wick_act act;
    int depth;                  /* L >= 1 */
    double cb, cw;              /* C_b, C_W (default 0, 1) */
    double lambda_b, lambda_w;  /* NTK learning rates (default 1, 1) */
    size_t width;               /* every hidden width n_1..n_{L-1} (default 128) */
    const double *cb_l, *cw_l;  /* [depth] or NULL */
    const double *lambda_b_l, *lambda_w_l; /* [depth] or NULL */
    const size_t *width_l;      /* n_0..n_L, [depth + 1], or NULL: `width` (n_0 never matters) */
    int tabulate;               /* Gram flows: 1 = when a layer's diagonal is constant, tabulate
                                   the map over the correlation once and interpolate (fast, for
                                   thousands of inputs); 0 = direct quadrature per entry */
} wick_theory_config;

WICK_API wick_theory_config wick_theory_defaults(wick_act act, int depth);

/* Gaussian expectations (SPEC §2): <sigma^(d1)(z1) sigma^(d2)(z2)> over the
 * zero-mean Gaussian with covariance [[K11, K12], [K12, K22]], d1, d2 in
 * {0, 1, 2} derivative orders.  Closed forms for the scale-invariant class and
 * the perceptron; otherwise Gauss-Hermite at small variance and a graded
 * composite Gauss-Legendre rule with a break at z = 0 elsewhere (measured:
 * within 1e-13 relative for every smooth activation over K in [1e-4, 1e2]
 * and correlations in [-1, 1], and to ~1e-15 for kinked ones; see
 * tests/test_theory_gauss.c).  Fails with
 * WICK_EINVAL for a derivative the activation does not have (a delta),
 * a negative variance, or |K12| > sqrt(K11 K22). */
WICK_API wick_status wick_gauss_expect2(wick_act a, int d1, int d2, double K11, double K12,
                                        double K22, double *out);
/* <(sigma^(d)(z))^p> for z ~ N(0, K), p in 1..4. */
WICK_API wick_status wick_gauss_expect1(wick_act a, int d, int p, double K, double *out);

/* chi_par(K) = C_W d<sigma^2>_K/dK and chi_perp(K) = C_W <sigma'^2>_K (SPEC §4).
 * WICK_EINVAL for the perceptron (its derivative is a delta). */
WICK_API wick_status wick_chi(wick_act a, double cw, double K, double *chi_par, double *chi_perp);

/* The fixed point K* = C_b + C_W <sigma^2>_{K*} reached from K0 by iterating
 * the single-input map (SPEC §4).  0 when the flow decays to K* = 0 (as a
 * power law at criticality); WICK_ENUMERIC when the kernel grows without
 * bound or does not settle. */
WICK_API wick_status wick_fixed_point(wick_act a, double cb, double cw, double K0, double *kstar);

/* The critical initialisation and universality class of an activation (SPEC §4). */
typedef struct {
    wick_universality cls;
    double cb, cw;             /* the critical C_b, C_W; NAN when cls is NONE */
    double kstar;              /* the fixed point at criticality (NAN: any K, scale-invariant) */
    double a1;                 /* K*=0 and half-stable: K' = K + a1 K^2 + ...; NAN otherwise */
    double power_exponent;     /* K*=0 class: K ~ coeff * l^-exponent, exponent 1 */
    double power_coeff;        /* K*=0 class: 1/(-a1); NAN otherwise */
} wick_critical_info;

/* Fills *out; for WICK_UNIV_NONE the status is WICK_ENUMERIC with the message
 * "no critical point for sigmoid" (the struct is filled all the same). */
WICK_API wick_status wick_critical(wick_act a, wick_critical_info *out);
/* For `wick train --init critical`: the critical (C_b, C_W) and class (cls may be NULL). */
WICK_API wick_status wick_critical_init(wick_act a, double *cb, double *cw, wick_universality *cls);

/* Per-layer single-input quantities (SPEC §3, §4, §6, §7) for an input of
 * normalised squared norm q = |x|^2 / n0.  out[l-1] holds layer l.
 * chi_par/chi_perp of layer l are taken at K^(l) with C_W of layer l+1 (the
 * last layer's own C_W for l = L).  V is the vertex V^(l) itself; the
 * connected four-point function of one neuron is 3 V / n_{l-1}.
 * Derivative quantities (chi, V, ntk) are NAN for the perceptron. */
typedef struct {
    double K, chi_par, chi_perp, V, ntk;
} wick_layer_theory;

WICK_API wick_status wick_theory_single(const wick_theory_config *c, double q,
                                        wick_layer_theory *out);

/* Kernel (NNGP) and NTK flows for n inputs from the first layer's input Gram
 * matrix G0[a*n+b] = (1/n0) sum_j x_ja x_jb (n x n, symmetric PSD):
 * K[(l-1)*n*n + a*n + b] = K^(l)_ab for l = 1..L (SPEC §3); Theta likewise
 * (SPEC §7), or NULL to skip it (it must be NULL for the perceptron).
 * Parallel over entries (OpenMP).  See wick_theory_config.tabulate. */
WICK_API wick_status wick_gram_flow(const wick_theory_config *c, const double *G0, size_t n,
                                    double *K, double *Theta);
/* The same for the last layer only: K and Theta (n x n) receive layer L,
 * updated in place layer by layer, so the memory is n^2 whatever the depth
 * (10,000 inputs: 800 MB per matrix instead of L times that). */
WICK_API wick_status wick_gram_flow_last(const wick_theory_config *c, const double *G0,
                                         size_t n, double *K, double *Theta);
/* G0 from inputs x (n rows of n0 doubles). */
WICK_API wick_status wick_input_gram(const double *x, size_t n, size_t n0, double *G0);

/* The four-point vertex for two inputs (SPEC §6): V[(l-1)*16 + p*4 + q] =
 * V^(l)_{(p)(q)} for ordered pairs p = 2*a1 + a2, q = 2*a3 + a4 (inputs
 * 0 and 1), from the 2x2 input Gram G0.  The single-input vertex is the
 * (0,0)(0,0) component. */
WICK_API wick_status wick_vertex2(const wick_theory_config *c, const double G0[4], double *V);

/* The connected four-point correlator E[z_i1;a1 z_i2;a2 z_i3;a3 z_i4;a4]_conn at
 * order 1/n predicted by the vertex V (16 components, as wick_vertex2) of a
 * layer whose previous width is n_prev (SPEC §6). */
WICK_API double wick_four_point(const double V[16], size_t n_prev, const int i[4], const int a[4]);

/* Deep linear network, exact at any width (SPEC §5): K^(l) = C_W^(l-1) K1 and
 * E[z^4] = 3 K^2 (1 + 2/n)^(l-1) with every hidden width n. */
WICK_API wick_status wick_deep_linear(double cw, double K1, int l, size_t n, double *K,
                                      double *Ez4);

/* Bayesian inference at infinite width (SPEC §8).  K is the (nA+nB)^2 kernel
 * Gram over training inputs (first nA) then test inputs; yA is nA x nout
 * (row per input).  mean (nB x nout), cov (nB x nB) and logev (summed over
 * the nout components) may each be NULL.  Cholesky throughout;
 * WICK_ENUMERIC when K_AA + noise I is not positive definite. */
WICK_API wick_status wick_gp_posterior(const double *K, size_t nA, size_t nB, const double *yA,
                                       size_t nout, double noise, double *mean, double *cov,
                                       double *logev);

/* Gradient descent with MSE at infinite width under the frozen NTK (SPEC §9):
 * loss 1/2 sum (z - y)^2, global rate eta, t steps (t < 0: t -> infinity).
 * Theta and K are (nA+nB)^2 Grams (training inputs first).
 *  - z0 (n x nout, or NULL) the outputs at initialisation; zt (n x nout, or
 *    NULL) receives z(t) for every input;
 *  - mean (nB x nout) and cov (nB x nB), or NULL, receive the ensemble mean
 *    and covariance of the trained test outputs over z(0) ~ GP(0, K).
 * WICK_EINVAL when eta is not in (0, 2/lambda_max(Theta_AA)) (finite t);
 * WICK_ENUMERIC when Theta_AA is not positive definite. */
WICK_API wick_status wick_gd_predict(const double *Theta, const double *K, size_t nA, size_t nB,
                                     const double *yA, size_t nout, double eta, long t,
                                     const double *z0, double *zt, double *mean, double *cov);

#ifdef __cplusplus
}
#endif
#endif /* WICK_H */
