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

/* Frees memory that wick allocated and handed to the caller (e.g. the matrix
 * of wick_csv_read).  NULL is fine. */
WICK_API void wick_free(void *p);

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

/* Waiting: the MLP training step (the float32 fast path) runs on wick's own
 * worker threads, where a thread that waits for another spins for at most
 * WICK_SPIN_US microseconds (default 50) and then sleeps: on a machine shared
 * with other work it gives its core to the thread it waits for.  The step
 * also times itself and uses fewer of its threads when that is faster (beside
 * another process holding a core, one thread often is; it tries fewer only
 * after its threads lost CPU time, and more as soon as a CPU went idle),
 * without changing a bit of the results; WICK_TEAM_SIZE=n fixes the count
 * it uses, and WICK_TEAM_TUNE=0 keeps it at wick_threads().  Once a step has
 * waited for a
 * descheduled thread, the steps that follow let any thread redo an item a
 * late one holds (same bits; WICK_REDO=1 always, 0 never), and a late
 * thread joins the step under way when it runs again (WICK_REDO_REJOIN=0:
 * it waits for the next).  Everything
 * else runs on OpenMP (libgomp), whose waits spin for GOMP_SPINCOUNT pauses
 * (300,000 unless set: milliseconds) before they sleep; set GOMP_SPINCOUNT or
 * OMP_WAIT_POLICY=passive in the environment to bound them (the wick command
 * sets GOMP_SPINCOUNT=1000, about 50 us, itself unless either is set).
 *
 * Floating-point mode: wick computes with flush-to-zero and
 * denormals-are-zero set (on x86, MXCSR bits 15 and 6): a float denormal
 * costs a microcode assist on every instruction that reads it and changes
 * nothing that training can see.  The calls that compute (wick_trainer_run,
 * wick_evaluate, wick_graph_forward*, wick_graph_backward*) set them on entry
 * and put the calling thread's mode back on return (its control bits; the
 * exception flags raised inside stay raised, as feupdateenv leaves them).
 * Callbacks run from inside such a call (on_step, gradient-ready) see wick's
 * mode.  OpenMP's
 * worker threads, which wick shares with the caller's own OpenMP code, are
 * set when a layer is planned (wick_graph_compile) and left so. */

/* ---------------------------------------------------------------------------
 * Activations (the book's ch. 2.2; docs/theory.md §1)
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
/* Standard normals x[i] = wick_rand_normal(seed, stream, offset + i) to within
 * a few ulps (with AVX2, 8 Philox blocks at a time and glibc's vector
 * log/sin/cos; without, exactly): about 10x faster than one by one.  The
 * values depend only on the arguments and the build, never on the threads. */
WICK_API void wick_fill_normal_fast(double *x, size_t n, uint64_t seed, uint64_t stream,
                                    uint64_t offset);

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

/* The same from a directory in MNIST's naming: <dir>/<stem>-images-idx3-ubyte
 * and <stem>-labels-idx1-ubyte, each with or without .gz (e.g. stem "train"
 * or "t10k" in /usr/share/datasets/fashion-mnist). */
WICK_API wick_status wick_dataset_load_idx_dir(const char *dir, const char *stem, int classes,
                                               wick_dataset **out);

/* A numeric CSV: rows x cols doubles, parsed in the C locale.  Refuses ragged
 * rows, empty fields, junk, nan/inf (unless allow_nonfinite), overflow, an
 * empty file; the message names the line.  A first row with no number in it
 * is a header and is skipped; a UTF-8 BOM, "\r\n", spaces around fields and
 * "quoted" fields are accepted, hex floats refused, underflow reads as 0
 * (src/io/csv.c lists every decision).  *out is freed with wick_free. */
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
/* At most this many tensors and __metadata__ entries in a file, far above
 * any model: a header listing more is refused before wick allocates for it. */
#define WICK_ST_MAX_TENSORS 65536
#define WICK_ST_MAX_META    65536

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
 * the directory.  On failure the old file at path is untouched.  An existing
 * path that is not a regular file (a device, FIFO, socket, directory or a
 * symbolic link) is refused; an existing file's permissions (and, for root,
 * its owner) are kept; a new file gets 0666 & ~umask (src/io/path.c). */
WICK_API wick_status wick_st_write(const char *path, const wick_st_tensor *t, int n,
                                   const char *const *meta, int nmeta);

/* An advisory lock on an output path (a checkpoint), so that two runs never
 * write it at once: flock(LOCK_EX | LOCK_NB) on the sidecar file PATH.lock
 * (created if missing, never followed if a link, refused if not a regular
 * file; it holds the holder's pid and is left in place).  *fd_out gets the
 * lock's descriptor, or -1 on failure; WICK_EIO with "PATH is locked by
 * another wick run (pid N)" when it is held, by this process or another.
 * The lock ends with wick_path_unlock(fd) or when the process exits (even by
 * SIGKILL); it is not inherited across exec.  wick_path_unlock(-1) is a
 * no-op. */
WICK_API wick_status wick_path_lock(const char *path, int *fd_out);
WICK_API void        wick_path_unlock(int fd);

/* ---------------------------------------------------------------------------
 * Plots through gnuplot (src/io/plot.c)
 * ------------------------------------------------------------------------- */

typedef struct {
    const char *title;        /* legend entry */
    const double *x, *y;
    const double *err;        /* error bars, or NULL */
    size_t n;
    int points;               /* 1: points (with error bars if err), 0: a line */
    int group;                /* series of one group > 0 share a colour (a measurement and
                                 its theory curve); 0: a colour of its own */
} wick_series;

/* Draws the series into a PNG, the legend below the graph.  logx/logy select
 * log axes.  The value axis leaves out a value that stands apart from the
 * rest by more than twice their span (at most an eighth of the values at
 * each end) and spans the error bars, with a margin; the title says how many
 * values lie off the scale.  Each line has its own dash pattern and
 * each set of points its own marker.  WICK_EUNSUPPORTED with a clear message
 * when gnuplot is not installed. */
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
 * says whether weight decay and L1 apply to tensor i.  WICK_EINVAL, as
 * torch.optim refuses them: a negative or non-finite momentum, weight_decay
 * or l1; nesterov without momentum; betas outside [0, 1); eps <= 0; and
 * momentum/nesterov given to Adam or AdamW.  Fields a kind does not use are
 * not checked (SGD ignores betas and eps). */
WICK_API wick_status wick_opt_new(wick_opt **out, const wick_opt_config *c, int nparam,
                                  const size_t *sizes, const int *decay);
WICK_API void wick_opt_free(wick_opt *o);

/* One update of tensor i with this step's gradient, at learning rate lr.
 * Each tensor keeps its own step count (Adam's bias correction), as torch
 * does, so tensors may be updated in any order within a step.  The gradient
 * used is grad + l1*sign(w) (sign(0) = 0) + weight_decay*w (Adam, SGD);
 * AdamW first scales w by 1 - lr*weight_decay.  SGD's momentum buffer is the
 * gradient itself on a tensor's first step (step count 0), as torch's.
 * Allocates nothing; element-wise, so independent of the thread count; an
 * index out of range does nothing. */
WICK_API void wick_opt_update(wick_opt *o, int i, float *param, const float *grad, double lr);

/* The same update restricted to elements [lo, hi) of tensor i, without
 * advancing its step count, so that threads can each update their own rows
 * of a weight; wick_opt_advance then counts the step once for every tensor.
 * Calling the range version over a partition of every tensor, then advance,
 * equals calling wick_opt_update on every tensor. */
WICK_API void wick_opt_update_range(wick_opt *o, int i, float *param, const float *grad, double lr,
                                    size_t lo, size_t hi);
WICK_API void wick_opt_advance(wick_opt *o);

/* The optimiser's state, for checkpoints: tensor i has wick_opt_state_count
 * buffers of sizes[i] floats (SGD with momentum: "momentum"; Adam, AdamW:
 * "exp_avg", "exp_avg_sq"; plain SGD: none), zero until the first update,
 * and a step count.  Restoring is writing the buffers and setting the count. */
WICK_API int    wick_opt_state_count(const wick_opt *o, int i);
WICK_API float *wick_opt_state(wick_opt *o, int i, int k, const char **name);
WICK_API uint64_t wick_opt_steps(const wick_opt *o, int i);
WICK_API void     wick_opt_set_steps(wick_opt *o, int i, uint64_t steps);

