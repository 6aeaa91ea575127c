"""Time-based splits as fraud practitioners use them: train, then a delay, then test.

The delay period stands for labels not yet known when the model is trained: its
transactions are in neither set. Validation (early stopping, tuning) also respects time:
the model is always fitted on days strictly before the days it is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from models.errors import SplitError

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class TimeWindows:
    """Half-open windows ``[start, end)`` in UTC: train, delay, test."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    @property
    def train_days(self) -> int:
        return int((self.train_end - self.train_start) / DAY)

    @property
    def delay_days(self) -> int:
        return int((self.test_start - self.train_end) / DAY)

    @property
    def test_days(self) -> int:
        return int((self.test_end - self.test_start) / DAY)

    def as_dict(self) -> dict[str, str | int]:
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "train_days": self.train_days,
            "delay_days": self.delay_days,
            "test_days": self.test_days,
        }


def _utc_day(value: pd.Timestamp | date | datetime | str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("D")


def plan_windows(
    event_time: pd.Series,
    *,
    train_days: int = 56,
    delay_days: int = 7,
    test_days: int = 7,
    test_start: date | datetime | str | None = None,
) -> tuple[TimeWindows, list[str]]:
    """Place the windows on the data's days; the test window ends with the data by default."""
    if min(train_days, test_days) < 1 or delay_days < 0:
        raise SplitError("train and test windows need at least 1 day, the delay at least 0")
    first, last = _utc_day(event_time.min()), _utc_day(event_time.max())
    start = _utc_day(test_start) if test_start is not None else last + DAY - test_days * DAY
    train_end = start - delay_days * DAY
    train_start = train_end - train_days * DAY
    warnings: list[str] = []
    if train_start < first:
        if train_end <= first:
            raise SplitError(
                f"no training days: data starts {first.date()}, training would end "
                f"{train_end.date()} (test starts {start.date()}, delay {delay_days} d)"
            )
        warnings.append(
            f"history shorter than asked: training on {int((train_end - first) / DAY)} days "
            f"instead of {train_days}"
        )
        train_start = first
    return TimeWindows(train_start, train_end, start, start + test_days * DAY), warnings


def split_masks(event_time: pd.Series, windows: TimeWindows) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test); rows in the delay window are in neither."""
    times = event_time
    train = ((times >= windows.train_start) & (times < windows.train_end)).to_numpy()
    test = ((times >= windows.test_start) & (times < windows.test_end)).to_numpy()
    return train, test


def check_classes(labels: np.ndarray, what: str, window: str) -> None:
    """Refuse a split with no rows, or with a single class."""
    n = len(labels)
    frauds = int(np.sum(labels))
    if n == 0:
        raise SplitError(f"{what} window {window} has no transactions")
    if frauds == 0 or frauds == n:
        kind = "fraud" if frauds == n else "legitimate"
        raise SplitError(
            f"{what} window {window} has a single class ({n} rows, all {kind}); "
            "move it with --test-start or change the window lengths"
        )


def validation_masks(
    event_time: pd.Series, train_mask: np.ndarray, windows: TimeWindows, val_days: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """Inside the train window: fit on earlier days, validate on the last ``val_days``."""
    val_days = max(1, min(val_days, windows.train_days // 4))
    val_start = windows.train_end - val_days * DAY
    later = (event_time >= val_start).to_numpy()
    return train_mask & ~later, train_mask & later


def time_folds(
    event_time: pd.Series,
    train_mask: np.ndarray,
    windows: TimeWindows,
    *,
    n_folds: int = 2,
    fold_days: int = 7,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: each validates on ``fold_days`` after everything it fits on."""
    folds: list[tuple[np.ndarray, np.ndarray]] = []
    fold_days = max(1, min(fold_days, windows.train_days // (n_folds + 1)))
    for k in range(n_folds, 0, -1):
        val_end = windows.train_end - (k - 1) * fold_days * DAY
        val_start = val_end - fold_days * DAY
        fit = train_mask & (event_time < val_start).to_numpy()
        val = train_mask & ((event_time >= val_start) & (event_time < val_end)).to_numpy()
        folds.append((fit, val))
    return folds


def days_since(start: pd.Timestamp, event_time: pd.Series) -> np.ndarray:
    """Whole days since ``start`` for each event (the handbook's ``TX_TIME_DAYS``)."""
    return ((event_time - start) // timedelta(days=1)).to_numpy(dtype=np.int64)
