/* make_nn_seeds.c — writes the seed corpora of fuzz_model and fuzz_resume
 * (fuzz/corpus/model, fuzz/corpus/resume): small files made by wick itself
 * with the setup of fuzz_nn.h, plus a few refused ones.  Run from the
 * repository root after changing the file formats:
 *   make BUILD=build && gcc -Iinclude -Isrc -Ifuzz -fopenmp fuzz/make_nn_seeds.c build/libwick.a \
 *       $(the libraries of the Makefile's LIBS) -o /tmp/seeds && /tmp/seeds */
#include "fuzz_nn.h"
#include <stdio.h>

#define MODEL "fuzz/corpus/model/"
#define RESUME "fuzz/corpus/resume/"

static void must(wick_status s) {
    if (s != WICK_OK) { fprintf(stderr, "make_nn_seeds: %s\n", wick_last_error()); exit(1); }
}

/* A run of kind k stopped after `steps` steps (0: before the first) with a
 * checkpoint at path. */
static void checkpoint(const char *path, int kind, long steps) {
    fz_data();
    wick_mlp *m = fz_mlp();
    wick_train_config c = fz_config(kind);
    c.max_steps = steps;
    wick_trainer *t;
    must(wick_trainer_new(&t, m, &fz_train, &fz_val, &c));
    if (steps) must(wick_trainer_run(t));
    must(wick_trainer_save(t, path));
    wick_trainer_free(t);
    wick_mlp_free(m);
}

/* path's tensors and known metadata written again with key = value (NULL:
 * dropped) and a fresh checksum (sum 1), the old one (0) or none (-1). */
static void rewrite(const char *in, const char *out, const char *key, const char *value, int sum) {
    static const char *const keys[] = {
        "format", "wick_version", "arch", "act", "act_slope", "init", "loss", "seed", "shuffle", "batch",
        "train_samples", "step", "epoch", "batch_in_epoch", "epoch_loss_sum", "epoch_steps", "first_loss",
        "best_val", "best_epoch", "bad_epochs", "sched_lr", "sched_best", "sched_bad_epochs",
        "optimizer_steps", "seconds", "samples"};
    wick_st_file *f;
    must(wick_st_read(in, &f));
    int n = wick_st_count(f);
    wick_st_tensor ts[64];
    for (int i = 0; i < n && i < 64; i++) ts[i] = *wick_st_get(f, i);
    static nn_meta meta;
    meta.n = 0;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = key && !strcmp(keys[i], key) ? value : wick_st_meta(f, keys[i]);
        if (v) nn_meta_set(&meta, keys[i], v);
    }
    if (sum == 0 && wick_st_meta(f, "checksum")) nn_meta_set(&meta, "checksum", wick_st_meta(f, "checksum"));
    if (sum > 0) must(nn_write(out, ts, n, &meta));
    else {
        const char *kv[2 * NN_META_MAX];
        for (int i = 0; i < meta.n; i++) { kv[2 * i] = meta.key[i]; kv[2 * i + 1] = meta.val[i]; }
        must(wick_st_write(out, ts, n, kv, meta.n));
    }
    wick_st_free(f);
}

int main(void) {
    wick_set_threads(1);
    /* model files */
    wick_mlp *m = fz_mlp();
    must(wick_mlp_save(m, MODEL "seed-good-mlp"));
    wick_st_tensor ts[4];
    float *scratch;
    must(nn_param_tensors(m, ts, &scratch));
    must(wick_st_write(MODEL "seed-good-torch", ts, 4, NULL, 0));   /* no metadata, as PyTorch writes */
    rewrite(MODEL "seed-good-mlp", MODEL "seed-good-leaky", "act", "leaky_relu", 1);
    rewrite(MODEL "seed-good-mlp", MODEL "seed-bad-arch", "arch", "5-[4096]x3-3", 1);
    rewrite(MODEL "seed-good-mlp", MODEL "seed-bad-edited", "act", "tanh", 0);
    float *W = wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 1));
    W[4] = NAN;
    must(wick_mlp_save(m, MODEL "seed-bad-nan"));
    wick_mlp_free(m);
    /* checkpoints */
    checkpoint(RESUME "seed-good-sgd-start", 0, 0);
    checkpoint(RESUME "seed-good-sgd-mid", 0, 5);       /* epoch 2, batch 2, best weights */
    checkpoint(RESUME "seed-good-sgd-done", 0, 100);    /* all 6 epochs (or an early stop) */
    checkpoint(RESUME "seed-good-adam-mid", 1, 8);      /* plateau schedule, epoch 3 */
    rewrite(RESUME "seed-good-sgd-mid", RESUME "seed-bad-counter", "batch_in_epoch", "-5", 1);
    rewrite(RESUME "seed-good-sgd-mid", RESUME "seed-bad-epoch", "epoch", "-1000000", 1);
    rewrite(RESUME "seed-good-sgd-mid", RESUME "seed-bad-nosum", NULL, NULL, -1);
    rewrite(RESUME "seed-good-adam-mid", RESUME "seed-bad-lr", "sched_lr", "nan", 1);
    return 0;
}
