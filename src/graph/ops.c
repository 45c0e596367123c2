/* ops.c — instantiates ops_impl.h for float and double and dispatches on the
 * graph's dtype: one source per op, two precisions. */
#include "graph/graph_internal.h"
#include "backend/kernel.h"
#include <omp.h>
#include <string.h>
#include <tgmath.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* glibc (2.35+) ships 8-wide AVX2 versions of these in libmvec, within 4 ulp;
 * its headers declare them SIMD only under -ffast-math, which would also drop
 * NaN checks.  Declaring them here lets the vectoriser call them in the float
 * activation loops (tanh, sigmoid, GELU, ...) and nowhere else. */
#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float sinf(float);
__attribute__((simd("notinbranch"))) float cosf(float);
__attribute__((simd("notinbranch"))) float log1pf(float);
__attribute__((simd("notinbranch"))) float erff(float);
#endif

/* ---- shared by both precisions ----------------------------------------- */

/* A convolution's (or pooling's) geometry with the defaults filled in. */
typedef struct {
    int C, H, W, OUT, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, G;
} conv_geo;

static conv_geo conv_geo_of(const wick_graph *g, const node *nd) {
    const node *x = &g->nodes[nd->in[0]];
    const wick_conv2d_params *k = &nd->conv;
    return (conv_geo){x->C, x->H, x->W, nd->C, nd->H, nd->W, k->kh, k->kw, k->stride_h, k->stride_w,
                      k->pad_h, k->pad_w, k->dil_h, k->dil_w, k->groups};
}

/* The outputs ox in [lo, hi) whose input column ox*s + off lies in [0, W). */
static void conv_valid(int off, int s, int W, int OW, int *lo, int *hi) {
    int a = off >= 0 ? 0 : (-off + s - 1) / s;
    int b = W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1;
    *lo = a < OW ? a : OW;
    *hi = b < OW ? b : OW;
    if (*hi < *lo) *hi = *lo;
}

/* 1x1 at stride 1 without padding: the input is its own column matrix. */
static int conv_is_pointwise(const conv_geo *q) {
    return q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
}

/* One input channel per group and few outputs per group: direct loops
 * (ops_impl.h dw_sample).  With one input channel and 32 outputs (a first
 * layer on grey images) the BLAS product is faster (bench, one thread). */
static int conv_is_depthwise(const conv_geo *q) { return q->C == q->G && q->OUT / q->G <= 4; }

int op_conv_planned(const wick_graph *g, const node *nd) {
    if (nd->op != OP_CONV2D || g->dt != WICK_DT_F32 || g->conv_general) return 0;
    conv_geo q = conv_geo_of(g, nd);
    return !conv_is_depthwise(&q);
}

/* The float weight gradient of an ungrouped conv on wick's kernel (ops_impl.h
 * conv_dw_kern), without the column matrix of the BLAS product:
 *  - SHIFT (stride 1, at least 16 input channels): with the input padded and
 *    its channels last, and one copy of it for each kernel column j holding
 *    the columns under that tap (rows of OW), each tap (i, j) reads copy j as
 *    one matrix shifted by i OW rows, so dW[:, :, i, j] is one product of dy
 *    as it is and that shifted view;
 *  - ROWS (C kh kw < 16: a first layer on grey images): the patches as rows,
 *    [OH OW, 16], one product with dy, instead of a BLAS product whose output
 *    is 9 wide; a column of ones beside them gives db in the same product.
 * Measured against the BLAS product in bench/README.md ("The weight gradient
 * on wick's kernel"). */
enum { CONV_DW_GEMM = 0, CONV_DW_SHIFT, CONV_DW_ROWS };
static int conv_dw_mode(const wick_graph *g, const conv_geo *q) {
    if (g->dt != WICK_DT_F32 || g->conv_general || q->G != 1 || conv_is_depthwise(q) || !wick_kern_ok())
        return CONV_DW_GEMM;
    if (q->sh == 1 && q->sw == 1 && q->C >= 16) return CONV_DW_SHIFT;
    if (q->C * q->kh * q->kw < 16) return CONV_DW_ROWS;
    return CONV_DW_GEMM;
}

/* SHIFT's buffers: the padded input, channels last in panels of 16,
 * ceil(C/16) x Hp Wp x 16, and for each kernel column j its columns
 * j dw .. j dw + OW - 1, kw x ceil(C/16) x Hp OW x 16 (conv_dw_kern). */
static size_t conv_shift_x_elems(const conv_geo *q) {
    return (size_t)(q->C + 15) / 16 * 16 * (q->H + 2 * q->ph) * (q->W + 2 * q->pw);
}
static size_t conv_shift_cols_elems(const conv_geo *q) {
    return (size_t)q->kw * (q->C + 15) / 16 * 16 * (q->H + 2 * q->ph) * q->OW;
}

/* One thread's scratch: the column matrix and its gradient, C*kh*kw x P each;
 * for an ungrouped conv, at least twice what conv_dw_kern takes. */
static size_t conv_slot_elems(const conv_geo *q) {
    size_t e = (size_t)q->C * q->kh * q->kw * q->OH * q->OW;
    if (q->G == 1) {
        size_t sh = conv_shift_x_elems(q) + conv_shift_cols_elems(q) + 16;
        size_t rw = (size_t)q->OH * q->OW * 16;
        if (sh > e) e = sh;
        if (rw > e) e = rw;
    }
    return 2 * ((e + 15) & ~(size_t)15);
}

/* A batch norm fused with its pool (bn_pool): one thread's plane of H*W
 * values or gradients, and 16 more that the pool's eight-wide loop may read
 * past a short last row (ops_impl.h maxpool22_plane). */
static size_t bn_pool_slot(const node *nd) { return ((size_t)nd->H * nd->W + 16 + 15) & ~(size_t)15; }
/* bn_fwd_blk's planes: a channel's H*W, to a multiple of 8; its room after
 * bn_pool_slot: 8 such planes, or blk_pool8's 3 x 8 pooled planes. */
static size_t bn_blk_ld(const node *nd) { return ((size_t)nd->H * nd->W + 7) & ~(size_t)7; }
static size_t bn_blk_room(const node *nd) { return 8 * bn_blk_ld(nd) + 192; }

/* The weight gradient's chunks of samples: a function of the batch alone, so
 * the sums do not depend on the thread count. */
#define CONV_CHUNKS 16
static int conv_chunks(int batch) { return batch < CONV_CHUNKS ? batch : CONV_CHUNKS; }

/* Threads for `items` samples or chunks: no more than the scratch has slots
 * for, and one where the work is too small to share. */
static int conv_threads(const wick_graph *g, const conv_geo *q, int items) {
    int nt = omp_get_max_threads();
    if (nt > g->scratch_threads) nt = g->scratch_threads;
    if (nt > items) nt = items;
    double flops = 2.0 * items * q->OUT * q->OH * q->OW * (q->C / q->G) * q->kh * q->kw;
    return flops < 2e5 || nt < 1 ? 1 : nt;
}

