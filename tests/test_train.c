/* test_train.c — the MLP and the training loop: learning works, runs are
 * deterministic, checkpoints resume bit-identically (also mid-epoch and after
 * an interrupt), early stopping restores the best weights, divergence stops
 * with the last good weights, model files are checked on load. */
#include "check.h"
#include "core/core.h"
#include "nn/model_io.h"
#include <math.h>

/* A tiny generated classification set: n samples of dim features drawn
 * N(0,1) from (seed, stream 50), labels from a fixed random teacher. */
static wick_dataset *make_data(size_t n, int dim, int classes, uint64_t seed, int random_labels) {
    wick_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->dim = dim;
    d->classes = classes;
    d->x = malloc(n * dim * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    wick_fill_normal_f32(d->x, n * dim, 0, 1, seed, 50, 0);
    for (size_t i = 0; i < n; i++) {
        if (random_labels) {
            d->y[i] = (int32_t)(wick_rand_uniform(seed, 51, i) * classes);
            continue;
        }
        double best = -1e300;
        for (int c = 0; c < classes; c++) {
            double s = 0;
            for (int j = 0; j < dim; j++) s += d->x[i * dim + j] * wick_rand_normal(7, 52, c * dim + j);
            if (s > best) { best = s; d->y[i] = c; }
        }
    }
    return d;
}

static wick_mlp *make_mlp(const char *arch, wick_act_kind act, int batch) {
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    if (wick_arch_parse(arch, &c) != WICK_OK) return NULL;
    c.act = (wick_act){act, 0.01};
    c.init = WICK_INIT_BOOK;
    for (int l = 0; l < c.layers; l++) { c.cb[l] = 0.0; c.cw[l] = act == WICK_ACT_RELU ? 2.0 : 1.0; }
    wick_mlp *m = NULL;
    CHECK_OK(wick_mlp_new(&m, &c, WICK_DT_F32, batch));
    if (m) wick_mlp_init(m, 3);
    return m;
}

/* Records every step's loss. */
typedef struct { double loss[4096]; long n; long stop_at; volatile int *stop; int fast; } trace;

static void record(void *user, long step, int epoch, int b, int nb, double loss) {
    trace *tr = user;
    if (tr->n < 4096) tr->loss[tr->n++] = loss;
    if (tr->stop && tr->stop_at && step == tr->stop_at) *tr->stop = 1;
}

static void test_arch_parse(void) {
    wick_mlp_config c;
    CHECK_OK(wick_arch_parse("784-[128]x16-10", &c));
    CHECK(c.layers == 17 && c.widths[0] == 784 && c.widths[16] == 128 && c.widths[17] == 10);
    char buf[256];
    CHECK_OK(wick_arch_parse("784-512-512-10", &c));
    wick_arch_format(&c, buf, sizeof buf);
    CHECK(strcmp(buf, "784-512-512-10") == 0);
    CHECK_FAILS(wick_arch_parse("784", &c), WICK_EINVAL, "at least inputs and outputs");
    CHECK_FAILS(wick_arch_parse("784-0-10", &c), WICK_EINVAL, "width >= 1");
    CHECK_FAILS(wick_arch_parse("784-12a-10", &c), WICK_EINVAL, "unexpected 'a'");
}

/* FLOPs per sample of the headline net: 3.21 MFLOP (issue 7). */
static void test_flops(void) {
    wick_mlp *m = make_mlp("784-512-512-10", WICK_ACT_RELU, 4);
    CHECK_NEAR(wick_mlp_flops_per_sample(m), 2.0 * (2 * 784 * 512 + 3 * 512 * 512 + 3 * 512 * 10), 0);
    CHECK_REL(wick_mlp_flops_per_sample(m), 3.21e6, 0.002);
    wick_mlp_free(m);
}

/* The book's initialisation: weights ~ N(0, C_W / fan_in), biases N(0, C_b). */
static void test_init_statistics(void) {
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    CHECK_OK(wick_arch_parse("400-300-5", &c));
    c.act = (wick_act){WICK_ACT_TANH, 0};
    c.init = WICK_INIT_BOOK;
    c.cb[0] = 0.3; c.cw[0] = 1.7;
    c.cb[1] = 0.0; c.cw[1] = 1.0;
    wick_mlp *m;
    CHECK_OK(wick_mlp_new(&m, &c, WICK_DT_F32, 2));
    wick_mlp_init(m, 11);
    const float *W = wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 0));
    const float *b = wick_graph_value(wick_mlp_graph(m), wick_mlp_bias(m, 0));
    double s2 = 0, b2 = 0;
    for (int i = 0; i < 300 * 400; i++) s2 += (double)W[i] * W[i];
    for (int i = 0; i < 300; i++) b2 += (double)b[i] * b[i];
    s2 /= 300 * 400;
    b2 /= 300;
    CHECK_REL(s2, 1.7 / 400, 5 * sqrt(2.0 / (300 * 400)));   /* 5 standard errors */
    CHECK_REL(b2, 0.3, 5 * sqrt(2.0 / 300));
    wick_mlp_free(m);
    /* no critical point for sigmoid: refused with the reason */
    c.init = WICK_INIT_CRITICAL;
    c.act = (wick_act){WICK_ACT_SIGMOID, 0};
    CHECK_FAILS(wick_mlp_new(&m, &c, WICK_DT_F32, 2), WICK_ENUMERIC, "--init critical");
}

