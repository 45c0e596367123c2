/* cmd_predict.c — `wick predict`: the class and the probabilities of each
 * unlabelled sample (CSV rows or IDX images) from a model file alone.
 * Parse, run (the model's outputs in batches), report (CSV or JSON). */
#include "cli.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_predict(FILE *f) {
    fprintf(f,
"usage: wick predict --model FILE (--csv FILE | --images FILE) [FLAGS]\n"
"The predicted class and the class probabilities (softmax of the outputs) of each sample,\n"
"from the model file alone: what the model was trained on needs no flags.\n\n"
"  --model FILE       model file (safetensors, wick's or a PyTorch state_dict; required)\n"
"  --csv FILE         one sample a row, the features only (a header row is skipped)\n"
"  --label-col N      a column of --csv to leave out (a labelled test set: 0 first, -1 last)  [none]\n"
"  --images FILE      IDX images (u8, e.g. t10k-images-idx3-ubyte.gz), scaled to [0, 1]\n"
"                     as wick train scales them\n"
"  --arch SPEC        the architecture, where the file does not say it (wick eval --help)\n"
"  --act NAME         the activation, where the file does not say it\n"
"  --out FILE         where the predictions go                     [standard output]\n"
"  --format KIND      csv (a header, then class,p0,p1,... a row) | json  [csv; json for --out *.json]\n"
"  --batch N          samples a forward pass                       [256]\n"
"  --threads N        threads\n"
"  -h, --help         this text;  --version  the version\n"
"A model trained with loss mse gives its outputs, not probabilities (the columns are y0, y1, ...).\n");
}

enum { P_MODEL = 256, P_CSV, P_IMAGES, P_LABEL_COL, P_ARCH, P_ACT, P_OUT, P_FORMAT, P_BATCH, P_THREADS, P_HELP };

static const struct option predict_opts[] = {
    {"model", 1, 0, P_MODEL}, {"csv", 1, 0, P_CSV}, {"images", 1, 0, P_IMAGES}, {"label-col", 1, 0, P_LABEL_COL},
    {"arch", 1, 0, P_ARCH}, {"act", 1, 0, P_ACT}, {"out", 1, 0, P_OUT}, {"format", 1, 0, P_FORMAT},
    {"batch", 1, 0, P_BATCH}, {"threads", 1, 0, P_THREADS}, {"help", 0, 0, P_HELP}, {0, 0, 0, 0}};

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

int cmd_predict(int argc, char **argv) {
    const char *model = NULL, *csv = NULL, *images = NULL, *arch = NULL, *act = NULL, *out = NULL, *format = NULL;
    long skip = -1, batch = 256, threads = 0, v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", predict_opts, NULL)) != -1) {
        switch (c) {
        case P_MODEL: model = optarg; break;
        case P_CSV: csv = optarg; break;
        case P_IMAGES: images = optarg; break;
        case P_LABEL_COL: if (!cli_int("--label-col", optarg, -1, 1 << 20, &v)) return EXIT_USAGE; skip = v < 0 ? -2 : v; break;
        case P_ARCH: arch = optarg; break;
        case P_ACT: act = optarg; break;
        case P_OUT: out = optarg; break;
        case P_FORMAT:
            if (strcmp(optarg, "csv") && strcmp(optarg, "json")) {
                fprintf(stderr, "wick predict: --format is csv or json, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            format = optarg;
            break;
        case P_BATCH: if (!cli_int("--batch", optarg, 1, 1 << 20, &batch)) return EXIT_USAGE; break;
        case P_THREADS: if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE; break;
        case P_HELP: usage_predict(stdout); return EXIT_OK;
        default: return cli_bad_flag("predict", argv);
        }
    }
    if (optind < argc) return cli_extra_argument("predict", argv);
    if (!model || (!csv == !images)) {
        fprintf(stderr, "wick predict: %s (see wick predict --help)\n",
                !model ? "--model FILE is required" : "give one of --csv FILE and --images FILE");
        return EXIT_USAGE;
    }
    if (images && skip != -1) {
        fprintf(stderr, "wick predict: --label-col applies to --csv only\n");
        return EXIT_USAGE;
    }
    size_t no = out ? strlen(out) : 0;
    int json = format ? !strcmp(format, "json") : no > 5 && !strcmp(out + no - 5, ".json");
    wick_set_threads((int)threads);

    wick_mlp *m = NULL;
    wick_spec *spec = NULL;
    float *x = NULL, *y = NULL;
    size_t n = 0, dim = 0;
    FILE *f = NULL;
    json_t *root = NULL;
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
    f = out ? fopen(out, "w") : stdout;
    if (!f) { fprintf(stderr, "wick predict: %s: %s\n", out, strerror(errno)); rc = EXIT_FAIL; goto done; }
    if (json) {
        root = json_pack("{s:s, s:s, s:i, s:s, s:o}", "command", "predict", "model", model, "classes", k,
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
    f = NULL;
    if (rc == EXIT_OK && out) fprintf(stderr, "wick predict: %zu predictions written to %s\n", n, out);
done:
    if (f && f != stdout) fclose(f);
    json_decref(root);
    free(x);
    free(y);
    wick_mlp_free(m);
    wick_spec_free(spec);
    return rc;
}
