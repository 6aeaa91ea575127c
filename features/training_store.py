"""The training store: labelled rows of *served* feature vectors, parquet partitioned by day.

Written by the feedback stream processor (one writer per root), read by the retrainer.
Each row is exactly the feature vector the scorer served for a transaction (from its
``Decision``) plus the label an analyst, a chargeback or the demo oracle gave it.

Layout under ``root``::

    rows/day=YYYY-MM-DD/part-<applied_us>-<uuid>.parquet   one file per append, by event day
    audit/applied=YYYY-MM-DD.jsonl                          every label applied, by applied day
    quarantine/day=YYYY-MM-DD/part-...parquet               parts that could not be read
    quarantine/quarantine.jsonl                             when, which, why

Semantics:

* **The strongest, then the latest label wins.** A transaction may be labelled several
  times (analyst, then a chargeback). :meth:`TrainingStore.read` returns one row per
  transaction_id: a chargeback (the card network's verdict) outranks an analyst's or the
  demo oracle's label whatever the times, so no later analyst label can overturn it;
  among labels of one rank the latest ``labelled_at`` wins (ties: the one applied last).
  All labels of a transaction share its event day, so they live in one partition.
* **Idempotent appends.** A label is identified by ``(transaction_id, label, labelled_at,
  source, analyst)``. Appending a label the store already holds writes nothing, so a
  replay after a crash never doubles rows or audit lines (the parquet part and the audit
  line are each skipped when already present, so a crash between the two heals on replay).
* **Audit trail.** :meth:`TrainingStore.audit` lists every label ever applied, with
  ``superseded`` set on those that lost to a later label.
* **Durable, and a torn part is not fatal.** A part is written to a temporary name,
  fsynced, renamed and its folder fsynced, so a crash or a power loss leaves it whole or
  absent; audit lines are fsynced. A part that cannot be read anyway (a disk fault, a
  copy cut short) is moved to ``quarantine/`` with a log line and the ``on_quarantine``
  hook (a metric), and reading goes on without it. Its labels are still in the audit
  trail: :meth:`TrainingStore.missing_rows` lists them, so the writer can land them again
  (the feedback processor does, from the decisions it holds).

API for the retrainer::

    store = TrainingStore(Path("state/training"))
    frame = store.read(since=None)          # one row per labelled transaction
    n_new = store.count_since(last_train)   # winners with labelled_at >= last_train
    trail = store.audit()

``read`` columns: transaction_id, event_time, card_id, terminal_id, amount, is_fraud (int8
0/1), label_source, analyst, labelled_at, applied_at, model_version, score, decision,
feature_set, then one float64 column per name of ``FEATURE_NAMES`` (served order). Times are
``datetime64[us, UTC]``. Sorted by event_time, transaction_id.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.definitions import FEATURE_NAMES
from features.training_erasure import ErasedRows, ForgetList, erase_cards
from features.training_objects import ObjectForgetList, ObjectParts
from features.training_quarantine import OnQuarantine, Quarantine
from streams.durable import append_durable, fsync_dir
from streams.errors import FraudError
from streams.object_store import ObjectStore, is_object_url

LabelSource = Literal["analyst", "chargeback", "oracle"]
META_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "event_time",
    "card_id",
    "terminal_id",
    "amount",
    "is_fraud",
    "label_source",
    "analyst",
    "labelled_at",
    "applied_at",
    "model_version",
    "score",
    "decision",
    "feature_set",
)
_FINGERPRINT = ("transaction_id", "is_fraud", "labelled_at", "label_source", "analyst")
_TS = pa.timestamp("us", tz="UTC")


class TrainingStoreError(FraudError):
    """A row does not fit the store (wrong feature count, naive time) or a file is corrupt."""


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One label applied to one served decision."""

    transaction_id: str
    event_time: datetime
    card_id: str
    terminal_id: str
    amount: float
    is_fraud: bool
    label_source: LabelSource
    analyst: str
    labelled_at: datetime
    model_version: str
    score: float
    decision: str
    feature_set: str
    features: Sequence[float]
    note: str | None = None

    def fingerprint(self) -> tuple[str, int, int, str, str]:
        return (
            self.transaction_id,
            int(self.is_fraud),
            _us(self.labelled_at),
            self.label_source,
            self.analyst,
        )


@dataclass(frozen=True)
class AppendResult:
    written: int
    """Rows new to the store (parquet)."""
    duplicates: int
    """Rows the store already held (replays): nothing written."""
    audited: int
    """Audit lines written (equals ``written`` unless a crash left one side behind)."""