/* The classic check: a small MLP memorises 64 random labels. */
static void test_learns_to_zero_loss(void) {
    wick_dataset *d = make_data(64, 8, 4, 1, 1);
    wick_mlp *m = make_mlp("8-64-64-4", WICK_ACT_TANH, 16);
    wick_train_config c = wick_train_defaults();
    c.epochs = 150;
    c.batch = 16;
    c.opt = wick_opt_defaults(WICK_OPT_ADAM);
    c.sched.lr0 = 3e-3;
    trace tr = {0};
    c.on_step = record;
    c.user = &tr;
    wick_trainer *t;
    CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
    CHECK_OK(wick_trainer_run(t));
    double first = tr.loss[0], last = 0;
    for (int i = 0; i < 4; i++) last += tr.loss[tr.n - 1 - i] / 4;
    CHECK(first > 1.0);           /* log 4 = 1.39 at the start */
    CHECK(last < 0.01);
    wick_metrics *mt;
    CHECK_OK(wick_evaluate(m, d, &mt, NULL));
    CHECK(mt->accuracy == 1.0);
    wick_metrics_free(mt);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(d);
}

/* run_trace's training: 4 epochs of 10 batches (the last of 12), SGD with
 * Nesterov momentum on a step schedule. */
static wick_train_config trace_config(void) {
    wick_train_config c = wick_train_defaults();
    c.epochs = 4;
    c.batch = 32;
    c.seed = 9;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.opt.nesterov = 1;
    c.sched = wick_sched_defaults(WICK_SCHED_STEP);
    c.sched.lr0 = 0.05;
    c.sched.step_size = 1;
    c.sched.gamma = 0.7;
    return c;
}

/* Runs `steps` steps of a fixed setup; returns the trainer for inspection. */
static void run_trace(int threads, trace *tr, const char *ckpt, int ckpt_steps, long max_steps,
                      const char *resume, float *final_w) {
    wick_set_threads(threads);
    wick_dataset *d = make_data(300, 12, 3, 2, 0);
    wick_mlp *m = make_mlp("12-48-48-3", WICK_ACT_RELU, 32);
    wick_train_config c = trace_config();
    c.checkpoint = ckpt;
    c.checkpoint_steps = ckpt_steps;
    c.max_steps = max_steps;
    c.on_step = record;
    c.user = tr;
    c.stop = tr->stop;
    wick_trainer *t;
    CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
    tr->fast = t && strstr(wick_trainer_backend(t), "own kernel") != NULL;   /* the chain (chain.c) */
    if (resume) CHECK_OK(wick_trainer_resume(t, resume));
    wick_status s = wick_trainer_run(t);
    CHECK(s == WICK_OK || (tr->stop && s == WICK_EINTERRUPTED));
    if (final_w) {
        size_t n = 48 * 12;
        memcpy(final_w, wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 0)), n * sizeof *final_w);
    }
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(d);
    wick_set_threads(0);
}

static void test_determinism_across_threads(void) {
    static trace a, b, c;
    float wa[576], wb[576], wc[576];
    run_trace(2, &a, NULL, 0, 0, NULL, wa);
    run_trace(2, &b, NULL, 0, 0, NULL, wb);
    run_trace(1, &c, NULL, 0, 0, NULL, wc);
    CHECK(a.n == 40 && b.n == 40 && c.n == 40);
    /* same seed and thread count: bit-identical */
    CHECK(memcmp(a.loss, b.loss, sizeof a.loss) == 0);
    CHECK(memcmp(wa, wb, sizeof wa) == 0);
    /* another thread count: the fast path's weights are bit-identical (each
       item's numbers do not depend on the thread that computes it, chain.c);
       its loss, summed per item, and the general executor's weights (the
       backend's sums) only up to the order of float sums */
    CHECK(a.fast == c.fast);
    for (int i = 0; i < 40; i++) CHECK_REL(c.loss[i], a.loss[i], 1e-6);
    if (a.fast) CHECK(memcmp(wc, wa, sizeof wa) == 0);
    else for (int i = 0; i < 576; i++) CHECK_NEAR(wc[i], wa[i], 1e-5);
}

