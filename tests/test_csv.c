/* test_csv.c — numeric CSV against every case of the CSV section of
 * docs/file-formats.md, the decisions documented in src/io/csv.c, the
 * labelled data set, and allocation-failure injection. */
#include "check.h"
#include "core/core.h"
#include "io/io.h"
#include <float.h>
#include "lib/locale_de.h"

static double *V;
static size_t R, C;

static wick_status rd_nf(const char *text, int allow_nonfinite) {
    wick_free(V);
    V = NULL;
    const char *p = chk_write_file("t.csv", text, strlen(text));
    return wick_csv_read(p, allow_nonfinite, &V, &R, &C);
}
static wick_status rd(const char *text) { return rd_nf(text, 0); }

static wick_dataset *D;
static wick_status ld(const char *text, int label_col, int classes) {
    wick_dataset_free(D);
    D = NULL;
    const char *p = chk_write_file("d.csv", text, strlen(text));
    return wick_dataset_load_csv(p, label_col, classes, &D);
}

/* ---- accepted -------------------------------------------------------- */

static void test_plain(void) {
    CHECK_OK(rd("1,2.5,-3\n4e2,-0.125,6E-1\n"));
    CHECK(R == 2 && C == 3);
    if (!V) return;
    const double want[6] = {1, 2.5, -3, 400, -0.125, 0.6};
    for (int i = 0; i < 6; i++) CHECK(V[i] == want[i]);
    /* no final newline */
    CHECK_OK(rd("7,8"));
    CHECK(R == 1 && C == 2 && V[1] == 8);
    /* the shortest decimal of a double reads back exactly (%.17g) */
    CHECK_OK(rd("0.10000000000000001,2.2250738585072014e-308,1.7976931348623157e+308\n"));
    CHECK(V && V[0] == 0.1 && V[1] == DBL_MIN && V[2] == DBL_MAX);
}

/* Header: skipped when no field of the first row is a number. */
static void test_header(void) {
    CHECK_OK(rd("x,y,\"label\"\n1,2,3\n"));
    CHECK(R == 1 && C == 3 && V && V[2] == 3);
    CHECK_FAILS(rd("x,2,y\n1,2,3\n"), WICK_EFORMAT, "line 1, column 1: 'x' is not a number");
}

static void test_crlf_bom_spaces_quotes(void) {
    CHECK_OK(rd("\xEF\xBB\xBF" "a,b\r\n 1 ,\t2\r\n\"3\", \" 4 \" \r\n"));
    CHECK(R == 2 && C == 2);
    if (V) CHECK(V[0] == 1 && V[1] == 2 && V[2] == 3 && V[3] == 4);
    /* a BOM before data (no header) */
    CHECK_OK(rd("\xEF\xBB\xBF" "5,6\n"));
    CHECK(R == 1 && V && V[0] == 5);
    /* blank lines at the end are an editor's habit */
    CHECK_OK(rd("1,2\n3,4\n\n  \r\n\n"));
    CHECK(R == 2);
}

static void test_underflow_accepted(void) {
    CHECK_OK(rd("1e-400,-1e-400,4.9e-324\n"));
    if (V) CHECK(V[0] == 0 && V[1] == 0 && signbit(V[1]) && V[2] == 4.9e-324);
}

static void test_nonfinite_allowed(void) {
    CHECK_OK(rd_nf("nan,inf,-Infinity\n", 1));
    if (V) CHECK(isnan(V[0]) && V[1] == INFINITY && V[2] == -INFINITY);
}

/* The C locale whatever the user's: a German user's program calls
 * setlocale(LC_ALL, "") with LC_ALL=de_DE.UTF-8, where "1,5" is one and a
 * half; "1.5" still reads as 1.5 and messages print 2.5, not 2,5. */
static void test_locale_independent(void) {
    if (!chk_locale_de()) SKIP("de_DE.UTF-8 not available (locales / localedef)");
    CHECK_OK(rd("1.5,2.25\n"));
    CHECK(V && V[0] == 1.5 && V[1] == 2.25);
    CHECK_FAILS(rd("1,5\n2\n"), WICK_EFORMAT, "line 2 has 1 fields, the first row has 2");
    CHECK_FAILS(ld("a,b\n1,2\n3,2.5\n", -1, 0), WICK_EFORMAT, "line 3, column 2: label 2.5 is not an integer");
    CHECK_FAILS(ld("1e300,1\n", -1, 0), WICK_EFORMAT, "1.0000000000000001e+300 overflows a float");
    chk_locale_c();
}

/* ---- refused ---------------------------------------------------------- */

static void test_ragged(void) {
    CHECK_FAILS(rd("1,2,3\n4,5\n"), WICK_EFORMAT, "t.csv: line 2 has 2 fields, the first row has 3");
    CHECK_FAILS(rd("a,b\n1,2\n3,4,5\n"), WICK_EFORMAT, "line 3 has 3 fields, the first row has 2");
    /* "1,5" meant as a decimal comma is a ragged row */
    CHECK_FAILS(rd("1.5,2\n1,5,2\n"), WICK_EFORMAT, "line 2 has 3 fields");
}

