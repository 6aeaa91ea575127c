"""When to train a challenger: drift, a quality drop or enough new labels - with a cool-down.

Pure and clock-free (the caller passes ``now``), so the unit tests drive it with a fake
clock. A run in flight blocks new ones; the cool-down counts from the start of the last run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RetrainPolicy:
    cooldown_s: float
    min_new_labels: int
    on_drift: bool = True
    on_quality: bool = True
    last_started: float | None = None
    running: bool = False

    def reasons(self, *, drift: bool, quality_drop: bool, new_labels: int) -> list[str]:
        """Why a run is wanted (empty: not wanted), ignoring the cool-down."""
        out = []
        if self.on_drift and drift:
            out.append("drift")
        if self.on_quality and quality_drop:
            out.append("quality_drop")
        if new_labels >= self.min_new_labels:
            out.append(f"new_labels={new_labels}")
        return out

    def cooling_down(self, now: float) -> bool:
        return self.last_started is not None and now - self.last_started < self.cooldown_s

    def should_start(
        self, now: float, *, drift: bool, quality_drop: bool, new_labels: int
    ) -> list[str]:
        """The trigger reasons if a run should start now, else an empty list."""
        if self.running or self.cooling_down(now):
            return []
        return self.reasons(drift=drift, quality_drop=quality_drop, new_labels=new_labels)

    def started(self, now: float) -> None:
        self.last_started = now
        self.running = True

    def finished(self) -> None:
        self.running = False
