/* cmd_summary.c — `wick summary`: a network's layers, output shapes,
 * parameters, FLOPs a sample and receptive fields, from its spec alone. */
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A spec in the layer language, or MLP widths ("784-512-10") with act. */
wick_status cli_parse_spec(const char *arch, const char *act, wick_spec **out) {
    if (strchr(arch, ':') || strchr(arch, ',')) return wick_spec_parse(arch, out);
    wick_mlp_config c;
    memset(&c, 0, sizeof c);
    c.act = (wick_act){WICK_ACT_RELU, WICK_LEAKY_DEFAULT};
    wick_status s = wick_arch_parse(arch, &c);
    if (s == WICK_OK && act) s = wick_act_parse(act, &c.act);
    return s ? s : wick_spec_from_mlp(&c, out);
}

/* What the command line asks for. */
static struct {
    const char *arch, *act;
    int json;
} A;

static const cli_opt summary_opts[] = {
    {"arch", CLI_STR, &A.arch, 0, 0, 0, NULL, "SPEC",
     "a layer spec, e.g. input:1x28x28,conv2d:32:3:pad=1,relu,maxpool:2,flatten,linear:10\n"
     "(tokens: input:CxHxW|input:F, conv2d:OUT:K[:stride=S][:pad=P][:dilation=D][:groups=G]\n"
     "[:bias=0], linear:OUT, batchnorm, dropout:P, maxpool:K[:stride=S][:pad=P], avgpool:...,\n"
     "globalavgpool, flatten, and the activations), or MLP widths such as 784-512-512-10", NULL, NULL},
    {"act", CLI_FN, &A.act, 0, 0, 0, "=relu", "NAME", "the activation between the layers of an MLP given by widths", NULL, cli_act_arg},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last stdout line: one JSON object with every layer and the totals", NULL, NULL},
    {0}};

static const cli_cmd summary_cmd = {
    "summary",
    "usage: wick summary --arch SPEC [--act NAME] [--json]\n"
    "Each layer's output shape, trainable parameters, FLOPs a sample (forward, and a training\n"
    "step: forward + weight gradient + input gradient, 2 FLOPs a multiply-add of the products)\n"
    "and receptive field on the input; then the totals.  Nothing is allocated or trained.\n\n",
    summary_opts, NULL, 17, 1};

int cmd_summary(int argc, char **argv) {
    memset(&A, 0, sizeof A);
    int prc = cli_parse(&summary_cmd, argc, argv, NULL);
    if (prc != CLI_GO) return prc;
    const char *arch = A.arch, *act = A.act;
    int json = A.json;
    if (!arch) {
        fprintf(stderr, "wick summary: --arch SPEC is required (see wick summary --help)\n");
        return EXIT_USAGE;
    }
    wick_spec *s;
    wick_status st = cli_parse_spec(arch, act, &s);
    if (st) {
        fprintf(stderr, "wick summary: %s\n", wick_last_error());
        return EXIT_USAGE;
    }
    wick_spec_print(stdout, s);
    int rc = EXIT_OK;
    if (json) {
        char text[8192];
        wick_spec_format(s, text, sizeof text);
        json_t *layers = json_array();
        for (int i = 0; i < s->n; i++) {
            const wick_layer *L = &s->layer[i];
            char tok[256], mod[512];
            wick_layer_format(L, tok, sizeof tok);
            wick_layer_torch(L, mod, sizeof mod);
            json_t *shape = json_array();
            for (int k = 0; k < (L->outshape[1] ? 3 : 1); k++) json_array_append_new(shape, json_integer(L->outshape[k]));
            json_t *rf = L->rf_h < 0 ? json_null() : json_pack("[I, I]", (json_int_t)L->rf_h, (json_int_t)L->rf_w);
            json_array_append_new(layers, json_pack("{s:i, s:s, s:s, s:s, s:o, s:I, s:f, s:f, s:o}", "index", i,
                                                    "layer", tok, "kind", wick_layer_kind_name(L->kind), "torch", mod,
                                                    "output", shape, "params", (json_int_t)L->params, "flops_fwd",
                                                    L->flops_fwd, "flops_train", L->flops_train, "receptive_field", rf));
        }
        json_t *in = json_array();
        for (int k = 0; k < (s->input[1] ? 3 : 1); k++) json_array_append_new(in, json_integer(s->input[k]));
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:f, s:f}", "command", "summary", "arch", text, "input", in,
                              "layers", layers, "params", (json_int_t)s->params, "flops_fwd", s->flops_fwd,
                              "flops_train", s->flops_train);
        rc = cli_write_json(stdout, "summary", o, 17);
        json_decref(o);
    }
    wick_spec_free(s);
    return rc;
}
