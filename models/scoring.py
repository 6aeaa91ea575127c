"""Serving a registered model: an onnxruntime session checked against its feature spec.

One intra-op thread (the right default on 2 cores, where the scorer also decodes and reads
features) and full graph optimisation. Only the ``probabilities`` output is fetched. A
model whose stored feature order differs from what the caller serves is refused at load
with :class:`ModelMismatch`; a missing or corrupt file with :class:`ModelLoadError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.errors import ModelLoadError, ModelMismatch

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
SPEC_FILE = "feature_spec.json"
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class FeatureSpec:
    """The model's input contract: feature names in column order and the feature set id."""

    feature_names: tuple[str, ...]
    feature_set_id: str

    def to_json(self) -> str:
        payload = {"feature_names": list(self.feature_names), "feature_set_id": self.feature_set_id}
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> FeatureSpec:
        try:
            raw = json.loads(path.read_text())
            return cls(tuple(raw["feature_names"]), str(raw["feature_set_id"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"feature spec {path} unreadable: {exc}") from exc


def make_session(model: bytes | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelLoadError(f"ONNX model refused by onnxruntime: {exc}") from exc


class OnnxModel:
    """A loaded model: ``predict(float32 matrix) -> fraud probability per row``."""

    def __init__(self, session: ort.InferenceSession, spec: FeatureSpec, version: str) -> None:
        inputs = session.get_inputs()
        width = inputs[0].shape[1] if inputs and len(inputs[0].shape) == 2 else None
        if width != len(spec.feature_names):
            raise ModelMismatch(
                f"model {version}: ONNX input has {width} columns, spec lists "
                f"{len(spec.feature_names)} features",
                expected=spec.feature_names,
                found=[f"<{width} columns>"],
            )
        self.session = session
        self.spec = spec
        self.version = version
        self._input = inputs[0].name
        self._width = len(spec.feature_names)

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        expected_features: Sequence[str] | None = None,
        expected_feature_set: str | None = None,
        version: str | None = None,
    ) -> OnnxModel:
        """Load ``model.onnx`` + ``feature_spec.json`` from a version folder and check them."""
        name = version or folder.name
        spec = FeatureSpec.read(folder / SPEC_FILE)
        if expected_features is not None and tuple(expected_features) != spec.feature_names:
            raise ModelMismatch(
                f"model {name}: feature order differs from the served features "
                f"({_first_difference(expected_features, spec.feature_names)})",
                expected=expected_features,
                found=spec.feature_names,
            )
        if expected_feature_set is not None and expected_feature_set != spec.feature_set_id:
            raise ModelMismatch(
                f"model {name}: trained on feature set {spec.feature_set_id!r}, "
                f"serving {expected_feature_set!r}",
                expected=[expected_feature_set],
                found=[spec.feature_set_id],
            )
        path = folder / ONNX_FILE
        if not path.is_file():
            raise ModelLoadError(f"model {name}: {path} is missing")
        return cls(make_session(path), spec, name)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Fraud probability (float32, shape ``(n,)``) for a float32 ``(n, n_features)`` matrix."""
        if features.ndim != 2 or features.shape[1] != self._width:
            raise ModelMismatch(
                f"model {self.version}: got a matrix of shape {features.shape}, "
                f"expected (n, {self._width})",
                expected=self.spec.feature_names,
                found=[f"<{features.shape[-1]} columns>"],
            )
        if features.dtype != np.float32:
            features = features.astype(np.float32)
        (probabilities,) = self.session.run([OUTPUT_NAME], {self._input: features})
        return np.asarray(probabilities)[:, 1]


def _first_difference(expected: Sequence[str], found: Sequence[str]) -> str:
    if len(expected) != len(found):
        return f"{len(found)} features in the model, {len(expected)} served"
    for i, (a, b) in enumerate(zip(expected, found, strict=True)):
        if a != b:
            return f"column {i}: model has {b!r}, served {a!r}"
    return "same names"
