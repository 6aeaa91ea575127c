"""How the model registry's files are written and read back: JSON bytes, ``.npy`` bytes,
fsynced files, and an audit line as the ``ModelEvent`` it announces."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import numpy as np

from streams.durable import fsync_file
from streams.events import ModelEvent, ModelEventKind


def now() -> datetime:
    return datetime.now(UTC)


def change_record(
    kind: ModelEventKind,
    version: str,
    previous: str | None,
    reasons: list[str],
    details: dict[str, object],
) -> dict[str, Any]:
    """One change of a registry as its audit record (the ``ModelEvent`` is decoded from
    it), the same on a folder and on object storage."""
    return {
        "at": now().isoformat(),
        "kind": kind,
        "version": version,
        "previous": previous,
        "reasons": reasons,
        "details": details,
        "event_id": uuid.uuid4().hex,
    }


def audit_event(raw: bytes) -> ModelEvent | None:
    """An audit line as the ``ModelEvent`` it announces (None: a torn line). Lines written
    before events carried ids get one derived from their bytes, the same on every read."""
    try:
        line = json.loads(raw)
        if line["kind"] not in get_args(ModelEventKind):
            return None  # a record of the audit only (a lost promotion)
        return ModelEvent(
            kind=line["kind"],
            model_version=line["version"],
            at=datetime.fromisoformat(line["at"]),
            previous_version=line.get("previous"),
            reasons=list(line.get("reasons", [])),
            details=dict(line.get("details", {})),
            event_id=line.get("event_id") or hashlib.sha256(raw.strip()).hexdigest()[:32],
        )
    except (ValueError, KeyError, TypeError):
        return None


PROMOTION_LOST = "promotion_lost"
"""The audit kind of a promotion refused because the champion changed under it; not a
``ModelEvent`` (nothing changed), so it is never announced."""


def lost_promotion(
    version: str, expected: str | None, found: str | None, reason: str
) -> dict[str, Any]:
    return {
        "at": now().isoformat(),
        "kind": PROMOTION_LOST,
        "version": version,
        "previous": found,
        "reasons": [reason],
        "details": {"expected": expected, "found": found},
        "event_id": uuid.uuid4().hex,
    }


def write_synced(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    fsync_file(path)


def json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True, default=jsonable) + "\n").encode()


def jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
