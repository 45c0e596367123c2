/* augment.c — data augmentation of image samples on the fly: random shifts
 * (a crop of the image padded with zeros), horizontal flips and small
 * rotations.  Every draw is Philox at (seed, stream, index) with the index
 * made of the sample's number and the draw's slot, so a sample's transform
 * depends on (seed, epoch, sample) only: not on the batch it lands in, the
 * thread that copies it, or the thread count.
 *
 * One inverse map per output pixel: flip, then shift, then rotation about the
 * image centre with bilinear interpolation (zeros outside).  Without a
 * rotation the map is integer and the copy exact. */
#include "core/core.h"
#include <math.h>
#include <string.h>

#define DRAWS 4   /* Philox draws a sample may use: shift y, shift x, flip, angle */

wick_status wick_augment_check(const wick_augment *a, int C, int H, int W) {
    if (!a) return WICK_OK;
    if (C < 1 || H < 1 || W < 1)
        return wick_fail(WICK_EINVAL, "augmentation needs image data (CxHxW), got %dx%dx%d", C, H, W);
    if (a->shift < 0 || a->shift >= H || a->shift >= W)
        return wick_fail(WICK_EINVAL, "augmentation: shift %d must be in [0, %d) for %dx%d images", a->shift,
                         H < W ? H : W, H, W);
    if (!(a->rotate >= 0 && a->rotate <= 180))
        return wick_fail(WICK_EINVAL, "augmentation: rotation %g degrees outside [0, 180]", a->rotate);
    return WICK_OK;
}

int wick_augment_active(const wick_augment *a) {
    return a && (a->shift > 0 || a->flip || a->rotate > 0);
}

void wick_augment_sample(const wick_augment *a, const float *src, float *dst, int C, int H, int W,
                         uint64_t seed, uint64_t stream, uint64_t sample) {
    size_t plane = (size_t)H * W;
    if (!wick_augment_active(a)) {
        memcpy(dst, src, C * plane * sizeof *dst);
        return;
    }
    uint64_t base = sample * DRAWS;
    int dy = 0, dx = 0, flip = 0;
    if (a->shift > 0) {
        int span = 2 * a->shift + 1;   /* uniform over -shift..shift */
        dy = (int)(wick_rand_uniform(seed, stream, base) * span) - a->shift;
        dx = (int)(wick_rand_uniform(seed, stream, base + 1) * span) - a->shift;
        if (dy > a->shift) dy = a->shift;   /* u < 1 always; guard the rounding anyway */
        if (dx > a->shift) dx = a->shift;
    }
    if (a->flip) flip = wick_rand_uniform(seed, stream, base + 2) < 0.5;
    double theta = a->rotate > 0 ? (2 * wick_rand_uniform(seed, stream, base + 3) - 1) * a->rotate * M_PI / 180 : 0;
    if (theta == 0) {
        for (int c = 0; c < C; c++) {
            const float *s = src + c * plane;
            float *d = dst + c * plane;
            for (int y = 0; y < H; y++) {
                int sy = y - dy;
                for (int x = 0; x < W; x++) {
                    int xf = flip ? W - 1 - x : x, sx = xf - dx;
                    d[(size_t)y * W + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? s[(size_t)sy * W + sx] : 0;
                }
            }
        }
        return;
    }
    /* output (y, x) <- flip, shift, then the rotation's inverse about the centre */
    double cy = (H - 1) / 2.0, cx = (W - 1) / 2.0, ct = cos(theta), st = sin(theta);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double py = (double)(y - dy) - cy, px = (double)((flip ? W - 1 - x : x) - dx) - cx;
            double sy = ct * py + st * px + cy, sx = -st * py + ct * px + cx;
            int y0 = (int)floor(sy), x0 = (int)floor(sx);
            double fy = sy - y0, fx = sx - x0;
            double w[4] = {(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx};
            int ys[4] = {y0, y0, y0 + 1, y0 + 1}, xs[4] = {x0, x0 + 1, x0, x0 + 1};
            for (int c = 0; c < C; c++) {
                const float *s = src + c * plane;
                double v = 0;
                for (int k = 0; k < 4; k++)
                    if (w[k] != 0 && ys[k] >= 0 && ys[k] < H && xs[k] >= 0 && xs[k] < W)
                        v += w[k] * s[(size_t)ys[k] * W + xs[k]];
                dst[c * plane + (size_t)y * W + x] = (float)v;
            }
        }
}
