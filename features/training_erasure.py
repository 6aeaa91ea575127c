"""Erasing cards from the training store, and keeping them out afterwards.

The store is written by the feedback processor from ``transactions.scored`` and
``fraud.labels``, which keep a customer's records for their retention after an erasure; a
replay of them (a restarted processor rewinds a little) would write the erased rows again.
So an erasure also adds the cards to the store's *forget list* (salted SHA-256 digests, not
the ids), and :meth:`TrainingStore.append` drops rows of forgotten cards.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streams.durable import fsync_dir

FORGET_FILE = "erased-cards.json"


class ForgetList:
    """Salted digests of erased card ids; re-read when the file changes."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / FORGET_FILE
        self._stamp: tuple[int, int] | None = None
        self._salt = b""
        self._digests: frozenset[str] = frozenset()

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._salt, self._digests = None, b"", frozenset()
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            data = json.loads(self.path.read_text())
            self._salt = bytes.fromhex(data["salt"])
            self._digests = frozenset(data["digests"])
            self._stamp = stamp

    def _digest(self, card_id: str) -> str:
        return hashlib.sha256(self._salt + card_id.encode()).hexdigest()

    def contains(self, card_id: str) -> bool:
        self._load()
        return bool(self._digests) and self._digest(card_id) in self._digests

    def add(self, card_ids: Iterable[str]) -> None:
        self._load()
        salt = self._salt or secrets.token_bytes(16)
        self._salt = salt
        digests = self._digests | {self._digest(c) for c in card_ids}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
        with tmp.open("w") as out:
            json.dump({"salt": salt.hex(), "digests": sorted(digests)}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self._stamp = None


@dataclass(frozen=True)
class ErasedRows:
    rows: int
    """Parquet rows removed."""
    audit_lines: int
    parts_rewritten: int
    transaction_ids: frozenset[str]
    """The transactions the removed rows belonged to (for the other stores' erasure)."""


def erase_cards(rows_dir: Path, audit_dir: Path, card_ids: Iterable[str]) -> ErasedRows:
    """Remove every row of ``card_ids`` from the parts under ``rows_dir`` (each affected
    part rewritten to a temporary file and renamed over the old one) and every audit line
    of the removed transactions. Idempotent: a second run finds nothing."""
    cards = pa.array(sorted(set(card_ids)), pa.string())
    removed = rewritten = 0
    transactions: set[str] = set()
    for path in sorted(Path(rows_dir).glob("day=*/part-*.parquet")):
        count, erased, kept = split_card_rows(pq.read_table(path), cards)
        if not count:
            continue
        transactions.update(erased)
        if kept.num_rows:
            tmp = path.with_name(f".{path.name}.erase.tmp")
            pq.write_table(kept, tmp)
            _fsync(tmp)
            os.replace(tmp, path)
        else:
            path.unlink()
        fsync_dir(path.parent)  # the rename or removal survives a power loss
        removed += count
        rewritten += 1
    lines = _erase_audit(Path(audit_dir), transactions) if transactions else 0
    return ErasedRows(removed, lines, rewritten, frozenset(transactions))


def _erase_audit(audit_dir: Path, transactions: set[str]) -> int:
    removed = 0
    for path in sorted(audit_dir.glob("applied=*.jsonl")):
        kept, dropped = audit_without(path.read_text(encoding="utf-8"), transactions)
        if dropped:
            tmp = path.with_name(f".{path.name}.erase.tmp")
            tmp.write_text(kept, encoding="utf-8")
            _fsync(tmp)
            os.replace(tmp, path)
            fsync_dir(path.parent)
            removed += dropped
    return removed


def split_card_rows(table: pa.Table, cards: pa.Array) -> tuple[int, list[str], pa.Table]:
    """Of one part: how many rows belong to ``cards``, their transaction ids, and the rows
    that stay (the folder store and the object store erase alike)."""
    hit = pc.is_in(table["card_id"], value_set=cards)
    count = pc.sum(hit).as_py() or 0
    if not count:
        return 0, [], table
    return count, table.filter(hit)["transaction_id"].to_pylist(), table.filter(pc.invert(hit))


def audit_without(text: str, transactions: set[str]) -> tuple[str, int]:
    """An audit file's ``text`` without the lines of ``transactions``, and how many went."""
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if transaction_of(line) not in transactions]
    return "".join(kept), len(lines) - len(kept)


def transaction_of(line: str) -> str | None:
    """The ``transaction_id`` of an audit line (None: a torn or foreign line)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record.get("transaction_id") if isinstance(record, dict) else None


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
