"""``--from-file``: labels from CSV or parquet (transaction_id,label[,labelled_at,analyst]).

Chargebacks arrive in batches days later; every row becomes one ``Label`` (source given by
``--source``, default chargeback). Rows that do not validate are reported, never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pandas as pd

from streams.errors import FraudError
from streams.events import Label
from streams.serde import label_decoder


class LabelFileError(FraudError):
    """The label file cannot be read or lacks the required columns."""


@dataclass(frozen=True)
class ParsedLabels:
    labels: list[Label]
    rejected: list[tuple[int, str]]
    """(row number, reason) of rows that were not valid labels."""


def read_label_file(
    path: Path, *, source: str, default_analyst: str, now: datetime | None = None
) -> ParsedLabels:
    if not path.exists():
        raise LabelFileError(f"{path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("transaction_id", "label") if c not in frame.columns]
    if missing:
        raise LabelFileError(f"{path} lacks columns {missing}")
    stamp = (now or datetime.now(UTC)).isoformat()
    labels: list[Label] = []
    rejected: list[tuple[int, str]] = []
    for number, row in enumerate(frame.to_dict("records"), start=1):
        labelled_at = row.get("labelled_at") or stamp
        if isinstance(labelled_at, pd.Timestamp):
            labelled_at = labelled_at.isoformat()
        payload = msgspec.json.encode(
            {
                "transaction_id": str(row["transaction_id"]).strip(),
                "label": str(row["label"]).strip().lower(),
                "analyst": str(row.get("analyst") or default_analyst),
                "labelled_at": str(labelled_at),
                "source": source,
            }
        )
        decoded = label_decoder.decode(payload)
        if isinstance(decoded, Label):
            labels.append(decoded)
        else:
            rejected.append((number, f"{decoded.reason}: {decoded.message}"))
    return ParsedLabels(labels, rejected)
