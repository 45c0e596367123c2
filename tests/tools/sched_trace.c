/* sched_trace.c — prints a wick learning-rate schedule, one epoch a line, so
 * that tests/test_optim_torch.py can compare it with torch's schedulers.
 *
 *   sched_trace constant|step|exp|linear|plateau [--lr0 X] [--epochs N]
 *       [--step-size N] [--gamma X] [--floor X] [--over N] [--patience N]
 *       [--factor X] [--threshold X] [--losses L0,L1,...]
 *
 * --epochs: how many lines; --over: the linear schedule's `epochs`.  For
 * plateau, line e is the rate epoch e trains at, after which the epoch's
 * validation loss (the e-th of --losses) is observed.  Rates with %.17g. */
#include <wick.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: sched_trace KIND [options]\n"); return 2; }
    wick_sched_kind kind;
    if (wick_sched_parse(argv[1], &kind)) { fprintf(stderr, "sched_trace: %s\n", wick_last_error()); return 2; }
    wick_sched_config c = wick_sched_defaults(kind);
    int epochs = 30;
    double losses[1000];
    int nloss = 0;
    for (int a = 2; a + 1 < argc; a += 2) {
        const char *o = argv[a], *v = argv[a + 1];
        if (!strcmp(o, "--lr0")) c.lr0 = atof(v);
        else if (!strcmp(o, "--epochs")) epochs = atoi(v);
        else if (!strcmp(o, "--step-size")) c.step_size = atoi(v);
        else if (!strcmp(o, "--gamma")) c.gamma = atof(v);
        else if (!strcmp(o, "--floor")) c.floor = atof(v);
        else if (!strcmp(o, "--over")) c.epochs = atoi(v);
        else if (!strcmp(o, "--patience")) c.patience = atoi(v);
        else if (!strcmp(o, "--factor")) c.factor = atof(v);
        else if (!strcmp(o, "--threshold")) c.threshold = atof(v);
        else if (!strcmp(o, "--losses")) {
            for (const char *s = v; *s && nloss < 1000;) {
                char *end;
                double x = strtod(s, &end);
                if (end == s) { fprintf(stderr, "sched_trace: bad loss list at '%s'\n", s); return 2; }
                losses[nloss++] = x;
                s = *end == ',' ? end + 1 : end;
            }
        } else { fprintf(stderr, "sched_trace: unknown option %s\n", o); return 2; }
    }
    wick_sched s;
    if (wick_sched_init(&s, &c)) { fprintf(stderr, "sched_trace: %s\n", wick_last_error()); return 1; }
    for (int e = 0; e < epochs; e++) {
        printf("%.17g\n", wick_sched_lr(&s, e));
        if (e < nloss) wick_sched_observe(&s, losses[e]);
    }
    return 0;
}
