/* cmd_train.c — wick train and wick eval. */
#include "cli.h"
#include <stdio.h>
int cmd_train(int argc, char **argv) { fprintf(stderr, "wick train: not built yet\n"); return 1; }
int cmd_eval(int argc, char **argv) { fprintf(stderr, "wick eval: not built yet\n"); return 1; }
