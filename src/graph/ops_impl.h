/* ops_impl.h — every op's forward and backward, side by side, written once and
 * compiled twice by ops.c: with T = float (training) and T = double (gradient
 * checks, theory-vs-ensemble experiments).  <tgmath.h> makes exp, tanh, ...
 * pick the precision of their argument.
 *
 * Shapes: a node is rows x cols, row-major; "x" is an op's first input.
 * Backward kernels write an input's gradient on its first contribution and add
 * to it afterwards (ACC), so a node used twice gets the sum. */

#define ACC(a, i, v) ((a)[i] = acc ? (a)[i] + (v) : (v))
#define PAR_ROWS(rows, cols) _Pragma("omp parallel for schedule(static) if ((size_t)(rows) * (cols) > 32768)")

/* ---- activations ------------------------------------------------------- */

static inline T SFX(sigmoid)(T z) {
    if (z >= 0) return 1 / (1 + exp(-z));
    T e = exp(z);
    return e / (1 + e);
}

/* y = sigma(z) element-wise. */
static void SFX(act_fwd)(wick_act a, const T *z, T *y, size_t n) {
    const T s = (T)a.slope;
    const T r2 = (T)0.70710678118654752440;
    switch (a.kind) {
    case WICK_ACT_PERCEPTRON:
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) y[i] = z[i] >= 0 ? 1 : 0;
        break;
    case WICK_ACT_SIGMOID: for (size_t i = 0; i < n; i++) y[i] = SFX(sigmoid)(z[i]); break;
    case WICK_ACT_TANH: for (size_t i = 0; i < n; i++) y[i] = tanh(z[i]); break;
    case WICK_ACT_SIN: for (size_t i = 0; i < n; i++) y[i] = sin(z[i]); break;
    case WICK_ACT_LINEAR: if (y != z) memcpy(y, z, n * sizeof *y); break;
    case WICK_ACT_RELU:
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) y[i] = z[i] > 0 ? z[i] : 0;
        break;
    case WICK_ACT_LEAKY_RELU:
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) y[i] = z[i] >= 0 ? z[i] : s * z[i];
        break;
    case WICK_ACT_SOFTPLUS:
        for (size_t i = 0; i < n; i++) y[i] = z[i] > 0 ? z[i] + log1p(exp(-z[i])) : log1p(exp(z[i]));
        break;
    case WICK_ACT_SWISH: for (size_t i = 0; i < n; i++) y[i] = z[i] * SFX(sigmoid)(z[i]); break;
    case WICK_ACT_GELU:
        /* 1 + erf rather than erfc(-x): erf has a vector version; the two
           differ only where GELU is below 1e-7 in absolute value */
        for (size_t i = 0; i < n; i++) y[i] = (T)0.5 * z[i] * (1 + erf(z[i] * r2));
        break;
    default: break;
    }
}

/* dz = dy * sigma'(z), given z and y = sigma(z).  The derivative is taken
 * from y where that is exact and cheaper (ReLU, tanh, sigmoid). */
static void SFX(act_bwd)(wick_act a, const T *z, const T *y, const T *dy, T *dz, size_t n, int acc) {
    const T s = (T)a.slope;
    const T r2 = (T)0.70710678118654752440, rpi = (T)0.39894228040143267794;
    switch (a.kind) {
    case WICK_ACT_PERCEPTRON: /* a delta at 0: zero almost everywhere */
        for (size_t i = 0; i < n; i++) ACC(dz, i, 0);
        break;
    case WICK_ACT_SIGMOID: for (size_t i = 0; i < n; i++) ACC(dz, i, dy[i] * y[i] * (1 - y[i])); break;
    case WICK_ACT_TANH:
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) ACC(dz, i, dy[i] * (1 - y[i] * y[i]));
        break;
    case WICK_ACT_SIN: for (size_t i = 0; i < n; i++) ACC(dz, i, dy[i] * cos(z[i])); break;
    case WICK_ACT_LINEAR: for (size_t i = 0; i < n; i++) ACC(dz, i, dy[i]); break;
    case WICK_ACT_RELU:
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) ACC(dz, i, y[i] > 0 ? dy[i] : 0);
        break;
    case WICK_ACT_LEAKY_RELU:
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) ACC(dz, i, z[i] > 0 ? dy[i] : s * dy[i]);
        break;
    case WICK_ACT_SOFTPLUS: for (size_t i = 0; i < n; i++) ACC(dz, i, dy[i] * SFX(sigmoid)(z[i])); break;
    case WICK_ACT_SWISH:
        for (size_t i = 0; i < n; i++) {
            T sg = SFX(sigmoid)(z[i]);
            ACC(dz, i, dy[i] * (sg + z[i] * sg * (1 - sg)));
        }
        break;
    case WICK_ACT_GELU:
        for (size_t i = 0; i < n; i++)
            ACC(dz, i, dy[i] * ((T)0.5 * (1 + erf(z[i] * r2)) + z[i] * rpi * exp((T)-0.5 * z[i] * z[i])));
        break;
    default: break;
    }
}

/* Row-parallel wrappers: each thread takes whole rows, so the result does not
 * depend on the thread count. */
static void SFX(act_fwd_rows)(wick_act a, const T *z, T *y, int rows, int cols) {
    PAR_ROWS(rows, cols)
    for (int r = 0; r < rows; r++)
        SFX(act_fwd)(a, z + (size_t)r * cols, y + (size_t)r * cols, cols);
}

static void SFX(act_bwd_rows)(wick_act a, const T *z, const T *y, const T *dy, T *dz, int rows,
                              int cols, int acc) {
    PAR_ROWS(rows, cols)
    for (int r = 0; r < rows; r++) {
        size_t o = (size_t)r * cols;
        SFX(act_bwd)(a, z ? z + o : NULL, y + o, dy + o, dz + o, cols, acc);
    }
}

/* ---- bias -------------------------------------------------------------- */

static void SFX(bias_fwd)(const T *x, const T *b, T *y, int rows, int cols) {
    PAR_ROWS(rows, cols)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[(size_t)r * cols + c] = x[(size_t)r * cols + c] + b[c];
}

/* db[c] = sum over rows of dy[r][c], each column summed in row order. */
static void SFX(colsum)(const T *dy, T *db, int rows, int cols, int acc) {
    _Pragma("omp parallel for schedule(static) if ((size_t)rows * cols > 32768)")
    for (int c = 0; c < cols; c++) {
        T s = 0;
        for (int r = 0; r < rows; r++) s += dy[(size_t)r * cols + c];
        ACC(db, c, s);
    }
}

/* ---- dense: y = act(x W^T + b) ----------------------------------------- */

static void SFX(dense_fwd)(wick_graph *g, node *nd) {
    node *xn = &g->nodes[nd->in[0]], *wn = &g->nodes[nd->in[1]], *bn = &g->nodes[nd->in[2]];
    int B = nd->rows, N = nd->cols, K = xn->cols;
    const T *x = xn->val, *W = wn->val, *b = bn->val;
    T *y = nd->val;
    int fused = nd->act.kind == WICK_ACT_RELU || nd->act.kind == WICK_ACT_LINEAR;
    T *z = fused ? y : (T *)nd->aux;   /* pre-activation, kept for backward */
#if IS_FLOAT
    if (nd->plan) {
        wick_dense_forward(nd->plan, x, W, b, z);    /* ReLU fused when planned so */
        if (!fused) SFX(act_fwd_rows)(nd->act, z, y, B, N);
        return;
    }
#endif
    for (int r = 0; r < B; r++) memcpy(z + (size_t)r * N, b, N * sizeof *z);
    GEMM(0, 1, B, N, K, 1, x, K, W, K, 1, z, N);
    if (nd->act.kind != WICK_ACT_LINEAR) SFX(act_fwd_rows)(nd->act, z, y, B, N);
}

static void SFX(dense_bwd)(wick_graph *g, node *nd) {
    node *xn = &g->nodes[nd->in[0]], *wn = &g->nodes[nd->in[1]], *bn = &g->nodes[nd->in[2]];
    int B = nd->rows, N = nd->cols, K = xn->cols;
    const T *x = xn->val, *W = wn->val;
    const T *dy = nd->grad;
    const T *dz = dy;
    if (nd->act.kind != WICK_ACT_LINEAR) {
        int fused = nd->act.kind == WICK_ACT_RELU;
        SFX(act_bwd_rows)(nd->act, fused ? NULL : (const T *)nd->aux, nd->val, dy, nd->aux2, B, N, 0);
        dz = nd->aux2;
    }
    if (wn->needs_grad) {
        int accw = wn->grad_begun;
        wn->grad_begun = 1;
#if IS_FLOAT
        if (nd->plan && !accw && !(bn->needs_grad && bn->grad_begun)) {
            wick_dense_backward_weights(nd->plan, x, dz, wn->grad, bn->needs_grad ? bn->grad : NULL);
            if (bn->needs_grad) bn->grad_begun = 1;
            goto data;
        }
#endif
        GEMM(1, 0, N, K, B, 1, dz, N, x, K, accw ? 1 : 0, wn->grad, K);
    }
    if (bn->needs_grad) {
        SFX(colsum)(dz, bn->grad, B, N, bn->grad_begun);
        bn->grad_begun = 1;
    }
#if IS_FLOAT
data:
#endif
    if (xn->needs_grad) {
        int acc = xn->grad_begun;
        xn->grad_begun = 1;
#if IS_FLOAT
        if (nd->plan && !acc) {
            wick_dense_backward_data(nd->plan, dz, W, xn->grad);
            return;
        }
#endif
        GEMM(0, 0, B, K, N, 1, dz, N, W, K, acc ? 1 : 0, xn->grad, K);
    }
}

/* ---- matmul: C = A B or A B^T ------------------------------------------ */

static void SFX(matmul_fwd)(wick_graph *g, node *nd) {
    node *an = &g->nodes[nd->in[0]], *bn = &g->nodes[nd->in[1]];
    int m = nd->rows, n = nd->cols, k = an->cols;
    GEMM(0, nd->trans_b, m, n, k, 1, an->val, k, bn->val, bn->cols, 0, nd->val, n);
}

static void SFX(matmul_bwd)(wick_graph *g, node *nd) {
    node *an = &g->nodes[nd->in[0]], *bn = &g->nodes[nd->in[1]];
    int m = nd->rows, n = nd->cols, k = an->cols;
    const T *dC = nd->grad;
    if (an->needs_grad) {   /* dA = dC op(B)^T */
        int acc = an->grad_begun;
        an->grad_begun = 1;
        GEMM(0, !nd->trans_b, m, k, n, 1, dC, n, bn->val, bn->cols, acc ? 1 : 0, an->grad, k);
    }
    if (bn->needs_grad) {   /* dB = A^T dC, or dC^T A when B is transposed */
        int acc = bn->grad_begun;
        bn->grad_begun = 1;
        if (nd->trans_b) GEMM(1, 0, n, k, m, 1, dC, n, an->val, k, acc ? 1 : 0, bn->grad, k);
        else GEMM(1, 0, k, n, m, 1, an->val, k, dC, n, acc ? 1 : 0, bn->grad, n);
    }
}

/* ---- row-wise softmax and log-softmax ---------------------------------- */

static void SFX(softmax_fwd)(const T *x, T *y, int rows, int cols, int logp) {
    PAR_ROWS(rows, cols)
    for (int r = 0; r < rows; r++) {
        const T *xr = x + (size_t)r * cols;
        T *yr = y + (size_t)r * cols;
        T m = xr[0];
        for (int c = 1; c < cols; c++) m = xr[c] > m ? xr[c] : m;
        T s = 0;
        for (int c = 0; c < cols; c++) s += exp(xr[c] - m);
        if (logp) {
            T lse = m + log(s);
            for (int c = 0; c < cols; c++) yr[c] = xr[c] - lse;
        } else {
            for (int c = 0; c < cols; c++) yr[c] = exp(xr[c] - m) / s;
        }
    }
}

/* softmax: dx = y (dy - <dy, y>);  log-softmax: dx = dy - exp(y) sum(dy). */
static void SFX(softmax_bwd)(const T *y, const T *dy, T *dx, int rows, int cols, int logp, int acc) {
    PAR_ROWS(rows, cols)
    for (int r = 0; r < rows; r++) {
        const T *yr = y + (size_t)r * cols, *gr = dy + (size_t)r * cols;
        T *dr = dx + (size_t)r * cols;
        T s = 0;
        for (int c = 0; c < cols; c++) s += logp ? gr[c] : gr[c] * yr[c];
        for (int c = 0; c < cols; c++)
            ACC(dr, c, logp ? gr[c] - exp(yr[c]) * s : yr[c] * (gr[c] - s));
    }
}

/* ---- losses ------------------------------------------------------------ */

/* Cross-entropy with label smoothing eps over C classes, mean over rows:
 *   loss_r = -(1 - eps) log p[y_r] - (eps / C) sum_c log p_c
 * p is kept in aux for the backward pass: dlogits = (p - q) / rows.
 * The row-range kernels also serve the chain executor (chain.c). */
