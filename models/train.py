"""LightGBM fitting: imbalance handling, time-respecting early stopping, small tuning.

Deterministic by seed (``deterministic=True``, 2 threads, fixed column-wise histograms).
Early stopping picks the number of rounds on the last days of the training window, and
the early-stopped model (truncated to its best round) is the final model. It is *not*
refitted on the whole window: the review/decline thresholds are chosen on this model's
out-of-sample validation scores, and a refit on more rows and more frauds moves the score
scale under those thresholds (seen in the retraining loop: a refit challenger flagged
nothing at the threshold chosen for its early-stopped twin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from models.errors import DataError
from models.lgb import lgb

ProgressFn = Callable[[str, int, int], None]

MAX_ROUNDS = 1000
PATIENCE = 50
TUNING_SPACE: dict[str, tuple[Any, ...]] = {
    "num_leaves": (15, 31, 63, 127),
    "learning_rate": (0.03, 0.05, 0.1),
    "min_child_samples": (20, 50, 100, 200),
    "feature_fraction": (0.6, 0.8, 1.0),
    "lambda_l2": (0.0, 1.0, 10.0),
}


def base_params(labels: np.ndarray, seed: int) -> dict[str, Any]:
    """Defaults; positives weighted by sqrt(neg/pos): between ranking and calibration."""
    positives = max(1, int(np.sum(labels)))
    negatives = max(1, len(labels) - positives)
    return {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 50,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "scale_pos_weight": float(np.sqrt(negatives / positives)),
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 2,
        "seed": seed,
        "verbose": -1,
    }


@dataclass(frozen=True)
class TrainedModel:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    validation_scores: np.ndarray
    validation_ap: float
    trials: list[dict[str, Any]] = field(default_factory=list)


def _progress_callback(progress: ProgressFn | None, task: str) -> list[Callable[..., None]]:
    if progress is None:
        return []

    def callback(env: Any) -> None:
        progress(task, env.iteration + 1, env.end_iteration)

    return [callback]


def fit_early_stopping(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    params: dict[str, Any],
    *,
    progress: ProgressFn | None = None,
    task: str = "fit",
) -> tuple[lgb.Booster, int]:
    """Fit on earlier days, stop when AP on the later validation days stops improving."""
    if int(np.sum(y_fit)) == 0:
        raise DataError("the fitting days contain no fraud; use a longer training window")
    fit_set = lgb.Dataset(x_fit, y_fit, free_raw_data=False)
    if len(np.unique(y_val)) < 2:
        booster = lgb.train(
            params, fit_set, num_boost_round=200, callbacks=_progress_callback(progress, task)
        )
        return booster, 200
    val_set = lgb.Dataset(x_val, y_val, reference=fit_set)
    booster = lgb.train(
        {**params, "metric": "average_precision"},
        fit_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[val_set],
        callbacks=[
            lgb.early_stopping(PATIENCE, verbose=False),
            *_progress_callback(progress, task),
        ],
    )
    if progress:
        done = booster.current_iteration()
        progress(task, done, done)  # early stopping ends the bar before MAX_ROUNDS
    return booster, max(1, booster.best_iteration or booster.current_iteration())


def tune(
    x: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    params: dict[str, Any],
    *,
    trials: int,
    seed: int,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Random search over :data:`TUNING_SPACE`, scored by mean AP on time-ordered folds."""
    rng = np.random.default_rng(seed)
    candidates = [params] + [
        {**params, **{k: v[rng.integers(len(v))] for k, v in TUNING_SPACE.items()}}
        for _ in range(max(0, trials - 1))
    ]
    history: list[dict[str, Any]] = []
    best, best_ap = params, -1.0
    for i, candidate in enumerate(candidates):
        scores = []
        for fit, val in folds:
            if len(np.unique(y[val])) < 2:
                continue
            booster, _ = fit_early_stopping(x[fit], y[fit], x[val], y[val], candidate)
            scores.append(average_precision_score(y[val], booster.predict(x[val])))
        mean_ap = float(np.mean(scores)) if scores else float("nan")
        history.append({**{k: candidate[k] for k in TUNING_SPACE}, "validation_ap": mean_ap})
        if scores and mean_ap > best_ap:
            best, best_ap = candidate, mean_ap
        if progress:
            progress("tune", i + 1, len(candidates))
    return best, history


def train_model(
    x: np.ndarray,
    y: np.ndarray,
    *,
    train_mask: np.ndarray,
    fit_mask: np.ndarray,
    val_mask: np.ndarray,
    seed: int = 42,
    tune_trials: int = 0,
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    progress: ProgressFn | None = None,
) -> TrainedModel:
    """Pick parameters and rounds on validation; the early-stopped model is the final one."""
    params = base_params(y[train_mask], seed)
    history: list[dict[str, Any]] = []
    if tune_trials > 0 and folds:
        params, history = tune(
            x, y, folds, params, trials=tune_trials, seed=seed, progress=progress
        )
    booster, rounds = fit_early_stopping(
        x[fit_mask], y[fit_mask], x[val_mask], y[val_mask], params, progress=progress, task="fit"
    )
    validation_scores = booster.predict(x[val_mask])
    y_val = y[val_mask]
    val_ap = (
        float(average_precision_score(y_val, validation_scores))
        if len(np.unique(y_val)) == 2
        else float("nan")
    )
    # Keep exactly the trees up to the best round, so LightGBM, ONNX and the thresholds
    # chosen on ``validation_scores`` all describe the same model.
    final = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    return TrainedModel(final, params, rounds, np.asarray(validation_scores), val_ap, history)
