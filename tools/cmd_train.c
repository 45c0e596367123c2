/* cmd_train.c — `wick train` and `wick eval`.
 *
 * With no flags, `wick train` is the main job: a critical-initialised
 * 784-512-512-10 ReLU MLP on Fashion-MNIST, then the test accuracy and the
 * confusion matrix.  Results go to stdout, progress and logs to stderr. */
#include "cli.h"
#include "dist/dist.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static const char *const fmnist_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* ---- data -------------------------------------------------------------- */

typedef struct {
    const char *dir, *train_csv, *test_csv;
    int label_col;
} data_opts;

static wick_status load_data(const data_opts *o, int test, wick_dataset **out) {
    if (test ? o->test_csv : o->train_csv)
        return wick_dataset_load_csv(test ? o->test_csv : o->train_csv, o->label_col, 0, out);
    if (!test && o->test_csv && !o->train_csv)
        return cli_error(WICK_EINVAL, "--test-csv given without --train-csv");
    wick_status s = wick_dataset_load_idx_dir(o->dir, test ? "t10k" : "train", 10, out);
    if (s == WICK_EIO && !strcmp(o->dir, FMNIST_DIR))
        return cli_error(s, "%s (install the Debian package dataset-fashion-mnist)", cli_last_error());
    return s;
}

/* An output path must be writable before hours of training, not after. */
static wick_status check_writable(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_error(WICK_EIO, "%s: is a directory", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.wick-probe.%d", *dir ? dir : "/", (int)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return cli_error(WICK_EIO, "%s: cannot write in '%s': %s", path, *dir ? dir : "/", strerror(errno));
    close(fd);
    unlink(probe);
    return WICK_OK;
}

/* A data set the model cannot take, found before the first step rather than
 * after the last: the feature count, then each label against the outputs. */
static wick_status check_fits(wick_mlp *m, const wick_dataset *d, const char *what, const char *file) {
    int in = wick_mlp_inputs(m), out = wick_mlp_outputs(m);
    if (d->dim != (size_t)in)
        return cli_error(WICK_ESHAPE, "the %s (%s) has %zu features, the model takes %d", what, file, d->dim, in);
    for (size_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= out)
            return cli_error(WICK_EINVAL, "the %s (%s): sample %zu has label %d, the model has %d outputs "
                             "(labels 0..%d)", what, file, i, (int)d->y[i], out, out - 1);
    return WICK_OK;
}

/* ---- input standardisation --------------------------------------------- */

/* Per-feature standardisation of CSV data, x' = (x - mean) / sd, fitted on
 * the training set (sd 1 for a constant feature).  The net trains on x', so
 * features in any units (x1000) train as well as unit ones; the model file
 * gets it folded into the first layer, W' = W / sd (by column) and
 * b' = b - W' mean, so that the file takes raw rows: wick eval, wick predict
 * and a PyTorch load apply it with no code of their own. */
typedef struct {
    size_t dim;
    double *mean, *sd;
} standardiser;

static wick_status std_fit(standardiser *z, const wick_dataset *d) {
    z->dim = d->dim;
    z->mean = calloc(d->dim ? d->dim : 1, sizeof *z->mean);
    z->sd = calloc(d->dim ? d->dim : 1, sizeof *z->sd);
    if (!z->mean || !z->sd) return cli_error(WICK_ENOMEM, "standardisation: out of memory");
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->dim; j++) z->mean[j] += d->x[i * d->dim + j];
    for (size_t j = 0; j < d->dim; j++) z->mean[j] /= d->n ? (double)d->n : 1;
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->dim; j++) {
            double e = d->x[i * d->dim + j] - z->mean[j];
            z->sd[j] += e * e;
        }
    for (size_t j = 0; j < d->dim; j++) {
        z->sd[j] = d->n ? sqrt(z->sd[j] / d->n) : 0;
        if (!(z->sd[j] > 0)) z->sd[j] = 1;
    }
    return WICK_OK;
}

static void std_apply(const standardiser *z, wick_dataset *d) {
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->dim; j++)
            d->x[i * d->dim + j] = (float)((d->x[i * d->dim + j] - z->mean[j]) / z->sd[j]);
}

/* fold 1: the first layer from standardised inputs to raw ones; fold 0: back
 * (a model file's weights, on raw inputs, for --init-from). */
static void std_fold(const standardiser *z, wick_mlp *m, int fold) {
    wick_graph *g = wick_mlp_graph(m);
    wick_node wn = wick_mlp_weight(m, 0);
    float *w = wick_graph_value(g, wn), *b = wick_graph_value(g, wick_mlp_bias(m, 0));
    int out = wick_graph_rows(g, wn), in = wick_graph_cols(g, wn);   /* [out, in], torch's layout */
    for (int o = 0; o < out && (size_t)in == z->dim; o++) {
        double shift = 0;
        for (int j = 0; j < in; j++) {
            float *wj = &w[(size_t)o * in + j];
            if (fold) *wj = (float)(*wj / z->sd[j]);
            shift += *wj * z->mean[j];
            if (!fold) *wj = (float)(*wj * z->sd[j]);
        }
        b[o] = (float)(fold ? b[o] - shift : b[o] + shift);
    }
}

/* ---- progress and logs ------------------------------------------------- */

static volatile int stop_flag;

typedef struct {
    int bar;                  /* a progress bar on a terminal (not TERM=dumb) */
    int quiet;
    wick_mlp *m;              /* for the training accuracy of each epoch */
    wick_dataset train_head;  /* the first samples of the training set, measured each epoch */
    long total_steps, first_step;   /* the run's steps, and the step it started at (a resume) */
    double t_start;
    FILE *log;                /* JSON line per epoch (NULL: none) */
    FILE *steps;              /* --log-steps */
    int epochs;
    double t_epoch;
    json_t *reports;          /* array of per-epoch objects */
    const char *log_path, *steps_path;
    char io_error[600];       /* a log that could not be written: the run stops */
} progress;

/* A log file that fails (a full disk) stops the run at the next step, as an
 * interrupt would (a checkpoint is written), and the run fails saying so. */
static void log_failed(progress *p, const char *path, int err) {
    if (p->io_error[0]) return;
    snprintf(p->io_error, sizeof p->io_error, "%s: writing the log failed: %s", path, strerror(err ? err : EIO));
    stop_flag = -1;
}

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    progress *p = user;
    if (p->steps) {
        char num[40];
        snprintf(num, sizeof num, "%.9g\n", loss);
        if (fputs(num, p->steps) == EOF || ferror(p->steps)) log_failed(p, p->steps_path, errno);
    }
    if (!p->bar || (b % 20 != 0 && b != nb)) return;
    int w = 30, done = (int)((double)b / nb * w);
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < done ? '=' : i == done ? '>' : ' ';
    bar[w] = 0;
    double dt = now() - p->t_epoch, run = now() - p->t_start;
    char eta[32] = "";
    if (step > p->first_step && p->total_steps > step) {   /* at the run's mean rate so far */
        long left = (long)((p->total_steps - step) * run / (step - p->first_step) + 0.5);
        if (left >= 3600) snprintf(eta, sizeof eta, "ETA %ldh%02ldm", left / 3600, left / 60 % 60);
        else snprintf(eta, sizeof eta, "ETA %ldm%02lds", left / 60, left % 60);
    }
    fprintf(stderr, "\repoch %d/%d [%s] %d/%d  loss %.4f  %.0f steps/s  %s ", epoch, p->epochs, bar, b, nb,
            loss, dt > 0 ? b / dt : 0, eta);
    fflush(stderr);
}

/* A figure for the epoch line: "n/a" where there is none (no validation set). */
static const char *fig(char *buf, size_t n, double v) {
    if (isnan(v)) snprintf(buf, n, "n/a");
    else snprintf(buf, n, "%.4f", v);
    return buf;
}

static void on_epoch(void *user, const wick_epoch_report *r) {
    progress *p = user;
    /* the training accuracy, in eval mode on the first samples of the training
       set (the mean loss is the training steps'); evaluation draws nothing, so
       the run stays bit-identical */
    double train_acc = NAN;
    wick_metrics *mt = NULL;
    if (p->m && p->train_head.n && wick_evaluate(p->m, &p->train_head, &mt, NULL) == WICK_OK) train_acc = mt->accuracy;
    wick_metrics_free(mt);
    json_t *o = json_pack("{s:i, s:f, s:o, s:o, s:o, s:f, s:f, s:f}", "epoch", r->epoch, "train_loss", r->train_loss,
                          "train_acc", cli_jnum(train_acc), "val_loss", cli_jnum(r->val_loss), "val_acc",
                          cli_jnum(r->val_acc), "lr", r->lr, "seconds", r->seconds, "samples_per_s", r->samples_per_s);
    json_array_append(p->reports, o);
    if (p->bar) fprintf(stderr, "\r\033[K");
    if (!p->quiet && p->log != stderr) {   /* stderr has the JSON lines when it is not a terminal and no --log was given */
        char ta[16], vl[16], va[16];
        fprintf(stderr, "epoch %2d/%d  train loss %.4f  train acc %s  val loss %s  val acc %s  lr %.3g  %.1fs  "
                "%.0f samples/s\n", r->epoch, p->epochs, r->train_loss, fig(ta, sizeof ta, train_acc),
                fig(vl, sizeof vl, r->val_loss), fig(va, sizeof va, r->val_acc), r->lr, r->seconds, r->samples_per_s);
    }
    if (p->log && cli_write_json(p->log, "train", o, 9) != EXIT_OK && p->log != stderr)
        log_failed(p, p->log_path, errno);
    if (p->steps && fflush(p->steps) != 0) log_failed(p, p->steps_path, errno);
    json_decref(o);
    p->t_epoch = now();
}

/* ---- lost work --------------------------------------------------------- */

/* Where a run that stopped early (diverged, or interrupted without a
 * checkpoint) leaves its last good weights: --out when given, else beside
 * the checkpoint (c.safetensors -> c.last-good.safetensors), else
 * wick-last-good.safetensors in the working directory.  The message of the
 * failure says where, or why they could not be written. */
static void save_last_good(wick_mlp *m, const char *out, const char *ckpt) {
    char path[4200], msg[1200], why[700];
    if (out) snprintf(path, sizeof path, "%s", out);
    else if (ckpt) {
        size_t n = strlen(ckpt), ext = strlen(".safetensors");
        if (n > ext && !strcmp(ckpt + n - ext, ".safetensors")) n -= ext;
        snprintf(path, sizeof path, "%.*s.last-good.safetensors", (int)n, ckpt);
    } else snprintf(path, sizeof path, "wick-last-good.safetensors");
    snprintf(msg, sizeof msg, "%s", cli_last_error());
    /* cli_error only records the message here: the caller keeps its status */
    if (wick_mlp_save(m, path) == WICK_OK) {
        cli_error(WICK_OK, "%s; the last good weights are written to %s", msg, path);
    } else {
        snprintf(why, sizeof why, "%s", cli_last_error());
        cli_error(WICK_OK, "%s; the last good weights could not be written: %s", msg, why);
    }
}

/* ---- signals ----------------------------------------------------------- */

static void on_signal(int sig) { stop_flag = sig; }

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;   /* a second SIGINT kills at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- flags ------------------------------------------------------------- */

/* What the command line asks of wick train: the table's destinations, the
 * defaults applied first from the table's own text. */
typedef struct {
    data_opts d;
    wick_mlp_config mc;
    cli_reals cb, cw;             /* C_b, C_W: one for all layers, or one a layer */
    const char *spec_text;        /* --arch in the layer language */
    wick_train_config tc;
    double lr, gamma, floor_lr, factor;
    int step_size, ppat, precision;
    wick_sched_kind sk;
    long val, threads, train_limit, ensemble, hogwild, shards;
    int allreduce_f32;            /* --allreduce f32: the gradients' sum over the ranks in float */
    const char *out, *resume, *init_from, *log_path, *steps_path, *plot;
    int standardize;              /* -1: on for CSV data with an MLP */
    int json, quiet, second, bootstrap;   /* second round: 0 off, 1 retrain, 2 continue */
} train_args;

static train_args TA;

