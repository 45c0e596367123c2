/* test_plot.c — what wick_plot_png sends to gnuplot, read back through a
 * stand-in `gnuplot` on PATH that saves its script and writes the output
 * file: the numbers in the script are in the C locale whatever the
 * caller's (gnuplot reads "0,5" as two columns), titles are quoted, a
 * missing gnuplot is a clear message; the value axis leaves out a far
 * outlier and says so, spans every error bar, lines coinciding get distinct
 * dash patterns, the legend sits below the graph; the confusion matrix's
 * cells, counts and class names. */
#include "check.h"
#include "core/core.h"
#include "lib/locale_de.h"

static char script[600], bindir[600];

/* A fake gnuplot: copies its standard input to `script` and writes one byte
 * to the file named by "set output '...'". */
static void install_fake_gnuplot(void) {
    snprintf(bindir, sizeof bindir, "%s", chk_tmp("bin"));
    mkdir(bindir, 0755);
    snprintf(script, sizeof script, "%s", chk_tmp("script.gp"));
    char p[700];
    snprintf(p, sizeof p, "%s/gnuplot", bindir);
    FILE *f = fopen(p, "w");
    fprintf(f, "#!/bin/sh\ncat > '%s'\nout=$(sed -n \"s/^set output '\\(.*\\)'$/\\1/p\" '%s')\n"
               "printf x > \"$out\"\n", script, script);
    fclose(f);
    chmod(p, 0755);
}

static char *plot_script(wick_status *s) {
    const double x[3] = {0.5, 1.25, 1e-5}, y[3] = {0.25, -3.5, 2.5e10}, e[3] = {0.125, 0.5, 1.5};
    wick_series sr[2] = {{"loss", x, y, NULL, 3, 0, 0}, {"it's", x, y, e, 3, 1, 0}};
    unlink(script);
    *s = wick_plot_png(chk_tmp("p.png"), "title", "x", "y", sr, 2, 0, 1);
    size_t n = 0;
    char *b = (char *)chk_read_file(script, &n);
    if (b) b[n] = 0;
    return b;
}

