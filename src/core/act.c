/* act.c — the activations of the book's ch. 2.2 as scalar double functions,
 * with exact first and second derivatives.  The theory engine integrates
 * these; the graph's vectorised kernels (src/graph/act_kernels.h) compute the
 * same formulas in float and double. */
#include "core.h"
#include "core/cnum.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; wick_act_kind kind; } act_names[] = {
    {"perceptron", WICK_ACT_PERCEPTRON}, {"step", WICK_ACT_PERCEPTRON},
    {"sigmoid", WICK_ACT_SIGMOID},       {"tanh", WICK_ACT_TANH},
    {"sin", WICK_ACT_SIN},               {"linear", WICK_ACT_LINEAR},
    {"identity", WICK_ACT_LINEAR},       {"relu", WICK_ACT_RELU},
    {"leaky_relu", WICK_ACT_LEAKY_RELU}, {"leaky-relu", WICK_ACT_LEAKY_RELU},
    {"softplus", WICK_ACT_SOFTPLUS},     {"swish", WICK_ACT_SWISH},
    {"silu", WICK_ACT_SWISH},            {"gelu", WICK_ACT_GELU},
};

static const char *canonical[WICK_ACT_COUNT] = {
    "perceptron", "sigmoid", "tanh", "sin", "linear",
    "relu", "leaky_relu", "softplus", "swish", "gelu",
};

wick_status wick_act_parse(const char *name, wick_act *out) {
    if (!name || !out) return wick_fail(WICK_EINVAL, "activation: no name given");
    const char *colon = strchr(name, ':');
    size_t len = colon ? (size_t)(colon - name) : strlen(name);
    for (size_t i = 0; i < WICK_ARRAY_LEN(act_names); i++) {
        if (strlen(act_names[i].name) != len || strncmp(act_names[i].name, name, len) != 0)
            continue;
        wick_act a = {act_names[i].kind, WICK_LEAKY_DEFAULT};
        if (colon) {
            double s;
            char e[96];
            if (a.kind != WICK_ACT_LEAKY_RELU || !wick_parse_f64(colon + 1, 0, &s))
                return wick_fail(WICK_EINVAL, "activation '%s': only leaky_relu takes a slope, "
                                 "a finite number written leaky_relu:0.1", wick_escape(name, e, sizeof e));
            a.slope = s;
        }
        *out = a;
        return WICK_OK;
    }
    char e[96];
    return wick_fail(WICK_EINVAL, "unknown activation '%s' (perceptron, sigmoid, tanh, sin, "
                     "linear, relu, leaky_relu[:a], softplus, swish, gelu)", wick_escape(name, e, sizeof e));
}

const char *wick_act_name(wick_act a) {
    return (unsigned)a.kind < WICK_ACT_COUNT ? canonical[a.kind] : "unknown";
}

int wick_act_has_derivative(wick_act a) { return a.kind != WICK_ACT_PERCEPTRON; }

static double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static const double INV_SQRT2 = 0.70710678118654752440;
static const double INV_SQRT2PI = 0.39894228040143267794;

double wick_act_eval(wick_act a, double z) {
    switch (a.kind) {
    case WICK_ACT_PERCEPTRON: return z >= 0 ? 1.0 : 0.0;
    case WICK_ACT_SIGMOID: return sigmoid(z);
    case WICK_ACT_TANH: return tanh(z);
    case WICK_ACT_SIN: return sin(z);
    case WICK_ACT_LINEAR: return z;
    case WICK_ACT_RELU: return z > 0 ? z : 0.0;
    case WICK_ACT_LEAKY_RELU: return z >= 0 ? z : a.slope * z;
    case WICK_ACT_SOFTPLUS: return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
    case WICK_ACT_SWISH: return z * sigmoid(z);
    case WICK_ACT_GELU: return 0.5 * z * erfc(-z * INV_SQRT2);
    default: return NAN;
    }
}

double wick_act_deriv(wick_act a, double z) {
    switch (a.kind) {
    case WICK_ACT_PERCEPTRON: return 0.0; /* a delta at 0: see wick_act_has_derivative */
    case WICK_ACT_SIGMOID: { double s = sigmoid(z); return s * (1 - s); }
    case WICK_ACT_TANH: { double t = tanh(z); return 1 - t * t; }
    case WICK_ACT_SIN: return cos(z);
    case WICK_ACT_LINEAR: return 1.0;
    case WICK_ACT_RELU: return z > 0 ? 1.0 : 0.0;
    case WICK_ACT_LEAKY_RELU: return z > 0 ? 1.0 : a.slope;
    case WICK_ACT_SOFTPLUS: return sigmoid(z);
    case WICK_ACT_SWISH: { double s = sigmoid(z); return s + z * s * (1 - s); }
    case WICK_ACT_GELU: return 0.5 * erfc(-z * INV_SQRT2) + z * INV_SQRT2PI * exp(-0.5 * z * z);
    default: return NAN;
    }
}

double wick_act_deriv2(wick_act a, double z) {
    switch (a.kind) {
    case WICK_ACT_PERCEPTRON: case WICK_ACT_LINEAR:
    case WICK_ACT_RELU: case WICK_ACT_LEAKY_RELU: return 0.0;
    case WICK_ACT_SIGMOID: case WICK_ACT_SOFTPLUS: {
        double s = sigmoid(z), d = s * (1 - s);
        return a.kind == WICK_ACT_SIGMOID ? d * (1 - 2 * s) : d;
    }
    case WICK_ACT_TANH: { double t = tanh(z); return -2 * t * (1 - t * t); }
    case WICK_ACT_SIN: return -sin(z);
    case WICK_ACT_SWISH: { double s = sigmoid(z); return s * (1 - s) * (2 + z * (1 - 2 * s)); }
    case WICK_ACT_GELU: return INV_SQRT2PI * exp(-0.5 * z * z) * (2 - z * z);
    default: return NAN;
    }
}

/* sigma''' for the ddNTKs (src/experiments/ddnet.c, src/theory/ddntk2.c):
 * 0 for the piecewise-linear ones (pathwise, beside a kink).  The logistic
 * is written out rather than through sigmoid() so that the measured and
 * the predicted values stay bit-identical to what they were. */
double wick_act_deriv3(wick_act a, double z) {
    switch (a.kind) {
    case WICK_ACT_TANH: { double t = tanh(z); return -2 * (1 - t * t) * (1 - 3 * t * t); }
    case WICK_ACT_SIN: return -cos(z);
    case WICK_ACT_SIGMOID: case WICK_ACT_SOFTPLUS: case WICK_ACT_SWISH: {
        double s = 1 / (1 + exp(-z)), d = s * (1 - s), d1 = d * (1 - 2 * s);
        double d2 = d * (1 - 2 * s) * (1 - 2 * s) - 2 * d * d;
        if (a.kind == WICK_ACT_SIGMOID) return d2;
        if (a.kind == WICK_ACT_SOFTPLUS) return d1;
        return 3 * d1 + z * d2;   /* (z s)''' = 3 s'' + z s''' */
    }
    case WICK_ACT_GELU: return exp(-0.5 * z * z) / sqrt(2 * M_PI) * (z * z * z - 4 * z);
    default: return 0.0;
    }
}