/* --arch: MLP widths, or a layer spec checked here, with the token, before any data is read */
static int fn_arch(const cli_opt *o, const char *arg) {
    TA.spec_text = NULL;
    if (strchr(arg, ':') || strchr(arg, ',')) {
        wick_spec *check;
        if (wick_spec_parse(arg, &check)) goto bad;
        wick_spec_free(check);
        TA.spec_text = arg;
    } else if (wick_arch_parse(arg, &TA.mc)) {
        goto bad;
    }
    return 1;
bad:
    fprintf(stderr, "%s: %s\n", cli_command, cli_last_error());
    return 0;
}

static int fn_act(const cli_opt *o, const char *arg) {
    if (wick_act_parse(arg, o->dest) == WICK_OK) return 1;
    fprintf(stderr, "%s: %s\n", cli_command, cli_last_error());
    return 0;
}

static int fn_init(const cli_opt *o, const char *arg) {
    if (wick_init_parse(arg, o->dest) == WICK_OK) return 1;
    fprintf(stderr, "%s: %s\n", cli_command, cli_last_error());
    return 0;
}

static int fn_sched(const cli_opt *o, const char *arg) {
    if (wick_sched_parse(arg, o->dest) == WICK_OK) return 1;
    fprintf(stderr, "%s: %s\n", cli_command, cli_last_error());
    return 0;
}

/* --optimizer: that optimiser's defaults, keeping SGD's momentum and a weight
 * decay given before it (AdamW keeps its own 0.01) */
static int fn_opt(const cli_opt *o, const char *arg) {
    wick_opt_kind k;
    if (wick_opt_parse(arg, &k)) {
        fprintf(stderr, "%s: %s\n", cli_command, cli_last_error());
        return 0;
    }
    double mom = TA.tc.opt.momentum, wd = TA.tc.opt.weight_decay;
    TA.tc.opt = wick_opt_defaults(k);
    if (k == WICK_OPT_SGD) TA.tc.opt.momentum = mom;
    if (k != WICK_OPT_ADAMW) TA.tc.opt.weight_decay = wd;
    return 1;
}

/* The rows, in --help's order; O_x is the row of flag x (given[O_x]). */
enum {
    O_H_DATA, O_DATA, O_TRAIN_CSV, O_TEST_CSV, O_LABEL_COL, O_TRAIN_LIMIT, O_STANDARDIZE, O_VAL,
    O_H_MODEL, O_ARCH, O_ACT, O_INIT, O_CB, O_CW, O_LOSS, O_SMOOTH, O_INIT_FROM,
    O_H_OPT, O_OPT, O_LR, O_MOM, O_NESTEROV, O_BETA1, O_BETA2, O_EPS, O_WD, O_L1, O_ACT_L1, O_CLIP_VALUE,
    O_CLIP_NORM, O_MAX_NORM,
    O_H_AUG, O_SHIFT, O_FLIP, O_ROTATE, O_SCHED, O_GAMMA, O_STEP_SIZE, O_FLOOR, O_PPAT, O_FACTOR,
    O_H_RUN, O_BATCH, O_EPOCHS, O_MAX_STEPS, O_SEED, O_SHUFFLE, O_THREADS, O_PRECISION, O_PATIENCE, O_SECOND,
    O_ENSEMBLE, O_BAGGING, O_HOGWILD, O_H_MPI, O_ALLREDUCE, O_SHARDS, O_DIVERGE,
    O_H_OUT, O_OUT, O_CKPT, O_CKPT_STEPS, O_RESUME, O_LOG, O_LOG_STEPS, O_PLOT, O_JSON, O_QUIET,
    O_COUNT
};

#define ROW(o, name, type, dest, lo, hi, open, def, meta, help) \
    [o] = {name, type, dest, lo, hi, open, def, meta, help, NULL, NULL}
#define HEAD(o, text) [o] = {"", CLI_BOOL, NULL, 0, 0, 0, NULL, NULL, text, NULL, NULL}
#define INF INFINITY