static void test_empty_field(void) {
    CHECK_FAILS(rd("1,2,3\n4,,6\n"), WICK_EFORMAT, "line 2, column 2: empty field");
    CHECK_FAILS(rd("1,2,\n"), WICK_EFORMAT, "line 1, column 3: empty field");
    CHECK_FAILS(rd("1,2\n\"\",3\n"), WICK_EFORMAT, "line 2, column 1: empty field");
    CHECK_FAILS(rd("1,2\n  ,3\n"), WICK_EFORMAT, "line 2, column 1: empty field");
}

static void test_trailing_junk(void) {
    CHECK_FAILS(rd("1,2\n1.5abc,2\n"), WICK_EFORMAT, "line 2, column 1: '1.5abc' is not a number");
    CHECK_FAILS(rd("1,2\n3,4 5\n"), WICK_EFORMAT, "line 2, column 2: '4 5' is not a number");
    CHECK_FAILS(rd("1,2\n3,\"4\"x\n"), WICK_EFORMAT, "line 2, column 2: junk after a closing quote");
    CHECK_FAILS(rd("1,2\n3,1.2.3\n"), WICK_EFORMAT, "'1.2.3' is not a number");
}

static void test_nonfinite_refused(void) {
    CHECK_FAILS(rd("1,nan\n"), WICK_EFORMAT, "line 1, column 2: 'nan' is not finite");
    CHECK_FAILS(rd("1,2\n-inf,2\n"), WICK_EFORMAT, "line 2, column 1: '-inf' is not finite");
    CHECK_FAILS(rd("1,2\nInfinity,2\n"), WICK_EFORMAT, "not finite");
    CHECK_FAILS(rd("1,2\nNAN(123),2\n"), WICK_EFORMAT, "not finite");
}

static void test_overflow(void) {
    CHECK_FAILS(rd("1,2\n1e999,2\n"), WICK_EFORMAT, "line 2, column 1: '1e999' overflows a double");
    CHECK_FAILS(rd_nf("1,-1e999\n", 1), WICK_EFORMAT, "'-1e999' overflows a double");
}

static void test_hex_refused(void) {
    CHECK_FAILS(rd("1,0x1p3\n"), WICK_EFORMAT, "line 1, column 2: hex number '0x1p3' refused");
    CHECK_FAILS(rd("1,2\n-0XFF,1\n"), WICK_EFORMAT, "hex number '-0XFF' refused");
}

static void test_unterminated_quote(void) {
    CHECK_FAILS(rd("1,2\n\"3,4\n5,6\n"), WICK_EFORMAT, "line 2, column 1: unterminated quote");
}

static void test_empty_or_header_only(void) {
    CHECK_FAILS(rd(""), WICK_EFORMAT, "t.csv: empty file");
    CHECK_FAILS(rd("\n\n  \n"), WICK_EFORMAT, "empty file");
    CHECK_FAILS(rd("\xEF\xBB\xBF"), WICK_EFORMAT, "empty file");
    CHECK_FAILS(rd("a,b,c\n"), WICK_EFORMAT, "no data rows (only a header on line 1)");
    CHECK_FAILS(rd("a,b,c\n\n"), WICK_EFORMAT, "no data rows");
    CHECK_FAILS(rd("1,2\n\n3,4\n"), WICK_EFORMAT, "line 2: empty line inside the data");
}