/* Philox4x32-10 blocks blk0 .. blk0 + RAND_LANES - 1 of node `id` at step
 * `step`: out[w][l] is word w of block blk0 + l.  The same function as
 * wick_philox4x32 with counter (blk, id, step lo, step hi) and key seed,
 * written lane-wise so that the rounds vectorise (tests/test_graph_conv.c
 * checks it against wick_philox4x32). */
#define RAND_LANES 8
#ifdef __AVX2__
/* The eight lanes in one register each word: the 32 x 32 -> 64-bit products
 * of the even lanes and of the odd ones (shifted down), their halves
 * blended back into place (what gcc made of the loop below took four times
 * as long: dropout's forward was 1.1 ms a step of the CNN). */
static inline void mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

static void rand_lanes(uint64_t seed, uint64_t step, int id, uint64_t blk0, uint32_t out[4][RAND_LANES]) {
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)blk0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32(id), c2 = _mm256_set1_epi32((int)(uint32_t)step);
    __m256i c3 = _mm256_set1_epi32((int)(uint32_t)(step >> 32));
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i h0, l0, h1, l1;
        mulhilo8(c0, m0, &h0, &l0);
        mulhilo8(c2, m1, &h1, &l1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), _mm256_set1_epi32((int)k0));
        c2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), _mm256_set1_epi32((int)k1));
        c1 = l1;
        c3 = l0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256((__m256i *)out[0], c0);
    _mm256_storeu_si256((__m256i *)out[1], c1);
    _mm256_storeu_si256((__m256i *)out[2], c2);
    _mm256_storeu_si256((__m256i *)out[3], c3);
}
#else
static void rand_lanes(uint64_t seed, uint64_t step, int id, uint64_t blk0, uint32_t out[4][RAND_LANES]) {
    uint32_t c0[RAND_LANES], c1[RAND_LANES], c2[RAND_LANES], c3[RAND_LANES];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int l = 0; l < RAND_LANES; l++) {
        c0[l] = (uint32_t)(blk0 + l);
        c1[l] = (uint32_t)id;
        c2[l] = (uint32_t)step;
        c3[l] = (uint32_t)(step >> 32);
    }
    for (int r = 0; r < 10; r++) {
        _Pragma("omp simd")
        for (int l = 0; l < RAND_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int l = 0; l < RAND_LANES; l++) out[0][l] = c0[l], out[1][l] = c1[l], out[2][l] = c2[l], out[3][l] = c3[l];
}
#endif

/* The least 32-bit word u that dropout keeps: (u + 1/2) / 2^32 >= p. */
static uint64_t keep_threshold(double p) {
    double t = ceil(p * 4294967296.0 - 0.5);
    return t <= 0 ? 0 : t >= 4294967296.0 ? (uint64_t)1 << 32 : (uint64_t)t;
}

/* Dropout's keep bits of the groups gi .. gi + 3 (groups of 4 RAND_LANES
 * elements: element 4 L g + L w + l takes word w of Philox block L g + l,
 * ops_impl.h dropout_fwd): bit L w + l of bits[j] is set when that element
 * of group gi + j is kept, its word u >= t32 (none: p = 1, nothing kept).
 * The same words as rand_lanes, four groups' rounds interleaved: one
 * group's ten rounds are a chain of dependent products, and rand_lanes
 * group after group left the vector units half idle (bench/README.md,
 * "Dropout's draws"). */
static void drop_bits4(uint64_t seed, uint64_t step, int id, uint64_t gi, uint32_t t32, int none, uint32_t bits[4]) {
#ifdef __AVX2__
    __m256i c0[4], c1[4], c2[4], c3[4];
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    for (int j = 0; j < 4; j++) {
        c0[j] = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)((gi + j) * RAND_LANES)),
                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        c1[j] = _mm256_set1_epi32(id);
        c2[j] = _mm256_set1_epi32((int)(uint32_t)step);
        c3[j] = _mm256_set1_epi32((int)(uint32_t)(step >> 32));
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i K0 = _mm256_set1_epi32((int)k0), K1 = _mm256_set1_epi32((int)k1);
        for (int j = 0; j < 4; j++) {
            __m256i h0, l0, h1, l1;
            mulhilo8(c0[j], m0, &h0, &l0);
            mulhilo8(c2[j], m1, &h1, &l1);
            c0[j] = _mm256_xor_si256(_mm256_xor_si256(h1, c1[j]), K0);
            c2[j] = _mm256_xor_si256(_mm256_xor_si256(h0, c3[j]), K1);
            c1[j] = l1;
            c3[j] = l0;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const __m256i t = _mm256_set1_epi32((int)t32);
    for (int j = 0; j < 4; j++) {
        __m256i w[4] = {c0[j], c1[j], c2[j], c3[j]};
        uint32_t b = 0;
        for (int k = 0; k < 4; k++) {   /* u >= t32 unsigned: max(u, t32) == u */
            __m256i ge = _mm256_cmpeq_epi32(_mm256_max_epu32(w[k], t), w[k]);
            b |= (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(ge)) << (RAND_LANES * k);
        }
        bits[j] = none ? 0 : b;
    }
#else
    for (int j = 0; j < 4; j++) {
        uint32_t r[4][RAND_LANES], b = 0;
        rand_lanes(seed, step, id, (gi + j) * RAND_LANES, r);
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < RAND_LANES; l++) b |= (uint32_t)(r[k][l] >= t32) << (RAND_LANES * k + l);
        bits[j] = none ? 0 : b;
    }
#endif
}

/* 32 random bits to a uniform in (0, 1). */
static double unit32(uint32_t r) { return ((double)r + 0.5) * (1.0 / 4294967296.0); }

/* Four standard normals from four uniforms, two Box-Muller pairs. */
static void box_muller(const uint32_t r[4], double z[4]) {
    for (int k = 0; k < 4; k += 2) {
        double rad = sqrt(-2.0 * log(unit32(r[k]))), th = 6.283185307179586477 * unit32(r[k + 1]);
        z[k] = rad * cos(th);
        z[k + 1] = rad * sin(th);
    }
}

#ifdef __AVX2__
#define WICK_BNP_AVX2 1
/* A conv's values in nChw8c (conv_blk, val_blk): the 8 channel planes of
 * one sample's block, blk [HW][8], into pl[k ld + p] (ld >= HW), with 8 x 8
 * register transposes as conv.c's xpose_run (wick_xpose8): a copy, so a batch
 * norm that reads them there computes on the same values in the same order. */
static void blk_planes(const float *blk, int HW, int ld, float *pl) {
    int p = 0;
    for (; p + 8 <= HW; p += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(blk + (size_t)(p + k) * 8);
        wick_xpose8(r);
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(pl + (size_t)k * ld + p, r[k]);
    }
    for (; p < HW; p++)
        for (int k = 0; k < 8; k++) pl[(size_t)k * ld + p] = blk[(size_t)p * 8 + k];
}

/* blk_planes' inverse: 8 planes pl[k ld + p] into blk [HW][8] (x_blk: the
 * pool's values for the conv that reads them in nChw8c), a copy. */
static void planes_blk(const float *pl, int HW, int ld, float *blk) {
    int p = 0;
    for (; p + 8 <= HW; p += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(pl + (size_t)k * ld + p);
        wick_xpose8(r);
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(blk + (size_t)(p + k) * 8, r[k]);
    }
    for (; p < HW; p++)
        for (int k = 0; k < 8; k++) blk[(size_t)p * 8 + k] = pl[(size_t)k * ld + p];
}