/* Learning-rate schedules, per epoch. */
typedef enum {
    WICK_SCHED_CONSTANT = 0,
    WICK_SCHED_STEP,          /* lr0 * gamma^floor(epoch / step_size) */
    WICK_SCHED_EXP,           /* lr0 * gamma^epoch */
    WICK_SCHED_LINEAR,        /* lr0 -> floor linearly over `epochs`, then floor:
                               * t = min(e, epochs)/epochs, lr = (1-t)*lr0 + t*floor */
    WICK_SCHED_PLATEAU        /* torch ReduceLROnPlateau (mode min, rel threshold, cooldown 0):
                               * lr = max(lr*factor, floor) once more than `patience`
                               * epochs in a row fail to beat best*(1 - threshold) */
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
/* Defaults: lr0 1e-3, step_size 30, gamma 0.1, floor 0, epochs 10, and
 * ReduceLROnPlateau's patience 10, factor 0.1, threshold 1e-4. */
WICK_API wick_sched_config wick_sched_defaults(wick_sched_kind kind);
WICK_API wick_status wick_sched_init(wick_sched *s, const wick_sched_config *c);
/* The learning rate for epoch e (0-based; torch's get_last_lr() after e calls
 * of scheduler.step()); for PLATEAU the current one. */
WICK_API double wick_sched_lr(wick_sched *s, int epoch);
/* PLATEAU: report the epoch's validation loss (lower is better); a no-op for
 * the other kinds. */
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

/* A label outside [0, classes) is WICK_EINVAL naming its index.  Macro F1 is
 * the mean over all `classes` classes (sklearn's average='macro',
 * zero_division=0); n = 0 gives accuracy 0. */
WICK_API wick_status wick_metrics_compute(const int32_t *truth, const int32_t *pred, size_t n,
                                          int classes, wick_metrics **out);
WICK_API void wick_metrics_free(wick_metrics *m);
/* A readable report: accuracy, per-class precision/recall/F1/support and
 * their macro average, the confusion matrix (rows: true class "index name",
 * columns: predicted class index).  class_names may be NULL (indices only). */
WICK_API void wick_metrics_print(FILE *f, const wick_metrics *m, const char *const *class_names);
/* The confusion matrix as a PNG heatmap (src/io/plot.c): rows the true
 * class, columns the predicted one, each cell coloured by its share of the
 * row and labelled with its count (up to 20 classes).  class_names (NULL:
 * indices) label the axes.  WICK_EUNSUPPORTED when gnuplot is not installed. */
WICK_API wick_status wick_plot_confusion_png(const char *path, const char *title, const wick_metrics *m,
                                             const char *const *class_names);

/* ---------------------------------------------------------------------------
 * Static computation graph with reverse-mode autodiff (src/graph)
 *
 * Build the graph once (constructors only record nodes), compile it (every
 * buffer is allocated then, sized for max_batch rows), then run forward and
 * backward as often as needed without allocating.  Values are float32 or
 * float64 for the whole graph; every op has one source for both.  Tensors are
 * 2-D: "batched" nodes have one row per sample and follow the current batch
 * size; parameters and scalars do not.
 *
 * A constructor returns the new node's index, or -1 after an error (shape
 * mismatch, bad argument); the error is sticky and wick_graph_compile
 * returns it, so a builder may check once at the end.
 * ------------------------------------------------------------------------- */

typedef struct wick_graph wick_graph;
typedef int wick_node;

WICK_API wick_status wick_graph_new(wick_graph **out, wick_dtype dtype, int max_batch);
WICK_API void        wick_graph_free(wick_graph *g);

WICK_API wick_node wick_g_input(wick_graph *g, const char *name, int cols);   /* [batch, cols] */
WICK_API wick_node wick_g_labels(wick_graph *g, const char *name);            /* [batch] int32 */
WICK_API wick_node wick_g_param(wick_graph *g, const char *name, int rows, int cols);
WICK_API wick_node wick_g_matmul(wick_graph *g, wick_node a, wick_node b, int trans_b); /* a b or a b^T */
WICK_API wick_node wick_g_bias(wick_graph *g, wick_node x, wick_node b);      /* x + b (b: [1, cols]) */
WICK_API wick_node wick_g_act(wick_graph *g, wick_node x, wick_act act);
/* act(x W^T + b): one fused op, one backward; W is [out, in] as in PyTorch. */
WICK_API wick_node wick_g_dense(wick_graph *g, wick_node x, wick_node W, wick_node b, wick_act act);
WICK_API wick_node wick_g_add(wick_graph *g, wick_node a, wick_node b);
WICK_API wick_node wick_g_mul(wick_graph *g, wick_node a, wick_node b);       /* element-wise */
WICK_API wick_node wick_g_scale(wick_graph *g, wick_node a, double c);
WICK_API wick_node wick_g_sum(wick_graph *g, wick_node x);                    /* scalar */
WICK_API wick_node wick_g_mean(wick_graph *g, wick_node x);                   /* scalar */
WICK_API wick_node wick_g_softmax(wick_graph *g, wick_node x);                /* row-wise */
WICK_API wick_node wick_g_log_softmax(wick_graph *g, wick_node x);            /* row-wise */
/* Mean squared error over all elements (torch's MSELoss). */
WICK_API wick_node wick_g_mse(wick_graph *g, wick_node pred, wick_node target);
/* Cross-entropy on logits, mean over rows, stable log-sum-exp; label smoothing
 * eps mixes the one-hot target with the uniform (torch's label_smoothing). */
WICK_API wick_node wick_g_cross_entropy(wick_graph *g, wick_node logits, wick_node labels,
                                        double smoothing);

WICK_API wick_status wick_graph_compile(wick_graph *g);
/* Rows of every batched node for the next runs: 1 <= rows <= max_batch. */
WICK_API wick_status wick_graph_set_batch(wick_graph *g, int rows);
WICK_API int   wick_graph_batch(const wick_graph *g);
WICK_API int   wick_graph_rows(const wick_graph *g, wick_node n);
WICK_API int   wick_graph_cols(const wick_graph *g, wick_node n);
WICK_API const char *wick_graph_name(const wick_graph *g, wick_node n);
/* The node's value and gradient buffers (float* or double*, int32* for
 * labels); a gradient is NULL where none is kept.  Taking a parameter's
 * value counts as writing it: the trainer's fast path keeps packed copies of
 * the weights between steps and repacks them after any such call. */
WICK_API void *wick_graph_value(wick_graph *g, wick_node n);
WICK_API void *wick_graph_grad(wick_graph *g, wick_node n);
/* Parameters in creation order; returns their count (fills at most max). */
WICK_API int   wick_graph_params(const wick_graph *g, wick_node *out, int max);

WICK_API void wick_graph_forward(wick_graph *g);
/* Forward up to node n only (e.g. outputs without the loss). */
WICK_API void wick_graph_forward_to(wick_graph *g, wick_node n);
/* Called during backward as soon as a parameter's gradient is complete. */
typedef void (*wick_grad_ready_fn)(void *user, wick_node param);
/* Gradients of the scalar node `loss` with respect to every parameter and
 * every node on the way (seed 1).  ready may be NULL. */
WICK_API void wick_graph_backward(wick_graph *g, wick_node loss, wick_grad_ready_fn ready, void *user);
/* Gradients of sum(seed * out) for a non-scalar out (seed has out's shape):
 * vector-Jacobian products, e.g. for the empirical NTK. */
WICK_API void wick_graph_backward_seed(wick_graph *g, wick_node out, const void *seed,
                                       wick_grad_ready_fn ready, void *user);
/* Which backend serves the dense products, for the run's first lines. */
WICK_API const char *wick_graph_backend(const wick_graph *g);

/* ---- images, convolutions and the regularisers (ops_impl.h) -------------
 * An image node is still 2-D: one row per sample holding C*H*W values in
 * NCHW order (PyTorch's contiguous layout), with (C, H, W) recorded on the
 * node.  So flattening is free and a graph maps one-to-one onto a PyTorch
 * nn.Sequential.  Output sizes follow PyTorch (floor, ceil_mode=False):
 *   OH = (H + 2 pad_h - dil_h (kh - 1) - 1) / stride_h + 1.
 * Ops with training-time behaviour (batch norm, dropout, noise) follow the
 * graph's mode: training by default, as a fresh torch module. */

/* [batch, C*H*W], image-shaped. */
WICK_API wick_node wick_g_input_image(wick_graph *g, const char *name, int C, int H, int W);
/* x's values seen as a C x H x W image (C*H*W == cols); no copy.  Works on
 * any node, e.g. a parameter [rows, C*H*W] for a gradient check. */
WICK_API wick_node wick_g_as_image(wick_graph *g, wick_node x, int C, int H, int W);
/* The same values as a plain [rows, cols] node; no copy (nn.Flatten). */
WICK_API wick_node wick_g_flatten(wick_graph *g, wick_node x);
/* chw = (C, H, W) of an image node and returns 1; (cols, 1, 1) and 0 for a
 * plain node; 0 and zeros for an index that is no node. */
WICK_API int wick_graph_shape(const wick_graph *g, wick_node n, int chw[3]);

/* Convolution geometry.  Zero in a stride, dilation or groups means 1, so
 * (wick_conv2d_params){.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1} is torch's
 * Conv2d(C, OUT, 3, padding=1). */
typedef struct {
    int kh, kw;
    int stride_h, stride_w;
    int pad_h, pad_w;           /* zeros on each side */
    int dil_h, dil_w;
    int groups;                 /* C and OUT divisible by it; groups = C: depthwise */
} wick_conv2d_params;

/* y = conv2d(x, W) + b, torch.nn.functional.conv2d (cross-correlation).
 * x: image [batch, C*H*W]; W: parameter [OUT, (C/groups)*kh*kw], torch's
 * [OUT, C/groups, kh, kw] weight row-major; b: [1, OUT] or -1 for none.
 * Output: image [batch, OUT*OH*OW].  Runs per sample (im2col and the BLAS
 * product), threads over samples; compile sizes its work space for
 * wick_threads() then, and a larger count set later runs it on that many. */
WICK_API wick_node wick_g_conv2d(wick_graph *g, wick_node x, wick_node W, wick_node b,
                                 const wick_conv2d_params *p);
/* Pooling windows take the geometry of wick_conv2d_params: kh, kw, strides
 * (0: the kernel size, torch's default), padding (at most half the kernel),
 * dilation (max pooling only; 0 means 1); groups must be 0 or 1.
 * Max pooling, torch's max_pool2d: padding counts as -inf, ties go to the
 * first maximum in row-major window order and the gradient to that element. */
WICK_API wick_node wick_g_maxpool2d(wick_graph *g, wick_node x, const wick_conv2d_params *p);
/* Average pooling, torch's avg_pool2d with count_include_pad=True: every
 * window is divided by kh*kw, padding counted as zeros. */
WICK_API wick_node wick_g_avgpool2d(wick_graph *g, wick_node x, const wick_conv2d_params *p);
/* Mean over H x W per channel: image [batch, C*H*W] -> [batch, C] (an image
 * C x 1 x 1), torch's adaptive_avg_pool2d(x, 1) flattened. */
WICK_API wick_node wick_g_global_avgpool(wick_graph *g, wick_node x);

/* Graph state: values kept across steps and saved with the model, but no
 * parameter (no gradient, not in wick_graph_params): batch norm's running
 * statistics.  Filled with `init` at compile. */
WICK_API wick_node wick_g_state(wick_graph *g, const char *name, int rows, int cols, double init);
/* A state holding one int64_t counter, 0 at compile (num_batches_tracked). */
WICK_API wick_node wick_g_counter(wick_graph *g, const char *name);
/* Batch normalisation, torch's BatchNorm2d on an image node (statistics per
 * channel over batch, H, W) and BatchNorm1d on a plain node (per column over
 * the batch).  gamma, beta: parameters [1, C].  Training: normalises with the
 * batch mean and biased variance, then running = (1 - momentum) running +
 * momentum * batch statistic with the unbiased variance, and the counter + 1.
 * Eval: normalises with the running statistics.  running_mean, running_var
 * ([1, C] states, init 0 and 1) and the counter may be -1 for torch's
 * track_running_stats=False (batch statistics in both modes).  torch's
 * defaults: momentum 0.1, eps 1e-5.  When the batch norm's only consumer is
 * a ReLU (wick_g_act), compile fuses the two: the batch norm node's values
 * are then the ReLU's output.  When that ReLU's only reader is a 2x2
 * stride-2 max pool, the three run as one pass that writes the pooled
 * values only, and backward skips the gradients inside it: the batch norm's
 * and the ReLU's values and gradients are not written, nor the gradient of
 * a first-layer convolution before them (its backward rebuilds it a sample
 * at a time).  Read gradients of parameters and of nodes outside such a
 * chain; WICK_BN_DX=0 keeps the convolution's gradient written.  In a
 * training forward, such a first-layer convolution (one input channel, 3x3,
 * stride 1, pad 1, read by the batch norm alone) does not write its values
 * either: the batch norm computes them from the input (WICK_C1_FUSE=0 keeps
 * them written). */
WICK_API wick_node wick_g_batchnorm(wick_graph *g, wick_node x, wick_node gamma, wick_node beta,
                                    wick_node running_mean, wick_node running_var,
                                    wick_node num_batches_tracked, double momentum, double eps);
/* The same, creating its five nodes named as torch's state_dict:
 * "<prefix>.weight" (init 1), ".bias" (0), ".running_mean" (0),
 * ".running_var" (1), ".num_batches_tracked" (0). */
WICK_API wick_node wick_g_batchnorm_named(wick_graph *g, const char *prefix, wick_node x,
                                          double momentum, double eps);

/* Inverted dropout: in training each element is kept with
 * probability 1 - p and scaled by 1 / (1 - p); in eval the identity (the
 * weight-scaling inference rule).  Masks come from Philox keyed by the
 * graph's seed, the step counter, the node and the element, so they do not
 * depend on the thread count. */
WICK_API wick_node wick_g_dropout(wick_graph *g, wick_node x, double p);
/* x + std * N(0, 1) in training, x in eval (noise injection).  On a parameter node it
 * is noise on the weights: use its output where the weight is used. */
WICK_API wick_node wick_g_gaussian_noise(wick_graph *g, wick_node x, double std);
/* mean(|x|) over all elements, a scalar (torch.mean(torch.abs(x))): the
 * activation penalty that asks for sparse representations: loss + lambda l1(h).
 * Gradient sign(x) / elements, with sign(0) = 0. */
WICK_API wick_node wick_g_l1(wick_graph *g, wick_node x);

/* Training (1, the default) or eval (0) mode for the whole graph. */
WICK_API void wick_graph_set_training(wick_graph *g, int on);
WICK_API int  wick_graph_training(const wick_graph *g);
/* The random ops' seed (default 0) and step counter.  Each forward in
 * training mode draws with the current step and then advances it; a
 * checkpoint saves wick_graph_step and restores it with set_step, and
 * setting the same step before two forwards repeats the masks. */
WICK_API void     wick_graph_set_seed(wick_graph *g, uint64_t seed);
WICK_API void     wick_graph_set_step(wick_graph *g, uint64_t step);
WICK_API uint64_t wick_graph_step(const wick_graph *g);
/* The node named `name`, or -1. */
WICK_API wick_node wick_graph_find(const wick_graph *g, const char *name);
/* State nodes in creation order; returns their count (fills at most max). */
WICK_API int wick_graph_states(const wick_graph *g, wick_node *out, int max);
/* A node's element type: the graph's dtype, WICK_DT_I32 for labels,
 * WICK_DT_I64 for counters. */
WICK_API wick_dtype wick_graph_dtype(const wick_graph *g, wick_node n);

/* ---------------------------------------------------------------------------
 * Multilayer perceptrons (src/nn/mlp.c)
 *
 * z1 = b1 + W1 x,  z(l+1) = b(l+1) + W(l+1) act(z(l)),  output z(L) (no
 * activation after the last layer), built as fused dense ops on a graph.
 * Parameters are named as in a PyTorch nn.Sequential(Linear, Act, Linear, ...)
 * state_dict: "0.weight" [n1, n0], "0.bias", "2.weight", ...
 * ------------------------------------------------------------------------- */

#define WICK_MAX_LAYERS 64

typedef enum {
    WICK_INIT_CRITICAL = 0, /* the book's init at the activation's critical (C_b, C_W), from the theory engine */
    WICK_INIT_BOOK,         /* biases ~ N(0, C_b), weights ~ N(0, C_W / fan_in), per layer */
    WICK_INIT_HE,           /* weights ~ N(0, 2 / fan_in), biases 0 (Kaiming normal) */
    WICK_INIT_GLOROT,       /* weights ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)), biases 0 */
    WICK_INIT_TORCH         /* PyTorch's default: weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
} wick_init_kind;

typedef enum { WICK_LOSS_XENT = 0, WICK_LOSS_MSE } wick_loss_kind;

typedef struct {
    int layers;                        /* dense layers L */
    int widths[WICK_MAX_LAYERS + 1];   /* n_0 (inputs) .. n_L (outputs) */
    wick_act act;
    wick_init_kind init;
    double cb[WICK_MAX_LAYERS];        /* BOOK: C_b and C_W of each layer */
    double cw[WICK_MAX_LAYERS];
    wick_loss_kind loss;
    double smoothing;                  /* cross-entropy label smoothing */
    double act_l1;                     /* sparse representations: the loss gains act_l1 * mean|h|
                                          for each activation layer's output h (0: off) */
} wick_mlp_config;

/* Parses "784-512-512-10"; "784-[128]x16-10" repeats a width.  Sets layers
 * and widths only. */
WICK_API wick_status wick_arch_parse(const char *spec, wick_mlp_config *c);
/* Writes the spec back ("784-512-512-10") into buf. */
WICK_API void wick_arch_format(const wick_mlp_config *c, char *buf, size_t size);
WICK_API wick_status wick_init_parse(const char *name, wick_init_kind *out); /* critical|book|he|glorot */
WICK_API const char *wick_init_name(wick_init_kind k);

typedef struct wick_mlp wick_mlp;

/* An MLP on a graph of the given dtype, for batches of up to max_batch rows.
 * WICK_INIT_CRITICAL resolves C_b, C_W here (WICK_ENUMERIC where the
 * activation has no critical point). */
WICK_API wick_status wick_mlp_new(wick_mlp **out, const wick_mlp_config *c, wick_dtype dtype,
                                  int max_batch);
WICK_API void wick_mlp_free(wick_mlp *m);

/* A network from a layer spec (wick_spec_parse; docs/layers.md): conv nets,
 * batch norm, dropout, pooling.  It is the same handle as an MLP (wick_net
 * and wick_mlp name one type): init, predict, save, load, train and evaluate
 * take it.  c gives the initialisation (init; cb[k], cw[k] for the k-th layer
 * with weights under BOOK; CRITICAL takes the critical point of the spec's one
 * activation, fan-in counting C/groups*kh*kw for a convolution), the loss and
 * the label smoothing; its layers and widths are ignored.  Random layers
 * (dropout, noise) draw from the graph's seed (wick_graph_set_seed), which
 * training sets to the run's. */
typedef struct wick_mlp wick_net;
typedef struct wick_spec wick_spec;   /* the layer language's, below */
WICK_API wick_status wick_net_new(wick_net **out, const wick_spec *spec, const wick_mlp_config *c,
                                  wick_dtype dtype, int max_batch);
/* The spec a model was built from (an MLP's: input:n0,linear:n1,act,...). */
WICK_API const wick_spec *wick_mlp_spec(const wick_mlp *m);
/* Features a sample has (C*H*W for images) and outputs. */
WICK_API int wick_mlp_inputs(const wick_mlp *m);
WICK_API int wick_mlp_outputs(const wick_mlp *m);
/* The layer spec of a model file: its __metadata__ "spec", else `given` (a
 * spec text, e.g. --arch for a file PyTorch wrote; NULL: none), checked
 * against the file's tensors (each the spec's name, dtype and shape, nothing
 * else outside "optimizer.") before anything is sized by it; the loss and
 * init from __metadata__ into c.  *out is NULL (and WICK_OK) for a file with
 * no spec when none is given: an MLP (wick_mlp_config_from_file).  A given
 * spec that differs from the file's is refused naming both. */
WICK_API wick_status wick_net_spec_from_file(const char *path, const char *given, wick_spec **out,
                                             wick_mlp_config *c);
WICK_API const wick_mlp_config *wick_mlp_config_of(const wick_mlp *m);

/* Draws every parameter from (seed, stream): layer l's weights use stream
 * 2l, its biases 2l+1; independent of the thread count. */
WICK_API void wick_mlp_init(wick_mlp *m, uint64_t seed);

WICK_API wick_graph *wick_mlp_graph(wick_mlp *m);
WICK_API wick_node   wick_mlp_input(const wick_mlp *m);    /* [batch, n_0] */
WICK_API wick_node   wick_mlp_output(const wick_mlp *m);   /* [batch, n_L] */
WICK_API wick_node   wick_mlp_labels(const wick_mlp *m);   /* XENT: class indices */
WICK_API wick_node   wick_mlp_target(const wick_mlp *m);   /* MSE: [batch, n_L] targets */
WICK_API wick_node   wick_mlp_loss(const wick_mlp *m);
WICK_API wick_node   wick_mlp_weight(const wick_mlp *m, int layer);
WICK_API wick_node   wick_mlp_bias(const wick_mlp *m, int layer);
/* Samples per forward + backward step's FLOPs (2mnk per product, no input
 * gradient for the first layer). */
WICK_API double      wick_mlp_flops_per_sample(const wick_mlp *m);

/* Outputs for n rows of x (float), in batches; out is n x n_L floats. */
WICK_API wick_status wick_mlp_predict(wick_mlp *m, const float *x, size_t n, float *out);

/* Model files: the state_dict tensors (as float32) and the architecture in
 * __metadata__, with a checksum over both ("checksum" = "crc32:...", src/nn/checksum.c).
 * Load checks every name, shape and dtype, the checksum where the file has
 * one (a PyTorch file has none), and refuses non-finite weights, naming the
 * tensor and the first bad index. */
WICK_API wick_status wick_mlp_save(wick_mlp *m, const char *path);
WICK_API wick_status wick_mlp_load_params(wick_mlp *m, const char *path);
/* The architecture of a model or checkpoint file: from __metadata__, else
 * inferred from the tensor shapes (then c->act is left as given).  The
 * file's own tensors must be exactly those of the architecture it claims,
 * so what a caller then allocates for the weights is bounded by the file. */
WICK_API wick_status wick_mlp_config_from_file(const char *path, wick_mlp_config *c, int *has_act);

/* ---------------------------------------------------------------------------
 * Training (src/nn/train.c)
 * ------------------------------------------------------------------------- */

typedef struct {
    int epoch;                 /* 1-based */
    double train_loss;         /* mean over the epoch's steps */
    double val_loss, val_acc;  /* NAN without a validation set */
    double lr;
    double seconds;            /* training loop only */
    double samples_per_s;
} wick_epoch_report;

/* Data augmentation of image samples (src/nn/augment.c), drawn per sample:
 * Philox (seed, stream, 4 sample + slot), so a sample's transform depends on
 * (seed, stream, sample) only, never on its batch or the thread count. */
typedef struct {
    int shift;                  /* shift by up to this many pixels each way, zeros brought in
                                   (a random crop of the zero-padded image); 0: off */
    int flip;                   /* horizontal flip with probability 1/2 (off for digits) */
    double rotate;              /* rotation about the centre by an angle uniform in
                                   [-rotate, rotate] degrees, bilinear; 0: off */
} wick_augment;

/* Data-parallel training across processes.  The library needs no MPI: the
 * wick program fills this from src/dist/ (Open MPI) and the trainer calls it.
 * This process is `rank` of `ranks`; it takes rows [R r / K, R (r + 1) / K)
 * of every global batch of R rows (the single-process data order), and the
 * callbacks combine its results with the other ranks'.  Every call is
 * collective: each rank makes the same calls in the same order
 * (docs/distributed.md). */
typedef struct {
    int rank, ranks;
    void *user;
    /* x[0..n) replaced by its sum over the ranks, the same bits on each */
    wick_status (*sum)(void *user, double *x, int n);
    /* parameter tensor i's gradient (n floats) is final on this rank: begin
       replacing grad by the sum over ranks of weight * grad (the rank's share
       of the global batch); may return before that is done.  Every tensor
       comes exactly once per step; weight 0: a rank without rows this step
       (grad is then not read) */
    wick_status (*grad_start)(void *user, int i, float *grad, size_t n, double weight);
    /* every gradient of the step summed */
    wick_status (*grad_finish)(void *user);
    /* 0: a rank's rows in one pass, its gradient summed as above.  S > 0
       (S >= ranks): every global batch in S fixed micro-shards, each shard's
       gradient summed exactly through sum and the shards added in a fixed
       order, so any K <= S ranks give the same bits (no batch norm; S
       times the parameters in the sum) */
    int shards;
} wick_collective;

/* The products' precision in training.  bfloat16: every product of the
 * step (forward, input and weight gradients) takes bf16 operands, rounded to
 * nearest even, and sums in float32; the weights, their gradients, the
 * optimiser state and the loss stay float32, and evaluation runs in float32.
 * It needs AVX512-BF16 (avx512_bf16, with AVX-512 F, BW and VL) and an MLP on
 * the fast path (dense layers into cross-entropy, one process, no
 * augmentation, clipping or max-norm): wick_trainer_new refuses it with
 * WICK_EUNSUPPORTED and the reason otherwise (a CPU with AMX alone included:
 * no AMX kernel is built). */
typedef enum { WICK_PRECISION_F32 = 0, WICK_PRECISION_BF16 } wick_precision;

/* This CPU's bf16 product instructions that the OS lets wick use: "amx_bf16",
 * "avx512_bf16", both (space-separated), or "". */
WICK_API const char *wick_cpu_bf16(void);
/* WICK_OK when training at precision p can run here, else the reason
 * (WICK_EUNSUPPORTED; WICK_EINVAL for an unknown p). */
WICK_API wick_status wick_precision_supported(wick_precision p);

typedef struct {
    int epochs, batch;
    uint64_t seed;
    int shuffle;                       /* 0: the data's order every epoch */
    wick_opt_config opt;
    wick_sched_config sched;
    int patience;                      /* early stopping on validation loss; 0: off */
    double diverge_factor;             /* stop when a loss exceeds factor * the first loss (0: only non-finite) */
    const char *checkpoint;            /* written atomically after every epoch and on interrupt; NULL: none */
    int checkpoint_steps;              /* also every this many steps (0: epochs only) */
    long max_steps;                    /* stop after this many steps in all (0: no limit) */
    volatile int *stop;                /* set non-zero (e.g. by SIGINT) to stop at the next step */
    wick_augment augment;              /* image data: shifts, flips, rotations per sample and epoch
                                          (draws: seed, stream 2000000 + epoch, the sample's index) */
    /* Regularisers on the update, PyTorch's semantics (0: off): */
    double clip_value;                 /* gradients clamped to [-c, c] (clip_grad_value_) */
    double clip_norm;                  /* all gradients scaled together to 2-norm <= c (clip_grad_norm_) */
    double max_norm;                   /* each unit's incoming weights (a row of a linear or conv
                                          weight) projected to 2-norm <= c after the update (renorm) */
    double stop_val_loss;              /* early stopping's second round, continuing on all the data
                                          (Goodfellow et al., alg. 7.3): stop after the first epoch
                                          whose validation loss is <= this (0: off) */
    int general_executor;              /* 1: no fast path, op by op (tests compare the two) */
    wick_precision precision;          /* of the products (0: float32; wick_precision) */
    const wick_collective *coll;       /* data parallelism across processes; NULL: this process alone.
                                          batch is the global batch; only rank 0 should checkpoint */
    const char *input;                 /* how the data were transformed before training (e.g.
                                          "standardised"), recorded in checkpoints as __metadata__
                                          "input": their net does not take raw rows.  NULL: as they
                                          are; must outlive the trainer */
    void (*on_step)(void *user, long step, int epoch, int batch_in_epoch, int batches, double loss);
    void (*on_epoch)(void *user, const wick_epoch_report *r);
    void *user;
} wick_train_config;

WICK_API wick_train_config wick_train_defaults(void);

typedef struct wick_trainer wick_trainer;

/* A training run of m on train (val may be NULL).  The data sets must
 * outlive the trainer; a non-finite feature or a label outside the model's
 * outputs is refused (WICK_EINVAL naming the sample). */
WICK_API wick_status wick_trainer_new(wick_trainer **out, wick_mlp *m, const wick_dataset *train,
                                      const wick_dataset *val, const wick_train_config *c);
WICK_API void wick_trainer_free(wick_trainer *t);
/* Continues from a checkpoint: weights, optimiser and schedule state, early-
 * stopping state, and the position in the data order, so that the rest of
 * the run is bit-identical to an uninterrupted one.  The checkpoint's
 * checksum is required; every metadata field is checked (type, range,
 * consistency with the others and with this run's model, batch and data)
 * and every tensor (shape, finiteness) before anything is changed: a refused
 * checkpoint leaves the trainer as it was. */
WICK_API wick_status wick_trainer_resume(wick_trainer *t, const char *checkpoint);
/* Runs to the end (epochs, max_steps, early stop).  WICK_EDIVERGED on a
 * non-finite or exploding loss (the weights stay those of the last good step),
 * or on weights or optimiser state found non-finite at an epoch's end, before
 * a checkpoint or at the end (then the weights of the last such check come
 * back; no checkpoint is written with them); WICK_EINTERRUPTED when *stop was
 * set (a checkpoint is written first). */
WICK_API wick_status wick_trainer_run(wick_trainer *t);
WICK_API wick_status wick_trainer_save(wick_trainer *t, const char *path);
/* Totals so far: steps, training-loop seconds, samples seen. */
WICK_API long   wick_trainer_steps(const wick_trainer *t);
WICK_API double wick_trainer_seconds(const wick_trainer *t);
WICK_API double wick_trainer_samples(const wick_trainer *t);
WICK_API int    wick_trainer_best_epoch(const wick_trainer *t);
/* What runs the training steps: wick's own kernel on the dense chain's fast
 * path, else the graph's backend (wick_graph_backend). */
WICK_API const char *wick_trainer_backend(const wick_trainer *t);

/* Splits d into a training and a validation set: nval samples chosen by a
 * seeded permutation (stream 999), the rest kept in their order. */
WICK_API wick_status wick_dataset_split(const wick_dataset *d, size_t nval, uint64_t seed,
                                        wick_dataset **train, wick_dataset **val);
/* Bagging's resample of d: d->n samples drawn with replacement (draw i: Philox
 * (seed, stream, i)).  Free with wick_dataset_free. */
WICK_API wick_status wick_dataset_bootstrap(const wick_dataset *d, uint64_t seed, uint64_t stream,
                                            wick_dataset **out);
/* a's samples then b's (the same features), e.g. the training and the
 * validation set for early stopping's second round. */
WICK_API wick_status wick_dataset_concat(const wick_dataset *a, const wick_dataset *b, wick_dataset **out);

/* Predicted classes (argmax of the outputs) for a data set, and metrics. */
WICK_API wick_status wick_evaluate(wick_mlp *m, const wick_dataset *d, wick_metrics **out,
                                   double *mean_loss);


/* ---------------------------------------------------------------------------
 * The layer language (src/nn/spec.c): a network as one token per entry of a
 * PyTorch nn.Sequential, comma-separated, arguments after colons, e.g.
 *   input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,flatten,linear:10
 * Tokens: input:CxHxW or input:F (shape only, no module; first),
 * conv2d:OUT:K[:stride=S][:pad=P][:dilation=D][:groups=G][:bias=0] (K, S, P,
 * D each N or HxW), linear:OUT[:bias=0], batchnorm[:eps=E][:momentum=M],
 * dropout:P, maxpool:K[:stride=S][:pad=P] (stride defaults to K),
 * avgpool:..., globalavgpool, flatten, and every activation name.  Layer i
 * (0-based, after input) is module i of the nn.Sequential: its state_dict
 * names are "i.weight", "i.bias", "i.running_mean", ...
 * ------------------------------------------------------------------------- */

typedef enum {
    WICK_LAYER_LINEAR = 0, WICK_LAYER_CONV2D, WICK_LAYER_BATCHNORM, WICK_LAYER_DROPOUT,
    WICK_LAYER_MAXPOOL, WICK_LAYER_AVGPOOL, WICK_LAYER_GLOBALAVGPOOL, WICK_LAYER_FLATTEN,
    WICK_LAYER_ACT
} wick_layer_kind;

#define WICK_SPEC_MAX 256

typedef struct {
    wick_layer_kind kind;
    int out;                    /* LINEAR: features; CONV2D: channels */
    int kh, kw, sh, sw, ph, pw, dh, dw;   /* kernel, stride, padding, dilation */
    int groups;                 /* CONV2D */
    int bias;                   /* LINEAR, CONV2D: 1 (default) or 0 */
    double p;                   /* DROPOUT: drop probability */
    double eps, momentum;       /* BATCHNORM (PyTorch's 1e-5, 0.1) */
    wick_act act;               /* ACT */
    /* from shape inference: (C, H, W) of an image, (F, 0, 0) of a flat tensor */
    int in[3], outshape[3];
    long long params;           /* trainable parameters (batchnorm: weight and bias) */
    double flops_fwd;           /* a sample's forward FLOPs: 2 per multiply-add of the products */
    double flops_train;         /* forward + weight gradient + input gradient (none before the
                                   first layer with parameters) */
    long rf_h, rf_w;            /* receptive field of one output unit on the input; -1: all of it */
} wick_layer;

typedef struct wick_spec {
    int input[3];
    int n;                      /* layers after input */
    wick_layer layer[WICK_SPEC_MAX];
    int outputs;                /* features of the last layer */
    long long params;
    double flops_fwd, flops_train;   /* per sample, summed over layers */
} wick_spec;

/* Parses and checks a spec through every shape; nothing is sized by it before
 * it passes.  The message names the token and the reason ("conv2d:32: missing
 * kernel size", "linear:10 after conv2d needs flatten ...").  Free with
 * wick_spec_free. */
WICK_API wick_status wick_spec_parse(const char *text, wick_spec **out);
WICK_API void        wick_spec_free(wick_spec *s);
/* The spec of an MLP config: input:n0,linear:n1,act,...,linear:nL. */
WICK_API wick_status wick_spec_from_mlp(const wick_mlp_config *c, wick_spec **out);
/* The canonical text of a spec or one layer (defaults omitted), snprintf-style:
 * returns the length it needed.  Locale-independent. */
WICK_API size_t wick_spec_format(const wick_spec *s, char *buf, size_t n);
WICK_API size_t wick_layer_format(const wick_layer *L, char *buf, size_t n);
/* The PyTorch module of a layer as Python source, e.g. "Conv2d(1, 32,
 * kernel_size=(3, 3), ...)" (activations without a torch.nn module: "Sin()",
 * "Perceptron()"). */
WICK_API size_t wick_layer_torch(const wick_layer *L, char *buf, size_t n);
WICK_API const char *wick_layer_kind_name(wick_layer_kind k);
/* A table: each layer's output shape, parameters, FLOPs and receptive field,
 * and the totals. */
WICK_API void wick_spec_print(FILE *f, const wick_spec *s);

/* Data augmentation of image samples (wick_augment, defined with the
 * training configuration): */

/* WICK_EINVAL for a shift of the image's size or more, or a rotation outside [0, 180]. */
WICK_API wick_status wick_augment_check(const wick_augment *a, int C, int H, int W);
WICK_API int         wick_augment_active(const wick_augment *a);
/* dst = a random transform of the C x H x W image src (NCHW; no overlap). */
WICK_API void        wick_augment_sample(const wick_augment *a, const float *src, float *dst, int C,
                                         int H, int W, uint64_t seed, uint64_t stream, uint64_t sample);

/* ---------------------------------------------------------------------------
 * Experiments (src/experiments): real finite-width networks measured beside
 * the theory engine's predictions (docs/theory.md §5-§7, §9-§12).
 * ------------------------------------------------------------------------- */

/* An ensemble of M independent MLPs at initialisation (docs/theory.md §1): depth L,
 * every layer of width n (the last too, so that each layer has n neurons to
 * average over), biases N(0, C_b), weights N(0, C_W/n_{l-1}).  Network k's
 * layer l draws from Philox stream (k << 20 | l) of `seed`, so network k is
 * the same whatever M, the depth or the thread count.  The first layer is
 * drawn directly from its exact law z^(1) ~ N(0, C_b + C_W G0) per neuron
 * (G0 the inputs' Gram), which costs nothing whatever n_0. */
typedef struct {
    wick_act act;
    double cb, cw;
    int depth;                  /* L >= 1 */
    size_t width;               /* n >= 2 */
    size_t samples;             /* M >= 2 networks */
    uint64_t seed;
    const double *G0;           /* [ninputs^2] (1/n0) x_a . x_b, symmetric PSD */
    size_t ninputs;             /* 1..64 */
} wick_ensemble_config;

/* Measured per layer l (index l-1), with standard errors over networks: each
 * network's neurons are averaged first and each network is one sample
 * (docs/theory.md §11); the connected correlators' errors by the delta method. */
typedef struct {
    int depth;
    size_t ninputs, samples, width;
    double *kernel, *kernel_stderr;    /* [L][ni][ni]: E[z_{i;a} z_{i;b}] */
    double *connected4, *connected4_stderr; /* [L][ni]: E[z_{i;a}^4] - 3 E[z_{i;a}^2]^2 */
    double *pair4, *pair4_stderr;      /* [L][ni]: E[z_i^2 z_j^2] - E[z_i^2]^2, i != j, input a */
    double *ratio4, *ratio4_stderr;    /* [L][ni]: E[z^4] / (3 E[z^2]^2) - 1, the normalised
                                          deviation from Gaussianity (theory: V/(n K^2)) */
    double seconds;                    /* wall time of the sampling */
    int threads;
} wick_ensemble_result;

/* Samples and measures the ensemble, parallel over networks (OpenMP, the
 * wick_threads() count); results are bit-identical for every thread count
 * (per-network statistics, reduced over networks in a fixed order). */
WICK_API wick_status wick_ensemble_run(const wick_ensemble_config *c, wick_ensemble_result **out);
WICK_API void wick_ensemble_free(wick_ensemble_result *r);

/* The theory's values beside a result's (arrays laid out as the result's):
 * kernel K^(l) (docs/theory.md §3), connected4 = 3 V^(l)_aa / n_{l-1} and pair4 =
 * V^(l)_aa / n_{l-1} at order 1/n (docs/theory.md §6; 0 at l = 1).  exact4 (or NULL)
 * receives the exact finite-width connected4 where one exists, NAN
 * otherwise: the deep linear network (docs/theory.md §5, C_b = 0) and, by the same
 * argument, the scale-invariant class at C_b = 0: 3K^2((1 + kappa/n)^(l-1) - 1)
 * with kappa = 3A4/A2^2 - 1 (5 for ReLU).  Vertex entries are NAN for the
 * perceptron. */
WICK_API wick_status wick_ensemble_theory(const wick_ensemble_config *c, double *kernel,
                                          double *connected4, double *pair4, double *exact4);
/* The kernel E[z_a z_b] of the same networks as wick_ensemble_run (at most 4
 * inputs) with control variates, so that its 1/n shift is measurable
 * (docs/theory-finite-width.md): mean and se [L][ni][ni].  Each layer's
 * zero-mean noises given the layer before (the kernel sample minus its
 * conditional mean, and the activations' Gram minus its Gaussian
 * expectation) are regressed out over the networks. */
WICK_API wick_status wick_kernel1_measure(const wick_ensemble_config *c, double *mean, double *se);

/* A float64 MLP in the book's parameterisation (docs/theory.md §1, §7) on a wick_graph,
 * for the empirical NTK and full-batch gradient descent: depth L, input n_0,
 * hidden width n, nout outputs; per-layer learning rates lambda_b (biases)
 * and lambda_W / n_{l-1} (weights). */
typedef struct {
    wick_act act;
    double cb, cw;
    double lambda_b, lambda_w;  /* docs/theory.md §7 (defaults 1, 1) */
    int depth;                  /* L >= 1 */
    size_t n0, width, nout;
} wick_net64_config;

typedef struct wick_net64 wick_net64;

/* max_batch: the most inputs one forward or GD step takes at once. */
WICK_API wick_status wick_net64_new(wick_net64 **out, const wick_net64_config *c, int max_batch);
WICK_API void        wick_net64_free(wick_net64 *m);
/* Draws network k of `seed`: layer l from Philox stream (k << 20 | l), W^(l)
 * (row-major [n_l, n_{l-1}]) then b^(l). */
WICK_API void        wick_net64_init(wick_net64 *m, uint64_t seed, uint64_t k);
/* Parameter access: W^(l) [n_l x n_{l-1}] and b^(l) [n_l], l = 1..L. */
WICK_API double     *wick_net64_weight(wick_net64 *m, int l);
WICK_API double     *wick_net64_bias(wick_net64 *m, int l);
/* z (n x nout) for inputs x (n x n0), any n. */
WICK_API wick_status wick_net64_forward(wick_net64 *m, const double *x, size_t n, double *z);
/* The empirical NTK (docs/theory.md §7) for n inputs: H[(a*nout+i)*(n*nout) + b*nout+j] =
 * H_{ij;ab}.  Per-sample, per-output vector-Jacobian products through the
 * graph's autodiff (wick_graph_backward_seed): the bias gradients give
 * delta^(l) = dz_i/db^(l), and each weight group's sum factorises, since
 * dz_i/dW^(l)_jk = delta^(l)_j h^(l-1)_k for one sample:
 *   H = sum_l (delta^(l)_a . delta^(l)_b) (lambda_b + lambda_W/n_{l-1} h^(l-1)_a . h^(l-1)_b).
 * direct = 1 instead sums the products of every parameter's gradient (the
 * definition; slower, for tests). */
WICK_API wick_status wick_net64_ntk(wick_net64 *m, const double *x, size_t n, int direct,
                                    double *H);
/* One step of full-batch gradient descent on the loss 1/2 sum_a sum_i
 * (z_ia - y_ia)^2 (docs/theory.md §9): theta <- theta - eta lambda dL/dtheta, with
 * lambda_b for biases and lambda_W/n_{l-1} for weights.  (A mean-MSE
 * trainer needs eta_engine = eta |A| n_L / 2 for the same trajectory.)
 * n <= max_batch.  *loss (or NULL) receives the loss before the step. */
WICK_API wick_status wick_net64_gd_step(wick_net64 *m, const double *x, const double *y,
                                        size_t n, double eta, double *loss);

/* The empirical NTK over an ensemble of M networks (wick_net64_init's
 * networks k = 0..M-1) for ni inputs x (ni x net.n0), each network one
 * sample: mean[a*ni+b] = E[H_{ii;ab}] (averaged over the outputs i of each
 * network), var = Var[H_{00;ab}] over networks (the O(1/n) fluctuation,
 * docs/theory.md §7), with standard errors (var's from the sample fourth moment), and
 * theory = Theta^(L)_ab (docs/theory.md §7).  Parallel over networks; independent of
 * the thread count. */
typedef struct {
    wick_net64_config net;
    size_t samples;             /* M >= 2 */
    uint64_t seed;
    const double *x;            /* [ni][net.n0] */
    size_t ninputs;             /* 1..64 */
} wick_ntk_ensemble_config;

typedef struct {
    size_t ninputs, samples;
    double *mean, *mean_stderr, *var, *var_stderr, *theory, *kernel_theory; /* [ni][ni] */
    double seconds;
    int threads;
} wick_ntk_ensemble_result;

WICK_API wick_status wick_ntk_ensemble(const wick_ntk_ensemble_config *c,
                                       wick_ntk_ensemble_result **out);
WICK_API void wick_ntk_ensemble_free(wick_ntk_ensemble_result *r);

/* The NTK's order-1/n statistics over M networks at initialisation, one
 * input of norm q (docs/theory-finite-width.md; the book's ch. 4 and 8):
 * every layer of width n (n_0 = 1, x = sqrt(q)), weights drawn as
 * wick_net64_init draws them, the n x n NTK matrix carried by its forward
 * recursion (float64, BLAS).  Beside wick_theory_finite. */
typedef struct {
    wick_act act;
    double cb, cw, lambda_b, lambda_w, q;
    int depth;
    size_t width, samples;
    uint64_t seed;
} wick_ntk_fluct_config;

/* What each layer measures: the kernel and NTK means, and n times the
 * covariances that the theory puts at V/n, A/n, B/n, D/n, F/n (so each
 * estimates its tensor + O(1/n)). */
enum { WICK_FL_K = 0, WICK_FL_NTK, WICK_FL_V, WICK_FL_A, WICK_FL_B, WICK_FL_D, WICK_FL_F,
       WICK_FL_KCV, WICK_FL_NTKCV, WICK_FL_COUNT };
/* WICK_FL_KCV, WICK_FL_NTKCV: the same means as WICK_FL_K, WICK_FL_NTK with
 * control variates (zero-mean noises of each layer given the one before,
 * regressed out over the networks): unbiased up to O(1/M), with a spread
 * O(1/n) instead of O(1/sqrt(n)), so that K1/n and Theta1/n are measurable. */

typedef struct {
    int depth;
    size_t width, samples;
    double *val;   /* val[((l-1) * WICK_FL_COUNT + e) * 2] the estimate, [... + 1] its standard error */
    double seconds;
    int threads;
} wick_ntk_fluct_result;

WICK_API wick_status wick_ntk_fluct_run(const wick_ntk_fluct_config *c, wick_ntk_fluct_result **out);
WICK_API void wick_ntk_fluct_free(wick_ntk_fluct_result *r);
/* Two inputs of Gram G0 (2 x 2): the NTK's variance tensor B measured per
 * layer in wick_ntk_B_two's layout (n times the average over j != k of
 * H_{jk;a1a2} H_{jk;a3a4}: B + O(1/n)) with standard errors, on networks
 * with n0 = 2 and every layer of width n (c->q is not used). */
WICK_API wick_status wick_ntk_B_two_measure(const wick_ntk_fluct_config *c, const double G0[4],
                                            double *B, double *se);
/* Two inputs of Gram G0: every order-1/n NTK tensor measured per layer,
 * val[(l-1)*WICK_FL2_COUNT + WICK_FL2_X + i] with se alike: the kernel and
 * NTK means (4 each, ordered pairs 2a+b) and n times the covariances that
 * wick_ntk_fluct_two and wick_ntk_B_two put at A/n, B/n, D/n, F/n, in their
 * layouts (each its tensor + O(1/n)); networks as wick_ntk_B_two_measure. */
enum { WICK_FL2_K = 0, WICK_FL2_NTK = 4, WICK_FL2_A = 8, WICK_FL2_B = 24, WICK_FL2_D = 40,
       WICK_FL2_F = 56, WICK_FL2_NTKCV = 72, WICK_FL2_COUNT = 76 };
/* WICK_FL2_NTKCV: the NTK means again, with control variates (zero-mean
 * noises of each layer given the one before, regressed out): the 1/n shift
 * Theta1 is n (this - Theta) + O(1/n). */
WICK_API wick_status wick_ntk_fluct_two_measure(const wick_ntk_fluct_config *c, const double G0[4],
                                                double *val, double *se);
/* The dNTK (the book's ch. 11; docs/theory-finite-width.md) of network k
 * (wick_ntk_fluct_run's networks: n_0 = 1, every layer of width n) at its
 * last layer L = c->depth, contracted with the vector u (n) of that layer:
 * M[i1*n + i2] = sum_i0 u_i0 dH_i0i1i2, the derivative of the NTK matrix
 * along the parameter step lambda grad(u . z^(L)); by its forward recursion
 * (float64, BLAS).  c->samples is not used. */
WICK_API wick_status wick_dntk_contract(const wick_ntk_fluct_config *c, uint64_t k, const double *u,
                                        double *M);
/* The dNTK-preactivation correlators measured over c->samples networks,
 * per layer l: val[(l-1)*2] estimates P and val[(l-1)*2 + 1] Q of
 * wick_theory_finite (n_{l-1} times the average over the n (n - 1) pairs
 * j != m of dH_jjm z_m and dH_jmm z_j: the tensor + O(1/n)), se their
 * standard errors over networks; 0 at l = 1.  Depth 1..64, width 2..2048,
 * depth x width^2 <= 2^25. */
WICK_API wick_status wick_dntk_measure(const wick_ntk_fluct_config *c, double *val, double *se);
/* Two inputs of Gram G0 (networks as wick_ntk_fluct_two_measure's: n_0 = 2,
 * every layer of width n, c->q not used): the dNTK of network k at its last
 * layer contracted with the vector u (n) at sample a0 (0 or 1),
 * M[(a1 n + i1) 2n + a2 n + i2] = sum_i0 u_i0 dH_{i0i1i2;a0a1a2}, the change of
 * the two-input NTK along the step lambda grad(u . z_{;a0}) (float64, by its
 * forward recursion; docs/theory-finite-width.md). */
WICK_API wick_status wick_dntk_two_contract(const wick_ntk_fluct_config *c, const double G0[4],
                                            uint64_t k, int a0, const double *u, double *M);
/* The two-input P and Q measured over c->samples such networks, per layer
 * l: val[(l-1)*32 + 8 a0 + 4 a1 + 2 a2 + a3] estimates P_{a0a1a2a3} and
 * val[(l-1)*32 + 16 + ...] Q_{a0a1a2a3} (n times the average over the
 * n (n - 1) pairs j != m of dH_{jjm;a0a1a2} z_{m;a3} and of dH_{jmm;a0a1a2}
 * z_{j;a3}: the tensor + O(1/n)), se their standard errors over networks; 0
 * at l = 1.  eta = 0: the dNTK by its forward recursion (exact, pathwise:
 * wick_dntk_PQ_two_pathwise); eta > 0: by central differences of the NTK
 * along steps of size eta, which cross kinks (for the kinked activations:
 * biased by O(eta); docs/theory-finite-width.md compares it with
 * wick_dntk_PQ_two).
 * Depth 1..64, width 2..2048, depth x width^2 <= 2^24. */
WICK_API wick_status wick_dntk_two_measure(const wick_ntk_fluct_config *c, const double G0[4],
                                           double eta, double *val, double *se);
/* The ddNTK means measured over c->samples networks (wick_ntk_fluct_run's
 * networks), per layer l: val[(l-1)*4 + {0,1,2,3}] estimate R, S, T, U of
 * wick_theory_ddntk (n_{l-1}/n^2 times a Hutchinson estimate, from two
 * Rademacher probes xi, eta of layer l, of sum_{j,m} ddI_jjmm, ddII_jjmm,
 * ddII_jmjm, ddII_jmmj: the tensor + O(1/n)), se their standard errors
 * over networks; 0 at l = 1.  Exact derivatives in float64 (Taylor jets,
 * forward-over-reverse; sigma'' = sigma''' = 0 at a kink's sides).  Depth
 * 1..64, width 2..2048, depth x width^2 <= 2^25. */
WICK_API wick_status wick_ddntk_measure(const wick_ntk_fluct_config *c, double *val, double *se);
/* The primitives behind wick_ddntk_measure, on network k at its last layer
 * L = c->depth (for tests).  Parameter vectors are laid out layer by layer,
 * W^(l) row-major then b^(l) (layer 1: W n x 1); wick_ddntk_nparams gives
 * their length.  grad: G = lambda grad(u . z^(L)) (lambda applied);
 * hvp: out = Hess(u . z^(L)) a (no lambda); d3: D^3 (u . z^(L)) [a, b, b];
 * at: if not NULL, the network's parameters are replaced by these first. */
WICK_API size_t wick_ddntk_nparams(const wick_ntk_fluct_config *c);
/* Network k's parameters (wick_ddntk_nparams of them) into theta. */
WICK_API wick_status wick_ddntk_draw(const wick_ntk_fluct_config *c, uint64_t k, double *theta);
WICK_API wick_status wick_ddntk_probe(const wick_ntk_fluct_config *c, uint64_t k, const double *at,
                                      const double *u, const double *a, const double *b,
                                      double *G, double *hvp, double *d3);
/* One step of full-batch MSE gradient descent measured on c->samples
 * antithetic pairs of networks (wick_net64_init's network k and its mirror
 * with the last layer negated), one input x = sqrt(q) (n_0 = 1), targets y
 * (c->net.nout), rate eta, beside wick_gd_mean1.  Per output i, val[e * nout
 * + i] and se alike (standard errors over pairs):
 *   WICK_GD1_MEAN  E[z_i(1)], the pair averages of the trained outputs;
 *   WICK_GD1_NTK   E[H_ii(0)], the NTK at initialisation;
 *   WICK_GD1_RES   E[r_i(eta)], r = z(1) - [z(0) - eta H(0) (z(0) - y)],
 *                  each network less its own frozen-NTK step (its mean is
 *                  the order-1/n part beyond Theta1, (a2 + a3)/n);
 *   WICK_GD1_RES2  E[(r(eta) + r(-eta)) / 2], the eta^2 part (a2/n);
 *   WICK_GD1_RES3  E[(r(eta) - r(-eta)) / 2], the eta^3 part (a3/n);
 *   WICK_GD1_LIN   E[z_lin], each network's own frozen-NTK step (so MEAN =
 *                  LIN + RES; its order-1/n part is the NTK's, a1). */
typedef struct {
    wick_net64_config net;      /* n0 = 1 */
    double q, eta;
    const double *y;            /* [net.nout] */
    size_t samples;             /* antithetic pairs, >= 2 */
    uint64_t seed;
    long steps;                 /* 0 or 1: one step; t > 1: t steps (beside wick_gd_mean_t), r
                                   is z(t) - z_lin(t), z_lin(t) - y = (1 - eta H(0))^t (z(0) - y)
                                   with each network's own H(0), RES2 and RES3 are NAN */
} wick_gd1_config;
enum { WICK_GD1_MEAN = 0, WICK_GD1_NTK, WICK_GD1_RES, WICK_GD1_RES2, WICK_GD1_RES3,
       WICK_GD1_LIN, WICK_GD1_COUNT };
WICK_API wick_status wick_gd1_measure(const wick_gd1_config *c, double *val, double *se);
/* The variance across initialisations of the output after c->steps steps
 * (one output; beside wick_gd_var_t), on the same mirror pairs; at = (1 -
 * eta Theta)^t of the infinite-width NTK.  val[WICK_GD1V_*], se alike:
 *   VAR     Var z(t);   VAR0  Var z(0);   MEAN  E[z(t)];
 *   EXCESS  Var z(t) - at^2 Var z(0) (its 1/n part: all but a^{2t} K1),
 *   FROZEN  Var z_lin(t) - at^2 Var z(0), z_lin each network's own
 *           frozen-NTK trajectory (the NTK's Theta1, D + 2F, A + 2B),
 *   BEYOND  Var z(t) - Var z_lin(t) (the dNTK and ddNTK terms),
 * each difference estimated as one covariance, Cov(u - w, u + w), so its
 * error is that of u - w (docs/theory-finite-width.md). */
enum { WICK_GD1V_VAR = 0, WICK_GD1V_VAR0, WICK_GD1V_MEAN, WICK_GD1V_EXCESS, WICK_GD1V_FROZEN,
       WICK_GD1V_BEYOND, WICK_GD1V_COUNT };
WICK_API wick_status wick_gd1_var_measure(const wick_gd1_config *c, double at, double *val,
                                          double *se);
/* Gradient descent on one training input a, read at a test input b, on
 * c->samples mirror pairs of networks (n_0 = 2, inputs of Gram G0 as
 * wick_dntk_two_measure's, one output), beside wick_gd_mean_test.  val[e]
 * and se[e] (standard errors over pairs), with z_lin each network's own
 * frozen-NTK trajectory z_b(0) - eta H_ba(0) sum_s (1 - eta H_aa(0))^s (z_a(0) - y):
 *   WICK_GDT_MEAN  E[z_b(t)];         WICK_GDT_LIN  E[z_lin,b(t)] (its 1/n part
 *                  is the frozen NTK's: a_ntk1 + a_var);
 *   WICK_GDT_RES   E[z_b(t) - z_lin,b(t)] (a_dntk + a_ddI + a_ddII over n);
 *   WICK_GDT_RES2, WICK_GDT_RES3  t = 1: its eta^2 and eta^3 parts (steps at
 *                  +-eta; NAN otherwise);
 *   WICK_GDT_TRAIN_RES  the same residual at the training input;
 *   WICK_GDT_NTK_AA, WICK_GDT_NTK_BA  E[H_aa(0)], E[H_ba(0)];
 *   WICK_GDT_STEPS the steps taken (fully trained: until |z_a - y| < 1e-14 (1 + |y|)). */
typedef struct {
    wick_net64_config net;      /* n0 = 2, nout = 1 */
    double G0[4];               /* the inputs' Gram, input 0 trains, input 1 is read */
    double y, eta;
    size_t samples;             /* mirror pairs, >= 2 */
    uint64_t seed;
    long steps;                 /* t >= 1, or -1: fully trained */
} wick_gd_test_config;
enum { WICK_GDT_MEAN = 0, WICK_GDT_LIN, WICK_GDT_RES, WICK_GDT_RES2, WICK_GDT_RES3,
       WICK_GDT_TRAIN_RES, WICK_GDT_NTK_AA, WICK_GDT_NTK_BA, WICK_GDT_STEPS, WICK_GDT_COUNT };
WICK_API wick_status wick_gd_test_measure(const wick_gd_test_config *c, double *val, double *se);
/* The variance across initialisations at the test input after c->steps
 * steps (or fully trained), beside wick_gd_var_test, on the same networks
 * and mirror pairs as wick_gd_test_measure; cinf = c of the infinite-width
 * frozen NTK, Theta_ba/Theta_aa (1 - (1 - eta Theta_aa)^t) (fully trained:
 * Theta_ba/Theta_aa).  With w = z_b(0) - cinf (z_a(0) - y) (its variance
 * carries the kernels' 1/n shift K1 only) and z_lin each network's own
 * frozen-NTK trajectory, val[WICK_GDTV_*] and se alike:
 *   VAR     Var z_b(t);   GP  Var w;   MEAN  E[z_b(t)];
 *   FROZEN  Var z_lin,b - Var w (the NTK's Theta1, D/F, A/B terms),
 *   BEYOND  Var z_b - Var z_lin,b (the dNTK and ddNTK terms),
 *   EXCESS  Var z_b - Var w (all but K1);  STEPS  the mean steps taken.
 * Each difference is one covariance Cov(u - w, u + w) (wick_gd1_var_measure's). */
enum { WICK_GDTV_VAR = 0, WICK_GDTV_GP, WICK_GDTV_MEAN, WICK_GDTV_FROZEN, WICK_GDTV_BEYOND,
       WICK_GDTV_EXCESS, WICK_GDTV_STEPS, WICK_GDTV_COUNT };
WICK_API wick_status wick_gd_test_var_measure(const wick_gd_test_config *c, double cinf,
                                              double *val, double *se);
/* Gradient descent on the first nt (1 or 2) of m inputs (2..WICK_GDM_MAX),
 * read at every input, on c->samples mirror pairs (n_0 = m, inputs of Gram
 * G0 (m x m, positive definite) as the Cholesky rows of m G0, one output),
 * beside wick_gd_mean_multi.  val[a * WICK_GDM_PER + col] and se alike per
 * input a, with z_lin each network's own frozen-NTK trajectory (e(s+1) =
 * (1 - eta H_TT(0)) e(s), z_lin,a = z_a(0) - eta H_aT(0) sum_s e(s)):
 * WICK_GDM_MEAN E[z_a(t)], WICK_GDM_LIN E[z_lin,a(t)], WICK_GDM_RES E[z_a - z_lin,a]
 * (a_dntk + a_ddI + a_ddII over n), WICK_GDM_RES2/RES3 its eta^2 and eta^3
 * parts at t = 1 (NAN otherwise); val[m * WICK_GDM_PER] the steps taken. */
typedef struct {
    wick_net64_config net;      /* n0 = m, nout = 1 */
    int m, nt;
    double G0[16];              /* m x m */
    double y[2], eta;
    size_t samples;             /* mirror pairs, >= 2 */
    uint64_t seed;
    long steps;                 /* t >= 1, or -1: fully trained */
} wick_gd_multi_config;
enum { WICK_GDM_MEAN = 0, WICK_GDM_LIN, WICK_GDM_RES, WICK_GDM_RES2, WICK_GDM_RES3, WICK_GDM_PER };
WICK_API wick_status wick_gd_multi_measure(const wick_gd_multi_config *c, double *val, double *se);

/* Weighted least squares y = slope x + intercept with weights 1/err^2 (err
 * > 0 each): the parameters' standard errors from (X^T W X)^-1, scaled by
 * sqrt(chi2/dof) when chi2/dof > 1 (a poor fit widens them, never narrows
 * them).  *chi2_dof (or NULL) receives chi2/(n-2).  n >= 3. */
WICK_API wick_status wick_fit_line(const double *x, const double *y, const double *err, size_t n,
                                   double *slope, double *slope_err, double *intercept,
                                   double *intercept_err, double *chi2_dof);

/* Kernel predictions on a data set at infinite width: the NNGP posterior
 * mean (docs/theory.md §8, observation noise `noise`) and the fully trained network's
 * ensemble mean under the frozen NTK, Theta_BA Theta_AA^-1 y_A (docs/theory.md §9, t ->
 * infinity).  Inputs are rows of n0 doubles; the Gram flows run through
 * wick_gram_flow with its tabulated path, which needs equal input norms
 * (wick_kernel_normalise).  Test inputs go in batches of `batch` (the
 * training block is recomputed per batch: memory ~ 2 L (nA + batch)^2
 * doubles).  gp_mean, ntk_mean (nB x nout, or NULL) receive the predictions;
 * logev (or NULL) the GP log evidence of the training targets (docs/theory.md §8,
 * summed over outputs). */
typedef struct {
    wick_act act;
    double cb, cw;
    double lambda_b, lambda_w;  /* NTK learning rates (docs/theory.md §7) */
    int depth;
    double noise;               /* GP observation noise variance */
} wick_kernel_hyper;

WICK_API wick_status wick_kernel_predict(const wick_kernel_hyper *h, const double *xA,
                                         const double *yA, size_t nA, const double *xB,
                                         size_t nB, size_t n0, size_t nout, size_t batch,
                                         double *gp_mean, double *ntk_mean, double *logev);
/* Preprocessing for the tabulated Gram flow: subtract the mean of the first
 * nA rows (the training inputs) from all n rows, then scale each row to
 * |x|^2/n0 = 1.  WICK_EINVAL for a row that is zero after centring. */
WICK_API wick_status wick_kernel_normalise(double *x, size_t n, size_t n0, size_t nA);

/* Training against the infinite-width prediction (docs/theory.md §9, §10): M networks
 * (wick_net64_init's k = 0..M-1) trained by `steps` steps of full-batch GD on
 * the loss 1/2 sum (z - y)^2 at rate eta (book units, per-layer lambdas),
 * their test outputs compared with the frozen-NTK prediction at t = steps
 * (Theta, K of the last layer from wick_gram_flow over training and test
 * inputs), and the NTK's motion measured on the first nprobe training inputs.
 * Parallel over networks; per-network results are the same for every thread
 * count, the theory's prediction (BLAS) up to the rounding of its sums. */
typedef struct {
    wick_net64_config net;
    size_t samples;             /* M >= 2 */
    uint64_t seed;
    double eta;                 /* in (0, 1/lambda_max(Theta_AA)); <= 0: 0.5/lambda_max */
    long steps;                 /* T >= 0 */
    const double *xA, *yA;      /* nA x n0 inputs, nA x nout targets */
    size_t nA;
    const double *xB;           /* nB x n0 test inputs */
    size_t nB;
    size_t nprobe;              /* 1..nA (at most 64) */
    int antithetic;             /* 1: networks come in pairs, 2j+1 being 2j with the last layer's
                                   W and b negated (z(0) -> -z(0), same NTK): the ensemble mean
                                   loses most of its init noise; M must be even */
} wick_gd_ensemble_config;

typedef struct {
    size_t nB, nout, samples;
    double eta;                       /* the rate used */
    double *mean, *var;               /* [nB x nout] measured over networks at t = T */
    double *mean_theory, *var_theory; /* the frozen-NTK ensemble prediction at t = T */
    double gap_mean;        /* RMS(mean - mean_theory) / RMS(mean_theory) */
    double gap_mean_floor;  /* its Monte Carlo noise: sqrt(avg var of the mean) / RMS(mean_theory),
                               over pairs when antithetic */
    double gap_var;         /* avg |var - var_theory| / avg var_theory */
    double gap_var_floor;   /* what sampling alone gives for Gaussian outputs:
                               sqrt(2/pi) sqrt(2/(M_eff - 1)), M_eff = M (M/2 antithetic) */
    double gap_net, gap_net_stderr;   /* per network, given its own z(0): RMS_B(z_B(T) -
                                         prediction) / RMS_B(prediction - z_B(0)), averaged */
    double ntk_change, ntk_change_stderr;  /* ||H(T) - H(0)||_F / ||H(0)||_F on the probes */
    double ntk_init_dev, ntk_init_dev_stderr; /* ||H(0) - Theta||_F / ||Theta||_F on the probes */
    double train_loss, train_loss_theory;  /* 1/2 sum over A at T, averaged over networks:
                                              measured, and frozen-NTK from each z(0) */
    double seconds;
    int threads;
} wick_gd_ensemble_result;

WICK_API wick_status wick_gd_ensemble(const wick_gd_ensemble_config *c, wick_gd_ensemble_result **out);
WICK_API void wick_gd_ensemble_free(wick_gd_ensemble_result *r);

/* ---------------------------------------------------------------------------
 * Theory engine (src/theory; docs/theory.md).  No dependency on the training engine.
 * ------------------------------------------------------------------------- */

/* Universality classes of criticality (docs/theory.md §4). */
typedef enum {
    WICK_UNIV_NONE = 0,        /* no critical initialisation (sigmoid, softplus, perceptron) */
    WICK_UNIV_SCALE_INVARIANT, /* linear, ReLU, leaky ReLU: chi_par = chi_perp = C_W A2 at every K */
    WICK_UNIV_KSTAR_ZERO,      /* sigma(0) = 0, a1 < 0 (tanh, sin): K* = 0, power-law approach */
    WICK_UNIV_HALF_STABLE      /* sigma(0) = 0, a1 > 0 (swish, gelu): a non-zero K* */
} wick_universality;

/* "scale-invariant", "K*=0", "half-stable", "none". */
WICK_API const char *wick_universality_name(wick_universality u);

/* A network for the theory engine: activation, depth L and per-layer
 * hyperparameters (docs/theory.md §1, §7).  Scalars apply to every layer unless the
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

/* Gaussian expectations (docs/theory.md §2): <sigma^(d1)(z1) sigma^(d2)(z2)> over the
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

/* chi_par(K) = C_W d<sigma^2>_K/dK and chi_perp(K) = C_W <sigma'^2>_K (docs/theory.md §4).
 * WICK_EINVAL for the perceptron (its derivative is a delta). */
WICK_API wick_status wick_chi(wick_act a, double cw, double K, double *chi_par, double *chi_perp);

/* The fixed point K* = C_b + C_W <sigma^2>_{K*} reached from K0 by iterating
 * the single-input map (docs/theory.md §4).  0 when the flow decays to K* = 0 (as a
 * power law at criticality); WICK_ENUMERIC when the kernel grows without
 * bound or does not settle. */
WICK_API wick_status wick_fixed_point(wick_act a, double cb, double cw, double K0, double *kstar);

/* The critical initialisation and universality class of an activation (docs/theory.md §4). */
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

/* Per-layer single-input quantities (docs/theory.md §3, §4, §6, §7) for an input of
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

/* The order-1/n theory of one input of norm q (docs/theory-finite-width.md;
 * the book's ch. 4 and 8), per layer l (out[l-1]), each with 1/n_{l-1}
 * pulled out: E[z_i z_j] = delta_ij (K + K1/n_{l-1}) (the subleading
 * kernel); E[H_ij] = delta_ij (ntk + ntk1/n_{l-1}) (the NTK's mean shift);
 * Cov(H_i1i2, H_i3i4) = (d12 d34 A + (d13 d24 + d14 d23) B)/n_{l-1} (the
 * NTK's variance); E[dH_i1i2 z_i3 z_i4] = (d12 d34 D + (d13 d24 + d14 d23) F)
 * /n_{l-1} (its correlation with the preactivations); V as in
 * wick_layer_theory; the dNTK dH_i0i1i2 = sum_mu lambda_mu dz_i0/dtheta_mu
 * dH_i1i2/dtheta_mu (the book's ch. 11) correlates with one preactivation as
 * E[dH_i0i1i2 z_i3] = (d01 d23 P + d02 d13 P + d03 d12 Q)/n_{l-1}.  All vanish
 * at l = 1.  Not for the perceptron. */
typedef struct {
    double K, V, ntk, K1, ntk1, A, B, D, F, P, Q;
} wick_layer_finite;

WICK_API wick_status wick_theory_finite(const wick_theory_config *c, double q,
                                        wick_layer_finite *out);
/* The means of the two ddNTKs of one input of norm q (the book's ch. 11;
 * docs/theory-finite-width.md), per layer l (out[l-1]), 1/n_{l-1} pulled
 * out.  With G_i = lambda grad z_i (lambda the learning-rate tensor:
 * lambda_b, lambda_W/n_{l-1}) and v_ab = Hess(z_a) G_b:
 *   ddI_i0i1i2i3  = D^3 z_i0 [G_i1, G_i2, G_i3],
 *   ddII_i1i2i3i4 = < v_i1i3, lambda v_i2i4 >
 *                 = sum lambda^3 d2z_i1/dth_m1 dth_m2 d2z_i2/dth_n1 dth_m3 dz_i3/dth_n2 dz_i4/dth_n3,
 *   E[ddI_i0i1i2i3]  = (d01 d23 + d02 d13 + d03 d12) R / n_{l-1},
 *   E[ddII_i1i2i3i4] = (d12 d34 S + d13 d24 T + d14 d23 U) / n_{l-1}.
 * All vanish at l = 1.  Scale-invariant activations (ReLU): sigma'' =
 * sigma''' = 0 almost everywhere, the ddNTKs a real network has (R = U = 0).
 * Not for the perceptron. */
typedef struct {
    double R, S, T, U;
} wick_layer_ddntk;

WICK_API wick_status wick_theory_ddntk(const wick_theory_config *c, double q,
                                       wick_layer_ddntk *out);
/* The mean output after one step of full-batch MSE gradient descent at
 * order 1/n (docs/theory-finite-width.md; the book's ch. 11 and its chapter
 * on the trained network): one training input of norm q, targets y (nout),
 * theta <- theta - eta lambda dL/dtheta on L = 1/2 |z - y|^2 (the rates of
 * wick_net64_gd_step), every term at the last layer L of c:
 *   E[z_i(1)] = y_i [lin + (a1 + a2 + a3) / n_{L-1}] + O(1/n^2),
 *   lin = eta Theta, a1 = eta Theta1, a2 = -eta^2 (P + nout Q / 2),
 *   a3 = (eta^3 / 2) R (K (nout + 2) + |y|^2),
 * with R the ddNTK's mean, E[ddI_{i0i1i2i3}] = R (d01 d23 + d02 d13 +
 * d03 d12) / n_{L-1}, ddI = sum lambda^3 d^3z_i0 dz_i1 dz_i2 dz_i3 (the
 * book's ch. 11), the caller's or (NAN) wick_theory_ddntk's. */
typedef struct {
    double K, ntk, ntk1, P, Q, R;   /* the last layer's tensors used */
    double lin, a1, a2, a3;
} wick_gd1_terms;

WICK_API wick_status wick_gd_mean1(const wick_theory_config *c, double q, size_t nout,
                                   const double *y, double eta, double R, wick_gd1_terms *out);
/* The same after t steps, one output (docs/theory-finite-width.md): the
 * step's cubic Taylor map iterated with the NTK and dNTK moving (the book's
 * ch. 11 and its chapter on the trained network), the mean at order 1/n:
 *   E[z(t)] = lin + (a_ntk1 + a_var + a_dntk + a_ddI + a_ddII) / n_{L-1},
 * lin = y (1 - (1 - eta Theta)^t) the frozen NTK's; a_ntk1 from Theta1,
 * a_var from the NTK's variance A + 2B, a_dntk from P + Q/2, a_ddI from the
 * ddI mean R, a_ddII from the ddII mean S + T + U (the caller's, or with
 * NAN wick_theory_ddntk's).  t = 1 is wick_gd_mean1's with nout = 1.
 * WICK_EINVAL when eta is outside (0, 2/Theta). */
typedef struct {
    double K, ntk, ntk1, A, B, P, Q, R, STU;   /* the last layer's tensors used */
    double lin, a_ntk1, a_var, a_dntk, a_ddI, a_ddII;
} wick_gdt_terms;

WICK_API wick_status wick_gd_mean_t(const wick_theory_config *c, double q, double y, double eta,
                                    long t, double R, double STU, wick_gdt_terms *out);
/* The same for nout outputs (targets y): E[z_i(t)] = y_i [lin + (a_ntk1 +
 * a_var + a_dntk + a_ddI + a_ddII) / n_{L-1}], every term per unit target
 * (the order-1/n shift is along y for one input); a_var carries
 * A + (nout + 1) B, a_dntk P and Q through the dNTK's two contractions,
 * a_ddI and a_ddII R and S + T + U times K (nout + 2) + |y|^2.  Computed by
 * perturbation about the frozen trajectory (docs/theory-finite-width.md),
 * independently of wick_gd_mean_t's algebra: nout = 1 gives its terms / y. */
WICK_API wick_status wick_gd_mean_tn(const wick_theory_config *c, double q, size_t nout,
                                     const double *y, double eta, long t, double R, double STU,
                                     wick_gdt_terms *out);
/* The variance across initialisations of the output after t steps, one
 * output, at order 1/n (docs/theory-finite-width.md):
 *   Var z(t) = var + (v_K1 + v_V + v_ntk1 + v_DF + v_var + v_dntk + v_ddI
 *              + v_ddII) / n_{L-1},   var = (1 - eta Theta)^{2t} K,
 * from the kernel's shift K1, the vertex V (0: z(t) is linear in z(0) at
 * leading order), the NTK's mean shift, its correlation with z^2 (D + 2F),
 * its variance (A + 2B), the dNTK and the two ddNTKs; mean = E[z(t)] at
 * infinite width.  R, S + T + U as wick_gd_mean_t's. */
typedef struct {
    double K, K1, V, ntk, ntk1, A, B, D, F, P, Q, R, STU;   /* the last layer's tensors used */
    double mean, var, v_K1, v_V, v_ntk1, v_DF, v_var, v_dntk, v_ddI, v_ddII;
} wick_gdvar_terms;

WICK_API wick_status wick_gd_var_t(const wick_theory_config *c, double q, double y, double eta,
                                   long t, double R, double STU, wick_gdvar_terms *out);
/* The mean after t steps at a TEST input (docs/theory-finite-width.md, "the mean at a test
 * input"; the book's ch. 11 and its chapter on the trained network): one
 * output trained on input a = 0 (target y), read at input b = 1, the step's
 * Taylor map with sample indices iterated.  Its ingredients at the last layer,
 * each times n_{L-1} (filled by wick_gd_test_tensors_two from the two-input
 * engine, or by the caller): K = K_aa; ntk, ntk1 = Theta, Theta1 at (aa, ba);
 * var_aa = n Var(H_aa), cov_ab = n Cov(H_aa, H_ba); xz = n E[X z_a] for
 * X_{a;aa}, X_{b;aa}, X_{a;ba} (X_{d;bc} = sum l^2 d2z_d dz_b dz_c, the
 * dNTK in the book's form); ddI = n E[Y] for Y_{a;aaa}, Y_{b;aaa}, Y_{a;baa};
 * ddII = n E[Z] for Z_{aa;aa}, Z_{ba;aa}, Z_{aa;ba} (Z_{d1d2;b1b2} =
 * <Hess z_d1 G_b1, lambda Hess z_d2 G_b2>). */
typedef struct {
    double K, ntk[2], ntk1[2], var_aa, cov_ab, xz[3], ddI[3], ddII[3];
} wick_gd_test_tensors;
/* E[z(t)] = lin + (a_ntk1 + a_var + a_dntk + a_ddI + a_ddII) / n_{L-1}. */
typedef struct {
    double lin, a_ntk1, a_var, a_dntk, a_ddI, a_ddII;
} wick_gd_test_part;
typedef struct {
    wick_gd_test_part train, test;  /* at the training input (= wick_gd_mean_t's) and the test input */
    long steps;                     /* the steps iterated (t, or to convergence) */
} wick_gd_test_terms;
/* pq: which dNTK correlators give xz: 0 wick_dntk_PQ_two (sigma'' of a kink
 * a delta), 1 wick_dntk_PQ_two_pathwise, 2 wick_dntk_PQb_two (the book's
 * form; pathwise).  The same for smooth activations.  G0: the inputs' Gram
 * (2 x 2, not parallel), depth >= 2. */
WICK_API wick_status wick_gd_test_tensors_two(const wick_theory_config *c, const double G0[4], int pq,
                                              wick_gd_test_tensors *T);
/* t >= 0 steps, or t = -1: fully trained (the map iterated until every term
 * has converged to rounding).  WICK_EINVAL when eta is outside (0, 2/Theta_aa). */
WICK_API wick_status wick_gd_mean_test(const wick_gd_test_tensors *T, double y, double eta, long t,
                                       wick_gd_test_terms *out);
/* The VARIANCE across initialisations at the test input b after t steps
 * (docs/theory-finite-width.md, "the variance at a test input"; the book's
 * ch. 4, 8, 11 and its chapter on the trained network), one output, the map
 * of wick_gd_mean_test: the ingredients of the mean (base) and, each times
 * n_{L-1} where of order 1/n: Kab, Kbb = K_ab, K_bb; K1 = K1_aa, K1_ab, K1_bb;
 * V = V_{(aa)(aa)}, V_{(ba)(aa)}; var_bb = n Var(H_ba); kaa, kab = n
 * E[dH_x z_a z_a], n E[dH_x z_a z_b] for x = H_aa, H_ba (one output: D + F +
 * F in the book's three pairings); xzb = n E[X z_b] for X_{a;aa}, X_{b;aa},
 * X_{a;ba}.  Filled by wick_gd_testvar_tensors_two (pq as wick_gd_test_tensors_two's). */
typedef struct {
    wick_gd_test_tensors base;
    double Kab, Kbb, K1[3], V[2], var_bb, kaa[2], kab[2], xzb[3];
} wick_gd_testvar_tensors;
/* Var z_b(t) = var + (v_K1 + v_V + v_ntk1 + v_DF + v_var + v_dntk + v_ddI +
 * v_ddII) / n_{L-1}: var the frozen-NTK Gaussian process's K_bb - 2 c K_ab +
 * c^2 K_aa, c = Theta_ba/Theta_aa (1 - (1 - eta Theta_aa)^t); the 1/n parts
 * from the kernel's shift, the vertex, the NTK's mean shift, its correlation
 * with z z, its covariance, the dNTK and the two ddNTKs; mean = E[z_b(t)] at
 * infinite width.  t >= 0, or -1: fully trained. */
typedef struct {
    double mean, var, v_K1, v_V, v_ntk1, v_DF, v_var, v_dntk, v_ddI, v_ddII;
    long steps;
} wick_gd_testvar_terms;
WICK_API wick_status wick_gd_testvar_tensors_two(const wick_theory_config *c, const double G0[4],
                                                 int pq, wick_gd_testvar_tensors *V);
WICK_API wick_status wick_gd_var_test(const wick_gd_testvar_tensors *V, double y, double eta, long t,
                                      wick_gd_testvar_terms *out);
/* SEVERAL training inputs (docs/theory-finite-width.md, "several training
 * inputs"; the book's ch. 11 and its chapter on the trained network): m
 * inputs, the first nt (1 or 2) trained on (targets y, loss weights w: loss
 * sum_b w_b (z_b - y_b)^2 / 2), the rest read; one output.  The map of
 * wick_gd_mean_test with one force per training sample.  Ingredients at the
 * last layer, each times n_{L-1}, every sample index base m: K, ntk, ntk1
 * [a m + b]; cov[(a1 m + a2) m^2 + a3 m + a4] = n Cov(H_{a1a2}, H_{a3a4});
 * xz[((a m + b) m + c) m + d] = n E[X_{a;bc} z_d]; ddI[..a0a1a2a3] = n E[Y_{a0;a1a2a3}];
 * ddII[..a1a2a3a4] = n E[Z_{a1a2;a3a4}] (X, Y, Z as wick_gd_test_tensors'). */
#define WICK_GDM_MAX 4
typedef struct {
    int m, nt;
    double K[16], ntk[16], ntk1[16];
    double cov[256], xz[256], ddI[256], ddII[256];
} wick_gd_multi_tensors;
typedef struct {
    wick_gd_test_part at[WICK_GDM_MAX];  /* per input: E[z_a(t)] = lin + (a_...) / n_{L-1} */
    long steps;
} wick_gd_multi_terms;
/* From the engine: m = 2 (wick_*_two) or 3 (wick_*_multi), nt = 1 or 2; pq as
 * wick_gd_test_tensors_two's.  G0 m x m, not singular. */
WICK_API wick_status wick_gd_tensors_multi(const wick_theory_config *c, int m, int nt,
                                           const double *G0, int pq, wick_gd_multi_tensors *T);
/* t >= 0 steps, or -1: fully trained (every training output then has mean
 * y_b with no 1/n term).  w NULL: every weight 1.  WICK_EINVAL when some
 * |1 - eta lambda| >= 1 over the nonzero eigenvalues lambda of Theta_TT W. */
WICK_API wick_status wick_gd_mean_multi(const wick_gd_multi_tensors *T, const double *y,
                                        const double *w, double eta, long t,
                                        wick_gd_multi_terms *out);
/* The subleading kernel of two inputs (the book's ch. 4): K1[(l-1)*4 + 2a+b]
 * with E[z_a z_b] = K_ab + K1_ab / n_{l-1} at layer l, from the input Gram G0
 * (2 x 2) through the two-input vertex (wick_vertex2).  The off-diagonal
 * entry's derivatives are central differences (about 1e-6 relative); the
 * inputs' correlation must stay clear of +-1.  Not for the perceptron. */
WICK_API wick_status wick_kernel1_two(const wick_theory_config *c, const double G0[4], double *K1);
/* The NTK's variance tensor B of two inputs (the book's ch. 8):
 * B[(l-1)*16 + (2 a1 + a3) * 4 + 2 a2 + a4] = B_{(a1 a3)(a2 a4)} at layer l,
 * with E[H_{jk;a1a2} H_{jk;a3a4}] = B_{(a1a3)(a2a4)} / n_{l-1} for j != k
 * (docs/theory-finite-width.md).  Not for the perceptron. */
WICK_API wick_status wick_ntk_B_two(const wick_theory_config *c, const double G0[4], double *B);
/* The rest of the NTK's order-1/n tensors of two inputs (the book's ch. 8,
 * docs/theory-finite-width.md), per layer l: T1[(l-1)*4 + 2a+b] the mean
 * shift (E[H_{ii;ab}] = Theta_ab + T1_ab/n_{l-1}); A[(l-1)*16 + (2a1+a2)*4 +
 * 2a3+a4] = A_{(a1a2)(a3a4)} (Cov(H_{ii;a1a2}, H_{jj;a3a4}) = A/n_{l-1}, i != j);
 * D likewise (E[dH_{ii;a1a2} z_{j;a3} z_{j;a4}] = D_{a1a2a3a4}/n_{l-1}); F in
 * B's layout (E[dH_{jk;a1a2} z_{j;a3} z_{k;a4}] = F_{(a1a3)(a2a4)}/n_{l-1}).
 * The inputs must not be parallel.  Not for the perceptron. */
WICK_API wick_status wick_ntk_fluct_two(const wick_theory_config *c, const double G0[4], double *T1,
                                        double *A, double *D, double *F);
/* The dNTK-preactivation correlators of two inputs (the book's ch. 11;
 * docs/theory-finite-width.md), per layer l:
 * P[(l-1)*16 + 8 a0 + 4 a1 + 2 a2 + a3] = P_{a0a1a2a3}, Q alike, with
 * E[dH_{i0i1i2;a0a1a2} z_{i3;a3}] = [d01 d23 P_{a0a1a2a3} + d02 d13 P_{a0a2a1a3}
 * + d03 d12 Q_{a0a1a2a3}] / n_{l-1}, dH as in wick_layer_finite (so
 * Q_{a0a1a2a3} = Q_{a0a2a1a3}; the components with every a equal are
 * wick_theory_finite's P, Q at that input's norm).  0 at l = 1.  The inputs
 * must not be parallel.  Not for the perceptron. */
WICK_API wick_status wick_dntk_PQ_two(const wick_theory_config *c, const double G0[4], double *P,
                                      double *Q);
/* The same with a kink's sigma'' taken as 0 instead of a delta: the mean of
 * the pathwise dNTK (the derivative at each network's parameters, which
 * autodiff and wick_dntk_two_measure with eta = 0 give: an infinitesimal
 * step crosses no kink).  wick_dntk_PQ_two takes sigma'' as a delta, the
 * limit of smooth activations (a step of finite size crosses kinks, and the
 * ensemble sees them: docs/theory-finite-width.md).  They differ only for
 * the scale-invariant class (linear, ReLU, leaky ReLU), and there only in
 * components that mix the two inputs (within one input the delta meets
 * sigma(0) = 0). */
WICK_API wick_status wick_dntk_PQ_two_pathwise(const wick_theory_config *c, const double G0[4],
                                               double *P, double *Q);
/* The same correlators in the book's form (sigma'' on the differentiated
 * leg), which the recursion of the two-input ddNTKs needs: with dHb_{i0i1i2}
 * = D^2 z_{i0;a0}[G_{i1;a1}, G_{i2;a2}] (G = lambda grad z),
 * E[dHb z_{i3;a3}] = [d03 d12 Pb_{a0a1a2a3} + d01 d23 Qb_{a0a1a2a3}
 * + d02 d13 Qb_{a0a2a1a3}] / n_{l-1}, layout as wick_dntk_PQ_two; so
 * P_{a0a1a2a3} = Qb_{a1a0a2a3} + Pb_{a2a0a1a3} and Q_{a0a1a2a3} =
 * Qb_{a1a2a0a3} + Qb_{a2a1a0a3}.  Kinks pathwise (sigma'' = 0). */
WICK_API wick_status wick_dntk_PQb_two(const wick_theory_config *c, const double G0[4], double *Pb,
                                       double *Qb);
/* The ddNTK means of two inputs (the book's ch. 11; docs/theory-finite-width.md),
 * per layer l, R[(l-1)*16 + 8 a0 + 4 a1 + 2 a2 + a3] and S, T, U alike:
 * E[D^3 z_{i0;a0}[G_{i1;a1}, G_{i2;a2}, G_{i3;a3}]] = [d01 d23 R_{a0a1a2a3}
 * + d02 d13 R_{a0a2a1a3} + d03 d12 R_{a0a3a1a2}] / n_{l-1} and, with
 * v_{ij;ab} = Hess(z_{i;a}) G_{j;b}, E[<v_{i1i3;a1a3}, lambda v_{i2i4;a2a4}>]
 * = [d12 d34 S + d13 d24 T + d14 d23 U]_{a1a2a3a4} / n_{l-1}.  0 at l = 1;
 * the components with every a equal are wick_theory_ddntk's.  Kinks
 * pathwise (sigma'' = sigma''' = 0: R = U = 0 for the scale-invariant
 * class).  The inputs must not be parallel (the NTK's F needs it).  Not for
 * the perceptron. */
WICK_API wick_status wick_theory_ddntk_two(const wick_theory_config *c, const double G0[4], double *R,
                                           double *S, double *T, double *U);
/* The two-input ddNTK means measured over c->samples networks (n_0 = 2,
 * inputs of Gram G0 as wick_dntk_two_measure's, every layer of width n):
 * val[(l-1)*64 + 16 t + 8 a0 + 4 a1 + 2 a2 + a3] estimates R, S, T, U (t =
 * 0..3) of wick_theory_ddntk_two (n_{l-1}/n^2 times Hutchinson estimates
 * from two Rademacher probes of layer l: the tensor + O(1/n)), se their
 * standard errors; 0 at l = 1.  Exact derivatives (kinks pathwise).
 * Depth 1..64, width 2..2048, depth x width^2 <= 2^24. */
WICK_API wick_status wick_ddntk_two_measure(const wick_ntk_fluct_config *c, const double G0[4],
                                            double *val, double *se);
/* The same order-1/n tensors for m inputs (m = 2 or 3; docs/theory-finite-width.md,
 * "Three inputs"), from the inputs' Gram G0 (m x m, not singular): each is the
 * two-input function above with every sample index running over 0..m-1 and
 * index base m instead of 2, so that with m = 2 they give the *_two functions'
 * values (to quadrature accuracy), and the entries with only two distinct
 * sample indices a, b equal the two-input function on the sub-Gram of a, b.
 * Per layer l, with M2 = m^2 and M4 = m^4:
 *   V[(l-1)*M4 + (a1 m + a2) m^2 + a3 m + a4]    the vertex (wick_vertex2's layout);
 *   K1[(l-1)*M2 + a m + b]                        (wick_kernel1_two);
 *   T1[(l-1)*M2 + a m + b]; A, D [(l-1)*M4 + (a1 m + a2) m^2 + a3 m + a4];
 *   B, F [(l-1)*M4 + (a1 m + a3) m^2 + a2 m + a4]  (wick_ntk_fluct_two, wick_ntk_B_two);
 *   P, Q, Pb, Qb, R, S, T, U [(l-1)*M4 + ((a0 m + a1) m + a2) m + a3]
 *                                 (wick_dntk_PQ_two, wick_dntk_PQb_two, wick_theory_ddntk_two).
 * Expectations over three distinct preactivations: a rule on the sphere
 * between the kinks for the scale-invariant class (exact up to rounding for
 * its piecewise-polynomial integrands), a tensor trapezoid rule in whitened
 * coordinates for the smooth activations.  Not for the perceptron. */
WICK_API wick_status wick_vertex_multi(const wick_theory_config *c, int m, const double *G0, double *V);
WICK_API wick_status wick_kernel1_multi(const wick_theory_config *c, int m, const double *G0, double *K1);
WICK_API wick_status wick_ntk_B_multi(const wick_theory_config *c, int m, const double *G0, double *B);
WICK_API wick_status wick_ntk_fluct_multi(const wick_theory_config *c, int m, const double *G0,
                                          double *T1, double *A, double *D, double *F);
WICK_API wick_status wick_dntk_PQ_multi(const wick_theory_config *c, int m, const double *G0,
                                        double *P, double *Q);
WICK_API wick_status wick_dntk_PQ_multi_pathwise(const wick_theory_config *c, int m, const double *G0,
                                                 double *P, double *Q);
WICK_API wick_status wick_dntk_PQb_multi(const wick_theory_config *c, int m, const double *G0,
                                         double *Pb, double *Qb);
WICK_API wick_status wick_theory_ddntk_multi(const wick_theory_config *c, int m, const double *G0,
                                             double *R, double *S, double *T, double *U);

/* Residual MLPs (the book's appendix on residual learning;
 * docs/theory-residual.md): z^(1) = b + W x and, for
 * l >= 1, z^(l+1) = xi z^(l) + gamma (b^(l+1) + W^(l+1) sigma(z^(l))), every
 * hidden width n.  Per layer as wick_theory_single (xi = 0, gamma = 1 gives
 * it back): K, chi_par = xi^2 + gamma^2 C_W d<sigma^2>/dK, chi_perp, the
 * vertex V (E[z_i^2 z_j^2] - K^2 = V/n, i != j) and the NTK mean.  Not for the
 * perceptron; width_l must keep the hidden widths equal. */
WICK_API wick_status wick_residual_single(const wick_theory_config *c, double xi, double gamma,
                                          double q, wick_layer_theory *out);
/* The same with the vertex closed on V alone, as the MLP's recursion is
 * (V' = chi_par^2 V + gamma^4 C_W^2 Var(sigma^2) + 4 xi^2 gamma^2 K^2 C_W
 * d<sigma^2>/dK): exact for the deep linear net and at layer 2, but a
 * residual layer is not a Gaussian scale mixture of the one before, and
 * beyond layer 2 wick_residual_single's Hermite-mode recursion is the order-1/n
 * vertex (the ensembles reject the closure; docs/theory-residual.md). */
WICK_API wick_status wick_residual_closure(const wick_theory_config *c, double xi, double gamma,
                                           double q, wick_layer_theory *out);
/* The residual net's critical point: the plain MLP's (C_b, C_W) times
 * (1 - xi^2)/gamma^2 (same K*, class; the K*=0 class's a1 times 1 - xi^2).
 * Needs xi^2 < 1, gamma > 0.  Status as wick_critical. */
WICK_API wick_status wick_residual_critical(wick_act a, double xi, double gamma,
                                            wick_critical_info *out);
/* Measured on M residual networks of width n (float64, Philox stream k for
 * network k, any thread count the same): K[l-1] = E[z^2] and V[l-1] = n
 * (E[z_i^2 z_j^2] - E[z^2]^2) at layer l with standard errors (either se may
 * be NULL).  V tends to the vertex as n grows (fit c0 + c1/n).  full = 0
 * draws each layer's b + W sigma as the N(0, C_b + C_W G) it is for one
 * input (n normals a layer); full = 1 draws W and multiplies (n^2). */
WICK_API wick_status wick_residual_measure(const wick_theory_config *c, double xi, double gamma,
                                           double q, size_t n, size_t M, uint64_t seed, int full,
                                           double *K, double *K_se, double *V, double *V_se);
/* The NTK of output neuron 0 of layer L measured on M residual networks of
 * width n (real weights, float64, backpropagated; n_0 = 1): its mean and
 * standard error, to compare with wick_residual_single's ntk (the book's
 * learning-rate normalisation, lambda_W / n_{l-1}). */
WICK_API wick_status wick_residual_ntk_measure(const wick_theory_config *c, double xi,
                                               double gamma, double q, size_t n, size_t M,
                                               uint64_t seed, double *mean, double *se);
/* Several inputs at infinite width (docs/theory-residual.md §2): K and Theta
 * (or NULL) [L][n][n] of the residual net from the input Gram G0 (n x n), as
 * wick_gram_flow for the MLP. */
WICK_API wick_status wick_residual_gram(const wick_theory_config *c, double xi, double gamma,
                                        const double *G0, size_t n, double *K, double *Theta);
/* The book's estimate of the optimal aspect ratio r* = L/n (its appendix on
 * information in deep learning; docs/theory-residual.md): nu r* = 4/(20 +
 * 3 n_L), nu the growth of V/K^2 per layer at criticality (measured between
 * layers 100 and 200 of the flow; ReLU 5, the K*=0 class 2/3), for the
 * residual net (xi, gamma) or the MLP (xi = 0).  nu or rstar may be NULL.
 * WICK_ENUMERIC without a critical point. */
WICK_API wick_status wick_aspect_ratio(wick_act a, double xi, double gamma, int n_out,
                                       double *nu, double *rstar);

/* Finite-width Bayesian inference (the book's ch. 6; docs/theory-residual.md
 * §7): the posterior mean of one output at a test input (index m-1) given
 * y[0..m-2], observations of it at the training inputs with Gaussian noise of
 * variance `noise`, under a nearly-Gaussian prior of covariance K (m x m) and
 * fourth cumulant kappa (m^4, the coefficient of 1/n): mean0 the Gaussian
 * process's, mean1 the coefficient of 1/n (first-order Edgeworth). */
WICK_API wick_status wick_bayes_mean1(const double *K, const double *kappa, size_t m,
                                      const double *y, double noise, double *mean0,
                                      double *mean1);
/* The same for the deep linear net (C_b = 0, depth L, hidden widths n) from
 * the input Gram G (m x m, |x|^2/n0 scale, test input last).  Without noise
 * mean1 = 0: the net's prior is a scale mixture of Gaussians, whose
 * noiseless posterior mean is the Gaussian process's at any width. */
WICK_API wick_status wick_bayes_linear(double cw, int L, const double *G, size_t m,
                                       const double *y, double noise, double *mean0,
                                       double *mean1);
/* The posterior mean and covariance of the outputs at nB = m - nA test
 * inputs (indices nA..m-1) given y[0..nA-1] observed at the training inputs
 * with Gaussian noise of variance `noise` (docs/theory-bayes.md): prior
 * covariance K + K1/n (m x m; K1 may be NULL for none) and fourth cumulant
 * kappa/n (m^4, or NULL).  mean0 [nB] and cov0 [nB x nB] are the Gaussian
 * process's; mean1 and cov1 the coefficients of 1/n (first-order
 * Edgeworth).  Any output may be NULL. */
WICK_API wick_status wick_bayes_posterior(const double *K, const double *K1, const double *kappa,
                                          size_t m, size_t nA, const double *y, double noise,
                                          double *mean0, double *mean1, double *cov0,
                                          double *cov1);
/* The same for the deep linear net (as wick_bayes_linear, nA training inputs). */
WICK_API wick_status wick_bayes_linear_posterior(double cw, int L, const double *G, size_t m,
                                                 size_t nA, const double *y, double noise,
                                                 double *mean0, double *mean1, double *cov0,
                                                 double *cov1);
/* The same for the network c (every hidden width n; c->width unused) from
 * the input Gram G0 (m x m, |x|^2/n0 scale): depth 2 with 2 to 4 inputs (the
 * hidden layer's moments by Gauss-Hermite quadrature; K1 = 0), or any depth
 * with m = 2 (one training and one test input: wick_vertex2 and
 * wick_kernel1_two at the last layer).  Not for the perceptron. */
WICK_API wick_status wick_bayes_net(const wick_theory_config *c, const double *G0, size_t m,
                                    size_t nA, const double *y, double noise, double *mean0,
                                    double *mean1, double *cov0, double *cov1);

/* Kernel (NNGP) and NTK flows for n inputs from the first layer's input Gram
 * matrix G0[a*n+b] = (1/n0) sum_j x_ja x_jb (n x n, symmetric PSD):
 * K[(l-1)*n*n + a*n + b] = K^(l)_ab for l = 1..L (docs/theory.md §3); Theta likewise
 * (docs/theory.md §7), or NULL to skip it (it must be NULL for the perceptron).
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

/* The last layer's NNGP K and NTK Theta for inputs of one norm
 * |x|^2/n0 = q (docs/kernel.md): every entry is a function of the input
 * correlation alone, tabulated once per network as piecewise Chebyshev
 * interpolants in the angle (within 1e-14 of the diagonal by their tails;
 * measured within 1e-12 of the layer-by-layer walk), so a Gram costs the
 * input Gram (BLAS) plus one arccos and two short sums an entry.  Every
 * activation but the perceptron; per-layer hyperparameters as in
 * wick_theory_config (width and tabulate are not used). */
typedef struct wick_kgram wick_kgram;
typedef struct {
    double kdiag, tdiag;     /* K_L and Theta_L of an input with itself */
    int pieces, degree;      /* the map: pieces x Chebyshev degree */
    double tail;             /* its largest Chebyshev tail relative to the diagonal */
    double build_seconds;
} wick_kgram_stats;
WICK_API wick_status wick_kgram_new(const wick_theory_config *c, double q, wick_kgram **out);
WICK_API void wick_kgram_free(wick_kgram *g);
WICK_API void wick_kgram_info(const wick_kgram *g, wick_kgram_stats *s);
/* K, Theta (either may be NULL) of the n input correlations rho[] through the map. */
WICK_API wick_status wick_kgram_map(const wick_kgram *g, const double *rho, size_t n, double *K,
                                    double *Theta);
/* The exact layer-by-layer walk of one correlation (the map's reference). */
WICK_API wick_status wick_kgram_walk(const wick_kgram *g, double rho, double *K, double *Theta);
/* n x n Grams of the rows of x (n x n0), symmetric to the bit; K or Theta may be NULL.
 * WICK_EINVAL when a row's |x|^2/n0 is not q. */
WICK_API wick_status wick_kgram_sym(const wick_kgram *g, const double *x, size_t n, size_t n0,
                                    double *K, double *Theta);
/* na x nb Grams of rows xa against rows xb, leading dimension ld. */
WICK_API wick_status wick_kgram_cross(const wick_kgram *g, const double *xa, size_t na,
                                      const double *xb, size_t nb, size_t n0, double *K,
                                      double *Theta, size_t ld);

/* Kernel regression on a whole training set (docs/kernel.md): the NNGP
 * posterior mean (and variance) and the frozen-NTK prediction at t -> inf
 * like wick_kernel_predict, with the training Gram built by wick_kgram
 * straight into LAPACK's rectangular full packed format (one triangle:
 * 8 nA^2/2 bytes), factored in place (dpftrf's steps) and solved (dpftrs,
 * dtfsm).  Inputs normalised (wick_kernel_normalise).  Each output may be
 * NULL; gp_var (nB) is the latent posterior variance K_bb - k^T A^-1 k. */
typedef void (*wick_kernel_progress)(void *ctx, const char *phase, double fraction, double seconds);
/* How the training solves are done: float64 Choleskys, or float32 ones (twice
 * the flops a second) refined to float64 accuracy by conjugate gradients
 * whose products recompute A from the inputs (docs/kernel.md, "Mixed
 * precision"); AUTO takes float32 from 16,384 training inputs on, and
 * float64 where the variance is wanted or a float32 factor fails. */
typedef enum { WICK_KERNEL_AUTO = 0, WICK_KERNEL_DOUBLE, WICK_KERNEL_MIXED } wick_kernel_precision;
typedef struct {
    double ntk_ridge;              /* added to Theta_AA's diagonal, relative to it (default 0) */
    wick_kernel_progress progress; /* called between slices of the work, or NULL */
    void *ctx;
    wick_kernel_precision precision;
    double tol;                    /* refinement's target max_c |r_c| / |y_c| (0: 1e-10) */
} wick_kernel_solve_opts;
typedef struct {
    double *gp_mean, *gp_var, *ntk_mean, *logev;   /* caller's arrays, or NULL */
    double chol_seconds_gp, chol_seconds_ntk;      /* filled in */
    int mixed;                     /* filled in: 1 when float32 factors were refined */
    int pcg_iters[2];              /* then the passes (NNGP, NTK) and their final */
    double pcg_resid[2];           /* relative residuals */
} wick_kernel_solve_out;
WICK_API wick_status wick_kernel_solve(const wick_kernel_hyper *h, const double *xA,
                                       const double *yA, size_t nA, const double *xB, size_t nB,
                                       size_t n0, size_t nout, const wick_kernel_solve_opts *o,
                                       wick_kernel_solve_out *out);
/* The bytes wick_kernel_solve and its inputs need (the triangle, a work
 * panel, inputs, targets and outputs), to compare with free memory first. */
WICK_API size_t wick_kernel_solve_bytes(size_t nA, size_t nB, size_t n0, size_t nout, int variance);
/* The NNGP log evidence (summed over the nout outputs) and its gradient
 * grad[0..2] with respect to C_b, C_W (every layer's) and the noise, on the
 * nA training inputs: tr(A^-1 dA) exactly (probes = 0; A^-1 by dpftri) or
 * by Hutchinson's estimator with `probes` Rademacher vectors drawn from
 * Philox with `seed` (unbiased; for the full set).  dK by a second-order
 * difference of the map (error ~1e-8 relative).  docs/kernel.md. */
WICK_API wick_status wick_kernel_evidence_grad(const wick_kernel_hyper *h, const double *xA,
                                               const double *yA, size_t nA, size_t n0, size_t nout,
                                               int probes, uint64_t seed, double *logev,
                                               double grad[3]);
/* Hyperparameters at the log evidence's maximum: BFGS in (log C_b, log C_W,
 * log noise) on the exact gradient above, with a backtracking (Armijo) line
 * search, each step at most a factor e^2 in any parameter, C_b in
 * [1e-8, 100], C_W in [0.01, 100], the noise in [1e-10, 100].  Stops when
 * every component of the gradient in the log-parameters not pushing
 * against a bound is below gtol (0: 1e-3 nats), after maxit steps, or when
 * a line search finds no increase.  h's depth and activation stay; a C_b of
 * 0 stays 0 (its log is not defined).  h receives the result. */
typedef struct {
    double before, after;   /* log evidence at the start and at the end */
    int steps, evaluations; /* BFGS steps; evidence + gradient evaluations */
    double gradient;        /* the largest |d log p / d log theta| at the end */
    int converged;          /* gradient <= gtol */
} wick_kernel_opt_report;
WICK_API wick_status wick_kernel_evidence_optimise(wick_kernel_hyper *h, const double *xA,
                                                   const double *yA, size_t nA, size_t n0,
                                                   size_t nout, int maxit, double gtol,
                                                   wick_kernel_opt_report *rep);

/* The four-point vertex for two inputs (docs/theory.md §6): V[(l-1)*16 + p*4 + q] =
 * V^(l)_{(p)(q)} for ordered pairs p = 2*a1 + a2, q = 2*a3 + a4 (inputs
 * 0 and 1), from the 2x2 input Gram G0.  The single-input vertex is the
 * (0,0)(0,0) component. */
WICK_API wick_status wick_vertex2(const wick_theory_config *c, const double G0[4], double *V);

/* The connected four-point correlator E[z_i1;a1 z_i2;a2 z_i3;a3 z_i4;a4]_conn at
 * order 1/n predicted by the vertex V (16 components, as wick_vertex2) of a
 * layer whose previous width is n_prev (docs/theory.md §6). */
WICK_API double wick_four_point(const double V[16], size_t n_prev, const int i[4], const int a[4]);

/* Deep linear network, exact at any width (docs/theory.md §5): K^(l) = C_W^(l-1) K1 and
 * E[z^4] = 3 K^2 (1 + 2/n)^(l-1) with every hidden width n. */
WICK_API wick_status wick_deep_linear(double cw, double K1, int l, size_t n, double *K,
                                      double *Ez4);

/* Bayesian inference at infinite width (docs/theory.md §8).  K is the (nA+nB)^2 kernel
 * Gram over training inputs (first nA) then test inputs; yA is nA x nout
 * (row per input).  mean (nB x nout), cov (nB x nB) and logev (summed over
 * the nout components) may each be NULL.  Cholesky throughout;
 * WICK_ENUMERIC when K_AA + noise I is not positive definite. */
WICK_API wick_status wick_gp_posterior(const double *K, size_t nA, size_t nB, const double *yA,
                                       size_t nout, double noise, double *mean, double *cov,
                                       double *logev);

/* Gradient descent with MSE at infinite width under the frozen NTK (docs/theory.md §9):
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
