/* plot.c — line and point plots, and a confusion matrix, into a PNG through
 * gnuplot (a pipe to `gnuplot`, pngcairo terminal, else png).  The data go
 * inline ('-'), so no temporary files are left behind.  The script's numbers
 * are printed in the C locale (under de_DE printf writes "0,5", which
 * gnuplot reads as two columns), and the destination must be a regular file
 * or nothing, as for every output of wick (src/io/path.c): gnuplot would open
 * a FIFO, a device or a link's target as readily as a file.
 *
 * The axis ranges are set here rather than left to gnuplot's autoscale,
 * which rounds out to the next tick (a point on the frame hides its error
 * bar's cap) and lets one wild value flatten every other: the value axis
 * leaves out the few values that stand far apart from the rest (y_range),
 * and the title says how many it left out. */
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

/* The checks every plot makes before gnuplot starts: a path that is, or can
 * become, a regular file, and a gnuplot to run.  Then the pipe, with the
 * terminal and output set. */
static wick_status open_gnuplot(const char *path, int width, int height, FILE **out) {
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
    /* the numbers below are printed under the C locale (the caller leaves it) */
    fprintf(g, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size %d,%d "
               "noenhanced font ',11' } else { set terminal png size %d,%d }\n",
            width, height, width, height);
    fprintf(g, "set output ");
    put_quoted(g, path);
    fprintf(g, "\n");
    *out = g;
    return WICK_OK;
}