/* The fast path's team size (chosen by timing, core.h wick_team_tuner) does
 * not change a bit: 2 threads' items run by one thread, as the search does
 * beside a busy neighbour, give the losses and weights of 2 threads. */
static void test_team_size_does_not_change_results(void) {
    static trace a, b;
    float wa[576], wb[576];
    setenv("WICK_TEAM_TUNE", "0", 1);
    run_trace(2, &a, NULL, 0, 0, NULL, wa);
    unsetenv("WICK_TEAM_TUNE");
    setenv("WICK_TEAM_SIZE", "1", 1);
    run_trace(2, &b, NULL, 0, 0, NULL, wb);
    unsetenv("WICK_TEAM_SIZE");
    if (!a.fast) SKIP("the MLP does not run on the fast path here");
    CHECK(a.n == 40 && b.n == 40);
    CHECK(memcmp(a.loss, b.loss, sizeof a.loss) == 0);
    CHECK(memcmp(wa, wb, sizeof wa) == 0);
}

/* A checkpoint mid-epoch (step 13 of 10-batch epochs), then a fresh process
 * resumes: the remaining losses and the final weights are bit-identical. */
static void test_resume_bit_identical(void) {
    static trace full, first, rest;
    float wf[576], wr[576];
    const char *ck = chk_tmp("resume.safetensors");
    run_trace(2, &full, NULL, 0, 0, NULL, wf);
    run_trace(2, &first, ck, 0, 13, NULL, NULL);
    CHECK(first.n == 13);
    run_trace(2, &rest, NULL, 0, 0, ck, wr);
    CHECK(rest.n == 27);
    CHECK(memcmp(rest.loss, full.loss + 13, 27 * sizeof(double)) == 0);
    CHECK(memcmp(wr, wf, sizeof wf) == 0);
}

/* A checkpoint whose precision key is neither f32 nor bf16, its checksum
 * recomputed (as a writer other than wick could): the resume is refused
 * naming the key and the value, and the run is untouched. */
static void test_resume_refuses_unknown_precision(void) {
    static trace first;
    const char *ck = chk_tmp("prec.safetensors"), *bad = chk_tmp("prec-bad.safetensors");
    run_trace(2, &first, ck, 0, 13, NULL, NULL);
    wick_st_file *f = NULL;
    CHECK_OK(wick_st_read(ck, &f));
    if (!f) return;
    CHECK(!strcmp(wick_st_meta(f, "precision"), "f32"));
    static nn_meta meta;
    meta.n = 0;
    for (int i = 0; i < nn_meta_nkeys; i++) {
        const char *v = wick_st_meta(f, nn_meta_keys[i].name);
        if (v && strcmp(nn_meta_keys[i].name, "precision")) nn_meta_set(&meta, nn_meta_keys[i].name, v);
    }
    nn_meta_set(&meta, "precision", "fp8");
    const int n = wick_st_count(f);
    wick_st_tensor *ts = malloc((size_t)n * sizeof *ts);
    for (int i = 0; i < n; i++) ts[i] = *wick_st_get(f, i);
    CHECK_OK(nn_write(bad, ts, n, &meta));
    free(ts);
    wick_st_free(f);
    wick_dataset *d = make_data(300, 12, 3, 2, 0);
    wick_mlp *m = make_mlp("12-48-48-3", WICK_ACT_RELU, 32);
    wick_train_config c = trace_config();
    wick_trainer *t = NULL;
    CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
    CHECK_FAILS(wick_trainer_resume(t, bad), WICK_EFORMAT, "__metadata__ precision = 'fp8' is neither f32 nor bf16");
    CHECK_OK(wick_trainer_resume(t, ck));   /* the good one still resumes */
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(d);
}

/* Interrupt at step 22 (as SIGINT would): a checkpoint is written and the
 * run resumes from it exactly. */