static const cli_opt train_opts[O_COUNT + 1] = {
    HEAD(O_H_DATA, "Data"),
    ROW(O_DATA, "data", CLI_STR, &TA.d.dir, 0, 0, 0, FMNIST_DIR, "DIR", "IDX files (train-*, t10k-*)"),
    ROW(O_TRAIN_CSV, "train-csv", CLI_STR, &TA.d.train_csv, 0, 0, 0, NULL, "FILE",
        "training CSV (one sample a row, a label column)"),
    ROW(O_TEST_CSV, "test-csv", CLI_STR, &TA.d.test_csv, 0, 0, 0, NULL, "FILE", "test CSV"),
    ROW(O_LABEL_COL, "label-col", CLI_INT32, &TA.d.label_col, -1, 1 << 20, 0, "0", "N", "label column: 0 first, -1 last"),
    ROW(O_TRAIN_LIMIT, "train-limit", CLI_INT, &TA.train_limit, 1, 1L << 40, 0, "=all", "N",
        "only the first N samples of the training data (to try things)"),
    [O_STANDARDIZE] = {"standardize", CLI_CHOICE, &TA.standardize, 0, 0, 0, "=on for CSV and an MLP", "on|off",
        "CSV features standardised per feature on the training set, so that any\n"
        "units train; the model file takes raw rows (folded into the first layer;\n"
        "a checkpoint holds the standardised net)", "off|on", NULL},
    ROW(O_VAL, "val", CLI_INT, &TA.val, 0, 1L << 40, 0, NULL, "N",
        "samples held out for validation (0: none; --patience and\n"
        "--schedule plateau need some)  [IDX data: 5000; CSV or --train-limit:\n"
        "a tenth of the rows]"),
    HEAD(O_H_MODEL, "Model"),
    [O_ARCH] = {"arch", CLI_FN, NULL, 0, 0, 0, "784-512-512-10", "SPEC",
        "widths, e.g. 784-512-512-10 or 784-[128]x16-10, or a layer spec\n"
        "(docs/layers.md, wick summary --help), e.g. input:1x28x28,conv2d:32:3:pad=1,\n"
        "batchnorm,relu,maxpool:2,flatten,dropout:0.5,linear:10", NULL, fn_arch},
    [O_ACT] = {"act", CLI_FN, &TA.mc.act, 0, 0, 0, "relu", "NAME",
        "perceptron sigmoid tanh sin linear relu leaky_relu[:a]\n"
        "softplus swish gelu", NULL, fn_act},
    [O_INIT] = {"init", CLI_FN, &TA.mc.init, 0, 0, 0, "critical", "KIND", "critical | book | he | glorot | torch", NULL, fn_init},
    [O_CB] = {"cb", CLI_REALS, &TA.cb, -INF, INF, 0, "0", "X[,X..]", "C_b, for --init book (one value or one per layer)", "64", NULL},
    [O_CW] = {"cw", CLI_REALS, &TA.cw, -INF, INF, 0, "1", "X[,X..]", "C_W, for --init book", "64", NULL},
    [O_LOSS] = {"loss", CLI_CHOICE, &TA.mc.loss, WICK_LOSS_XENT, 0, 0, "xent", "KIND", "xent | mse", "xent|mse", NULL},
    ROW(O_SMOOTH, "label-smoothing", CLI_REAL, &TA.mc.smoothing, 0, 1, CLI_OPEN_HI, "0", "X", "cross-entropy label smoothing"),
    ROW(O_INIT_FROM, "init-from", CLI_STR, &TA.init_from, 0, 0, 0, NULL, "FILE",
        "start from the weights of a model file (its architecture and\n"
        "activation; a contradicting --arch or --act is refused)"),
    HEAD(O_H_OPT, "Optimiser"),
    [O_OPT] = {"optimizer", CLI_FN, NULL, 0, 0, 0, "sgd", "KIND", "sgd | adam | adamw", NULL, fn_opt},
    ROW(O_LR, "lr", CLI_REAL, &TA.lr, 0, INF, CLI_OPEN_LO, "0.05", "X", "learning rate"),
    ROW(O_MOM, "momentum", CLI_REAL, &TA.tc.opt.momentum, 0, 1, CLI_OPEN_HI, "0.9", "X", "SGD momentum"),
    ROW(O_NESTEROV, "nesterov", CLI_BOOL, &TA.tc.opt.nesterov, 0, 0, 0, NULL, NULL, "Nesterov momentum"),
    ROW(O_BETA1, "beta1", CLI_REAL, &TA.tc.opt.beta1, 0, 1, CLI_OPEN_HI, "=0.9", "X", "Adam's beta1"),
    ROW(O_BETA2, "beta2", CLI_REAL, &TA.tc.opt.beta2, 0, 1, CLI_OPEN_HI, "=0.999", "X", "Adam's beta2"),
    ROW(O_EPS, "eps", CLI_REAL, &TA.tc.opt.eps, 0, INF, CLI_OPEN_LO, "=1e-8", "X", "Adam's epsilon"),
    ROW(O_WD, "weight-decay", CLI_REAL, &TA.tc.opt.weight_decay, 0, INF, 0, "0", "X", "L2 (AdamW: decoupled 0.01)"),
    ROW(O_L1, "l1", CLI_REAL, &TA.tc.opt.l1, 0, INF, 0, "0", "X", "L1 penalty"),
    ROW(O_ACT_L1, "act-l1", CLI_REAL, &TA.mc.act_l1, 0, INF, 0, "0", "X", "L1 penalty on the activations (sparse representations)"),
    ROW(O_CLIP_VALUE, "clip-value", CLI_REAL, &TA.tc.clip_value, 0, INF, 0, "=off", "X",
        "clamp every gradient element to [-X, X]"),
    ROW(O_CLIP_NORM, "clip-norm", CLI_REAL, &TA.tc.clip_norm, 0, INF, 0, "=off", "X",
        "scale all gradients together to 2-norm <= X"),
    ROW(O_MAX_NORM, "max-norm", CLI_REAL, &TA.tc.max_norm, 0, INF, 0, "=off", "X",
        "each unit's incoming weights to 2-norm <= X after the update"),
    HEAD(O_H_AUG, "Augmentation (image data: a layer spec with input:CxHxW)"),
    ROW(O_SHIFT, "shift", CLI_INT32, &TA.tc.augment.shift, 0, 1 << 12, 0, "0", "N", "random shifts of up to N pixels each way"),
    ROW(O_FLIP, "flip", CLI_BOOL, &TA.tc.augment.flip, 0, 0, 0, NULL, NULL, "random horizontal flips (not for digits)"),
    ROW(O_ROTATE, "rotate", CLI_REAL, &TA.tc.augment.rotate, 0, 180, 0, "0", "DEG", "random rotations of up to DEG degrees"),
    [O_SCHED] = {"schedule", CLI_FN, &TA.sk, 0, 0, 0, "linear", "KIND", "constant | step | exp | linear | plateau", NULL, fn_sched},
    ROW(O_GAMMA, "gamma", CLI_REAL, &TA.gamma, 0, INF, CLI_OPEN_LO, "=0.1 / 0.95", "X", "step/exp decay factor"),
    ROW(O_STEP_SIZE, "step-size", CLI_INT32, &TA.step_size, 1, 1 << 30, 0, "10", "N", "step schedule: epochs per decay"),
    ROW(O_FLOOR, "lr-floor", CLI_REAL, &TA.floor_lr, 0, INF, 0, "=0.01 * lr", "X", "linear: final lr; plateau: lowest lr"),
    ROW(O_PPAT, "plateau-patience", CLI_INT32, &TA.ppat, 0, 1 << 30, 0, "2", "N", "plateau: epochs without improvement"),
    ROW(O_FACTOR, "factor", CLI_REAL, &TA.factor, 0, 1, CLI_OPEN_LO | CLI_OPEN_HI, "0.1", "X", "plateau: lr factor"),
    HEAD(O_H_RUN, "Run"),
    ROW(O_BATCH, "batch", CLI_INT32, &TA.tc.batch, 1, 1 << 20, 0, "128", "N", "minibatch size"),
    ROW(O_EPOCHS, "epochs", CLI_INT32, &TA.tc.epochs, 1, 1 << 30, 0, "20", "N", "epochs"),
    ROW(O_MAX_STEPS, "max-steps", CLI_INT, &TA.tc.max_steps, 1, 1L << 62, 0, "=no limit", "N", "stop after N steps in all"),
    ROW(O_SEED, "seed", CLI_U64, &TA.tc.seed, 0, 0, 0, "1", "N", "seed of every random draw"),
    [O_SHUFFLE] = {"shuffle", CLI_CHOICE, &TA.tc.shuffle, 0, 0, 0, "on", "on|off", "reshuffle every epoch", "off|on", NULL},
    ROW(O_THREADS, "threads", CLI_INT, &TA.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads (else OMP_NUM_THREADS, else all cores)"),
    [O_PRECISION] = {"precision", CLI_CHOICE, &TA.precision, WICK_PRECISION_F32, 0, 0, "f32", "P",
        "the products' precision: f32, or bf16 (bf16 operands, float32 sums\n"
        "and weights; needs AVX512-BF16 and an MLP on the fast path)", "f32|bf16", NULL},
    ROW(O_PATIENCE, "patience", CLI_INT32, &TA.tc.patience, 0, 1 << 30, 0, "=off", "N",
        "early stopping on validation loss, restoring the best weights"),
    [O_SECOND] = {"second-round", CLI_CHOICE, &TA.second, 1, 0, 0, "=off", "KIND",
        "after early stopping, train on all the data (training + validation):\n"
        "retrain (from a new init, for the steps the first round chose) or\n"
        "continue (until the validation loss falls to the training loss at the\n"
        "stopping point; at most --epochs more)", "retrain|continue", NULL},
    ROW(O_ENSEMBLE, "ensemble", CLI_INT, &TA.ensemble, 1, 64, 0, "1", "K",
        "bagging: K nets, each on a bootstrap resample (seed + k), their\n"
        "probabilities averaged; --out P writes P's stem.k.safetensors"),
    [O_BAGGING] = {"bagging", CLI_CHOICE, &TA.bootstrap, 0, 0, 0, "bootstrap", "KIND",
        "bootstrap | seeds (the whole training set, only the seed differs)", "seeds|bootstrap", NULL},
    ROW(O_HOGWILD, "hogwild", CLI_INT, &TA.hogwild, 1, 256, 0, "=off", "T",
        "T threads of lock-free asynchronous SGD on shared weights, each its\n"
        "own batches (not reproducible; docs/distributed.md)"),
    HEAD(O_H_MPI, "  (under mpirun -np K, wick train is data parallel: each rank a slice of every batch,\n"
                  "   rank 0 writes the files; threads per rank: cores / ranks on the host; docs/distributed.md)"),
    [O_ALLREDUCE] = {"allreduce", CLI_CHOICE, &TA.allreduce_f32, 0, 0, 0, "f64", "P",
        "under mpirun, the gradients' sum over the ranks: f64, or f32 (half\n"
        "the bytes on the wire; ~1e-6 from one process's weights, not ~1e-7)", "f64|f32", NULL},
    ROW(O_SHARDS, "shards", CLI_INT, &TA.shards, 0, 4096, 0, "=off", "S",
        "each global batch in S fixed micro-shards, their gradients summed\n"
        "exactly in a fixed order: any K <= S ranks (and one process with\n"
        "--shards S) give the same bits; S x the parameters in each sum, S\n"
        "smaller products; no batch norm, no --allreduce f32"),
    ROW(O_DIVERGE, "diverge-factor", CLI_REAL, &TA.tc.diverge_factor, 0, INF, 0, "=1e4", "X",
        "stop when a loss exceeds X times the first"),
    HEAD(O_H_OUT, "Output"),
    ROW(O_OUT, "out", CLI_STR, &TA.out, 0, 0, 0, NULL, "FILE",
        "the trained model (safetensors, PyTorch state_dict names);\n"
        "a run that diverges (exit 3), or is interrupted without\n"
        "--checkpoint, leaves its last good weights here, else in\n"
        "CHECKPOINT.last-good.safetensors, else ./wick-last-good.safetensors"),
    ROW(O_CKPT, "checkpoint", CLI_STR, &TA.tc.checkpoint, 0, 0, 0, NULL, "FILE",
        "checkpoint written atomically each epoch and on SIGINT;\n"
        "locked (FILE.lock) against a second run"),
    ROW(O_CKPT_STEPS, "checkpoint-steps", CLI_INT32, &TA.tc.checkpoint_steps, 1, 0x7fffffff, 0, NULL, "N", "also every N steps"),
    ROW(O_RESUME, "resume", CLI_STR, &TA.resume, 0, 0, 0, NULL, "FILE",
        "continue a checkpoint bit-identically: the model, activation, init,\n"
        "loss, optimiser, lr, schedule, momentum, weight decay, label smoothing,\n"
        "batch, seed and shuffling are the checkpoint's (a flag that says\n"
        "otherwise is refused); what may change: --epochs, --max-steps,\n"
        "--patience, --threads, --precision (else the checkpoint's) and the\n"
        "output flags (the data must be the same)"),
    ROW(O_LOG, "log", CLI_STR, &TA.log_path, 0, 0, 0, NULL, "FILE",
        "one JSON line per epoch (default: stderr when it is not a terminal)"),
    ROW(O_LOG_STEPS, "log-steps", CLI_STR, &TA.steps_path, 0, 0, 0, NULL, "FILE", "every step's training loss, one per line"),
    ROW(O_PLOT, "plot", CLI_STR, &TA.plot, 0, 0, 0, NULL, "FILE.png", "training and validation loss per epoch (gnuplot)"),
    ROW(O_JSON, "json", CLI_BOOL, &TA.json, 0, 0, 0, NULL, NULL, "last stdout line: one JSON object with the figures"),
    ROW(O_QUIET, "quiet", CLI_BOOL, &TA.quiet, 0, 0, 0, NULL, NULL, "no progress or epoch lines"),
    [O_COUNT] = {0}};

static const cli_cmd train_cmd = {
    "train",
    "usage: wick train [FLAGS]\n"
    "Trains an MLP or, with a layer spec in --arch, any net of the layer language (conv nets).\n"
    "With no flags: the main job, a critical-initialised 784-512-512-10 ReLU net on\n"
    "Fashion-MNIST, reporting test accuracy and the confusion matrix.\n\n",
    train_opts, NULL, 25, 1};

/* The command line into TA (given: each flag's text, by row); CLI_GO, or the
 * exit code. */
static int train_parse(int argc, char **argv, const char **given) {
    memset(&TA, 0, sizeof TA);
    TA.mc.act = (wick_act){WICK_ACT_RELU, WICK_LEAKY_DEFAULT};
    TA.tc = wick_train_defaults();
    TA.gamma = TA.floor_lr = NAN;
    TA.val = 5000;
    TA.standardize = -1;
    TA.precision = WICK_PRECISION_F32;
    int rc = cli_parse(&train_cmd, argc, argv, given);
    if (rc != CLI_GO) return rc;
    TA.tc.precision = (wick_precision)TA.precision;
    if (given[O_PRECISION] && wick_precision_supported(TA.tc.precision) != WICK_OK) {   /* before any data is read */
        fprintf(stderr, "wick train: --precision %s: %s\n", given[O_PRECISION], wick_last_error());
        return EXIT_FAIL;
    }
    return CLI_GO;
}

/* ---- --resume and --init-from ------------------------------------------ */

/* A flag that says otherwise than the file: refused naming both values. */
static int contradicts(const char *flag, const char *given, const char *path, const char *what, const char *file_val,
                       int resume) {
    fprintf(stderr, "wick train: %s %s contradicts %s, whose %s is %s (%s takes it from the file: drop the flag)\n",
            flag, given, path, what, file_val, resume ? "--resume" : "--init-from");
    return EXIT_USAGE;
}

/* A number in __metadata__ that differs from the flag's value. */
static int differs_num(const char *v, double have) {
    char *end;
    double x = strtod(v, &end);
    return end == v || *end || x != have;
}

/* What --resume (and, for the model, --init-from) takes from its file: the
 * architecture, activation and loss, and from a checkpoint also the init,
 * optimiser, learning rate and schedule, momentum, weight decay, label
 * smoothing, batch, seed and shuffling (those a checkpoint records; older
 * checkpoints lack the optimiser's).  given[O_x] is the text of each flag on
 * the command line.  EXIT_OK, or the exit code of a refusal. */
typedef struct {
    wick_mlp_config *mc;
    const char **spec_text;
    char *spec_buf;
    size_t spec_size;
    double *lr;
    wick_sched_kind *sk;
    wick_train_config *tc;
    int *standardize;
} adopt_target;

static int adopt_file(const char *path, int resume, const char *const *given, adopt_target *a) {
    wick_st_file *f = NULL;
    wick_spec *fs = NULL;
    wick_status s = wick_st_read(path, &f);
    if (s) return cli_fail("train", s);
    int rc = EXIT_OK;
    wick_mlp_config fc = *a->mc;
    char buf[4096], gbuf[4096];
    const char *v;
    if ((s = wick_net_spec_from_file(path, NULL, &fs, &fc))) { rc = cli_fail("train", s); goto done; }
    if (fs) {
        wick_spec_format(fs, a->spec_buf, a->spec_size);
        if (given[O_ARCH]) {
            wick_spec *gs = NULL;
            int same = (strchr(given[O_ARCH], ':') || strchr(given[O_ARCH], ',')) &&
                       wick_spec_parse(given[O_ARCH], &gs) == WICK_OK;
            if (same) {
                wick_spec_format(gs, gbuf, sizeof gbuf);
                same = !strcmp(gbuf, a->spec_buf);
            }
            wick_spec_free(gs);
            if (!same) { rc = contradicts("--arch", given[O_ARCH], path, "layer spec", a->spec_buf, resume); goto done; }
        }
        *a->spec_text = a->spec_buf;
    } else {
        /* a file without wick's metadata (a PyTorch state_dict) says nothing
           of a layer spec: --arch then gives it, and loading the weights
           checks every tensor against it */
        if (!resume && given[O_ARCH] && !wick_st_meta(f, "arch") && (strchr(given[O_ARCH], ':') || strchr(given[O_ARCH], ',')))
            goto done;
        int has_act = 0;
        if ((s = wick_mlp_config_from_file(path, &fc, &has_act))) { rc = cli_fail("train", s); goto done; }
        wick_arch_format(&fc, buf, sizeof buf);
        if (given[O_ARCH]) {
            wick_mlp_config g = fc;
            if (strchr(given[O_ARCH], ':') || strchr(given[O_ARCH], ',') || wick_arch_parse(given[O_ARCH], &g) ||
                g.layers != fc.layers || memcmp(g.widths, fc.widths, (fc.layers + 1) * sizeof(int))) {
                rc = contradicts("--arch", given[O_ARCH], path, "architecture", buf, resume);
                goto done;
            }
        }
        if (has_act && given[O_ACT]) {
            wick_act ga;
            if (wick_act_parse(given[O_ACT], &ga) || ga.kind != fc.act.kind ||
                (ga.kind == WICK_ACT_LEAKY_RELU && ga.slope != fc.act.slope)) {
                rc = contradicts("--act", given[O_ACT], path, "activation", wick_act_name(fc.act), resume);
                goto done;
            }
        }
        *a->spec_text = NULL;
        a->mc->layers = fc.layers;
        memcpy(a->mc->widths, fc.widths, sizeof fc.widths);
        if (has_act) a->mc->act = fc.act;
    }
    if (!resume) goto done;   /* --init-from: the weights only; a new run's optimiser and loss */
    const char *lossname = fc.loss == WICK_LOSS_MSE ? "mse" : "xent";
    if (given[O_LOSS] && strcmp(given[O_LOSS], lossname)) {
        rc = contradicts("--loss", given[O_LOSS], path, "loss", lossname, 1);
        goto done;
    }
    a->mc->loss = fc.loss;
    wick_init_kind ik;
    if ((v = wick_st_meta(f, "init")) && wick_init_parse(v, &ik) == WICK_OK) {
        if (given[O_INIT]) {
            wick_init_kind gk;
            if (wick_init_parse(given[O_INIT], &gk) || gk != ik) {
                rc = contradicts("--init", given[O_INIT], path, "init", v, 1);
                goto done;
            }
        }
        a->mc->init = ik;
    }
    wick_opt_kind ok;
    if ((v = wick_st_meta(f, "optimizer")) && wick_opt_parse(v, &ok) == WICK_OK) {
        if (given[O_OPT] && strcmp(given[O_OPT], v)) { rc = contradicts("--optimizer", given[O_OPT], path, "optimizer", v, 1); goto done; }
        if (ok != a->tc->opt.kind) {
            double l1 = a->tc->opt.l1;
            a->tc->opt = wick_opt_defaults(ok);
            a->tc->opt.l1 = l1;
        }
    }
    if ((v = wick_st_meta(f, "schedule"))) {
        wick_sched_kind k;
        if (wick_sched_parse(v, &k) == WICK_OK) {
            if (given[O_SCHED] && strcmp(given[O_SCHED], v)) { rc = contradicts("--schedule", given[O_SCHED], path, "schedule", v, 1); goto done; }
            *a->sk = k;
        }
    }
    /* numbers: (flag, key, where it goes) */
    struct { int code; const char *flag, *key; double *dst; } nums[] = {
        {O_LR, "--lr", "lr", a->lr},
        {O_MOM, "--momentum", "momentum", &a->tc->opt.momentum},
        {O_WD, "--weight-decay", "weight_decay", &a->tc->opt.weight_decay},
        {O_SMOOTH, "--label-smoothing", "label_smoothing", &a->mc->smoothing},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!(v = wick_st_meta(f, nums[i].key))) continue;
        double x;
        char *end;
        x = strtod(v, &end);
        if (end == v || *end || !isfinite(x)) continue;   /* the resume refuses it, naming the key */
        if (given[nums[i].code] && differs_num(v, *nums[i].dst)) {
            rc = contradicts(nums[i].flag, given[nums[i].code], path, nums[i].key, v, 1);
            goto done;
        }
        *nums[i].dst = x;
    }
    if ((v = wick_st_meta(f, "batch"))) {
        if (given[O_BATCH] && differs_num(v, a->tc->batch)) { rc = contradicts("--batch", given[O_BATCH], path, "batch", v, 1); goto done; }
        long b = strtol(v, NULL, 10);
        if (b >= 1 && b <= 1 << 20) a->tc->batch = (int)b;
    }
    if ((v = wick_st_meta(f, "seed"))) {
        if (given[O_SEED] && strcmp(given[O_SEED], v)) { rc = contradicts("--seed", given[O_SEED], path, "seed", v, 1); goto done; }
        a->tc->seed = strtoull(v, NULL, 10);
    }
    /* the inputs as the checkpoint's net was trained on them: standardised,
       or as they are (every checkpoint before the key existed) */
    v = wick_st_meta(f, "input");
    const char *std = v && !strcmp(v, "standardised") ? "on" : "off";
    if (given[O_STANDARDIZE] && strcmp(given[O_STANDARDIZE], std)) {
        rc = contradicts("--standardize", given[O_STANDARDIZE], path, "standardisation", std, 1);
        goto done;
    }
    *a->standardize = !strcmp(std, "on");
    /* the products' precision: the checkpoint's unless --precision says
       otherwise (a run may move to a CPU without bf16, or to one with it) */
    if ((v = wick_st_meta(f, "precision")) && !given[O_PRECISION] && !strcmp(v, "bf16"))
        a->tc->precision = WICK_PRECISION_BF16;   /* another value: the resume refuses it, naming the key */
    if ((v = wick_st_meta(f, "shuffle"))) {
        const char *sh = !strcmp(v, "0") ? "off" : "on";
        if (given[O_SHUFFLE] && strcmp(given[O_SHUFFLE], sh)) { rc = contradicts("--shuffle", given[O_SHUFFLE], path, "shuffle", sh, 1); goto done; }
        a->tc->shuffle = strcmp(v, "0") != 0;
    }
done:
    wick_spec_free(fs);
    wick_st_free(f);
    return rc;
}

