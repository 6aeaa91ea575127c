"""Challenger training: a recent window of history + the freshest labelled served rows.

The table is assembled in time order - history first, then served rows - and trained by
:func:`models.pipeline.train_from_table`, the same protocol ``fraudctl train`` runs (history
features come from the same loader and offline builder). Its last ``test_days`` hold out
the most recent labelled served rows: the window the gates judge champion and challenger on.

* Labels: the training store's (latest label wins); served rows older than the label
  maturity with no label are taken as legitimate, as chargeback-based labelling does.
  Younger unlabelled rows are left out (their label may still come).
* Time: history rows are moved by whole days to end on the day before the first served
  row; served event times are stretched by ``time_compression`` (demos replay a simulated
  day in seconds; 1 in production), so day-based windows mean the same in both.
* A run is one spawned process with a timeout, so a hung or crashing training never takes
  the retrainer (or the champion) down with it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.pool
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from models.errors import DataError
from models.pipeline import LABEL, TrainConfig, TrainingOutcome, train_from_table

KEYS = ("transaction_id", "event_time", "card_id", "terminal_id", "amount")
DAY = pd.Timedelta(days=1)


def labelled_served_rows(
    served: pd.DataFrame, labelled: pd.DataFrame, *, now: datetime, maturity_s: float
) -> pd.DataFrame:
    """Served rows with a label: the store's, or legit once older than the maturity.

    ``label_source`` is the store's source, or ``"presumed"`` for matured unlabelled rows.
    Rows only in the store (served before this process kept a log) are included as-is.
    """
    columns = [*KEYS, "score", "model_version", *FEATURE_NAMES]
    labels = labelled.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
    out = served[columns].drop_duplicates("transaction_id", keep="first").copy()
    known = out["transaction_id"].map(labels["is_fraud"]) if len(labels) else None
    source = out["transaction_id"].map(labels["label_source"]) if len(labels) else None
    mature = out["event_time"] <= pd.Timestamp(now) - pd.Timedelta(seconds=maturity_s)
    if known is None or source is None:
        out[LABEL] = 0
        out["label_source"] = "presumed"
        out = out[mature.to_numpy()]
    else:
        keep = known.notna() | mature
        out[LABEL] = known.fillna(0).astype(np.int8)
        out["label_source"] = source.fillna("presumed")
        out = out[keep.to_numpy()]
    extra = labelled[~labelled["transaction_id"].isin(served["transaction_id"])]
    if len(extra):
        extra = extra[[*KEYS, "score", "model_version", *FEATURE_NAMES, LABEL, "label_source"]]
        out = pd.concat([out, extra], ignore_index=True) if len(out) else extra.copy()
    out[LABEL] = out[LABEL].astype(np.int8)
    return out.sort_values("event_time", kind="stable").reset_index(drop=True)


def history_rows(path: Path, days: int, delay_days: int = 7) -> pd.DataFrame:
    """The last ``days`` days of a history as training rows (the ``fraudctl train`` path)."""
    from features.offline import build_training_table
    from models.data import load_training_data

    loaded = load_training_data(path, label_delay_days=delay_days)
    table = build_training_table(loaded.transactions, loaded.labels, label_delay_days=delay_days)
    times = pd.to_datetime(table["event_time"], utc=True)
    start = times.max().floor("D") - (days - 1) * DAY
    return table[(times >= start).to_numpy()].reset_index(drop=True)


def assemble(
    history: pd.DataFrame | None, served: pd.DataFrame, compression: float
) -> pd.DataFrame:
    """One time-ordered table with an ``origin`` column (``history`` | ``served``)."""
    if served.empty:
        raise DataError("no labelled served rows yet: nothing new to train on")
    served = served.copy()
    times = pd.to_datetime(served["event_time"], utc=True)
    anchor = times.min()
    served["event_time"] = anchor + (times - anchor) * compression
    served["origin"] = "served"
    parts = [served]
    if history is not None and len(history):
        hist = history[[*KEYS, LABEL, *FEATURE_NAMES]].copy()
        h_times = pd.to_datetime(hist["event_time"], utc=True)
        shift = (anchor.floor("D") - DAY) - h_times.max().floor("D")
        hist["event_time"] = h_times + shift
        hist["origin"] = "history"
        hist["label_source"] = "history"
        parts.insert(0, hist)
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values("event_time", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class ChallengerRun:
    """A trained challenger and the held-out served rows the gates judge it on."""

    outcome: TrainingOutcome
    eval_features: np.ndarray
    eval_labels: np.ndarray
    eval_scores: np.ndarray
    rows: dict[str, int] = field(default_factory=dict)
    drill: bool = False
    eval_times: np.ndarray = field(default_factory=lambda: np.zeros(0, "datetime64[ns]"))
    """Event times of the evaluation rows in served time (stretched by the compression)."""
    eval_complete: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """Rows no younger than the last presumed-legit row: there every served row is in the
    table, labelled or presumed; younger ones are only those labelled early, mostly the
    flagged and the charged back, too few and too fraudulent to set thresholds on."""


def train_challenger(
    served: pd.DataFrame,
    history_dir: Path | None,
    history_days: int,
    config: TrainConfig,
    *,
    compression: float = 1.0,
    shuffle_labels: bool = False,
) -> ChallengerRun:
    """Assemble, train through ``train_from_table``, and keep the gates' evaluation rows.

    ``shuffle_labels`` is the gate drill: the labels the model learns from are permuted
    (the evaluation keeps the true ones), so the gates must reject the result.
    """
    history = history_rows(history_dir, history_days) if history_dir and history_days else None
    table = assemble(history, served, compression)
    truth = table[LABEL].to_numpy(dtype=np.int8).copy()
    fit_table = table
    if shuffle_labels:
        rng = np.random.default_rng(config.seed)
        fit_table = table.assign(**{LABEL: rng.permutation(truth)})
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(table["transaction_id"], index=False).to_numpy())
    digest.update(truth.tobytes())
    outcome = train_from_table(
        fit_table,
        list(FEATURE_NAMES),
        FEATURE_SET_ID,
        config=config,
        source=(
            f"retrainer: {int((table['origin'] == 'history').sum())} history rows + "
            f"{int((table['origin'] == 'served').sum())} labelled served rows"
            + (" (gate drill: shuffled labels)" if shuffle_labels else "")
        ),
        fingerprint=digest.hexdigest(),
    )
    test = outcome.test_mask
    served_test = (table["origin"] == "served").to_numpy()[test]
    eval_x = table.loc[test, list(FEATURE_NAMES)].to_numpy(np.float32)[served_test]
    times = pd.to_datetime(table["event_time"], utc=True).dt.tz_localize(None)
    times_ns = times.to_numpy("datetime64[ns]")
    presumed = times_ns[(table["label_source"] == "presumed").to_numpy()]
    complete_until = presumed.max() if len(presumed) else times_ns.max()
    eval_times = times_ns[test][served_test]
    eval_complete = (times_ns <= complete_until)[test][served_test]
    rows = {
        "history": int((table["origin"] == "history").sum()),
        "served": int((table["origin"] == "served").sum()),
        "explicit_labels": int(
            table["label_source"].isin(["analyst", "chargeback", "oracle"]).sum()
        ),
        "presumed_legit": int((table["label_source"] == "presumed").sum()),
        "frauds": int(truth.sum()),
        "evaluation": int(served_test.sum()),
    }
    return ChallengerRun(
        outcome,
        eval_x,
        truth[test][served_test],
        np.asarray(outcome.test_scores)[served_test],
        rows,
        drill=shuffle_labels,
        eval_times=eval_times,
        eval_complete=eval_complete,
    )


class TrainingJob:
    """One challenger training in a spawned process; ``poll`` until done or timed out."""

    def __init__(self, timeout_s: float, *args: Any, **kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._pool: multiprocessing.pool.Pool = context.Pool(1)
        self._result = self._pool.apply_async(train_challenger, args, kwargs)
        self._started = time.monotonic()
        self.timeout_s = timeout_s

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def poll(self) -> ChallengerRun | BaseException | None:
        """The run, the exception it raised (``TimeoutError`` past the limit), or None."""
        if self._result.ready():
            try:
                run: ChallengerRun = self._result.get()
                return run
            except BaseException as exc:  # the child's error, re-raised here
                return exc
            finally:
                self.close()
        if self.elapsed_s > self.timeout_s:
            self.close()
            return TimeoutError(f"training did not finish within {self.timeout_s:.0f}s")
        return None

    def wait(self) -> ChallengerRun | BaseException:
        while True:
            done = self.poll()
            if done is not None:
                return done
            self._result.wait(0.2)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