static void test_interrupt_and_resume(void) {
    static trace full, first, rest;
    volatile int stop = 0;
    float wf[576], wr[576];
    const char *ck = chk_tmp("interrupt.safetensors");
    run_trace(2, &full, NULL, 0, 0, NULL, wf);
    first.stop = &stop;
    first.stop_at = 22;
    run_trace(2, &first, ck, 0, 0, NULL, NULL);
    CHECK(first.n == 22);
    run_trace(2, &rest, NULL, 0, 0, ck, wr);
    CHECK(rest.n == 18);
    CHECK(memcmp(rest.loss, full.loss + 22, 18 * sizeof(double)) == 0);
    CHECK(memcmp(wr, wf, sizeof wf) == 0);
}

/* Early stopping: weights after the run equal those at the best epoch. */
static float best_copy[64][576];
static double val_losses[64];
static void keep_epoch(void *user, const wick_epoch_report *r) {
    wick_mlp *m = user;
    memcpy(best_copy[r->epoch], wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 0)), sizeof best_copy[0]);
    val_losses[r->epoch] = r->val_loss;
}

static void test_early_stopping_restores_best(void) {
    wick_dataset *all = make_data(400, 12, 3, 4, 1), *tr, *va;   /* random labels: it overfits */
    CHECK_OK(wick_dataset_split(all, 100, 5, &tr, &va));
    CHECK(tr->n == 300 && va->n == 100);
    wick_mlp *m = make_mlp("12-48-48-3", WICK_ACT_RELU, 32);
    wick_train_config c = wick_train_defaults();
    c.epochs = 60;
    c.batch = 32;
    c.patience = 3;
    c.opt = wick_opt_defaults(WICK_OPT_ADAM);
    c.sched.lr0 = 1e-2;
    c.on_epoch = keep_epoch;
    c.user = m;
    wick_trainer *t = NULL;
    CHECK_OK(wick_trainer_new(&t, m, tr, va, &c));
    if (!t) return;
    CHECK_OK(wick_trainer_run(t));
    int best = wick_trainer_best_epoch(t);
    CHECK(best >= 1 && best < 60);
    for (int e = 1; e < 64 && val_losses[e] != 0; e++) CHECK(val_losses[e] >= val_losses[best]);
    CHECK(memcmp(wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 0)), best_copy[best], sizeof best_copy[0]) == 0);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(all);
    wick_dataset_free(tr);
    wick_dataset_free(va);
}

/* Early stopping with batch norm: the best epoch's running statistics come
 * back with its weights, so the restored model's validation loss is the best
 * epoch's, exactly (the last epoch's statistics would give another). */
static void keep_val_loss(void *user, const wick_epoch_report *r) { val_losses[r->epoch] = r->val_loss; }

static void test_early_stopping_restores_batchnorm_state(void) {
    wick_dataset *all = make_data(400, 12, 3, 4, 1), *tr, *va;   /* random labels: it overfits */
    CHECK_OK(wick_dataset_split(all, 100, 5, &tr, &va));
    wick_spec *spec = NULL;
    wick_net *m = NULL;
    wick_mlp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.init = WICK_INIT_HE;
    CHECK_OK(wick_spec_parse("input:12,linear:48,batchnorm,relu,linear:48,batchnorm,relu,linear:3", &spec));
    CHECK_OK(wick_net_new(&m, spec, &cfg, WICK_DT_F32, 32));
    if (!m) { wick_spec_free(spec); return; }
    wick_mlp_init(m, 3);
    memset(val_losses, 0, sizeof val_losses);
    wick_train_config c = wick_train_defaults();
    c.epochs = 60;
    c.batch = 32;
    c.patience = 3;
    c.opt = wick_opt_defaults(WICK_OPT_ADAM);
    c.sched.lr0 = 1e-2;
    c.on_epoch = keep_val_loss;
    wick_trainer *t = NULL;
    CHECK_OK(wick_trainer_new(&t, m, tr, va, &c));
    if (t) {
        CHECK_OK(wick_trainer_run(t));
        int best = wick_trainer_best_epoch(t), last = best;
        while (last + 1 < 64 && val_losses[last + 1] != 0) last++;
        CHECK(best >= 1 && last > best);   /* the run went on past its best epoch */
        double loss = 0;
        wick_metrics *mt = NULL;
        CHECK_OK(wick_evaluate(m, va, &mt, &loss));
        CHECK(loss == val_losses[best]);
        CHECK(loss != val_losses[last]);
        wick_metrics_free(mt);
        wick_trainer_free(t);
    }
    wick_mlp_free(m);
    wick_spec_free(spec);
    wick_dataset_free(all);
    wick_dataset_free(tr);
    wick_dataset_free(va);
}