static double SFX(xent_rows)(const T *x, const int32_t *lab, T *p, int r0, int r1, int cols, double eps) {
    double total = 0;
    for (int r = r0; r < r1; r++) {
        const T *xr = x + (size_t)r * cols;
        T *pr = p + (size_t)r * cols;
        T m = xr[0];
        for (int c = 1; c < cols; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0, sumx = 0;
        for (int c = 0; c < cols; c++) {
            pr[c] = exp(xr[c] - m);
            s += pr[c];
            sumx += xr[c];
        }
        double lse = m + log(s);
        for (int c = 0; c < cols; c++) pr[c] = (T)(pr[c] / s);
        int y = lab[r];
        double nll = (y >= 0 && y < cols) ? lse - xr[y] : NAN;
        total += (1 - eps) * nll + (eps > 0 ? eps * (lse - sumx / cols) : 0);
    }
    return total;
}

/* dx = scale (p - q) over rows [r0, r1). */
static void SFX(xent_grad_rows)(const T *p, const int32_t *lab, T scale, T *dx, int r0, int r1, int cols,
                                double eps, int acc) {
    T u = (T)(eps / cols), on = (T)(1 - eps);
    for (int r = r0; r < r1; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            ACC(dx, i, scale * (p[i] - u - (c == lab[r] ? on : 0)));
        }
}

static void SFX(xent_fwd)(const T *x, const int32_t *lab, T *p, T *loss, int rows, int cols, double eps) {
    *loss = (T)(SFX(xent_rows)(x, lab, p, 0, rows, cols, eps) / rows);
}

static void SFX(xent_bwd)(const T *p, const int32_t *lab, T g, T *dx, int rows, int cols, double eps, int acc) {
    PAR_ROWS(rows, cols)
    for (int r = 0; r < rows; r++) SFX(xent_grad_rows)(p, lab, g / rows, dx, r, r + 1, cols, eps, acc);
}

/* The gradient of input k of nd: NULL when it needs none; *acc tells whether
 * to add (a contribution was already written this pass). */
static T *SFX(in_grad)(wick_graph *g, node *nd, int k, int *acc) {
    node *a = &g->nodes[nd->in[k]];
    if (!a->needs_grad) return NULL;
    *acc = a->grad_begun;
    a->grad_begun = 1;
    return a->grad;
}

/* ---- conv2d: y = conv(x, W) + b, per sample im2col + GEMM ---------------
 * x: [B, C*H*W]; W: [OUT, KG] with KG = (C/G)*kh*kw in (c, i, j) order;
 * b: [1, OUT] or none; y: [B, OUT*OH*OW].  For one sample, col is the
 * [C*kh*kw, P = OH*OW] matrix of input patches (im2col), group g's rows
 * [g KG, (g+1) KG); then y_g [OG, P] = W_g [OG, KG] col_g [KG, P].
 * Backward: dW_g += dy_g col_g^T, dcol_g = W_g^T dy_g, dx = col2im(dcol).
 * A 1x1 kernel at stride 1 without padding is its own col (no copy); a
 * depthwise conv (one input channel per group) runs direct loops instead,
 * where each group's product would be too small for the BLAS.
 * Threads take samples (forward) or chunks of samples (backward) dynamically:
 * what a sample or chunk computes does not depend on which thread runs it.
 * Float fast path: a node with a backend plan (nd->cplan, conv.h, made at
 * compile and set_batch as dense's plan) runs its forward and input gradient
 * through the plan; the weight and bias gradients stay on the loops here,
 * whose fixed chunks keep them the same for every thread count (the plan's
 * own weight gradient is im2col too, split by thread). */

/* col[(c kh + i) kw + j][oy OW + ox] = x[c][oy sh - ph + i dh][ox sw - pw + j dw], 0 outside. */
static void SFX(im2col)(const conv_geo *q, const T *x, T *col) {
    int P = q->OH * q->OW;
    for (int c = 0; c < q->C; c++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                T *row = col + (size_t)((c * q->kh + i) * q->kw + j) * P;
                int off = j * q->dw - q->pw, lo, hi;
                conv_valid(off, q->sw, q->W, q->OW, &lo, &hi);
                for (int oy = 0; oy < q->OH; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    T *r = row + (size_t)oy * q->OW;
                    if (iy < 0 || iy >= q->H) {
                        for (int ox = 0; ox < q->OW; ox++) r[ox] = 0;
                        continue;
                    }
                    const T *xr = x + ((size_t)c * q->H + iy) * q->W;   /* column ox*sw + off */
                    for (int ox = 0; ox < lo; ox++) r[ox] = 0;
                    if (q->sw == 1) memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof *r);
                    else for (int ox = lo; ox < hi; ox++) r[ox] = xr[ox * q->sw + off];
                    for (int ox = hi; ox < q->OW; ox++) r[ox] = 0;
                }
            }
}

/* dx += the patches of col put back where im2col took them (overlaps add). */
static void SFX(col2im)(const conv_geo *q, const T *col, T *dx) {
    int P = q->OH * q->OW;
    for (int c = 0; c < q->C; c++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                const T *row = col + (size_t)((c * q->kh + i) * q->kw + j) * P;
                int off = j * q->dw - q->pw, lo, hi;
                conv_valid(off, q->sw, q->W, q->OW, &lo, &hi);
                for (int oy = 0; oy < q->OH; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    if (iy < 0 || iy >= q->H) continue;
                    const T *r = row + (size_t)oy * q->OW;
                    T *xr = dx + ((size_t)c * q->H + iy) * q->W;
                    for (int ox = lo; ox < hi; ox++) xr[ox * q->sw + off] += r[ox];
                }
            }
}

/* Depthwise (one input channel per group): direct loops, no im2col.  Output
 * channel o reads input channel o / (OUT/G) through its kh x kw kernel.
 * mode 0: y = b + W * x (per sample); 1: dx += W^T dy; 2: dW += dy x. */
static void SFX(dw_sample)(const conv_geo *q, int mode, const T *x, const T *W, const T *b, T *y, T *dx,
                           const T *dy, T *dW) {
    int P = q->OH * q->OW, OG = q->OUT / q->G, KG = q->kh * q->kw;
    for (int o = 0; o < q->OUT; o++) {
        size_t xo = (size_t)(o / OG) * q->H * q->W;
        if (mode == 0) {
            T v = b ? b[o] : 0;
            for (int p = 0; p < P; p++) y[(size_t)o * P + p] = v;
        }
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                int off = j * q->dw - q->pw, lo, hi;
                conv_valid(off, q->sw, q->W, q->OW, &lo, &hi);
                T w = mode == 2 ? 0 : W[(size_t)o * KG + i * q->kw + j], acc = 0;
                for (int oy = 0; oy < q->OH; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    if (iy < 0 || iy >= q->H) continue;
                    size_t xr = xo + (size_t)iy * q->W, yr = (size_t)o * P + (size_t)oy * q->OW;
                    /* distinct ox touch distinct elements: the loops vectorise */
                    if (mode == 0) {
                        _Pragma("omp simd")
                        for (int ox = lo; ox < hi; ox++) y[yr + ox] += w * x[xr + ox * q->sw + off];
                    } else if (mode == 1) {
                        _Pragma("omp simd")
                        for (int ox = lo; ox < hi; ox++) dx[xr + ox * q->sw + off] += w * dy[yr + ox];
                    } else {
                        _Pragma("omp simd reduction(+ : acc)")
                        for (int ox = lo; ox < hi; ox++) acc += dy[yr + ox] * x[xr + ox * q->sw + off];
                    }
                }
                if (mode == 2) dW[(size_t)o * KG + i * q->kw + j] += acc;
            }
    }
}

/* Whether batch norm bn may leave its dx to the conv before it (bn_dx; the
 * conditions that hold for a whole compiled graph: bn_bwd adds those of the
 * step).  The conv's scratch slot must hold ROWS's patches and one sample's
 * dx beside them. */
static int SFX(bn_dx_ok)(const wick_graph *g, const node *bn) {
#if IS_FLOAT && WICK_BNP_AVX2
    const node *cv = &g->nodes[bn->in[0]];
    if (g->bn_dx_off || !bn->bn_pool || !bn->relu_fused || cv->op != OP_CONV2D || cv->consumers != 1 ||
        g->nodes[cv->in[0]].needs_grad || !g->nodes[cv->in[1]].needs_grad)
        return 0;
    conv_geo q = conv_geo_of(g, cv);
    size_t P = (size_t)q.OH * q.OW;
    /* and, for c1_fuse's recomputed planes, the nine tap planes and a plane */
    size_t need = P * 16 + (size_t)q.OUT * P + (c1_geo(&q) ? 10 * P : 0);
    return conv_dw_mode(g, &q) == CONV_DW_ROWS && need <= conv_slot_elems(&q);
#else
    (void)g;
    (void)bn;
    return 0;
#endif
}

/* Whether conv cv's output may be left to the batch norm that reads it, to
 * compute in one pass with its ReLU and pool (c1_fuse, c1_fwd): a training
 * forward with the batch's own statistics (not synchronised over processes),
 * a first 3x3 conv on grey images (c1_geo), read by that batch norm alone,
 * which this forward takes to its pool, and bn_dx's conditions (so that its
 * backward never reads the conv's output either: bnp_dx_sample computes each
 * plane again).  Returns the batch norm's index, or 0. */
static int SFX(c1_fuse_ok)(const wick_graph *g, const node *cv) {
#if IS_FLOAT && WICK_BNP_AVX2
    if (g->c1_fuse_off || !g->training || g->bn_sum) return 0;
    conv_geo q = conv_geo_of(g, cv);
    if (!c1_geo(&q)) return 0;
    int id = (int)(cv - g->nodes), bn = 0, readers = 0;
    for (int i = id + 1; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == id) {
                readers++;
                bn = i;
            }
    const node *b = &g->nodes[bn];
    if (readers != 1 || b->op != OP_BATCHNORM || b->in[0] != id || !b->bn_pool || !b->relu_fused ||
        b->bn_pool > g->fwd_end || !SFX(bn_dx_ok)(g, b))
        return 0;
    return bn;
#else
    (void)g;
    (void)cv;
    return 0;
#endif
}

#if IS_FLOAT && WICK_BNP_AVX2
/* conv1's weight and bias gradient where its output was never written
 * (c1_fuse) and its batch norm left dx to it (bn_dx), without the planes:
 * conv1 is linear in its nine taps, so the sum over positions that the
 * product would take splits into a sparse sum over the pool's argmax
 * positions and terms of the patches' sums and Gram that c1_fwd took.
 *
 * Per channel o (mean m, invstd is, k = gamma is, a and bq as bn_bwd kept
 * them), at every position p of every sample, with X_p the patch (nine
 * taps, zero outside the image) and y_p = b + W.X_p the conv's output:
 *   dx_p = k (d_p - a - (y_p - m) is bq)                 (bnp_dx_avx2)
 * d_p being nonzero only at argmax positions with the ReLU on.  c1_fwd's
 * sums are of q_p = X_p - s (s, in float, the batch's mean pixel; q = -s
 * outside the image): Q = sum_p q_p (9) and G = sum_p q_p q_p^T (9 x 9),
 * over the M = B H W positions.  With y_p - m = W.q_p + c, c = b + s sum_l
 * W_l - m (in double, m the float mean the forward used: so c is the
 * rounding of m plus -W.Q / M, and the dx above is the one recomputed):
 *   sum_p dx_p q_kp = k (A_k - a Q_k - bq is E_k)        (k < 9)
 *   sum_p dx_p      = k (A_9 - a M   - bq is E_9)        (= db)
 * where A_k = sum over the argmax of d q_k, A_9 = sum d (c1_dw_sample) and
 * E_k = sum_l W_l G_lk + c Q_k, E_9 = W.Q + M c; and since X = q + s,
 *   dW_k = sum_p dx_p X_kp = sum_p dx_p q_kp + s db.
 * (In exact arithmetic a M = A_9 and E_9 = 0, so db is rounding, as the
 * recompute's; the centring keeps a Q and s db small where the pixels'
 * mean is large.)  The sparse sums a sample at a time into fixed chunks'
 * partials, the chunks in order, in double: the same for every thread
 * count.  Against the recompute (bnp_dx_sample and the 32 x 784 x 10
 * product), the same values in other roundings: test_conv_fastpath
 * test_c1_dw against float64; WICK_C1_DW=0 for A/B.
 *
 * The sparse pass (c1_dw_pass) runs in the batch norm's backward, which
 * takes its own sums of d and d (x - m) from it (the same operations as
 * bnp_sums_avx2, so the same dgamma, dbeta, a and bq) instead of a pass of
 * its own over the pooled planes; it leaves A in the batch norm's aux
 * (c1_dw_aux) for this function. */
/* BN1's aux after c1_fwd's 17 C + 110: A (10 C doubles), a flag (1 double:
 * A is this backward's), then each sample's sums of d and d (x - m), C each
 * (ops.c op_aux_elems). */
static float *c1_dw_aux(const node *bnf, int C) { return (float *)bnf->aux + 17 * (size_t)C + 110; }
static const float *c1_dw_pass(wick_graph *g, const node *bnf, int B, const float *gam, const float *bet) {
    const node *cv = &g->nodes[bnf->in[0]];
    conv_geo q = conv_geo_of(g, cv);
    int C = q.OUT, HW = q.H * q.W, nch = conv_chunks(B), nt = conv_threads(g, &q, nch);
    double s, A[10], one_ = 1;
    memcpy(&s, (const float *)bnf->aux + 17 * C + 2 * 54, sizeof s);
    float sf = (float)s, *ax = c1_dw_aux(bnf, C), *ab = ax + 20 * (size_t)C + 2;
    size_t slot = conv_slot_elems(&q), wsz = (size_t)C * 10;
    float *scr = g->scratch, *part = scr + (size_t)g->scratch_threads * slot;
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)")
    for (int c = 0; c < nch; c++) {
        float *buf = scr + (size_t)omp_get_thread_num() * slot, *one = buf + 17 * (size_t)HW;
        float *pc = part + (size_t)c * wsz;
        int n0 = (int)((long)B * c / nch), n1 = (int)((long)B * (c + 1) / nch);
        for (int n = n0; n < n1; n++) {
            float *o = n > n0 ? one : pc, *sab = ab + (size_t)n * 2 * C;
            c1_dw_sample(g, bnf, n, sf, gam, bet, buf, o, sab + C);
            for (int k = 0; k < C; k++) sab[k] = o[(size_t)k * 10 + 9];
            if (n > n0)
                for (size_t e = 0; e < wsz; e++) pc[e] += one[e];
        }
    }
    for (int o = 0; o < C; o++) {
        for (int k = 0; k < 10; k++) A[k] = 0;
        for (int ch = 0; ch < nch; ch++)
            for (int k = 0; k < 10; k++) A[k] += part[(size_t)ch * wsz + (size_t)o * 10 + k];
        memcpy(ax + (size_t)o * 20, A, sizeof A);
    }
    memcpy(ax + 20 * (size_t)C, &one_, sizeof one_);
    return ab;
}
static void c1_dw(wick_graph *g, const conv_geo *q, int B, const node *bnf, float *dW, int accw, float *db,
                  int accb) {
    int C = q->OUT, HW = q->H * q->W;
    const float *mean = bnf->aux, *inv = mean + C, *ka = mean + 2 * C, *kbq = ka + C, *kk = kbq + C;
    const float *cw = mean + 7 * C, *cb = cw + 9 * C;
    double S[54], s, ok, zero = 0;
    memcpy(S, mean + 17 * C, sizeof S);
    memcpy(&s, mean + 17 * C + 2 * 54, sizeof s);
    float sf = (float)s, *ax = c1_dw_aux(bnf, C);
    memcpy(&ok, ax + 20 * (size_t)C, sizeof ok);
    if (ok != 1)   /* not left by the batch norm's backward: gamma and beta as it kept them */
        c1_dw_pass(g, bnf, B, kk + C, kk + 2 * C);
    memcpy(ax + 20 * (size_t)C, &zero, sizeof zero);
    double G[9][9], M = (double)B * HW;
    for (int k = 0, e = 9; k < 9; k++)
        for (int l = k; l < 9; l++, e++) G[k][l] = G[l][k] = S[e];
    for (int o = 0; o < C; o++) {
        const float *w = cw + (size_t)o * 9;
        double A[10], E[10], r[10], c = (double)cb[o] - mean[o], sw = 0;
        memcpy(A, ax + (size_t)o * 20, sizeof A);
        for (int l = 0; l < 9; l++) sw += w[l];
        c += (double)sf * sw;
        E[9] = M * c;
        for (int k = 0; k < 9; k++) {
            E[k] = c * S[k];
            for (int l = 0; l < 9; l++) E[k] += (double)w[l] * G[l][k];
            E[9] += (double)w[k] * S[k];
        }
        double bi = (double)kbq[o] * inv[o];
        for (int k = 0; k < 10; k++) r[k] = (double)kk[o] * (A[k] - (double)ka[o] * (k < 9 ? S[k] : M) - bi * E[k]);
        for (int k = 0; k < 9; k++) {
            float v = (float)(r[k] + (double)sf * r[9]);
            dW[(size_t)o * 9 + k] = accw ? dW[(size_t)o * 9 + k] + v : v;
        }
        if (db) db[o] = accb ? db[o] + (float)r[9] : (float)r[9];
    }
}
#endif

