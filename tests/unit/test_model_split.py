from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.errors import SplitError
from models.split import (
    check_classes,
    plan_windows,
    split_masks,
    time_folds,
    validation_masks,
)
from tests.unit.test_model_synthetic import synthetic_table


@pytest.mark.unit
def test_no_test_row_is_earlier_than_any_train_row_and_delay_is_left_out() -> None:
    table = synthetic_table(days=30, per_day=50)
    times = table["event_time"]
    windows, warnings = plan_windows(times, train_days=14, delay_days=7, test_days=7)
    train, test = split_masks(times, windows)
    assert warnings == []
    assert times[test].min() > times[train].max()
    assert (times[test].min() - times[train].max()) >= pd.Timedelta(days=7)
    assert (windows.train_days, windows.delay_days, windows.test_days) == (14, 7, 7)
    assert windows.test_end == pd.Timestamp("2026-01-31", tz="UTC")
    in_delay = (times >= windows.train_end) & (times < windows.test_start)
    assert in_delay.sum() > 0
    assert not (train | test)[in_delay.to_numpy()].any()


@pytest.mark.unit
def test_short_history_trains_on_fewer_days_with_a_warning() -> None:
    times = synthetic_table(days=20, per_day=20)["event_time"]
    windows, warnings = plan_windows(times, train_days=56, delay_days=7, test_days=7)
    assert windows.train_days == 6
    assert warnings == ["history shorter than asked: training on 6 days instead of 56"]


@pytest.mark.unit
def test_pinned_test_start_and_no_training_days_left() -> None:
    times = synthetic_table(days=20, per_day=20)["event_time"]
    windows, _ = plan_windows(
        times, train_days=5, delay_days=2, test_days=3, test_start="2026-01-10"
    )
    assert str(windows.train_start.date()) == "2026-01-03"
    assert str(windows.test_end.date()) == "2026-01-13"
    with pytest.raises(SplitError, match="no training days"):
        plan_windows(times, train_days=5, delay_days=7, test_days=3, test_start="2026-01-05")


@pytest.mark.unit
def test_single_class_window_is_refused_with_its_dates() -> None:
    with pytest.raises(
        SplitError, match=r"test window 2026-01-08\.\.2026-01-15 has a single class"
    ):
        check_classes(np.zeros(10, dtype=np.int8), "test", "2026-01-08..2026-01-15")
    with pytest.raises(SplitError, match="no transactions"):
        check_classes(np.zeros(0, dtype=np.int8), "test", "w")


@pytest.mark.unit
def test_validation_and_folds_fit_only_on_earlier_days() -> None:
    table = synthetic_table(days=40, per_day=20)
    times = table["event_time"]
    windows, _ = plan_windows(times, train_days=28, delay_days=7, test_days=5)
    train, _ = split_masks(times, windows)
    fit, val = validation_masks(times, train, windows, val_days=7)
    assert times[fit].max() < times[val].min()
    assert (fit | val).sum() == train.sum()
    folds = time_folds(times, train, windows, n_folds=2, fold_days=7)
    assert len(folds) == 2
    for fold_fit, fold_val in folds:
        assert times[fold_fit].max() < times[fold_val].min()
    assert times[folds[0][1]].max() < times[folds[1][1]].min()