/* A huge learning rate diverges: a distinct status, finite weights (those of
 * the last good step), and the checkpoint on disk is untouched. */
static void test_divergence_stops(void) {
    wick_dataset *d = make_data(256, 12, 3, 6, 0);
    wick_mlp *m = make_mlp("12-48-48-3", WICK_ACT_RELU, 32);
    wick_train_config c = wick_train_defaults();
    c.epochs = 50;
    c.batch = 32;
    c.opt.momentum = 0.9;
    c.sched.lr0 = 50;
    const char *ck = chk_tmp("diverge.safetensors");
    CHECK_OK(wick_mlp_save(m, ck));    /* stands for the last good checkpoint */
    FILE *f = fopen(ck, "rb");
    char before[65536];
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);
    wick_trainer *t;
    CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
    CHECK_FAILS(wick_trainer_run(t), WICK_EDIVERGED, "diverged at step");
    const float *W = wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 1));
    int finite = 1;
    for (int i = 0; i < 48 * 48; i++) finite &= isfinite(W[i]) != 0;
    CHECK(finite);
    char after[65536];
    f = fopen(ck, "rb");
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    CHECK(na == nb && memcmp(before, after, nb) == 0);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(d);
}

/* Model files: round trip; wrong shape, missing or extra tensor, wrong dtype
 * and a corrupted byte are all refused, leaving the model unchanged. */
static void test_model_files(void) {
    wick_mlp *a = make_mlp("6-5-3", WICK_ACT_TANH, 4), *b = make_mlp("6-5-3", WICK_ACT_TANH, 4);
    wick_mlp_init(b, 99);
    const char *p = chk_tmp("model.safetensors");
    CHECK_OK(wick_mlp_save(a, p));
    CHECK_OK(wick_mlp_load_params(b, p));
    CHECK(memcmp(wick_graph_value(wick_mlp_graph(a), wick_mlp_weight(a, 1)),
                 wick_graph_value(wick_mlp_graph(b), wick_mlp_weight(b, 1)), 15 * sizeof(float)) == 0);
    wick_mlp_config c;
    int has_act;
    CHECK_OK(wick_mlp_config_from_file(p, &c, &has_act));
    CHECK(has_act && c.act.kind == WICK_ACT_TANH && c.layers == 2 && c.widths[1] == 5);

    wick_mlp *other = make_mlp("6-4-3", WICK_ACT_TANH, 4);
    CHECK_FAILS(wick_mlp_load_params(other, p), WICK_ESHAPE, "tensor '0.weight' has shape [5, 6], the model needs [4, 6]");
    wick_mlp *deeper = make_mlp("6-5-5-3", WICK_ACT_TANH, 4);
    CHECK_FAILS(wick_mlp_load_params(deeper, p), WICK_ESHAPE, "'2.weight'");
    wick_mlp *shallow = make_mlp("6-3", WICK_ACT_TANH, 4);
    CHECK_FAILS(wick_mlp_load_params(shallow, p), WICK_ESHAPE, "0.weight");

    /* an extra tensor and a float64 tensor, written by hand */
    float w0[30] = {0}, b0[5] = {0}, w1[15] = {0}, b1[3] = {0}, extra[2] = {0};
    double w1d[15] = {0};
    wick_st_tensor ts[5] = {
        {"0.weight", WICK_DT_F32, 2, {5, 6}, w0}, {"0.bias", WICK_DT_F32, 1, {5}, b0},
        {"2.weight", WICK_DT_F32, 2, {3, 5}, w1}, {"2.bias", WICK_DT_F32, 1, {3}, b1},
        {"4.weight", WICK_DT_F32, 1, {2}, extra}};
    const char *q = chk_tmp("extra.safetensors");
    CHECK_OK(wick_st_write(q, ts, 5, NULL, 0));
    CHECK_FAILS(wick_mlp_load_params(b, q), WICK_EFORMAT, "tensor '4.weight' is not part of the model 6-5-3");
    ts[2].dtype = WICK_DT_F64;
    ts[2].data = w1d;
    CHECK_OK(wick_st_write(q, ts, 4, NULL, 0));
    CHECK_FAILS(wick_mlp_load_params(b, q), WICK_EDTYPE, "tensor '2.weight' is F64, the model needs F32");
    ts[2].dtype = WICK_DT_F32;
    ts[2].data = w1;
    CHECK_OK(wick_st_write(q, ts, 3, NULL, 0));
    CHECK_FAILS(wick_mlp_load_params(b, q), WICK_EFORMAT, "no tensor '2.bias'");
    /* b still holds a's weights: refused loads changed nothing */
    CHECK(memcmp(wick_graph_value(wick_mlp_graph(a), wick_mlp_weight(a, 0)),
                 wick_graph_value(wick_mlp_graph(b), wick_mlp_weight(b, 0)), 30 * sizeof(float)) == 0);

    /* one flipped byte in the data: the checksum catches it */
    FILE *f = fopen(p, "r+b");
    fseek(f, -3, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -3, SEEK_END);
    fputc(ch ^ 0x10, f);
    fclose(f);
    CHECK_FAILS(wick_mlp_load_params(b, p), WICK_EFORMAT, "checksum mismatch");
    wick_mlp_free(a); wick_mlp_free(b); wick_mlp_free(other); wick_mlp_free(deeper); wick_mlp_free(shallow);
}