#if IS_FLOAT
/* dW of an ungrouped float conv on wick's kernel, mode SHIFT or ROWS
 * (ops.c conv_dw_mode).  As the general loop: fixed chunks of samples, each
 * into its own partial, the partials added in chunk order, so the sums are
 * the same for every thread count.  SHIFT's partial is [kh kw][OUT][C],
 * ROWS's [OUT][C kh kw + 1] (dW's own layout, and db in the last column:
 * with db non-null, ROWS sums it in the same product, from a column of ones
 * beside the patches, instead of reading dy once more). */
static void conv_dw_kern(wick_graph *g, const conv_geo *q, int mode, int B, const float *x, int xcols,
                         const float *dy, int ycols, float *dW, int accw, float *db, int accb,
                         const node *bnf, int dy8, int x8) {
    int P = q->OH * q->OW, KG = q->C * q->kh * q->kw, nch = conv_chunks(B);
    int Hp = q->H + 2 * q->ph, Wp = q->W + 2 * q->pw, np16 = (q->C + 15) / 16;
    int nb = mode == CONV_DW_ROWS && db;   /* the column of ones */
    size_t slot = conv_slot_elems(q), xe = conv_shift_x_elems(q);
    size_t wsz = (size_t)q->OUT * (KG + 1);   /* a partial (SHIFT: db's partial after dW's) */
    size_t plane = (size_t)Hp * Wp * 16;   /* one panel of 16 channels */
    size_t cplane = (size_t)Hp * q->OW * 16;   /* the same in a column copy */
#if WICK_BNP_AVX2
    if (bnf && mode == CONV_DW_ROWS && g->nodes[bnf->in[0]].c1_fuse && !g->c1_dw_off) {
        c1_dw(g, q, B, bnf, dW, accw, db, accb);   /* without the planes */
        return;
    }
#endif
    int nt = conv_threads(g, q, nch);
    float *scr = g->scratch, *part = scr + (size_t)g->scratch_threads * slot;
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)")
    for (int c = 0; c < nch; c++) {
        float *buf = scr + (size_t)omp_get_thread_num() * slot;
        float *pc = part + (size_t)c * wsz;
        int n0 = (int)((long)B * c / nch), n1 = (int)((long)B * (c + 1) / nch);
        if (mode == CONV_DW_SHIFT) {
            /* the borders and the channels past C stay zero: each sample
               below writes only the interior */
            float *xt = buf, *xj = buf + xe, *pdb = pc + (size_t)q->OUT * KG;
            memset(xt, 0, xe * sizeof *buf);
            if (db) memset(pdb, 0, q->OUT * sizeof *pdb);
            for (int n = n0; n < n1; n++) {
                const float *xs = x + (size_t)n * xcols, *dys = dy + (size_t)n * ycols;
#if WICK_BNP_AVX2
                if (dy8) {   /* dy in nChw8c (dy_blk): its planes into the slot after
                                the column copies, where the products find them */
                    float *dt = xj + conv_shift_cols_elems(q);
                    for (int cb = 0; cb < q->OUT / 8; cb++)
                        blk_planes(dys + (size_t)cb * 8 * P, P, P, dt + (size_t)cb * 8 * P);
                    dys = dt;
                }
#endif
                /* db's partial from this sample's dy, which the taps' products
                   below then find in cache (a pass of its own over dy cost
                   more: bench/README.md, "SHIFT without padded columns") */
                for (int o = 0; db && o < q->OUT; o++) {
                    const float *r = dys + (size_t)o * P;
                    float sn = 0;
                    _Pragma("omp simd reduction(+ : sn)")
                    for (int p = 0; p < P; p++) sn += r[p];
                    pdb[o] += sn;
                }
                for (int cb = 0; x8 && cb < q->C / 8; cb++) {   /* x in nChw8c (x_blk): 8 channels a pixel */
                    float *xp = xt + (size_t)(cb / 2) * plane + (cb % 2) * 8;
                    const float *xc = xs + (size_t)cb * 8 * q->H * q->W;
                    for (int iy = 0; iy < q->H; iy++) {
                        float *xr = xp + ((size_t)(iy + q->ph) * Wp + q->pw) * 16;
                        const float *xi = xc + (size_t)iy * q->W * 8;
                        for (int ix = 0; ix < q->W; ix++)
                            for (int k = 0; k < 8; k++) xr[(size_t)ix * 16 + k] = xi[(size_t)ix * 8 + k];
                    }
                }
                for (int ch = 0; !x8 && ch < q->C; ch++) {
                    float *xp = xt + (size_t)(ch / 16) * plane + ch % 16;
                    const float *xc = xs + (size_t)ch * q->H * q->W;
                    for (int iy = 0; iy < q->H; iy++) {
                        float *xr = xp + ((size_t)(iy + q->ph) * Wp + q->pw) * 16;
                        for (int ix = 0; ix < q->W; ix++) xr[(size_t)ix * 16] = xc[iy * q->W + ix];
                    }
                }
                /* copy j, row iy: the padded row's columns j dw .. j dw + OW - 1
                   (so dy needs no padded copy, and no product runs over the
                   Wp - OW columns past each of its rows) */
                for (int j = 0; j < q->kw; j++)
                    for (int pn = 0; pn < np16; pn++)
                        for (int iy = 0; iy < Hp; iy++)
                            memcpy(xj + ((size_t)j * np16 + pn) * cplane + (size_t)iy * q->OW * 16,
                                   xt + pn * plane + ((size_t)iy * Wp + (size_t)j * q->dw) * 16,
                                   (size_t)q->OW * 16 * sizeof *xj);
                /* tap (i, j): position p = oy OW + ox of dy meets copy j at
                   p + i dh OW */
                for (int i = 0; i < q->kh; i++)
                    for (int j = 0; j < q->kw; j++)
                        wick_kern_gemm(q->OUT, q->C, P, dys, P, 1,
                                       xj + (size_t)j * np16 * cplane + (size_t)i * q->dh * q->OW * 16, 16,
                                       (ptrdiff_t)cplane, pc + (size_t)(i * q->kw + j) * q->OUT * q->C, q->C,
                                       NULL, n > n0 ? WICK_KERN_ACC : 0);
            }
        } else {
            /* the patches as rows: r[p][k] = col[k][p], k < KG <= 16 */
            float *r = buf;
            memset(r, 0, (size_t)P * 16 * sizeof *r);
            if (nb)
                for (int p = 0; p < P; p++) r[(size_t)p * 16 + KG] = 1;
            for (int n = n0; n < n1; n++) {
                const float *xs = x + (size_t)n * xcols;
                for (int ch = 0; ch < q->C; ch++)
                    for (int i = 0; i < q->kh; i++)
                        for (int j = 0; j < q->kw; j++) {
                            int k = (ch * q->kh + i) * q->kw + j, off = j * q->dw - q->pw, lo, hi;
                            conv_valid(off, q->sw, q->W, q->OW, &lo, &hi);
                            for (int oy = 0; oy < q->OH; oy++) {
                                int iy = oy * q->sh - q->ph + i * q->dh;
                                float *rr = r + (size_t)oy * q->OW * 16 + k;
                                if (iy < 0 || iy >= q->H) {
                                    for (int ox = 0; ox < q->OW; ox++) rr[(size_t)ox * 16] = 0;
                                    continue;
                                }
                                const float *xr = xs + ((size_t)ch * q->H + iy) * q->W + off;
                                for (int ox = 0; ox < lo; ox++) rr[(size_t)ox * 16] = 0;
                                for (int ox = lo; ox < hi; ox++) rr[(size_t)ox * 16] = xr[ox * q->sw];
                                for (int ox = hi; ox < q->OW; ox++) rr[(size_t)ox * 16] = 0;
                            }
                        }
                const float *dys = dy + (size_t)n * ycols;
#if WICK_BNP_AVX2
                if (bnf) {   /* dy recomputed (bn_dx), after the patches in the slot */
                    bnp_dx_sample(g, bnf, n, r + (size_t)P * 16);
                    dys = r + (size_t)P * 16;
                }
#endif
                wick_kern_gemm(q->OUT, KG + nb, P, dys, P, 1, r, 16, 16, pc, KG + 1, NULL,
                               n > n0 ? WICK_KERN_ACC : 0);
            }
        }
    }
    /* the partials read in their own order, one row of C (SHIFT) or KG
       (ROWS) at a time; SHIFT's row (t, o) lands at dW[o][ch][t] */
    int KK = q->kh * q->kw, rows = mode == CONV_DW_SHIFT ? KK * q->OUT : q->OUT;
    int len = mode == CONV_DW_SHIFT ? q->C : KG, ld = mode == CONV_DW_SHIFT ? q->C : KG + 1;
    /* each row summed in a thread's scratch, chunk after chunk (contiguous
       reads that vectorise; each element's sum in chunk order as before) */
    _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1 && wsz * nch > 32768)")
    for (int r = 0; r < rows; r++) {
        int t = mode == CONV_DW_SHIFT ? r / q->OUT : 0, o = mode == CONV_DW_SHIFT ? r % q->OUT : r;
        size_t e0 = (size_t)o * KG + t, es = mode == CONV_DW_SHIFT ? (size_t)KK : 1;
        const float *p0 = part + (size_t)r * ld;
        float *s = scr + (size_t)omp_get_thread_num() * slot;
        for (int k = 0; k < len; k++) s[k] = accw ? dW[e0 + k * es] : 0;
        if (nb) s[KG] = accb ? db[o] : 0;
        for (int c = 0; c < nch; c++) {
            const float *pc = p0 + (size_t)c * wsz;
            _Pragma("omp simd")
            for (int k = 0; k < len + nb; k++) s[k] += pc[k];
        }
        for (int k = 0; k < len; k++) dW[e0 + k * es] = s[k];
        if (nb) db[o] = s[KG];
    }
    if (mode == CONV_DW_SHIFT && db)   /* the chunks' db partials, in chunk order */
        for (int o = 0; o < q->OUT; o++) {
            float sb = accb ? db[o] : 0;
            for (int c = 0; c < nch; c++) sb += part[(size_t)c * wsz + (size_t)q->OUT * KG + o];
            db[o] = sb;
        }
}
#endif

/* Whether conv nd leaves its values in nChw8c this forward (conv_blk): its
 * batch norm then takes bn_fwd_blk (the pool within this forward, no
 * synchronised statistics), and the plan's convolution writes that layout. */
#if IS_FLOAT
static int conv_blk_ok(const wick_graph *g, const node *nd) {
#if WICK_BNP_AVX2
    if (!nd->conv_blk || g->conv_blk_off || !nd->cplan) return 0;
    const node *bn = &g->nodes[nd->conv_blk];
    if (!bn->bn_pool || bn->bn_pool > g->fwd_end || !bn->relu_fused || (g->training && g->bn_sum)) return 0;
    return wick_conv_nchw8c_out(nd->cplan);
#else
    (void)g;
    (void)nd;
    return 0;
#endif
}
#endif

static void SFX(conv_fwd)(wick_graph *g, node *nd) {
    conv_geo q = conv_geo_of(g, nd);
    const node *xn = &g->nodes[nd->in[0]];
    const T *x = xn->val, *W = g->nodes[nd->in[1]].val;
    const T *b = nd->n_in > 2 ? (const T *)g->nodes[nd->in[2]].val : NULL;
    T *y = nd->val;
    nd->val_blk = 0;
    nd->c1_fuse = SFX(c1_fuse_ok)(g, nd);
    if (nd->c1_fuse) return;   /* its batch norm computes it without writing it (c1_fwd) */
#if IS_FLOAT
    nd->grad_blk = 0;
    nd->val_blk = conv_blk_ok(g, nd);
    if (xn->val_blk && xn->op != OP_CONV2D) {   /* x_blk: c1_fwd checked the plan reads x so */
        if (nd->cplan && wick_conv_nchw8c_in(nd->cplan)) {
            wick_conv_forward_xblk(nd->cplan, x, W, b, y, nd->val_blk);
            return;
        }
        op_conv_unblock(g, (node *)xn);
    }
    if (nd->val_blk) {   /* for its batch norm, in the layout the product writes */
        wick_conv_forward_nchw8c(nd->cplan, x, W, b, y);
        return;
    }
    if (nd->cplan) {
        wick_conv_forward(nd->cplan, x, W, b, y);
        return;
    }
#endif
    int B = nd->rows, P = q.OH * q.OW, OG = q.OUT / q.G, KG = q.C / q.G * q.kh * q.kw;
    size_t slot = conv_slot_elems(&q);
    int direct = conv_is_pointwise(&q), depthwise = conv_is_depthwise(&q), nt = conv_threads(g, &q, B);
    T *scr = g->scratch;
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)")
    for (int n = 0; n < B; n++) {
        const T *xs = x + (size_t)n * xn->cols;
        T *ys = y + (size_t)n * nd->cols, *col = scr + (size_t)omp_get_thread_num() * slot;
        if (depthwise) {
            SFX(dw_sample)(&q, 0, xs, W, b, ys, NULL, NULL, NULL);
            continue;
        }
        if (!direct) SFX(im2col)(&q, xs, col);
        const T *cm = direct ? xs : col;
        for (int gi = 0; gi < q.G; gi++) {
            T *yg = ys + (size_t)gi * OG * P;
            if (b)
                for (int o = 0; o < OG; o++)
                    for (int p = 0; p < P; p++) yg[(size_t)o * P + p] = b[gi * OG + o];
            GEMM(0, 0, OG, P, KG, 1, W + (size_t)gi * OG * KG, KG, cm + (size_t)gi * KG * P, P, b ? 1 : 0,
                 yg, P);
        }
    }
}

