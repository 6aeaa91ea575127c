"""SLA thresholds, the verdict of a run and its per-percentile table.

The verdict is computed from Locust's own stats entry (the numbers its CSV shows), for the
request the SLA is about: ``kafka / e2e decision`` (produce -> decision readable) and, for
REST runs, ``POST /v1/score``. Locust keeps response times rounded to whole milliseconds
below 100 ms, so percentiles here have 1 ms resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from loadtest.tracker import E2E

SLA_TARGETS: tuple[tuple[str, str], ...] = (("kafka", E2E), ("POST", "/v1/score"))
TABLE_PERCENTILES: tuple[float, ...] = (0.50, 0.75, 0.90, 0.95, 0.99, 0.999, 1.0)


class SlaThresholds(BaseModel):
    """What a run must achieve; ``None`` means "not checked"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p95_ms: float | None = Field(None, gt=0)
    p99_ms: float | None = Field(None, gt=0)
    max_fail_ratio: float = Field(0.0, ge=0.0, le=1.0)
    min_rps: float | None = Field(None, gt=0)


class StatsEntryLike(Protocol):
    """The part of ``locust.stats.StatsEntry`` the verdict reads."""

    name: str
    method: str
    num_requests: int
    num_failures: int

    @property
    def fail_ratio(self) -> float: ...

    @property
    def total_rps(self) -> float: ...

    def get_response_time_percentile(self, percent: float) -> int: ...


@dataclass(frozen=True)
class Check:
    measure: str
    measured: float
    limit: float
    passed: bool
    text: str


@dataclass(frozen=True)
class Verdict:
    method: str
    name: str
    requests: int
    failures: int
    rps: float
    percentiles: tuple[tuple[float, float], ...]
    checks: tuple[Check, ...]
    sla: SlaThresholds

    @property
    def passed(self) -> bool:
        return self.requests > 0 and all(c.passed for c in self.checks)

    def line(self) -> str:
        """One line: PASS/FAIL, the request, every check."""
        head = f"SLA {'PASS' if self.passed else 'FAIL'}  {self.method} {self.name}"
        if self.requests == 0:
            return f"{head}: no samples"
        checks = ", ".join(c.text for c in self.checks) or "no thresholds set"
        return f"{head}: {checks} ({self.requests} requests, {self.failures} failed)"

    def table(self) -> str:
        """Percentile | latency | SLA | ok, one row per reported percentile."""
        limits = {0.95: self.sla.p95_ms, 0.99: self.sla.p99_ms}
        rows = [f"{'percentile':>10} {'ms':>8} {'SLA ms':>8}  ok"]
        for percent, ms in self.percentiles:
            label = "max" if percent == 1.0 else f"p{percent * 100:g}"
            limit = limits.get(percent)
            ok = "" if limit is None else ("yes" if ms <= limit else "NO")
            rows.append(f"{label:>10} {ms:>8g} {'' if limit is None else f'{limit:g}':>8}  {ok}")
        return "\n".join(rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": f"{self.method} {self.name}",
            "passed": self.passed,
            "requests": self.requests,
            "failures": self.failures,
            "rps": round(self.rps, 2),
            "percentiles_ms": {f"p{p * 100:g}": ms for p, ms in self.percentiles},
            "checks": [
                {"measure": c.measure, "measured": c.measured, "limit": c.limit, "passed": c.passed}
                for c in self.checks
            ],
            "sla": self.sla.model_dump(),
        }


def evaluate(entry: StatsEntryLike, sla: SlaThresholds) -> Verdict:
    """The verdict of one request's stats against the thresholds."""
    percentiles = tuple(
        (p, float(entry.get_response_time_percentile(p)) if entry.num_requests else 0.0)
        for p in TABLE_PERCENTILES
    )
    by_percent = dict(percentiles)
    checks: list[Check] = []
    for measure, percent, limit in (("p95", 0.95, sla.p95_ms), ("p99", 0.99, sla.p99_ms)):
        if limit is not None:
            ms = by_percent[percent]
            ok = ms <= limit
            checks.append(
                Check(
                    measure, ms, limit, ok, f"{measure} {ms:g} ms {'<=' if ok else '>'} {limit:g}"
                )
            )
    ratio = entry.fail_ratio
    ok = ratio <= sla.max_fail_ratio
    checks.append(
        Check(
            "fail_ratio",
            ratio,
            sla.max_fail_ratio,
            ok,
            f"failures {ratio:.2%} {'<=' if ok else '>'} {sla.max_fail_ratio:.2%}",
        )
    )
    if sla.min_rps is not None:
        rps = entry.total_rps
        ok = rps >= sla.min_rps
        checks.append(
            Check(
                "rps",
                rps,
                sla.min_rps,
                ok,
                f"throughput {rps:.1f}/s {'>=' if ok else '<'} {sla.min_rps:g}/s",
            )
        )
    return Verdict(
        method=entry.method,
        name=entry.name,
        requests=entry.num_requests,
        failures=entry.num_failures,
        rps=entry.total_rps,
        percentiles=percentiles,
        checks=tuple(checks),
        sla=sla,
    )


def evaluate_run(entries: Iterable[StatsEntryLike], sla: SlaThresholds) -> list[Verdict]:
    """Verdicts for the SLA targets present in a run's stats (a FAIL when none is)."""
    by_key = {(e.method, e.name): e for e in entries}
    verdicts = [
        evaluate(by_key[key], sla)
        for key in SLA_TARGETS
        if key in by_key and by_key[key].num_requests
    ]
    if not verdicts:
        method, name = SLA_TARGETS[0]
        verdicts.append(Verdict(method, name, 0, 0, 0.0, (), (), sla))
    return verdicts
