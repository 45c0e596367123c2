/* test_augment.c — data augmentation: shifts and flips against a brute-force
 * re-indexing, rotations against the closed form (bilinear interpolation
 * reproduces a linear ramp exactly, and a quarter turn of a square image is
 * a transpose and a flip), determinism per (seed, stream, sample), the draws'
 * distribution, and the argument checks. */
#include "check.h"
#include <math.h>
#include <string.h>

static void ramp(float *x, int C, int H, int W) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int v = 0; v < W; v++) x[(c * H + y) * W + v] = (float)(1 + c * 1000 + y * 31 + v);
}

/* Recovers (dy, dx, flip) of an integer transform by trying every one. */
static int find_transform(const float *src, const float *dst, int C, int H, int W, int shift, int *fdy, int *fdx,
                          int *fflip) {
    int found = 0;
    for (int flip = 0; flip < 2; flip++)
        for (int dy = -shift; dy <= shift; dy++)
            for (int dx = -shift; dx <= shift; dx++) {
                int same = 1;
                for (int c = 0; c < C && same; c++)
                    for (int y = 0; y < H && same; y++)
                        for (int x = 0; x < W && same; x++) {
                            int sx = (flip ? W - 1 - x : x) - dx, sy = y - dy;
                            float want = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[(c * H + sy) * W + sx] : 0;
                            same = dst[(c * H + y) * W + x] == want;
                        }
                if (same) { *fdy = dy; *fdx = dx; *fflip = flip; found++; }
            }
    return found;
}

static void test_shift_and_flip_are_reindexings(void) {
    int C = 2, H = 7, W = 9;
    float src[2 * 7 * 9], dst[2 * 7 * 9];
    ramp(src, C, H, W);
    wick_augment a = {.shift = 2, .flip = 1};
    int seen[5][5][2] = {{{0}}};
    for (uint64_t s = 0; s < 400; s++) {
        wick_augment_sample(&a, src, dst, C, H, W, 7, 3, s);
        int dy, dx, flip;
        int n = find_transform(src, dst, C, H, W, 2, &dy, &dx, &flip);
        CHECK(n == 1);   /* the ramp has distinct values: exactly one transform matches */
        if (n == 1) seen[dy + 2][dx + 2][flip]++;
    }
    /* every one of the 50 transforms occurs, none far from 400/50 = 8 */
    int lo = 1000, hi = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            for (int f = 0; f < 2; f++) {
                lo = seen[i][j][f] < lo ? seen[i][j][f] : lo;
                hi = seen[i][j][f] > hi ? seen[i][j][f] : hi;
            }
    CHECK(lo >= 1 && hi <= 25);
}

static void test_same_draw_same_transform(void) {
    int C = 1, H = 12, W = 12;
    float src[144], a1[144], a2[144], b[144];
    ramp(src, C, H, W);
    wick_augment a = {.shift = 3, .flip = 1, .rotate = 15};
    wick_augment_sample(&a, src, a1, C, H, W, 11, 5, 123);
    wick_augment_sample(&a, src, a2, C, H, W, 11, 5, 123);
    CHECK(!memcmp(a1, a2, sizeof a1));
    /* another sample number, stream or seed: another transform (with these draws) */
    wick_augment_sample(&a, src, b, C, H, W, 11, 5, 124);
    CHECK(memcmp(a1, b, sizeof a1) != 0);
    wick_augment_sample(&a, src, b, C, H, W, 11, 6, 123);
    CHECK(memcmp(a1, b, sizeof a1) != 0);
    wick_augment_sample(&a, src, b, C, H, W, 12, 5, 123);
    CHECK(memcmp(a1, b, sizeof a1) != 0);
    /* off: an exact copy */
    wick_augment off = {0};
    wick_augment_sample(&off, src, b, C, H, W, 11, 5, 123);
    CHECK(!memcmp(src, b, sizeof b));
    wick_augment_sample(NULL, src, b, C, H, W, 11, 5, 123);
    CHECK(!memcmp(src, b, sizeof b));
}

/* Bilinear interpolation of f(y, x) = p y + q x + r is exact, so a rotated
 * ramp at a pixel whose four neighbours lie inside is the ramp at the
 * rotated point; the angle is recovered from two pixels and must lie in
 * [-rotate, rotate]. */
