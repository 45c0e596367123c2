/* cmd_theory.c — wick theory. */
#include "cli.h"
#include <stdio.h>
int cmd_theory(int argc, char **argv) { fprintf(stderr, "wick theory: not built yet\n"); return 1; }
