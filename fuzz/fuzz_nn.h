/* fuzz_nn.h — the loaders above the parsers, one input at a time: model
 * files (architecture from the metadata or the shapes, then the weights, then
 * a prediction) and checkpoints (resume a small trainer, then train two
 * steps).  Shared by the libFuzzer harnesses fuzz_model.c and fuzz_resume.c,
 * the seed maker make_nn_seeds.c and the corpus replay in
 * tests/test_fuzz_corpus.c.  Each *_one returns -1 when the library
 * misbehaved (anything but: accepted, or refused with a message and nothing
 * half-made); sanitizers catch the rest.
 *
 * Each input runs twice: as is, and with checksum mismatches let through
 * (nn_checksum_bypass), so that mutated metadata and tensors reach the checks
 * behind the checksum instead of stopping at it.  The count returned is of
 * the passes with the checksum enforced that accepted the file, so that the
 * replay can tell that a "seed-good-" file still loads and a "seed-bad-" one
 * does not. */
#ifndef WICK_FUZZ_NN_H
#define WICK_FUZZ_NN_H

#include "core/core.h"
#include "io/io.h"
#include "nn/model_io.h"
#include <math.h>
#include <string.h>

/* ---- the trainer every resume seed was made with ------------------------ */

#define FZ_N 40      /* training samples: 3 batches of 16, the last of 8 */
#define FZ_NV 12     /* validation samples */
#define FZ_DIM 5
#define FZ_ARCH "5-7-3"

static float fz_x[FZ_N * FZ_DIM], fz_vx[FZ_NV * FZ_DIM];
static int32_t fz_y[FZ_N], fz_vy[FZ_NV];
static wick_dataset fz_train = {FZ_N, FZ_DIM, 3, fz_x, fz_y}, fz_val = {FZ_NV, FZ_DIM, 3, fz_vx, fz_vy};

static void fz_data(void) {
    static int done;
    if (done) return;
    done = 1;
    wick_fill_normal_f32(fz_x, FZ_N * FZ_DIM, 0, 1, 1, 50, 0);
    wick_fill_normal_f32(fz_vx, FZ_NV * FZ_DIM, 0, 1, 2, 50, 0);
    for (int i = 0; i < FZ_N; i++) fz_y[i] = (int32_t)(wick_rand_uniform(1, 51, i) * 3);
    for (int i = 0; i < FZ_NV; i++) fz_vy[i] = (int32_t)(wick_rand_uniform(2, 51, i) * 3);
}

/* kind 0: SGD with momentum and early stopping (best weights); 1: Adam. */
static wick_train_config fz_config(int kind) {
    wick_train_config c = wick_train_defaults();
    c.epochs = 6;
    c.batch = 16;
    c.seed = 5;
    if (kind == 0) {
        c.opt = wick_opt_defaults(WICK_OPT_SGD);
        c.opt.momentum = 0.9;
        c.patience = 4;
    } else {
        c.opt = wick_opt_defaults(WICK_OPT_ADAM);
        c.sched = wick_sched_defaults(WICK_SCHED_PLATEAU);
        c.sched.patience = 1;
    }
    c.sched.lr0 = 0.05;
    return c;
}

static wick_mlp *fz_mlp(void) {
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    wick_arch_parse(FZ_ARCH, &c);
    c.act = (wick_act){WICK_ACT_RELU, 0.01};
    c.init = WICK_INIT_BOOK;
    for (int l = 0; l < c.layers; l++) { c.cb[l] = 0.1; c.cw[l] = 2.0; }
    wick_mlp *m = NULL;
    if (wick_mlp_new(&m, &c, WICK_DT_F32, 16) != WICK_OK) return NULL;
    wick_mlp_init(m, 3);
    return m;
}

/* ---- one input ---------------------------------------------------------- */

typedef struct { volatile int *stop; long steps; } fz_counter;

static void fz_count(void *user, long step, int epoch, int b, int nb, double loss) {
    fz_counter *k = user;
    if (++k->steps >= 2) *k->stop = 1;
}

