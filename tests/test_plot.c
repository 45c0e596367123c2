/* test_plot.c — what wick_plot_png sends to gnuplot, read back through a
 * stand-in `gnuplot` on PATH that saves its script and writes the output
 * file: the numbers in the script are in the C locale whatever the
 * caller's (gnuplot reads "0,5" as two columns), titles are quoted, a
 * missing gnuplot is a clear message. */
#include "check.h"
#include "core/core.h"
#include "locale_de.h"

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
    wick_series sr[2] = {{"loss", x, y, NULL, 3, 0}, {"it's", x, y, e, 3, 1}};
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

static void test_no_gnuplot(void) {
    const char *old = getenv("PATH");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", old ? old : "");
    setenv("PATH", chk_tmp("nowhere"), 1);
    const double x[1] = {1};
    wick_series sr = {"s", x, x, NULL, 1, 0};
    CHECK_FAILS(wick_plot_png(chk_tmp("q.png"), "t", "x", "y", &sr, 1, 0, 0), WICK_EUNSUPPORTED,
                "gnuplot is not installed");
    setenv("PATH", keep, 1);
}

int main(void) {
    RUN(test_script_numbers);
    RUN(test_no_gnuplot);
    return chk_finish();
}
