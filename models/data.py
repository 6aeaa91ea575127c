"""Load a training input - the simulator's history folder or any CSV / parquet file.

A user file needs, under any capitalisation, ``transaction_id``, ``event_time`` (or
``timestamp``), ``card_id`` and/or ``customer_id``, ``terminal_id``, ``amount`` and a label
(``label``, ``is_fraud`` or ``tx_fraud``); ``--col ROLE=NAME`` maps any other naming.
Problems are reported with the data rows at fault; recoverable ones (duplicated ids,
unsorted timestamps, non-positive amounts) are warnings, the rest are :class:`DataError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models.errors import DataError, MissingColumns
from streams import tables
from streams.tables import OPTIONAL_COLUMNS, ROLE_ALIASES, TableError

REQUIRED_ROLES = ("transaction_id", "event_time", "terminal_id", "amount", "label")
MIN_ROWS = 200
_TRUE = {"1", "true", "t", "yes", "y", "fraud", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "legit", "genuine", "0.0"}


@dataclass(frozen=True)
class TrainingData:
    """Transactions and labels in the simulator's contract, ready for the offline builder."""

    transactions: pd.DataFrame
    labels: pd.DataFrame
    source: str
    fingerprint: str
    warnings: list[str] = field(default_factory=list)


def parse_column_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["timestamp=TX_DATETIME", ...]`` -> ``{"event_time": "TX_DATETIME", ...}``."""
    try:
        return tables.parse_column_overrides(items)
    except TableError as exc:
        raise DataError(str(exc)) from None


def fingerprint_paths(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of every input file (folders: their files, sorted)."""
    digest = hashlib.sha256()
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or parquet file (or a folder of parquet files)."""
    try:
        return tables.read_frame(path)
    except TableError as exc:
        raise DataError(str(exc)) from None


def load_training_data(
    path: Path,
    *,
    labels_path: Path | None = None,
    columns: Mapping[str, str] | None = None,
    label_delay_days: int = 7,
) -> TrainingData:
    """Load the simulator's history folder or a user file into (transactions, labels)."""
    inputs = [path] + ([labels_path] if labels_path else [])
    if path.is_dir() and labels_path is None and not columns and _is_history(path):
        from streams.simulator import read_history, read_manifest  # the simulator's reader

        transactions, labels = read_history(path)
        _require_both_classes(labels["is_fraud"].to_numpy())
        digest = str(read_manifest(path).get("fingerprint") or fingerprint_paths(inputs))
        return TrainingData(transactions, labels, f"simulator history {path}", digest)
    raw = read_table(path)
    if labels_path is not None:
        raw = _join_labels(raw, read_table(labels_path), columns or {})
    frame, warnings = normalise(raw, columns or {})
    transactions = frame.drop(columns=["is_fraud"])
    labels = pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"],
            "event_time": frame["event_time"],
            "is_fraud": frame["is_fraud"].astype(np.int8),
            "scenario": np.where(frame["is_fraud"] == 1, "unknown", ""),
            "labelled_at": frame["event_time"] + timedelta(days=label_delay_days),
        }
    )
    return TrainingData(transactions, labels, str(path), fingerprint_paths(inputs), warnings)


def _is_history(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "transactions").is_dir()


def _join_labels(
    raw: pd.DataFrame, labels: pd.DataFrame, columns: Mapping[str, str]
) -> pd.DataFrame:
    tx_col = resolve_columns(raw, columns, roles=("transaction_id",))["transaction_id"]
    mapping = resolve_columns(labels, columns, roles=("transaction_id", "label"))
    slim = labels[[mapping["transaction_id"], mapping["label"]]].rename(
        columns={mapping["transaction_id"]: tx_col, mapping["label"]: "__label__"}
    )
    slim = slim.drop_duplicates(subset=[tx_col], keep="last")
    merged = raw.drop(columns=[c for c in raw.columns if c.lower() in ROLE_ALIASES["label"]])
    merged = merged.merge(slim, on=tx_col, how="left")
    merged["__label__"] = merged["__label__"].fillna(0)
    return merged.rename(columns={"__label__": "label"})


