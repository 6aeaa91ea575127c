"""The model serving decisions, and its hot reload.

A :class:`models.serving.ServingModel` bundles what one champion version needs at
decision time: the ONNX session, its threshold policy and the TreeSHAP explainer.
:class:`ChampionWatcher` checks the registry's champion pointer in a background thread,
every ``reload_interval_s`` and at once when ``model.events`` announces a promotion
(:mod:`services.scorer.model_events`; the poll is the fallback). A new version is loaded
and parity-checked there (ONNX vs LightGBM on the version's reference sample), then
swapped in with one reference assignment, so the scoring loop picks it up between
batches. A model that fails to load or to match keeps the old one serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

from models.errors import ModelError
from models.explain import Explainer
from models.export import check_parity
from models.registry import ModelVersion
from models.registry_open import Registry
from models.scoring import ONNX_FILE
from models.serving import ServingModel
from services.scorer import metrics
from services.scorer.model_events import ModelEventsListener

PARITY_ROWS = 500

log = logging.getLogger("fraud.scorer.champion")


def load_served_model(
    version: ModelVersion, feature_names: Sequence[str], feature_set_id: str
) -> ServingModel:
    """Load a registered version and prove ONNX and LightGBM agree on its reference rows."""
    served = ServingModel.load(
        version, expected_features=feature_names, expected_feature_set=feature_set_id
    )
    reference = np.asarray(version.reference(), dtype=np.float32)[:PARITY_ROWS]
    if len(reference):
        check_parity(served.explainer.booster, (version.path / ONNX_FILE).read_bytes(), reference)
    return served


class ChampionWatcher:
    """Holds the current :class:`ServingModel`; reloads it when the champion changes."""

    def __init__(
        self,
        registry: Registry,
        feature_names: Sequence[str],
        feature_set_id: str,
        *,
        interval_s: float = 1.0,
        on_change: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self._registry = registry
        self._names = tuple(feature_names)
        self._feature_set_id = feature_set_id
        self._interval_s = interval_s
        self._on_change = on_change
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused: set[str] = set()
        self._listener: ModelEventsListener | None = None
        self._explainers: dict[str, Explainer] = {}
        champion = registry.champion()
        if champion is None:
            raise ModelError(
                f"no champion model in {registry.root}: train one with "
                "`fraudctl train --data <history> --promote`"
            )
        self._current = load_served_model(champion, self._names, feature_set_id)
        metrics.MODEL_INFO.info({"version": self._current.version})
        metrics.MODEL_RELOADS.labels("loaded").inc()

    def current(self) -> ServingModel:
        return self._current

    def explainer(self, version: str) -> Explainer:
        """The explainer of ``version`` (a flagged decision owed its review case may come
        from a model no longer serving): the champion's, else loaded from the registry
        (the last one kept), else - the version gone - the champion's, logged."""
        current = self._current
        if version == current.version:
            return current.explainer
        if version not in self._explainers:
            try:
                entry = self._registry.get(version)
                explainer = Explainer.from_files(
                    entry.path / "model.txt", self._names, entry.reference()
                )
            except (ModelError, OSError, ValueError) as exc:
                log.warning(
                    "stage=explain model %s not loadable (%s): reasons from %s",
                    version,
                    exc,
                    current.version,
                )
                return current.explainer
            self._explainers = {version: explainer}
        return self._explainers[version]

    def check_once(self) -> bool:
        """Load the champion if it changed; True when a new model now serves."""
        champion = self._registry.champion()
        if champion is None or champion.version == self._current.version:
            return False
        if champion.version in self._refused:
            return False
        try:
            served = load_served_model(champion, self._names, self._feature_set_id)
        except ModelError as exc:
            self._refused.add(champion.version)
            metrics.MODEL_RELOADS.labels("refused").inc()
            log.error(
                "stage=reload refused model %s, %s keeps serving: %s",
                champion.version,
                self._current.version,
                exc,
            )
            return False
        previous = self._current.version
        self._current = served
        metrics.MODEL_INFO.info({"version": served.version})
        metrics.MODEL_RELOADS.labels("swapped").inc()
        log.info("stage=reload model %s -> %s", previous, served.version)
        if self._on_change is not None:
            self._on_change(served.version, previous)
        return True

    def listen(self, listener: ModelEventsListener) -> None:
        """Be woken by ``listener`` (started and stopped with the watcher)."""
        self._listener = listener

    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Check the champion now, not at the next poll (a promotion was announced)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.stop()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check_once()
            except Exception:  # the watcher must never die; the old model keeps serving
                log.exception("stage=reload champion check failed")
