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
    case OP_ACT: SFX(act_fwd_rows)(nd->act, x, y, nd->rows, nd->cols); break;
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
    default: break;
    }
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
        if ((da = SFX(in_grad)(g, nd, 0, &acc)))
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
    default: return;
    }
}

#undef ACC
#undef PAR_ROWS