/* ops_impl.h seg_sum of 8 channels' planes at once, read in nChw8c (blk
 * [HW][8], HW >= 32), s[k] += channel k's sum (sq: of (x - m8[k])^2): each
 * channel's terms added in seg_sum's order (four chains of eight lanes over
 * runs of 32, the rest of the runs of 8 into chain 0, the chains paired, the
 * lanes in turn, then the tail), the channels across the vector's lanes:
 * the same bits as seg_sum on each plane, with no transpose. */
static void blk_seg_sum8(const float *blk, int HW, int sq, const float *m8, double *s) {
    __m256 acc[4][8], mv = _mm256_loadu_ps(m8), t = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 8; l++) acc[j][l] = _mm256_setzero_ps();
    int p = 0;
    for (; p + 32 <= HW; p += 32)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 8; l++) {
                __m256 v = _mm256_loadu_ps(blk + (size_t)(p + 8 * j + l) * 8);
                if (sq) {
                    v = _mm256_sub_ps(v, mv);
                    acc[j][l] = _mm256_fmadd_ps(v, v, acc[j][l]);
                } else {
                    acc[j][l] = _mm256_add_ps(acc[j][l], v);
                }
            }
    for (; p + 8 <= HW; p += 8)
        for (int l = 0; l < 8; l++) {
            __m256 v = _mm256_loadu_ps(blk + (size_t)(p + l) * 8);
            if (sq) {
                v = _mm256_sub_ps(v, mv);
                acc[0][l] = _mm256_fmadd_ps(v, v, acc[0][l]);
            } else {
                acc[0][l] = _mm256_add_ps(acc[0][l], v);
            }
        }
    for (int l = 0; l < 8; l++)
        t = _mm256_add_ps(t, _mm256_add_ps(_mm256_add_ps(acc[0][l], acc[1][l]), _mm256_add_ps(acc[2][l], acc[3][l])));
    for (; p < HW; p++) {   /* seg_sum's scalar tail: a product, then the add */
        __m256 v = _mm256_loadu_ps(blk + (size_t)p * 8);
        if (sq) {
            v = _mm256_sub_ps(v, mv);
            v = _mm256_mul_ps(v, v);
        }
        t = _mm256_add_ps(t, v);
    }
    float r[8];
    _mm256_storeu_ps(r, t);
    for (int k = 0; k < 8; k++) s[k] += r[k];
}

/* bn_fwd's output pass (normalise, ReLU, 2x2 stride-2 max pool, x at each
 * argmax) for one sample's block of 8 channels read in nChw8c (blk [H W][8]),
 * the channels across the vector's lanes: each value computed by bn_fwd's
 * operations, each window's four taps taken by maxpool22_eight's rule, so
 * the same bits; the pooled values, argmax (counted from the sample's start,
 * channel c's plane at c H W) and xa go to the 8 channels' NCHW planes of P
 * values, ld = P apart, through transposes of tmp (3 x 8 x ((P + 7) & ~7)
 * floats). */
static void blk_pool8(const float *blk, int H, int W, int OH, int OW, int c0, const float *m_, const float *is_,
                      const float *ga_, const float *be_, float *y, int32_t *arg, float *xa, float *tmp) {
    int P = OH * OW, HW = H * W, ld = (P + 7) & ~7;
    float *tv = tmp, *tx = tmp + (size_t)8 * ld;
    int32_t *ti = (int32_t *)(tmp + (size_t)16 * ld);
    __m256 m = _mm256_loadu_ps(m_), is = _mm256_loadu_ps(is_), ga = _mm256_loadu_ps(ga_), be = _mm256_loadu_ps(be_);
    __m256 z = _mm256_setzero_ps(), ninf = _mm256_set1_ps(-INFINITY);
    __m256i base = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32(c0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                      _mm256_set1_epi32(HW));
#define BLK_TAP(q, xv, v)                                                                          \
    do {                                                                                           \
        xv = _mm256_loadu_ps(blk + (size_t)(q) * 8);                                                \
        v = _mm256_add_ps(_mm256_mul_ps(ga, _mm256_mul_ps(_mm256_sub_ps(xv, m), is)), be);          \
        v = _mm256_and_ps(_mm256_cmp_ps(v, z, _CMP_GT_OQ), v);   /* act_fwd's ReLU: NaN -> 0 */   \
    } while (0)
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int k = 2 * oy * W + 2 * ox, t = oy * OW + ox;
            __m256 xa_, xb, xc, xd, a, b, c2, d;
            BLK_TAP(k, xa_, a);
            BLK_TAP(k + 1, xb, b);
            BLK_TAP(k + W, xc, c2);
            BLK_TAP(k + W + 1, xd, d);
            __m256 tb = _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_GT_OQ), _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
            __m256 td = _mm256_or_ps(_mm256_cmp_ps(d, c2, _CMP_GT_OQ), _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
            __m256 u = _mm256_blendv_ps(a, b, tb), l = _mm256_blendv_ps(c2, d, td);
            __m256 xu = _mm256_blendv_ps(xa_, xb, tb), xl = _mm256_blendv_ps(xc, xd, td);
            __m256i kk = _mm256_add_epi32(base, _mm256_set1_epi32(k));
            __m256i iu = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(kk),
                                             _mm256_castsi256_ps(_mm256_add_epi32(kk, _mm256_set1_epi32(1))), tb));
            __m256i kw = _mm256_add_epi32(kk, _mm256_set1_epi32(W));
            __m256i il = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(kw),
                                             _mm256_castsi256_ps(_mm256_add_epi32(kw, _mm256_set1_epi32(1))), td));
            __m256 tl = _mm256_or_ps(_mm256_cmp_ps(l, u, _CMP_GT_OQ), _mm256_cmp_ps(l, l, _CMP_UNORD_Q));
            __m256 mx = _mm256_blendv_ps(u, l, tl), xm = _mm256_blendv_ps(xu, xl, tl);
            __m256 im = _mm256_blendv_ps(_mm256_castsi256_ps(iu), _mm256_castsi256_ps(il), tl);
            __m256 none = _mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ);   /* all four -inf: no gradient, xa 0 */
            _mm256_storeu_ps(tv + (size_t)t * 8, mx);
            _mm256_storeu_ps((float *)ti + (size_t)t * 8, _mm256_or_ps(im, none));   /* -1: all bits set */
            _mm256_storeu_ps(tx + (size_t)t * 8, _mm256_andnot_ps(none, xm));
        }
#undef BLK_TAP
    /* [P][8] -> 8 planes of P: blk_planes reads 8 positions at a time */
    blk_planes(tv, P, P, y);
    blk_planes((const float *)ti, P, P, (float *)arg);
    blk_planes(tx, P, P, xa);
}

void op_conv_unblock(wick_graph *g, node *nd) {
    /* a sample at a time through the scratch (op_scratch_bytes keeps a
       sample's room for a conv_blk conv): off the training step's path */
    int C = nd->C, HW = nd->cols / C;
    float *t = g->scratch;
    for (int n = 0; n < nd->rows; n++) {
        float *v = (float *)nd->val + (size_t)n * nd->cols;
        for (int cb = 0; cb < C / 8; cb++) blk_planes(v + (size_t)cb * 8 * HW, HW, HW, t + (size_t)cb * 8 * HW);
        memcpy(v, t, (size_t)nd->cols * sizeof *v);
    }
    nd->val_blk = 0;
}

