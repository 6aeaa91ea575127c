"""Judge a challenger with the gates, then register + promote it, or register + reject it.

The champion is re-scored with its own ONNX model on the challenger's held-out rows (the
most recent labelled served window), so both are judged on exactly the same rows. The
registry records ``registered`` / ``promoted`` / ``rejected`` in its audit log, which is
its outbox: the publisher announces them on ``model.events`` when the broker answers,
never under the registry's lock. A promotion is made at one step (the champion pointer's
atomic rename) or not at all, and the log says which; the scorers' champion watchers pick
it up on their next poll whether or not the broker is there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID, FEATURES
from models.drift import categorical_indices
from models.gates import Candidate, GateConfig, GateReport, bundle_parity, run_gates
from models.registry import ModelVersion
from models.registry_open import Registry
from models.scoring import OnnxModel
from services.retrainer.challenger import ChallengerRun
from services.retrainer.refit import RecentTraffic, RefitConfig, refit_run

log = logging.getLogger("fraud.retrainer")


@dataclass(frozen=True)
class Verdict:
    version: str
    promoted: bool
    champion_before: str | None
    gates: GateReport
    numbers: dict[str, float]
    policy: str = ""
    """What the served policy was fitted on (the refit's summary)."""

    def reasons(self) -> list[str]:
        return [*self.gates.lines(), *([self.policy] if self.policy else [])]


def champion_scores(champion: ModelVersion, features: np.ndarray) -> np.ndarray:
    model = OnnxModel.load(
        champion.path,
        expected_features=FEATURE_NAMES,
        expected_feature_set=FEATURE_SET_ID,
        version=champion.version,
    )
    if len(features) == 0:
        return np.zeros(0)
    return model.predict(np.asarray(features, dtype=np.float32)).astype(np.float64)


def judge(
    run: ChallengerRun,
    champion: ModelVersion | None,
    current_window: np.ndarray,
    config: GateConfig,
) -> tuple[GateReport, dict[str, float]]:
    """Run every gate; without a champion the comparison gates compare with a coin flip."""
    bundle = run.outcome.bundle
    if champion is not None:
        theirs = champion_scores(champion, run.eval_features)
        their_threshold = champion.policy().review_threshold
    else:
        theirs = np.full(len(run.eval_labels), 0.5)
        their_threshold = 1.0
    candidate = Candidate(
        labels=run.eval_labels,
        champion_scores=theirs,
        champion_threshold=their_threshold,
        challenger_scores=run.eval_scores,
        challenger_threshold=bundle.policy.review_threshold,
        max_abs_diff=bundle_parity(bundle, run.eval_features),
        challenger_reference=np.asarray(bundle.reference),
        current_window=current_window,
    )
    report = run_gates(
        candidate,
        config,
        feature_names=FEATURE_NAMES,
        categorical=categorical_indices(FEATURES),
    )
    numbers = {f"gate{r.number}_{r.name}": r.value for r in report.results}
    return report, numbers


def decide(
    registry: Registry,
    run: ChallengerRun,
    current_window: np.ndarray,
    config: GateConfig,
    *,
    trigger: str,
    refit: RefitConfig | None = None,
    traffic: RecentTraffic | None = None,
) -> Verdict:
    """Refit the policy, gates, then register; promote on pass, mark rejected (reasons =
    failed gates) on fail. The gates judge the policy the challenger would serve, and
    every audit line of it carries what that policy was fitted on."""
    refitted = refit_run(run, refit or RefitConfig(), traffic)
    run = refitted.run
    log.info("stage=policy %s", refitted.summary)
    details = refitted.details()
    champion = registry.champion()
    report, numbers = judge(run, champion, current_window, config)
    version = registry.register(run.outcome.bundle, details=details)
    before = champion.version if champion else None
    if report.passed and not run.drill:
        summary = "; ".join(report.lines())
        try:
            # the gates judged against `before`: a champion changed meanwhile voids them
            registry.promote(
                version.version,
                f"retrainer ({trigger}): all gates passed: {summary}; {refitted.summary}",
                details,
                replaces=before,
            )
        except Exception as exc:
            log.error(
                "stage=promote NOT made: %s stays registered, champion %s keeps serving (%s: %s)",
                version.version,
                before,
                type(exc).__name__,
                exc,
            )
            raise
        log.info(
            "stage=promote made: %s -> %s (%s); %s serves now, the promoted event %s waits "
            "in the registry outbox until model.events acknowledges it",
            before,
            version.version,
            trigger,
            version.version,
            _last_event_id(registry, "promoted", version.version),
        )
        return Verdict(version.version, True, before, report, numbers, refitted.summary)
    reasons = report.failures() or ["gate drill: a deliberately broken challenger"]
    registry.reject(version.version, [f"retrainer ({trigger})", *reasons], details)
    log.warning("stage=reject %s: %s", version.version, "; ".join(reasons))
    return Verdict(version.version, False, before, report, numbers, refitted.summary)


def _last_event_id(registry: Registry, kind: str, version: str) -> str:
    for line in reversed(registry.audit()):
        if line.get("kind") == kind and line.get("version") == version:
            return str(line.get("event_id"))
    return "?"