static wick_status close_gnuplot(FILE *g, const char *path) {
    int rc = pclose(g);
    struct stat sb;
    if (rc != 0 || stat(path, &sb) != 0 || sb.st_size == 0)
        return wick_fail(WICK_EIO, "%s: gnuplot failed to write the plot (exit status %d)", path, rc);
    return WICK_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A value on an axis: its logarithm on a log axis; NAN where it cannot be
 * drawn there (non-finite, or not positive on a log axis). */
static double axis_value(double v, int log_axis) {
    if (!isfinite(v)) return NAN;
    if (log_axis) return v > 0 ? log10(v) : NAN;
    return v;
}

/* Widens [*lo, *hi] (axis values) by frac of its span each side; a span of
 * zero becomes a tenth of the value (linear) or a third of a decade (log) */
static void pad_range(double *lo, double *hi, double frac, int log_axis) {
    double span = *hi - *lo;
    if (!(span > 0)) {
        span = log_axis ? 0.6 : (*lo != 0 ? 0.2 * fabs(*lo) : 2.0);
        *lo -= span / 2;
        *hi += span / 2;
        return;
    }
    *lo -= frac * span;
    *hi += frac * span;
}

static void set_range(FILE *g, char axis, double lo, double hi, int log_axis) {
    if (log_axis) { lo = pow(10, lo); hi = pow(10, hi); }
    fprintf(g, "set %crange [%.10g:%.10g]\n", axis, lo, hi);
}

/* A log axis spanning less than two decades gets gnuplot's one or two
 * decade ticks, too few to read a value off: ticks at 1, 2, 5 times the
 * powers of ten, at 1, 1.5, 2, 3, 5, 7 within one decade, and evenly spaced
 * ones (a step of 1, 2 or 5 times a power of ten) within half a decade.
 * lo, hi: log10 of the range's ends. */
static void log_tics(FILE *g, char axis, double lo, double hi) {
    if (hi - lo >= 2) return;
    static const double wide[] = {1, 2, 5}, narrow[] = {1, 1.5, 2, 3, 5, 7};
    const double *m = hi - lo >= 1 ? wide : narrow;
    int nm = hi - lo >= 1 ? 3 : 6, any = 0;
    fprintf(g, "set %ctics (", axis);
    if (hi - lo < 0.5) {
        double a = pow(10, lo), b = pow(10, hi), raw = (b - a) / 5, p = pow(10, floor(log10(raw)));
        double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
        for (double v = ceil(a / step) * step; v <= b * (1 + 1e-12); v += step) {
            fprintf(g, "%s'%g' %.10g", any ? ", " : "", v, v);
            any = 1;
        }
    } else {
        for (int d = (int)floor(lo); d <= (int)ceil(hi); d++)
            for (int i = 0; i < nm; i++) {
                double v = m[i] * pow(10, d), lv = log10(v);
                if (lv < lo || lv > hi) continue;
                fprintf(g, "%s'%g' %.10g", any ? ", " : "", v, v);
                any = 1;
            }
    }
    fprintf(g, ")\n");
    if (!any) fprintf(g, "set %ctics autofreq\n", axis);
}

/* The x range: every drawable x, with a margin, so that a point or an error
 * bar on the first or last x is not cut by the frame. */
static int x_range(const wick_series *s, int ns, int logx, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double v = axis_value(s[k].x[i], logx);
            if (isnan(v) || !isfinite(s[k].y[i])) continue;
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
    if (!(*lo <= *hi)) return 0;
    pad_range(lo, hi, 0.04, logx);
    return 1;
}

/* The y range: every value but the few that stand apart from the rest, and
 * the error bars of the points shown, with a margin.  A value stands apart
 * when its gap to the nearest other is more than twice the span of the
 * others: drawn, it would squeeze them into a third of the graph.  At most
 * an eighth of the values (at least one) is left off at each end, and an
 * error bar widens the range by at most the values' span each way.
 * *below / *above count the values left off the scale, *low / *high the
 * most extreme of them. */
static int y_range(const wick_series *s, int ns, int logy, double *lo, double *hi, size_t *below,
                   size_t *above, double *low, double *high) {
    size_t total = 0;
    for (int k = 0; k < ns; k++) total += s[k].n;
    double *v = malloc((total ? total : 1) * sizeof *v);
    if (!v) return -1;
    size_t n = 0;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double y = axis_value(s[k].y[i], logy);
            if (!isnan(y) && isfinite(s[k].x[i])) v[n++] = y;
        }
    *below = *above = 0;
    if (n == 0) { free(v); return 0; }
    qsort(v, n, sizeof *v, cmp_double);
    size_t a = 0, b = n - 1, most = n / 8 > 1 ? n / 8 : 1;
    for (int moved = 1; moved && n >= 4;) {
        moved = 0;
        if (*below < most && b - a >= 2 && v[a + 1] - v[a] > 2 * (v[b] - v[a + 1])) {
            a++; (*below)++; moved = 1;
        }
        if (*above < most && b - a >= 2 && v[b] - v[b - 1] > 2 * (v[b - 1] - v[a])) {
            b--; (*above)++; moved = 1;
        }
    }
    *lo = v[a];
    *hi = v[b];
    *low = logy ? pow(10, v[0]) : v[0];
    *high = logy ? pow(10, v[n - 1]) : v[n - 1];
    free(v);
    double span = *hi - *lo, flo = *lo - span, fhi = *hi + span, vlo = *lo, vhi = *hi;
    for (int k = 0; k < ns; k++) {
        if (!s[k].points || !s[k].err) continue;
        for (size_t i = 0; i < s[k].n; i++) {
            double y = s[k].y[i], e = fabs(s[k].err[i]);
            double c = axis_value(y, logy);
            if (isnan(c) || c < vlo || c > vhi || !isfinite(e) || !isfinite(s[k].x[i])) continue;
            double lo_bar = axis_value(y - e, logy), hi_bar = axis_value(y + e, logy);
            if (!isnan(lo_bar)) { lo_bar = lo_bar < flo ? flo : lo_bar; if (lo_bar < *lo) *lo = lo_bar; }
            if (!isnan(hi_bar)) { hi_bar = hi_bar > fhi ? fhi : hi_bar; if (hi_bar > *hi) *hi = hi_bar; }
        }
    }
    pad_range(lo, hi, 0.05, logy);
    return 1;
}

/* Okabe and Ito's colours, told apart by colour-blind readers too */
static const char *const colours[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                      "#e69f00", "#56b4e9", "#000000", "#8c6d31"};
#define NCOLOURS (int)(sizeof colours / sizeof colours[0])
/* filled circle, square, triangle up and down, diamond, pentagon */
static const int point_types[] = {7, 5, 9, 11, 13, 15};
#define NPOINTS (int)(sizeof point_types / sizeof point_types[0])
/* their open counterparts, for the data of a line */
static const int open_types[] = {6, 4, 8, 10, 12, 14};

/* A series' colour: series of one group > 0 share one; each other series,
 * and each group, takes the next colour in order of first appearance. */
static int colour_of(const wick_series *s, int k) {
    int c = 0;
    for (int j = 0; j < k; j++) {
        if (s[j].group > 0) {
            int seen = 0;
            for (int i = 0; i < j; i++) seen |= s[i].group == s[j].group;
            if (seen) continue;
            if (s[j].group == s[k].group) return c % NCOLOURS;
        }
        c++;
    }
    return c % NCOLOURS;
}

static void put_number(FILE *g, double v) {
    fprintf(g, "%.6g", v);
}

