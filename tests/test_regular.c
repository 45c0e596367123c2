/* test_regular.c — the regularisers on the update against closed forms:
 * clipping by value, the global-norm clip coefficient of
 * torch.nn.utils.clip_grad_norm_, and torch.renorm's max-norm projection of
 * each unit's incoming weights.  (tests/test_cnn_torch.py checks whole
 * training steps with them against PyTorch.) */
#include "check.h"
#include "nn/regular.h"
#include <math.h>

static void test_clip_value_clamps_each_element(void) {
    float g[6] = {-3, -0.5f, 0, 0.25f, 2, 1};
    nn_clip_value(g, 6, 1);
    float want[6] = {-1, -0.5f, 0, 0.25f, 1, 1};
    for (int i = 0; i < 6; i++) CHECK(g[i] == want[i]);
}

static void test_clip_coef_of_a_3_4_5_gradient(void) {
    /* |(3, 4)| = 5: clipping to 1 scales by 1 / (5 + 1e-6); to 10 leaves it */
    float a[1] = {3}, b[1] = {4};
    double sq = nn_sum_squares(a, 1) + nn_sum_squares(b, 1);
    CHECK(sq == 25);
    CHECK_REL(nn_clip_coef(sq, 1), 1 / (5 + 1e-6), 1e-15);
    CHECK(nn_clip_coef(sq, 10) == 1);
    nn_scale(a, 1, nn_clip_coef(sq, 1));
    nn_scale(b, 1, nn_clip_coef(sq, 1));
    CHECK_NEAR(sqrt((double)a[0] * a[0] + (double)b[0] * b[0]), 1, 1e-6);
}

static void test_max_norm_projects_long_rows_only(void) {
    /* rows of norm 5, 0.5 and 13; max-norm 2 */
    float W[3][2] = {{3, 4}, {0.3f, 0.4f}, {5, 12}};
    nn_max_norm_rows(&W[0][0], 3, 2, 2);
    CHECK_NEAR(W[0][0], 3 * 2 / (5 + 1e-7), 1e-6);
    CHECK_NEAR(W[0][1], 4 * 2 / (5 + 1e-7), 1e-6);
    CHECK(W[1][0] == 0.3f && W[1][1] == 0.4f);
    CHECK_NEAR(hypot(W[2][0], W[2][1]), 2, 1e-6);
    CHECK_NEAR(W[2][0] / W[2][1], 5.0 / 12, 1e-6);   /* the direction kept */
}

int main(void) {
    RUN(test_clip_value_clamps_each_element);
    RUN(test_clip_coef_of_a_3_4_5_gradient);
    RUN(test_max_norm_projects_long_rows_only);
    return chk_finish();
}
