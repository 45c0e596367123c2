/* mlp.c — train a small MLP on Fashion-MNIST through the public API, in the
 * spirit of kann's examples: load, build, train, evaluate, save.
 *
 *   build/examples/mlp [epochs]      (needs dataset-fashion-mnist) */
#include <wick.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR "/usr/share/datasets/fashion-mnist"

static void on_epoch(void *user, const wick_epoch_report *r) {
    printf("epoch %d: train loss %.4f, val loss %.4f, val acc %.4f (%.0f samples/s)\n", r->epoch,
           r->train_loss, r->val_loss, r->val_acc, r->samples_per_s);
}

static int die(const char *what) {
    fprintf(stderr, "mlp: %s: %s\n", what, wick_last_error());
    return 1;
}

int main(int argc, char **argv) {
    wick_dataset *all, *train, *val, *test;
    if (wick_dataset_load_idx_dir(DIR, "train", 10, &all) || wick_dataset_load_idx_dir(DIR, "t10k", 10, &test))
        return die("loading Fashion-MNIST");
    if (wick_dataset_split(all, 5000, 1, &train, &val)) return die("split");

    /* 784-256-10 tanh at its critical initialisation (C_b = 0, C_W = 1) */
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    wick_arch_parse("784-256-10", &mc);
    wick_act_parse("tanh", &mc.act);
    mc.init = WICK_INIT_CRITICAL;
    wick_mlp *m;
    if (wick_mlp_new(&m, &mc, WICK_DT_F32, 128)) return die("model");
    wick_mlp_init(m, 1);

    wick_train_config tc = wick_train_defaults();
    tc.epochs = argc > 1 ? atoi(argv[1]) : 3;
    tc.opt.momentum = 0.9;
    tc.sched.lr0 = 0.05;
    tc.on_epoch = on_epoch;
    wick_trainer *t;
    if (wick_trainer_new(&t, m, train, val, &tc) || wick_trainer_run(t)) return die("training");

    wick_metrics *mt;
    if (wick_evaluate(m, test, &mt, NULL)) return die("evaluation");
    printf("test accuracy %.4f\n", mt->accuracy);
    if (wick_mlp_save(m, "/tmp/wick-example-mlp.safetensors")) return die("save");

    wick_metrics_free(mt);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(all);
    wick_dataset_free(train);
    wick_dataset_free(val);
    wick_dataset_free(test);
    return 0;
}