/* Prints the test report: per-class metrics and the confusion matrix.  The
 * caller's line gives the accuracy (with the loss), so wick_metrics_print's
 * own first line, the accuracy again, is left out. */
static void print_report(const wick_metrics *mt, int fmnist) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) {
        wick_metrics_print(stdout, mt, fmnist && mt->classes == 10 ? fmnist_names : NULL);
        return;
    }
    wick_metrics_print(f, mt, fmnist && mt->classes == 10 ? fmnist_names : NULL);
    fclose(f);
    const char *body = text && !strncmp(text, "accuracy ", 9) ? strstr(text, "\n") : NULL;
    fputs(body ? body + 1 : text ? text : "", stdout);
    free(text);
}

static json_t *metrics_json(const wick_metrics *mt) {
    json_t *cm = json_array(), *f1 = json_array();
    for (int i = 0; i < mt->classes; i++) {
        json_t *row = json_array();
        for (int j = 0; j < mt->classes; j++) json_array_append_new(row, json_integer(mt->confusion[i * mt->classes + j]));
        json_array_append_new(cm, row);
        json_array_append_new(f1, json_real(mt->f1[i]));
    }
    return json_pack("{s:f, s:f, s:o, s:o}", "accuracy", mt->accuracy, "macro_f1", mt->macro_f1, "f1", f1,
                     "confusion", cm);
}

/* Training and validation loss per epoch. */
static wick_status plot_losses(const char *path, json_t *reports, const char *arch) {
    size_t n = json_array_size(reports);
    double *ep = calloc(n + 1, sizeof *ep), *tl = calloc(n + 1, sizeof *tl), *vl = calloc(n + 1, sizeof *vl);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(reports, i);
        ep[i] = (double)json_integer_value(json_object_get(r, "epoch"));
        tl[i] = json_real_value(json_object_get(r, "train_loss"));
        json_t *v = json_object_get(r, "val_loss");
        if (json_is_real(v)) vl[nv++] = json_real_value(v);
    }
    wick_series s[2] = {{"training loss", ep, tl, NULL, n, 0, 0}, {"validation loss", ep, vl, NULL, nv, 0, 0}};
    char title[600];
    /* a long layer spec would run off the picture: its first 70 characters */
    if (strlen(arch) > 70) snprintf(title, sizeof title, "wick train %.67s...", arch);
    else snprintf(title, sizeof title, "wick train %s", arch);
    wick_status st = n ? wick_plot_png(path, title, "epoch", "loss", s, nv ? 2 : 1, 0, 1)
                       : cli_error(WICK_EINVAL, "%s: no epoch finished, nothing to plot", path);
    free(ep); free(tl); free(vl);
    return st;
}

/* ---- early stopping's second round, bagging ------------------------------ */

/* A fresh model of the run's architecture, drawn from seed. */
static wick_status fresh_model(const wick_spec *spec, const wick_mlp_config *mc, int batch, uint64_t seed,
                               wick_mlp **out) {
    wick_status s = spec ? wick_net_new(out, spec, mc, WICK_DT_F32, batch) : wick_mlp_new(out, mc, WICK_DT_F32, batch);
    if (s == WICK_OK) wick_mlp_init(*out, seed);
    return s;
}

/* After a first round with early stopping, one of the two strategies of
 * Goodfellow et al. (sec. 7.8, algs. 7.2 and 7.3) on the training and
 * validation sets together: kind 1 retrains a fresh net for the number of
 * steps the first round chose (*out: that net); kind 2 continues m until the
 * validation loss falls to the training loss at the stopping point, at most
 * as many epochs as the first round was given.  *info: what it did. */
static wick_status second_round(int kind, const wick_spec *spec, const wick_mlp_config *mc, const wick_train_config *tc,
                                const wick_trainer *t1, wick_mlp *m, const wick_dataset *train,
                                const wick_dataset *val, json_t *reports, int quiet, wick_mlp **out, json_t **info) {
    int best = wick_trainer_best_epoch(t1);
    if (best < 1) return cli_error(WICK_EINVAL, "--second-round: the first round has no best epoch");
    wick_dataset *all = NULL;
    wick_status s = wick_dataset_concat(train, val, &all);
    if (s != WICK_OK) return s;
    json_t *r = json_array_get(reports, (size_t)best - 1);
    double eps = json_real_value(json_object_get(r, "train_loss")), lr_best = json_real_value(json_object_get(r, "lr"));
    wick_train_config c = *tc;
    c.patience = 0;
    c.checkpoint = NULL;
    c.checkpoint_steps = 0;
    c.on_step = NULL;
    c.on_epoch = NULL;
    long nb1 = (long)((train->n + tc->batch - 1) / tc->batch), nb = (long)((all->n + tc->batch - 1) / tc->batch);
    long steps = best * nb1;
    wick_trainer *t = NULL;
    *out = NULL;
    if (kind == 1) {
        c.max_steps = steps;
        c.epochs = (int)((steps + nb - 1) / nb);
        c.sched.epochs = c.epochs;
        if ((s = fresh_model(spec, mc, tc->batch, tc->seed, out)) == WICK_OK &&
            (s = wick_trainer_new(&t, *out, all, NULL, &c)) == WICK_OK)
            s = wick_trainer_run(t);
    } else {
        c.stop_val_loss = eps;
        c.sched = wick_sched_defaults(WICK_SCHED_CONSTANT);
        c.sched.lr0 = lr_best;   /* the rate of the epoch it stopped at */
        if ((s = wick_trainer_new(&t, m, all, val, &c)) == WICK_OK) s = wick_trainer_run(t);
    }
    if (s == WICK_OK) {
        long done = wick_trainer_steps(t);
        if (!quiet)
            fprintf(stderr, "second round (%s): %ld steps on all %zu samples%s\n", kind == 1 ? "retrain" : "continue",
                    done, all->n, kind == 1 ? "" : done >= (long)c.epochs * nb ? ", the validation loss never reached "
                    "the first round's training loss" : "");
        *info = json_pack("{s:s, s:I, s:I, s:f}", "strategy", kind == 1 ? "retrain" : "continue", "steps",
                          (json_int_t)done, "samples", (json_int_t)all->n, "target_loss", eps);
    } else if (*out) {
        wick_mlp_free(*out);
        *out = NULL;
    }
    wick_trainer_free(t);
    wick_dataset_free(all);
    return s;
}

typedef struct {
    const wick_spec *spec;
    const wick_mlp_config *mc;
    const wick_train_config *tc;
    const wick_dataset *train, *val, *test;
    const char *out;
    int k, bootstrap, quiet, json, fmnist;
} ens_opts;

/* "dir/name.safetensors" -> "dir/name.3.safetensors" */
static void member_path(const char *out, int k, char *buf, size_t n) {
    const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    if (!dot || (slash && dot < slash)) snprintf(buf, n, "%s.%d", out, k);
    else snprintf(buf, n, "%.*s.%d%s", (int)(dot - out), out, k, dot);
}

/* Softmax of each row of logits, added into acc. */
static void add_probs(const float *logits, size_t rows, int classes, double *acc) {
    for (size_t i = 0; i < rows; i++) {
        const float *z = logits + i * classes;
        double mx = z[0], sum = 0;
        for (int c = 1; c < classes; c++) mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < classes; c++) sum += exp(z[c] - mx);
        for (int c = 0; c < classes; c++) acc[i * classes + c] += exp(z[c] - mx) / sum;
    }
}

/* The metrics of the classes with the highest averaged probability. */
static wick_status ensemble_metrics(const double *probs, const wick_dataset *test, int classes, wick_metrics **mt) {
    int32_t *pred = malloc((test->n ? test->n : 1) * sizeof *pred);
    if (!pred) return cli_error(WICK_ENOMEM, "ensemble: out of memory");
    for (size_t i = 0; i < test->n; i++) {
        int b = 0;
        for (int c = 1; c < classes; c++) b = probs[i * classes + c] > probs[i * classes + b] ? c : b;
        pred[i] = b;
    }
    wick_status s = wick_metrics_compute(test->y, pred, test->n, classes, mt);
    free(pred);
    return s;
}

/* Bagging (Goodfellow et al., sec. 7.11): K nets, member k on a bootstrap
 * resample of the training set (Philox stream 3000000 + k) and seed + k,
 * then the average of their predicted probabilities on the test set. */
