/* test_check.c — the harness itself (check.h): FAIL fails a test and lets
 * it go on, SKIP in a helper ends the calling test as skipped (the caller
 * goes no further), a failure before a SKIP still counts as a failure, and
 * the counters add up.  The inner tests run through chk_run; their counts
 * are read and then replaced by this binary's own. */
#include "check.h"
#include <fcntl.h>

static int after_skip, after_fail;

static void helper_that_skips(void) { SKIP("the helper skips"); }

static void inner_skip_in_helper(void) {
    helper_that_skips();
    after_skip = 1;   /* must not run */
}

static void inner_fail(void) {
    FAIL("%s %d", "a message", 42);
    after_fail = 1;   /* FAIL goes on */
}

static void inner_fail_then_skip(void) {
    CHECK(1 == 2);
    helper_that_skips();
}

static void inner_pass(void) { CHECK(1 == 1); }

int main(void) {
    int ok = 1;
    /* the inner tests' own "FAIL" and "not ok" lines would read as this
       binary's: they go to /dev/null */
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    if (saved >= 0 && null >= 0) dup2(null, 2);
    chk_run("inner_skip_in_helper", inner_skip_in_helper);
    ok &= chk_skipped == 1 && chk_failed == 0 && chk_passed == 0 && !after_skip;
    chk_run("inner_fail", inner_fail);
    ok &= chk_failed == 1 && after_fail;
    chk_run("inner_fail_then_skip", inner_fail_then_skip);
    ok &= chk_failed == 2 && chk_skipped == 1;
    chk_run("inner_pass", inner_pass);
    ok &= chk_passed == 1 && chk_failed == 2 && chk_skipped == 1;
    fflush(stderr);
    if (saved >= 0 && null >= 0) { dup2(saved, 2); close(saved); close(null); }
    /* this binary's own result: one test, the above */
    fprintf(stderr, "%s harness: FAIL, SKIP from a helper, counters\n", ok ? "ok    " : "not ok");
    if (!ok) fprintf(stderr, "  FAIL harness: passed %d failed %d skipped %d after_skip %d after_fail %d\n",
                     chk_passed, chk_failed, chk_skipped, after_skip, after_fail);
    printf("RESULT %d %d 0\n", ok, !ok);
    return ok ? 0 : 1;
}
