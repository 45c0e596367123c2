/* cli.h — shared by the CLI's command files. */
#ifndef WICK_CLI_H
#define WICK_CLI_H
#include "wick.h"
#include <jansson.h>
#include <math.h>
#include <stdint.h>
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
/* ---- option tables ------------------------------------------------------
 * One table a command: each row names a flag, its argument's type and range,
 * its default and its help text.  cli_parse builds getopt_long's option list
 * from it, parses and range-checks each value (a bad one: one line "wick CMD:
 * --flag expects ..., got '...'", EXIT_USAGE) and prints --help's flag list,
 * so that the three cannot drift apart. */
typedef enum {
    CLI_BOOL,     /* no argument: *(int *)dest = 1 */
    CLI_STR,      /* *(const char **)dest = the argument */
    CLI_INT,      /* *(long *)dest, in [lo, hi] */
    CLI_INT32,    /* *(int *)dest, in [lo, hi] */
    CLI_U64,      /* *(uint64_t *)dest, any non-negative integer */
    CLI_REAL,     /* *(double *)dest, finite, in [lo, hi] (open: CLI_OPEN_LO/HI) */
    CLI_INTS,     /* cli_ints *dest: a comma list, each in [lo, hi] */
    CLI_REALS,    /* cli_reals *dest: a comma list, each in [lo, hi] */
    CLI_CHOICE,   /* *(int *)dest = lo + the index of the argument in choices ("a|b") */
    CLI_FN        /* fn(row, argument): 1, or 0 having printed the usage error */
} cli_type;
enum { CLI_OPEN_LO = 1, CLI_OPEN_HI = 2 };
#define CLI_LIST_MAX 64
typedef struct { int n; long v[CLI_LIST_MAX]; } cli_ints;
typedef struct { int n; double v[CLI_LIST_MAX]; } cli_reals;

/* The depths every command takes (--depth, --depths): one range for all. */
#define CLI_DEPTH_MIN 1
#define CLI_DEPTH_MAX 100000
/* --threads, the same in every command */
#define CLI_THREADS_MAX 1024

typedef struct cli_opt cli_opt;
struct cli_opt {
    const char *name;     /* the flag without "--" */
    cli_type type;
    void *dest;
    double lo, hi;        /* the range (-INFINITY / INFINITY: none) */
    int open;             /* CLI_OPEN_LO | CLI_OPEN_HI: that end excluded */
    const char *def;      /* the default as one would type it, parsed before the
                             command line and shown in --help; NULL: dest's own
                             value, which the help text then describes;
                             "=text": shown only, dest's own value stands */
    const char *meta;     /* the argument's name in --help ("N", "X", "LIST") */
    const char *help;     /* '\n' continues on the next line */
    const char *choices;  /* CLI_CHOICE: "xent|mse"; CLI_INTS/REALS: the most items (NULL: 16) as text */
    int (*fn)(const cli_opt *o, const char *arg);
};

typedef struct {
    const char *name;     /* "kernel" */
    const char *usage;    /* printed above the flag list */
    const cli_opt *opts;  /* ends with a row whose name is NULL */
    const char *tail;     /* printed below it, or NULL */
    int col;              /* the column the help texts start at (0: 19) */
    int brackets;         /* defaults shown as "[X]" at column 65 rather than "(default X)" */
} cli_cmd;
/* A row whose name is "" is a heading in --help (its help text), no flag. */

/* Parses argv against c's table.  given (NULL, or one slot a row) gets each
 * given flag's argument ("" for a CLI_BOOL).  Returns CLI_GO to run, EXIT_OK
 * after --help, EXIT_USAGE after a usage error (printed).  Stray arguments
 * are refused too. */
#define CLI_GO (-1)
int cli_parse(const cli_cmd *c, int argc, char **argv, const char **given);
/* CLI_FN for --act: the name checked here (a usage error naming the
 * activations), stored as given (*(const char **)dest). */
int cli_act_arg(const cli_opt *o, const char *arg);
/* --help: usage, one line a flag (its help, then "(default ...)"), tail. */
void cli_usage(const cli_cmd *c, FILE *f);
/* The row of flag name in c's table, or -1. */
int cli_row(const cli_cmd *c, const char *name);

/* A comma list into ints or reals, each in [lo, hi], at most max; 1, or 0
 * having printed "wick CMD: --flag expects ...". */
int cli_parse_ints(const char *flag, const char *s, long lo, long hi, int max, cli_ints *out);
int cli_parse_reals(const char *flag, const char *s, double lo, double hi, int open, int max, cli_reals *out);

/* The fraction of the n rows of z (nout outputs each) whose largest output
 * is at y's label; one output: the sign decides between labels 0 and 1. */
double cli_accuracy(const double *z, const int32_t *y, size_t n, size_t nout);

/* A row-major r x c matrix as a JSON array of rows (non-finite: null). */
json_t *cli_json_matrix(const double *m, size_t r, size_t c);

/* The inputs of a CSV file (one a row), their Gram matrix |x_a . x_b|/n0
 * into *gram (n x n, malloc'd: free), and n; at most max rows (0: any).
 * EXIT_OK, or the exit code after printing the error. */
int cli_csv_gram(const char *cmd, const char *path, size_t max, double **gram, size_t *n);
/* The rows of a CSV file into *x (malloc'd: free), rows and cols. */
int cli_csv_rows(const char *cmd, const char *path, size_t max, double **x, size_t *rows, size_t *cols);

/* The measured parts of `wick gd --order1`, per width (tools/cmd_gd.c):
 * part = n x {frozen, se, beyond, se, eta^2, se, eta^3, se}: the table's
 * header and row, and the row's JSON keys n_frozen ... n_eta3_se. */
void gd_parts_header(void);
void gd_parts_print(size_t n, size_t pairs, const double part[8]);
void gd_parts_json(json_t *r, const double part[8]);
/* The theory's configuration of `wick gd --order1`'s several-input runs, or
 * EXIT_USAGE with the message printed when depth < 2 (the several-input
 * tensors live on hidden layers; flag names the option that asked for them). */
int gd_multi_theory(const char *flag, wick_act act, double cb, double cw, double lb, double lw, int depth,
                    wick_theory_config *tc);
/* --test-gram's g = (G00, G01, G11) as a 2 x 2 Gram in G0, and the theory's
 * configuration; EXIT_USAGE with the message printed when the Gram is not
 * positive definite or depth < 2. */
int gd_test_gram(const double g[3], wick_act act, double cb, double cw, double lb, double lw, int depth,
                 double G0[4], wick_theory_config *tc);
/* `wick gd --order1 --test-gram` (tools/cmd_gd2.c): steps -1 = fully trained. */
int gd_order1_test(wick_act act, double cb, double cw, double lb, double lw, int depth,
                   const cli_ints *widths, long samples, long seed, long steps, double eta,
                   double y, const double g[3], int json);
/* `wick gd --order1 --test-gram --variance` (tools/cmd_gdvar2.c): the variance
 * at the test input; steps -1 = fully trained. */
int gd_order1_test_var(wick_act act, double cb, double cw, double lb, double lw, int depth,
                       const cli_ints *widths, long samples, long seed, long steps, double eta,
                       double y, const double g[3], int json);
/* `wick gd --order1 --train-gram` (tools/cmd_gd3.c): two training inputs (g: 3
 * Gram entries) or two training inputs and a read one (6); steps -1 = fully trained. */
int gd_order1_multi(wick_act act, double cb, double cw, double lb, double lw, int depth,
                    const cli_ints *widths, long samples, long seed, long steps, double eta,
                    const double y[2], const cli_reals *g, int json);
#endif