static int run_ensemble(const ens_opts *o) {
    wick_status s = WICK_OK;
    int classes = 0;
    double *probs = NULL;
    float *logits = NULL;
    json_t *members = json_array();
    wick_metrics *mt = NULL;
    for (int k = 0; k < o->k && s == WICK_OK; k++) {
        wick_dataset *bag = NULL;
        wick_mlp *m = NULL;
        wick_trainer *t = NULL;
        wick_train_config c = *o->tc;
        c.seed = o->tc->seed + (uint64_t)k;
        c.checkpoint = NULL;
        c.on_step = NULL;
        c.on_epoch = NULL;
        c.stop = &stop_flag;
        if (o->bootstrap) s = wick_dataset_bootstrap(o->train, o->tc->seed, 3000000u + (uint64_t)k, &bag);
        if (s == WICK_OK) s = fresh_model(o->spec, o->mc, c.batch, c.seed, &m);
        if (s == WICK_OK) s = wick_trainer_new(&t, m, bag ? bag : o->train, o->val, &c);
        if (s == WICK_OK) {
            install_signals();
            s = wick_trainer_run(t);
        }
        double acc = NAN;
        if (s == WICK_OK && o->test) {
            classes = wick_mlp_outputs(m);
            if (!probs) {
                probs = calloc(o->test->n * (size_t)classes, sizeof *probs);
                logits = malloc(o->test->n * (size_t)classes * sizeof *logits);
                if (!probs || !logits) s = cli_error(WICK_ENOMEM, "ensemble: out of memory");
            }
            if (s == WICK_OK) s = wick_evaluate(m, o->test, &mt, NULL);
            if (s == WICK_OK) {
                acc = mt->accuracy;
                wick_metrics_free(mt);
                mt = NULL;
                s = wick_mlp_predict(m, o->test->x, o->test->n, logits);
            }
            if (s == WICK_OK) add_probs(logits, o->test->n, classes, probs);
        }
        char path[4200] = "";
        if (s == WICK_OK && o->out) {
            member_path(o->out, k, path, sizeof path);
            s = wick_mlp_save(m, path);
        }
        if (s == WICK_OK) {
            if (!o->quiet)
                fprintf(stderr, "member %d/%d: seed %llu, %s, %ld steps, test accuracy %.4f%s%s\n", k + 1, o->k,
                        (unsigned long long)c.seed, bag ? "bootstrap resample" : "all the training data",
                        wick_trainer_steps(t), acc, *path ? ", written to " : "", path);
            json_array_append_new(members, json_pack("{s:I, s:o, s:I}", "seed", (json_int_t)c.seed, "test_acc",
                                                     cli_jnum(acc), "steps", (json_int_t)wick_trainer_steps(t)));
        }
        wick_trainer_free(t);
        wick_mlp_free(m);
        wick_dataset_free(bag);
    }
    int rc = EXIT_OK;
    if (s == WICK_OK && o->test) {
        s = ensemble_metrics(probs, o->test, classes, &mt);
        if (s == WICK_OK) {
            printf("ensemble of %d: test accuracy %.4f (%zu samples; the members' probabilities averaged)\n", o->k,
                   mt->accuracy, o->test->n);
            for (size_t i = 0; i < json_array_size(members); i++)
                printf("  member %zu: test accuracy %.4f\n", i + 1,
                       json_real_value(json_object_get(json_array_get(members, i), "test_acc")));
            print_report(mt, o->fmnist);
            if (o->json) {
                json_t *j = json_pack("{s:s, s:i, s:s, s:o, s:f}", "command", "train", "ensemble", o->k, "bagging",
                                      o->bootstrap ? "bootstrap" : "seeds", "members", json_incref(members),
                                      "test_acc", mt->accuracy);
                json_object_set_new(j, "test", metrics_json(mt));
                rc = cli_write_json(stdout, "train", j, 9);
                json_decref(j);
            }
        }
    }
    if (s != WICK_OK) rc = cli_fail("train", s);
    wick_metrics_free(mt);
    json_decref(members);
    free(probs);
    free(logits);
    return rc;
}

/* ---- data parallel (src/dist/) ----------------------------------------- */

/* The start-up check: every rank got here, with the same build, data,
 * configuration and initial weights. */
static wick_status dist_agree(wick_dist *d, const wick_dataset *train, const wick_dataset *val, wick_mlp *m,
                              const wick_train_config *tc, const wick_mlp_config *mc) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "epochs %d batch %d seed %llu shuffle %d opt %d %.17g %d %.17g %.17g %.17g %.17g %.17g "
             "sched %d %.17g %d %.17g %.17g %d %d %.17g %.17g patience %d max_steps %ld clip %.17g %.17g %.17g "
             "smoothing %.17g loss %d augment %d %d %.17g ckpt_steps %d",
             tc->epochs, tc->batch, (unsigned long long)tc->seed, tc->shuffle, tc->opt.kind, tc->opt.momentum,
             tc->opt.nesterov, tc->opt.beta1, tc->opt.beta2, tc->opt.eps, tc->opt.weight_decay, tc->opt.l1,
             tc->sched.kind, tc->sched.lr0, tc->sched.step_size, tc->sched.gamma, tc->sched.floor, tc->sched.epochs,
             tc->sched.patience, tc->sched.factor, tc->sched.threshold, tc->patience, tc->max_steps,
             tc->clip_value, tc->clip_norm, tc->max_norm, mc->smoothing, (int)mc->loss, tc->augment.shift,
             tc->augment.flip, tc->augment.rotate, tc->checkpoint_steps);
    return wick_dist_agree(d, WICK_OK, NULL, train, val, m, cfg);
}

/* --shards S without mpirun: the trainer's micro-shard step on one rank,
 * whose sums over the ranks are the values themselves (the micro-shard step
 * calls sum only; grad_start and grad_finish serve the unsharded one). */
static wick_status solo_sum(void *user, double *x, int n) { return WICK_OK; }
static wick_status solo_grad_start(void *user, int i, float *grad, size_t n, double weight) { return WICK_OK; }
static wick_status solo_grad_finish(void *user) { return WICK_OK; }
static wick_collective solo_shards = {.rank = 0, .ranks = 1, .sum = solo_sum, .grad_start = solo_grad_start,
                                      .grad_finish = solo_grad_finish};

/* ---- Hogwild (src/dist/hogwild.c) ------------------------------------- */

typedef struct {
    const wick_spec *spec;
    const wick_mlp_config *mc;
    int batch;
} model_maker;

static wick_status make_model(void *user, wick_mlp **out) {
    const model_maker *k = user;
    return k->spec ? wick_net_new(out, k->spec, k->mc, WICK_DT_F32, k->batch)
                   : wick_mlp_new(out, k->mc, WICK_DT_F32, k->batch);
}

/* wick train --hogwild T: the run, the test set, the model file, the report. */
static int run_hogwild(wick_mlp *m, const wick_spec *spec, const wick_mlp_config *mc, const wick_dataset *train,
                       const wick_dataset *val, const wick_dataset *test, const wick_train_config *tc, int threads,
                       progress *p, const char *out, int json, int fmnist) {
    model_maker k = {spec, mc, tc->batch};
    wick_hogwild_totals tot;
    wick_metrics *mt = NULL;
    double test_loss = NAN;
    if (!p->quiet)
        fprintf(stderr, "hogwild: %d threads, each its own batches of %d, lock-free updates | seed %llu | "
                "%zu train, %zu val\n", threads, tc->batch, (unsigned long long)tc->seed, train->n,
                val ? val->n : 0);
    install_signals();
    p->t_epoch = now();
    wick_status s = wick_hogwild_train(m, train, val, tc, threads, make_model, &k, &tot);
    if (p->bar) fprintf(stderr, "\r\033[K");
    if (s == WICK_OK && test) s = wick_evaluate(m, test, &mt, &test_loss);
    if (s == WICK_OK && out) s = wick_mlp_save(m, out);
    if (s != WICK_OK) return cli_fail("train", s);
    double sps = tot.seconds > 0 ? tot.samples / tot.seconds : 0;
    if (mt) {
        printf("test accuracy %.4f (%zu samples), test loss %.4f\n", mt->accuracy, test->n, test_loss);
        print_report(mt, fmnist);
    }
    printf("training (hogwild, %d threads): %ld steps in %.2f s, %.0f samples/s\n", threads, tot.steps,
           tot.seconds, sps);
    if (out) printf("model written to %s\n", out);
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:I, s:f, s:f, s:O}", "command", "train", "hogwild", threads, "steps",
                              (json_int_t)tot.steps, "train_seconds", tot.seconds, "samples_per_s", sps,
                              "epochs", p->reports);
        if (mt) {
            json_object_set_new(o, "test_acc", json_real(mt->accuracy));
            json_object_set_new(o, "test_loss", json_real(test_loss));
        }
        cli_write_json(stdout, "train", o, 9);
        json_decref(o);
    }
    wick_metrics_free(mt);
    return EXIT_OK;
}

/* A failure under mpirun.  Before the start-up check: this rank's status
 * joins the check, so every rank ends saying which rank failed and why.
 * After it: a diverged or interrupted run is every rank's decision (the loss
 * and the stop request are summed), so the job ends normally; anything else
 * happened on this rank alone and ends the job (MPI_Abort), since the others
 * wait for it in a sum. */
static int dist_fail(wick_dist *d, wick_status s, int agreed) {
    int r = wick_dist_rank(d);
    if (agreed == 1) return r == 0 ? cli_fail("train", s) : EXIT_FAIL;
    if (!agreed) {
        char mine[700];
        snprintf(mine, sizeof mine, "%s", cli_last_error());
        wick_status all = wick_dist_agree(d, s, mine, NULL, NULL, NULL, "");
        if (s != WICK_OK && r > 0) fprintf(stderr, "wick train: rank %d: %s\n", r, mine);
        return r == 0 ? cli_fail("train", all) : EXIT_FAIL;
    }
    if (s == WICK_EDIVERGED || s == WICK_EINTERRUPTED)   /* every rank exits as rank 0 does */
        return r == 0 ? cli_fail("train", s) : s == WICK_EDIVERGED ? EXIT_DIVERGED : EXIT_INTERRUPTED;
    fprintf(stderr, "wick train: rank %d of %d: %s; ending the job\n", r, wick_dist_ranks(d), cli_last_error());
    wick_dist_abort(d, EXIT_FAIL);
    return EXIT_FAIL;
}

/* The end of a run, for the report. */
typedef struct {
    const char *arch;
    const wick_mlp_config *mc;
    int batch;
    uint64_t seed;
    long steps;
    int best_epoch;
    double secs, sps, gflops, t_load, t_eval;  /* training, samples/s, GFLOP/s, data load, test */
    const wick_metrics *mt;                    /* the test set's metrics, NULL without one */
    const wick_dataset *test;
    int fmnist;                                /* the test set is Fashion-MNIST (class names) */
    double test_loss;
    wick_dist *dist;                           /* data parallel, else NULL */
    const char *out;                           /* the model file, else NULL */
    json_t *reports, *round2;                  /* the epochs' reports; the second round's, or NULL */
    wick_precision precision;                  /* the products' */
} train_out;

/* The run's summary on stdout: test metrics, speed, where the model went. */
static void train_print(const train_out *r) {
    const wick_metrics *mt = r->mt;
    if (mt) {
        printf("test accuracy %.4f (%.0f/%zu), test loss %.4f\n", mt->accuracy, mt->accuracy * r->test->n,
               r->test->n, r->test_loss);
        print_report(mt, r->fmnist);
    }
    printf("training: %ld steps in %.2f s, %.0f samples/s, %.1f GFLOP/s (data load %.2f s, test %.2f s)\n",
           r->steps, r->secs, r->sps, r->gflops, r->t_load, r->t_eval);
    wick_dist *dist = r->dist;
    double secs = r->secs;
    if (dist)   /* rank 0's wait: the sums backward did not hide, and the slowest rank's lead */
        printf("data parallel: %d ranks, %.3f s of the %.2f s waiting for sums (%.1f%%)\n", wick_dist_ranks(dist),
               wick_dist_wait_seconds(dist), secs, secs > 0 ? 100 * wick_dist_wait_seconds(dist) / secs : 0);
    if (r->out) printf("model written to %s\n", r->out);
}

