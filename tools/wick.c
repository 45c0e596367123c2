/* wick.c — the command-line front end: parses the subcommand and hands over
 * to tools/cmd_<name>.c.  Only the CLI prints and exits. */
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"train", cmd_train, "train an MLP or a conv net (default: Fashion-MNIST, critical init)"},
    {"eval", cmd_eval, "evaluate a model or checkpoint on a test set"},
    {"theory", cmd_theory, "predict a network at infinite width and order 1/n"},
    {"ensemble", cmd_ensemble, "measure M finite-width networks at initialisation beside the theory"},
    {"ntk", cmd_ntk, "the empirical NTK of M networks against the infinite-width Theta"},
    {"sweep", cmd_sweep, "the aspect-ratio law: finite-width deviation against L/n, fitted"},
    {"kernel", cmd_kernel, "NNGP and NTK predictions on a data set (default Fashion-MNIST)"},
    {"predict", cmd_predict, "the class and probabilities of unlabelled samples (CSV rows, IDX images)"},
    {"summary", cmd_summary, "a network's layers: output shapes, parameters, FLOPs, receptive fields"},
    {"gd", cmd_gd, "train finite-width ensembles by gradient descent against the frozen-NTK prediction"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: wick COMMAND [FLAGS]   (wick COMMAND --help lists a command's flags)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\n  --version  print the version and the linked libraries\n");
}

/* Wherever a thread of an OpenMP region waits (the general executor, the
 * conv nets' oneDNN, the BLAS), libgomp first spins GOMP_SPINCOUNT pauses,
 * 300,000 by default (15 ms on a Zen 3): beside a busy neighbour that spins
 * away the core its descheduled partner needs, while sleeping at once
 * (OMP_WAIT_POLICY=passive) pays a wake-up at each of the conv net's ~30
 * regions a step.  1,000 pauses (~50 us) sleep about as soon as passive
 * waits beside a neighbour (bench/cnn_wait.sh, the conv net on 2 threads:
 * 2,037-2,113 samples/s, passive 1,997-2,070, libgomp's spin 1,339-1,343)
 * and cover the short gaps between regions on a quiet machine, where
 * spinning beat passive waits in two runs of three (4,121 vs 3,546; the
 * Zen 3's run-to-run spread, 28-39 ms a step, hides the rest).
 * libgomp reads its environment before main, so the CLI sets the count and
 * runs itself again, once (the variable is then set: no loop), unless the
 * user chose a policy or a spin count.  If the exec fails the run goes on as
 * it was. */
static void bounded_waits(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("GOMP_SPINCOUNT", "1000", 1);
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT");
}

int main(int argc, char **argv) {
    bounded_waits(argv);
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) {
        printf("wick %s (%s)\n", wick_version(), wick_library_versions());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        static char prefix[64];
        snprintf(prefix, sizeof prefix, "wick %s", commands[i].name);
        cli_command = prefix;
        /* -h and --version mean the same on every command (before "--",
           which ends the flags) */
        for (int a = 2; a < argc && strcmp(argv[a], "--"); a++) {
            if (!strcmp(argv[a], "--version")) {
                printf("wick %s (%s)\n", wick_version(), wick_library_versions());
                return 0;
            }
            static char help[] = "--help";
            if (!strcmp(argv[a], "-h")) argv[a] = help;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "wick: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