/* Allocation failure at the 1st, 2nd, ... allocation of model construction,
 * trainer creation and a checkpoint save: a clean ENOMEM every time. */
static void test_alloc_failures(void) {
    wick_dataset *d = make_data(64, 6, 3, 8, 0);
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    wick_arch_parse("6-8-3", &c);
    c.act = (wick_act){WICK_ACT_TANH, 0};
    c.init = WICK_INIT_BOOK;
    c.cb[0] = c.cb[1] = 0; c.cw[0] = c.cw[1] = 1;
    int failures = 0;
    for (long k = 1; k < 200; k++) {
        wick_mlp *m = NULL;
        wick_alloc_fail_at(k);
        wick_status s = wick_mlp_new(&m, &c, WICK_DT_F32, 8);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) { wick_mlp_free(m); break; }
        CHECK(s == WICK_ENOMEM);
        failures++;
    }
    CHECK(failures >= 3);
    wick_mlp *m;
    CHECK_OK(wick_mlp_new(&m, &c, WICK_DT_F32, 8));
    wick_train_config tc = wick_train_defaults();
    tc.epochs = 1;
    tc.batch = 8;
    wick_trainer *t = NULL;
    for (long k = 1; k < 200; k++) {
        wick_alloc_fail_at(k);
        wick_status s = wick_trainer_new(&t, m, d, NULL, &tc);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) break;
        CHECK_FAILS(s, WICK_ENOMEM, NULL);
        if (s != WICK_ENOMEM) break;
    }
    CHECK(t != NULL);
    if (!t) return;
    const char *p = chk_tmp("alloc.safetensors");
    CHECK_OK(wick_trainer_save(t, p));
    FILE *f = fopen(p, "rb");
    char before[8192];
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);
    CHECK_OK(wick_trainer_run(t));   /* the weights change */
    for (long k = 1; k < 200; k++) {
        wick_alloc_fail_at(k);
        wick_status s = wick_trainer_save(t, p);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) break;
        CHECK(s == WICK_ENOMEM);
        /* the old checkpoint is intact after every failed save */
        f = fopen(p, "rb");
        char now[8192];
        size_t nn = fread(now, 1, sizeof now, f);
        fclose(f);
        CHECK(nn == nb && memcmp(now, before, nb) == 0);
    }
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(d);
}

/* The executor's fast path (one parallel region a step, chain.c) computes
 * what the general executor does: the same losses and weights, up to the
 * order of float sums, for every activation kind it handles, with a partial
 * last batch, 1 and 2 threads. */