static int fz_model_pass(const wick_st_file *f, size_t size) {
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    c.act = (wick_act){WICK_ACT_TANH, 0.01};
    c.init = WICK_INIT_BOOK;
    int has_act = 0;
    wick_status s = nn_config_from_st(f, "fuzz.safetensors", &c, &has_act);
    if (s != WICK_OK) return wick_last_error()[0] ? 0 : -1;
    /* what the file makes us allocate for weights is in the file */
    size_t weights = 0;
    for (int l = 0; l < c.layers; l++) weights += (size_t)c.widths[l] * c.widths[l + 1];
    if (weights * sizeof(float) > size) return -1;
    for (int l = 0; l < c.layers; l++) { c.cb[l] = 0; c.cw[l] = 1; }
    c.init = WICK_INIT_BOOK;
    wick_mlp *m = NULL;
    if (wick_mlp_new(&m, &c, WICK_DT_F32, 2) != WICK_OK) return m ? -1 : 0;
    int bad = 0;
    s = nn_load_params(m, f, "fuzz.safetensors", "");
    if (s == WICK_OK) {
        float x[2 * 64] = {0}, out[2 * 64];
        if (c.widths[0] <= 64 && c.widths[c.layers] <= 64) {
            for (int i = 0; i < 2 * c.widths[0]; i++) x[i] = (float)(i % 7) - 3;
            bad = wick_mlp_predict(m, x, 2, out) != WICK_OK;
            volatile float sink = out[0] + out[2 * c.widths[c.layers] - 1];
            (void)sink;
        }
    } else if (!wick_last_error()[0]) {
        bad = 1;
    }
    wick_mlp_free(m);
    return bad ? -1 : s == WICK_OK;
}

static int fuzz_model_one(const uint8_t *data, size_t size) {
    wick_st_file *f = NULL;
    if (wick_st_read_mem("fuzz.safetensors", data, size, &f) != WICK_OK) return f ? -1 : 0;
    int bad = 0, accepted = 0;
    for (int bypass = 0; bypass < 2 && !bad; bypass++) {
        nn_checksum_bypass(bypass);
        int r = fz_model_pass(f, size);
        bad = r < 0;
        if (!bypass && r > 0) accepted++;
    }
    nn_checksum_bypass(0);
    wick_st_free(f);
    return bad ? -1 : accepted;
}

static int fz_resume_pass(const wick_st_file *f, int kind) {
    fz_data();
    wick_mlp *m = fz_mlp();
    if (!m) return -1;
    volatile int stop = 0;
    fz_counter k = {&stop, 0};
    wick_train_config c = fz_config(kind);
    c.stop = &stop;
    c.on_step = fz_count;
    c.user = &k;
    wick_trainer *t = NULL;
    int bad = 0, resumed = 0;
    if (wick_trainer_new(&t, m, &fz_train, &fz_val, &c) != WICK_OK) bad = 1;
    else {
        wick_status s = nn_trainer_resume_st(t, f, "fuzz.safetensors");
        resumed = s == WICK_OK;
        if (s != WICK_OK) bad = !wick_last_error()[0];
        else {
            /* two steps (or the end of the run) from wherever it resumed */
            s = wick_trainer_run(t);
            bad = s != WICK_OK && s != WICK_EINTERRUPTED && s != WICK_EDIVERGED;
            if (s == WICK_OK || s == WICK_EINTERRUPTED) {
                /* a run that ended well has finite weights */
                for (int l = 0; l < 2 && !bad; l++) {
                    wick_graph *g = wick_mlp_graph(m);
                    wick_node w = wick_mlp_weight(m, l);
                    const float *v = wick_graph_value(g, w);
                    size_t n = (size_t)wick_graph_rows(g, w) * wick_graph_cols(g, w);
                    for (size_t i = 0; i < n; i++) bad |= !isfinite(v[i]);
                }
            }
        }
    }
    wick_trainer_free(t);
    wick_mlp_free(m);
    return bad ? -1 : resumed;
}

static int fuzz_resume_one(const uint8_t *data, size_t size) {
    wick_st_file *f = NULL;
    if (wick_st_read_mem("fuzz.safetensors", data, size, &f) != WICK_OK) return f ? -1 : 0;
    int bad = 0, accepted = 0;
    for (int pass = 0; pass < 4 && !bad; pass++) {
        nn_checksum_bypass(pass >= 2);
        int r = fz_resume_pass(f, pass & 1);
        bad = r < 0;
        if (pass < 2 && r > 0) accepted++;
    }
    nn_checksum_bypass(0);
    wick_st_free(f);
    return bad ? -1 : accepted;
}

#endif
