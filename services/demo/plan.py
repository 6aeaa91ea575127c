"""The demo's plan: which processes run with which settings, and the story's timing.

Pure data, computed from the command's options, so the orchestration can be read (and
unit-tested) without starting anything. Time is compressed as in the closed-loop e2e
test: traffic runs at ``rate`` tx/s and a simulated day holds ~``day_tx`` transactions,
so one stream segment of ``day_tx / rate`` seconds is one simulated day and the
retrainer stretches served time by ``86_400 * rate / day_tx``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from features.definitions import FEATURES
from models.drift import CALENDAR_FEATURES
from services.retrainer.settings import gates_window_days

HISTORY_DAYS = 21
ORACLE_DELAY_S = 20.0
"""Seconds a case waits in the console's queue before the demo's oracle analyst takes it."""
DEMO_KEY_SCOPES = "score+labels+read+metrics+docs+review"
DAY_TX = 1000.0  # ~transactions per simulated day in the small world
CARD_TESTING_PER_DAY = 8.0  # as in the e2e test: a clear new pattern in a small world
SIMULATOR_SEED = 11
CHARGEBACK_DELAY_S = 4.0
LABEL_MATURITY_S = 12.0
FIRST_CHECK_AFTER_SWITCH_S = 70.0  # drift window full of the new pattern by then
AFTER_PROMOTION_SEGMENTS = 5  # segments served by the new champion: the recovery
ACCUMULATING = frozenset(
    {
        "count",
        "sum",
        "count_above_median",
        "distinct_terminals",
        "is_empty",
        "terminal_not_seen",
        "day_count",
        "fraud_count",
        "fraud_share",
        "days_since_fraud",
    }
)
# In compressed time a window of minutes to days spans the whole run, so accumulating
# features grow with the run's length whatever the traffic: reported, not tested.
DRIFT_IGNORE = (*CALENDAR_FEATURES, *(f.name for f in FEATURES if f.aggregation in ACCUMULATING))


@dataclass(frozen=True)
class ProcessSpec:
    """One child process: ``fraudctl <args>`` with a log file and optional metrics port."""

    name: str
    args: tuple[str, ...]
    log: Path
    metrics_port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoPlan:
    minutes: float
    rate: float
    state_dir: Path
    run_id: str
    scorers: int
    switch_after_s: float
    api_port: int
    scorer_ports: tuple[int, ...]
    retrainer_port: int
    history_days: int = HISTORY_DAYS
    api_key: str = ""
    """The demo API key's secret, once created in :attr:`api_keys_file` (runner)."""

    # -- names: unique per run so re-runs never collide -------------------------------
    @property
    def topic_prefix(self) -> str:
        return f"demo-{self.run_id}."

    @property
    def redis_prefix(self) -> str:
        return f"demo:{self.run_id}"

    @property
    def feast_project(self) -> str:
        return f"demo{self.run_id}"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "runs" / self.run_id

    @property
    def api_keys_file(self) -> Path:
        return self.run_dir / "api-keys.json"

    @property
    def history_dir(self) -> Path:
        return self.run_dir / "history"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs" / self.run_id

    @property
    def feast_repo(self) -> Path:
        return self.run_dir / "feast_repo"

    # -- timing -------------------------------------------------------------------------
    @property
    def segment_s(self) -> float:
        """Wall seconds of one simulated day of traffic."""
        return DAY_TX / self.rate

    @property
    def compression(self) -> float:
        return 86_400.0 * self.rate / DAY_TX

    @property
    def switch_segment(self) -> int:
        """First segment with card testing (scenario 4)."""
        return max(1, round(self.switch_after_s / self.segment_s))

    @property
    def check_every_rows(self) -> int:
        """The retrainer's first check lands ~70 s after the switch."""
        return int(self.rate * (self.switch_segment * self.segment_s + FIRST_CHECK_AFTER_SWITCH_S))

    @property
    def test_days(self) -> int:
        return gates_window_days(LABEL_MATURITY_S, self.segment_s)

    @property
    def deadline_s(self) -> float:
        return self.minutes * 60.0

    # -- environment --------------------------------------------------------------------
    def common_env(self, kafka_bootstrap: str, redis_url: str) -> dict[str, str]:
        return {
            "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "FRAUD_REDIS_URL": redis_url,
            "FRAUD_TOPIC_PREFIX": self.topic_prefix,
            "FRAUD_REDIS_PREFIX": self.redis_prefix,
            "FRAUD_STATE_DIR": str(self.run_dir),
            "FRAUD_FEAST_PROJECT": self.feast_project,
            # the small world's profiles are materialised with the training delay (1 day)
            "FRAUD_LABEL_DELAY_DAYS": "1",
        }

    def retrainer_env(self) -> dict[str, str]:
        """Compressed time; one check once the new pattern has been served a while."""
        return {
            "FRAUD_HISTORY_DIR": str(self.history_dir),
            "FRAUD_HISTORY_DAYS": "7",
            "FRAUD_TIME_COMPRESSION": repr(self.compression),
            "FRAUD_LABEL_MATURITY_S": repr(LABEL_MATURITY_S),
            "FRAUD_WINDOW_ROWS": "3000",
            "FRAUD_MIN_WINDOW_ROWS": "1000",
            "FRAUD_CHECK_EVERY_ROWS": str(self.check_every_rows),
            "FRAUD_CHECK_EVERY_S": "3600",
            "FRAUD_MIN_NEW_LABELS": str(10**9),
            "FRAUD_COOLDOWN_S": "3600",
            "FRAUD_TRAIN_DAYS": "28",
            "FRAUD_TEST_DAYS": str(self.test_days),
            "FRAUD_VAL_DAYS": "2",
            "FRAUD_REFERENCE_ROWS": "1000",
            "FRAUD_TRAINING_TIMEOUT_S": "400",
            "FRAUD_DRIFT_IGNORE": json.dumps(list(DRIFT_IGNORE)),
        }

    def processes(self) -> list[ProcessSpec]:
        logs = self.logs_dir
        specs = [
            ProcessSpec(
                f"scorer-{i}",
                (
                    "serve",
                    "scorer",
                    "--instance-index",
                    str(i),
                    "--metrics-port",
                    str(port),
                ),
                logs / f"scorer-{i}.log",
                metrics_port=port,
                extra_env={
                    "FRAUD_GROUP_ID": f"{self.topic_prefix}scorer",
                    "FRAUD_INSTANCE_ID": f"{self.topic_prefix}scorer-{i}",
                },
            )
            for i, port in enumerate(self.scorer_ports)
        ]
        specs += [
            ProcessSpec(
                "api",
                ("serve", "api", "--port", str(self.api_port)),
                logs / "api.log",
                extra_env={"FRAUD_API_KEYS_FILE": str(self.api_keys_file)},
            ),
            ProcessSpec("feedback", ("serve", "feedback"), logs / "feedback.log"),
            ProcessSpec(
                "retrainer",
                ("serve", "retrainer", "--metrics-port", str(self.retrainer_port)),
                logs / "retrainer.log",
                metrics_port=self.retrainer_port,
                extra_env={
                    "FRAUD_GROUP_ID": f"{self.topic_prefix}retrainer",
                    **self.retrainer_env(),
                },
            ),
            ProcessSpec("cases", ("serve", "cases"), logs / "cases.log"),
            # the oracle analyst works the case store's queue like the console's analysts
            # (claims, verdicts, one label per case through the outbox), a while after each
            # decision, so a viewer logged into the console sees the queue move
            ProcessSpec(
                "oracle",
                ("review", "--auto", "--case-store", "--delay-s", repr(ORACLE_DELAY_S)),
                logs / "oracle.log",
            ),
            ProcessSpec(
                "chargebacks",
                ("review", "--chargebacks", "--delay-s", repr(CHARGEBACK_DELAY_S)),
                logs / "chargebacks.log",
            ),
        ]
        return specs


def make_plan(
    *,
    minutes: float,
    rate: float,
    state_dir: Path,
    cores: int,
    ports: list[int],
    switch_after_s: float | None = None,
    run_id: str | None = None,
) -> DemoPlan:
    """The plan for one run. ``ports`` are free TCP ports (scorers, retrainer, API).

    Two scorers share the consumer group when the box has two cores or more. The new
    pattern switches on after ``switch_after_s`` (default: a fifth of the run, at most
    60 s) so the viewer sees the champion's normal behaviour first.
    """
    scorers = 2 if cores >= 2 else 1
    if len(ports) < scorers + 2:
        raise ValueError(f"need {scorers + 2} free ports, got {len(ports)}")
    if switch_after_s is None:
        switch_after_s = min(60.0, minutes * 60.0 / 5)
    return DemoPlan(
        minutes=minutes,
        rate=rate,
        state_dir=state_dir.resolve(),
        run_id=run_id or uuid.uuid4().hex[:8],
        scorers=scorers,
        switch_after_s=switch_after_s,
        scorer_ports=tuple(ports[:scorers]),
        retrainer_port=ports[scorers],
        api_port=ports[scorers + 1],
    )