/* --json: the run's last line of stdout. */
static void train_json(const train_out *r) {
    const wick_mlp_config *mc = r->mc;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:i, s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:f}",
                          "command", "train", "arch", r->arch, "activation", wick_act_name(mc->act), "init",
                          wick_init_name(mc->init), "cb", mc->cb[0], "cw", mc->cw[0], "batch", r->batch,
                          "threads", wick_threads(), "seed", (json_int_t)r->seed, "steps",
                          (json_int_t)r->steps, "train_seconds", r->secs, "samples_per_s", r->sps,
                          "gflops", r->gflops, "load_seconds", r->t_load, "eval_seconds", r->t_eval);
    json_object_set_new(o, "precision", json_string(r->precision == WICK_PRECISION_BF16 ? "bf16" : "f32"));
    json_t *tl = json_array(), *vl = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(r->reports, i, e) {
        json_array_append(tl, json_object_get(e, "train_loss"));
        json_array_append(vl, json_object_get(e, "val_loss"));
    }
    json_object_set_new(o, "train_loss", tl);
    json_object_set_new(o, "val_loss", vl);
    json_object_set(o, "epochs", r->reports);
    json_object_set_new(o, "best_epoch", json_integer(r->best_epoch));
    if (r->round2) json_object_set(o, "second_round", r->round2);
    if (r->mt) {
        json_object_set_new(o, "test_acc", json_real(r->mt->accuracy));
        json_object_set_new(o, "test_loss", json_real(r->test_loss));
        json_object_set_new(o, "test", metrics_json(r->mt));
    }
    cli_write_json(stdout, "train", o, 9);
    json_decref(o);
}

