/* Exact path-dependent TreeSHAP for a LightGBM binary model (models/tree_shap.c). */
#ifndef TREE_SHAP_H
#define TREE_SHAP_H

#include <stdint.h>

#define TREE_SHAP_MAX_DEPTH 64

int tree_shap_tables(const double *slot_zero, const int64_t *leaf_first_slot,
                     const double *leaf_value, const int64_t *leaf_table, int64_t leaves,
                     const double *weights, double *table);

int tree_shap_rows(
    const double *x, int64_t rows, int64_t features,
    const int32_t *node_feature, const double *node_threshold, const uint8_t *node_rule,
    int64_t nodes,
    const int64_t *leaf_first_term, const int32_t *term_node, const uint8_t *term_left,
    const uint8_t *term_slot,
    const int64_t *leaf_first_slot, const int32_t *slot_feature, const double *slot_zero,
    const double *leaf_value, const int64_t *leaf_table, const double *table, int64_t leaves,
    const double *weights, uint8_t *scratch, double *out);

#endif