static void SFX(conv_bwd)(wick_graph *g, node *nd) {
    conv_geo q = conv_geo_of(g, nd);
    node *xn = &g->nodes[nd->in[0]], *wn = &g->nodes[nd->in[1]];
    node *bn = nd->n_in > 2 ? &g->nodes[nd->in[2]] : NULL;
    const T *x = xn->val, *W = wn->val, *dy = nd->grad;
    int B = nd->rows, P = q.OH * q.OW, OG = q.OUT / q.G, KG = q.C / q.G * q.kh * q.kw;
    int acc = 0;
    T *db = bn ? SFX(in_grad)(g, nd, 2, &acc) : NULL;
#if IS_FLOAT
    T *dbk = NULL;   /* summed by conv_dw_kern in its product */
    if (db && conv_dw_mode(g, &q) != CONV_DW_GEMM && g->nodes[nd->in[1]].needs_grad) {
        dbk = db;
        db = NULL;
    }
    /* dy in nChw8c alone (grad_blk 2: bn_bwd's dy_blk), where both the
       plan's input gradient and SHIFT's weight gradient read it; any other
       reader here takes it in NCHW, written now */
    int dy8 = 0;
    if (nd->grad_blk == 2) {
        int dxb = !xn->needs_grad || (nd->cplan && !xn->grad_begun && wick_conv_nchw8c_dy(nd->cplan));
        int dwb = !wn->needs_grad || (conv_dw_mode(g, &q) == CONV_DW_SHIFT && q.OUT % 8 == 0 &&
                                      conv_shift_x_elems(&q) + conv_shift_cols_elems(&q) + (size_t)q.OUT * P <=
                                          conv_slot_elems(&q));
        if (db || !dxb || !dwb) op_conv_dy_unblock(g, nd);
        else dy8 = 1;
    }
#endif
    if (db) {   /* db[o] = sum over samples of each sample's vector sum: one order per build */
        _Pragma("omp parallel for schedule(static) if ((size_t)B * nd->cols > 32768)")
        for (int o = 0; o < q.OUT; o++) {
            T s = 0;
            for (int n = 0; n < B; n++) {
                const T *r = dy + (size_t)n * nd->cols + (size_t)o * P;
                T sn = 0;
                _Pragma("omp simd reduction(+ : sn)")
                for (int p = 0; p < P; p++) sn += r[p];
                s += sn;
            }
            ACC(db, o, s);
        }
    }
    int accw = 0, accx = 0;
    T *dW = SFX(in_grad)(g, nd, 1, &accw), *dx = SFX(in_grad)(g, nd, 0, &accx);
#if IS_FLOAT
    /* x_blk: dx left in nChw8c too, for conv1's weight-gradient pass
       (c1_dw_sample); bn_bwd brings it to NCHW for any other reader */
    int dxb = xn->op == OP_MAXPOOL2D && xn->val_blk && nd->cplan && dx && !accx && wick_conv_nchw8c_dx(nd->cplan);
    if (xn->op == OP_MAXPOOL2D && dx && !accx) xn->grad_blk = dxb;
    if (nd->cplan && dx && !accx && nd->grad_blk && wick_conv_nchw8c_dy(nd->cplan)) {
        if (dxb) wick_conv_backward_data_dxblk(nd->cplan, nd->aux, W, dx, 1);
        else wick_conv_backward_data_nchw8c(nd->cplan, nd->aux, W, dx);   /* dy as its batch norm left it */
        if (nd->grad_blk == 1) nd->grad_blk = 0;   /* 2: NCHW unwritten (wick_graph_grad writes it) */
        dx = NULL;
    } else if (nd->cplan && dx && !accx) {   /* the plan overwrites dx: a first contribution only */
        if (dxb) wick_conv_backward_data_dxblk(nd->cplan, dy, W, dx, 0);
        else wick_conv_backward_data(nd->cplan, dy, W, dx);
        dx = NULL;
    }
    int dwm = dW ? conv_dw_mode(g, &q) : CONV_DW_GEMM, x8 = 0;
    if (xn->val_blk && xn->op != OP_CONV2D) {   /* x_blk: SHIFT copies x from nChw8c; others read NCHW */
        if (dW && !(dwm == CONV_DW_SHIFT && q.C % 8 == 0)) op_conv_unblock(g, xn);
        else x8 = 1;
    }
    if (dwm != CONV_DW_GEMM) {
        /* dy left to this backward by its batch norm (bn_dx, on this path) */
        const node *bnf = nd->bn_dx && g->nodes[nd->bn_dx].pending >= 0 ? &g->nodes[nd->bn_dx] : NULL;
        conv_dw_kern(g, &q, dwm, B, x, xn->cols, dy8 ? (const float *)nd->aux : dy, nd->cols, dW, accw, dbk, acc,
                     bnf, dy8, x8);
        dW = NULL;
    }
#endif
    if (!dW && !dx) return;
    /* The weight gradient sums over samples in fixed chunks, each into its own
       partial, the partials then added in chunk order: the same sums for every
       thread count.  One chunk writes dW itself. */
    int nch = dW ? conv_chunks(B) : B;
    size_t slot = conv_slot_elems(&q), wsz = (size_t)q.OUT * KG;
    int direct = conv_is_pointwise(&q), depthwise = conv_is_depthwise(&q), nt = conv_threads(g, &q, nch);
    T *scr = g->scratch, *part = scr + (size_t)g->scratch_threads * slot;
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)")
    for (int c = 0; c < nch; c++) {
        T *col = scr + (size_t)omp_get_thread_num() * slot, *dcol = col + slot / 2;
        T *dWc = nch == 1 ? dW : part + (size_t)c * wsz;
        int n0 = (int)((long)B * c / nch), n1 = (int)((long)B * (c + 1) / nch);
        for (int n = n0; n < n1; n++) {
            const T *xs = x + (size_t)n * xn->cols, *dys = dy + (size_t)n * nd->cols;
            T *dxs = dx ? dx + (size_t)n * xn->cols : NULL;
            if (depthwise) {
                if (dW && n == n0 && !(nch == 1 && accw)) memset(dWc, 0, wsz * sizeof *dWc);
                if (dW) SFX(dw_sample)(&q, 2, xs, NULL, NULL, NULL, NULL, dys, dWc);
                if (dx && !accx) memset(dxs, 0, (size_t)xn->cols * sizeof *dxs);
                if (dx) SFX(dw_sample)(&q, 1, NULL, W, NULL, NULL, dxs, dys, NULL);
                continue;
            }
            if (dW && !direct) SFX(im2col)(&q, xs, col);
            const T *cm = direct ? xs : col;
            T beta = n > n0 ? 1 : (nch == 1 && accw) ? 1 : 0;
            for (int gi = 0; gi < q.G; gi++) {
                const T *dyg = dys + (size_t)gi * OG * P;
                if (dW)
                    GEMM(0, 1, OG, KG, P, 1, dyg, P, cm + (size_t)gi * KG * P, P, beta, dWc + (size_t)gi * OG * KG,
                         KG);
                if (dx)
                    GEMM(1, 0, KG, P, OG, 1, W + (size_t)gi * OG * KG, KG, dyg, P, direct && accx ? 1 : 0,
                         direct ? dxs + (size_t)gi * KG * P : dcol + (size_t)gi * KG * P, P);
            }
            if (dx && !direct) {
                if (!accx) memset(dxs, 0, (size_t)xn->cols * sizeof *dxs);
                SFX(col2im)(&q, dcol, dxs);
            }
        }
    }
    if (dW && nch > 1) {
        _Pragma("omp parallel for schedule(static) if (wsz * nch > 32768)")
        for (size_t i = 0; i < wsz; i++) {
            T s = accw ? dW[i] : 0;
            for (int c = 0; c < nch; c++) s += part[(size_t)c * wsz + i];
            dW[i] = s;
        }
    }
}

/* ---- pooling ------------------------------------------------------------
 * x: [B, C*H*W] -> y: [B, C*OH*OW].  The loops run over the window's (i, j)
 * outside and a row of outputs inside (as dw_sample), so each output still
 * sees its window in row-major order and the inner loop vectorises.  Max
 * pooling keeps, in aux, the index within the sample of each output's
 * maximum (int32) for the backward scatter: torch's rule, the first maximum
 * (v > m), a NaN replacing whatever came before; -1 (no gradient) for a
 * window of padding or -inf only. */

/* The common 2x2 window at stride 2 without padding: every tap lies inside,
 * so each output takes its four taps in row-major order without the window
 * loops' bounds (measured in bench/README.md, "CNN step").  Outputs go eight
 * at a time through one fixed-length loop that gcc vectorises; a row's last
 * few (all of a 7-wide row of a 14x14 input) are computed as eight into a
 * scratch copy, reading on into the next input row, and only the first few
 * kept, since a scalar tail was most of the time of rows that short. */
static inline void SFX(maxpool22_eight)(const T *restrict p0, int W, int i, T *restrict y, int32_t *restrict arg) {
    const T *p1 = p0 + W;
    for (int ox = 0; ox < 8; ox++) {   /* selects only: ReLU outputs tie often and branches would mispredict */
        /* a pair's winner is its first maximum, or its last NaN; the lower
           pair's replaces the upper's on the same rule: what the four taps
           in order give */
        T a = p0[2 * ox], b = p0[2 * ox + 1], c2 = p1[2 * ox], d = p1[2 * ox + 1];
        int k = i + 2 * ox;
        _Bool tb = b > a || b != b, td = d > c2 || d != d;
        T u = tb ? b : a, l = td ? d : c2;
        int iu = tb ? k + 1 : k, il = td ? k + W + 1 : k + W;
        _Bool tl = l > u || l != l;
        T m = tl ? l : u;
        int im = tl ? il : iu;
        y[ox] = m;
        arg[ox] = m == -INFINITY ? -1 : im;   /* all four -inf: no gradient, as the general loop */
    }
}

static void SFX(maxpool22_fwd)(const conv_geo *q, int B, const T *restrict x, int xcols, T *restrict y,
                               int32_t *restrict arg, int ycols) {
    int P = q->OH * q->OW, W = q->W, OW = q->OW;
    _Pragma("omp parallel for schedule(static) if ((size_t)B * xcols > 32768)")
    for (int n = 0; n < B; n++)
        for (int c = 0; c < q->C; c++) {
            const T *xp = x + (size_t)n * xcols;
            T *yp = y + (size_t)n * ycols + (size_t)c * P;
            int32_t *ap = arg + (size_t)n * ycols + (size_t)c * P;
            for (int oy = 0; oy < q->OH; oy++) {
                int r0 = (c * q->H + 2 * oy) * W;
                T *yr = yp + (size_t)oy * OW;
                int32_t *ar = ap + (size_t)oy * OW;
                for (int ox = 0; ox < OW; ox += 8) {
                    int i = r0 + 2 * ox, w = OW - ox < 8 ? OW - ox : 8;
                    if (w == 8) {
                        SFX(maxpool22_eight)(xp + i, W, i, yr + ox, ar + ox);
                    } else if (i + W + 16 <= xcols) {   /* the eight's taps lie within the sample */
                        T yt[8];
                        int32_t at[8];
                        SFX(maxpool22_eight)(xp + i, W, i, yt, at);
                        memcpy(yr + ox, yt, (size_t)w * sizeof *yt);
                        memcpy(ar + ox, at, (size_t)w * sizeof *at);
                    } else {   /* the sample's last row: one output at a time */
                        for (int k = 0; k < w; k++) {
                            T yt[8];
                            int32_t at[8];
                            const T *p0 = xp + i + 2 * k, *p1 = p0 + W;
                            T v[4] = {p0[0], p0[1], p1[0], p1[1]};
                            int iv[4] = {i + 2 * k, i + 2 * k + 1, i + 2 * k + W, i + 2 * k + W + 1};
                            yt[0] = -INFINITY, at[0] = -1;
                            for (int t = 0; t < 4; t++)
                                if (v[t] > yt[0] || v[t] != v[t]) yt[0] = v[t], at[0] = iv[t];
                            yr[ox + k] = yt[0];
                            ar[ox + k] = at[0];
                        }
                    }
                }
            }
        }
}

/* One plane of H x W values (p, with 16 readable values past its end) into
 * its OH x OW outputs, the argmax counted from `base`: maxpool22_fwd's loop
 * for a batch norm fused with its pool (bn_fwd), where the eight-wide loop
 * takes every row's tail, reading on into the padding. */
static void SFX(maxpool22_plane)(const T *restrict p, int OH, int OW, int W, int base, T *restrict y,
                                 int32_t *restrict arg) {
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox += 8) {
            int i = 2 * oy * W + 2 * ox, w = OW - ox < 8 ? OW - ox : 8;
            if (w == 8) {
                SFX(maxpool22_eight)(p + i, W, base + i, y + (size_t)oy * OW + ox, arg + (size_t)oy * OW + ox);
            } else {
                T yt[8];
                int32_t at[8];
                SFX(maxpool22_eight)(p + i, W, base + i, yt, at);
                memcpy(y + (size_t)oy * OW + ox, yt, (size_t)w * sizeof *yt);
                memcpy(arg + (size_t)oy * OW + ox, at, (size_t)w * sizeof *at);
            }
        }
}

