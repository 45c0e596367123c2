/* plot.c — line and point plots into a PNG through gnuplot (a pipe to
 * `gnuplot`, pngcairo terminal, else png).  The data go inline ('-'), so no
 * temporary files are left behind.  The script's numbers are printed in the
 * C locale (under de_DE printf writes "0,5", which gnuplot reads as two
 * columns), and the destination must be a regular file or nothing, as for
 * every output of wick (src/io/path.c): gnuplot would open a FIFO, a device
 * or a link's target as readily as a file. */
#include "core/core.h"
#include "io/io.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is there an executable `gnuplot` on PATH?  popen cannot tell a missing
 * program from one that failed, and the shell's complaint would reach the
 * user's terminal. */
static int have_gnuplot(void) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char buf[4096];
        if (len > 0 && len + 9 < sizeof buf) {
            memcpy(buf, p, len);
            memcpy(buf + len, "/gnuplot", 9);
            if (access(buf, X_OK) == 0) return 1;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* gnuplot strings in single quotes: a quote is doubled */
static void put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; s && *s; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s == '\n' || *s == '\r') { fputc(' ', f); continue; }
        fputc(*s, f);
    }
    fputc('\'', f);
}

wick_status wick_plot_png(const char *path, const char *title, const char *xlabel,
                          const char *ylabel, const wick_series *s, int ns, int logx, int logy) {
    if (!path || !*path) return wick_fail(WICK_EINVAL, "plot: no output path");
    if (!s || ns <= 0) return wick_fail(WICK_EINVAL, "%s: nothing to plot", path);
    for (int k = 0; k < ns; k++) {
        if (!s[k].x || !s[k].y || s[k].n == 0)
            return wick_fail(WICK_EINVAL, "%s: series %d is empty", path, k);
    }
    int exists;
    wick_status st = wick_io_check_output(path, NULL, &exists);
    if (st) return st;
    if (!have_gnuplot())
        return wick_fail(WICK_EUNSUPPORTED, "%s: gnuplot is not installed (apt-get install "
                         "gnuplot-nox); no plot written", path);
    /* refuse an unwritable destination here, with a clear message, rather
     * than through gnuplot's stderr; O_NONBLOCK and O_NOFOLLOW: whatever
     * took the name since the check cannot hang us or redirect the probe */
    int probe = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
    if (probe < 0) return wick_fail(WICK_EIO, "%s: cannot write the plot: %s", path, strerror(errno));
    struct stat ps;
    int regular = fstat(probe, &ps) == 0 && S_ISREG(ps.st_mode);
    close(probe);
    if (!regular) return wick_fail(WICK_EIO, "%s: is not a regular file: refusing to plot into it", path);
    FILE *g = popen("gnuplot 2>/dev/null", "w");
    if (!g) return wick_fail(WICK_EIO, "%s: cannot start gnuplot", path);
    locale_t loc = wick_io_locale_enter();
    fprintf(g, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 900,600 "
               "noenhanced } else { set terminal png size 900,600 }\n");
    fprintf(g, "set output ");
    put_quoted(g, path);
    fprintf(g, "\nset title ");
    put_quoted(g, title ? title : "");
    fprintf(g, "\nset xlabel ");
    put_quoted(g, xlabel ? xlabel : "");
    fprintf(g, "\nset ylabel ");
    put_quoted(g, ylabel ? ylabel : "");
    fprintf(g, "\nset key outside right top\nset grid\n");
    if (logx) fprintf(g, "set logscale x\n");
    if (logy) fprintf(g, "set logscale y\n");
    /* lines first so that points with error bars are drawn over them */
    fprintf(g, "plot ");
    int first = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < ns; k++) {
            if ((pass == 0) != !s[k].points) continue;
            fprintf(g, "%s'-' using 1:2%s with %s title ", first ? "" : ", ",
                    s[k].points && s[k].err ? ":3" : "",
                    !s[k].points ? "lines lw 2" : s[k].err ? "yerrorbars pt 7 ps 0.8" : "points pt 7 ps 0.8");
            put_quoted(g, s[k].title ? s[k].title : "");
            first = 0;
        }
    fprintf(g, "\n");
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < ns; k++) {
            if ((pass == 0) != !s[k].points) continue;
            for (size_t i = 0; i < s[k].n; i++) {
                double x = s[k].x[i], y = s[k].y[i];
                /* gnuplot reads NaN as a gap; skip non-finite points */
                if (!isfinite(x) || !isfinite(y)) continue;
                if (s[k].points && s[k].err) fprintf(g, "%.17g %.17g %.17g\n", x, y, s[k].err[i]);
                else fprintf(g, "%.17g %.17g\n", x, y);
            }
            fprintf(g, "e\n");
        }
    wick_io_locale_leave(loc);
    int rc = pclose(g);
    struct stat sb;
    if (rc != 0 || stat(path, &sb) != 0 || sb.st_size == 0)
        return wick_fail(WICK_EIO, "%s: gnuplot failed to write the plot (exit status %d)", path, rc);
    return WICK_OK;
}