void op_pool_grad_unblock(wick_graph *g, node *nd) {
    /* a sample at a time through the scratch, as op_conv_unblock */
    int C = nd->C, HW = nd->cols / C;
    float *t = g->scratch;
    for (int n = 0; n < nd->rows; n++) {
        float *v = (float *)nd->grad + (size_t)n * nd->cols;
        for (int cb = 0; cb < C / 8; cb++) blk_planes(v + (size_t)cb * 8 * HW, HW, HW, t + (size_t)cb * 8 * HW);
        memcpy(v, t, (size_t)nd->cols * sizeof *v);
    }
    nd->grad_blk = 0;
}

void op_conv_dy_unblock(wick_graph *g, node *nd) {
    (void)g;
    int C = nd->C, HW = nd->cols / C;
    _Pragma("omp parallel for schedule(static) if ((size_t)nd->rows * nd->cols > 32768)")
    for (int n = 0; n < nd->rows; n++)
        for (int cb = 0; cb < C / 8; cb++) {
            size_t o = (size_t)n * nd->cols + (size_t)cb * 8 * HW;
            blk_planes((const float *)nd->aux + o, HW, HW, (float *)nd->grad + o);
        }
    nd->grad_blk = 1;
}
/* A batch norm fused with its ReLU and 2x2 stride-2 max pool (bn_pool), its
 * backward in float, eight pooled outputs at a time: the pool's gradient gp,
 * argmax ap and, kept by bn_fwd, x at the argmax xa (P of each), the
 * gradient kept where the batch norm's output there, ga ((x - m) is) + be,
 * is positive (the ReLU's mask, computed as bn_fwd computed it).  The
 * scalar loops they replace gathered x from the whole plane and branched on
 * that mask for every pooled output (bench/README.md, "The batch norm + pool
 * backward"). */
static inline __m256 bnp_dy8(const float *gp, const int32_t *ap, const float *xa, int P, int t, __m256 m,
                             __m256 is, __m256 ga, __m256 be, __m256 *xm) {
    __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(P - t), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i a8 = _mm256_maskload_epi32(ap + t, lanes);
    /* the argmax is -1 for a window of -inf only: no gradient */
    __m256 ok = _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), a8), lanes));
    *xm = _mm256_sub_ps(_mm256_maskload_ps(xa + t, lanes), m);
    __m256 v = _mm256_add_ps(_mm256_mul_ps(ga, _mm256_mul_ps(*xm, is)), be);
    __m256 keep = _mm256_and_ps(ok, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
    /* + 0: a -0 gradient counts as +0, as the ops apart give it */
    return _mm256_add_ps(_mm256_and_ps(keep, _mm256_maskload_ps(gp + t, lanes)), _mm256_setzero_ps());
}

/* bn_fwd's side of it: xa = x at each argmax (0 where there is none), from
 * the plane x starting at `base`. */
static void bnp_xa_avx2(const float *x, const int32_t *ap, int P, int base, float *xa) {
    int t = 0;
    for (; t + 8 <= P; t += 8) {
        __m256i a8 = _mm256_loadu_si256((const __m256i *)(ap + t));
        __m256i ok = _mm256_cmpgt_epi32(a8, _mm256_set1_epi32(-1));
        __m256i idx = _mm256_and_si256(_mm256_sub_epi32(a8, _mm256_set1_epi32(base)), ok);
        _mm256_storeu_ps(xa + t, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), x, idx, _mm256_castsi256_ps(ok), 4));
    }
    for (; t < P; t++) xa[t] = ap[t] >= 0 ? x[ap[t] - base] : 0;
}

static float bnp_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* The plane's sums of dy and dy (x - m), dy the ReLU's input gradient. */
static void bnp_sums_avx2(const float *gp, const int32_t *ap, const float *xa, int P, float m_, float is_,
                          float ga_, float be_, float *sa, float *sb) {
    __m256 m = _mm256_set1_ps(m_), is = _mm256_set1_ps(is_), ga = _mm256_set1_ps(ga_), be = _mm256_set1_ps(be_);
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), xm;
    for (int t = 0; t < P; t += 8) {
        __m256 d = bnp_dy8(gp, ap, xa, P, t, m, is, ga, be, &xm);
        a = _mm256_add_ps(a, d);
        b = _mm256_add_ps(b, _mm256_mul_ps(d, xm));
    }
    *sa = bnp_hsum(a);
    *sb = bnp_hsum(b);
}

/* dx = k (dy - a - (x - m) is bq) over the plane x of HW (stored, not added:
 * acc takes the scalar loop): the zero-dy value everywhere, then the argmax
 * positions (ap - base in the plane) rewritten, where the ReLU was off with
 * the same value again. */
static void bnp_dx_avx2(const float *x, const float *gp, const int32_t *ap, const float *xa, int HW, int P,
                        int base, float m_, float is_, float ga_, float be_, float k_, float a_, float bq_,
                        float *dx) {
    __m256 m = _mm256_set1_ps(m_), is = _mm256_set1_ps(is_), ga = _mm256_set1_ps(ga_), be = _mm256_set1_ps(be_);
    __m256 k = _mm256_set1_ps(k_), a = _mm256_set1_ps(a_), bq = _mm256_set1_ps(bq_), xm;
    int p = 0;
    for (; p + 8 <= HW; p += 8) {
        __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + p), m), is);
        _mm256_storeu_ps(dx + p, _mm256_mul_ps(k, _mm256_sub_ps(_mm256_sub_ps(_mm256_setzero_ps(), a),
                                                                 _mm256_mul_ps(xh, bq))));
    }
    for (; p < HW; p++) dx[p] = k_ * ((float)0 - a_ - ((x[p] - m_) * is_) * bq_);
    dx -= base;
    for (int t = 0; t < P; t += 8) {
        __m256 d = bnp_dy8(gp, ap, xa, P, t, m, is, ga, be, &xm);
        __m256 r = _mm256_mul_ps(k, _mm256_sub_ps(_mm256_sub_ps(d, a), _mm256_mul_ps(_mm256_mul_ps(xm, is), bq)));
        float r8[8];
        _mm256_storeu_ps(r8, r);
        int n = P - t < 8 ? P - t : 8;
        for (int l = 0; l < n; l++)
            if (ap[t + l] >= 0) dx[ap[t + l]] = r8[l];
    }
}

/* ---- a first conv and its batch norm in one pass (c1_fuse) ---------------
 * One grey input channel, 3x3, stride 1, pad 1: the conv's output plane o is
 * b_o + sum_k W_ok T_k over the nine tap planes T_k of a sample (its image
 * shifted by each tap, zero outside), so the batch norm's mean and variance
 * of channel o are those of a linear map of the patches: W_o pbar + b_o and
 * W_o Cov W_o^T, from the patches' sums and 9x9 Gram over the batch
 * (ops_impl.h c1_fwd).  The planes are then computed a sample at a time in
 * registers (c1_pool; or in a thread's scratch, c1_plane) and go straight
 * into the batch norm, ReLU and pool:
 * the conv's output (12.8 MB for the conv1 at batch 128) is never
 * written nor read back (bench/README.md, "conv1 + batch norm 1 forward in
 * one pass"). */
