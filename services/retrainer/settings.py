"""Retrainer settings (``FRAUD_`` environment variables), built once in ``main()``.

Settings that contradict each other are refused at load with a :class:`ConfigError` naming
both: a gates' window (``test_days``) too short for the label maturity would judge
challengers on rows whose labels have not arrived yet, and reject every one of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from models.drift import CALENDAR_FEATURES
from models.export import PARITY_TOLERANCE
from models.gates import GateConfig
from models.pipeline import TrainConfig
from services.retrainer.refit import RefitConfig
from services.settings import CommonSettings, store_location
from streams.errors import ConfigError

DAY_S = 86_400.0


def gates_window_days(label_maturity_s: float, day_s: float = DAY_S) -> int:
    """The shortest gates' window (most recent days, ``day_s`` wall seconds per day of
    served time) that, after the last partial day and the days whose labels are not yet
    mature (only explicit labels there), still holds half a day of mature rows. Two days
    at 100 tx/s in compressed time left ~0.2 mature days: 174 labelled rows, and the
    challenger was rejected. (The 1e-9 keeps a ratio that is whole on paper from rounding
    up a day on float noise.)"""
    return math.ceil(1.5 + label_maturity_s / day_s - 1e-9)


class RetrainerSettings(CommonSettings):
    group_id: str = Field("retrainer", description="consumer group reading transactions.scored")
    metrics_port: int = Field(9103, ge=0, description="Prometheus /metrics port (0 = off)")
    # -- monitors ------------------------------------------------------------------------
    window_rows: int = Field(5000, ge=50, description="served rows in the drift window")
    min_window_rows: int = Field(1000, ge=20, description="rows needed before a drift check")
    served_rows: int = Field(
        200_000, ge=1000, description="served rows kept for training and quality (bounded)"
    )
    check_every_s: float = Field(300.0, gt=0, description="run the checks every N seconds")
    check_every_rows: int = Field(50_000, ge=1, description="...or every N served rows")
    drift_alpha: float = Field(0.05, gt=0, lt=1, description="family-wise / FDR level")
    drift_correction: Literal["bonferroni", "fdr"] = Field("bonferroni")
    drift_min_effect: float = Field(
        0.15, ge=0, le=1, description="KS distance / Cramer's V a drifted feature must reach"
    )
    drift_ignore: tuple[str, ...] = Field(
        CALENDAR_FEATURES, description="features reported but not tested (calendar cycles)"
    )
    quality_tolerance: float = Field(0.2, ge=0, le=1, description="relative drop that triggers")
    quality_min_labels: int = Field(200, ge=1)
    quality_min_frauds: int = Field(10, ge=1)
    # -- triggers ------------------------------------------------------------------------
    trigger_on_drift: bool = Field(True)
    trigger_on_quality: bool = Field(True)
    min_new_labels: int = Field(
        1000, ge=1, description="this many new labels since the last training also trigger"
    )
    cooldown_s: float = Field(3600.0, ge=0, description="minimum time between two trainings")
    training_timeout_s: float = Field(1800.0, gt=0, description="a training run is killed after")
    # -- challenger training -------------------------------------------------------------
    training_dir: Path | str | None = Field(
        None,
        description="training store: a folder or s3://bucket/prefix [state_dir/training]",
    )
    history_dir: Path | None = Field(None, description="history to add (simulator folder/file)")
    history_days: int = Field(28, ge=0, description="most recent days of history to add")
    label_maturity_s: float = Field(
        7 * 86_400.0,
        ge=0,
        description="served rows older than this with no fraud label are taken as legit",
    )
    time_compression: float = Field(
        1.0,
        gt=0,
        description="simulated seconds per real second of served traffic (demos replay days "
        "in minutes; 1 = real time)",
    )
    train_days: int = Field(56, ge=1)
    test_days: int = Field(
        9,
        ge=1,
        description="most recent labelled days: the gates' window; at least "
        "gates_window_days(label_maturity_s) (9 at the 7-day default)",
    )
    val_days: int = Field(7, ge=1)
    review_rate: float = Field(0.005, gt=0, le=1)
    policy_refit: bool = Field(
        True,
        description="refit a challenger's thresholds on the most recent labelled served rows "
        "before the gates judge it (off: keep the thresholds of its validation window)",
    )
    policy_refit_days: float | None = Field(
        None,
        gt=0,
        description="most recent served days of the gates' window to refit on (unset: all its "
        "rows whose labels are complete)",
    )
    review_cases_per_day: float | None = Field(
        None,
        gt=0,
        description="review capacity the refit keeps, cases per served day (unset: what the "
        "review rate gives at the challenger's validation volume)",
    )
    refit_declines_in_capacity: bool = Field(
        False,
        description="the refit's review capacity bounds declines too (at most half of it, as "
        "at training); off: it bounds the review band, and declines are the rows whose "
        "recent precision reaches the decline target",
    )
    seed: int = Field(42)
    reference_rows: int = Field(2000, ge=100)
    # -- gates ---------------------------------------------------------------------------
    gate_min_labels: int = Field(200, ge=1)
    gate_min_frauds: int = Field(10, ge=1)
    gate_ap_margin: float = Field(0.0, description="challenger AP must reach champion AP + this")
    gate_precision_tolerance: float = Field(0.0, ge=0)
    gate_parity_tolerance: float = Field(PARITY_TOLERANCE, gt=0)

    @model_validator(mode="after")
    def _gates_window_fits_the_label_maturity(self) -> Self:
        day_s = DAY_S / self.time_compression
        needed = gates_window_days(self.label_maturity_s, day_s)
        if self.test_days < needed:
            raise ConfigError(
                f"FRAUD_TEST_DAYS={self.test_days} is too short for "
                f"FRAUD_LABEL_MATURITY_S={self.label_maturity_s:g} "
                f"({self.label_maturity_s / day_s:.2f} days of served time at "
                f"FRAUD_TIME_COMPRESSION={self.time_compression:g}): the gates' window needs "
                f"at least {needed} days, or the challenger is judged on rows whose labels "
                "have not arrived yet"
            )
        return self

    @property
    def training_root(self) -> Path | str:
        return store_location(self.training_dir, self.state_dir / "training")

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            train_days=self.train_days,
            delay_days=0,  # immature rows are left out instead (label_maturity_s)
            test_days=self.test_days,
            seed=self.seed,
            val_days=self.val_days,
            review_rate=self.review_rate,
            reference_rows=self.reference_rows,
        )

    def refit_config(self) -> RefitConfig:
        return RefitConfig(
            enabled=self.policy_refit,
            days=self.policy_refit_days,
            cases_per_day=self.review_cases_per_day,
            declines_in_capacity=self.refit_declines_in_capacity,
            compression=self.time_compression,
        )

    def gate_config(self) -> GateConfig:
        return GateConfig(
            min_labels=self.gate_min_labels,
            min_frauds=self.gate_min_frauds,
            parity_tolerance=self.gate_parity_tolerance,
            ap_margin=self.gate_ap_margin,
            precision_tolerance=self.gate_precision_tolerance,
            drift_alpha=self.drift_alpha,
            drift_correction=self.drift_correction,
            drift_min_rows=min(self.min_window_rows, 200),
            drift_min_effect=self.drift_min_effect,
            drift_ignore=self.drift_ignore,
        )