int cmd_train(int argc, char **argv) {
    const char *given[O_COUNT] = {0};   /* each flag's text as given, for --resume's checks */
    int prc = train_parse(argc, argv, given);
    if (prc != CLI_GO) return prc;
    data_opts d = TA.d;
    wick_mlp_config mc = TA.mc;
    double cb[WICK_MAX_LAYERS], cw[WICK_MAX_LAYERS];
    int ncb = TA.cb.n, ncw = TA.cw.n;
    memcpy(cb, TA.cb.v, sizeof(double) * (size_t)ncb);
    memcpy(cw, TA.cw.v, sizeof(double) * (size_t)ncw);
    const char *spec_text = TA.spec_text;   /* --arch in the layer language */
    wick_spec *spec = NULL;
    wick_train_config tc = TA.tc;
    double lr = TA.lr, gamma = TA.gamma, floor_lr = TA.floor_lr, factor = TA.factor;
    int step_size = TA.step_size, ppat = TA.ppat;
    wick_sched_kind sk = TA.sk;
    long val = TA.val, threads = TA.threads;
    const char *out = TA.out, *resume = TA.resume, *init_from = TA.init_from, *log_path = TA.log_path;
    const char *steps_path = TA.steps_path, *plot = TA.plot;
    long train_limit = TA.train_limit;    /* --train-limit: the first N training samples only (0: all) */
    int standardize = TA.standardize;     /* -1: on for CSV data with an MLP */
    char spec_buf[4096];
    int json = TA.json, quiet = TA.quiet, val_given = given[O_VAL] != NULL;
    int second = TA.second, bootstrap = TA.bootstrap;   /* second round: 0 off, 1 retrain, 2 continue */
    long ensemble = TA.ensemble;
    long hogwild = TA.hogwild;   /* --hogwild T: T threads (docs/distributed.md) */
    int shards = (int)TA.shards, allreduce_f32 = TA.allreduce_f32;   /* the sum over the ranks (src/dist/) */
    /* flags that contradict each other are refused before any work */
    const char *clash = NULL;
    if (second && tc.patience == 0) clash = "--second-round needs early stopping (--patience N)";
    else if (second && val_given && val == 0) clash = "--second-round needs a validation set (--val N > 0)";
    else if (ensemble > 1 && (tc.checkpoint || resume)) clash = "--ensemble trains K fresh nets: no --checkpoint or --resume";
    else if (ensemble > 1 && second) clash = "--ensemble and --second-round do not combine";
    else if (ensemble > 1 && init_from) clash = "--ensemble trains K fresh nets: no --init-from";
    else if (second && resume) clash = "--second-round with --resume: resume the first round, then run the second";
    else if (shards && allreduce_f32) clash = "--shards sums the shards exactly, in double: no --allreduce f32";
    else if ((shards || allreduce_f32) && hogwild)
        clash = "--hogwild's threads share weights without sums: no --shards or --allreduce";
    else if (shards && (ensemble > 1 || second))
        clash = ensemble > 1 ? "--shards does not combine with --ensemble" : "--shards does not combine with --second-round";
    else if (allreduce_f32 && !wick_dist_launched())
        clash = "--allreduce f32 sums the gradients over mpirun's ranks: this run is one process";
    if (clash) {
        fprintf(stderr, "wick train: %s\n", clash);
        return EXIT_USAGE;
    }
    if (resume || init_from) {
        adopt_target at = {&mc, &spec_text, spec_buf, sizeof spec_buf, &lr, &sk, &tc, &standardize};
        int arc = adopt_file(resume ? resume : init_from, resume != NULL, given, &at);
        if (arc != EXIT_OK) return arc;
        if (resume && tc.precision != WICK_PRECISION_F32 && !given[O_PRECISION] &&
            wick_precision_supported(tc.precision) != WICK_OK) {   /* before any data is read */
            fprintf(stderr, "wick train: %s trained with bf16 products: %s; --precision f32 continues it "
                    "in float32\n", resume, wick_last_error());
            return EXIT_FAIL;
        }
    }
    /* flags that would do nothing in this configuration are refused, not ignored */
    const char *idle = NULL;
    if (tc.opt.kind != WICK_OPT_SGD && given[O_MOM]) idle = "--momentum";
    else if (tc.opt.kind != WICK_OPT_SGD && given[O_NESTEROV]) idle = "--nesterov";
    if (idle) {
        fprintf(stderr, "wick train: %s applies to --optimizer sgd only, this run's is %s (Adam's momentum is --beta1)\n",
                idle, tc.opt.kind == WICK_OPT_ADAM ? "adam" : "adamw");
        return EXIT_USAGE;
    }
    if (tc.opt.kind == WICK_OPT_SGD && (given[O_BETA1] || given[O_BETA2] || given[O_EPS])) {
        fprintf(stderr, "wick train: %s applies to --optimizer adam or adamw only, this run's is sgd\n",
                given[O_BETA1] ? "--beta1" : given[O_BETA2] ? "--beta2" : "--eps");
        return EXIT_USAGE;
    }
    /* per-layer C_b, C_W: one value for all, or one per layer with weights */
    int nlayers = mc.layers;
    if (spec_text) {
        if (wick_spec_parse(spec_text, &spec)) goto bad;
        nlayers = 0;
        for (int i = 0; i < spec->n; i++)
            nlayers += spec->layer[i].kind == WICK_LAYER_LINEAR || spec->layer[i].kind == WICK_LAYER_CONV2D;
        for (int i = 0; i < spec->n && shards; i++)
            if (spec->layer[i].kind == WICK_LAYER_BATCHNORM) {   /* a shard's statistics would need the others' */
                fprintf(stderr, "wick train: --shards takes no batch norm (a micro-shard's batch statistics would "
                        "need every other shard's first)\n");
                wick_spec_free(spec);
                return EXIT_USAGE;
            }
    }
    for (int k = 0; k < 2; k++) {
        int n = k ? ncw : ncb;
        double *src = k ? cw : cb, *dst = k ? mc.cw : mc.cb;
        if (n != 1 && n != nlayers) {
            fprintf(stderr, "wick train: --%s takes 1 or %d values (one per layer with weights), got %d\n",
                    k ? "cw" : "cb", nlayers, n);
            wick_spec_free(spec);
            return EXIT_USAGE;
        }
        for (int l = 0; l < nlayers && l < WICK_MAX_LAYERS; l++) dst[l] = src[n == 1 ? 0 : l];
    }
    tc.sched = wick_sched_defaults(sk);
    tc.sched.lr0 = lr;
    tc.sched.epochs = tc.epochs;
    tc.sched.step_size = step_size;
    tc.sched.patience = ppat;
    tc.sched.factor = factor;
    tc.sched.floor = isnan(floor_lr) ? (sk == WICK_SCHED_LINEAR ? 0.01 * lr : 0) : floor_lr;
    if (!isnan(gamma)) tc.sched.gamma = gamma;
    else if (sk == WICK_SCHED_EXP) tc.sched.gamma = 0.95;
    if (tc.opt.kind != WICK_OPT_SGD) tc.opt.momentum = 0;

    /* started by mpirun: data parallel across the ranks (docs/distributed.md) */
    wick_dist *dist = NULL;
    int dist_agreed = 0;   /* the start-up check: 0 not yet, 1 failed (on every rank), 2 passed */
    if (hogwild) {
        const char *no = tc.checkpoint || resume ? "--checkpoint and --resume" : ensemble > 1 ? "--ensemble"
                         : second ? "--second-round" : tc.patience ? "--patience"
                         : tc.clip_value > 0 || tc.clip_norm > 0 || tc.max_norm > 0 ? "clipping and --max-norm"
                         : tc.augment.shift || tc.augment.flip || tc.augment.rotate > 0 ? "augmentation"
                         : wick_dist_launched() ? "mpirun" : NULL;
        if (no) { fprintf(stderr, "wick train: --hogwild does not combine with %s\n", no); return EXIT_USAGE; }
    }
    if (wick_dist_launched()) {
        const char *no = ensemble > 1 ? "--ensemble" : second ? "--second-round" : NULL;
        if (no) { fprintf(stderr, "wick train: %s does not run under mpirun\n", no); return EXIT_USAGE; }
        if (wick_dist_init(&dist)) { fprintf(stderr, "wick train: %s\n", cli_last_error()); return EXIT_FAIL; }
        if (wick_dist_rank(dist) > 0) {   /* rank 0 reports and writes files; the others compute */
            quiet = 1;
            json = 0;
            out = tc.checkpoint = log_path = steps_path = plot = NULL;
            if (!freopen("/dev/null", "w", stdout)) stdout = stderr;
        }
        if (threads == 0 && !getenv("OMP_NUM_THREADS")) {   /* the host's cores shared among its ranks */
            long n = sysconf(_SC_NPROCESSORS_ONLN) / wick_dist_local_ranks(dist);
            threads = n > 1 ? n : 1;
        }
    }
    wick_set_threads((int)threads);
    wick_status s;
    wick_dataset *all = NULL, *train = NULL, *valset = NULL, *test = NULL;
    wick_mlp *m = NULL;
    wick_trainer *t = NULL;
    wick_metrics *mt = NULL;
    FILE *logf = NULL, *stepf = NULL;
    json_t *reports = json_array();
    int rc = EXIT_FAIL, lock_fd = -1, out_written = 0, use_std = 0;
    standardiser z = {0, NULL, NULL};
    const char *term = getenv("TERM");
    progress p = {.bar = isatty(2) && !quiet && !(term && !strcmp(term, "dumb")), .quiet = quiet, .epochs = tc.epochs, .reports = reports,
                  .log_path = log_path, .steps_path = steps_path};

    if ((out && (s = check_writable(out))) || (tc.checkpoint && (s = check_writable(tc.checkpoint)))) goto fail;
    /* a second run writing the same checkpoint would interleave with ours */
    if (tc.checkpoint && (s = wick_path_lock(tc.checkpoint, &lock_fd))) goto fail;
    double t_load = now();
    if ((s = load_data(&d, 0, &all))) goto fail;
    if (train_limit > 0 && (size_t)train_limit < all->n) all->n = (size_t)train_limit;   /* the rest is freed with it */
    if (!d.train_csv || d.test_csv) {
        if ((s = load_data(&d, 1, &test))) goto fail;
    }
    if (!val_given && (d.train_csv || (train_limit > 0 && all->n < 50000))) val = (long)(all->n / 10);
    if (val > 0) {
        if ((s = wick_dataset_split(all, (size_t)val, tc.seed, &train, &valset))) goto fail;
        wick_dataset_free(all);
        all = NULL;
    } else {
        train = all;
        all = NULL;
    }
    t_load = now() - t_load;
    if (!valset && (tc.patience > 0 || sk == WICK_SCHED_PLATEAU)) {   /* they watch the validation loss */
        fprintf(stderr, "wick train: %s needs a validation set, and this run has none (--val %ld): give --val N > 0\n",
                tc.patience > 0 ? "--patience" : "--schedule plateau", val);
        rc = EXIT_USAGE;
        goto done;
    }
    /* CSV features in their own units: standardised (see std_fit) */
    use_std = standardize == 1 || (standardize == -1 && d.train_csv);
    if (use_std && (spec || ensemble > 1 || hogwild)) {
        if (standardize == 1) {
            fprintf(stderr, "wick train: --standardize on takes an MLP (widths in --arch), without --ensemble or --hogwild\n");
            rc = EXIT_USAGE;
            goto done;
        }
        use_std = 0;
    }
    if (use_std) {
        if ((s = std_fit(&z, train))) goto fail;
        tc.input = "standardised";   /* a checkpoint says its net does not take raw rows */
        std_apply(&z, train);
        if (valset) std_apply(&z, valset);
        if (!quiet)
            fprintf(stderr, "inputs standardised per feature on the %zu training samples (the model file takes raw "
                    "rows: it is folded into the first layer)\n", train->n);
    }
    if (ensemble > 1) {
        ens_opts eo = {spec, &mc, &tc, train, valset, test, out, (int)ensemble, bootstrap, quiet, json, !d.test_csv};
        rc = run_ensemble(&eo);
        goto done;
    }
    if ((s = spec ? wick_net_new(&m, spec, &mc, WICK_DT_F32, tc.batch) : wick_mlp_new(&m, &mc, WICK_DT_F32, tc.batch)))
        goto fail;
    mc = *wick_mlp_config_of(m);   /* critical C_b, C_W resolved */
    wick_mlp_init(m, tc.seed);
    if (init_from && (s = wick_mlp_load_params(m, init_from))) goto fail;
    if (init_from && use_std) std_fold(&z, m, 0);   /* the file's weights take raw rows */
    /* every data set against the model before the first step */
    {
        const char *trf = d.train_csv ? d.train_csv : d.dir, *tef = d.test_csv ? d.test_csv : d.dir;
        if ((s = check_fits(m, train, "training set", trf)) || (valset && (s = check_fits(m, valset, "validation set", trf))) ||
            (test && (s = check_fits(m, test, "test set", tef))))
            goto fail;
    }

    if (log_path && !(logf = p.log = fopen(log_path, "w"))) {
        s = cli_error(WICK_EIO, "%s: %s", log_path, strerror(errno));
        goto fail;
    }
    if (!log_path && !isatty(2) && !quiet) p.log = stderr;
    if (steps_path && !(stepf = p.steps = fopen(steps_path, "w"))) {
        s = cli_error(WICK_EIO, "%s: %s", steps_path, strerror(errno));
        goto fail;
    }
    tc.on_step = on_step;
    tc.on_epoch = on_epoch;
    tc.user = &p;
    tc.stop = &stop_flag;
    if (hogwild) {
        rc = run_hogwild(m, spec, &mc, train, valset, test, &tc, (int)hogwild, &p, out, json, !d.test_csv);
        goto done;
    }
    if (dist && (s = wick_dist_collective(dist, m, 1 << 20, allreduce_f32, shards, &tc.coll))) goto fail;
    if (!dist && shards) {   /* one process computes what K <= S ranks do, bit for bit */
        solo_shards.shards = shards;
        tc.coll = &solo_shards;
    }
    if ((s = wick_trainer_new(&t, m, train, valset, &tc))) goto fail;
    if (resume && (s = wick_trainer_resume(t, resume))) goto fail;
    if (dist) {
        s = dist_agree(dist, train, valset, m, &tc, &mc);
        dist_agreed = s ? 1 : 2;
        if (s) goto fail;
        if (!quiet)
            fprintf(stderr, "data parallel: %d ranks x %d threads, each a slice of the global batch %d%s\n",
                    wick_dist_ranks(dist), wick_threads(), tc.batch,
                    shards ? " in fixed micro-shards" : allreduce_f32 ? ", gradients summed in float" : "");
    }

    char arch[4096];
    if (spec) wick_spec_format(spec, arch, sizeof arch);
    else wick_arch_format(&mc, arch, sizeof arch);
    if (spec && !quiet) wick_spec_print(stderr, spec);
    if (!quiet)
        fprintf(stderr, "wick %s | threads %d | seed %llu | %s\n%s %s, init %s (C_b %g, C_W %g), %s lr %g, batch %d, "
                "%d epoch%s | %zu train, %zu val, %zu test | backend %s\n",
                wick_version(), wick_threads(), (unsigned long long)tc.seed, wick_library_versions(), arch,
                spec ? "" : wick_act_name(mc.act), wick_init_name(mc.init), mc.cb[0], mc.cw[0],
                tc.opt.kind == WICK_OPT_SGD ? "sgd" : tc.opt.kind == WICK_OPT_ADAM ? "adam" : "adamw", lr,
                tc.batch, tc.epochs, tc.epochs == 1 ? "" : "s", train->n, valset ? valset->n : 0, test ? test->n : 0,
                wick_trainer_backend(t));
    if (resume && !quiet)
        fprintf(stderr, "resuming %s at step %ld (the model, optimiser, schedule, batch and seed are the checkpoint's)\n",
                resume, wick_trainer_steps(t));
    p.m = m;
    p.train_head = *train;
    if (p.train_head.n > 5000) p.train_head.n = 5000;
    p.first_step = wick_trainer_steps(t);
    p.total_steps = (long)tc.epochs * (long)((train->n + tc.batch - 1) / tc.batch);
    if (tc.max_steps > 0 && tc.max_steps < p.total_steps) p.total_steps = tc.max_steps;
    install_signals();
    p.t_start = p.t_epoch = now();
    s = wick_trainer_run(t);
    if (p.bar) fprintf(stderr, "\r\033[K");
    if (p.io_error[0] && s == WICK_EINTERRUPTED) {   /* we stopped it: the log's failure is the news */
        char why[700];
        snprintf(why, sizeof why, "%s", cli_last_error());
        s = cli_error(WICK_EIO, "%s; %s", p.io_error, why);
    }
    if ((s == WICK_EDIVERGED || (s != WICK_OK && !tc.checkpoint && t && wick_trainer_steps(t) > 0)) &&
        !(dist && wick_dist_rank(dist) > 0))   /* under mpirun, rank 0 saves */
    {
        if (use_std) std_fold(&z, m, 1);
        save_last_good(m, out, tc.checkpoint);
    }
    if (s) goto fail;
    if (p.io_error[0]) { s = cli_error(WICK_EIO, "%s", p.io_error); goto fail; }
    if (!quiet) {   /* how the run ended, when it was not the last epoch's last step */
        long steps = wick_trainer_steps(t), nb = (long)((train->n + tc.batch - 1) / tc.batch);
        long done_epochs = steps / nb;
        int best = wick_trainer_best_epoch(t);
        int by_steps = tc.max_steps > 0 && steps >= tc.max_steps;
        if (by_steps && steps % nb)
            fprintf(stderr, "stopped by --max-steps %ld in epoch %ld, after batch %ld of %ld\n", tc.max_steps,
                    done_epochs + 1, steps % nb, nb);
        else if (by_steps && done_epochs < tc.epochs)
            fprintf(stderr, "stopped by --max-steps %ld at the end of epoch %ld\n", tc.max_steps, done_epochs);
        int early = !by_steps && tc.patience > 0 && done_epochs < tc.epochs;
        if (early)
            fprintf(stderr, "early stopping after epoch %ld: the validation loss did not improve for %d epoch%s\n",
                    done_epochs, tc.patience, tc.patience == 1 ? "" : "s");
        if ((early || done_epochs >= tc.epochs) && tc.patience > 0 && best > 0 && best < done_epochs) {
            double bl = NAN;   /* unknown for an epoch before a resume */
            size_t i;
            json_t *r;
            json_array_foreach(reports, i, r)
                if (json_integer_value(json_object_get(r, "epoch")) == best) bl = json_real_value(json_object_get(r, "val_loss"));
            fprintf(stderr, "restored the weights of epoch %d, the best validation loss", best);
            if (!isnan(bl)) fprintf(stderr, " (%.4f)", bl);
            fprintf(stderr, "\n");
        }
    }
    json_t *round2 = NULL;
    if (second) {
        wick_mlp *m2 = NULL;
        if ((s = second_round(second, spec, &mc, &tc, t, m, train, valset, reports, quiet, &m2, &round2))) goto fail;
        if (m2) {
            wick_mlp_free(m);
            m = m2;
        }
    }

    /* the trained model is on disk before anything else can fail; from
       here on the model takes raw rows, as the test set's are */
    if (use_std) std_fold(&z, m, 1);
    if (out && (s = wick_mlp_save(m, out))) goto fail;
    out_written = out != NULL;
    double t_eval = now(), test_loss = NAN;
    if (test && (s = wick_evaluate(m, test, &mt, &test_loss))) goto fail;
    t_eval = now() - t_eval;
    /* the logs complete on disk, or the run fails */
    for (int k = 0; k < 2; k++) {
        FILE **f = k ? &stepf : &logf;
        if (!*f) continue;
        int bad = fflush(*f) != 0 || ferror(*f);
        int err = errno;
        bad |= fclose(*f) != 0;
        *f = NULL;
        if (bad) {
            s = cli_error(WICK_EIO, "%s: writing the log failed: %s", k ? steps_path : log_path,
                          strerror(err ? err : errno));
            goto fail;
        }
    }

    double secs = wick_trainer_seconds(t), samples = wick_trainer_samples(t);
    double sps = secs > 0 ? samples / secs : 0;
    train_out ro = {arch, &mc, tc.batch, tc.seed, wick_trainer_steps(t), wick_trainer_best_epoch(t), secs, sps,
                    sps * wick_mlp_flops_per_sample(m) / 1e9, t_load, t_eval, mt, test, !d.test_csv, test_loss,
                    dist, out, reports, round2, tc.precision};
    train_print(&ro);
    if (plot && (s = plot_losses(plot, reports, arch))) {
        cli_fail("train", s);   /* a missing gnuplot loses the picture, not the run */
    }
    if (json) train_json(&ro);
    json_decref(round2);
    rc = EXIT_OK;
    goto done;
bad:
    fprintf(stderr, "wick train: %s\n", cli_last_error());
    return EXIT_USAGE;
fail:
    rc = dist ? dist_fail(dist, s, dist_agreed) : cli_fail("train", s);
done:
    wick_dist_finish(dist);
    if (logf) fclose(logf);
    if (stepf) fclose(stepf);
    if (rc != EXIT_OK && out_written)   /* a failure after training: the model is safe, say where */
        fprintf(stderr, "wick train: the trained model was written to %s before that\n", out);
    wick_path_unlock(lock_fd);
    free(z.mean);
    free(z.sd);
    json_decref(reports);
    wick_metrics_free(mt);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_spec_free(spec);
    wick_dataset_free(all);
    wick_dataset_free(train);
    wick_dataset_free(valset);
    wick_dataset_free(test);
    return rc;
}

/* ---- wick eval --------------------------------------------------------- */

/* What the command line asks of wick eval. */
typedef struct {
    data_opts d;
    const char *arch, *act, *logits, *plot;
    const char *models[64];
    int nmodels, json;
    long batch, threads;
} eval_args;

static eval_args EA;

/* --model, once or several times (an ensemble) */
static int fn_model(const cli_opt *o, const char *arg) {
    if (EA.nmodels == 64) {
        fprintf(stderr, "wick eval: at most 64 --model files\n");
        return 0;
    }
    EA.models[EA.nmodels++] = arg;
    return 1;
}