static int c1_geo(const conv_geo *q) {
    return q->C == 1 && q->G == 1 && q->kh == 3 && q->kw == 3 && q->sh == 1 && q->sw == 1 && q->ph == 1 &&
           q->pw == 1 && q->dh == 1 && q->dw == 1 && q->OH == q->H && q->OW == q->W && q->W >= 2 &&
           q->H % 2 == 0 && q->W % 2 == 0 && (q->H * q->W) % 8 == 0;
}

/* The nine tap planes of image x (H x W), T[3 i + j][oy W + ox] =
 * x[oy + i - 1][ox + j - 1] - s, and -s outside the image: the patches less
 * s, the batch's mean pixel, so that the Gram's sums are of centred values
 * (its variances are then differences of numbers of their own size, not of
 * nearly equal large ones); s = 0 for the conv itself. */
static void c1_taps(const float *x, int H, int W, float s, float *T) {
    int P = H * W;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            float *t = T + (size_t)(i * 3 + j) * P;
            for (int oy = 0; oy < H; oy++) {
                int iy = oy + i - 1;
                float *r = t + (size_t)oy * W;
                if (iy < 0 || iy >= H) {
                    for (int ox = 0; ox < W; ox++) r[ox] = -s;
                    continue;
                }
                const float *xr = x + (size_t)iy * W;
                int lo = j == 0, hi = j == 2 ? W - 1 : W;
                r[0] = r[W - 1] = -s;
                for (int ox = lo; ox < hi; ox++) r[ox] = xr[ox + j - 1] - s;
            }
        }
}

/* One sample's sums (out[0..9)) and Gram's upper triangle (out[9..54), row
 * by row) of the tap planes T: row k's products in registers (9 - k
 * accumulators, each a fixed order over the plane). */
static inline __attribute__((always_inline)) void c1_gram_row(const float *T, int P, int k, float *out, int *e) {
    __m256 acc[9], sum = _mm256_setzero_ps();
    _Pragma("GCC unroll 9")
    for (int l = k; l < 9; l++) acc[l] = _mm256_setzero_ps();
    for (int p = 0; p < P; p += 8) {
        __m256 v = _mm256_loadu_ps(T + (size_t)k * P + p);
        sum = _mm256_add_ps(sum, v);
        _Pragma("GCC unroll 9")
        for (int l = k; l < 9; l++) acc[l] = _mm256_fmadd_ps(v, _mm256_loadu_ps(T + (size_t)l * P + p), acc[l]);
    }
    out[k] = bnp_hsum(sum);
    for (int l = k; l < 9; l++) out[(*e)++] = bnp_hsum(acc[l]);
}
static void c1_gram_sample(const float *T, int P, float *out) {
    int e = 9;
    c1_gram_row(T, P, 0, out, &e);
    c1_gram_row(T, P, 1, out, &e);
    c1_gram_row(T, P, 2, out, &e);
    c1_gram_row(T, P, 3, out, &e);
    c1_gram_row(T, P, 4, out, &e);
    c1_gram_row(T, P, 5, out, &e);
    c1_gram_row(T, P, 6, out, &e);
    c1_gram_row(T, P, 7, out, &e);
    c1_gram_row(T, P, 8, out, &e);
}

/* A channel's plane y = b + sum_k w_k T_k (the taps in order, one fused
 * multiply-add each: the same bits wherever it is computed, forward or
 * backward), and with o non-null the batch norm + ReLU of it, o = max(ga
 * ((y - m) is) + be, 0) computed as bnp_dy8 computes the ReLU's mask. */
static void c1_plane(const float *T, int P, const float *w, float b, float m_, float is_, float ga_,
                     float be_, float *y, float *o) {
    __m256 wk[9];
    for (int k = 0; k < 9; k++) wk[k] = _mm256_set1_ps(w[k]);
    __m256 bv = _mm256_set1_ps(b), m = _mm256_set1_ps(m_), is = _mm256_set1_ps(is_);
    __m256 ga = _mm256_set1_ps(ga_), be = _mm256_set1_ps(be_), z = _mm256_setzero_ps();
    for (int p = 0; p < P; p += 8) {
        __m256 a = bv;
        _Pragma("GCC unroll 9")
        for (int k = 0; k < 9; k++) a = _mm256_fmadd_ps(wk[k], _mm256_loadu_ps(T + (size_t)k * P + p), a);
        _mm256_storeu_ps(y + p, a);
        if (o) {
            __m256 v = _mm256_add_ps(_mm256_mul_ps(ga, _mm256_mul_ps(_mm256_sub_ps(a, m), is)), be);
            _mm256_storeu_ps(o + p, _mm256_and_ps(_mm256_cmp_ps(v, z, _CMP_GT_OQ), v));
        }
    }
}

/* The 16 phase planes of image x (H x W, both even) for the 2x2 pool after
 * the conv: phase f = 4 r + c of pooled output t = oy OW + ox is x[2 oy + r
 * - 1][2 ox + c - 1], -0 outside the image (c1_taps's -s at s = 0), so that
 * tap (i, j) of the conv's output at window position (dy, dx) of output t
 * is phase 4 (dy + i) + dx + j of t: the nine tap planes, read a window
 * position at a time, in 16 values a pooled output instead of 36.  Built
 * as planes in tmp (16 of nb 8), then kept as Q[t / 8][f][t % 8] (nb blocks
 * of 128: one base and constant offsets for c1_pool's loads); the lanes
 * past P are zero. */
static void c1_phase(const float *x, int H, int W, float *tmp, float *Q) {
    int OH = H / 2, OW = W / 2, nb = (OH * OW + 7) / 8;
    size_t ld = (size_t)nb * 8;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            float *q = tmp + (size_t)(4 * r + c) * ld;
            for (int oy = 0; oy < OH; oy++) {
                int iy = 2 * oy + r - 1;
                float *qr = q + (size_t)oy * OW;
                if (iy < 0 || iy >= H) {
                    for (int ox = 0; ox < OW; ox++) qr[ox] = -0.0f;
                    continue;
                }
                const float *xr = x + (size_t)iy * W;
                int lo = c == 0, hi = c == 3 ? OW - 1 : OW;   /* column 2 ox + c - 1 within 0 .. W - 1 */
                qr[0] = qr[OW - 1] = -0.0f;
                for (int ox = lo; ox < hi; ox++) qr[ox] = xr[2 * ox + c - 1];
            }
            for (size_t t = (size_t)OH * OW; t < ld; t++) q[t] = 0;
        }
    for (int b = 0; b < nb; b++)
        for (int f = 0; f < 16; f++)
            _mm256_storeu_ps(Q + (size_t)b * 128 + f * 8, _mm256_loadu_ps(tmp + (size_t)f * ld + (size_t)b * 8));
}

