/* test_spec.c — the layer language: parsing, the messages of bad specs, shapes
 * and receptive fields against brute-force enumeration, FLOPs against the
 * hand count of the conv net in docs/layers.md and against the MLP's own
 * count, the canonical text round trip. */
#include "check.h"
#include "core/core.h"
#include <locale.h>
#include <string.h>

static const char *example =
    "input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,"
    "flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10";

static void test_example_shapes_params_flops(void) {
    wick_spec *s;
    CHECK_OK(wick_spec_parse(example, &s));
    if (!s) return;
    CHECK(s->n == 14);
    CHECK(s->input[0] == 1 && s->input[1] == 28 && s->input[2] == 28);
    /* conv 1->32 keeps 28x28 (pad 1); pool halves; conv 32->64; pool; flatten 64*7*7 */
    CHECK(s->layer[0].outshape[0] == 32 && s->layer[0].outshape[1] == 28 && s->layer[0].outshape[2] == 28);
    CHECK(s->layer[3].outshape[1] == 14 && s->layer[3].outshape[2] == 14);
    CHECK(s->layer[4].outshape[0] == 64);
    CHECK(s->layer[7].outshape[1] == 7);
    CHECK(s->layer[8].outshape[0] == 3136 && s->layer[8].outshape[1] == 0);
    CHECK(s->outputs == 10);
    /* parameters by hand: 32*9+32, 2*32, 64*32*9+64, 2*64, 3136*256+256, 256*10+10 */
    CHECK(s->layer[0].params == 320);
    CHECK(s->layer[1].params == 64);
    CHECK(s->layer[4].params == 18496);
    CHECK(s->params == 320 + 64 + 18496 + 128 + 803072 + 2570);
    /* FLOPs by hand: forward 2 MACs; the first conv has no input gradient (2x),
       the rest 3x; 27.4 MFLOP a training sample (the figure the issue quotes) */
    double c1 = 2.0 * 28 * 28 * 32 * 9, c2 = 2.0 * 14 * 14 * 64 * 288, l1 = 2.0 * 3136 * 256, l2 = 2.0 * 2560;
    CHECK_REL(s->flops_fwd, c1 + c2 + l1 + l2, 1e-15);
    CHECK_REL(s->flops_train, 2 * c1 + 3 * (c2 + l1 + l2), 1e-15);
    CHECK_NEAR(s->flops_train / 1e6, 27.41, 0.01);
    /* receptive fields: conv3 -> 3, pool2 -> 4, conv3 -> 8, pool2 -> 10, flatten -> all */
    CHECK(s->layer[0].rf_h == 3);
    CHECK(s->layer[3].rf_h == 4);
    CHECK(s->layer[4].rf_h == 8);
    CHECK(s->layer[7].rf_h == 10 && s->layer[7].rf_w == 10);
    CHECK(s->layer[8].rf_h == -1 && s->layer[13].rf_h == -1);
    wick_spec_free(s);
}

