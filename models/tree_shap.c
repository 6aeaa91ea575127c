/* Exact path-dependent TreeSHAP (Lundberg et al., the algorithm behind LightGBM's
 * pred_contrib) rearranged per leaf, in the way of Fast TreeSHAP v2 (Yang, 2021).
 *
 * A leaf contributes to the SHAP value of each feature on its path through a function of
 * only two things: the fraction of the training data that follows the path at that
 * feature's splits (its "zero fraction" z, fixed per leaf) and whether the row follows all
 * of them (its "one fraction" o, 0 or 1). With d distinct features on the path, the leaf's
 * contributions for a row are therefore one of 2^d vectors of d numbers, which
 * tree_shap_tables computes once per model; tree_shap_rows then costs a table look-up
 * per leaf instead of a walk that extends and unwinds the path at every node. Leaves
 * given no table (their 2^d rows would not fit the caller's memory budget) are computed
 * directly for each row.
 *
 * For one leaf of value v and one pattern o, the SHAP value of path feature k is
 *     v (o_k - z_k) sum_s c_s s! (d-s-1)! / d!
 * where c_s is the coefficient of x^s in prod_{j != k} (z_j + o_j x): the weighted sum over
 * the subsets of the other features, as in TreeSHAP's UnwoundPathSum. The caller passes
 * the weights s! (d-s-1)! / d! as a (TREE_SHAP_MAX_DEPTH + 1) x TREE_SHAP_MAX_DEPTH table,
 * row d (the kernel keeps no state of its own, so any thread may call it).
 *
 * The split rule is LightGBM's numerical decision (categorical splits and linear trees are
 * refused in Python): a NaN is read as 0 unless the split's missing type is NaN; a missing
 * value (NaN, or |x| <= 1e-35 for missing type Zero) goes the default way; otherwise
 * x <= threshold goes left, an infinite x read as +-1e300 as LightGBM does.
 */
#include "tree_shap.h"

#include <math.h>

#define RULE_DEFAULT_LEFT 1
#define RULE_MISSING_ZERO 2
#define RULE_MISSING_NAN 4
#define ZERO_THRESHOLD 1e-35

/* The leaf's d contributions for one pattern (bit k of `ones`: the row follows feature
 * k's splits). The product over the path splits into a constant, the z of the features
 * the row does not follow, and a polynomial of degree m over the m it follows; a feature
 * not followed then costs a multiplication (its value is that constant without its own z,
 * times one sum shared by all of them), a followed one an O(m) division of the
 * polynomial, so a leaf costs O(d + m^2) rather than O(d^2). */
static void leaf_contributions(const double *z, int64_t d, double value, uint64_t ones,
                               const double *weights, double *out) {
    double q[TREE_SHAP_MAX_DEPTH + 1];
    double r[TREE_SHAP_MAX_DEPTH + 1];
    const double *w = weights + d * TREE_SHAP_MAX_DEPTH;
    double base = 1.0, zero_sum = 0.0;
    int64_t m = 0;
    q[0] = 1.0;
    for (int64_t j = 0; j < d; j++) {
        if ((ones >> j) & 1u) { /* q *= (z_j + x) */
            q[m + 1] = q[m];
            for (int64_t s = m; s >= 1; s--) q[s] = q[s] * z[j] + q[s - 1];
            q[0] *= z[j];
            m++;
        } else {
            base *= z[j];
        }
    }
    if (m < d) {
        for (int64_t s = 0; s <= m; s++) zero_sum += q[s] * w[s];
    }
    for (int64_t k = 0; k < d; k++) {
        double sum = 0.0;
        if ((ones >> k) & 1u) { /* divide q by (z_k + x), from the top: stable for z_k <= 1 */
            r[m - 1] = q[m];
            for (int64_t s = m - 1; s >= 1; s--) r[s - 1] = q[s] - z[k] * r[s];
            for (int64_t s = 0; s < m; s++) sum += r[s] * w[s];
            out[k] = value * (1.0 - z[k]) * base * sum;
        } else if (z[k] > 0.0) { /* base / z_k: the other constants' product */
            out[k] = -value * base * zero_sum;
        } else { /* o_k - z_k = 0 */
            out[k] = 0.0;
        }
    }
}

int tree_shap_tables(const double *slot_zero, const int64_t *leaf_first_slot,
                     const double *leaf_value, const int64_t *leaf_table, int64_t leaves,
                     const double *weights, double *table) {
    for (int64_t l = 0; l < leaves; l++) {
        int64_t first = leaf_first_slot[l], d = leaf_first_slot[l + 1] - first;
        if (leaf_table[l] < 0) continue;
        if (d < 1 || d > 30) return -1;
        for (uint64_t ones = 0; ones < ((uint64_t)1 << d); ones++) {
            leaf_contributions(slot_zero + first, d, leaf_value[l], ones, weights,
                               table + leaf_table[l] + (int64_t)ones * d);
        }
    }
    return 0;
}

static int goes_left(double x, double threshold, uint8_t rule) {
    if (isnan(x) && !(rule & RULE_MISSING_NAN)) x = 0.0;
    if (x > 1e300) x = 1e300; /* as LightGBM reads an infinite value (its thresholds */
    if (x < -1e300) x = -1e300; /* hold +inf as 1e300) */
    if (((rule & RULE_MISSING_ZERO) && x >= -ZERO_THRESHOLD && x <= ZERO_THRESHOLD) ||
        ((rule & RULE_MISSING_NAN) && isnan(x))) {
        return (rule & RULE_DEFAULT_LEFT) != 0;
    }
    return x <= threshold;
}

int tree_shap_rows(
    const double *x, int64_t rows, int64_t features,
    const int32_t *node_feature, const double *node_threshold, const uint8_t *node_rule,
    int64_t nodes,
    const int64_t *leaf_first_term, const int32_t *term_node, const uint8_t *term_left,
    const uint8_t *term_slot,
    const int64_t *leaf_first_slot, const int32_t *slot_feature, const double *slot_zero,
    const double *leaf_value, const int64_t *leaf_table, const double *table, int64_t leaves,
    const double *weights, uint8_t *scratch, double *out) {
    double direct[TREE_SHAP_MAX_DEPTH];
    for (int64_t l = 0; l < leaves; l++) {
        if (leaf_first_slot[l + 1] - leaf_first_slot[l] > TREE_SHAP_MAX_DEPTH) return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * features;
        double *phi = out + r * features;
        for (int64_t n = 0; n < nodes; n++) {
            scratch[n] = (uint8_t)goes_left(row[node_feature[n]], node_threshold[n], node_rule[n]);
        }
        for (int64_t l = 0; l < leaves; l++) {
            int64_t first = leaf_first_slot[l], d = leaf_first_slot[l + 1] - first;
            uint64_t ones = d >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << d) - 1);
            /* the path features the row does not follow (scratch and term_left hold 0 or 1),
             * without a branch: which way a row goes at a split is not predictable, and
             * mispredicted branches here took a third of the kernel's time */
            uint64_t off = 0;
            for (int64_t t = leaf_first_term[l]; t < leaf_first_term[l + 1]; t++) {
                off |= (uint64_t)(scratch[term_node[t]] ^ term_left[t]) << term_slot[t];
            }
            ones &= ~off;
            const double *c;
            if (leaf_table[l] >= 0) {
                c = table + leaf_table[l] + (int64_t)ones * d;
            } else {
                leaf_contributions(slot_zero + first, d, leaf_value[l], ones, weights, direct);
                c = direct;
            }
            for (int64_t k = 0; k < d; k++) phi[slot_feature[first + k]] += c[k];
        }
    }
    return 0;
}