/* c1_pool's batch norm + ReLU and pool of one block of eight pooled
 * outputs, from the conv's four window values a[0..3] ((0,0) (0,1) (1,0)
 * (1,1)): v = ga ((a - m) is) + be and max(v, 0) as c1_plane computes the
 * ReLU (max(v, 0) is v where v > 0, else +0, NaN included: its and-mask),
 * the pool as maxpool22_eight chooses (a pair's first maximum, the lower
 * pair's where greater; no NaN after the ReLU), its argmax from the
 * window's top-left p0 (t's in the plane, plus base) and x there (xa, as
 * bnp_xa_avx2 gathers it). */
static inline __attribute__((always_inline)) void c1_pool_post(const __m256 *a, __m256i p0, __m256i wv, __m256 m,
                                                               __m256 is, __m256 ga, __m256 be, int n, float *y,
                                                               int32_t *arg, float *xa) {
    __m256 o[4], z = _mm256_setzero_ps();
    for (int s = 0; s < 4; s++)
        o[s] = _mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(ga, _mm256_mul_ps(_mm256_sub_ps(a[s], m), is)), be), z);
    __m256 tb = _mm256_cmp_ps(o[1], o[0], _CMP_GT_OQ), td = _mm256_cmp_ps(o[3], o[2], _CMP_GT_OQ);
    __m256 u = _mm256_max_ps(o[1], o[0]), l = _mm256_max_ps(o[3], o[2]);   /* o[1] > o[0] ? o[1] : o[0] */
    __m256 tl = _mm256_cmp_ps(l, u, _CMP_GT_OQ), mx = _mm256_max_ps(l, u);
    __m256 xm = _mm256_blendv_ps(_mm256_blendv_ps(a[0], a[1], tb), _mm256_blendv_ps(a[2], a[3], td), tl);
    /* the masks are -1 where taken: p0 + 1 is p0 - mask */
    __m256i iu = _mm256_sub_epi32(p0, _mm256_castps_si256(tb));
    __m256i il = _mm256_sub_epi32(_mm256_add_epi32(p0, wv), _mm256_castps_si256(td));
    __m256i im = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(iu), _mm256_castsi256_ps(il), tl));
    if (n >= 8) {
        _mm256_storeu_ps(y, mx);
        _mm256_storeu_si256((__m256i *)arg, im);
        _mm256_storeu_ps(xa, xm);
    } else {
        __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(y, lanes, mx);
        _mm256_maskstore_epi32((int *)arg, lanes, im);
        _mm256_maskstore_ps(xa, lanes, xm);
    }
}

/* One channel of one sample from its phase blocks Q (c1_phase) straight
 * into the pool: the conv's four window values of eight pooled outputs at a
 * time, y = b + sum_k w_k T_k (the taps in c1_plane's order, one fused
 * multiply-add each: c1_plane's bits), two blocks at once (eight
 * independent chains keep both FMA pipes busy), then c1_pool_post: the
 * pooled values y, argmax arg (counted from `base`; i0: each output's
 * window's top-left in the plane) and xa (P each) that c1_plane,
 * maxpool22_plane and bnp_xa_avx2 give, without a plane written, read back
 * or gathered from (bench/README.md, "conv1 + batch norm 1: the planes in
 * registers"). */
static void c1_pool(const float *Q, int P, int W, const int32_t *i0, int base, const float *w, float b, float m_,
                    float is_, float ga_, float be_, float *y, int32_t *arg, float *xa) {
    __m256 wk[9];
    for (int k = 0; k < 9; k++) wk[k] = _mm256_set1_ps(w[k]);
    __m256 bv = _mm256_set1_ps(b), m = _mm256_set1_ps(m_), is = _mm256_set1_ps(is_);
    __m256 ga = _mm256_set1_ps(ga_), be = _mm256_set1_ps(be_);
    __m256i bs = _mm256_set1_epi32(base), wv = _mm256_set1_epi32(W);
    int t = 0;
    for (; t + 16 <= P; t += 16, Q += 256) {
        __m256 a[8] = {bv, bv, bv, bv, bv, bv, bv, bv};   /* block t's four window positions, then t + 8's */
        _Pragma("GCC unroll 3")
        for (int i = 0; i < 3; i++)
            _Pragma("GCC unroll 3")
            for (int j = 0; j < 3; j++)
                _Pragma("GCC unroll 8")
                for (int s = 0; s < 8; s++)
                    a[s] = _mm256_fmadd_ps(wk[3 * i + j],
                                           _mm256_loadu_ps(Q + (s >> 2) * 128 + (4 * (i + ((s >> 1) & 1)) + j + (s & 1)) * 8),
                                           a[s]);
        __m256i p0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(i0 + t)), bs);
        c1_pool_post(a, p0, wv, m, is, ga, be, 8, y + t, arg + t, xa + t);
        p0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(i0 + t + 8)), bs);
        c1_pool_post(a + 4, p0, wv, m, is, ga, be, P - t - 8, y + t + 8, arg + t + 8, xa + t + 8);
    }
    for (; t < P; t += 8, Q += 128) {
        __m256 a[4] = {bv, bv, bv, bv};
        _Pragma("GCC unroll 3")
        for (int i = 0; i < 3; i++)
            _Pragma("GCC unroll 3")
            for (int j = 0; j < 3; j++)
                _Pragma("GCC unroll 4")
                for (int s = 0; s < 4; s++)
                    a[s] = _mm256_fmadd_ps(wk[3 * i + j], _mm256_loadu_ps(Q + (4 * (i + (s >> 1)) + j + (s & 1)) * 8),
                                           a[s]);
        __m256i p0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(i0 + t)), bs);
        c1_pool_post(a, p0, wv, m, is, ga, be, P - t, y + t, arg + t, xa + t);
    }
}

/* bn_bwd's dx for one sample's block of 8 channels c0 .. c0 + 7 whose x is
 * in nChw8c (blk, [HW][8]): bnp_dx_avx2's operations with the channels
 * across the lanes (the plane's formula, then each argmax position
 * rewritten), so the same bits, written in nChw8c to out (for the conv's
 * input-gradient product, which then skips its transpose) and through
 * transposes into the 8 NCHW planes at dx (HW apart, for its weight
 * gradient).  v[k][8]: mean, invstd, gamma, beta, k, a, bq of
 * the 8 channels; gp, ap, xa: their pooled planes, P apart. */