static void SFX(maxpool_fwd)(wick_graph *g, node *nd) {
    if (nd->bn_pool) return;   /* bn_fwd computed it */
    const node *xn = &g->nodes[nd->in[0]];
    conv_geo q = conv_geo_of(g, nd);
    int B = nd->rows, P = q.OH * q.OW;
    const T *x = xn->val;
    T *y = nd->val;
    int32_t *arg = nd->aux;
    size_t work = (size_t)B * xn->cols;
    if (q.kh == 2 && q.kw == 2 && q.sh == 2 && q.sw == 2 && !q.ph && !q.pw && q.dh == 1 && q.dw == 1) {
        SFX(maxpool22_fwd)(&q, B, x, xn->cols, y, arg, nd->cols);
        return;
    }
    _Pragma("omp parallel for schedule(static) if (work > 32768)")
    for (int n = 0; n < B; n++)
        for (int c = 0; c < q.C; c++) {
            const T *xp = x + (size_t)n * xn->cols;
            T *yp = y + (size_t)n * nd->cols + (size_t)c * P;
            int32_t *ap = arg + (size_t)n * nd->cols + (size_t)c * P;
            for (int t = 0; t < P; t++) yp[t] = -INFINITY, ap[t] = -1;
            for (int i = 0; i < q.kh; i++)
                for (int j = 0; j < q.kw; j++) {
                    int off = j * q.dw - q.pw, lo, hi;
                    conv_valid(off, q.sw, q.W, q.OW, &lo, &hi);
                    for (int oy = 0; oy < q.OH; oy++) {
                        int iy = oy * q.sh - q.ph + i * q.dh;
                        if (iy < 0 || iy >= q.H) continue;
                        int xr = (c * q.H + iy) * q.W + off;
                        T *yr = yp + (size_t)oy * q.OW;
                        int32_t *ar = ap + (size_t)oy * q.OW;
                        _Pragma("omp simd")
                        for (int ox = lo; ox < hi; ox++) {
                            T v = xp[xr + ox * q.sw];
                            int take = v > yr[ox] || v != v;
                            yr[ox] = take ? v : yr[ox];
                            ar[ox] = take ? xr + ox * q.sw : ar[ox];
                        }
                    }
                }
        }
}

static void SFX(maxpool_bwd)(wick_graph *g, node *nd, T *dx, int acc) {
    const node *xn = &g->nodes[nd->in[0]];
    const T *dy = nd->grad;
    const int32_t *arg = nd->aux;
    size_t work = (size_t)nd->rows * xn->cols;
    _Pragma("omp parallel for schedule(static) if (work > 32768)")
    for (int n = 0; n < nd->rows; n++) {
        T *d = dx + (size_t)n * xn->cols;
        if (!acc) memset(d, 0, (size_t)xn->cols * sizeof *d);
        size_t o = (size_t)n * nd->cols;
        for (int t = 0; t < nd->cols; t++)
            if (arg[o + t] >= 0) d[arg[o + t]] += dy[o + t];
    }
}

/* Average pooling, count_include_pad: each window sums what lies inside the
 * input and divides by kh*kw.  back = 1: dx += dy / (kh kw) over each window. */
static void SFX(avgpool)(wick_graph *g, node *nd, T *dx, int acc, int back) {
    const node *xn = &g->nodes[nd->in[0]];
    conv_geo q = conv_geo_of(g, nd);
    int B = nd->rows, P = q.OH * q.OW;
    const T *x = xn->val, *dy = nd->grad;
    T *y = nd->val, inv = (T)1 / ((T)q.kh * q.kw);
    size_t work = (size_t)B * xn->cols;
    _Pragma("omp parallel for schedule(static) if (work > 32768)")
    for (int n = 0; n < B; n++) {
        if (back && !acc) memset(dx + (size_t)n * xn->cols, 0, (size_t)xn->cols * sizeof *dx);
        for (int c = 0; c < q.C; c++) {
            size_t xo = (size_t)n * xn->cols + (size_t)c * q.H * q.W;
            size_t yo = (size_t)n * nd->cols + (size_t)c * P;
            if (!back)
                for (int t = 0; t < P; t++) y[yo + t] = 0;
            for (int i = 0; i < q.kh; i++)
                for (int j = 0; j < q.kw; j++) {
                    int off = j - q.pw, lo, hi;
                    conv_valid(off, q.sw, q.W, q.OW, &lo, &hi);
                    for (int oy = 0; oy < q.OH; oy++) {
                        int iy = oy * q.sh - q.ph + i;
                        if (iy < 0 || iy >= q.H) continue;
                        size_t xr = xo + (size_t)iy * q.W, yr = yo + (size_t)oy * q.OW;
                        if (back) {
                            _Pragma("omp simd")
                            for (int ox = lo; ox < hi; ox++) dx[xr + ox * q.sw + off] += dy[yr + ox] * inv;
                        } else {
                            _Pragma("omp simd")
                            for (int ox = lo; ox < hi; ox++) y[yr + ox] += x[xr + ox * q.sw + off];
                        }
                    }
                }
            if (!back)
                for (int t = 0; t < P; t++) y[yo + t] *= inv;
        }
    }
}

/* x: [B, C*H*W] -> y: [B, C], the mean of each channel's H*W values. */
static void SFX(gap)(wick_graph *g, node *nd, T *dx, int acc, int back) {
    const node *xn = &g->nodes[nd->in[0]];
    int HW = xn->H * xn->W, C = nd->C;
    const T *x = xn->val, *dy = nd->grad;
    T *y = nd->val, inv = (T)1 / (T)HW;
    size_t work = (size_t)(nd->rows) * (xn->cols);
    _Pragma("omp parallel for schedule(static) if (work > 32768)")
    for (int n = 0; n < nd->rows; n++)
        for (int c = 0; c < C; c++) {
            size_t xo = (size_t)n * xn->cols + (size_t)c * HW, o = (size_t)n * C + c;
            if (back) {
                for (int p = 0; p < HW; p++) ACC(dx, xo + p, dy[o] * inv);
            } else {
                T s = 0;
                for (int p = 0; p < HW; p++) s += x[xo + p];
                y[o] = s * inv;
            }
        }
}

/* ---- batch normalisation ------------------------------------------------
 * x, y: [B, C*HW] (HW = 1 for a plain node); gamma, beta, running mean and
 * variance: [C].  aux = (mean[C], invstd[C]) of the last forward, M = B*HW:
 *   xhat = (x - mean) invstd,  y = gamma xhat + beta.
 * Training: mean and the biased variance of the batch; the running ones move
 * by momentum with the unbiased variance var M / (M - 1).  Eval: the running
 * statistics.  A channel's sums add each sample's vectorised sum in double,
 * one channel per iteration: the same for every thread count. */

/* The sum of r[0..n), or with sq of (r - m)^2, vectorised: one order per
 * build, the same for every thread count. */
static double SFX(seg_sum)(const T *r, int n, int sq, T m) {
    T s = 0;
#if IS_FLOAT && defined(__AVX2__)
    /* four vector sums: one would wait on the add's latency each vector
       (the two passes over a batch norm's input ran at one vector in 3-4
       cycles; bench/README.md, "conv2's activation reorders") */
    if (n >= 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, mv = _mm256_set1_ps(m);
        int p = 0;
        for (; p + 32 <= n; p += 32) {
            __m256 v0 = _mm256_loadu_ps(r + p), v1 = _mm256_loadu_ps(r + p + 8);
            __m256 v2 = _mm256_loadu_ps(r + p + 16), v3 = _mm256_loadu_ps(r + p + 24);
            if (sq) {
                v0 = _mm256_sub_ps(v0, mv); v1 = _mm256_sub_ps(v1, mv);
                v2 = _mm256_sub_ps(v2, mv); v3 = _mm256_sub_ps(v3, mv);
                a0 = _mm256_fmadd_ps(v0, v0, a0); a1 = _mm256_fmadd_ps(v1, v1, a1);
                a2 = _mm256_fmadd_ps(v2, v2, a2); a3 = _mm256_fmadd_ps(v3, v3, a3);
            } else {
                a0 = _mm256_add_ps(a0, v0); a1 = _mm256_add_ps(a1, v1);
                a2 = _mm256_add_ps(a2, v2); a3 = _mm256_add_ps(a3, v3);
            }
        }
        for (; p + 8 <= n; p += 8) {
            __m256 v = _mm256_loadu_ps(r + p);
            if (sq) { v = _mm256_sub_ps(v, mv); a0 = _mm256_fmadd_ps(v, v, a0); }
            else a0 = _mm256_add_ps(a0, v);
        }
        float l[8];
        _mm256_storeu_ps(l, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (int k = 0; k < 8; k++) s += l[k];
        for (; p < n; p++) s += sq ? (r[p] - m) * (r[p] - m) : r[p];
        return s;
    }
#endif
    if (!sq) {
        _Pragma("omp simd reduction(+ : s)")
        for (int p = 0; p < n; p++) s += r[p];
    } else {
        _Pragma("omp simd reduction(+ : s)")
        for (int p = 0; p < n; p++) s += (r[p] - m) * (r[p] - m);
    }
    return s;
}

/* A channel's plane of each sample is a short run (HW values, a sample's
 * width apart), which the hardware prefetcher picks up too late to hide
 * each run's first misses: the loops over the samples ask for the plane
 * PLANE_AHEAD samples on (bench/README.md, "The batch norm + pool
 * backward"). */
#define PLANE_AHEAD 2
static inline void SFX(plane_prefetch)(const void *p, size_t bytes, int write) {
    for (size_t o = 0; o < bytes; o += 64) {
        if (write) __builtin_prefetch((const char *)p + o, 1, 3);
        else __builtin_prefetch((const char *)p + o, 0, 3);
    }
}

#if IS_FLOAT && WICK_BNP_AVX2
/* A first conv (c1_fuse: cv, its output never written) and batch norm nd,
 * with its ReLU and 2x2 pool, in one forward (ops.c c1_taps).  The batch's
 * statistics first: for the patches p (nine taps) and their mean pbar and
 * covariance Cov over the M = B H W positions, channel o's mean is W_o pbar
 * + b_o and its (biased) variance W_o Cov W_o^T, in double from the sums and
 * Gram of p - s (s the batch's mean pixel: the centring keeps Cov = Gram / M
 * - qbar qbar^T from being a difference of nearly equal numbers where the
 * pixels' mean is large against their spread), summed as the batch norm
 * sums its planes: a float sum a sample, in double over fixed chunks of
 * samples, the chunks in order (the same for every thread count).  Then a
 * sample at a time, each channel's plane in registers 16 pooled outputs
 * at a time (ops.c c1_pool; WICK_C1_POOL=0: in a thread's scratch, the same
 * bits), through the batch norm, ReLU and pool as bn_fwd's fused loop, x at
 * each argmax kept in nd's values (bn_xa) for the backward.  Against the
 * conv written and read back the statistics differ in rounding only
 * (test_conv_fastpath test_c1_fused). */
static void c1_fwd(wick_graph *g, node *nd) {
    node *cv = &g->nodes[nd->in[0]], *pn = &g->nodes[nd->bn_pool];
    const node *im = &g->nodes[cv->in[0]];
    conv_geo q = conv_geo_of(g, cv);
    int B = nd->rows, C = q.OUT, H = q.H, W = q.W, HW = H * W, P = pn->H * pn->W, nch = conv_chunks(B);
    const float *x = im->val, *Wt = g->nodes[cv->in[1]].val;
    const float *bias = cv->n_in > 2 ? (const float *)g->nodes[cv->in[2]].val : NULL;
    const float *gam = g->nodes[nd->in[1]].val, *bet = g->nodes[nd->in[2]].val;
    float *mean = nd->aux, *inv = mean + C, *cw = mean + 7 * C, *cb = cw + 9 * C;
    float *rm = nd->state[0] >= 0 ? (float *)g->nodes[nd->state[0]].val : NULL;
    float *rv = nd->state[0] >= 0 ? (float *)g->nodes[nd->state[1]].val : NULL;
    double M = (double)B * HW, mom = nd->scalar, eps = nd->scalar2;
    nd->ran_train = 1;
    nd->bn_share = 0;
    nd->bn_xa = 1;
    size_t slot = conv_slot_elems(&q);
    int nt = omp_get_max_threads();
    if (nt > g->scratch_threads) nt = g->scratch_threads;
    float *scr = g->scratch;
    double s = 0;
    for (int n = 0; n < B; n++) {
        const float *xs = x + (size_t)n * im->cols;
        float sn = 0;
        _Pragma("omp simd reduction(+ : sn)")
        for (int p = 0; p < HW; p++) sn += xs[p];
        s += sn;
    }
    s /= M;
    double part[CONV_CHUNKS][54];
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)")
    for (int c = 0; c < nch; c++) {
        float *Tp = scr + (size_t)omp_get_thread_num() * slot, *gs = Tp + 9 * (size_t)HW;
        int n0 = (int)((long)B * c / nch), n1 = (int)((long)B * (c + 1) / nch);
        for (int e = 0; e < 54; e++) part[c][e] = 0;
        for (int n = n0; n < n1; n++) {
            c1_taps(x + (size_t)n * im->cols, H, W, (float)s, Tp);
            c1_gram_sample(Tp, HW, gs);
            for (int e = 0; e < 54; e++) part[c][e] += gs[e];
        }
    }
    double S[54] = {0}, qb[9], cov[9][9];
    for (int c = 0; c < nch; c++)
        for (int e = 0; e < 54; e++) S[e] += part[c][e];
    for (int k = 0, e = 9; k < 9; k++) {
        qb[k] = S[k] / M;
        for (int l = k; l < 9; l++, e++) cov[k][l] = cov[l][k] = S[e] / M - (S[k] / M) * (S[l] / M);
    }
    memcpy(mean + 17 * C, S, sizeof S);   /* for the weight gradient (c1_dw) */
    memcpy(mean + 17 * C + 2 * 54, &s, sizeof s);
    for (int o = 0; o < C; o++) {
        const float *w = Wt + (size_t)o * 9;
        double mu = bias ? bias[o] : 0, var = 0;
        for (int k = 0; k < 9; k++) {
            mu += w[k] * (qb[k] + s);
            for (int l = 0; l < 9; l++) var += (double)w[k] * w[l] * cov[k][l];
        }
        if (var < 0) var = 0;   /* rounding of a constant channel */
        if (rm) {
            rm[o] = (float)((1 - mom) * rm[o] + mom * mu);
            rv[o] = (float)((1 - mom) * rv[o] + mom * (M > 1 ? var * M / (M - 1) : var));
        }
        mean[o] = (float)mu;
        inv[o] = (float)(1 / sqrt(var + eps));
        for (int k = 0; k < 9; k++) cw[(size_t)o * 9 + k] = w[k];   /* for the backward (bnp_dx_sample) */
        cb[o] = bias ? bias[o] : 0;
    }
    if (rm && nd->state[2] >= 0) ((int64_t *)g->nodes[nd->state[2]].val)[0]++;
    int inreg = !g->c1_pool_off;
    size_t ld = ((size_t)P + 7) & ~(size_t)7;
    /* x_blk: the pooled values in nChw8c for the conv that alone reads them
       (its plan then skips its transpose of them), each block of 8
       channels' planes in the scratch after i0, then transposed there */
    const node *c2 = pn->x_blk ? &g->nodes[pn->x_blk] : NULL;
    int xb = inreg && c2 && !g->x_blk_off && C % 8 == 0 && c2->cplan && wick_conv_nchw8c_in(c2->cplan) &&
             34 * ld + 8 * (size_t)P <= slot;
    pn->val_blk = xb;
    _Pragma("omp parallel for schedule(dynamic, 4) num_threads(nt) if (nt > 1)")
    for (int n = 0; n < B; n++) {
        float *Tp = scr + (size_t)omp_get_thread_num() * slot, *y = Tp + 9 * (size_t)HW, *o = y + HW;
        if (inreg) {   /* the same values, each plane in registers (ops.c c1_pool) */
            int32_t *i0 = (int32_t *)(Tp + 32 * ld);   /* after c1_phase's blocks and planes */
            for (int oy = 0; oy < pn->H; oy++)
                for (int ox = 0; ox < pn->W; ox++) i0[oy * pn->W + ox] = 2 * oy * W + 2 * ox;
            for (int t = P; t < (int)ld; t++) i0[t] = 0;
            c1_phase(x + (size_t)n * im->cols, H, W, Tp + 16 * ld, Tp);
            float *yb = Tp + 34 * ld;
            for (int c = 0; c < C; c++) {
                size_t po = (size_t)n * pn->cols + (size_t)c * P;
                c1_pool(Tp, P, W, i0, c * HW, cw + (size_t)c * 9, cb[c], mean[c], inv[c], gam[c], bet[c],
                        xb ? yb + (size_t)(c % 8) * P : (float *)pn->val + po, (int32_t *)pn->aux + po,
                        (float *)nd->val + po);
                if (xb && c % 8 == 7) planes_blk(yb, P, P, (float *)pn->val + po - 7 * (size_t)P);
            }
            continue;
        }
        memset(o + HW, 0, 16 * sizeof *o);   /* what the pool's eight-wide loop reads past a short row */
        c1_taps(x + (size_t)n * im->cols, H, W, 0, Tp);
        for (int c = 0; c < C; c++) {
            size_t po = (size_t)n * pn->cols + (size_t)c * P;
            c1_plane(Tp, HW, cw + (size_t)c * 9, cb[c], mean[c], inv[c], gam[c], bet[c], y, o);
            maxpool22_plane_f32(o, pn->H, pn->W, W, c * HW, (float *)pn->val + po, (int32_t *)pn->aux + po);
            bnp_xa_avx2(y, (const int32_t *)pn->aux + po, P, c * HW, (float *)nd->val + po);
        }
    }
}

