/* test_untrusted.c — model files and checkpoints from strangers (the bad-input
 * checklist's "Every file is untrusted, above the parsers too"): every
 * metadata counter of a checkpoint is checked before use, the checksum is
 * required for checkpoints and covers the metadata, non-finite weights and
 * inputs are refused, a file's architecture must match its own tensors
 * before anything is allocated, numbers are read and written in the C
 * locale, and names from a file reach a message escaped. */
#include "check.h"
#include "core/core.h"
#include "nn/model_io.h"
#include <locale.h>

/* ---- fixtures ----------------------------------------------------------- */

static wick_dataset *make_data(size_t n, int dim, int classes, uint64_t seed) {
    wick_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->dim = dim;
    d->classes = classes;
    d->x = malloc(n * dim * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    wick_fill_normal_f32(d->x, n * dim, 0, 1, seed, 50, 0);
    for (size_t i = 0; i < n; i++) d->y[i] = (int32_t)(wick_rand_uniform(seed, 51, i) * classes);
    return d;
}

static wick_mlp *make_mlp(const char *arch, wick_act act, int batch) {
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    if (wick_arch_parse(arch, &c) != WICK_OK) return NULL;
    c.act = act;
    c.init = WICK_INIT_BOOK;
    for (int l = 0; l < c.layers; l++) { c.cb[l] = 0.0; c.cw[l] = 2.0; }
    wick_mlp *m = NULL;
    CHECK_OK(wick_mlp_new(&m, &c, WICK_DT_F32, batch));
    if (m) wick_mlp_init(m, 3);
    return m;
}

static const wick_act RELU = {WICK_ACT_RELU, 0.01};

/* One setup for every checkpoint test: 120 training and 30 validation
 * samples, 6-16-3 ReLU, batch 16 (8 batches an epoch), SGD with momentum,
 * early stopping on (so a checkpoint carries the best weights). */
typedef struct {
    wick_dataset *train, *val;
    wick_mlp *m;
    wick_trainer *t;
} rig;

static wick_train_config rig_config(void) {
    wick_train_config c = wick_train_defaults();
    c.epochs = 4;
    c.batch = 16;
    c.seed = 5;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched.lr0 = 0.05;
    c.patience = 5;
    return c;
}

static void rig_new(rig *r, const wick_train_config *c) {
    r->train = make_data(120, 6, 3, 1);
    r->val = make_data(30, 6, 3, 2);
    r->m = make_mlp("6-16-3", RELU, 16);
    r->t = NULL;
    CHECK_OK(wick_trainer_new(&r->t, r->m, r->train, r->val, c));
}

static void rig_free(rig *r) {
    wick_trainer_free(r->t);
    wick_mlp_free(r->m);
    wick_dataset_free(r->train);
    wick_dataset_free(r->val);
}

/* A checkpoint at step 11 (epoch 2, batch 3 of 8), after one validation. */
static const char *make_checkpoint(void) {
    const char *p = chk_tmp("good.safetensors");
    rig r;
    wick_train_config c = rig_config();
    c.max_steps = 11;
    c.checkpoint = p;
    rig_new(&r, &c);
    if (r.t) CHECK_OK(wick_trainer_run(r.t));
    rig_free(&r);
    return p;
}

/* Copies `in` to `out` with metadata `key` set to `value` (NULL: removed).
 * fresh_sum: the writer's own checksum over the new content (so only the
 * metadata checks can refuse it); else the old checksum keys are copied
 * verbatim (so only the checksum can).  Returns out. */
static const char *rewrite(const char *in, const char *out, const char *key, const char *value,
                           int fresh_sum) {
    wick_st_file *f = NULL;
    CHECK_OK(wick_st_read(in, &f));
    if (!f) return out;
    int n = wick_st_count(f);
    wick_st_tensor *ts = calloc(n, sizeof *ts);
    for (int i = 0; i < n; i++) ts[i] = *wick_st_get(f, i);
    static nn_meta meta;
    meta.n = 0;
    int found = 0;
    for (int i = 0; i < nn_meta_nkeys; i++) {   /* every key wick writes (the checksum keys aside) */
        const char *name = nn_meta_keys[i].name, *v = wick_st_meta(f, name);
        if (!strcmp(name, key ? key : "")) { v = value; found = 1; }
        if (v) nn_meta_set(&meta, name, v);
    }
    if (key && !found && value) nn_meta_set(&meta, key, value);
    if (fresh_sum) {
        CHECK_OK(nn_write(out, ts, n, &meta));
    } else {
        const char *sums[] = {"crc32", "checksum"};
        for (int k = 0; k < 2; k++) {
            const char *v = wick_st_meta(f, sums[k]);
            if (v && strcmp(sums[k], key ? key : "")) nn_meta_set(&meta, sums[k], v);
        }
        const char *kv[2 * NN_META_MAX];
        for (int i = 0; i < meta.n; i++) { kv[2 * i] = meta.key[i]; kv[2 * i + 1] = meta.val[i]; }
        CHECK_OK(wick_st_write(out, ts, n, kv, meta.n));
    }
    free(ts);
    wick_st_free(f);
    return out;
}

/* Flips one bit of the byte `from_end` bytes before the end of the file. */
static void flip_byte(const char *path, long from_end) {
    FILE *f = fopen(path, "r+b");
    fseek(f, -from_end, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -from_end, SEEK_END);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

/* Resumes a fresh rig from path; returns the status (message in
 * wick_last_error), and runs two steps when it resumed. */
static wick_status try_resume(const char *path) {
    rig r;
    wick_train_config c = rig_config();
    c.max_steps = 13;
    rig_new(&r, &c);
    wick_status s = r.t ? wick_trainer_resume(r.t, path) : WICK_EINVAL;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", wick_last_error());
    if (s == WICK_OK) CHECK_OK(wick_trainer_run(r.t));
    rig_free(&r);
    wick_fail(s, "%s", msg);
    return s;
}

static int has_control_chars(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* ---- 1. every counter of a checkpoint is checked ------------------------ */

static void test_resume_counters_checked(void) {
    const char *good = make_checkpoint();
    const char *bad = chk_tmp("bad.safetensors");
    /* the rewritten file itself resumes: only the changed key is wrong */
    CHECK_OK(try_resume(rewrite(good, bad, NULL, NULL, 1)));
    static const struct { const char *key, *value; } cases[] = {
        {"batch_in_epoch", "-5"}, {"batch_in_epoch", "9"}, {"batch_in_epoch", "3x"},
        {"batch_in_epoch", "nan"}, {"batch_in_epoch", "3.0"}, {"batch_in_epoch", ""},
        {"batch_in_epoch", " 3"}, {"batch_in_epoch", "+3"},
        {"step", "-1"}, {"step", "99999999999999999999"}, {"step", "12"},
        {"epoch", "-1000000"}, {"epoch", "1e10"}, {"epoch", "10000000000"}, {"epoch", "2"},
        {"epoch_steps", "-1"}, {"epoch_steps", "7"},
        {"samples", "-1"}, {"samples", "nan"}, {"samples", "1e300"},
        {"best_epoch", "-3"}, {"best_epoch", "nan"}, {"best_epoch", "5"},
        {"bad_epochs", "-1"}, {"bad_epochs", "4"},
        {"first_loss", "nan"}, {"first_loss", "-1"},
        {"epoch_loss_sum", "inf"}, {"epoch_loss_sum", "-2"},
        {"best_val", "nan"},
        {"sched_lr", "0"}, {"sched_lr", "-0.1"}, {"sched_lr", "inf"}, {"sched_lr", "nan"},
        {"sched_lr", "0,05"}, {"sched_bad_epochs", "-1"}, {"sched_best", "nan"},
        {"optimizer_steps", "11,11"}, {"optimizer_steps", "x"}, {"optimizer_steps", "11,11,11,99999"},
        {"optimizer_steps", "11,11,11,11,11"}, {"optimizer_steps", "11,11,11,-1"},
        {"seed", "-1"}, {"seed", "1.5"}, {"seed", "18446744073709551616"},
        {"shuffle", "2"}, {"batch", "16.5"}, {"train_samples", "-120"},
        {"seconds", "-1"}, {"seconds", "inf"},
        {"act", "tanh"}, {"act_slope", "nan"}, {"loss", "mse"}, {"arch", "6-17-3"},
        {"format", "wick-model"},
    };
    for (size_t i = 0; i < WICK_ARRAY_LEN(cases); i++) {
        rewrite(good, bad, cases[i].key, cases[i].value, 1);
        wick_status s = try_resume(bad);
        const char *msg = wick_last_error();
        if (s == WICK_OK || !strstr(msg, cases[i].key)) {
            fprintf(stderr, "  %s = '%s': %s \"%s\"\n", cases[i].key, cases[i].value, wick_strerror(s), msg);
            CHECK(s != WICK_OK && strstr(msg, cases[i].key));
        }
    }
    /* a missing counter */
    rewrite(good, bad, "batch_in_epoch", NULL, 1);
    CHECK_FAILS(try_resume(bad), WICK_EFORMAT, "batch_in_epoch");
}

/* A refused resume leaves the trainer as it was: it then trains from its
 * own start, bit-identically to one that was never asked to resume. */
static void test_refused_resume_changes_nothing(void) {
    const char *good = make_checkpoint();
    const char *bad = rewrite(good, chk_tmp("late.safetensors"), "sched_lr", "-1", 1);
    float w[2][16 * 6];
    for (int k = 0; k < 2; k++) {
        rig r;
        wick_train_config c = rig_config();
        c.max_steps = 5;
        rig_new(&r, &c);
        if (!r.t) return;
        if (k) CHECK(wick_trainer_resume(r.t, bad) != WICK_OK);
        CHECK_OK(wick_trainer_run(r.t));
        CHECK(wick_trainer_steps(r.t) == 5);
        memcpy(w[k], wick_graph_value(wick_mlp_graph(r.m), wick_mlp_weight(r.m, 0)), sizeof w[k]);
        rig_free(&r);
    }
    CHECK(memcmp(w[0], w[1], sizeof w[0]) == 0);
}

/* ---- 2. the checksum: required for checkpoints, covers the metadata ---- */

static void test_checkpoint_checksum_required(void) {
    const char *good = make_checkpoint();
    const char *bad = chk_tmp("nosum.safetensors");
    /* no checksum at all: refused, saying how to get one */
    rewrite(good, bad, "crc32", NULL, 0);
    rewrite(bad, bad, "checksum", NULL, 0);
    CHECK_FAILS(try_resume(bad), WICK_EFORMAT, "checksum");
    CHECK(strstr(wick_last_error(), "save") != NULL);
    /* its weights alone still load (eval, --init-from), as a PyTorch file's do */
    wick_mlp *m = make_mlp("6-16-3", RELU, 4);
    CHECK_OK(wick_mlp_load_params(m, bad));
    wick_mlp_free(m);
    /* and with a flipped weight byte on top */
    flip_byte(bad, 7);
    CHECK(try_resume(bad) != WICK_OK);
}

static void test_checksum_covers_metadata(void) {
    const char *good = make_checkpoint();
    const char *bad = chk_tmp("meta.safetensors");
    /* plausible values, the old checksum kept: only the checksum can tell */
    static const struct { const char *key, *value; } cases[] = {
        {"sched_lr", "0.5"}, {"step", "10"}, {"act", "tanh"}, {"seed", "6"}, {"best_val", "0.1"},
    };
    for (size_t i = 0; i < WICK_ARRAY_LEN(cases); i++) {
        rewrite(good, bad, cases[i].key, cases[i].value, 0);
        CHECK_FAILS(try_resume(bad), WICK_EFORMAT, "checksum mismatch");
    }
    /* a model file's metadata too */
    wick_mlp *m = make_mlp("6-5-3", (wick_act){WICK_ACT_LEAKY_RELU, 0.1}, 4);
    const char *p = chk_tmp("model.safetensors"), *q = chk_tmp("model-bad.safetensors");
    CHECK_OK(wick_mlp_save(m, p));
    rewrite(p, q, "act_slope", "0.2", 0);
    wick_mlp_config c;
    int has_act;
    CHECK_FAILS(wick_mlp_config_from_file(q, &c, &has_act), WICK_EFORMAT, "checksum mismatch");
    CHECK_FAILS(wick_mlp_load_params(m, q), WICK_EFORMAT, "checksum mismatch");
    /* a file without any metadata (as PyTorch writes it) still loads */
    float w0[30] = {0}, b0[5] = {0}, w1[15] = {0}, b1[3] = {0};
    wick_st_tensor ts[4] = {
        {"0.weight", WICK_DT_F32, 2, {5, 6}, w0}, {"0.bias", WICK_DT_F32, 1, {5}, b0},
        {"2.weight", WICK_DT_F32, 2, {3, 5}, w1}, {"2.bias", WICK_DT_F32, 1, {3}, b1}};
    const char *torch = chk_tmp("torch.safetensors");
    CHECK_OK(wick_st_write(torch, ts, 4, NULL, 0));
    CHECK_OK(wick_mlp_config_from_file(torch, &c, &has_act));
    CHECK_OK(wick_mlp_load_params(m, torch));
    wick_mlp_free(m);
}

/* ---- 3. non-finite weights and inputs ----------------------------------- */

static void test_nonfinite_weights_refused(void) {
    wick_mlp *m = make_mlp("6-5-3", RELU, 4);
    float *W = wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 1));
    W[7] = NAN;
    const char *p = chk_tmp("nan.safetensors");
    CHECK_OK(wick_mlp_save(m, p));
    wick_mlp *b = make_mlp("6-5-3", RELU, 4);
    CHECK_FAILS(wick_mlp_load_params(b, p), WICK_EFORMAT, "'2.weight'");
    CHECK(strstr(wick_last_error(), "index 7") != NULL);
    W[7] = INFINITY;
    CHECK_OK(wick_mlp_save(m, p));
    CHECK_FAILS(wick_mlp_load_params(b, p), WICK_EFORMAT, "not finite");
    wick_mlp_free(m);
    wick_mlp_free(b);

    /* in a checkpoint: the weights, the optimiser's state, the best weights */
    const char *good = make_checkpoint();
    static const char *const names[] = {"0.bias", "optimizer.2.weight.momentum", "optimizer.best.0.weight"};
    for (int k = 0; k < 3; k++) {
        wick_st_file *f = NULL;
        CHECK_OK(wick_st_read(good, &f));
        if (!f) return;
        int n = wick_st_count(f);
        wick_st_tensor *ts = calloc(n, sizeof *ts);
        float *copy[64] = {0};
        for (int i = 0; i < n && i < 64; i++) {
            ts[i] = *wick_st_get(f, i);
            if (!strcmp(ts[i].name, names[k])) {
                size_t e = 1;
                for (int d = 0; d < ts[i].ndim; d++) e *= ts[i].shape[d];
                copy[i] = malloc(e * sizeof(float));
                memcpy(copy[i], ts[i].data, e * sizeof(float));
                copy[i][e - 1] = NAN;
                ts[i].data = copy[i];
            }
        }
        nn_meta meta = {0};
        for (int i = 0; i < nn_meta_nkeys; i++)
            if (wick_st_meta(f, nn_meta_keys[i].name))
                nn_meta_set(&meta, nn_meta_keys[i].name, wick_st_meta(f, nn_meta_keys[i].name));
        const char *bad = chk_tmp("nan-ckpt.safetensors");
        CHECK_OK(nn_write(bad, ts, n, &meta));
        wick_status s = try_resume(bad);
        if (s == WICK_OK || !strstr(wick_last_error(), names[k]) || !strstr(wick_last_error(), "not finite")) {
            FAIL("NaN in %s: %s \"%s\"", names[k], wick_strerror(s), wick_last_error());
        }
        for (int i = 0; i < 64; i++) free(copy[i]);
        free(ts);
        wick_st_free(f);
    }
}

static void test_nonfinite_data_refused(void) {
    wick_dataset *d = make_data(64, 6, 3, 4);
    d->x[3 * 6 + 2] = NAN;
    wick_mlp *m = make_mlp("6-8-3", RELU, 16);
    wick_train_config c = rig_config();
    c.patience = 0;
    wick_trainer *t = NULL;
    CHECK_FAILS(wick_trainer_new(&t, m, d, NULL, &c), WICK_EINVAL, "sample 3");
    CHECK(strstr(wick_last_error(), "feature 2") != NULL);
    wick_dataset *ok = make_data(64, 6, 3, 5);
    CHECK_FAILS(wick_trainer_new(&t, m, ok, d, &c), WICK_EINVAL, "validation");
    wick_metrics *mt = NULL;
    d->x[3 * 6 + 2] = -INFINITY;
    CHECK_FAILS(wick_evaluate(m, d, &mt, NULL), WICK_EINVAL, "sample 3");
    wick_mlp_free(m);
    wick_dataset_free(d);
    wick_dataset_free(ok);
}

/* A weight that turns NaN while the loss stays finite (ReLU maps NaN to 0
 * downstream): the run stops as diverged, naming the tensor, with finite
 * weights, and the checkpoint on disk is never overwritten with NaNs. */
typedef struct { wick_mlp *m; long at; } poison;

static void poison_step(void *user, long step, int epoch, int b, int nb, double loss) {
    poison *p = user;
    if (step != p->at) return;
    float *W = wick_graph_value(wick_mlp_graph(p->m), wick_mlp_weight(p->m, 0));
    W[5] = NAN;
}

static void test_nonfinite_weights_stop_the_run(void) {
    for (int general = 0; general < 2; general++) {
        rig r;
        wick_train_config c = rig_config();
        c.general_executor = general;
        const char *ck = chk_tmp("poison.safetensors");
        unlink(ck);
        c.checkpoint = ck;
        poison p = {NULL, 12};
        c.on_step = poison_step;
        c.user = &p;
        rig_new(&r, &c);
        if (!r.t) return;
        p.m = r.m;
        CHECK_FAILS(wick_trainer_run(r.t), WICK_EDIVERGED, "'0.weight'");
        int finite = 1;
        for (int l = 0; l < 2; l++) {
            const float *W = wick_graph_value(wick_mlp_graph(r.m), wick_mlp_weight(r.m, l));
            for (int i = 0; i < 16 * 6 && (l == 0 || i < 3 * 16); i++) finite &= isfinite(W[i]) != 0;
        }
        CHECK(finite);
        /* the checkpoint of epoch 1 is intact and resumes */
        CHECK_OK(try_resume(ck));
        rig_free(&r);
    }
}

/* ---- 4. a file's architecture must match its own tensors ---------------- */

static void test_arch_checked_before_allocation(void) {
    wick_mlp *m = make_mlp("6-5-3", RELU, 4);
    const char *p = chk_tmp("small.safetensors"), *q = chk_tmp("huge.safetensors");
    CHECK_OK(wick_mlp_save(m, p));
    wick_mlp_free(m);
    /* a 1 KB file claiming 4 layers of 16384 (3 GiB of weights) */
    rewrite(p, q, "arch", "6-[16384]x4-3", 1);
    wick_mlp_config c;
    int has_act;
    CHECK_FAILS(wick_mlp_config_from_file(q, &c, &has_act), WICK_ESHAPE, "0.weight");
    CHECK(strstr(wick_last_error(), "6-16384-16384-16384-16384-3") != NULL);
    /* more layers than the file has, and fewer */
    rewrite(p, q, "arch", "6-5-3-3", 1);
    CHECK_FAILS(wick_mlp_config_from_file(q, &c, &has_act), WICK_ESHAPE, "4.weight");
    rewrite(p, q, "arch", "6-5", 1);
    CHECK(wick_mlp_config_from_file(q, &c, &has_act) != WICK_OK);
    rewrite(p, q, "loss", "hinge", 1);
    CHECK_FAILS(wick_mlp_config_from_file(q, &c, &has_act), WICK_EFORMAT, "loss");
    rewrite(p, q, "act_slope", "0.1x", 1);
    CHECK_FAILS(wick_mlp_config_from_file(q, &c, &has_act), WICK_EFORMAT, "act_slope");
    CHECK_OK(wick_mlp_config_from_file(p, &c, &has_act));
}

/* ---- 5. numbers in the C locale whatever the caller's ------------------- */

static void test_locale_independent(void) {
    char cmd[1200];
    const char *dir = chk_tmp("locales");
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 -c '%s/de_DE.UTF-8' >/dev/null 2>&1", dir);
    if (system(cmd) != 0 && access(chk_tmp("locales/de_DE.UTF-8"), F_OK) != 0)
        SKIP("localedef could not build de_DE.UTF-8");
    setenv("LOCPATH", dir, 1);
    if (!setlocale(LC_ALL, "de_DE.UTF-8")) SKIP("de_DE.UTF-8 not loadable");
    char buf[32];
    snprintf(buf, sizeof buf, "%.1f", 1.5);
    int german = strcmp(buf, "1,5") == 0;

    wick_act a = {WICK_ACT_RELU, 0};
    CHECK_OK(wick_act_parse("leaky_relu:0.2", &a));
    CHECK(a.kind == WICK_ACT_LEAKY_RELU && a.slope == 0.2);
    /* a model file: the slope written with a point and read back */
    wick_mlp *m = make_mlp("6-5-3", (wick_act){WICK_ACT_LEAKY_RELU, 0.25}, 4);
    const char *p = chk_tmp("de.safetensors");
    CHECK_OK(wick_mlp_save(m, p));
    wick_st_file *f = NULL;
    CHECK_OK(wick_st_read(p, &f));
    if (f) CHECK(wick_st_meta(f, "act_slope") && !strcmp(wick_st_meta(f, "act_slope"), "0.25"));
    wick_st_free(f);
    wick_mlp_config c;
    int has_act;
    CHECK_OK(wick_mlp_config_from_file(p, &c, &has_act));
    CHECK(has_act && c.act.slope == 0.25);
    wick_mlp_free(m);
    /* a checkpoint written and resumed under de_DE */
    const char *ck = make_checkpoint();
    CHECK_OK(wick_st_read(ck, &f));
    if (f) {
        const char *lr = wick_st_meta(f, "sched_lr");
        CHECK(lr && strchr(lr, '.') && !strchr(lr, ','));
    }
    wick_st_free(f);
    CHECK_OK(try_resume(ck));
    setlocale(LC_ALL, "C");
    /* and what de_DE wrote, C reads */
    CHECK_OK(try_resume(ck));
    unsetenv("LOCPATH");
    if (!german) SKIP("de_DE.UTF-8 loaded but does not use a decimal comma");
}

/* ---- names from a file reach messages escaped --------------------------- */

static void test_names_escaped(void) {
    float w0[30] = {0}, b0[5] = {0}, w1[15] = {0}, b1[3] = {0}, extra[2] = {0};
    wick_st_tensor ts[5] = {
        {"0.weight", WICK_DT_F32, 2, {5, 6}, w0}, {"0.bias", WICK_DT_F32, 1, {5}, b0},
        {"2.weight", WICK_DT_F32, 2, {3, 5}, w1}, {"2.bias", WICK_DT_F32, 1, {3}, b1},
        {"x\033[2J\033]0;pwned\007\r", WICK_DT_F32, 1, {2}, extra}};
    const char *q = chk_tmp("ctrl.safetensors");
    CHECK_OK(wick_st_write(q, ts, 5, NULL, 0));
    wick_mlp *m = make_mlp("6-5-3", RELU, 4);
    CHECK_FAILS(wick_mlp_load_params(m, q), WICK_EFORMAT, "is not part of the model");
    CHECK(!has_control_chars(wick_last_error()));
    /* metadata values too */
    const char *kv[] = {"format", "wick-\033[31mcheckpoint", "arch", "6-5\r-3", "act", "re\033lu"};
    CHECK_OK(wick_st_write(q, ts, 4, kv, 3));
    wick_mlp_config c;
    int has_act;
    CHECK(wick_mlp_config_from_file(q, &c, &has_act) != WICK_OK);
    CHECK(!has_control_chars(wick_last_error()));
    CHECK(try_resume(q) != WICK_OK);
    CHECK(!has_control_chars(wick_last_error()));
    wick_mlp_free(m);
}

int main(void) {
    wick_set_threads(1);
    RUN(test_resume_counters_checked);
    RUN(test_refused_resume_changes_nothing);
    RUN(test_checkpoint_checksum_required);
    RUN(test_checksum_covers_metadata);
    RUN(test_nonfinite_weights_refused);
    RUN(test_nonfinite_data_refused);
    RUN(test_nonfinite_weights_stop_the_run);
    RUN(test_arch_checked_before_allocation);
    RUN(test_locale_independent);
    RUN(test_names_escaped);
    return chk_finish();
}
