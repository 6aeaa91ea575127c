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

ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "transaction_id": ("transaction_id", "tx_id", "transactionid", "trans_id"),
    "event_time": ("event_time", "timestamp", "tx_datetime", "datetime", "time"),
    "card_id": ("card_id", "card", "cardid"),
    "customer_id": ("customer_id", "customerid", "cust_id", "customer"),
    "terminal_id": ("terminal_id", "terminalid", "terminal", "merchant_id"),
    "amount": ("amount", "tx_amount", "amt"),
    "label": ("label", "is_fraud", "tx_fraud", "fraud"),
}
OPTIONAL_COLUMNS = ("currency", "merchant_category", "channel", "country", "device_id")
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
    known = {alias: role for role, aliases in ROLE_ALIASES.items() for alias in aliases}
    out: dict[str, str] = {}
    for item in items:
        role, sep, name = item.partition("=")
        role = role.strip().lower()
        if not sep or not name.strip():
            raise DataError(f"--col expects ROLE=NAME, got {item!r}")
        if role not in known:
            raise DataError(f"--col: unknown role {role!r}; roles: {', '.join(ROLE_ALIASES)}")
        out[known[role]] = name.strip()
    return out


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
    if not path.exists():
        raise DataError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if path.is_dir() or suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt", ".gz"}:
            return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


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
    by_lower = {str(col).lower(): str(col) for col in raw.columns}
    out: dict[str, str] = {}
    for role in wanted:
        if role in overrides:
            name = overrides[role]
            actual = name if name in raw.columns else by_lower.get(name.lower())
            if actual is None:
                raise DataError(f"--col {role}={name}: no such column", column=name)
            out[role] = actual
            continue
        for alias in ROLE_ALIASES.get(role, (role,)):
            if alias in by_lower:
                out[role] = by_lower[alias]
                break
    required = [r for r in (roles or REQUIRED_ROLES) if r in ROLE_ALIASES and r not in out]
    if roles is None and "card_id" not in out and "customer_id" not in out:
        required.append("card_id or customer_id")
    if required:
        raise MissingColumns(required, [str(c) for c in raw.columns])
    return out


def normalise(raw: pd.DataFrame, overrides: Mapping[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Canonical columns, typed and checked; returns the frame sorted by time and warnings."""
    mapping = resolve_columns(raw, overrides)
    warnings: list[str] = []
    if len(raw) < MIN_ROWS:
        raise DataError(f"too few rows: {len(raw)} (at least {MIN_ROWS} needed)")
    frame = pd.DataFrame(index=raw.index)
    for role in ("transaction_id", "card_id", "customer_id", "terminal_id"):
        if role in mapping:
            frame[role] = _ids(raw[mapping[role]], mapping[role])
    frame["card_id"] = frame.get("card_id", frame.get("customer_id"))
    frame["customer_id"] = frame.get("customer_id", frame["card_id"])
    frame["event_time"] = _timestamps(raw[mapping["event_time"]], mapping["event_time"])
    frame["amount"] = _numbers(raw[mapping["amount"]], mapping["amount"])
    frame["is_fraud"] = _labels(raw[mapping["label"]], mapping["label"])
    for column in OPTIONAL_COLUMNS:
        if column in mapping:
            frame[column] = raw[mapping[column]]
    order = ["transaction_id", "event_time", "card_id", "customer_id", "terminal_id", "amount"]
    frame = frame[order + [c for c in frame.columns if c not in order]]
    frame, warnings = _clean(frame)
    _require_both_classes(frame["is_fraud"].to_numpy())
    return frame, warnings


def _rows(mask: pd.Series | np.ndarray) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(np.asarray(mask))]


def _ids(column: pd.Series, name: str) -> pd.Series:
    missing = column.isna() | (column.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(f"column {name!r} has empty ids", column=name, rows=_rows(missing))
    if pd.api.types.is_float_dtype(column) and (column % 1 == 0).all():
        column = column.astype(np.int64)
    return column.astype(str).str.strip()


def _timestamps(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        raise DataError(f"column {name!r} holds numbers, not timestamps", column=name)
    parsed = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna()
    if bad.any():
        raise DataError(
            f"column {name!r} has missing or unparsable timestamps", column=name, rows=_rows(bad)
        )
    return parsed.astype("datetime64[us, UTC]")


def _numbers(column: pd.Series, name: str) -> pd.Series:
    parsed = pd.to_numeric(column, errors="coerce")
    bad = parsed.isna() | ~np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise DataError(
            f"column {name!r} has missing or non-numeric amounts", column=name, rows=_rows(bad)
        )
    return parsed.astype(float)


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