static void test_bad_specs_name_token_and_reason(void) {
    wick_spec *s = (wick_spec *)1;
    CHECK_FAILS(wick_spec_parse("input:1x28x28,conv2d:32", &s), WICK_EINVAL, "conv2d:32: missing kernel size");
    CHECK(s == NULL);
    CHECK_FAILS(wick_spec_parse("input:1x28x28,conv2d:32:3,linear:10", &s), WICK_ESHAPE,
                "linear:10 after conv2d needs flatten");
    CHECK_FAILS(wick_spec_parse("input:1x28x28,flatten,linear:10,conv2d:8:3", &s), WICK_ESHAPE,
                "conv2d:8:3 needs an image input");
    CHECK_FAILS(wick_spec_parse("conv2d:8:3,flatten,linear:10", &s), WICK_EINVAL, "spec must start with input:");
    CHECK_FAILS(wick_spec_parse("input:1x28x28,conv3d:8:3", &s), WICK_EINVAL, "conv3d:8:3: unknown layer");
    CHECK_FAILS(wick_spec_parse("input:3x8x8,conv2d:8:3:groups=2,flatten,linear:2", &s), WICK_ESHAPE,
                "groups=2 must divide the input channels (3)");
    CHECK_FAILS(wick_spec_parse("input:1x3x3,conv2d:4:5,flatten,linear:2", &s), WICK_ESHAPE,
                "kernel 5x5 with dilation 1x1 does not fit the padded input 3x3");
    CHECK_FAILS(wick_spec_parse("input:1x5x5,conv2d:4:3:dilation=3,flatten,linear:2", &s), WICK_ESHAPE,
                "does not fit");
    CHECK_FAILS(wick_spec_parse("input:10,dropout:1,linear:2", &s), WICK_EINVAL, "dropout:1: the drop probability");
    CHECK_FAILS(wick_spec_parse("input:10,dropout:-0.1,linear:2", &s), WICK_EINVAL, "dropout:-0.1");
    CHECK_FAILS(wick_spec_parse("input:1x8x8,maxpool:2:pad=2,flatten,linear:2", &s), WICK_EINVAL,
                "padding 2x2 is more than half the kernel 2x2");
    CHECK_FAILS(wick_spec_parse("input:1x8x8,conv2d:4:3", &s), WICK_ESHAPE, "end with flatten and linear");
    CHECK_FAILS(wick_spec_parse("input:1x8x8,conv2d:4:3:stride=0,flatten,linear:2", &s), WICK_EINVAL,
                "bad value '0' for stride");
    CHECK_FAILS(wick_spec_parse("input:1x8x8,conv2d:4:3:padding=1,flatten,linear:2", &s), WICK_EINVAL,
                "conv2d has no option 'padding'");
    CHECK_FAILS(wick_spec_parse("input:1x8,linear:2", &s), WICK_EINVAL, "input:CxHxW");
    CHECK_FAILS(wick_spec_parse("input:10", &s), WICK_EINVAL, "no layer after input");
    CHECK_FAILS(wick_spec_parse("input:10,linear:2:7", &s), WICK_EINVAL, "unexpected argument '7'");
    CHECK_FAILS(wick_spec_parse("input:10,relu:3,linear:2", &s), WICK_EINVAL, "relu:3: unknown layer");
    CHECK_FAILS(wick_spec_parse("", &s), WICK_EINVAL, "empty");
}

/* PyTorch's output size, by enumerating window positions one by one. */
static int brute_out(int in, int k, int st, int pad, int dil) {
    int n = 0;
    for (int start = -pad; start + dil * (k - 1) <= in - 1 + pad; start += st) n++;
    return n;
}

static void test_output_sizes_match_enumeration(void) {
    int ks[] = {1, 2, 3, 5}, ss[] = {1, 2, 3}, ps[] = {0, 1, 2}, ds[] = {1, 2};
    int checked = 0;
    for (int in = 5; in <= 13; in += 4)
        for (size_t a = 0; a < 4; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t c = 0; c < 3; c++)
                    for (size_t d = 0; d < 2; d++) {
                        char spec[200];
                        snprintf(spec, sizeof spec, "input:2x%dx%d,conv2d:4:%dx%d:stride=%d:pad=%d:dilation=%d,flatten,linear:3",
                                 in, in + 1, ks[a], ks[a] > 1 ? ks[a] - 1 : 1, ss[b], ps[c], ds[d]);
                        int want_h = brute_out(in, ks[a], ss[b], ps[c], ds[d]);
                        int want_w = brute_out(in + 1, ks[a] > 1 ? ks[a] - 1 : 1, ss[b], ps[c], ds[d]);
                        wick_spec *s = NULL;
                        wick_status st = wick_spec_parse(spec, &s);
                        if (want_h < 1 || want_w < 1) {
                            CHECK(st == WICK_ESHAPE);
                        } else {
                            CHECK(st == WICK_OK);
                            if (s) CHECK(s->layer[0].outshape[1] == want_h && s->layer[0].outshape[2] == want_w);
                            checked++;
                        }
                        wick_spec_free(s);
                    }
    CHECK(checked > 100);
}

/* Receptive field by brute force: mark the output unit at the centre, pull
 * the mark back through each window op, measure the marked input's extent. */
