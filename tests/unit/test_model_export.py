from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from models.errors import ExportParityError, ModelLoadError, ModelMismatch
from models.export import (
    PARITY_TOLERANCE,
    check_parity,
    export_with_parity,
    float32_thresholds,
    parity,
    to_onnx,
)
from models.scoring import FeatureSpec, OnnxModel
from tests.unit.test_model_synthetic import FEATURES, synthetic_table

PARAMS = {"objective": "binary", "verbose": -1, "deterministic": True, "num_threads": 2, "seed": 3}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    table = synthetic_table(days=10, per_day=300)
    return table[FEATURES].to_numpy(np.float32), table["is_fraud"].to_numpy()


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray]) -> lgb.Booster:
    x, y = data
    return lgb.train(PARAMS, lgb.Dataset(x, y), num_boost_round=60)


def _write_version(folder: Path, onnx: bytes, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx)
    (folder / "feature_spec.json").write_text(FeatureSpec(tuple(names), "fs-test").to_json())
    return folder


@pytest.mark.unit
def test_onnx_matches_lightgbm_within_tolerance_including_missing_values(
    booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = data
    assert np.isnan(x).any()
    onnx, max_diff = export_with_parity(booster, x)
    assert max_diff <= PARITY_TOLERANCE
    assert onnx[:2] != b""


@pytest.mark.unit
def test_parity_check_refuses_a_model_that_scores_differently(
    booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = data
    other = lgb.train({**PARAMS, "seed": 4}, lgb.Dataset(x, y), num_boost_round=5)
    with pytest.raises(ExportParityError) as caught:
        check_parity(booster, to_onnx(other), x)
    assert caught.value.max_abs_diff > PARITY_TOLERANCE
    assert 0 <= caught.value.worst_row < len(x)


@pytest.mark.unit
def test_loaded_model_predicts_what_lightgbm_predicts(
    tmp_path: Path, booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = data
    folder = _write_version(tmp_path / "v0001", to_onnx(booster), FEATURES)
    model = OnnxModel.load(folder, expected_features=FEATURES, expected_feature_set="fs-test")
    scores = model.predict(x[:500])
    assert scores.shape == (500,)
    assert np.abs(scores - booster.predict(x[:500])).max() <= PARITY_TOLERANCE
    assert model.session.get_session_options().intra_op_num_threads == 1


@pytest.mark.unit
def test_feature_order_mismatch_is_refused_at_load(tmp_path: Path, booster: lgb.Booster) -> None:
    folder = _write_version(tmp_path / "v0001", to_onnx(booster), FEATURES)
    served = [FEATURES[1], FEATURES[0], *FEATURES[2:]]
    with pytest.raises(ModelMismatch, match="column 0: model has 'amount'") as caught:
        OnnxModel.load(folder, expected_features=served)
    assert caught.value.expected == served
    assert caught.value.found == FEATURES
    with pytest.raises(ModelMismatch, match="feature set"):
        OnnxModel.load(folder, expected_features=FEATURES, expected_feature_set="fs-other")


@pytest.mark.unit
def test_spec_that_disagrees_with_the_onnx_width_is_refused(
    tmp_path: Path, booster: lgb.Booster
) -> None:
    folder = _write_version(tmp_path / "v0002", to_onnx(booster), [*FEATURES, "extra"])
    with pytest.raises(ModelMismatch, match="ONNX input has 5 columns, spec lists 6"):
        OnnxModel.load(folder)


@pytest.mark.unit
def test_corrupt_or_missing_files_are_refused(tmp_path: Path, booster: lgb.Booster) -> None:
    folder = _write_version(tmp_path / "v0003", b"not an onnx model", FEATURES)
    with pytest.raises(ModelLoadError, match="refused by onnxruntime"):
        OnnxModel.load(folder)
    (folder / "feature_spec.json").write_text(json.dumps({"names": []}))
    with pytest.raises(ModelLoadError, match="unreadable"):
        OnnxModel.load(folder)


@pytest.mark.unit
def test_predict_refuses_a_matrix_of_the_wrong_width(
    tmp_path: Path, booster: lgb.Booster, data: tuple[np.ndarray, np.ndarray]
) -> None:
    folder = _write_version(tmp_path / "v0004", to_onnx(booster), FEATURES)
    model = OnnxModel.load(folder)
    with pytest.raises(ModelMismatch, match=r"shape \(3, 4\)"):
        model.predict(data[0][:3, :4])


@pytest.mark.unit
def test_thresholds_between_adjacent_float32_values_keep_parity() -> None:
    # Dense float32 values: LightGBM's double split thresholds fall between two adjacent
    # float32 numbers and round onto one of them in ONNX - the trap the rewrite removes.
    values = [np.float32(1000.0)]
    for _ in range(3999):
        values.append(np.nextafter(values[-1], np.float32(np.inf)))
    x = np.repeat(np.array(values, dtype=np.float32), 5)[:, None]
    rng = np.random.default_rng(0)
    y = (rng.random(len(x)) < np.where(np.arange(len(x)) % 97 < 40, 0.8, 0.1)).astype(int)
    params = {**PARAMS, "num_leaves": 63, "min_child_samples": 5, "max_bin": 1023}
    raw = lgb.train(params, lgb.Dataset(x, y), num_boost_round=30)
    assert parity(raw, to_onnx(raw, align=False), x).max() > PARITY_TOLERANCE  # the trap

    aligned = float32_thresholds(raw)
    np.testing.assert_array_equal(aligned.predict(x), raw.predict(x))
    _, max_diff = export_with_parity(aligned, x)
    assert max_diff <= PARITY_TOLERANCE
    assert check_parity(raw, to_onnx(raw), x) <= PARITY_TOLERANCE  # to_onnx aligns itself
