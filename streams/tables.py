"""Transactions in a table (CSV or parquet): column roles, reading, one value per cell.

A file may name its columns as it likes. Each contract field is a *role*, matched to a
column by a list of usual names (any capitalisation) or by ``--col ROLE=NAME``. Training
(``fraudctl train``, through :mod:`models.data`), profile materialisation and
``fraudctl produce`` all read a file through this module, so the values a model is
trained on are the values the scorer is sent: the same ids, the same times, the same
amounts, the same defaults for what a file leaves out.

Cells are converted without raising: a cell that cannot be read becomes missing (``None``,
``NaT``, ``NaN``), so a caller decides whether that refuses the file (training) or one
record (produce, which lets the scorer's decoder name the reason).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from streams.errors import FraudError

ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "transaction_id": ("transaction_id", "tx_id", "transactionid", "trans_id"),
    "event_time": ("event_time", "timestamp", "tx_datetime", "datetime", "time"),
    "card_id": ("card_id", "card", "cardid"),
    "customer_id": ("customer_id", "customerid", "cust_id", "customer"),
    "terminal_id": ("terminal_id", "terminalid", "terminal", "merchant_id"),
    "amount": ("amount", "tx_amount", "amt"),
    "label": ("label", "is_fraud", "tx_fraud", "fraud"),
}
"""Roles with the column names that fill them when no ``--col`` says otherwise."""

OPTIONAL_COLUMNS = ("currency", "merchant_category", "channel", "country", "device_id")
"""Contract fields a file may leave out (matched by their own name or ``--col``)."""

CONTRACT_DEFAULTS: dict[str, str] = {
    "currency": "EUR",
    "merchant_category": "5411",
    "channel": "pos",
}
"""What the contract (:class:`streams.events.Transaction`) assumes for a missing value; a
table's empty cell gets the same, so training sees what the scorer will see."""

ID_ROLES = ("transaction_id", "card_id", "customer_id", "terminal_id")


class TableError(FraudError):
    """A table cannot be read, or a column mapping names no column of it."""


def parse_column_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["timestamp=TX_DATETIME", ...]`` -> ``{"event_time": "TX_DATETIME", ...}``."""
    known = {alias: role for role, aliases in ROLE_ALIASES.items() for alias in aliases}
    known.update({name: name for name in OPTIONAL_COLUMNS})
    out: dict[str, str] = {}
    for item in items:
        role, sep, name = item.partition("=")
        role = role.strip().lower()
        if not sep or not name.strip():
            raise TableError(f"--col expects ROLE=NAME, got {item!r}")
        if role not in known:
            roles = ", ".join([*ROLE_ALIASES, *OPTIONAL_COLUMNS])
            raise TableError(f"--col: unknown role {role!r}; roles: {roles}")
        out[known[role]] = name.strip()
    return out


def read_frame(path: Path) -> pd.DataFrame:
    """Read one CSV or parquet file (or a folder of parquet files)."""
    if not path.exists():
        raise TableError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if path.is_dir() or suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt", ".gz"}:
            return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TableError(f"cannot read {path}: {exc}") from exc
    raise TableError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def match_columns(
    columns: Sequence[object], overrides: Mapping[str, str], roles: Sequence[str]
) -> dict[str, str]:
    """Role -> column name for the ``roles`` found: ``--col`` first, then the usual names,
    case-insensitively. Roles with no column are left out; a ``--col`` naming no column
    is an error."""
    names = [str(c) for c in columns]
    by_lower = {name.lower(): name for name in names}
    out: dict[str, str] = {}
    for role in roles:
        if role in overrides:
            name = overrides[role]
            actual = name if name in names else by_lower.get(name.lower())
            if actual is None:
                raise TableError(f"--col {role}={name}: no such column")
            out[role] = actual
            continue
        for alias in ROLE_ALIASES.get(role, (role,)):
            if alias in by_lower:
                out[role] = by_lower[alias]
                break
    return out


def id_text(column: pd.Series) -> pd.Series:
    """Ids as text, ``None`` where empty. A column of whole floats (how pandas reads an
    integer column with gaps) is written without its ``.0``."""
    missing = column.isna() | (column.astype(str).str.strip() == "")
    if pd.api.types.is_float_dtype(column) and (column[~missing] % 1 == 0).all():
        column = column.fillna(0).astype(np.int64)
    text = column.astype(str).str.strip()
    return text.where(~missing, None)


def utc_times(column: pd.Series) -> pd.Series:
    """Timestamps as UTC microseconds (a time without a zone is UTC); ``NaT`` where a cell
    is empty or not a time. Numbers are not taken as times (their unit is unknowable)."""
    if pd.api.types.is_numeric_dtype(column):
        return pd.Series(pd.NaT, index=column.index, dtype="datetime64[us, UTC]")
    parsed = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
    return parsed.astype("datetime64[us, UTC]")


def numbers(column: pd.Series) -> pd.Series:
    """Floats; ``NaN`` where a cell is empty, not a number or not finite."""
    parsed = pd.to_numeric(column, errors="coerce").astype(float)
    return parsed.where(np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan)))


def optional_text(name: str, column: pd.Series) -> pd.Series:
    """An optional contract field as text: empty cells get the contract's default (or
    ``None``); a merchant category read as a number gets back its leading zeros."""
    missing = column.isna() | (column.astype(str).str.strip() == "")
    if name == "merchant_category" and pd.api.types.is_numeric_dtype(column):
        text = column.fillna(0).astype(np.int64).astype(str).str.zfill(4)
    elif pd.api.types.is_float_dtype(column) and (column[~missing] % 1 == 0).all():
        text = column.fillna(0).astype(np.int64).astype(str)
    else:
        text = column.astype(str).str.strip()
    return text.where(~missing, CONTRACT_DEFAULTS.get(name))


def contract_columns(raw: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """The contract's fields from a table, converted cell by cell (see the module doc).

    A file with only a card or only a customer column uses it for both (the contract
    needs both; features are per card)."""
    frame = pd.DataFrame(index=raw.index)
    for role in ID_ROLES:
        if role in mapping:
            frame[role] = id_text(raw[mapping[role]])
    if "card_id" not in frame and "customer_id" in frame:
        frame["card_id"] = frame["customer_id"]
    if "customer_id" not in frame and "card_id" in frame:
        frame["customer_id"] = frame["card_id"]
    if "event_time" in mapping:
        frame["event_time"] = utc_times(raw[mapping["event_time"]])
    if "amount" in mapping:
        frame["amount"] = numbers(raw[mapping["amount"]])
    for name in OPTIONAL_COLUMNS:
        if name in mapping:
            frame[name] = optional_text(name, raw[mapping[name]])
    order = ["transaction_id", "event_time", "card_id", "customer_id", "terminal_id", "amount"]
    return frame[[c for c in order if c in frame] + [c for c in frame if c not in order]]
