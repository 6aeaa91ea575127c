"""Fraud rate and per-scenario counts of generated data, checked against configured bounds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streams.simulator.config import SCENARIO_NAMES, SCENARIOS, SimulatorConfig


@dataclass
class FraudStats:
    """Running counts: ``add`` the scenario column of each batch, read the totals."""

    rows: int = 0
    per_scenario: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SCENARIOS, 0))

    def add(self, scenario: npt.NDArray[np.int8]) -> None:
        counts = np.bincount(scenario.astype(np.int64), minlength=len(SCENARIOS))
        for s in SCENARIOS:
            self.per_scenario[s] += int(counts[s])
        self.rows += len(scenario)

    @property
    def frauds(self) -> int:
        return self.rows - self.per_scenario[0]

    @property
    def fraud_rate(self) -> float:
        return self.frauds / self.rows if self.rows else 0.0

    def share(self, scenario: int) -> float:
        return self.per_scenario[scenario] / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "frauds": self.frauds,
            "fraud_rate": round(self.fraud_rate, 6),
            "per_scenario": {SCENARIO_NAMES[s]: n for s, n in self.per_scenario.items()},
        }

    @classmethod
    def of(cls, scenarios: Iterable[npt.NDArray[np.int8]]) -> FraudStats:
        stats = cls()
        for column in scenarios:
            stats.add(column)
        return stats


def check_bounds(
    config: SimulatorConfig, stats: FraudStats, *, card_testing: bool = False
) -> list[str]:
    """Human-readable violations of the configured bounds (empty when all hold).

    Scenario 4 must be absent when the new pattern was never switched on.
    """
    out: list[str] = []
    low, high = config.fraud_rate_bounds
    if not low <= stats.fraud_rate <= high:
        out.append(f"fraud rate {stats.fraud_rate:.4%} outside [{low:.4%}, {high:.4%}]")
    for scenario, (s_low, s_high) in sorted(config.scenario_bounds.items()):
        share = stats.share(scenario)
        if not s_low <= share <= s_high:
            out.append(
                f"scenario {scenario} ({SCENARIO_NAMES[scenario]}) share {share:.4%} "
                f"outside [{s_low:.4%}, {s_high:.4%}]"
            )
    if not card_testing and stats.per_scenario[4]:
        out.append(f"{stats.per_scenario[4]} card-testing rows while the pattern is off")
    return out