static void test_fast_path_matches_general(void) {
    /* Adam with each activation; then SGD (the benchmark's optimiser):
       momentum with Nesterov and weight decay, and plain, at batch 120, where
       2 threads split the forward into four items (120, 120, then a partial
       batch of 60: two items).  Steps: 3 epochs of 300 samples. */
    static const struct {
        wick_act_kind act;
        int batch, steps;
        wick_opt_kind opt;
        double lr, momentum, weight_decay;
        int nesterov;
    } cases[] = {
        {WICK_ACT_RELU, 32, 30, WICK_OPT_ADAM, 3e-3, 0.0, 1e-3, 0},
        {WICK_ACT_TANH, 32, 30, WICK_OPT_ADAM, 3e-3, 0.0, 1e-3, 0},
        {WICK_ACT_GELU, 32, 30, WICK_OPT_ADAM, 3e-3, 0.0, 1e-3, 0},
        {WICK_ACT_RELU, 120, 9, WICK_OPT_SGD, 0.05, 0.9, 1e-3, 1},
        {WICK_ACT_TANH, 120, 9, WICK_OPT_SGD, 0.05, 0.0, 0.0, 0},
    };
    for (int threads = 1; threads <= 2; threads++)
        for (size_t a = 0; a < sizeof cases / sizeof *cases; a++) {
            wick_set_threads(threads);
            wick_dataset *d = make_data(300, 12, 3, 2, 0);
            static trace tr[2];
            float w[2][48 * 48];
            for (int k = 0; k < 2; k++) {
                wick_mlp *m = make_mlp("12-48-48-3", cases[a].act, cases[a].batch);
                wick_train_config c = wick_train_defaults();
                c.epochs = 3;
                c.batch = cases[a].batch;
                c.opt = wick_opt_defaults(cases[a].opt);
                c.opt.weight_decay = cases[a].weight_decay;
                c.opt.momentum = cases[a].momentum;
                c.opt.nesterov = cases[a].nesterov;
                c.sched.lr0 = cases[a].lr;
                c.general_executor = k;
                memset(&tr[k], 0, sizeof tr[k]);
                c.on_step = record;
                c.user = &tr[k];
                wick_trainer *t;
                CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
                CHECK_OK(wick_trainer_run(t));
                memcpy(w[k], wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 1)), sizeof w[k]);
                wick_trainer_free(t);
                wick_mlp_free(m);
            }
            const int steps = cases[a].steps;
            CHECK(tr[0].n == steps && tr[1].n == steps);
            for (int i = 0; i < steps; i++) CHECK_REL(tr[0].loss[i], tr[1].loss[i], 1e-5);
            double worst = 0;
            for (int i = 0; i < 48 * 48; i++) worst = fmax(worst, fabs(w[0][i] - w[1][i]));
            CHECK(worst < 1e-5);
            wick_dataset_free(d);
        }
    wick_set_threads(0);
}

/* A callback that changes the weights between steps, through the public
 * accessor, as user code may: at step 5 it halves W[1] and shifts b[0]. */
typedef struct { trace tr; wick_mlp *m; } meddler;

static void meddle(void *user, long step, int epoch, int b, int nb, double loss) {
    meddler *md = user;
    record(&md->tr, step, epoch, b, nb, loss);
    if (step != 5) return;
    wick_graph *g = wick_mlp_graph(md->m);
    float *W = wick_graph_value(g, wick_mlp_weight(md->m, 1));
    for (int i = 0; i < 48 * 48; i++) W[i] *= 0.5f;
    float *bias = wick_graph_value(g, wick_mlp_bias(md->m, 0));
    for (int i = 0; i < 48; i++) bias[i] += 0.25f;
}

/* The fast path keeps packed copies of the weights between steps; weights
 * changed from outside between two steps must reach the next step. */
static void test_fast_path_sees_outside_writes(void) {
    wick_set_threads(2);
    wick_dataset *d = make_data(320, 12, 3, 4, 0);
    static meddler md[2];
    for (int k = 0; k < 2; k++) {
        wick_mlp *m = make_mlp("12-48-48-3", WICK_ACT_RELU, 32);
        wick_train_config c = wick_train_defaults();
        c.epochs = 1;
        c.batch = 32;
        c.opt = wick_opt_defaults(WICK_OPT_SGD);
        c.opt.momentum = 0.9;
        c.sched.lr0 = 0.05;
        c.general_executor = k;
        memset(&md[k], 0, sizeof md[k]);
        md[k].m = m;
        c.on_step = meddle;
        c.user = &md[k];
        wick_trainer *t;
        CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
        CHECK_OK(wick_trainer_run(t));
        wick_trainer_free(t);
        wick_mlp_free(m);
    }
    CHECK(md[0].tr.n == 10 && md[1].tr.n == 10);
    /* the change moves the loss (so a stale copy would show) */
    CHECK(fabs(md[1].tr.loss[5] - md[1].tr.loss[4]) > 1e-3);
    for (int i = 0; i < 10; i++) CHECK_REL(md[0].tr.loss[i], md[1].tr.loss[i], 1e-5);
    wick_dataset_free(d);
    wick_set_threads(0);
}

/* The checkpoint keys come from one table (checksum.c's nn_meta_keys): its
 * version-1 keys are sorted (the checksum's canonical order), every key is
 * one the checksum covers, and each field written through the table reads
 * back through it unchanged; a checkpoint written before the later keys
 * existed still verifies and reads. */
