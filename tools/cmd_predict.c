/* cmd_predict.c — `wick predict`: the class and the probabilities of each
 * unlabelled sample (CSV rows or IDX images) from a model file alone.
 * Parse, run (the model's outputs in batches), report (CSV or JSON). */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the command line asks for. */
typedef struct {
    const char *model, *csv, *images, *arch, *act, *out;
    long label_col, batch, threads;
    int format;   /* -1: by --out's name; 0 csv; 1 json */
} predict_args;

static predict_args A;   /* the table's destinations */

static const cli_opt predict_opts[] = {
    {"model", CLI_STR, &A.model, 0, 0, 0, NULL, "FILE", "model file (safetensors, wick's or a PyTorch state_dict; required)", NULL, NULL},
    {"csv", CLI_STR, &A.csv, 0, 0, 0, NULL, "FILE", "one sample a row, the features only (a header row is skipped)", NULL, NULL},
    {"label-col", CLI_INT, &A.label_col, -1, 1 << 20, 0, "=none", "N", "a column of --csv to leave out (a labelled test set: 0 first, -1 last)", NULL, NULL},
    {"images", CLI_STR, &A.images, 0, 0, 0, NULL, "FILE",
     "IDX images (u8, e.g. t10k-images-idx3-ubyte.gz), scaled to [0, 1]\n"
     "as wick train scales them", NULL, NULL},
    {"arch", CLI_STR, &A.arch, 0, 0, 0, NULL, "SPEC", "the architecture, where the file does not say it (wick eval --help)", NULL, NULL},
    {"act", CLI_FN, &A.act, 0, 0, 0, NULL, "NAME", "the activation, where the file does not say it", NULL, cli_act_arg},
    {"out", CLI_STR, &A.out, 0, 0, 0, "=standard output", "FILE", "where the predictions go", NULL, NULL},
    {"format", CLI_CHOICE, &A.format, 0, 0, 0, "=csv; json for --out *.json", "KIND",
     "csv (a header, then class,p0,p1,... a row) | json", "csv|json", NULL},
    {"batch", CLI_INT, &A.batch, 1, 1 << 20, 0, "256", "N", "samples a forward pass", NULL, NULL},
    {"threads", CLI_INT, &A.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads", NULL, NULL},
    {0}};

static const cli_cmd predict_cmd = {
    "predict",
    "usage: wick predict --model FILE (--csv FILE | --images FILE) [FLAGS]\n"
    "The predicted class and the class probabilities (softmax of the outputs) of each sample,\n"
    "from the model file alone: what the model was trained on needs no flags.\n\n",
    predict_opts,
    "  (-h is --help; --version prints the version)\n"
    "A model trained with loss mse gives its outputs, not probabilities (the columns are y0, y1, ...).\n",
    21, 1};

/* The command line into A; CLI_GO, or the exit code. */
static int predict_parse(int argc, char **argv) {
    A = (predict_args){.format = -1};
    const char *given[sizeof predict_opts / sizeof predict_opts[0]] = {0};
    int rc = cli_parse(&predict_cmd, argc, argv, given);
    if (rc != CLI_GO) return rc;
    if (!A.model || (!A.csv == !A.images)) {
        fprintf(stderr, "wick predict: %s (see wick predict --help)\n",
                !A.model ? "--model FILE is required" : "give one of --csv FILE and --images FILE");
        return EXIT_USAGE;
    }
    if (A.images && given[cli_row(&predict_cmd, "label-col")]) {
        fprintf(stderr, "wick predict: --label-col applies to --csv only\n");
        return EXIT_USAGE;
    }
    /* read_samples' column: -1 none, -2 the last */
    A.label_col = !given[cli_row(&predict_cmd, "label-col")] ? -1 : A.label_col < 0 ? -2 : A.label_col;
    return CLI_GO;
}

/* The samples as float rows: a CSV's columns (one left out when skip >= 0)
 * or an IDX file's u8 images over 255. */
static int read_samples(const char *csv, long skip, const char *images, float **x, size_t *n, size_t *dim) {
    if (csv) {
        double *v = NULL;
        size_t rows, cols;
        wick_status s = wick_csv_read(csv, 0, &v, &rows, &cols);
        if (s) return cli_fail("predict", s);
        long k = skip < 0 ? -1 : skip;
        if (skip == -2) k = (long)cols - 1;   /* --label-col -1: the last */
        if (k >= (long)cols) {
            fprintf(stderr, "wick predict: --label-col %ld, but %s has %zu columns\n", skip, csv, cols);
            wick_free(v);
            return EXIT_USAGE;
        }
        *dim = cols - (k >= 0);
        *n = rows;
        *x = malloc((rows * *dim > 0 ? rows * *dim : 1) * sizeof **x);
        if (!*x) { wick_free(v); fprintf(stderr, "wick predict: out of memory\n"); return EXIT_FAIL; }
        for (size_t i = 0, o = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                if ((long)j != k) (*x)[o++] = (float)v[i * cols + j];
        wick_free(v);
        return EXIT_OK;
    }
    wick_idx *im = NULL;
    wick_status s = wick_idx_read(images, &im);
    if (s) return cli_fail("predict", s);
    if (im->type != 0x08 || im->ndim < 2) {
        fprintf(stderr, "wick predict: %s: expected u8 images (IDX type 0x08, 2 or more dimensions)\n", images);
        wick_idx_free(im);
        return EXIT_FAIL;
    }
    *n = im->dims[0];
    *dim = *n ? im->count / *n : 0;
    *x = malloc((im->count ? im->count : 1) * sizeof **x);
    if (!*x) { wick_idx_free(im); fprintf(stderr, "wick predict: out of memory\n"); return EXIT_FAIL; }
    const uint8_t *p = im->data;
    for (size_t i = 0; i < im->count; i++) (*x)[i] = p[i] / 255.0f;   /* as wick_dataset_load_idx scales */
    wick_idx_free(im);
    return EXIT_OK;
}

/* The n rows of y (k values each: probabilities, or an MSE model's outputs)
 * as CSV or JSON, to --out or standard output. */
static int predict_report(const float *y, size_t n, int k, int probs, int json) {
    const char *out = A.out;
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) { fprintf(stderr, "wick predict: %s: %s\n", out, strerror(errno)); return EXIT_FAIL; }
    int rc = EXIT_OK;
    if (json) {
        json_t *root = json_pack("{s:s, s:s, s:i, s:s, s:o}", "command", "predict", "model", A.model, "classes", k,
                                 "values", probs ? "probabilities" : "outputs", "predictions", json_array());
        json_t *arr = json_object_get(root, "predictions");
        for (size_t i = 0; i < n; i++) {
            json_t *p = json_array();
            int b = 0;
            for (int j = 0; j < k; j++) {
                json_array_append_new(p, json_real(y[i * k + j]));
                if (y[i * k + j] > y[i * k + b]) b = j;
            }
            json_array_append_new(arr, json_pack("{s:i, s:o}", "class", b, probs ? "probabilities" : "outputs", p));
        }
        rc = cli_write_json(f, "predict", root, 6);
        json_decref(root);
    } else {
        fprintf(f, "class");
        for (int j = 0; j < k; j++) fprintf(f, ",%s%d", probs ? "p" : "y", j);
        fprintf(f, "\n");
        for (size_t i = 0; i < n; i++) {
            int b = 0;
            for (int j = 1; j < k; j++) b = y[i * k + j] > y[i * k + b] ? j : b;
            fprintf(f, "%d", b);
            for (int j = 0; j < k; j++) fprintf(f, ",%.6g", y[i * k + j]);
            fprintf(f, "\n");
        }
    }
    if (f != stdout ? fclose(f) != 0 : fflush(f) != 0) {
        fprintf(stderr, "wick predict: %s: writing failed: %s\n", out ? out : "standard output", strerror(errno));
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK && out) fprintf(stderr, "wick predict: %zu predictions written to %s\n", n, out);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    int prc = predict_parse(argc, argv);
    if (prc != CLI_GO) return prc;
    const char *model = A.model, *csv = A.csv, *images = A.images, *arch = A.arch, *act = A.act, *out = A.out;
    long skip = A.label_col, batch = A.batch, threads = A.threads;
    size_t no = out ? strlen(out) : 0;
    int json = A.format >= 0 ? A.format : no > 5 && !strcmp(out + no - 5, ".json");
    wick_set_threads((int)threads);

    wick_mlp *m = NULL;
    wick_spec *spec = NULL;
    float *x = NULL, *y = NULL;
    size_t n = 0, dim = 0;
    int rc = EXIT_OK;
    wick_status s = cli_load_model(model, arch, act, batch, &m, &spec);
    if (s) return cli_fail("predict", s);
    if ((rc = read_samples(csv, skip, images, &x, &n, &dim)) != EXIT_OK) goto done;
    int in = wick_mlp_inputs(m), k = wick_mlp_outputs(m);
    if (dim != (size_t)in) {
        fprintf(stderr, "wick predict: %s has %zu features a sample, %s takes %d\n", csv ? csv : images, dim, model, in);
        rc = EXIT_FAIL;
        goto done;
    }
    if (!(y = malloc((n * k > 0 ? n * k : 1) * sizeof *y))) { fprintf(stderr, "wick predict: out of memory\n"); rc = EXIT_FAIL; goto done; }
    if ((s = wick_mlp_predict(m, x, n, y))) { rc = cli_fail("predict", s); goto done; }
    int probs = wick_mlp_config_of(m)->loss != WICK_LOSS_MSE;
    if (probs)   /* softmax of each row, in place */
        for (size_t i = 0; i < n; i++) {
            float *z = y + i * k, mx = z[0];
            double sum = 0;
            for (int j = 1; j < k; j++) mx = z[j] > mx ? z[j] : mx;
            for (int j = 0; j < k; j++) sum += exp((double)z[j] - mx);
            for (int j = 0; j < k; j++) z[j] = (float)(exp((double)z[j] - mx) / sum);
        }
    rc = predict_report(y, n, k, probs, json);
done:
    free(x);
    free(y);
    wick_mlp_free(m);
    wick_spec_free(spec);
    return rc;
}
