"""The Feast source table of terminal risk, computed by :func:`terminal_risk` itself.

One row per terminal per UTC day start (``event_timestamp = day start``) from the first
history day to the day of ``end``, plus one row per fraud label at the moment it became
usable (its terminal's profile changes then). Feast's materialisation keeps the latest row
at or before ``end`` per terminal, so the online value equals ``terminal_risk(end)``
(``days_since`` aged by the reader) whatever time of day ``end`` is.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.profiles.errors import ProfileInputError
from features.profiles.names import DEFAULT_DELAY_DAYS, SOURCE_FILE, TERMINAL_JOIN_KEY
from features.profiles.risk import fraud_events, terminal_risk
from features.profiles.times import DAY_US, to_utc_us

TIMESTAMP_FIELD = "event_timestamp"
CREATED_FIELD = "created"


def profile_source_frame(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    end: datetime,
    delay_days: int = DEFAULT_DELAY_DAYS,
    start: datetime | None = None,
) -> pd.DataFrame:
    """Feast source rows (terminal_id, event_timestamp, created, 15 float32 features) with
    timestamps in ``[start, end]`` (``start`` default: the first history day)."""
    if end.tzinfo is None:
        raise ProfileInputError("end must be timezone-aware")
    end_us = int(to_utc_us([end])[0])
    terminals = pd.unique(transactions[TERMINAL_JOIN_KEY].to_numpy(dtype=object))
    first_us = int(to_utc_us(transactions["event_time"]).min()) if len(transactions) else end_us
    start_us = first_us if start is None else int(to_utc_us([start])[0])
    first_day, last_day = start_us // DAY_US + (start_us % DAY_US > 0), end_us // DAY_US
    days = np.arange(first_day, last_day + 1, dtype=np.int64)
    day_terms = np.repeat(np.asarray(terminals, dtype=object), len(days))
    day_times = np.tile(days * DAY_US, len(terminals))

    frauds = fraud_events(transactions, labels)
    changed = frauds.loc[
        (frauds["usable_us"] >= start_us) & (frauds["usable_us"] <= end_us),
        ["terminal_id", "usable_us"],
    ].drop_duplicates()
    # Feast keeps whole seconds: a label-arrival row sits at the next whole second, where the
    # label is usable and the stored timestamp is exact (so the reader's ageing is exact too)
    label_us = -(-changed["usable_us"].to_numpy(dtype=np.int64) // 1_000_000) * 1_000_000
    keep = label_us <= end_us
    rows_terms = np.concatenate([day_terms, changed["terminal_id"].to_numpy(dtype=object)[keep]])
    rows_us = np.concatenate([day_times, label_us[keep]])
    keys = pd.DataFrame({TERMINAL_JOIN_KEY: rows_terms, "us": rows_us}).drop_duplicates()
    keys = keys.sort_values(["us", TERMINAL_JOIN_KEY], kind="stable").reset_index(drop=True)

    stamps = pd.to_datetime(keys["us"].to_numpy(), unit="us", utc=True)
    features = terminal_risk(
        transactions,
        labels,
        stamps,
        terminal_ids=keys[TERMINAL_JOIN_KEY].to_numpy(dtype=object),
        delay_days=delay_days,
    )
    frame = pd.DataFrame(
        {
            TERMINAL_JOIN_KEY: keys[TERMINAL_JOIN_KEY].astype(str).to_numpy(),
            TIMESTAMP_FIELD: stamps,
            CREATED_FIELD: stamps,
        }
    )
    return pd.concat([frame, features], axis=1)


def write_profile_source(
    history_dir: Path,
    repo_data_dir: Path,
    *,
    end: datetime,
    delay_days: int = DEFAULT_DELAY_DAYS,
) -> Path:
    """Read the simulator's history, write the Feast source parquet, return its path."""
    from streams.simulator import read_history  # the simulator owns the history format

    transactions, labels = read_history(history_dir)
    return write_source_frame(
        profile_source_frame(transactions, labels, end=end, delay_days=delay_days), repo_data_dir
    )


def write_source_frame(frame: pd.DataFrame, repo_data_dir: Path) -> Path:
    """Write the source rows atomically to ``repo_data_dir / SOURCE_FILE``."""
    repo_data_dir.mkdir(parents=True, exist_ok=True)
    path = repo_data_dir / SOURCE_FILE
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