def resolve_columns(
    raw: pd.DataFrame, overrides: Mapping[str, str], roles: Sequence[str] | None = None
) -> dict[str, str]:
    """Role -> actual column name: explicit ``--col`` first, then aliases, case-insensitively."""
    wanted = list(roles) if roles is not None else [*ROLE_ALIASES, *OPTIONAL_COLUMNS]
    try:
        out = tables.match_columns(list(raw.columns), overrides, wanted)
    except TableError as exc:
        role = next((r for r in wanted if r in overrides and f"--col {r}=" in str(exc)), None)
        raise DataError(str(exc), column=overrides.get(role or "", None)) from None
    required = [r for r in (roles or REQUIRED_ROLES) if r in ROLE_ALIASES and r not in out]
    if roles is None and "card_id" not in out and "customer_id" not in out:
        required.append("card_id or customer_id")
    if required:
        raise MissingColumns(required, [str(c) for c in raw.columns])
    return out


def normalise(raw: pd.DataFrame, overrides: Mapping[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Canonical columns, typed and checked; returns the frame sorted by time and warnings.

    Cells are read by :func:`streams.tables.contract_columns`, as ``fraudctl produce``
    reads them; here a cell that cannot be read refuses the file, naming its rows."""
    mapping = resolve_columns(raw, overrides)
    if len(raw) < MIN_ROWS:
        raise DataError(f"too few rows: {len(raw)} (at least {MIN_ROWS} needed)")
    frame = tables.contract_columns(raw, mapping)
    for role in ("transaction_id", "card_id", "customer_id", "terminal_id"):
        if role in mapping:
            missing = frame[role].isna()
            if missing.any():
                name = mapping[role]
                raise DataError(f"column {name!r} has empty ids", column=name, rows=_rows(missing))
    name = mapping["event_time"]
    if pd.api.types.is_numeric_dtype(raw[name]):
        raise DataError(f"column {name!r} holds numbers, not timestamps", column=name)
    bad = frame["event_time"].isna()
    if bad.any():
        raise DataError(
            f"column {name!r} has missing or unparsable timestamps", column=name, rows=_rows(bad)
        )
    name = mapping["amount"]
    bad = frame["amount"].isna()
    if bad.any():
        raise DataError(
            f"column {name!r} has missing or non-numeric amounts", column=name, rows=_rows(bad)
        )
    frame["is_fraud"] = _labels(raw[mapping["label"]], mapping["label"])
    frame, warnings = _clean(frame)
    _require_both_classes(frame["is_fraud"].to_numpy())
    return frame, warnings


def _rows(mask: pd.Series | np.ndarray) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(np.asarray(mask))]


def _labels(column: pd.Series, name: str) -> pd.Series:
    text = column.astype(str).str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(is_true | is_false) | column.isna()
    if bad.any():
        raise DataError(
            f"label column {name!r} must be 0/1 (or true/false, fraud/legit)",
            column=name,
            rows=_rows(bad),
        )
    return is_true.astype(np.int8)


def _clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    warnings: list[str] = []
    duplicated = frame["transaction_id"].duplicated(keep="first")
    if duplicated.any():
        warnings.append(
            f"{int(duplicated.sum())} duplicated transaction_id(s) dropped, first kept "
            f"(data rows {_short(_rows(duplicated))})"
        )
    non_positive = frame["amount"] <= 0
    if non_positive.any():
        warnings.append(
            f"{int(non_positive.sum())} row(s) with amount <= 0 dropped, as the scorer would "
            f"(data rows {_short(_rows(non_positive))})"
        )
    times = frame["event_time"].to_numpy()
    backwards = np.r_[False, times[1:] < times[:-1]]
    if backwards.any():
        warnings.append(
            f"timestamps not in order at {int(backwards.sum())} row(s); sorted by time "
            f"(data rows {_short(_rows(backwards))})"
        )
    frame = frame[~duplicated & ~non_positive]
    frame = frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    return frame, warnings


def _short(rows: list[int], limit: int = 10) -> str:
    text = ", ".join(map(str, rows[:limit]))
    return f"{text} (+{len(rows) - limit} more)" if len(rows) > limit else text


def _require_both_classes(is_fraud: np.ndarray) -> None:
    frauds = int(np.sum(is_fraud))
    if frauds == 0:
        raise DataError("no fraud at all in the labels: a fraud model needs positive examples")
    if frauds == len(is_fraud):
        raise DataError("every row is labelled fraud: a fraud model needs legitimate examples too")