class TrainingStore:
    """Append labelled served rows; read them de-duplicated (later label wins)."""

    def __init__(
        self,
        root: Path | str,
        feature_names: Sequence[str] = FEATURE_NAMES,
        *,
        on_quarantine: OnQuarantine | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        """``root`` is a folder, or ``s3://bucket/prefix`` (:mod:`training_objects`)."""
        self.objects: ObjectParts | None = None
        self.forgotten: ForgetList | ObjectForgetList
        if is_object_url(root):
            store = ObjectStore(str(root), endpoint_url=endpoint_url)
            self.objects = ObjectParts(store, on_quarantine)
            self.forgotten = ObjectForgetList(store)
            root = Path(".")  # no local file is read or written for an s3:// store
        self.root = Path(root)
        self.feature_names = tuple(feature_names)
        self.rows_dir = self.root / "rows"
        self.audit_dir = self.root / "audit"
        self.quarantine = Quarantine(self.root / "quarantine", on_quarantine)
        self._rows_index: set[tuple[str, int, int, str, str]] | None = None
        self._audit_index: set[tuple[str, int, int, str, str]] | None = None
        if self.objects is None:
            self.forgotten = ForgetList(self.root)
        self._quarantine_seen: int | None = None

    # -- writing ------------------------------------------------------------------------
    def append(self, rows: Iterable[TrainingRow]) -> AppendResult:
        """Store the rows not yet held; one parquet part per event day, then the audit.
        Rows of erased cards (the forget list) are dropped, counted as duplicates."""
        rows_index, audit_index = self._indexes()
        if isinstance(self.forgotten, ObjectForgetList):
            self.forgotten.refresh()
        batch: dict[tuple[str, int, int, str, str], TrainingRow] = {}
        given = 0
        for row in rows:
            self._check(row)
            given += 1
            if not self.forgotten.contains(row.card_id):
                batch.setdefault(row.fingerprint(), row)
        new_rows = [r for f, r in batch.items() if f not in rows_index]
        new_audit = [r for f, r in batch.items() if f not in audit_index]
        applied_at = datetime.now(UTC)
        by_day: dict[str, list[TrainingRow]] = {}
        for row in new_rows:
            by_day.setdefault(_day(row.event_time), []).append(row)
        for day, day_rows in sorted(by_day.items()):
            self._write_part(day, day_rows, applied_at)
            rows_index.update(r.fingerprint() for r in day_rows)
        if new_audit:
            self._write_audit(new_audit, applied_at)
            audit_index.update(r.fingerprint() for r in new_audit)
        return AppendResult(
            written=len(new_rows), duplicates=given - len(new_rows), audited=len(new_audit)
        )

    def _check(self, row: TrainingRow) -> None:
        if len(row.features) != len(self.feature_names):
            raise TrainingStoreError(
                f"{row.transaction_id}: {len(row.features)} features, "
                f"store has {len(self.feature_names)}"
            )
        if row.event_time.tzinfo is None or row.labelled_at.tzinfo is None:
            raise TrainingStoreError(f"{row.transaction_id}: times must be timezone-aware")

    def _write_part(self, day: str, rows: list[TrainingRow], applied_at: datetime) -> None:
        if self.objects is not None:
            name = f"part-{_us(applied_at):017d}-{uuid.uuid4().hex[:8]}.parquet"
            self.objects.write_part(day, name, self._to_table(rows, applied_at))
            return
        folder = self.rows_dir / f"day={day}"
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            fsync_dir(folder.parent)
        name = f"part-{_us(applied_at):017d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".{name}.tmp"
        try:
            with tmp.open("wb") as handle:
                pq.write_table(self._to_table(rows, applied_at), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, folder / name)  # whole or absent, even after a power loss
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(folder)

    def _to_table(self, rows: list[TrainingRow], applied_at: datetime) -> pa.Table:
        features = np.asarray([r.features for r in rows], dtype=np.float64)
        columns: dict[str, pa.Array] = {
            "transaction_id": pa.array([r.transaction_id for r in rows], pa.string()),
            "event_time": pa.array([r.event_time for r in rows], _TS),
            "card_id": pa.array([r.card_id for r in rows], pa.string()),
            "terminal_id": pa.array([r.terminal_id for r in rows], pa.string()),
            "amount": pa.array([r.amount for r in rows], pa.float64()),
            "is_fraud": pa.array([int(r.is_fraud) for r in rows], pa.int8()),
            "label_source": pa.array([r.label_source for r in rows], pa.string()),
            "analyst": pa.array([r.analyst for r in rows], pa.string()),
            "labelled_at": pa.array([r.labelled_at for r in rows], _TS),
            "applied_at": pa.array([applied_at] * len(rows), _TS),
            "model_version": pa.array([r.model_version for r in rows], pa.string()),
            "score": pa.array([r.score for r in rows], pa.float64()),
            "decision": pa.array([r.decision for r in rows], pa.string()),
            "feature_set": pa.array([r.feature_set for r in rows], pa.string()),
        }
        for j, name in enumerate(self.feature_names):
            columns[name] = pa.array(features[:, j], pa.float64())
        return pa.table(columns)

    def _write_audit(self, rows: list[TrainingRow], applied_at: datetime) -> None:
        self.audit_dir.mkdir(parents=True, exist_ok=True)
        path = self.audit_dir / f"applied={applied_at.date().isoformat()}.jsonl"
        lines = "".join(
            json.dumps(
                {
                    "transaction_id": r.transaction_id,
                    "label": "fraud" if r.is_fraud else "legit",
                    "label_source": r.label_source,
                    "analyst": r.analyst,
                    "labelled_at": r.labelled_at.astimezone(UTC).isoformat(),
                    "applied_at": applied_at.isoformat(),
                    "event_time": r.event_time.astimezone(UTC).isoformat(),
                    "model_version": r.model_version,
                    "note": r.note,
                },
                separators=(",", ":"),
            )
            + "\n"
            for r in rows
        )
        if self.objects is not None:
            name = f"{_us(applied_at):017d}-{uuid.uuid4().hex[:8]}.jsonl"
            self.objects.write_audit(applied_at.date().isoformat(), name, lines)
            return
        append_durable(path, lines)

    def erase(self, card_ids: Iterable[str]) -> ErasedRows:
        """Remove the cards' rows and audit lines and forget the cards, so a replay of
        their decisions and labels does not write them again (:mod:`training_erasure`)."""
        cards = sorted(set(card_ids))
        self.forgotten.add(cards)
        if self.objects is not None:
            erased = self.objects.erase(cards)
        else:
            erased = erase_cards(self.rows_dir, self.audit_dir, cards)
        self._rows_index = self._audit_index = None
        return erased

    # -- indexes (built once per process, from what is on disk) --------------------------
    def _indexes(
        self,
    ) -> tuple[set[tuple[str, int, int, str, str]], set[tuple[str, int, int, str, str]]]:
        if self._rows_index is None or self._audit_index is None:
            self._quarantine_seen = self._quarantined()
            raw = self._read_raw(columns=list(_FINGERPRINT))
            self._rows_index = _fingerprints(raw)
            self._audit_index = _fingerprints(self._read_audit_raw())
        return self._rows_index, self._audit_index

    def refresh(self) -> bool:
        """Forget the indexes if another reader quarantined a part since they were built
        (its labels are then missing rows); True if they were dropped."""
        if self._rows_index is None or self._quarantined() == self._quarantine_seen:
            return False
        self._rows_index = self._audit_index = None
        return True

    def missing_rows(self) -> list[dict[str, Any]]:
        """Labels in the audit trail whose row is gone (a quarantined part): the audit
        records (transaction_id, label, label_source, analyst, labelled_at, note, ...)."""
        rows_index, _ = self._indexes()
        trail = self._read_audit_raw()
        if trail.empty:
            return []
        lost = [f not in rows_index for f in _fingerprint_tuples(trail)]
        records: list[dict[str, Any]] = trail[lost].to_dict("records")
        return records

    # -- reading ------------------------------------------------------------------------
    def read(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        by: Literal["event_time", "labelled_at"] = "event_time",
    ) -> pd.DataFrame:
        """One row per labelled transaction (its latest label), ``since <= by < until``."""
        days = None
        if by == "event_time" and (since is not None or until is not None):
            days = (_day(since) if since else None, _day(until) if until else None)
        frame = _latest(self._read_raw(days=days))
        if since is not None:
            frame = frame[frame[by] >= pd.Timestamp(since).tz_convert(UTC)]
        if until is not None:
            frame = frame[frame[by] < pd.Timestamp(until).tz_convert(UTC)]
        return frame.reset_index(drop=True)

    def count_since(self, ts: datetime) -> int:
        """Labelled transactions whose winning label has ``labelled_at >= ts``."""
        raw = self._read_raw(columns=[*_FINGERPRINT, "applied_at"])
        latest = _latest(raw)
        return int((latest["labelled_at"] >= pd.Timestamp(ts).tz_convert(UTC)).sum())

    def audit(self) -> pd.DataFrame:
        """Every label applied (oldest first), ``superseded`` when a later label won."""
        trail = self._read_audit_raw()
        if trail.empty:
            return trail.assign(superseded=pd.Series(dtype=bool))
        winners = _latest(self._read_raw(columns=[*_FINGERPRINT, "applied_at"]))
        won = set(_fingerprints(winners))
        trail["superseded"] = [f not in won for f in _fingerprint_tuples(trail)]
        return trail

    def _read_raw(
        self,
        columns: list[str] | None = None,
        days: tuple[str | None, str | None] | None = None,
    ) -> pd.DataFrame:
        names = list(META_COLUMNS) + list(self.feature_names) if columns is None else columns
        if self.objects is not None:
            return _tables(
                [
                    self.objects.read_part(name, names)
                    for day, name in self.objects.parts()
                    if days is None
                    or not (
                        (days[0] is not None and day < days[0])
                        or (days[1] is not None and day > days[1])
                    )
                ],
                names,
            )
        parts = []
        for folder in sorted(self.rows_dir.glob("day=*")):
            day = folder.name.removeprefix("day=")
            if days is not None and (
                (days[0] is not None and day < days[0]) or (days[1] is not None and day > days[1])
            ):
                continue
            for path in sorted(folder.glob("part-*.parquet")):
                try:
                    parts.append(pq.read_table(path, columns=names))
                except FileNotFoundError:  # compacted or quarantined away while listing
                    continue
                except (pa.ArrowInvalid, OSError) as exc:
                    self.quarantine.move(path, exc)
        if not parts:
            return _empty(names)
        return pa.concat_tables(parts).to_pandas()

    def _quarantined(self) -> int:
        if self.objects is not None:
            return self.objects.quarantined()
        return len(self.quarantine.parts())

    def _audit_text_lines(self) -> list[str]:
        if self.objects is not None:
            return self.objects.audit_lines()
        return [
            line
            for path in sorted(self.audit_dir.glob("applied=*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()
        ]

    def _read_audit_raw(self) -> pd.DataFrame:
        records = []
        for line in self._audit_text_lines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line of a crash: re-applied later
                continue
        if not records:
            return pd.DataFrame(
                columns=["transaction_id", "is_fraud", "labelled_at", "label_source", "analyst"]
            )
        trail = pd.DataFrame.from_records(records)
        trail["is_fraud"] = (trail["label"] == "fraud").astype(np.int8)
        for column in ("labelled_at", "applied_at", "event_time"):
            trail[column] = pd.to_datetime(trail[column], utc=True, format="ISO8601")
        return trail.sort_values(["applied_at"], kind="stable").reset_index(drop=True)


LABEL_RANK = {"chargeback": 1}
"""A label's authority: higher wins over any time; every other source ranks 0."""


def _latest(raw: pd.DataFrame) -> pd.DataFrame:
    """Keep, per transaction_id, the winning label: highest rank, then latest labelled_at,
    then applied_at, then order."""
    if raw.empty:
        return raw
    rank = raw["label_source"].map(LABEL_RANK).fillna(0).astype(np.int8)
    order = raw.assign(_rank=rank).sort_values(
        ["_rank", "labelled_at", "applied_at"], kind="stable"
    )
    latest = order.drop_duplicates("transaction_id", keep="last").drop(columns="_rank")
    sort_by = ["event_time", "transaction_id"] if "event_time" in latest else ["transaction_id"]
    return latest.sort_values(sort_by, kind="stable")


def _fingerprints(frame: pd.DataFrame) -> set[tuple[str, int, int, str, str]]:
    return set(_fingerprint_tuples(frame))


def _fingerprint_tuples(frame: pd.DataFrame) -> list[tuple[str, int, int, str, str]]:
    if frame.empty:
        return []
    labelled = pd.DatetimeIndex(frame["labelled_at"]).tz_convert(UTC).as_unit("us").asi8
    return list(
        zip(
            frame["transaction_id"].astype(str),
            frame["is_fraud"].astype(int),
            (int(v) for v in labelled),
            frame["label_source"].astype(str),
            frame["analyst"].astype(str),
            strict=True,
        )
    )


def _tables(tables: list[pa.Table | None], names: list[str]) -> pd.DataFrame:
    found = [t for t in tables if t is not None]
    return pa.concat_tables(found).to_pandas() if found else _empty(names)


def _empty(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in columns})
    for column in ("event_time", "labelled_at", "applied_at"):
        if column in frame:
            frame[column] = pd.Series(dtype="datetime64[us, UTC]")
    for column in (
        "transaction_id",
        "card_id",
        "terminal_id",
        "label_source",
        "analyst",
        "model_version",
        "decision",
        "feature_set",
    ):
        if column in frame:
            frame[column] = pd.Series(dtype=object)
    if "is_fraud" in frame:
        frame["is_fraud"] = pd.Series(dtype=np.int8)
    return frame


def _us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise TrainingStoreError("times must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()