wick_status wick_plot_png(const char *path, const char *title, const char *xlabel,
                          const char *ylabel, const wick_series *s, int ns, int logx, int logy) {
    if (!path || !*path) return wick_fail(WICK_EINVAL, "plot: no output path");
    if (!s || ns <= 0) return wick_fail(WICK_EINVAL, "%s: nothing to plot", path);
    for (int k = 0; k < ns; k++) {
        if (!s[k].x || !s[k].y || s[k].n == 0)
            return wick_fail(WICK_EINVAL, "%s: series %d is empty", path, k);
    }
    FILE *g;
    wick_status st = open_gnuplot(path, 900, 600, &g);
    if (st) return st;
    locale_t loc = wick_io_locale_enter();
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0, low = 0, high = 0;
    size_t below = 0, above = 0;
    int have_x = x_range(s, ns, logx, &xlo, &xhi);
    int have_y = y_range(s, ns, logy, &ylo, &yhi, &below, &above, &low, &high);
    fprintf(g, "set title ");
    put_quoted(g, title ? title : "");
    if (below + above > 0) {
        /* a second line of the title says what the scale leaves out */
        fprintf(g, ".\"\\n\".'(off the scale:");
        if (below) { fprintf(g, " %zu value%s below, down to ", below, below > 1 ? "s" : ""); put_number(g, low); }
        if (below && above) fprintf(g, ";");
        if (above) { fprintf(g, " %zu value%s above, up to ", above, above > 1 ? "s" : ""); put_number(g, high); }
        fprintf(g, ")'");
    }
    fprintf(g, "\nset xlabel ");
    put_quoted(g, xlabel ? xlabel : "");
    fprintf(g, "\nset ylabel ");
    put_quoted(g, ylabel ? ylabel : "");
    /* the legend below the graph: it takes none of the graph's width and
     * covers no data; series in groups (a measurement beside its theory)
     * fill a column each */
    int group_size = 1;
    for (int k = 0; k < ns; k++) {
        int c = 0;
        for (int j = 0; j < ns; j++) c += s[k].group > 0 && s[j].group == s[k].group;
        if (c > group_size) group_size = c;
    }
    /* gnuplot drops the entries that do not fit the width: as many columns
     * as the longest title allows (about 7 pixels a character at 11 points,
     * and the line sample) */
    size_t longest = 1;
    for (int k = 0; k < ns; k++)
        if (s[k].title && strlen(s[k].title) > longest) longest = strlen(s[k].title);
    int cols = (int)(860 / (7 * (longest + 9)));
    if (cols < 1) cols = 1;
    int rows = (ns + cols - 1) / cols;
    if (group_size > 1) {
        rows = (rows + group_size - 1) / group_size * group_size;
        fprintf(g, "\nset key below center vertical maxrows %d", rows);
    } else {
        fprintf(g, "\nset key below center horizontal maxcols %d", cols);
    }
    /* %g tick labels: gnuplot's default writes 0.0000010 on a log axis,
     * and such labels run into each other */
    fprintf(g, " reverse Left samplen 3 spacing 1.1 width 1 height 0.5\nset grid\n"
               "set format x '%%g'\nset format y '%%g'\n");
    if (logx) fprintf(g, "set logscale x\n");
    if (logy) fprintf(g, "set logscale y\n");
    if (have_x) set_range(g, 'x', xlo, xhi, logx);
    if (have_y > 0) set_range(g, 'y', ylo, yhi, logy);
    if (have_x && logx) log_tics(g, 'x', xlo, xhi);
    if (have_y > 0 && logy) log_tics(g, 'y', ylo, yhi);
    /* each line its own dash pattern and each point set its own marker, so
     * that curves lying on one another stay told apart */
    char (*style)[128] = calloc((size_t)ns, sizeof *style);
    if (!style) {
        wick_io_locale_leave(loc);
        pclose(g);
        return wick_fail(WICK_ENOMEM, "%s: out of memory", path);
    }
    int nline = 0, npoint = 0;
    for (int k = 0; k < ns; k++) {
        const char *c = colours[colour_of(s, k)];
        if (!s[k].points && s[k].n > 12)
            snprintf(style[k], sizeof style[k], "lines lw 2 dt %d lc rgb '%s'", 1 + nline++ % 5, c);
        else if (!s[k].points && s[k].n > 1) {   /* a short line: open markers show its data */
            snprintf(style[k], sizeof style[k], "linespoints lw 2 dt %d pt %d ps 1 lc rgb '%s'", 1 + nline % 5,
                     open_types[nline % NPOINTS], c);
            nline++;
        } else if (!s[k].points)   /* a line of one point draws nothing: a marker */
            snprintf(style[k], sizeof style[k], "points pt %d ps 1.2 lc rgb '%s'", point_types[npoint++ % NPOINTS], c);
        else   /* a lone point (a choice marked on a curve) larger */
            snprintf(style[k], sizeof style[k], "%s pt %d ps %g lc rgb '%s'", s[k].err ? "yerrorbars" : "points",
                     point_types[npoint++ % NPOINTS], s[k].n == 1 ? 2.2 : 1.0, c);
    }
    /* lines first so that points with error bars are drawn over them, then
     * the legend's entries in the caller's order */
    fprintf(g, "plot ");
    int first = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < ns; k++) {
            if ((pass == 0) != !s[k].points) continue;
            fprintf(g, "%s'-' using 1:2%s with %s notitle", first ? "" : ", ",
                    s[k].points && s[k].err ? ":3" : "", style[k]);
            first = 0;
        }
    for (int k = 0; k < ns; k++) {
        fprintf(g, ", keyentry with %s title ", style[k]);
        put_quoted(g, s[k].title ? s[k].title : "");
    }
    free(style);
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
    return close_gnuplot(g, path);
}