static void test_script_numbers(void) {
    install_fake_gnuplot();
    const char *old = getenv("PATH");
    char path[2000];
    snprintf(path, sizeof path, "%s:%s", bindir, old ? old : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    wick_status s;
    char *b = plot_script(&s);
    CHECK(s == WICK_OK && b);
    if (b) {
        CHECK(strstr(b, "\n0.5 0.25\n1.25 -3.5\n1.0000000000000001e-05 25000000000\ne\n"));
        CHECK(strstr(b, "\n0.5 0.25 0.125\n"));
        CHECK(strstr(b, "title 'it''s'"));
        CHECK(strstr(b, "set logscale y"));
    }
    free(b);
    if (!chk_locale_de()) {
        setenv("PATH", old, 1);
        SKIP("de_DE.UTF-8 not available (locales / localedef)");
    }
    b = plot_script(&s);
    chk_locale_c();
    CHECK(s == WICK_OK && b);
    if (b) {
        CHECK(strstr(b, "\n0.5 0.25\n1.25 -3.5\n1.0000000000000001e-05 25000000000\ne\n"));
        CHECK(strstr(b, "\n0.5 0.25 0.125\n"));
        CHECK(!strstr(b, "0,5"));
    }
    free(b);
    setenv("PATH", old, 1);
}

/* The script of one plot through the fake gnuplot (PATH already set). */
static char *script_of(const wick_series *sr, int ns, int logy) {
    unlink(script);
    wick_status s = wick_plot_png(chk_tmp("r.png"), "t", "x", "y", sr, ns, 0, logy);
    if (s) return NULL;
    size_t n = 0;
    char *b = (char *)chk_read_file(script, &n);
    if (b) b[n] = 0;
    return b;
}

static int yrange(const char *b, double *lo, double *hi) {
    const char *r = b ? strstr(b, "set yrange [") : NULL;
    return r && sscanf(r, "set yrange [%lf:%lf]", lo, hi) == 2;
}

static void use_fake_gnuplot(char *old, size_t size) {
    install_fake_gnuplot();
    const char *o = getenv("PATH");
    snprintf(old, size, "%s", o ? o : "/usr/bin:/bin");
    char path[5000];
    snprintf(path, sizeof path, "%s:%s", bindir, old);
    setenv("PATH", path, 1);
}

static void test_ranges_and_styles(void) {
    char old[4096];
    use_fake_gnuplot(old, sizeof old);
    /* wick kernel's case: one log evidence of -82763 among values near -2000 */
    double x[6] = {1e-6, 1e-4, 1e-2, 1e-6, 1e-4, 1e-2};
    double y[6] = {-82763, -3045, -1480, -1961, -1962, -2081};
    wick_series sr[2] = {{"a", x, y, NULL, 3, 0, 1}, {"b", x + 3, y + 3, NULL, 3, 0, 1}};
    double lo, hi;
    char *b = script_of(sr, 2, 0);
    CHECK(b && yrange(b, &lo, &hi));
    if (b) {
        CHECK(lo < -3045 && lo > -4000 && hi > -1480 && hi < -1300);
        CHECK(strstr(b, "off the scale: 1 value below, down to -82763"));
        CHECK(strstr(b, "set key below"));
        CHECK(strstr(b, "dt 1 ") && strstr(b, "dt 2 "));   /* the two lines told apart */
        CHECK(!strstr(b, "key outside right"));
    }
    free(b);
    /* no outlier: nothing left out, and every error bar inside the frame */
    double px[4] = {1, 2, 3, 4}, py[4] = {1, 2, 3, 4}, pe[4] = {0.5, 0.5, 0.5, 3};
    wick_series pts = {"p", px, py, pe, 4, 1, 0};
    b = script_of(&pts, 1, 0);
    CHECK(b && yrange(b, &lo, &hi));
    if (b) {
        CHECK(lo < 0.5 && hi > 7);
        CHECK(!strstr(b, "off the scale"));
        CHECK(strstr(b, "yerrorbars"));
    }
    free(b);
    /* a line of one point is drawn as a marker (a line of one point draws nothing) */
    wick_series one = {"one", px, py, NULL, 1, 0, 0};
    b = script_of(&one, 1, 1);
    CHECK(b && strstr(b, "with points"));
    CHECK(b && yrange(b, &lo, &hi) && lo < 1 && hi > 1);
    free(b);
    setenv("PATH", old, 1);
}

static void test_confusion(void) {
    char old[4096];
    use_fake_gnuplot(old, sizeof old);
    int32_t truth[6] = {0, 0, 1, 1, 1, 2}, pred[6] = {0, 1, 1, 1, 1, 2};
    wick_metrics *m = NULL;
    CHECK_OK(wick_metrics_compute(truth, pred, 6, 3, &m));
    const char *names[3] = {"T-shirt/top", "it's", "Bag"};
    unlink(script);
    CHECK_OK(wick_plot_confusion_png(chk_tmp("c.png"), "cm", m, names));
    size_t n = 0;
    char *b = (char *)chk_read_file(script, &n);
    CHECK(b);
    if (b) {
        b[n] = 0;
        CHECK(strstr(b, "set xtics ('T-shirt/top' 0,'it''s' 1,'Bag' 2)"));
        CHECK(strstr(b, "with image"));
        CHECK(strstr(b, "\n0 0 0.5\n1 0 0.5\n2 0 0\n"));   /* row 0: shares of the true class */
        CHECK(strstr(b, "\n1 1 3\n"));                        /* the count 3, a dark cell */
    }
    free(b);
    CHECK_FAILS(wick_plot_confusion_png(chk_tmp("c.png"), "cm", NULL, NULL), WICK_EINVAL, "no confusion matrix");
    wick_metrics_free(m);
    setenv("PATH", old, 1);
}

static void test_no_gnuplot(void) {
    const char *old = getenv("PATH");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", old ? old : "");
    setenv("PATH", chk_tmp("nowhere"), 1);
    const double x[1] = {1};
    wick_series sr = {"s", x, x, NULL, 1, 0, 0};
    CHECK_FAILS(wick_plot_png(chk_tmp("q.png"), "t", "x", "y", &sr, 1, 0, 0), WICK_EUNSUPPORTED,
                "gnuplot is not installed");
    setenv("PATH", keep, 1);
}

int main(void) {
    RUN(test_script_numbers);
    RUN(test_ranges_and_styles);
    RUN(test_confusion);
    RUN(test_no_gnuplot);
    return chk_finish();
}