/* The conv's output written after all (c1_fuse: its batch norm's backward
 * does not take bn_dx, which c1_fuse_ok's conditions make it take). */
static void c1_write_x(wick_graph *g, node *cv) {
    const node *bn = &g->nodes[cv->c1_fuse], *im = &g->nodes[cv->in[0]];
    int B = bn->rows, C = cv->C, HW = cv->H * cv->W;
    const float *cw = (const float *)bn->aux + 7 * C, *cb = cw + 9 * C;
    float *Tp = g->scratch;
    for (int n = 0; n < B; n++) {
        c1_taps((const float *)im->val + (size_t)n * im->cols, im->H, im->W, 0, Tp);
        for (int c = 0; c < C; c++)
            c1_plane(Tp, HW, cw + (size_t)c * 9, cb[c], 0, 0, 0, 0, (float *)cv->val + (size_t)n * cv->cols + (size_t)c * HW, NULL);
    }
    cv->c1_fuse = 0;
}
#endif

#if IS_FLOAT && WICK_BNP_AVX2
/* bn_fwd for a conv's values left in nChw8c (conv_blk, val_blk), fused with
 * ReLU + 2x2 pool, without synchronised statistics: the channels eight at a
 * time (one nChw8c block), each sample's block transposed into the thread's
 * scratch (blk_planes, a copy) and each of its eight planes then taken by
 * bn_fwd's own calls in bn_fwd's order (the sums over the samples, the
 * variance's in reverse, the output pass), so the same bits as bn_fwd on the
 * conv's NCHW values; the conv's transpose back to NCHW (a read and a write
 * of the whole output) is not run (bench/README.md, "conv2's output in
 * nChw8c"). */
static void bn_fwd_blk(wick_graph *g, node *nd) {
    const node *xn = &g->nodes[nd->in[0]];
    node *pn = &g->nodes[nd->bn_pool];
    int B = nd->rows, C = xn->C, HW = nd->cols / C, P = pn->H * pn->W;
    const float *x = xn->val, *gam = g->nodes[nd->in[1]].val, *bet = g->nodes[nd->in[2]].val;
    float *y = nd->val, *mean = nd->aux, *inv = mean + C;
    float *rm = nd->state[0] >= 0 ? (float *)g->nodes[nd->state[0]].val : NULL;
    float *rv = nd->state[0] >= 0 ? (float *)g->nodes[nd->state[1]].val : NULL;
    int batch = g->training || !rm;
    double M = (double)B * HW, mom = nd->scalar, eps = nd->scalar2;
    nd->ran_train = batch;
    nd->bn_share = 0;
    nd->bn_xa = 1;
    int nt = omp_get_max_threads();
    if (nt > g->scratch_threads) nt = g->scratch_threads;
    size_t slot = bn_pool_slot(nd), ld = bn_blk_ld(nd);
    _Pragma("omp parallel for schedule(static) num_threads(nt) if ((size_t)B * nd->cols > 32768)")
    for (int cb = 0; cb < C / 8; cb++) {
        float *buf = (float *)g->scratch + (size_t)omp_get_thread_num() * (slot + bn_blk_room(nd)), *pl = buf + slot;
        const float *xb = x + (size_t)cb * 8 * HW;
        double mu[8], var[8];
        if (batch) {
            double s[8] = {0}, ss[8] = {0};
            float m8[8] = {0};
            /* the sums without transposes where seg_sum takes its vector
               path (blk_seg_sum8: the same order) */
            for (int n = 0; n < B; n++) {
                if (HW >= 32) {
                    blk_seg_sum8(xb + (size_t)n * nd->cols, HW, 0, m8, s);
                    continue;
                }
                blk_planes(xb + (size_t)n * nd->cols, HW, (int)ld, pl);
                for (int k = 0; k < 8; k++) s[k] += seg_sum_f32(pl + k * ld, HW, 0, 0);
            }
            for (int k = 0; k < 8; k++) {
                mu[k] = s[k] / M;
                m8[k] = (float)mu[k];
            }
            for (int n = B - 1; n >= 0; n--) {   /* in reverse, as bn_fwd */
                if (HW >= 32) {
                    blk_seg_sum8(xb + (size_t)n * nd->cols, HW, 1, m8, ss);
                    continue;
                }
                blk_planes(xb + (size_t)n * nd->cols, HW, (int)ld, pl);
                for (int k = 0; k < 8; k++) ss[k] += seg_sum_f32(pl + k * ld, HW, 1, m8[k]);
            }
            for (int k = 0; k < 8; k++) {
                int c = cb * 8 + k;
                var[k] = ss[k] / M;
                if (rm && g->training) {
                    rm[c] = (float)((1 - mom) * rm[c] + mom * mu[k]);
                    rv[c] = (float)((1 - mom) * rv[c] + mom * (M > 1 ? ss[k] / (M - 1) : var[k]));
                }
            }
        } else {
            for (int k = 0; k < 8; k++) {
                mu[k] = rm[cb * 8 + k];
                var[k] = rv[cb * 8 + k];
            }
        }
        for (int k = 0; k < 8; k++) {
            int c = cb * 8 + k;
            mean[c] = (float)mu[k];
            inv[c] = (float)(1 / sqrt(var[k] + eps));
        }
        for (int n = 0; n < B; n++) {   /* the channels across the lanes, no transpose of x */
            size_t po = (size_t)n * pn->cols + (size_t)cb * 8 * P;
            blk_pool8(xb + (size_t)n * nd->cols, nd->H, nd->W, pn->H, pn->W, cb * 8, mean + cb * 8, inv + cb * 8,
                      gam + cb * 8, bet + cb * 8, (float *)pn->val + po, (int32_t *)pn->aux + po, y + po, pl);
        }
    }
    if (batch && rm && g->training && nd->state[2] >= 0) ((int64_t *)g->nodes[nd->state[2]].val)[0]++;
}
#endif

static void SFX(bn_fwd)(wick_graph *g, node *nd) {
    const node *xn = &g->nodes[nd->in[0]];
    if (nd->bn_pool) g->nodes[nd->bn_pool].val_blk = 0;   /* c1_fwd's x_blk sets it */
#if IS_FLOAT && WICK_BNP_AVX2
    if (xn->op == OP_CONV2D && xn->c1_fuse == (int)(nd - g->nodes)) {
        c1_fwd(g, nd);
        return;
    }
    if (xn->val_blk) {   /* conv_fwd checked bn_fwd_blk's conditions (conv_blk_ok) */
        if (nd->bn_pool && nd->bn_pool <= g->fwd_end && nd->relu_fused && !(g->training && g->bn_sum)) {
            bn_fwd_blk(g, nd);
            return;
        }
        op_conv_unblock(g, (node *)xn);
    }
#endif
    int B = nd->rows, C = xn->C > 0 ? xn->C : xn->cols, HW = nd->cols / C;
    const T *x = xn->val, *gam = g->nodes[nd->in[1]].val, *bet = g->nodes[nd->in[2]].val;
    T *y = nd->val, *mean = nd->aux, *inv = mean + C;
    T *rm = nd->state[0] >= 0 ? (T *)g->nodes[nd->state[0]].val : NULL;
    T *rv = nd->state[0] >= 0 ? (T *)g->nodes[nd->state[1]].val : NULL;
    int batch = g->training || !rm;
    double M = (double)B * HW, mom = nd->scalar, eps = nd->scalar2;
    int relu = nd->relu_fused;
    nd->ran_train = batch;
    /* synchronised over processes (graph_set_bn_sum): the channels' sums and
       row count summed, then the squares about the global mean, before the
       loop below normalises with them (mu = st[c], ss = st[C + 1 + c]) */
    double *st = batch && g->training && g->bn_sum ? g->bn_buf : NULL;
    nd->bn_share = 0;
    if (st) {
        _Pragma("omp parallel for schedule(static) if ((size_t)B * nd->cols > 32768)")
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int n = 0; n < B; n++) s += SFX(seg_sum)(x + (size_t)n * nd->cols + (size_t)c * HW, HW, 0, 0);
            st[c] = s;
        }
        st[C] = M;
        g->bn_sum(g->bn_user, st, C + 1);
        nd->bn_share = M / st[C];
        M = st[C];
        for (int c = 0; c < C; c++) st[c] /= M;
        _Pragma("omp parallel for schedule(static) if ((size_t)B * nd->cols > 32768)")
        for (int c = 0; c < C; c++) {
            double ss = 0;
            for (int n = 0; n < B; n++)
                ss += SFX(seg_sum)(x + (size_t)n * nd->cols + (size_t)c * HW, HW, 1, (T)st[c]);
            st[C + 1 + c] = ss;
        }
        g->bn_sum(g->bn_user, st + C + 1, C);
    }
    /* fused with its pool (bn_pool, when this forward reaches the pool): each
       plane's values go to a thread's scratch and on into the pool's outputs */
    node *pn = nd->bn_pool && nd->bn_pool <= g->fwd_end ? &g->nodes[nd->bn_pool] : NULL;
    int nt = omp_get_max_threads(), P = pn ? pn->H * pn->W : 0;
    nd->bn_xa = pn && relu && IS_FLOAT && WICK_BNP_AVX2;
    size_t slot = pn ? ((size_t)HW + 16 + 15) & ~(size_t)15 : 0;   /* ops.c bn_pool_slot */
    if (pn && nt > g->scratch_threads) nt = g->scratch_threads;
    _Pragma("omp parallel for schedule(static) num_threads(nt) if ((size_t)B * nd->cols > 32768)")
    for (int c = 0; c < C; c++) {
        T *buf = pn ? (T *)g->scratch + (size_t)omp_get_thread_num() * slot : NULL;
        if (pn) memset(buf + HW, 0, 16 * sizeof *buf);
        double mu, var;
        if (batch) {
            double s = 0, ss = 0;
            if (st) {
                mu = st[c];
                ss = st[C + 1 + c];
            } else {
                for (int n = 0; n < B; n++) {
                    if (n + PLANE_AHEAD < B && HW >= 16)   /* not a dense layer's one value a sample */
                        SFX(plane_prefetch)(x + (size_t)(n + PLANE_AHEAD) * nd->cols + (size_t)c * HW, HW * sizeof *x, 0);
                    s += SFX(seg_sum)(x + (size_t)n * nd->cols + (size_t)c * HW, HW, 0, 0);
                }
                mu = s / M;
                /* the samples in reverse: the last planes the first pass read
                   are still in cache, and this pass leaves the first ones
                   there for the output pass (a channel's planes, 384 KB of
                   a 32x28x28 batch of 128, are most of Zen 3's 512 KB L2) */
                for (int n = B - 1; n >= 0; n--)
                    ss += SFX(seg_sum)(x + (size_t)n * nd->cols + (size_t)c * HW, HW, 1, (T)mu);
            }
            var = ss / M;
            if (rm && g->training) {
                rm[c] = (T)((1 - mom) * rm[c] + mom * mu);
                rv[c] = (T)((1 - mom) * rv[c] + mom * (M > 1 ? ss / (M - 1) : var));
            }
        } else {
            mu = rm[c];
            var = rv[c];
        }
        T m = (T)mu, is = (T)(1 / sqrt(var + eps)), ga = gam[c], be = bet[c];
        mean[c] = m;
        inv[c] = is;
        for (int n = 0; n < B; n++) {
            const T *r = x + (size_t)n * nd->cols + (size_t)c * HW;
            T *o = pn ? buf : y + (size_t)n * nd->cols + (size_t)c * HW;
            if (relu) {   /* act_fwd's ReLU: NaN -> 0 */
                _Pragma("omp simd")
                for (int p = 0; p < HW; p++) {
                    T v = ga * ((r[p] - m) * is) + be;
                    o[p] = v > 0 ? v : 0;
                }
                if (pn) {
                    size_t po = (size_t)n * pn->cols + (size_t)c * P;
                    SFX(maxpool22_plane)(buf, pn->H, pn->W, nd->W, c * HW, (T *)pn->val + po,
                                         (int32_t *)pn->aux + po);
#if IS_FLOAT && defined(__AVX2__)
                    /* x at each argmax, for the backward's sums and fix-up
                       (bnp_dy8), in this node's own values, which a fused
                       forward does not write otherwise */
                    bnp_xa_avx2(r, (const int32_t *)pn->aux + po, P, c * HW, y + po);
#endif
                }
            } else {
                for (int p = 0; p < HW; p++) o[p] = ga * ((r[p] - m) * is) + be;
            }
        }
    }
    if (batch && rm && g->training && nd->state[2] >= 0) ((int64_t *)g->nodes[nd->state[2]].val)[0]++;
}

