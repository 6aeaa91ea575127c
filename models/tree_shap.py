"""Exact TreeSHAP contributions of a LightGBM binary model, from per-leaf tables, in C.

The same numbers as LightGBM's ``pred_contrib`` (to rounding), at a fraction of the cost:
``models/tree_shap.c`` says how. The trees are read once from ``dump_model()``: each
leaf's value, the distinct features on its path with the share of training data that
follows the path at their splits, and the splits themselves. A leaf whose table (``2^d``
rows of ``d`` numbers for ``d`` distinct path features) fits the memory budget, smallest
first, is looked up per row; the others are computed per row.

:meth:`TreeShap.of` returns ``None`` for a model it does not cover (categorical splits,
linear trees, several trees per iteration, a path through more than 64 features); the
explainer then calls LightGBM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import TreeShapKernelMissing
from models.lgb import lgb

TABLE_BUDGET_BYTES = 8 * 1024 * 1024
"""Memory for the per-leaf tables of one model. The bench model (131 trees of up to 31
leaves) tables 3,131 of its 3,629 leaves in it: 135 µs per row in batches of 10, against
155 µs with 4 MB, 110 µs with 16 MB (every leaf but the 138 deepest) and 205 µs with
none; LightGBM's ``pred_contrib`` took 490 µs (one thread, the same host). Finding each
leaf's pattern without a branch later took about 30 % off the 8 MB case (229 -> 160 µs
per row on another host: docs/benchmarks/results.md, 2026-12-08)."""
MAX_PATH_FEATURES = 64
"""``TREE_SHAP_MAX_DEPTH`` of ``tree_shap.h``."""
_RULE_DEFAULT_LEFT, _RULE_MISSING_ZERO, _RULE_MISSING_NAN = 1, 2, 4
"""The split rule bits of ``tree_shap.c``; LightGBM's decision type holds the categorical
flag in bit 0, default-left in bit 1 and the missing type (none, zero, NaN) in bits 2-3."""


def _load() -> tuple[Any, Any]:
    try:
        from models._tree_shap import ffi, lib
    except ImportError as exc:  # not built: `make setup` (or `pip install -e .`) builds it
        raise TreeShapKernelMissing(f"models/tree_shap.c ({exc})") from None
    return ffi, lib


_FFI, _LIB = _load()


def _shapley_weights() -> npt.NDArray[np.float64]:
    """``s! (d-s-1)! / d!`` at ``[d, s]`` for ``s < d <= MAX_PATH_FEATURES``: the weight of
    a subset of ``s`` of the other ``d - 1`` path features."""
    weights = np.zeros((MAX_PATH_FEATURES + 1, MAX_PATH_FEATURES), dtype=np.float64)
    for d in range(1, MAX_PATH_FEATURES + 1):
        for s in range(d):
            weights[d, s] = 1.0 / (d * math.comb(d - 1, s))
    return weights


_WEIGHTS = _shapley_weights()


@dataclass
class _Trees:
    """The model's splits and leaves, as :class:`TreeShap` flattens them into the arrays of
    ``tree_shap_rows``."""

    node_feature: list[int]
    node_threshold: list[float]
    node_rule: list[int]
    leaf_value: list[float]
    leaf_terms: list[list[tuple[int, bool, int]]]
    """Per leaf: (node, goes left, slot of its feature) for each split on its path."""
    leaf_slots: list[list[tuple[int, float]]]
    """Per leaf: (feature, zero fraction) of each distinct feature on its path."""


def _read_trees(text: str) -> _Trees | None:
    """The trees of a model in LightGBM's text format (``model.txt``); None for a model
    the kernel does not cover. Read from the text, not from ``dump_model()``: its JSON
    parse holds the GIL for ~0.1 s, a stall of the scoring loop at every model swap."""
    head, _, body = text.partition("\nTree=")
    if "num_tree_per_iteration=1\n" not in head + "\n":
        return None
    trees = _Trees([], [], [], [], [], [])
    for block in body.partition("\nend of trees")[0].split("\nTree="):
        tree = dict(line.split("=", 1) for line in block.split("\n") if "=" in line)
        if "num_leaves" not in tree:
            continue  # a model of no trees
        if tree.get("is_linear", "0") != "0" or tree.get("num_cat", "0") != "0":
            return None
        if int(tree["num_leaves"]) > 1 and not _add_tree(trees, tree):
            return None  # (a one-leaf tree only moves the bias)
    return trees


def _add_tree(trees: _Trees, tree: dict[str, str]) -> bool:
    feature = [int(v) for v in tree["split_feature"].split()]
    threshold = [float(v) for v in tree["threshold"].split()]
    decision = [int(v) for v in tree["decision_type"].split()]
    children = (
        [int(v) for v in tree["left_child"].split()],
        [int(v) for v in tree["right_child"].split()],
    )
    leaf_value = [float(v) for v in tree["leaf_value"].split()]
    leaf_count = [float(v) for v in tree["leaf_count"].split()]
    internal_count = [float(v) for v in tree["internal_count"].split()]
    first = len(trees.node_feature)
    for f, t, d in zip(feature, threshold, decision, strict=True):
        missing = (d >> 2) & 3
        if d & 1 or missing == 3:  # a categorical split, or a missing type not known
            return False
        rule = _RULE_DEFAULT_LEFT if d & 2 else 0
        if missing:
            rule |= _RULE_MISSING_ZERO if missing == 1 else _RULE_MISSING_NAN
        trees.node_feature.append(f)
        trees.node_threshold.append(t)
        trees.node_rule.append(rule)
    stack: list[tuple[int, list[tuple[int, int, bool, float]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        count = internal_count[node]
        for side, left in ((1, False), (0, True)):
            child = children[side][node]
            child_count = internal_count[child] if child >= 0 else leaf_count[~child]
            share = child_count / count if count > 0 else 0.0
            step = [*path, (feature[node], first + node, left, share)]
            if child >= 0:
                stack.append((child, step))
            else:
                _add_leaf(trees, leaf_value[~child], step)
    return True


def _add_leaf(trees: _Trees, value: float, path: list[tuple[int, int, bool, float]]) -> None:
    slot_of: dict[int, int] = {}
    zero: list[float] = []
    terms = []
    for feature, node, left, share in path:
        if feature not in slot_of:
            slot_of[feature] = len(zero)
            zero.append(1.0)
        zero[slot_of[feature]] *= share
        terms.append((node, left, slot_of[feature]))
    trees.leaf_value.append(value)
    trees.leaf_terms.append(terms)
    trees.leaf_slots.append([(f, zero[s]) for f, s in sorted(slot_of.items(), key=lambda i: i[1])])


class TreeShap:
    """Exact TreeSHAP for one booster (:meth:`of`), per row in C."""

    def __init__(self, trees: _Trees, features: int, budget_bytes: int) -> None:
        self.features = features
        n_leaves = len(trees.leaf_value)
        depth = np.array([len(s) for s in trees.leaf_slots], dtype=np.int64)
        self._node_feature = np.array(trees.node_feature, dtype=np.int32)
        self._node_threshold = np.array(trees.node_threshold, dtype=np.float64)
        self._node_rule = np.array(trees.node_rule, dtype=np.uint8)
        self._leaf_first_term = np.zeros(n_leaves + 1, dtype=np.int64)
        self._leaf_first_term[1:] = np.cumsum([len(t) for t in trees.leaf_terms])
        terms = [t for leaf in trees.leaf_terms for t in leaf]
        self._term_node = np.array([t[0] for t in terms], dtype=np.int32)
        self._term_left = np.array([t[1] for t in terms], dtype=np.uint8)
        self._term_slot = np.array([t[2] for t in terms], dtype=np.uint8)
        self._leaf_first_slot = np.zeros(n_leaves + 1, dtype=np.int64)
        self._leaf_first_slot[1:] = np.cumsum(depth)
        slots = [s for leaf in trees.leaf_slots for s in leaf]
        self._slot_feature = np.array([s[0] for s in slots], dtype=np.int32)
        self._slot_zero = np.array([s[1] for s in slots], dtype=np.float64)
        self._leaf_value = np.array(trees.leaf_value, dtype=np.float64)
        self._leaf_table, self._table = self._tables(depth, budget_bytes)
        self.tabled_leaves = int(np.count_nonzero(self._leaf_table >= 0))
        self.leaves = n_leaves

    @classmethod
    def of(cls, booster: lgb.Booster, budget_bytes: int = TABLE_BUDGET_BYTES) -> TreeShap | None:
        """The kernel for ``booster``, or None where it does not apply (module doc)."""
        trees = _read_trees(booster.model_to_string())
        if trees is None or any(len(s) > MAX_PATH_FEATURES for s in trees.leaf_slots):
            return None
        return cls(trees, booster.num_feature(), budget_bytes)

    def _tables(
        self, depth: npt.NDArray[np.int64], budget_bytes: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Each leaf's table offset (-1: none) and the tables, smallest leaves first."""
        size = np.where(depth <= 30, np.left_shift(1, np.minimum(depth, 30)) * depth, -1)
        offsets = np.full(len(depth), -1, dtype=np.int64)
        used = 0
        for leaf in np.argsort(size, kind="stable").tolist():
            need = int(size[leaf])
            if need < 0 or (used + need) * 8 > budget_bytes:
                break
            offsets[leaf] = used
            used += need
        table = np.empty(max(used, 1), dtype=np.float64)
        status = _LIB.tree_shap_tables(
            _ptr("double *", self._slot_zero),
            _ptr("int64_t *", self._leaf_first_slot),
            _ptr("double *", self._leaf_value),
            _ptr("int64_t *", offsets),
            len(depth),
            _ptr("double *", _WEIGHTS),
            _ptr("double *", table),
        )
        if status != 0:
            raise ValueError("a tabled leaf has more path features than a table takes")
        return offsets, table

    def contributions(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Per-feature contributions (log-odds), shape ``(n, features)``, bias left out."""
        x = np.ascontiguousarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"expected rows of {self.features} features, got shape {x.shape}")
        out = np.zeros(x.shape, dtype=np.float64)
        if len(x) == 0:
            return out
        scratch = np.empty(max(len(self._node_feature), 1), dtype=np.uint8)  # one per call:
        # the kernel runs without the GIL, and the API explains on several threads
        status = _LIB.tree_shap_rows(
            _ptr("double *", x),
            len(x),
            self.features,
            _ptr("int32_t *", self._node_feature),
            _ptr("double *", self._node_threshold),
            _ptr("uint8_t *", self._node_rule),
            len(self._node_feature),
            _ptr("int64_t *", self._leaf_first_term),
            _ptr("int32_t *", self._term_node),
            _ptr("uint8_t *", self._term_left),
            _ptr("uint8_t *", self._term_slot),
            _ptr("int64_t *", self._leaf_first_slot),
            _ptr("int32_t *", self._slot_feature),
            _ptr("double *", self._slot_zero),
            _ptr("double *", self._leaf_value),
            _ptr("int64_t *", self._leaf_table),
            _ptr("double *", self._table),
            self.leaves,
            _ptr("double *", _WEIGHTS),
            _ptr("uint8_t *", scratch),
            _ptr("double *", out),
        )
        if status != 0:
            raise ValueError("a leaf's path has more features than the kernel takes")
        return out


def _ptr(kind: str, array: np.ndarray) -> Any:
    return _FFI.cast(kind, _FFI.from_buffer(array))
