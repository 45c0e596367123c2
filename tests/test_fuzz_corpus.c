/* test_fuzz_corpus.c — replays every file of fuzz/corpus/<parser>/ through
 * its parser without the fuzzer: seeds and the crash files the fuzzers found
 * (each one a fixed bug).  Each must give a defined status, a message when it
 * fails and no partial result; "seed-good-*" files must read, "seed-bad-*"
 * must not.  The loaders above the parsers (fuzz/corpus/model, resume) go
 * through the harnesses' own code (fuzz/fuzz_nn.h).  Under `make SANITIZE=1` this is the regression run with ASan and
 * UBSan.  Paths are relative to the repository root (tests/run.sh runs
 * there). */
#include "check.h"
#include "io/io.h"
#include "../fuzz/fuzz_nn.h"
#include <dirent.h>

static int defined_status(wick_status s) { return s >= WICK_OK && s <= WICK_EUNSUPPORTED; }

/* Parses one file; returns its status, or -1 when the parser misbehaved. */
static int parse_one(const char *parser, const char *path) {
    size_t n = 0;
    uint8_t *b = chk_read_file(path, &n);
    if (!b) return -1;
    wick_status s;
    int bad = 0;
    if (strcmp(parser, "safetensors") == 0) {
        wick_st_file *f = NULL, *g = NULL;
        s = wick_st_read_mem(path, b, n, &f);
        wick_status s2 = wick_st_read(path, &g);   /* the file path agrees with the memory path */
        bad = s != s2 || (s != WICK_OK && (f || g));
        if (s == WICK_OK && !bad) bad = wick_st_count(f) != wick_st_count(g);
        wick_st_free(f);
        wick_st_free(g);
    } else if (strcmp(parser, "csv") == 0) {
        s = WICK_OK;
        for (int allow = 0; allow < 2; allow++) {
            double *v = NULL;
            size_t r, c, first;
            wick_status si = wick_csv_read_mem(path, (const char *)b, n, allow, &v, &r, &c, &first);
            if (si != WICK_OK) bad |= v != NULL;
            if (allow == 1) s = si;   /* "good" seeds may hold nan/inf */
            wick_free(v);
        }
        wick_dataset *d = NULL;
        wick_status sd = wick_dataset_load_csv(path, -1, 0, &d);
        bad |= !defined_status(sd) || (sd != WICK_OK && d);
        wick_dataset_free(d);
    } else {
        wick_idx *t = NULL;
        s = wick_idx_read(path, &t);
        bad = s != WICK_OK && t;
        wick_idx_free(t);
        wick_dataset *d = NULL;
        wick_status sd = wick_dataset_load_idx(path, path, 0, &d);
        bad |= !defined_status(sd) || (sd != WICK_OK && d);
        wick_dataset_free(d);
    }
    free(b);
    if (bad || !defined_status(s) || (s != WICK_OK && !wick_last_error()[0])) return -1;
    return (int)s;
}

/* The same file with its k-th allocation failing, k = 1..12 (the condition
 * under which fuzz_safetensors found jansson's lexer bug): the outcome of the
 * clean run or ENOMEM, never a partial result. */
static int parse_failing_allocs(const char *parser, const char *path, int clean) {
    size_t n = 0;
    uint8_t *b = chk_read_file(path, &n);
    int bad = !b;
    for (long k = 1; k <= 12 && !bad; k++) {
        wick_status s;
        int partial;
        wick_alloc_fail_at(k);
        if (strcmp(parser, "safetensors") == 0) {
            wick_st_file *f = NULL;
            s = wick_st_read_mem(path, b, n, &f);
            partial = s != WICK_OK && f;
            wick_st_free(f);
        } else if (strcmp(parser, "csv") == 0) {
            double *v = NULL;
            size_t r, c, first;
            s = wick_csv_read_mem(path, (const char *)b, n, 1, &v, &r, &c, &first);
            partial = s != WICK_OK && v;
            wick_free(v);
        } else {
            wick_idx *t = NULL;
            s = wick_idx_read(path, &t);
            partial = s != WICK_OK && t;
            wick_idx_free(t);
        }
        wick_alloc_fail_at(0);
        bad = partial || ((int)s != clean && s != WICK_ENOMEM);
    }
    free(b);
    return !bad;
}

static void replay(const char *parser) {
    char dir[256];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", parser);
    DIR *d = opendir(dir);
    if (!d) SKIP("fuzz/corpus not found (run from the repository root)");
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int s = parse_one(parser, path);
        files++;
        if (s >= 0 && !parse_failing_allocs(parser, path, s)) {
            FAIL("%s: bad outcome under allocation failure", path);
        }
        if (s < 0) {
            fprintf(stderr, "  %s: undefined behaviour of the parser (%s)\n", path, wick_last_error());
            CHECK(s >= 0);
        } else if (strncmp(e->d_name, "seed-good-", 10) == 0 && s != WICK_OK) {
            fprintf(stderr, "  %s: %s\n", path, wick_last_error());
            CHECK(s == WICK_OK);
        } else if (strncmp(e->d_name, "seed-bad-", 9) == 0) {
            CHECK(s != WICK_OK);
        }
    }
    closedir(d);
    CHECK(files >= 5);
}

/* model and resume: the harness's outcome for every file, and whether
 * it still loads ("seed-good-") or not ("seed-bad-"). */
static void replay_nn(const char *what, int (*one)(const uint8_t *, size_t)) {
    char dir[256];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", what);
    DIR *d = opendir(dir);
    if (!d) SKIP("fuzz/corpus not found (run from the repository root)");
    struct dirent *e;
    int files = 0;
    wick_set_threads(1);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n = 0;
        uint8_t *b = chk_read_file(path, &n);
        int r = b ? one(b, n) : -1;
        free(b);
        files++;
        int good = !strncmp(e->d_name, "seed-good-", 10), bad = !strncmp(e->d_name, "seed-bad-", 9);
        if (r < 0 || (good && r == 0) || (bad && r > 0)) {
            FAIL("%s: outcome %d (%s)", path, r, wick_last_error());
        }
    }
    closedir(d);
    wick_set_threads(0);
    CHECK(files >= 5);
}

static void test_corpus_safetensors(void) { replay("safetensors"); }
static void test_corpus_model(void) { replay_nn("model", fuzz_model_one); }
static void test_corpus_resume(void) { replay_nn("resume", fuzz_resume_one); }
static void test_corpus_idx(void) { replay("idx"); }
static void test_corpus_csv(void) { replay("csv"); }

int main(void) {
    RUN(test_corpus_safetensors);
    RUN(test_corpus_idx);
    RUN(test_corpus_csv);
    RUN(test_corpus_model);
    RUN(test_corpus_resume);
    return chk_finish();
}