static const cli_opt eval_opts[] = {
    {"model", CLI_FN, NULL, 0, 0, 0, NULL, "FILE",
     "model or checkpoint file (required); several: an ensemble, each member's\n"
     "accuracy and that of their averaged probabilities", NULL, fn_model},
    {"data", CLI_STR, &EA.d.dir, 0, 0, 0, FMNIST_DIR, "DIR", "IDX test files t10k-*", NULL, NULL},
    {"test-csv", CLI_STR, &EA.d.test_csv, 0, 0, 0, NULL, "FILE", "test CSV instead (one sample a row, a label column)", NULL, NULL},
    {"label-col", CLI_INT32, &EA.d.label_col, -1, 1 << 20, 0, "0", "N", "label column: 0 first, -1 last", NULL, NULL},
    {"arch", CLI_STR, &EA.arch, 0, 0, 0, NULL, "SPEC",
     "the architecture, where the file does not say it: widths (784-512-10)\n"
     "or a layer spec (input:1x28x28,conv2d:32:3,...: a PyTorch nn.Sequential's)", NULL, NULL},
    {"act", CLI_FN, &EA.act, 0, 0, 0, NULL, "NAME", "the activation, where the file does not say it", NULL, cli_act_arg},
    {"batch", CLI_INT, &EA.batch, 1, 1 << 20, 0, "256", "N", "evaluation batch", NULL, NULL},
    {"threads", CLI_INT, &EA.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads", NULL, NULL},
    {"logits", CLI_STR, &EA.logits, 0, 0, 0, NULL, "FILE", "write the outputs, one row per sample (CSV, %.9g)", NULL, NULL},
    {"plot", CLI_STR, &EA.plot, 0, 0, 0, NULL, "FILE.png", "the confusion matrix as a heatmap with the counts (gnuplot)", NULL, NULL},
    {"json", CLI_BOOL, &EA.json, 0, 0, 0, NULL, NULL, "last stdout line: one JSON object with the figures", NULL, NULL},
    {0}};

static const cli_cmd eval_cmd = {
    "eval",
    "usage: wick eval --model FILE [FLAGS]\n"
    "Evaluates a model or checkpoint (safetensors; PyTorch state_dict names) on a test set:\n"
    "accuracy, per-class precision/recall/F1, the confusion matrix.\n\n",
    eval_opts, NULL, 21, 1};

/* The command line into EA; CLI_GO, or the exit code. */
static int eval_parse(int argc, char **argv) {
    memset(&EA, 0, sizeof EA);
    int rc = cli_parse(&eval_cmd, argc, argv, NULL);
    if (rc != CLI_GO) return rc;
    if (!EA.nmodels) {
        fprintf(stderr, "wick eval: --model FILE is required (see wick eval --help)\n");
        return EXIT_USAGE;
    }
    return CLI_GO;
}

/* eval --plot: the confusion matrix; a missing gnuplot loses the picture,
 * not the figures printed */
static void plot_confusion(const char *path, const wick_metrics *mt, int fmnist, const char *what) {
    char title[600];
    snprintf(title, sizeof title, "wick eval %.70s%s: accuracy %.4f on %zu samples", what,
             strlen(what) > 70 ? "..." : "", mt->accuracy, mt->n);
    wick_status s = wick_plot_confusion_png(path, title, mt, fmnist && mt->classes == 10 ? fmnist_names : NULL);
    if (s) cli_fail("eval", s);
}

/* A model file into a model: its layer spec (or --arch in the layer
 * language for a file PyTorch wrote), else an MLP (widths and activation
 * from the file, --arch and --act where it does not say them). */
wick_status cli_load_model(const char *model, const char *arch, const char *act, long batch, wick_mlp **mp,
                              wick_spec **specp) {
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    mc.act = (wick_act){WICK_ACT_RELU, WICK_LEAKY_DEFAULT};
    mc.init = WICK_INIT_BOOK;
    for (int l = 0; l < WICK_MAX_LAYERS; l++) mc.cw[l] = 1;
    int has_act = 0;
    wick_status s;
    wick_mlp *m = NULL;
    wick_spec *spec = NULL;
    wick_st_file *f = NULL;
    if ((s = wick_st_read(model, &f))) return s;
    const char *input = wick_st_meta(f, "input");
    if (input && !strcmp(input, "standardised"))
        s = cli_error(WICK_EINVAL, "%s is a checkpoint of a run on standardised inputs: it does not take raw rows; use "
                      "the run's --out model (the standardisation is folded into it), or resume the run", model);
    wick_st_free(f);
    if (s) return s;
    /* a layer spec: the file's own, or --arch in the layer language for a
       file PyTorch wrote; otherwise an MLP */
    int layer_arch = arch && (strchr(arch, ':') || strchr(arch, ','));
    if ((s = wick_net_spec_from_file(model, layer_arch ? arch : NULL, &spec, &mc))) goto fail;
    if (spec) {
        if (act) {
            s = cli_error(WICK_EINVAL, "--act does not apply to %s: its layer spec names the activations", model);
            goto fail;
        }
        if ((s = wick_net_new(&m, spec, &mc, WICK_DT_F32, (int)batch))) goto fail;
    } else if (layer_arch) {
        s = cli_error(WICK_EINVAL, "%s holds an MLP: give --arch as widths, e.g. 784-512-10", model);
        goto fail;
    }
    if (!spec && (s = wick_mlp_config_from_file(model, &mc, &has_act))) goto fail;
    if (!spec && arch) {
        wick_mlp_config given = mc;
        if ((s = wick_arch_parse(arch, &given))) goto fail;
        if (given.layers != mc.layers || memcmp(given.widths, mc.widths, (mc.layers + 1) * sizeof(int))) {
            char a[512];
            wick_arch_format(&mc, a, sizeof a);
            s = cli_error(WICK_ESHAPE, "%s holds a %s network, not --arch %s", model, a, arch);
            goto fail;
        }
    }
    if (!spec && act) {
        if ((s = wick_act_parse(act, &mc.act))) goto fail;
    } else if (!spec && !has_act) {
        s = cli_error(WICK_EINVAL, "%s does not say its activation: give --act", model);
        goto fail;
    }
    if (!spec && (s = wick_mlp_new(&m, &mc, WICK_DT_F32, (int)batch))) goto fail;
    if ((s = wick_mlp_load_params(m, model))) goto fail;
    *mp = m;
    *specp = spec;
    return WICK_OK;
fail:
    wick_mlp_free(m);
    wick_spec_free(spec);
    return s;
}

/* Several --model files: each member's accuracy, then the average of their
 * predicted probabilities (bagging's prediction). */
static int eval_ensemble(const char *const *models, int n, const char *arch, const char *act, long batch, data_opts *d,
                         int json, const char *plot) {
    wick_dataset *test = NULL;
    wick_status s;
    d->train_csv = NULL;
    if ((s = load_data(d, 1, &test))) return cli_fail("eval", s);
    int classes = 0;
    double *probs = NULL;
    float *logits = NULL;
    wick_metrics *mt = NULL;
    json_t *members = json_array();
    for (int k = 0; k < n && s == WICK_OK; k++) {
        wick_mlp *m = NULL;
        wick_spec *spec = NULL;
        if ((s = cli_load_model(models[k], arch, act, batch, &m, &spec)) == WICK_OK) {
            if (!probs) {
                classes = wick_mlp_outputs(m);
                probs = calloc(test->n * (size_t)classes, sizeof *probs);
                logits = malloc(test->n * (size_t)classes * sizeof *logits);
                if (!probs || !logits) s = cli_error(WICK_ENOMEM, "eval: out of memory");
            } else if (wick_mlp_outputs(m) != classes) {
                s = cli_error(WICK_ESHAPE, "%s has %d outputs, %s %d: not one ensemble", models[k],
                              wick_mlp_outputs(m), models[0], classes);
            }
        }
        if (s == WICK_OK) s = wick_evaluate(m, test, &mt, NULL);
        if (s == WICK_OK) {
            printf("member %d: %s: test accuracy %.4f\n", k + 1, models[k], mt->accuracy);
            json_array_append_new(members, json_pack("{s:s, s:f}", "model", models[k], "test_acc", mt->accuracy));
            wick_metrics_free(mt);
            mt = NULL;
            s = wick_mlp_predict(m, test->x, test->n, logits);
        }
        if (s == WICK_OK) add_probs(logits, test->n, classes, probs);
        wick_mlp_free(m);
        wick_spec_free(spec);
    }
    if (s == WICK_OK) s = ensemble_metrics(probs, test, classes, &mt);
    int rc = EXIT_OK;
    if (s == WICK_OK) {
        printf("ensemble of %d: test accuracy %.4f (%zu samples; the members' probabilities averaged)\n", n,
               mt->accuracy, test->n);
        print_report(mt, !d->test_csv);
        if (plot) plot_confusion(plot, mt, !d->test_csv, "(ensemble)");
        if (json) {
            json_t *o = metrics_json(mt);
            json_object_set_new(o, "command", json_string("eval"));
            json_object_set_new(o, "test_acc", json_real(mt->accuracy));
            json_object_set(o, "members", members);
            rc = cli_write_json(stdout, "eval", o, 9);
            json_decref(o);
        }
    } else {
        rc = cli_fail("eval", s);
    }
    free(probs);
    free(logits);
    wick_metrics_free(mt);
    json_decref(members);
    wick_dataset_free(test);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    int prc = eval_parse(argc, argv);
    if (prc != CLI_GO) return prc;
    data_opts d = EA.d;
    const char *model = EA.models[0], *arch = EA.arch, *act = EA.act, *logits = EA.logits, *plot = EA.plot;
    const char *const *models = EA.models;
    int nmodels = EA.nmodels, json = EA.json;
    long batch = EA.batch, threads = EA.threads;
    wick_set_threads((int)threads);
    wick_status s;
    wick_mlp *m = NULL;
    wick_spec *spec = NULL;
    wick_dataset *test = NULL;
    wick_metrics *mt = NULL;
    float *out = NULL;
    int rc = EXIT_FAIL;
    if (nmodels > 1) {
        if (logits) {
            fprintf(stderr, "wick eval: --logits takes one --model (an ensemble's are its members')\n");
            return EXIT_USAGE;
        }
        return eval_ensemble(models, nmodels, arch, act, batch, &d, json, plot);
    }
    if ((s = cli_load_model(model, arch, act, batch, &m, &spec))) goto fail;
    d.train_csv = NULL;
    if ((s = load_data(&d, 1, &test))) goto fail;
    double loss;
    if ((s = wick_evaluate(m, test, &mt, &loss))) goto fail;
    if (logits) {
        int nL = wick_mlp_outputs(m);
        out = malloc(test->n * nL * sizeof *out);
        if (!out) { s = cli_error(WICK_ENOMEM, "out of memory"); goto fail; }
        if ((s = wick_mlp_predict(m, test->x, test->n, out))) goto fail;
        FILE *f = fopen(logits, "w");
        if (!f) { s = cli_error(WICK_EIO, "%s: %s", logits, strerror(errno)); goto fail; }
        int bad = 0;
        for (size_t i = 0; i < test->n; i++)
            for (int j = 0; j < nL; j++) {
                char num[40];   /* the C locale's point whatever the environment's */
                snprintf(num, sizeof num, j + 1 < nL ? "%.9g," : "%.9g\n", out[i * nL + j]);
                bad |= fputs(num, f) == EOF;
            }
        bad |= ferror(f) != 0;
        if ((fclose(f) != 0) | bad) { s = cli_error(WICK_EIO, "%s: write failed: %s", logits, strerror(errno)); goto fail; }
    }
    printf("test accuracy %.4f (%.0f/%zu), test loss %.4f\n", mt->accuracy, mt->accuracy * test->n, test->n, loss);
    print_report(mt, !d.test_csv);
    if (plot) plot_confusion(plot, mt, !d.test_csv, model);
    if (json) {
        json_t *o = metrics_json(mt);
        json_object_set_new(o, "command", json_string("eval"));
        json_object_set_new(o, "test_acc", json_real(mt->accuracy));
        json_object_set_new(o, "test_loss", json_real(loss));
        cli_write_json(stdout, "eval", o, 9);
        json_decref(o);
    }
    rc = EXIT_OK;
    goto done;
fail:
    rc = cli_fail("eval", s);
done:
    free(out);
    wick_metrics_free(mt);
    wick_mlp_free(m);
    wick_spec_free(spec);
    wick_dataset_free(test);
    return rc;
}
