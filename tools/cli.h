/* cli.h — shared by the CLI's command files. */
#ifndef WICK_CLI_H
#define WICK_CLI_H
#include "wick.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>

/* Exit codes (README.md, "Commands"). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_INTERRUPTED = 130 };

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_theory(int argc, char **argv);
int cmd_ensemble(int argc, char **argv);
int cmd_ntk(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_kernel(int argc, char **argv);
int cmd_gd(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_predict(int argc, char **argv);

/* A model file into a model (cmd_train.c): its layer spec, else an MLP with
 * the widths and activation the file records; arch and act (NULL: none) for
 * a file that does not say them, refused where they contradict it. */
wick_status cli_load_model(const char *model, const char *arch, const char *act, long batch, wick_mlp **mp,
                           wick_spec **specp);

/* A spec in the layer language, or MLP widths ("784-512-10") joined by act
 * (NULL: relu); the message names the problem (cmd_summary.c). */
wick_status cli_parse_spec(const char *arch, const char *act, wick_spec **out);

/* The CLI's errors: through include/wick.h alone, as any program using the
 * library (so that wick links against the installed libwick.so).
 * cli_error records a message and returns s; cli_last_error is that
 * message until cli_fail prints it, else the library's wick_last_error. */
wick_status cli_error(wick_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cli_last_error(void);

/* Prints "wick CMD: <last error>" on stderr and returns EXIT_FAIL (or
 * EXIT_DIVERGED for a diverged run). */
int cli_fail(const char *cmd, wick_status s);

/* Usage errors from getopt_long's loop: an unknown or incomplete flag (the
 * one before optind), or a stray argument at optind.  Both return EXIT_USAGE. */
int cli_bad_flag(const char *cmd, char **argv);
int cli_extra_argument(const char *cmd, char **argv);

/* C_b and C_W left NaN (not given on the command line) become the
 * activation's critical point, or (0, 1) where it has none.  EXIT_OK, or
 * cli_fail's code when the critical point cannot be computed. */
int cli_default_init(const char *cmd, wick_act act, double *cb, double *cw);

/* The JSON object every theory command's report starts with: the
 * activation and the initialisation (C_b, C_W) it was run at. */
json_t *cli_json_init(wick_act act, double cb, double cw);

/* A JSON number, or null where v is not finite (JSON has no NaN). */
json_t *cli_jnum(double v);
/* Writes o as one compact line to f, reals with `digits` significant digits
 * (9 for float figures, 17 for double); EXIT_OK, or EXIT_FAIL with a message. */
int cli_write_json(FILE *f, const char *cmd, const json_t *o, int digits);

/* "wick CMD", set by main before a command runs: the prefix of every usage
 * message ("wick train: --lr expects ..."). */
extern const char *cli_command;

/* Strict number parsing for flags; print a usage error and return 0 on junk. */
int cli_double(const char *flag, const char *s, double *out);
/* The same within [lo, hi] (open_lo, open_hi: that end excluded; hi INFINITY:
 * no upper end); the message states the range. */
int cli_double_in(const char *flag, const char *s, double lo, double hi, int open_lo, int open_hi, double *out);
int cli_int(const char *flag, const char *s, long lo, long hi, long *out);
#endif