static void blk_dx8(const float *blk, float *out, int HW, int P, int c0, float v[7][8], const float *gp,
                    const int32_t *ap, const float *xa, float *dx) {
    __m256 m = _mm256_loadu_ps(v[0]), is = _mm256_loadu_ps(v[1]), k = _mm256_loadu_ps(v[4]);
    __m256 a = _mm256_loadu_ps(v[5]), bq = _mm256_loadu_ps(v[6]);
    for (int p = 0; p < HW; p++) {
        __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(blk + (size_t)p * 8), m), is);
        _mm256_storeu_ps(out + (size_t)p * 8,
                         _mm256_mul_ps(k, _mm256_sub_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), _mm256_mul_ps(xh, bq))));
    }
    for (int l = 0; l < 8; l++) {
        __m256 ml = _mm256_set1_ps(v[0][l]), isl = _mm256_set1_ps(v[1][l]), gal = _mm256_set1_ps(v[2][l]);
        __m256 bel = _mm256_set1_ps(v[3][l]), kl = _mm256_set1_ps(v[4][l]), al = _mm256_set1_ps(v[5][l]);
        __m256 bql = _mm256_set1_ps(v[6][l]), xm;
        const float *gpl = gp + (size_t)l * P, *xal = xa + (size_t)l * P;
        const int32_t *apl = ap + (size_t)l * P;
        int base = (c0 + l) * HW;
        for (int t = 0; t < P; t += 8) {
            __m256 d = bnp_dy8(gpl, apl, xal, P, t, ml, isl, gal, bel, &xm);
            __m256 r = _mm256_mul_ps(kl, _mm256_sub_ps(_mm256_sub_ps(d, al), _mm256_mul_ps(_mm256_mul_ps(xm, isl), bql)));
            float r8[8];
            _mm256_storeu_ps(r8, r);
            int n = P - t < 8 ? P - t : 8;
            for (int q = 0; q < n; q++)
                if (apl[t + q] >= 0) out[(size_t)(apl[t + q] - base) * 8 + l] = r8[q];
        }
    }
    if (dx) blk_planes(out, HW, HW, dx);   /* NULL: dy_blk, the weight gradient reads out */
}

/* Sample n's dx of batch norm bn (deferred: bn_dx), [C][HW] into out, as
 * bn_bwd would have written it: the same bnp_dx_avx2 call on the same
 * values, a, bq, k, gamma and beta as bn_bwd kept them (aux after mean,
 * invstd): gamma and beta themselves may have been updated since (a
 * parameter's update may start as soon as its gradient is ready).  Where
 * the conv's output was never written (c1_fuse), each plane is computed
 * again from the sample's image with the forward's W and b (kept in aux
 * after those), the nine tap planes and the plane after out's C HW. */
static void bnp_dx_sample(const wick_graph *g, const node *bn, int n, float *out) {
    const node *xn = &g->nodes[bn->in[0]], *pn = &g->nodes[bn->bn_pool];
    int C = xn->C, HW = bn->cols / C, P = pn->H * pn->W;
    const float *mean = bn->aux, *inv = mean + C, *ka = mean + 2 * C, *kbq = ka + C, *kk = kbq + C;
    const float *gam = kk + C, *bet = gam + C, *cw = bet + C, *cb = cw + 9 * C;
    float *taps = xn->c1_fuse ? out + (size_t)C * HW : NULL, *plane = taps ? taps + 9 * (size_t)HW : NULL;
    if (taps) {
        const node *im = &g->nodes[xn->in[0]];
        c1_taps((const float *)im->val + (size_t)n * im->cols, im->H, im->W, 0, taps);
    }
    for (int c = 0; c < C; c++) {
        size_t o = (size_t)n * bn->cols + (size_t)c * HW, po = (size_t)n * pn->cols + (size_t)c * P;
        const float *xp = (const float *)xn->val + o;
        if (taps) {
            c1_plane(taps, HW, cw + 9 * (size_t)c, cb[c], 0, 0, 0, 0, plane, NULL);
            xp = plane;
        }
        bnp_dx_avx2(xp, (const float *)pn->grad + po, (const int32_t *)pn->aux + po,
                    (const float *)bn->val + po, HW, P, c * HW, mean[c], inv[c], gam[c], bet[c], kk[c], ka[c],
                    kbq[c], out + (size_t)c * HW);
    }
}

/* Sample n's part of c1_dw's sparse sums (ops_impl.h): for each channel c of
 * the conv before batch norm bn (c1_fuse), out[10 c + k] = sum over the
 * pooled outputs t of d_t q_k(pos_t) (k < 9) and out[10 c + 9] = sum_t d_t,
 * d_t the ReLU's input gradient at window t's argmax pos_t as bnp_dy8
 * computes it (zero where the ReLU was off or there is no argmax) and q_k
 * tap k of the patch there less s (c1_fwd's centring).  Taps 0..7 of every
 * position as rows of 8 (the tap planes through 8 x 8 transposes: one load a
 * window), tap 8 gathered eight windows at a time; four chains, each a fixed
 * order, so the same bits for every thread count.  buf: 17 HW floats.
 * gam, bet: the batch norm's gamma and beta as its backward reads them.
 * sb[c]: the sample's sum of d (x - m) as bnp_sums_avx2 takes it (the same
 * operations in the same order; its sum of d is out[10 c + 9]). */