/* dbeta = sum dy, dgamma = sum dy xhat; dx = gamma invstd dy in eval, and
 * with batch statistics dx = gamma invstd (dy - (dbeta + xhat dgamma) / M). */
static void SFX(bn_bwd)(wick_graph *g, node *nd) {
    const node *xn = &g->nodes[nd->in[0]];
    int B = nd->rows, C = xn->C > 0 ? xn->C : xn->cols, HW = nd->cols / C;
    const T *x = xn->val, *gam = g->nodes[nd->in[1]].val, *dy = nd->grad;
    const T *mean = nd->aux, *inv = mean + C;
    int accx = 0, accg = 0, accb = 0;
    T *dx = SFX(in_grad)(g, nd, 0, &accx), *dg = SFX(in_grad)(g, nd, 1, &accg), *dbe = SFX(in_grad)(g, nd, 2, &accb);
    T M = (T)B * HW;
    int batch = nd->ran_train;
    /* fused ReLU: dy is the gradient of relu(y), and y > 0 ? dy : 0 that of
       y, as act_bwd takes it; y recomputed from x as bn_fwd computed it (the
       same operations, so the same signs), which reads one array less than
       reading it back */
    int relu = nd->relu_fused;
    const T *bet = g->nodes[nd->in[2]].val;
    /* fused with its pool (bn_pool, on this backward's path): dy is the
       pool's, nonzero only at each window's argmax, so the sums take the P
       pooled outputs alone (in another order than the H*W plane: the last
       bits differ from the ops apart), and dx is the zero-dy formula over the
       plane with the argmax positions then rewritten; the full-size dy is
       never written nor read */
    const node *pn = nd->bn_pool && g->nodes[nd->bn_pool].pending >= 0 ? &g->nodes[nd->bn_pool] : NULL;
    int nt = omp_get_max_threads(), P = pn ? pn->H * pn->W : 0;
    size_t slot = pn ? ((size_t)HW + 16 + 15) & ~(size_t)15 : 0;   /* ops.c bn_pool_slot */
    if (pn && nt > g->scratch_threads) nt = g->scratch_threads;
    /* synchronised over processes (bn_fwd took the statistics of all their
       rows): phase 0 the channels' sums (dgamma, dbeta: this process's), then
       their sums over the processes, weighted by each one's share of the rows
       as the parameters' gradients will be; phase 1 dx from those, in the
       units of this process's mean loss: the gradient it leaves is summed
       weighted by share, so dx = share^-1 dx_global, whose terms
       share^-1 sum_all / M_all are the weighted sums / this process's M */
    double *st = batch && nd->bn_share > 0 ? g->bn_buf : NULL, share = nd->bn_share;
    /* deferred dx (bn_dx): where x is a float conv's output whose gradient
       comes from this node alone, the conv's own input needs no gradient and
       its weight gradient takes the ROWS product (a first layer on grey
       images), dx is not written here: this loop keeps each channel's a, bq,
       k, gamma and beta beside mean and invstd (gamma and beta may be
       updated before the conv's backward runs), and conv_bwd recomputes dx a
       sample at a time with the same bnp_dx_avx2 call, into its scratch,
       just before its product reads it (the same bits; the full-size dx,
       12.8 MB for the issue's conv1 at batch 128, is never written nor read
       back: conv1 + batch norm backward -0.6 ms at 2 threads, bench/README.md) */
    int defer = SFX(bn_dx_ok)(g, nd) && pn && nd->bn_xa && !st && dx && !accx;
    /* x in nChw8c (val_blk): dx in a pass of its own below, by blocks of 8
       channels (bn_fwd_blk's transposes); the loops here read NCHW */
    int blk = xn->val_blk;
    if (blk && !(pn && nd->bn_xa && !st && dx && !accx && !defer)) {
        op_conv_unblock(g, (node *)xn);
        blk = 0;
    }
    if (xn->op == OP_CONV2D) ((node *)xn)->bn_dx = defer ? (int)(nd - g->nodes) : 0;
    if (xn->op == OP_CONV2D) ((node *)xn)->grad_blk = 0;   /* the blocked pass below sets it */
#if IS_FLOAT && WICK_BNP_AVX2
    if (xn->op == OP_CONV2D && xn->c1_fuse && !defer) c1_write_x(g, (node *)xn);
    /* conv1's sparse weight-gradient pass, which gives this loop its sums
       (c1_dw): one read of the pooled planes instead of two */
    const float *c1ab = xn->op == OP_CONV2D && xn->c1_fuse && defer && !g->c1_dw_off
                        ? c1_dw_pass(g, nd, B, (const float *)gam, (const float *)bet) : NULL;
    if (pn && pn->grad_blk && !c1ab) op_pool_grad_unblock(g, (node *)pn);   /* the loops below read NCHW */
#endif
    T *keep_a = (T *)nd->aux + 2 * C, *keep_bq = keep_a + C, *keep_k = keep_bq + C, *keep_ga = keep_k + C;
    for (int phase = st ? 0 : 1; phase < 2; phase++) {
        if (phase == 1 && st) {
            for (int c = 0; c < 2 * C; c++) st[c] *= share;
            g->bn_sum(g->bn_user, st, 2 * C);
        }
        _Pragma("omp parallel for schedule(static) num_threads(nt) if ((size_t)B * nd->cols > 32768)")
        for (int c = 0; c < C; c++) {
            T m = mean[c], is = inv[c], ga = gam[c], be = bet[c];
            double sdy_ = 0, sdyx_ = 0;
#if IS_FLOAT && WICK_BNP_AVX2
            for (int n = 0; c1ab && n < B; n++) {   /* bnp_sums_avx2's, in its order */
                sdy_ += c1ab[(size_t)n * 2 * C + c];
                sdyx_ += c1ab[(size_t)n * 2 * C + C + c];
            }
            for (int n = 0; n < B && !(st && phase == 1) && !c1ab; n++) {
#else
            for (int n = 0; n < B && !(st && phase == 1); n++) {
#endif
                size_t o = (size_t)n * nd->cols + (size_t)c * HW;
                T a = 0, b = 0;
                if (pn) {
                    size_t po = (size_t)n * pn->cols + (size_t)c * P;
                    const T *gp = (const T *)pn->grad + po;
                    const int32_t *ap = (const int32_t *)pn->aux + po;
#if IS_FLOAT && defined(__AVX2__)
                    if (!nd->bn_xa) goto scalar_sums;   /* a forward that stopped short of the pool */
                    if (n + PLANE_AHEAD < B) {
                        size_t pa = po + (size_t)PLANE_AHEAD * pn->cols;
                        SFX(plane_prefetch)((const T *)pn->grad + pa, P * sizeof(T), 0);
                        SFX(plane_prefetch)((const int32_t *)pn->aux + pa, P * sizeof(int32_t), 0);
                        SFX(plane_prefetch)((const T *)nd->val + pa, P * sizeof(T), 0);
                    }
                    bnp_sums_avx2(gp, ap, (const T *)nd->val + po, P, m, is, ga, be, &a, &b);
                    sdy_ += a;
                    sdyx_ += b;
                    continue;
                scalar_sums:;
#endif
                    const T *xr = x + (size_t)n * nd->cols;   /* the argmax counts from the sample's start */
                    _Pragma("omp simd reduction(+ : a, b)")
                    for (int t = 0; t < P; t++) {
                        int j = ap[t] >= 0 ? ap[t] : (int)(c * HW);
                        T xv = xr[j];
                        T d = ap[t] >= 0 && ga * ((xv - m) * is) + be > 0 ? gp[t] + 0 : 0;
                        a += d;
                        b += d * (xv - m);
                    }
                } else if (relu) {
                    _Pragma("omp simd reduction(+ : a, b)")
                    for (int p = 0; p < HW; p++) {
                        T d = ga * ((x[o + p] - m) * is) + be > 0 ? dy[o + p] : 0;
                        a += d;
                        b += d * (x[o + p] - m);
                    }
                } else {
                    _Pragma("omp simd reduction(+ : a, b)")
                    for (int p = 0; p < HW; p++) {
                        a += dy[o + p];
                        b += dy[o + p] * (x[o + p] - m);
                    }
                }
                sdy_ += a;
                sdyx_ += b;
            }
            T sdy = (T)sdy_, sdyx = (T)(sdyx_ * is);
            if (phase == 0 || !st) {
                if (dg) dg[c] = accg ? dg[c] + sdyx : sdyx;
                if (dbe) dbe[c] = accb ? dbe[c] + sdy : sdy;
            }
            if (st && phase == 0) {
                st[c] = sdy_;
                st[C + c] = sdyx_;
                continue;
            }
            if (st) {
                sdy = (T)st[c];
                sdyx = (T)(st[C + c] * is);
            }
            if (!dx) continue;
            T k = gam[c] * is, a = batch ? sdy / M : 0, bq = batch ? sdyx / M : 0;
            if (defer || blk) {
                keep_a[c] = a;
                keep_bq[c] = bq;
                keep_k[c] = k;
                keep_ga[c] = ga;
                keep_ga[C + c] = be;
                continue;
            }
            int acc = accx;
            T *old = pn ? (T *)g->scratch + (size_t)omp_get_thread_num() * slot : NULL;
            for (int n = 0; n < B; n++) {
                size_t o = (size_t)n * nd->cols + (size_t)c * HW;
                if (pn) {
                    /* the ops apart give d = 0 + dy at a window's argmax when
                       y > 0, else +0: the plane as if all zero, then the P
                       argmax positions (the sum kept aside where dx adds up) */
                    size_t po = (size_t)n * pn->cols + (size_t)c * P, s0 = (size_t)n * nd->cols;
                    const T *gp = (const T *)pn->grad + po;
                    const int32_t *ap = (const int32_t *)pn->aux + po;
#if IS_FLOAT && defined(__AVX2__)
                    if (n + PLANE_AHEAD < B) {
                        SFX(plane_prefetch)(x + o + (size_t)PLANE_AHEAD * nd->cols, HW * sizeof *x, 0);
                        SFX(plane_prefetch)(dx + o + (size_t)PLANE_AHEAD * nd->cols, HW * sizeof *x, 1);
                    }
                    if (!acc && nd->bn_xa) {
                        bnp_dx_avx2(x + o, gp, ap, (const T *)nd->val + po, HW, P, c * HW, m, is, ga, be, k, a, bq, dx + o);
                        continue;
                    }
#endif
                    if (acc)
                        for (int t = 0; t < P; t++) old[t] = ap[t] >= 0 ? dx[s0 + ap[t]] : 0;
                    _Pragma("omp simd")
                    for (int p = 0; p < HW; p++) ACC(dx, o + p, k * ((T)0 - a - ((x[o + p] - m) * is) * bq));
                    for (int t = 0; t < P; t++) {
                        if (ap[t] < 0) continue;
                        size_t j = s0 + ap[t];
                        T d = ga * ((x[j] - m) * is) + be > 0 ? gp[t] + 0 : 0;
                        T v = k * (d - a - ((x[j] - m) * is) * bq);
                        dx[j] = acc ? old[t] + v : v;
                    }
                } else if (relu) {
                    _Pragma("omp simd")
                    for (int p = 0; p < HW; p++) {
                        T d = ga * ((x[o + p] - m) * is) + be > 0 ? dy[o + p] : 0;
                        ACC(dx, o + p, k * (d - a - ((x[o + p] - m) * is) * bq));
                    }
                } else {
                    for (int p = 0; p < HW; p++) ACC(dx, o + p, k * (dy[o + p] - a - ((x[o + p] - m) * is) * bq));
                }
            }
        }
    }
#if IS_FLOAT && WICK_BNP_AVX2
    if (blk) {
        /* each sample's block of 8 channels by bnp_dx_avx2's operations
           (blk_dx8), the channels across the lanes: the same bits as on
           NCHW values; dx in NCHW for the conv's weight gradient, and in
           nChw8c in the conv's aux for its input gradient (grad_blk) */
        /* the samples split as the conv's split input-gradient product
           splits them (static, in order), so that each thread's part of
           the blocked dy is in its own cache when its product reads it */
        /* dy_blk: dy in nChw8c alone, no NCHW copy (6.4 MB at batch 128 for
           the issue's conv2): SHIFT's weight gradient reads it there too
           (conv_dw_kern), and conv_bwd writes NCHW where another reader
           needs it (op_conv_dy_unblock) */
        int dyb = !g->conv_blk_fwd && !g->dy_blk_off;
        const float *vv[7] = {mean, inv, keep_ga, keep_ga + C, keep_k, keep_a, keep_bq};
        _Pragma("omp parallel for schedule(static) num_threads(nt) if ((size_t)B * nd->cols > 32768)")
        for (int n = 0; n < B; n++) {
            /* WICK_CONV_BLK=fwd: the blocked dy only in the thread's scratch */
            float *tmp = (float *)g->scratch + (size_t)omp_get_thread_num() * (slot + bn_blk_room(nd)) + slot;
            for (int cb = 0; cb < C / 8; cb++) {
                float v[7][8];
                for (int k = 0; k < 7; k++) memcpy(v[k], vv[k] + cb * 8, sizeof v[k]);
                size_t o = (size_t)n * nd->cols + (size_t)cb * 8 * HW, po = (size_t)n * pn->cols + (size_t)cb * 8 * P;
                blk_dx8(x + o, g->conv_blk_fwd ? tmp : (float *)xn->aux + o, HW, P, cb * 8, v, (const float *)pn->grad + po, (const int32_t *)pn->aux + po,
                        (const float *)nd->val + po, dyb ? NULL : dx + o);
            }
        }
        ((node *)xn)->grad_blk = g->conv_blk_fwd ? 0 : dyb ? 2 : 1;
    }
#endif
}

/* ---- dropout, Gaussian noise, L1 ----------------------------------------
 * Element e = r*cols + c of the node, in groups of 4 L (L = RAND_LANES = 8):
 * e = 4 L g + L w + l takes word w of Philox block L g + l under the graph's
 * seed, with the node's index and the step in the counter (rand_lanes in
 * ops.c, wick_philox4x32's function).  Dropout keeps it when the word u has
 * (u + 1/2) / 2^32 >= p; noise takes Box-Muller normals, words 0, 1 and 2, 3
 * of a block each giving a pair.  So the draws depend on neither the thread
 * count nor the split of groups over threads. */

static void SFX(dropout_fwd)(wick_graph *g, node *nd) {
    const T *x = g->nodes[nd->in[0]].val;
    T *y = nd->val, *mask = nd->aux;
    size_t n = node_elems(nd), ng = (n + 4 * RAND_LANES - 1) / (4 * RAND_LANES);
    double p = nd->scalar;
    int id = (int)(nd - g->nodes);
    nd->ran_train = g->training && p > 0;
    if (!nd->ran_train) {
        memcpy(y, x, n * sizeof *y);
        return;
    }
    T scale = p < 1 ? (T)(1 / (1 - p)) : 0;
    uint64_t thr = keep_threshold(p);
    nd->drop_bits = !g->drop_fast_off;
    if (nd->drop_bits) {
        /* four groups' draws at once (drop_bits4), the mask kept as their
           keep bits (one word a group, not 32 values: the backward reads
           them, a 32nd of the traffic); mask value keep scale and y = x
           times it, as below, so the same bits */
        uint32_t *bits = nd->aux, t32 = thr >> 32 ? UINT32_MAX : (uint32_t)thr;
        int none = thr >> 32 != 0;
        size_t nq = (ng + 3) / 4;
        _Pragma("omp parallel for schedule(static) if (n > 32768)")
        for (size_t q = 0; q < nq; q++) {
            uint32_t b4[4];
            drop_bits4(g->seed, g->step, id, 4 * q, t32, none, b4);
            for (size_t j = 0; j < 4 && 4 * q + j < ng; j++) {
                size_t gi = 4 * q + j, e0 = gi * 4 * RAND_LANES;
                uint32_t b = bits[gi] = b4[j];
                if (n - e0 >= 4 * RAND_LANES) {
                    _Pragma("omp simd")
                    for (int k = 0; k < 4 * RAND_LANES; k++) y[e0 + k] = x[e0 + k] * ((T)(int32_t)((b >> k) & 1) * scale);
                } else {
                    for (size_t k = 0; k < n - e0; k++) y[e0 + k] = x[e0 + k] * ((T)(int32_t)((b >> k) & 1) * scale);
                }
            }
        }
        return;
    }
    _Pragma("omp parallel for schedule(static) if (n > 32768)")
    for (size_t gi = 0; gi < ng; gi++) {
        uint32_t r[4][RAND_LANES];
        rand_lanes(g->seed, g->step, id, gi * RAND_LANES, r);
        size_t e0 = gi * 4 * RAND_LANES, m = n - e0 < 4 * RAND_LANES ? n - e0 : 4 * RAND_LANES;
        /* element e0 + w RAND_LANES + l: word w of block l; keep as 0 or 1,
           not a branch (p = 0.5 would mispredict half of them) */
        T keep[4 * RAND_LANES];
        uint32_t t32 = thr >> 32 ? UINT32_MAX : (uint32_t)thr;   /* thr = 2^32 (p = 1): none kept */
        int none = thr >> 32 != 0;
        for (int w = 0; w < 4; w++) {
            _Pragma("omp simd")
            for (int l = 0; l < RAND_LANES; l++)
                keep[w * RAND_LANES + l] = (T)((int32_t)(r[w][l] >= t32) & !none);
        }
        for (size_t k = 0; k < m; k++) {
            mask[e0 + k] = keep[k] * scale;
            y[e0 + k] = x[e0 + k] * mask[e0 + k];
        }
    }
}

static void SFX(noise_fwd)(wick_graph *g, node *nd) {
    const T *x = g->nodes[nd->in[0]].val;
    T *y = nd->val;
    size_t n = node_elems(nd), ng = (n + 4 * RAND_LANES - 1) / (4 * RAND_LANES);
    double sd = nd->scalar;
    int id = (int)(nd - g->nodes);
    nd->ran_train = g->training && sd > 0;
    if (!nd->ran_train) {
        memcpy(y, x, n * sizeof *y);
        return;
    }
    _Pragma("omp parallel for schedule(static) if (n > 32768)")
    for (size_t gi = 0; gi < ng; gi++) {
        uint32_t r[4][RAND_LANES];
        rand_lanes(g->seed, g->step, id, gi * RAND_LANES, r);
        size_t e0 = gi * 4 * RAND_LANES, m = n - e0 < 4 * RAND_LANES ? n - e0 : 4 * RAND_LANES;
        double z[4 * RAND_LANES];
        for (int l = 0; l < RAND_LANES; l++) {
            uint32_t b[4] = {r[0][l], r[1][l], r[2][l], r[3][l]};
            double zl[4];
            box_muller(b, zl);
            for (int w = 0; w < 4; w++) z[w * RAND_LANES + l] = zl[w];
        }
        for (size_t k = 0; k < m; k++) y[e0 + k] = x[e0 + k] + (T)(sd * z[k]);
    }
}

/* ---- dispatch ---------------------------------------------------------- */

static void SFX(forward)(wick_graph *g, node *nd) {
    node *a = &g->nodes[nd->in[0]], *b = nd->n_in > 1 ? &g->nodes[nd->in[1]] : NULL;
    size_t n = node_elems(nd);
    T *y = nd->val;
    const T *x = a->val;
    switch (nd->op) {
    case OP_DENSE: SFX(dense_fwd)(g, nd); break;
    case OP_MATMUL: SFX(matmul_fwd)(g, nd); break;
    case OP_BIAS: SFX(bias_fwd)(x, b->val, y, nd->rows, nd->cols); break;
    case OP_ACT:   /* a fused ReLU's values are already there (bn_fwd) */
        if (!nd->relu_fused) SFX(act_fwd_rows)(nd->act, x, y, nd->rows, nd->cols);
        break;
    case OP_ADD: { const T *x2 = b->val; for (size_t i = 0; i < n; i++) y[i] = x[i] + x2[i]; break; }
    case OP_MUL: { const T *x2 = b->val; for (size_t i = 0; i < n; i++) y[i] = x[i] * x2[i]; break; }
    case OP_SCALE: { T c = (T)nd->scalar; for (size_t i = 0; i < n; i++) y[i] = c * x[i]; break; }
    case OP_SUM: case OP_MEAN: {
        size_t m = node_elems(a);
        double s = 0;              /* fixed order: the same for every thread count */
        for (size_t i = 0; i < m; i++) s += x[i];
        y[0] = (T)(nd->op == OP_MEAN ? s / m : s);
        break;
    }
    case OP_SOFTMAX: case OP_LOG_SOFTMAX:
        SFX(softmax_fwd)(x, y, nd->rows, nd->cols, nd->op == OP_LOG_SOFTMAX);
        break;
    case OP_MSE: {
        size_t m = node_elems(a);
        const T *t = b->val;
        double s = 0;
        for (size_t i = 0; i < m; i++) s += (double)(x[i] - t[i]) * (x[i] - t[i]);
        y[0] = (T)(s / m);
        break;
    }
    case OP_XENT: SFX(xent_fwd)(x, b->val, nd->aux, y, a->rows, a->cols, nd->scalar); break;
    case OP_VIEW: break;   /* shares its input's values */
    case OP_CONV2D: SFX(conv_fwd)(g, nd); break;
    case OP_MAXPOOL2D: SFX(maxpool_fwd)(g, nd); break;
    case OP_AVGPOOL2D: SFX(avgpool)(g, nd, NULL, 0, 0); break;
    case OP_GLOBAL_AVGPOOL: SFX(gap)(g, nd, NULL, 0, 0); break;
    case OP_BATCHNORM: SFX(bn_fwd)(g, nd); break;
    case OP_DROPOUT: SFX(dropout_fwd)(g, nd); break;
    case OP_GAUSS_NOISE: SFX(noise_fwd)(g, nd); break;
    case OP_L1: {
        size_t m = node_elems(a);
        double s = 0;              /* fixed order, as sum and mean */
        for (size_t i = 0; i < m; i++) s += fabs((double)x[i]);
        y[0] = (T)(s / m);
        break;
    }
    default: break;
    }
}

static void SFX(backward)(wick_graph *g, node *nd) {
    node *a = &g->nodes[nd->in[0]], *b = nd->n_in > 1 ? &g->nodes[nd->in[1]] : NULL;
    size_t n = node_elems(nd);
    const T *dy = nd->grad;
    int acc = 0;
    T *da;
    switch (nd->op) {
    case OP_DENSE: SFX(dense_bwd)(g, nd); return;
    case OP_MATMUL: SFX(matmul_bwd)(g, nd); return;
    case OP_BIAS:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) for (size_t i = 0; i < n; i++) ACC(da, i, dy[i]);
        if ((da = SFX(in_grad)(g, nd, 1, &acc))) SFX(colsum)(dy, da, nd->rows, nd->cols, acc);
        return;
    case OP_ACT:
        if ((da = SFX(in_grad)(g, nd, 0, &acc)) && !nd->relu_fused)
            SFX(act_bwd_rows)(nd->act, a->val, nd->val, dy, da, nd->rows, nd->cols, acc);
        return;
    case OP_ADD:
        for (int k = 0; k < 2; k++)
            if ((da = SFX(in_grad)(g, nd, k, &acc))) for (size_t i = 0; i < n; i++) ACC(da, i, dy[i]);
        return;
    case OP_MUL:
        for (int k = 0; k < 2; k++) {
            const T *other = g->nodes[nd->in[1 - k]].val;
            if ((da = SFX(in_grad)(g, nd, k, &acc)))
                for (size_t i = 0; i < n; i++) ACC(da, i, dy[i] * other[i]);
        }
        return;
    case OP_SCALE:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) {
            T c = (T)nd->scalar;
            for (size_t i = 0; i < n; i++) ACC(da, i, c * dy[i]);
        }
        return;
    case OP_SUM: case OP_MEAN:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) {
            size_t m = node_elems(a);
            T v = nd->op == OP_MEAN ? dy[0] / (T)m : dy[0];
            for (size_t i = 0; i < m; i++) ACC(da, i, v);
        }
        return;
    case OP_SOFTMAX: case OP_LOG_SOFTMAX:
        if ((da = SFX(in_grad)(g, nd, 0, &acc)))
            SFX(softmax_bwd)(nd->val, dy, da, nd->rows, nd->cols, nd->op == OP_LOG_SOFTMAX, acc);
        return;
    case OP_MSE: {
        size_t m = node_elems(a);
        const T *x = a->val, *t = b->val;
        T c = 2 * dy[0] / (T)m;
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) for (size_t i = 0; i < m; i++) ACC(da, i, c * (x[i] - t[i]));
        if ((da = SFX(in_grad)(g, nd, 1, &acc))) for (size_t i = 0; i < m; i++) ACC(da, i, c * (t[i] - x[i]));
        return;
    }
    case OP_XENT:
        if ((da = SFX(in_grad)(g, nd, 0, &acc)))
            SFX(xent_bwd)(nd->aux, b->val, dy[0], da, a->rows, a->cols, nd->scalar, acc);
        return;
    case OP_VIEW:
        /* an aliased gradient is already the input's: only mark it written */
        if ((da = SFX(in_grad)(g, nd, 0, &acc)) && !nd->grad_alias)
            for (size_t i = 0; i < n; i++) ACC(da, i, dy[i]);
        return;
    case OP_CONV2D: SFX(conv_bwd)(g, nd); return;
    case OP_MAXPOOL2D:
        /* fused with its batch norm: bn_bwd reads dy and the argmax itself */
        if ((da = SFX(in_grad)(g, nd, 0, &acc)) && !nd->bn_pool) SFX(maxpool_bwd)(g, nd, da, acc);
        return;
    case OP_AVGPOOL2D:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) SFX(avgpool)(g, nd, da, acc, 1);
        return;
    case OP_GLOBAL_AVGPOOL:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) SFX(gap)(g, nd, da, acc, 1);
        return;
    case OP_BATCHNORM: SFX(bn_bwd)(g, nd); return;
    case OP_DROPOUT:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) {
            const T *mask = nd->aux;
            if (nd->ran_train && nd->drop_bits) {   /* dy times keep scale, dropout_fwd's mask value */
                const uint32_t *bits = nd->aux;
                double p = nd->scalar;
                T scale = p < 1 ? (T)(1 / (1 - p)) : 0;
                _Pragma("omp parallel for schedule(static) if (n > 32768)")
                for (size_t gi = 0; gi < (n + 31) / 32; gi++) {
                    uint32_t kb = bits[gi];
                    size_t e0 = gi * 32, m = n - e0 < 32 ? n - e0 : 32;
                    if (acc) {
                        for (size_t k = 0; k < m; k++) da[e0 + k] += dy[e0 + k] * ((T)(int32_t)((kb >> k) & 1) * scale);
                    } else if (m == 32) {
                        _Pragma("omp simd")
                        for (int k = 0; k < 32; k++) da[e0 + k] = dy[e0 + k] * ((T)(int32_t)((kb >> k) & 1) * scale);
                    } else {
                        for (size_t k = 0; k < m; k++) da[e0 + k] = dy[e0 + k] * ((T)(int32_t)((kb >> k) & 1) * scale);
                    }
                }
            } else if (nd->ran_train) for (size_t i = 0; i < n; i++) ACC(da, i, dy[i] * mask[i]);
            else for (size_t i = 0; i < n; i++) ACC(da, i, dy[i]);
        }
        return;
    case OP_GAUSS_NOISE:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) for (size_t i = 0; i < n; i++) ACC(da, i, dy[i]);
        return;
    case OP_L1:
        if ((da = SFX(in_grad)(g, nd, 0, &acc))) {
            size_t m = node_elems(a);
            const T *x = a->val;
            T v = dy[0] / (T)m;
            for (size_t i = 0; i < m; i++) ACC(da, i, x[i] > 0 ? v : x[i] < 0 ? -v : 0);
        }
        return;
    default: return;
    }
}

#undef ACC
#undef PAR_ROWS
