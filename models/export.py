"""ONNX export of a LightGBM booster, refused unless it reproduces LightGBM's probabilities.

onnxmltools ``convert_lightgbm(..., zipmap=False)`` with a float32 input; only the
``probabilities`` output is used. After export, both engines score the same float32 rows
(the test window) and any |difference| above the tolerance raises
:class:`ExportParityError`, so a model that would score differently in serving never
reaches the registry. Split thresholds are first moved onto float32 values
(:func:`float32_thresholds`): ONNX trees store float32 thresholds, and a double threshold
that rounds onto a feature value would route that row differently - measured 7e-5 on a
small simulator history before this step, 1e-7 after.
"""

from __future__ import annotations

import numpy as np

from models.errors import ExportParityError
from models.lgb import lgb
from models.scoring import INPUT_NAME, OUTPUT_NAME, make_session

PARITY_TOLERANCE = 1e-5


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same model with every split threshold moved down to the nearest float32.

    LightGBM compares ``double(x) <= threshold`` with double thresholds; ONNX trees hold
    float32 thresholds, and a threshold that rounds *up* to a float32 equal to some input
    sends that input the other way. For float32 inputs ``x <= t`` and
    ``x <= largest_float32_not_above(t)`` are the same test, so this rewrite changes no
    prediction of LightGBM on float32 features and makes the ONNX thresholds exact.
    """
    # ``tree_sizes`` holds byte offsets that the rewrite invalidates; without it LightGBM
    # parses the trees one after another.
    lines = [
        line for line in booster.model_to_string().split("\n") if not line.startswith("tree_sizes=")
    ]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = np.array(line[len("threshold=") :].split(), dtype=np.float64)
            lowered = values.astype(np.float32)
            above = lowered.astype(np.float64) > values
            lowered[above] = np.nextafter(lowered[above], np.float32(-np.inf))
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in lowered)
    return lgb.Booster(model_str="\n".join(lines))


def to_onnx(booster: lgb.Booster, *, align: bool = True) -> bytes:
    """Serialized ONNX model with input ``input: float32[N, n_features]``.

    With ``align`` (the default) the trees go through :func:`float32_thresholds` first,
    which changes no LightGBM prediction on float32 rows, so parity can be checked against
    the booster as given.
    """
    # imported here: onnxmltools brings onnx (~7 MB of RSS, 60 ms), which a process that
    # only checks parity - every scorer loading a model - never needs
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    if align:
        booster = float32_thresholds(booster)
    n_features = booster.num_feature()
    model = convert_lightgbm(
        booster,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        zipmap=False,
        name="fraud_lightgbm",  # fixed graph name: same booster -> same bytes
    )
    return bytes(model.SerializeToString())


def parity(booster: lgb.Booster, onnx_model: bytes, features: np.ndarray) -> np.ndarray:
    """|p_onnx - p_lightgbm| for every row of ``features`` (cast to float32 for both)."""
    rows = np.ascontiguousarray(features, dtype=np.float32)
    session = make_session(onnx_model)
    (onnx_probabilities,) = session.run([OUTPUT_NAME], {INPUT_NAME: rows})
    lightgbm_probabilities = booster.predict(rows)
    return np.abs(np.asarray(onnx_probabilities)[:, 1].astype(np.float64) - lightgbm_probabilities)


def check_parity(
    booster: lgb.Booster,
    onnx_model: bytes,
    features: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Largest |difference| over ``features``; :class:`ExportParityError` above tolerance."""
    diff = parity(booster, onnx_model, features)
    worst = int(np.argmax(diff)) if len(diff) else 0
    max_diff = float(diff[worst]) if len(diff) else 0.0
    if not max_diff <= tolerance:  # also catches NaN
        raise ExportParityError(max_diff, tolerance, worst)
    return max_diff


def export_with_parity(
    booster: lgb.Booster, features: np.ndarray, tolerance: float = PARITY_TOLERANCE
) -> tuple[bytes, float]:
    """Export and check; returns the ONNX bytes and the largest difference seen.

    Pass a booster already through :func:`float32_thresholds` (the pipeline does).
    """
    onnx_model = to_onnx(booster)
    return onnx_model, check_parity(booster, onnx_model, features, tolerance)
