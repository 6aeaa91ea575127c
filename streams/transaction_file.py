"""Transactions from a file, as the payloads a producer sends to ``transactions``.

* JSON lines (``.jsonl`` / ``.ndjson``): one :class:`streams.events.Transaction` per line,
  sent byte for byte as written (see ``docs`` for an example message);
* a table (``.csv``, ``.parquet``): columns matched to the contract's fields by role, as
  ``fraudctl train`` matches them (:mod:`streams.tables`), one JSON payload per row.

Nothing is judged here: a row whose cell cannot be read keeps that cell's text, so the
scorer's own decoder (:mod:`streams.serde`) gives the reason the scorer would give.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd

from streams import tables
from streams.tables import OPTIONAL_COLUMNS, TableError

JSON_LINES = {".jsonl", ".ndjson"}
_ROLES = ("transaction_id", "event_time", "card_id", "customer_id", "terminal_id", "amount")
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class FileRecord:
    """One record of the file: where it is (``line``: 1-based line of the file, the CSV
    header being line 1; a parquet file's row number) and the bytes to send."""

    line: int
    payload: bytes


def read_records(path: Path, columns: Mapping[str, str] | None = None) -> Iterator[FileRecord]:
    """Every record of ``path`` in file order; ``columns`` maps roles of a table."""
    if path.suffix.lower() in JSON_LINES:
        if columns:
            raise TableError("--col maps the columns of a table; JSON lines name the fields")
        yield from _json_lines(path)
        return
    yield from _table_rows(path, columns or {})


def _json_lines(path: Path) -> Iterator[FileRecord]:
    if not path.is_file():
        raise TableError(f"input {path} does not exist")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            payload = line.rstrip(b"\r\n")
            if payload.strip():
                yield FileRecord(number, payload)


def _table_rows(path: Path, columns: Mapping[str, str]) -> Iterator[FileRecord]:
    raw = tables.read_frame(path)
    mapping = tables.match_columns(list(raw.columns), columns, [*_ROLES, *OPTIONAL_COLUMNS])
    if "card_id" not in mapping and "customer_id" not in mapping:
        missing = ["card_id or customer_id"]
    else:
        missing = []
    missing += [r for r in _ROLES if r not in mapping and r not in ("card_id", "customer_id")]
    if missing:
        hint = " ".join(f"--col {role}=<COLUMN>" for role in missing if " " not in role)
        raise TableError(
            f"missing column(s) for {', '.join(missing)}; file has: "
            f"{', '.join(map(str, raw.columns))}" + (f"; map them with {hint}" if hint else "")
        )
    frame = tables.contract_columns(raw, mapping)
    first_line = 2 if path.suffix.lower() in {".csv", ".txt", ".gz"} else 1
    fields = list(frame.columns)
    raw_of = {field: mapping.get(field) for field in fields}
    for index, values in enumerate(frame.itertuples(index=False, name=None)):
        record: dict[str, Any] = {}
        for field, value in zip(fields, values, strict=True):
            if _missing(value):
                source = raw_of[field]
                cell = raw.iat[index, raw.columns.get_loc(source)] if source else None
                if not _missing(cell) and str(cell).strip():
                    record[field] = str(cell)  # unreadable: the decoder names the reason
                continue
            record[field] = _json_value(value)
        yield FileRecord(index + first_line, _encoder.encode(record))


def _missing(value: object) -> bool:
    if value is None or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _json_value(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