static void test_rotation_of_a_ramp_is_exact(void) {
    int H = 21, W = 21;
    float src[21 * 21], dst[21 * 21];
    double p = 0.7, q = -0.3, r = 5;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) src[y * W + x] = (float)(p * y + q * x + r);
    wick_augment a = {.rotate = 20};
    double cy = 10, cx = 10;
    int checked = 0;
    for (uint64_t s = 0; s < 20; s++) {
        wick_augment_sample(&a, src, dst, 1, H, W, 1, 2, s);
        /* the angle from the gradient along x at the centre row: f(sy, sx), with
           d sy/dx = st, d sx/dx = ct: df/dx = p st + q ct */
        double best = NAN, err = 1e9;
        for (double th = -20; th <= 20; th += 0.001) {
            double t = th * M_PI / 180;
            double gx = p * sin(t) + q * cos(t);
            double e = fabs((dst[10 * W + 11] - dst[10 * W + 9]) / 2 - gx);
            if (e < err) { err = e; best = t; }
        }
        CHECK(err < 1e-4);
        double ct = cos(best), st = sin(best);
        for (int y = 6; y <= 14; y++)
            for (int x = 6; x <= 14; x++) {
                double py = y - cy, px = x - cx;
                double sy = ct * py + st * px + cy, sx = -st * py + ct * px + cx;
                CHECK_NEAR(dst[y * W + x], p * sy + q * sx + r, 2e-3);
                checked++;
            }
    }
    CHECK(checked == 20 * 81);
}

static void test_quarter_turn_is_a_transpose(void) {
    /* With rotate = 180 the angle is (2u - 1) 180 degrees: find a sample whose
       draw is within 1e-3 degrees of +-90, where a square image's pixels map
       onto pixels (error 1e-3 degrees x the radius, far below 0.5). */
    int H = 9, W = 9;
    float src[81], dst[81];
    ramp(src, 1, H, W);
    wick_augment a = {.rotate = 180};
    int found = 0;
    for (uint64_t s = 0; s < 4000000 && !found; s++) {
        double u = wick_rand_uniform(3, 4, s * 4 + 3), deg = (2 * u - 1) * 180;
        if (fabs(fabs(deg) - 90) > 1e-3) continue;
        wick_augment_sample(&a, src, dst, 1, H, W, 3, 4, s);
        /* +90: out(y, x) = in(x, W-1-y) up to the 1e-3 degree error times the radius */
        int ok = 1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float w1 = src[x * W + (W - 1 - y)], w2 = src[(H - 1 - x) * W + y];
                float d = dst[y * W + x];
                ok &= fabsf(d - (deg > 0 ? w1 : w2)) < 0.5f;
            }
        CHECK(ok);
        found = 1;
    }
    if (!found) SKIP("no draw within 1e-3 degrees of a quarter turn");
}

static void test_bad_arguments(void) {
    wick_augment a = {.shift = 28};
    CHECK_FAILS(wick_augment_check(&a, 1, 28, 28), WICK_EINVAL, "shift 28 must be in [0, 28)");
    a = (wick_augment){.rotate = 200};
    CHECK_FAILS(wick_augment_check(&a, 1, 28, 28), WICK_EINVAL, "rotation 200 degrees");
    a = (wick_augment){.rotate = NAN};
    CHECK_FAILS(wick_augment_check(&a, 1, 28, 28), WICK_EINVAL, "rotation");
    a = (wick_augment){.shift = 2};
    CHECK_FAILS(wick_augment_check(&a, 784, 0, 0), WICK_EINVAL, "needs image data");
    CHECK_OK(wick_augment_check(&a, 1, 28, 28));
    CHECK_OK(wick_augment_check(NULL, 784, 0, 0));
}

int main(void) {
    RUN(test_shift_and_flip_are_reindexings);
    RUN(test_same_draw_same_transform);
    RUN(test_rotation_of_a_ramp_is_exact);
    RUN(test_quarter_turn_is_a_transpose);
    RUN(test_bad_arguments);
    return chk_finish();
}