static void brute_rf(const wick_spec *s, int upto, long *rh, long *rw) {
    int H = s->input[1], W = s->input[2];
    int nh = s->layer[upto].outshape[1], nw = s->layer[upto].outshape[2];
    static unsigned char a[2][200 * 200];
    memset(a, 0, sizeof a);
    int cur = 0;
    a[cur][(nh / 2) * nw + nw / 2] = 1;
    for (int j = upto; j >= 0; j--) {
        const wick_layer *L = &s->layer[j];
        if (L->kind != WICK_LAYER_CONV2D && L->kind != WICK_LAYER_MAXPOOL && L->kind != WICK_LAYER_AVGPOOL) continue;
        int ih = L->in[1], iw = L->in[2], oh = L->outshape[1], ow = L->outshape[2];
        int dh = L->kind == WICK_LAYER_CONV2D ? L->dh : 1, dw = L->kind == WICK_LAYER_CONV2D ? L->dw : 1;
        memset(a[!cur], 0, sizeof a[0]);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                if (!a[cur][y * ow + x]) continue;
                for (int u = 0; u < L->kh; u++)
                    for (int v = 0; v < L->kw; v++) {
                        int yy = y * L->sh - L->ph + u * dh, xx = x * L->sw - L->pw + v * dw;
                        if (yy >= 0 && yy < ih && xx >= 0 && xx < iw) a[!cur][yy * iw + xx] = 1;
                    }
            }
        cur = !cur;
    }
    int y0 = H, y1 = -1, x0 = W, x1 = -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (a[cur][y * W + x]) {
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
            }
    *rh = y1 - y0 + 1;
    *rw = x1 - x0 + 1;
}

static void test_receptive_field_matches_brute_force(void) {
    const char *specs[] = {
        "input:1x150x150,conv2d:4:3,conv2d:4:3,maxpool:2,conv2d:4:3,maxpool:2,flatten,linear:2",
        "input:1x150x150,conv2d:4:5:stride=2:pad=2,avgpool:3:stride=2,conv2d:4:3:dilation=2,maxpool:2,flatten,linear:2",
        "input:1x150x160,conv2d:4:3x5:stride=1x2:pad=1x2,relu,conv2d:4:7x3:dilation=2x1,avgpool:2x3,flatten,linear:2",
        "input:2x120x120,conv2d:4:3:stride=3,batchnorm,conv2d:4:1,maxpool:3:stride=1:pad=1,flatten,linear:2",
    };
    for (size_t k = 0; k < WICK_ARRAY_LEN(specs); k++) {
        wick_spec *s;
        CHECK_OK(wick_spec_parse(specs[k], &s));
        if (!s) continue;
        for (int i = 0; i < s->n; i++) {
            if (s->layer[i].outshape[1] == 0) break;
            long bh, bw;
            brute_rf(s, i, &bh, &bw);
            if (s->layer[i].rf_h != bh || s->layer[i].rf_w != bw)
                fprintf(stderr, "  spec %zu layer %d: rf %ldx%ld, brute force %ldx%ld\n", k, i, s->layer[i].rf_h,
                        s->layer[i].rf_w, bh, bw);
            CHECK(s->layer[i].rf_h == bh && s->layer[i].rf_w == bw);
        }
        wick_spec_free(s);
    }
}

static void test_format_round_trip(void) {
    const char *specs[] = {
        example,
        "input:3x32x32,conv2d:16:3x5:stride=2:pad=1x2:dilation=2:groups=1:bias=0,leaky_relu:0.2,avgpool:3:stride=2:pad=1,"
        "globalavgpool,flatten,batchnorm:eps=0.001:momentum=0.3,gelu,linear:7:bias=0",
        "input:20,linear:64,tanh,dropout:0.1,linear:4",
        "input:4x9x9,conv2d:8:3:groups=4,swish,maxpool:3x2:stride=1,flatten,linear:2",
    };
    for (size_t k = 0; k < WICK_ARRAY_LEN(specs); k++) {
        wick_spec *a, *b;
        CHECK_OK(wick_spec_parse(specs[k], &a));
        if (!a) continue;
        char t1[4096], t2[4096];
        size_t n1 = wick_spec_format(a, t1, sizeof t1);
        CHECK(n1 < sizeof t1);
        CHECK_OK(wick_spec_parse(t1, &b));
        if (b) {
            wick_spec_format(b, t2, sizeof t2);
            CHECK(!strcmp(t1, t2));
            CHECK(a->n == b->n && a->params == b->params && a->flops_train == b->flops_train);
            wick_spec_free(b);
        }
        wick_spec_free(a);
    }
    /* defaults are omitted: the canonical text of the example is the example */
    wick_spec *s;
    CHECK_OK(wick_spec_parse(example, &s));
    char t[4096];
    if (s) {
        wick_spec_format(s, t, sizeof t);
        CHECK(!strcmp(t, example));
        /* a truncated buffer is still terminated and the length is what it needed */
        char small[10];
        size_t need = wick_spec_format(s, small, sizeof small);
        CHECK(need == strlen(example) && strlen(small) == sizeof small - 1);
        wick_spec_free(s);
    }
}