static void test_checkpoint_keys_round_trip(void) {
    int later = 0;
    const char *prev = "";
    for (int i = 0; i < nn_meta_nkeys; i++) {
        const nn_meta_key *k = &nn_meta_keys[i];
        CHECK(nn_meta_known(k->name));
        if (k->flags & NN_KEY_LATER) { later = 1; continue; }
        CHECK(!later);                       /* version 1's keys first */
        CHECK(strcmp(prev, k->name) < 0);   /* sorted */
        prev = k->name;
    }
    CHECK(!nn_meta_known("no_such_key"));
    nn_ckpt_meta a = {
        .seed = 18446744073709551615ull, .graph_step = 12345678901234ull, .shuffle = 1, .batch = 2147483647,
        .train_samples = 9007199254740993ll, .step = 77, .epoch = 3, .batch_in_epoch = 5, .epoch_steps = 5,
        .best_epoch = 2, .bad_epochs = 1, .sched_bad_epochs = 1, .epoch_loss_sum = 0.1, .first_loss = NAN,
        .best_val = INFINITY, .sched_lr = 1e-300, .sched_best = 0.30000000000000004, .seconds = 1.5,
        .samples = 4e15, .lr = 0.05, .momentum = 0.9, .weight_decay = 5e-324, .label_smoothing = 0.25,
        .optimizer_steps = "77,77,76", .optimizer = "adamw", .schedule = "plateau", .input = "standardised",
        .precision = "bf16"};
    static nn_meta meta;
    meta.n = 0;
    nn_meta_set(&meta, "format", "wick-checkpoint");
    nn_ckpt_meta_write(&meta, &a);
    float w[2] = {1, 2};
    int64_t shape[1] = {2};
    wick_st_tensor t = {"w", WICK_DT_F32, 1, {shape[0]}, w};
    const char *path = chk_tmp("keys.safetensors");
    CHECK_OK(nn_write(path, &t, 1, &meta));
    wick_st_file *f = NULL;
    CHECK_OK(wick_st_read(path, &f));
    if (!f) return;
    CHECK_OK(nn_verify_checksum(f, path, 1));
    nn_ckpt_meta b;
    memset(&b, 0, sizeof b);
    CHECK_OK(nn_ckpt_meta_read(f, path, &b));
    for (int i = 0; i < nn_meta_nkeys; i++) {
        const nn_meta_key *k = &nn_meta_keys[i];
        if (k->off == NN_KEY_NOFIELD) continue;
        const char *pa = (const char *)&a + k->off, *pb = (const char *)&b + k->off;
        int same = k->type == NN_KEY_STR ? !strcmp(*(const char *const *)pa, *(const char *const *)pb)
                   : k->type == NN_KEY_REAL ? (isnan(*(const double *)pa) ? isnan(*(const double *)pb)
                                                                          : *(const double *)pa == *(const double *)pb)
                                            : !memcmp(pa, pb, 8);
        if (!same) fprintf(stderr, "  key %s did not survive the round trip\n", k->name);
        CHECK(same);
    }
    wick_st_free(f);
    /* a checkpoint of 6 December 2026, 08:07, before the later keys */
    const char *old = "fuzz/corpus/resume/seed-good-sgd-mid";
    f = NULL;
    CHECK_OK(wick_st_read(old, &f));
    if (!f) return;
    CHECK_OK(nn_verify_checksum(f, old, 1));
    memset(&b, 0, sizeof b);
    CHECK_OK(nn_ckpt_meta_read(f, old, &b));
    CHECK(b.step == 5 && b.epoch == 1 && b.batch_in_epoch == 2 && b.samples == 72 && isinf(b.sched_best));
    CHECK(b.optimizer == NULL && b.graph_step == 0 && !strcmp(b.optimizer_steps, "5,5,5,5"));
    CHECK(b.precision == NULL);   /* before the key: float32, as every run was then */
    wick_st_free(f);
}

int main(void) {
    RUN(test_arch_parse);
    RUN(test_flops);
    RUN(test_init_statistics);
    RUN(test_learns_to_zero_loss);
    RUN(test_determinism_across_threads);
    RUN(test_team_size_does_not_change_results);
    RUN(test_resume_bit_identical);
    RUN(test_resume_refuses_unknown_precision);
    RUN(test_interrupt_and_resume);
    RUN(test_early_stopping_restores_best);
    RUN(test_early_stopping_restores_batchnorm_state);
    RUN(test_divergence_stops);
    RUN(test_model_files);
    RUN(test_alloc_failures);
    RUN(test_fast_path_matches_general);
    RUN(test_fast_path_sees_outside_writes);
    RUN(test_checkpoint_keys_round_trip);
    return chk_finish();
}