#define C_AHEAD 4
static void c1_dw_sample(const wick_graph *g, const node *bn, int n, float s, const float *gam, const float *bet,
                         float *buf, float *out, float *sb) {
    const node *xn = &g->nodes[bn->in[0]], *pn = &g->nodes[bn->bn_pool], *im = &g->nodes[xn->in[0]];
    int C = xn->C, HW = bn->cols / C, P = pn->H * pn->W;
    const float *mean = bn->aux, *inv = mean + C;
    float *taps = buf, *rows = buf + 9 * (size_t)HW;
    const float *t8 = taps + 8 * (size_t)HW;
    c1_taps((const float *)im->val + (size_t)n * im->cols, im->H, im->W, s, taps);
    /* the pool's gradient in nChw8c (x_blk: conv2's input gradient left so):
       this sample's planes after the rows, read from there */
    const float *gsrc = (const float *)pn->grad + (size_t)n * pn->cols;
    if (pn->grad_blk) {
        float *gt = buf + 17 * (size_t)HW + 16 * (size_t)C;   /* after rows and the caller's `one` */
        for (int cb = 0; cb < C / 8; cb++) blk_planes(gsrc + (size_t)cb * 8 * P, P, P, gt + (size_t)cb * 8 * P);
        gsrc = gt;
    }
    for (int p = 0; p < HW; p += 8) {   /* HW % 8 == 0 (c1_geo) */
        __m256 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(taps + (size_t)k * HW + p);
        wick_xpose8(r);
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(rows + (size_t)(p + k) * 8, r[k]);
    }
    for (int c = 0; c < C; c++) {
        size_t po = (size_t)n * pn->cols + (size_t)c * P;
        const float *gp = gsrc + (size_t)c * P, *xa = (const float *)bn->val + po;
        const int32_t *ap = (const int32_t *)pn->aux + po;
        __m256 m = _mm256_set1_ps(mean[c]), is = _mm256_set1_ps(inv[c]), ga = _mm256_set1_ps(gam[c]);
        __m256 be = _mm256_set1_ps(bet[c]), xm, a8 = _mm256_setzero_ps(), ad = _mm256_setzero_ps();
        __m256 bd = _mm256_setzero_ps();
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256i base = _mm256_set1_epi32(c * HW);
        /* the planes C_AHEAD channels on (the next sample's past the last) */
        for (int e = 0; e < P; e += 16) {
            _mm_prefetch((const char *)(gp + (size_t)C_AHEAD * P + e), _MM_HINT_T0);
            _mm_prefetch((const char *)(ap + (size_t)C_AHEAD * P + e), _MM_HINT_T0);
            _mm_prefetch((const char *)(xa + (size_t)C_AHEAD * P + e), _MM_HINT_T0);
        }
        for (int t = 0; t < P; t += 8) {
            __m256 d;
            __m256i i8, ok;
            if (P - t >= 8) {   /* bnp_dy8's operations with plain loads */
                i8 = _mm256_loadu_si256((const __m256i *)(ap + t));
                ok = _mm256_cmpgt_epi32(i8, _mm256_set1_epi32(-1));
                xm = _mm256_sub_ps(_mm256_loadu_ps(xa + t), m);
                __m256 v = _mm256_add_ps(_mm256_mul_ps(ga, _mm256_mul_ps(xm, is)), be);
                __m256 keep = _mm256_and_ps(_mm256_castsi256_ps(ok), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
                d = _mm256_add_ps(_mm256_and_ps(keep, _mm256_loadu_ps(gp + t)), _mm256_setzero_ps());
            } else {
                d = bnp_dy8(gp, ap, xa, P, t, m, is, ga, be, &xm);
                __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(P - t), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                i8 = _mm256_maskload_epi32(ap + t, lanes);
                ok = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), i8), lanes);
            }
            __m256i idx = _mm256_and_si256(_mm256_sub_epi32(i8, base), ok);   /* 0 where d is 0 */
            a8 = _mm256_fmadd_ps(d, _mm256_i32gather_ps(t8, idx, 4), a8);
            ad = _mm256_add_ps(ad, d);
            bd = _mm256_add_ps(bd, _mm256_mul_ps(d, xm));
            float dl[8];
            int32_t il[8];
            _mm256_storeu_ps(dl, d);
            _mm256_storeu_si256((__m256i *)il, idx);
            if (P - t >= 8) {
                _Pragma("GCC unroll 8")
                for (int l = 0; l < 8; l++)
                    acc[l & 3] = _mm256_fmadd_ps(_mm256_broadcast_ss(dl + l),
                                                 _mm256_loadu_ps(rows + (size_t)il[l] * 8), acc[l & 3]);
            } else {
                for (int l = 0; l < P - t; l++)
                    acc[l & 3] = _mm256_fmadd_ps(_mm256_broadcast_ss(dl + l),
                                                 _mm256_loadu_ps(rows + (size_t)il[l] * 8), acc[l & 3]);
            }
        }
        float r8[8];
        _mm256_storeu_ps(r8, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for (int k = 0; k < 8; k++) out[(size_t)c * 10 + k] = r8[k];
        out[(size_t)c * 10 + 8] = bnp_hsum(a8);
        out[(size_t)c * 10 + 9] = bnp_hsum(ad);
        sb[c] = bnp_hsum(bd);
    }
}
#else
#define WICK_BNP_AVX2 0
void op_conv_unblock(wick_graph *g, node *nd) {   /* never blocked without AVX2 */
    (void)g;
    nd->val_blk = 0;
}
void op_conv_dy_unblock(wick_graph *g, node *nd) {
    (void)g;
    nd->grad_blk = 0;
}
void op_pool_grad_unblock(wick_graph *g, node *nd) {
    (void)g;
    nd->grad_blk = 0;
}
#endif

#define T float
#define SFX(name) name##_f32
#define IS_FLOAT 1
#define GEMM wick_gemm_f32
#include "graph/ops_impl.h"
#undef T
#undef SFX
#undef IS_FLOAT
#undef GEMM

#define T double
#define SFX(name) name##_f64
#define IS_FLOAT 0
#define GEMM wick_gemm_f64
#include "graph/ops_impl.h"
#undef T
#undef SFX
#undef IS_FLOAT
#undef GEMM

void op_forward(wick_graph *g, node *nd) {
    if (g->dt == WICK_DT_F32) forward_f32(g, nd);
    else forward_f64(g, nd);
}

void op_backward(wick_graph *g, node *nd) {
    if (g->dt == WICK_DT_F32) backward_f32(g, nd);
    else backward_f64(g, nd);
}

size_t op_aux_elems(const wick_graph *g, const node *nd, size_t *aux2) {
    *aux2 = 0;
    switch (nd->op) {
    case OP_DENSE: {
        int k = nd->act.kind;
        if (k != WICK_ACT_LINEAR && nd->needs_grad) *aux2 = node_elems(nd);    /* dz */
        return (k == WICK_ACT_RELU || k == WICK_ACT_LINEAR) ? 0 : node_elems(nd); /* z */
    }
    case OP_XENT: return node_elems(&g->nodes[nd->in[0]]);                    /* p */
    case OP_MAXPOOL2D: return node_elems(nd);                                  /* argmax, int32 */
    case OP_DROPOUT: return node_elems(nd);                                    /* mask */
    case OP_CONV2D: return nd->conv_blk ? node_elems(nd) : 0;                 /* grad in nChw8c (grad_blk) */
    case OP_BATCHNORM: {            /* mean, invstd; dx's a, bq, k, gamma, beta (bn_bwd); after a
                                       conv, its W and b as c1_fwd took them (9 + 1 a channel) */
        const node *x = &g->nodes[nd->in[0]];
        /* and c1_fwd's sums and Gram of the patches and their centre s, 55
           doubles (110 floats), for c1_dw, which keeps its sums after them
           (ops_impl.h c1_dw_aux: 10 C + 1 doubles, 2 C floats a sample) */
        size_t C = x->C > 0 ? x->C : x->cols;
        return x->op == OP_CONV2D ? 17 * C + 110 + 20 * C + 2 + 2 * C * g->max_batch : 7 * C;
    }
    default: return 0;
    }
}

size_t op_scratch_bytes(const wick_graph *g, const node *nd, int threads) {
    if (nd->op == OP_BATCHNORM && nd->bn_pool)   /* and bn_fwd_blk's 8 planes */
        return threads * (bn_pool_slot(nd) + (g->nodes[nd->in[0]].conv_blk ? bn_blk_room(nd) : 0)) * g->esize;
    if (nd->op != OP_CONV2D) return 0;
    conv_geo q = conv_geo_of(g, nd);
    size_t kg = (size_t)q.C / q.G * q.kh * q.kw;
    /* the weight gradient's partials, one a chunk; conv_dw_kern's take db too */
    size_t b = (threads * conv_slot_elems(&q) + (size_t)conv_chunks(g->max_batch) * q.OUT * (kg + 1)) * g->esize;
    if (nd->conv_blk && b < (size_t)nd->cols * g->esize) b = (size_t)nd->cols * g->esize;   /* op_conv_unblock */
    return b;
}

/* Row-range kernels for the chain executor (chain.c), float only. */
void op_act_fwd_f32(wick_act a, const float *z, float *y, size_t n) { act_fwd_f32(a, z, y, n); }
void op_act_bwd_f32(wick_act a, const float *z, const float *y, const float *dy, float *dz, size_t n) {
    act_bwd_f32(a, z, y, dy, dz, n, 0);
}
double op_xent_rows_f32(const float *x, const int32_t *lab, float *p, int r0, int r1, int cols, double eps) {
    return xent_rows_f32(x, lab, p, r0, r1, cols, eps);
}
void op_xent_grad_rows_f32(const float *p, const int32_t *lab, float scale, float *dx, int r0, int r1,
                           int cols, double eps) {
    xent_grad_rows_f32(p, lab, scale, dx, r0, r1, cols, eps, 0);
}
