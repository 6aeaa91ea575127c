"""What a scorer loads for one registered version: ONNX model, policy and explainer.

``ServingModel.load`` refuses a version whose feature order or feature set differs from
what the scorer serves (:class:`models.errors.ModelMismatch`), so a hot swap to a bad
version fails before the swap and the previous champion keeps serving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.explain import Explainer
from models.policy import ThresholdPolicy
from models.registry import ModelVersion
from models.scoring import OnnxModel
from streams.events import Reason


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray
    outcomes: np.ndarray
    reasons: list[list[Reason]]  # one list per row; empty for approved rows


@dataclass(frozen=True)
class ServingModel:
    version: str
    model: OnnxModel
    policy: ThresholdPolicy
    explainer: Explainer

    @classmethod
    def load(
        cls,
        entry: ModelVersion,
        *,
        expected_features: Sequence[str],
        expected_feature_set: str,
        descriptions: Mapping[str, str] | None = None,
    ) -> ServingModel:
        model = OnnxModel.load(
            entry.path,
            expected_features=expected_features,
            expected_feature_set=expected_feature_set,
            version=entry.version,
        )
        explainer = Explainer.from_files(
            entry.path / "model.txt", expected_features, entry.reference(), descriptions
        )
        return cls(entry.version, model, entry.policy(), explainer)

    def score(self, features: np.ndarray, *, top: int = 3) -> Scored:
        """Scores and outcomes for every row; reasons computed in one batch for flagged rows."""
        scores = self.model.predict(features)
        outcomes = self.policy.decide(scores)
        flagged = np.flatnonzero(self.policy.flagged(scores))
        reasons: list[list[Reason]] = [[] for _ in range(len(scores))]
        for row, row_reasons in zip(
            flagged, self.explainer.explain(features[flagged], top=top), strict=True
        ):
            reasons[row] = row_reasons
        return Scored(scores, outcomes, reasons)