wick_status wick_plot_confusion_png(const char *path, const char *title, const wick_metrics *m,
                                    const char *const *class_names) {
    if (!path || !*path) return wick_fail(WICK_EINVAL, "plot: no output path");
    if (!m || m->classes <= 0 || !m->confusion) return wick_fail(WICK_EINVAL, "%s: no confusion matrix to plot", path);
    int k = m->classes;
    /* a square graph beside the colour box; tall enough for names turned 45 degrees */
    int side = k > 30 ? 1000 : 800;
    FILE *g;
    wick_status st = open_gnuplot(path, side + 100, side, &g);
    if (st) return st;
    locale_t loc = wick_io_locale_enter();
    fprintf(g, "set title ");
    put_quoted(g, title ? title : "");
    fprintf(g, "\nset xlabel 'predicted class'\nset ylabel 'true class'\nunset key\n"
               "set size ratio -1\nset tics scale 0\n"
               "set xrange [-0.5:%g]\nset yrange [%g:-0.5]\n", k - 0.5, k - 0.5);
    /* every class's name, or with many classes every step-th index */
    int step = k <= 30 ? 1 : (k + 29) / 30;
    for (int axis = 0; axis < 2; axis++) {
        fprintf(g, "set %ctics (", axis ? 'y' : 'x');
        for (int i = 0, f = 1; i < k; i += step, f = 0) {
            if (!f) fputc(',', g);
            char num[24];
            snprintf(num, sizeof num, "%d", i);
            put_quoted(g, class_names ? class_names[i] : num);
            fprintf(g, " %d", i);
        }
        fprintf(g, ")%s\n", axis == 0 && class_names ? " rotate by 35 right" : "");
    }
    /* the colour is the share of the true class's samples (the row), so a
     * rare class's errors show as plainly as a common one's; the number
     * printed is the count */
    fprintf(g, "set cbrange [0:1]\nset cblabel 'share of the true class'\nset format cb '%%.1f'\n"
               "set palette defined (0 '#ffffff', 0.15 '#deebf7', 0.5 '#6baed6', 1 '#08306b')\n");
    int labels = k <= 20;
    fprintf(g, "plot '-' using 1:2:3 with image pixels");
    if (labels)
        fprintf(g, ", '-' using 1:2:3 with labels tc rgb '#000000', '-' using 1:2:3 with labels tc rgb '#ffffff'");
    fprintf(g, "\n");
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        for (int j = 0; j < k; j++) row += m->confusion[(size_t)i * k + j];
        for (int j = 0; j < k; j++)
            fprintf(g, "%d %d %.6g\n", j, i, row > 0 ? (double)m->confusion[(size_t)i * k + j] / (double)row : 0.0);
        fprintf(g, "\n");
    }
    fprintf(g, "e\n");
    /* dark cells get white numbers */
    for (int dark = 0; labels && dark < 2; dark++) {
        for (int i = 0; i < k; i++) {
            int64_t row = 0;
            for (int j = 0; j < k; j++) row += m->confusion[(size_t)i * k + j];
            for (int j = 0; j < k; j++) {
                int64_t c = m->confusion[(size_t)i * k + j];
                double share = row > 0 ? (double)c / (double)row : 0;
                if ((share > 0.45) == dark) fprintf(g, "%d %d %lld\n", j, i, (long long)c);
            }
        }
        fprintf(g, "e\n");
    }
    wick_io_locale_leave(loc);
    return close_gnuplot(g, path);
}
