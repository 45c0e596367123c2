/* metrics.c — classification metrics from true and predicted labels:
 * accuracy, the confusion matrix [true][predicted], per-class precision,
 * recall and F1, and macro F1.
 *
 * Where a ratio is undefined it is 0 (scikit-learn's zero_division=0):
 * precision of a class never predicted, recall of a class with no samples,
 * F1 when precision + recall = 0.  Macro F1 is the plain mean over all
 * `classes` classes, including those with no samples (sklearn's
 * f1_score(average='macro', labels=range(classes), zero_division=0)). */
#include "core/core.h"
#include <string.h>

void wick_metrics_free(wick_metrics *m) {
    if (!m) return;
    wick_free(m->confusion);
    wick_free(m->precision);
    wick_free(m->recall);
    wick_free(m->f1);
    wick_free(m);
}

wick_status wick_metrics_compute(const int32_t *truth, const int32_t *pred, size_t n, int classes,
                                 wick_metrics **out) {
    if (!out) return wick_fail(WICK_EINVAL, "metrics: NULL output");
    *out = NULL;
    if (classes < 1) return wick_fail(WICK_EINVAL, "metrics: %d classes (need at least 1)", classes);
    if (n > 0 && (!truth || !pred)) return wick_fail(WICK_EINVAL, "metrics: NULL labels for %zu samples", n);
    /* Validate every label before allocating: a bad one names its index. */
    for (size_t i = 0; i < n; i++) {
        if (truth[i] < 0 || truth[i] >= classes)
            return wick_fail(WICK_EINVAL, "metrics: true label %d at index %zu is outside [0, %d)",
                             (int)truth[i], i, classes);
        if (pred[i] < 0 || pred[i] >= classes)
            return wick_fail(WICK_EINVAL, "metrics: predicted label %d at index %zu is outside [0, %d)",
                             (int)pred[i], i, classes);
    }
    size_t k = (size_t)classes, kk;
    if (!wick_mul_size(k, k, &kk)) return wick_fail(WICK_EINVAL, "metrics: %d classes overflow", classes);

    wick_metrics *m = wick_calloc(1, sizeof *m);
    if (!m) return wick_fail(WICK_ENOMEM, "metrics: out of memory");
    m->classes = classes;
    m->n = n;
    m->confusion = wick_calloc(kk, sizeof *m->confusion);
    m->precision = wick_calloc(k, sizeof *m->precision);
    m->recall = wick_calloc(k, sizeof *m->recall);
    m->f1 = wick_calloc(k, sizeof *m->f1);
    if (!m->confusion || !m->precision || !m->recall || !m->f1) {
        wick_metrics_free(m);
        return wick_fail(WICK_ENOMEM, "metrics: out of memory for %d classes", classes);
    }
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        m->confusion[(size_t)truth[i] * k + (size_t)pred[i]]++;
        correct += truth[i] == pred[i];
    }
    m->accuracy = n ? (double)correct / (double)n : 0.0;
    double sum_f1 = 0;
    for (size_t c = 0; c < k; c++) {
        int64_t tp = m->confusion[c * k + c], predicted = 0, support = 0;
        for (size_t j = 0; j < k; j++) {
            predicted += m->confusion[j * k + c];
            support += m->confusion[c * k + j];
        }
        double p = predicted ? (double)tp / (double)predicted : 0.0;
        double r = support ? (double)tp / (double)support : 0.0;
        m->precision[c] = p;
        m->recall[c] = r;
        m->f1[c] = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        sum_f1 += m->f1[c];
    }
    m->macro_f1 = sum_f1 / (double)k;
    *out = m;
    return WICK_OK;
}

/* "3 Dress" with names, "3" without. */
static void class_label(char *buf, size_t size, int c, const char *const *names) {
    if (names && names[c]) snprintf(buf, size, "%d %s", c, names[c]);
    else snprintf(buf, size, "%d", c);
}

void wick_metrics_print(FILE *f, const wick_metrics *m, const char *const *class_names) {
    if (!f || !m) return;
    size_t k = (size_t)m->classes;
    char label[64];
    int w = (int)strlen("true \\ pred");
    int64_t maxcount = 0;
    for (int c = 0; c < m->classes; c++) {
        class_label(label, sizeof label, c, class_names);
        if ((int)strlen(label) > w) w = (int)strlen(label);
    }
    for (size_t i = 0; i < k * k; i++)
        if (m->confusion[i] > maxcount) maxcount = m->confusion[i];

    size_t correct = 0;
    for (size_t c = 0; c < k; c++) correct += (size_t)m->confusion[c * k + c];
    fprintf(f, "accuracy %.4f (%zu/%zu)\n\n", m->accuracy, correct, m->n);

    fprintf(f, "%-*s %9s %9s %9s %9s\n", w, "class", "precision", "recall", "f1", "support");
    double sp = 0, sr = 0;
    for (int c = 0; c < m->classes; c++) {
        int64_t support = 0;
        for (size_t j = 0; j < k; j++) support += m->confusion[(size_t)c * k + j];
        class_label(label, sizeof label, c, class_names);
        fprintf(f, "%-*s %9.4f %9.4f %9.4f %9lld\n", w, label, m->precision[c], m->recall[c],
                m->f1[c], (long long)support);
        sp += m->precision[c];
        sr += m->recall[c];
    }
    fprintf(f, "%-*s %9.4f %9.4f %9.4f %9zu\n\n", w, "macro avg", sp / (double)k, sr / (double)k,
            m->macro_f1, m->n);

    /* Columns are headed by class index (names would make rows too wide);
     * rows carry index and name. */
    int cw = snprintf(NULL, 0, "%lld", (long long)maxcount);
    int iw = snprintf(NULL, 0, "%d", m->classes - 1);
    if (iw > cw) cw = iw;
    if (cw < 4) cw = 4;  /* room to read small matrices at a glance */
    fprintf(f, "confusion matrix (rows: true class, columns: predicted class)\n");
    fprintf(f, "%-*s", w, "true \\ pred");
    for (int c = 0; c < m->classes; c++) fprintf(f, " %*d", cw, c);
    fputc('\n', f);
    for (int r = 0; r < m->classes; r++) {
        class_label(label, sizeof label, r, class_names);
        fprintf(f, "%-*s", w, label);
        for (size_t c = 0; c < k; c++) fprintf(f, " %*lld", cw, (long long)m->confusion[(size_t)r * k + c]);
        fputc('\n', f);
    }
}