static void test_mlp_spec_counts_as_the_mlp(void) {
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    CHECK_OK(wick_arch_parse("784-512-512-10", &c));
    c.act = (wick_act){WICK_ACT_RELU, WICK_LEAKY_DEFAULT};
    c.init = WICK_INIT_HE;
    wick_spec *s;
    CHECK_OK(wick_spec_from_mlp(&c, &s));
    if (!s) return;
    char t[512];
    wick_spec_format(s, t, sizeof t);
    CHECK(!strcmp(t, "input:784,linear:512,relu,linear:512,relu,linear:10"));
    wick_mlp *m;
    CHECK_OK(wick_mlp_new(&m, &c, WICK_DT_F32, 8));
    if (m) {
        CHECK_REL(s->flops_train, wick_mlp_flops_per_sample(m), 1e-15);
        wick_mlp_free(m);
    }
    CHECK(s->params == 784LL * 512 + 512 + 512 * 512 + 512 + 5130);
    CHECK(s->layer[0].rf_h == -1);
    wick_spec_free(s);
}

static void test_torch_module_text(void) {
    wick_spec *s;
    CHECK_OK(wick_spec_parse("input:3x8x8,conv2d:4:3:stride=2:pad=1:bias=0,batchnorm,leaky_relu:0.2,maxpool:2,flatten,"
                             "batchnorm,dropout:0.5,linear:2", &s));
    if (!s) return;
    char b[256];
    wick_layer_torch(&s->layer[0], b, sizeof b);
    CHECK(!strcmp(b, "Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1, bias=False)"));
    wick_layer_torch(&s->layer[1], b, sizeof b);
    CHECK(!strncmp(b, "BatchNorm2d(4, eps=1.0000000000000001e-05, momentum=0.10000000000000001)", 60));
    wick_layer_torch(&s->layer[2], b, sizeof b);
    CHECK(!strcmp(b, "LeakyReLU(0.20000000000000001)"));
    wick_layer_torch(&s->layer[5], b, sizeof b);
    CHECK(!strncmp(b, "BatchNorm1d(16,", 15));
    wick_layer_torch(&s->layer[7], b, sizeof b);
    CHECK(!strcmp(b, "Linear(16, 2)"));
    wick_spec_free(s);
}

static void test_parse_is_locale_independent(void) {
    if (!setlocale(LC_ALL, "de_DE.UTF-8")) SKIP("locale de_DE.UTF-8 not available");
    wick_spec *s;
    CHECK_OK(wick_spec_parse("input:10,dropout:0.25,leaky_relu:0.2,linear:2", &s));
    if (s) {
        CHECK(s->layer[0].p == 0.25);
        CHECK(s->layer[1].act.slope == 0.2);
        char t[200];
        wick_spec_format(s, t, sizeof t);
        CHECK(!strcmp(t, "input:10,dropout:0.25,leaky_relu:0.2,linear:2"));
        wick_spec_free(s);
    }
    setlocale(LC_ALL, "C");
}

int main(void) {
    RUN(test_example_shapes_params_flops);
    RUN(test_bad_specs_name_token_and_reason);
    RUN(test_output_sizes_match_enumeration);
    RUN(test_receptive_field_matches_brute_force);
    RUN(test_format_round_trip);
    RUN(test_mlp_spec_counts_as_the_mlp);
    RUN(test_torch_module_text);
    RUN(test_parse_is_locale_independent);
    return chk_finish();
}
