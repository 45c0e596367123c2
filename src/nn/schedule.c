/* schedule.c — learning-rate schedules, one value per epoch, following
 * torch.optim.lr_scheduler (StepLR, ExponentialLR, LinearLR,
 * ReduceLROnPlateau).
 *
 * Epoch e (0-based) is trained at wick_sched_lr(s, e); that is torch's
 * get_last_lr() after e calls to scheduler.step().  STEP and EXP multiply by
 * gamma once per decay, as torch's recursive form does, so the values agree
 * with torch's bit for bit.  The whole state is the public wick_sched struct,
 * so a checkpoint stores and restores it as numbers. */
#include "core/core.h"
#include <math.h>
#include <string.h>

/* torch ReduceLROnPlateau's eps: a reduction smaller than this is skipped. */
#define PLATEAU_EPS 1e-8

static const char *sched_name(wick_sched_kind k) {
    switch (k) {
    case WICK_SCHED_CONSTANT: return "constant";
    case WICK_SCHED_STEP: return "step";
    case WICK_SCHED_EXP: return "exp";
    case WICK_SCHED_LINEAR: return "linear";
    case WICK_SCHED_PLATEAU: return "plateau";
    }
    return "?";
}

wick_status wick_sched_parse(const char *name, wick_sched_kind *out) {
    static const wick_sched_kind kinds[] = {WICK_SCHED_CONSTANT, WICK_SCHED_STEP, WICK_SCHED_EXP,
                                            WICK_SCHED_LINEAR, WICK_SCHED_PLATEAU};
    if (!name || !out) return wick_fail(WICK_EINVAL, "wick_sched_parse: NULL argument");
    for (size_t k = 0; k < WICK_ARRAY_LEN(kinds); k++)
        if (strcmp(name, sched_name(kinds[k])) == 0) {
            *out = kinds[k];
            return WICK_OK;
        }
    return wick_fail(WICK_EINVAL,
                     "unknown schedule '%s' (expected constant, step, exp, linear or plateau)", name);
}

wick_sched_config wick_sched_defaults(wick_sched_kind kind) {
    wick_sched_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr0 = 1e-3;        /* torch's Adam default; SGD has none */
    c.step_size = 30;    /* StepLR has no default; 30 is the torchvision recipe's */
    c.gamma = 0.1;       /* StepLR's default */
    c.floor = 0.0;       /* ReduceLROnPlateau's min_lr */
    c.epochs = 10;
    c.patience = 10;     /* ReduceLROnPlateau's defaults from here on */
    c.factor = 0.1;
    c.threshold = 1e-4;
    return c;
}

static int finite_pos(double x) { return x > 0.0 && isfinite(x); }

wick_status wick_sched_init(wick_sched *s, const wick_sched_config *c) {
    if (!s || !c) return wick_fail(WICK_EINVAL, "wick_sched_init: NULL argument");
    const char *k = sched_name(c->kind);
    if (*k == '?') return wick_fail(WICK_EINVAL, "schedule: unknown kind %d", (int)c->kind);
    if (!finite_pos(c->lr0))
        return wick_fail(WICK_EINVAL, "%s schedule: initial learning rate %g must be finite and > 0",
                         k, c->lr0);
    switch (c->kind) {
    case WICK_SCHED_CONSTANT: break;
    case WICK_SCHED_STEP:
        if (c->step_size < 1)
            return wick_fail(WICK_EINVAL, "step schedule: step_size %d must be >= 1", c->step_size);
        __attribute__((fallthrough)); /* and gamma, as EXP */
    case WICK_SCHED_EXP:
        if (!finite_pos(c->gamma))
            return wick_fail(WICK_EINVAL, "%s schedule: gamma %g must be finite and > 0", k, c->gamma);
        break;
    case WICK_SCHED_LINEAR:
        if (c->epochs < 1)
            return wick_fail(WICK_EINVAL, "linear schedule: epochs %d must be >= 1", c->epochs);
        /* torch's LinearLR: end_factor = floor/lr0 must lie in [0, 1] */
        if (!(c->floor >= 0.0 && c->floor <= c->lr0))
            return wick_fail(WICK_EINVAL, "linear schedule: floor %g must be in [0, lr0 = %g]",
                             c->floor, c->lr0);
        break;
    case WICK_SCHED_PLATEAU:
        if (!(c->factor > 0.0 && c->factor < 1.0))
            return wick_fail(WICK_EINVAL, "plateau schedule: factor %g must be in (0, 1)", c->factor);
        if (c->patience < 0)
            return wick_fail(WICK_EINVAL, "plateau schedule: patience %d must be >= 0", c->patience);
        if (!(c->threshold >= 0.0 && c->threshold < 1.0))
            return wick_fail(WICK_EINVAL, "plateau schedule: threshold %g must be in [0, 1)",
                             c->threshold);
        if (!(c->floor >= 0.0 && isfinite(c->floor)))
            return wick_fail(WICK_EINVAL, "plateau schedule: floor (min_lr) %g must be finite and >= 0",
                             c->floor);
        break;
    }
    memset(s, 0, sizeof *s);
    s->c = *c;
    s->lr = c->lr0;
    s->best = INFINITY;   /* torch: mode_worse for mode 'min' */
    s->bad_epochs = 0;
    return WICK_OK;
}

/* lr0 * gamma^k by k multiplications, as torch's recursive get_lr() does;
 * pow() for absurd k so that a huge epoch cannot stall. */
static double times_pow(double lr0, double gamma, int k) {
    if (k > 100000) return lr0 * pow(gamma, k);
    double lr = lr0;
    for (int j = 0; j < k; j++) lr *= gamma;
    return lr;
}

double wick_sched_lr(wick_sched *s, int epoch) {
    const wick_sched_config *c = &s->c;
    int e = epoch < 0 ? 0 : epoch;
    switch (c->kind) {
    case WICK_SCHED_CONSTANT: s->lr = c->lr0; break;
    case WICK_SCHED_STEP: s->lr = times_pow(c->lr0, c->gamma, e / c->step_size); break;
    case WICK_SCHED_EXP: s->lr = times_pow(c->lr0, c->gamma, e); break;
    case WICK_SCHED_LINEAR: {
        /* t = min(e, E)/E;  lr = (1 - t)*lr0 + t*floor: exactly lr0 at e = 0
         * and exactly floor from e = E on.  This is torch's LinearLR with
         * start_factor 1, end_factor floor/lr0, total_iters E (closed form). */
        double t = e >= c->epochs ? 1.0 : (double)e / c->epochs;
        s->lr = (1.0 - t) * c->lr0 + t * c->floor;
        break;
    }
    case WICK_SCHED_PLATEAU: break;
    }
    return s->lr;
}

void wick_sched_observe(wick_sched *s, double val_loss) {
    const wick_sched_config *c = &s->c;
    if (c->kind != WICK_SCHED_PLATEAU) return;
    /* torch: mode 'min', threshold_mode 'rel', cooldown 0.  A NaN loss
     * compares false, so it counts as a bad epoch, as in torch. */
    if (val_loss < s->best * (1.0 - c->threshold)) {
        s->best = val_loss;
        s->bad_epochs = 0;
    } else {
        s->bad_epochs++;
    }
    if (s->bad_epochs > c->patience) {
        double lr = s->lr * c->factor;
        if (lr < c->floor) lr = c->floor;
        if (s->lr - lr > PLATEAU_EPS) s->lr = lr;
        s->bad_epochs = 0;
    }
}
