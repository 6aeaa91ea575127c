"""From a feature table to a registrable bundle: split, fit, export + parity, evaluate, card.

``train_from_table`` is the one place the training protocol is written down, top to
bottom; the CLI and the retrainer call it with a table from the offline builder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from models.card import card_markdown, git_revision, pr_curve_png
from models.errors import DataError
from models.export import export_with_parity, float32_thresholds
from models.metrics import evaluate
from models.policy import choose_policy
from models.registry import ModelBundle
from models.scoring import FeatureSpec
from models.split import (
    TimeWindows,
    check_classes,
    days_since,
    plan_windows,
    split_masks,
    time_folds,
    validation_masks,
)
from models.train import ProgressFn, train_model

LABEL = "is_fraud"


@dataclass(frozen=True)
class TrainConfig:
    train_days: int = 56
    delay_days: int = 7
    test_days: int = 7
    test_start: date | datetime | str | None = None
    seed: int = 42
    tune_trials: int = 0
    val_days: int = 7
    review_rate: float = 0.005
    reference_rows: int = 2000


@dataclass(frozen=True)
class TrainingOutcome:
    bundle: ModelBundle
    metrics: dict[str, Any]
    windows: TimeWindows
    training_seconds: float
    test_mask: np.ndarray
    test_scores: np.ndarray
    warnings: list[str] = field(default_factory=list)


def feature_matrix(
    table: pd.DataFrame, feature_names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """float32 matrix in ``feature_names`` order; infinities become missing (with a warning)."""
    missing = [name for name in feature_names if name not in table.columns]
    if missing:
        raise DataError(f"feature table lacks feature column(s): {', '.join(missing)}")
    matrix = table[list(feature_names)].to_numpy(dtype=np.float32, na_value=np.nan)
    infinite = np.isinf(matrix)
    warnings = []
    if infinite.any():
        columns = [feature_names[i] for i in np.flatnonzero(infinite.any(axis=0))]
        rows = np.flatnonzero(infinite.any(axis=1))[:10] + 1
        warnings.append(
            f"infinite values treated as missing in {', '.join(columns)} "
            f"(rows {', '.join(map(str, rows))})"
        )
        matrix[infinite] = np.nan
    return matrix, warnings


def train_from_table(
    table: pd.DataFrame,
    feature_names: Sequence[str],
    feature_set_id: str,
    *,
    config: TrainConfig,
    source: str,
    fingerprint: str,
    warnings: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> TrainingOutcome:
    started = time.perf_counter()
    notes = list(warnings)
    for column in ("event_time", "card_id", LABEL):
        if column not in table.columns:
            raise DataError(f"feature table lacks column {column!r}")
    x, matrix_warnings = feature_matrix(table, feature_names)
    notes += matrix_warnings
    y = table[LABEL].to_numpy(dtype=np.int8)
    event_time = table["event_time"]
    windows, window_warnings = plan_windows(
        event_time,
        train_days=config.train_days,
        delay_days=config.delay_days,
        test_days=config.test_days,
        test_start=config.test_start,
    )
    notes += window_warnings
    train, test = split_masks(event_time, windows)
    check_classes(y[train], "training", f"{windows.train_start.date()}..{windows.train_end.date()}")
    check_classes(y[test], "test", f"{windows.test_start.date()}..{windows.test_end.date()}")
    fit, val = validation_masks(event_time, train, windows, config.val_days)
    folds = time_folds(event_time, train, windows) if config.tune_trials > 0 else None
    model = train_model(
        x,
        y,
        train_mask=train,
        fit_mask=fit,
        val_mask=val,
        seed=config.seed,
        tune_trials=config.tune_trials,
        folds=folds,
        progress=progress,
    )
    booster = float32_thresholds(model.booster)
    onnx_bytes, max_diff = export_with_parity(booster, x[test])
    if progress:
        progress("export", 1, 1)
    val_days = max(1, int(np.unique(days_since(windows.train_start, event_time[val])).size))
    policy = choose_policy(
        model.validation_scores, y[val], review_rate=config.review_rate, days=val_days
    )
    scores = np.asarray(booster.predict(x[test]))
    metrics = evaluate(
        scores,
        y[test],
        days_since(windows.test_start, event_time[test]),
        table["card_id"].to_numpy()[test],
        threshold=policy.review_threshold,
    )
    metrics["validation_ap"] = model.validation_ap
    metrics["onnx_max_abs_diff"] = max_diff
    rng = np.random.default_rng(config.seed)
    val_rows = np.flatnonzero(val)
    sample = np.sort(
        rng.choice(val_rows, size=min(config.reference_rows, len(val_rows)), replace=False)
    )
    seconds = time.perf_counter() - started
    card = {
        "source": source,
        "fingerprint": fingerprint,
        "windows": windows.as_dict(),
        "rows": {"train": int(train.sum()), "validation": int(val.sum()), "test": int(test.sum())},
        "fraud_rate": {"train": float(y[train].mean()), "test": float(y[test].mean())},
        "features": list(feature_names),
        "feature_set_id": feature_set_id,
        "metrics": {k: v for k, v in metrics.items() if not k.endswith("_per_day")},
        "policy": {
            "review_threshold": policy.review_threshold,
            "decline_threshold": policy.decline_threshold,
            "review_rate": policy.review_rate,
        },
        "params": model.params,
        "best_iteration": model.best_iteration,
        "validation_ap": model.validation_ap,
        "tuning_trials": model.trials,
        "training_seconds": seconds,
        "onnx_max_abs_diff": max_diff,
        "git_revision": git_revision(),
        "trained_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "warnings": notes,
    }
    bundle = ModelBundle(
        onnx=onnx_bytes,
        model_text=booster.model_to_string(),
        spec=FeatureSpec(tuple(feature_names), feature_set_id),
        metrics=metrics,
        policy=policy,
        reference=x[sample],
        fingerprint=fingerprint,
        card_markdown=card_markdown(card),
        card=card,
        pr_curve_png=pr_curve_png(
            scores, y[test], title="Test window", threshold=policy.review_threshold
        ),
    )
    return TrainingOutcome(bundle, metrics, windows, seconds, test, scores, notes)