static void test_not_data(void) {
    CHECK_FAILS(rd("Dear reader,\nthis is a letter, not a table.\n"), WICK_EFORMAT,
                "line 2, column 1: 'this is a letter' is not a number");
    const char bin[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const char *p = chk_write_file("bin.csv", bin, sizeof bin - 1);
    CHECK_FAILS(wick_csv_read(p, 0, &V, &R, &C), WICK_EFORMAT, "line 3: NUL byte: not a text file");
    CHECK_FAILS(wick_csv_read(chk_tmp("none.csv"), 0, &V, &R, &C), WICK_EIO, "cannot open");
    CHECK_FAILS(wick_csv_read(chk_tmp(""), 0, &V, &R, &C), WICK_EIO, "not a regular file");
    CHECK(V == NULL);
}

/* The file's text in a message is escaped: no control character (or a
 * byte that is not UTF-8) reaches the terminal. */
static void test_text_escaped(void) {
    CHECK_FAILS(rd("1,2\n\x1b[31m,2\n"), WICK_EFORMAT, "line 2, column 1: '\\x1b[31m' is not a number");
    CHECK_FAILS(rd("1,2\n3,\x9b" "2J\n"), WICK_EFORMAT, "line 2, column 2: '\\x9b2J' is not a number");
    CHECK_FAILS(rd("1,2\n3,\xc2\x9b" "2J\n"), WICK_EFORMAT, "line 2, column 2: '\\u009b2J' is not a number");
    CHECK_FAILS(rd("1,2\n3,0x\x07\n"), WICK_EFORMAT, "hex number '0x\\x07' refused");
    CHECK_FAILS(rd("1,2\n3,\x1b" "nan\n"), WICK_EFORMAT, "'\\x1bnan' is not a number");
    for (const unsigned char *m = (const unsigned char *)wick_last_error(); *m; m++)
        CHECK(*m >= 0x20 && *m != 0x7f);
}

/* Lines are bounded at 16 MiB: a longer one is refused by number. */
static void test_long_line(void) {
    size_t n = (16u << 20) + 10;
    char *b = malloc(n + 8);
    memcpy(b, "1\n", 2);
    memset(b + 2, '1', n);
    memcpy(b + 2 + n, "\n", 2);
    CHECK_FAILS(rd(b), WICK_EFORMAT, "line 2 is longer than 16777216 bytes");
    free(b);
}

/* ---- labelled data set --------------------------------------------------- */

static void test_dataset(void) {
    CHECK_OK(ld("f1,f2,label\n0.5,1,2\n-1,2,0\n", -1, 0));
    if (!D) return;
    CHECK(D->n == 2 && D->dim == 2 && D->classes == 3);
    CHECK(D->x[0] == 0.5f && D->x[1] == 1.0f && D->x[2] == -1.0f && D->x[3] == 2.0f);
    CHECK(D->y[0] == 2 && D->y[1] == 0);
    CHECK_OK(ld("1,0.5,7\n0,0.25,8\n", 0, 4));
    CHECK(D && D->classes == 4 && D->y[1] == 0 && D->x[0] == 0.5f && D->x[3] == 8.0f);
    /* labels: lines counted from the file's start, header included */
    CHECK_FAILS(ld("a,b\n1,2\n3,2.5\n", -1, 0), WICK_EFORMAT, "line 3, column 2: label 2.5 is not an integer");
    CHECK_FAILS(ld("1,2\n3,-1\n", -1, 0), WICK_EFORMAT, "line 2, column 2: label -1 is out of range");
    CHECK_FAILS(ld("1,2\n3,10\n", -1, 10), WICK_EFORMAT, "line 2, column 2: label 10 is not in [0, 10)");
    CHECK_FAILS(ld("1,2\n3,1e12\n", -1, 0), WICK_EFORMAT, "label 1000000000000 is out of range");
    CHECK_FAILS(ld("1,2\n", 2, 0), WICK_EINVAL, "label column 2 out of range");
    CHECK_FAILS(ld("1,2\n", -2, 0), WICK_EINVAL, "label column -2 out of range");
    CHECK_FAILS(ld("1\n2\n", -1, 0), WICK_EFORMAT, "need features and a label");
    CHECK_FAILS(ld("1,nan\n", -1, 0), WICK_EFORMAT, "not finite");
    CHECK_FAILS(ld("1e300,1\n", -1, 0), WICK_EFORMAT, "line 1, column 1: 1.0000000000000001e+300 overflows a float");
    CHECK(D == NULL);
}

/* ---- allocation failure --------------------------------------------------- */

static void test_alloc_failure(void) {
    /* enough rows to make the row buffer grow (64, 128, ...) */
    char *text = malloc(200 * 16 + 32);
    size_t k = (size_t)sprintf(text, "a,b,c\n");
    for (int i = 0; i < 200; i++) k += (size_t)sprintf(text + k, "%d,%d.5,%d\n", i, i, i % 3);
    const char *p = chk_write_file("af.csv", text, k);
    free(text);
    for (int which = 0; which < 2; which++) {
        int failures = 0;
        for (long n = 1; n < 100; n++) {
            double *v = NULL;
            size_t r = 0, c = 0;
            wick_dataset *d = NULL;
            wick_alloc_fail_at(n);
            wick_status s = which == 0 ? wick_csv_read(p, 0, &v, &r, &c) : wick_dataset_load_csv(p, -1, 0, &d);
            wick_alloc_fail_at(0);
            if (s == WICK_OK) {
                CHECK(which == 0 ? (r == 200 && c == 3 && v[3 * 199 + 1] == 199.5) : (d->n == 200 && d->classes == 3));
                wick_free(v);
                wick_dataset_free(d);
                break;
            }
            failures++;
            CHECK_FAILS(s, WICK_ENOMEM, "out of memory");
            CHECK(!v && !d);
        }
        CHECK(failures >= (which == 0 ? 4 : 7));
    }
}

int main(void) {
    RUN(test_plain);
    RUN(test_header);
    RUN(test_crlf_bom_spaces_quotes);
    RUN(test_underflow_accepted);
    RUN(test_nonfinite_allowed);
    RUN(test_locale_independent);
    RUN(test_ragged);
    RUN(test_empty_field);
    RUN(test_trailing_junk);
    RUN(test_nonfinite_refused);
    RUN(test_overflow);
    RUN(test_hex_refused);
    RUN(test_unterminated_quote);
    RUN(test_empty_or_header_only);
    RUN(test_not_data);
    RUN(test_text_escaped);
    RUN(test_long_line);
    RUN(test_dataset);
    RUN(test_alloc_failure);
    wick_free(V);
    wick_dataset_free(D);
    return chk_finish();
}
