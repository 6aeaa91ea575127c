"""The training store's files on S3-compatible object storage (``s3://bucket/prefix``).

Same layout as the folder store, with two changes object storage asks for:

* A part is one PUT of a whole parquet file (pyarrow writes it to memory first): S3 makes
  an object visible whole or not at all, so no temporary name and rename are needed.
* Nothing is appended: each append's audit lines are an object of their own,
  ``audit/applied=YYYY-MM-DD/<applied_us>-<uuid>.jsonl``, so writers on several hosts
  (or a retrainer reading while the feedback processor writes) never lose a line.

A part that cannot be read is moved under ``quarantine/`` (copy, then delete), like the
folder store's. The forget list of erased cards is ``forgotten.json`` in the store (so
every host drops the same cards), changed by a conditional write; an erasure rewrites each
part and audit object holding the cards with one PUT (readers see it before or after,
never half) or deletes it when nothing is left.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.training_erasure import ErasedRows, audit_without, split_card_rows
from features.training_quarantine import OnQuarantine
from streams.object_store import ObjectStore

log = logging.getLogger("fraud.training_store")
FORGET_OBJECT = "forgotten.json"


class ObjectParts:
    """Parts, audit objects and quarantine of one training store under an s3:// URL."""

    def __init__(self, store: ObjectStore, on_quarantine: OnQuarantine | None = None) -> None:
        self.store = store
        self.on_quarantine = on_quarantine

    def write_part(self, day: str, name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.store.write(f"rows/day={day}/{name}", buffer.getvalue())

    def parts(self) -> list[tuple[str, str]]:
        """(day, object name) of every part, by day then name."""
        found = []
        for name in self.store.names("rows/"):
            folder, _, file = name.removeprefix("rows/").partition("/")
            if folder.startswith("day=") and file.startswith("part-") and name.endswith(".parquet"):
                found.append((folder.removeprefix("day="), name))
        return found

    def read_part(self, name: str, columns: list[str]) -> pa.Table | None:
        """The part's columns; None when it vanished or was quarantined as unreadable."""
        try:
            data = self.store.read(name)
        except FileNotFoundError:
            return None
        try:
            return pq.read_table(io.BytesIO(data), columns=columns)
        except (pa.ArrowInvalid, OSError) as exc:
            self.quarantine(name, data, exc)
            return None

    def quarantine(self, name: str, data: bytes, error: Exception) -> None:
        target = "quarantine/" + name.removeprefix("rows/")
        self.store.write(target, data)
        self.store.delete(name)
        reason = f"{type(error).__name__}: {error}"
        log.warning(
            "stage=quarantine unreadable training part %s moved to %s (%s); its labels are "
            "landed again from the audit trail",
            name,
            target,
            reason,
        )
        record = {"at": datetime.now(UTC).isoformat(), "part": name, "reason": reason}
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        self.store.write(f"quarantine/log/{stamp}-{digest}.json", json.dumps(record).encode())
        if self.on_quarantine is not None:
            self.on_quarantine(Path(target), reason)

    def quarantined(self) -> int:
        return sum(1 for n in self.store.names("quarantine/day=") if n.endswith(".parquet"))

    def erase(self, card_ids: Iterable[str]) -> ErasedRows:
        """Remove every row of the cards, then the audit lines of their transactions.
        Idempotent: a second run finds nothing."""
        cards = pa.array(sorted(set(card_ids)), pa.string())
        removed = rewritten = 0
        transactions: set[str] = set()
        for _, name in self.parts():
            try:
                table = pq.read_table(io.BytesIO(self.store.read(name)))
            except FileNotFoundError:
                continue
            count, erased, kept = split_card_rows(table, cards)
            if not count:
                continue
            transactions.update(erased)
            if kept.num_rows:
                buffer = io.BytesIO()
                pq.write_table(kept, buffer)
                self.store.write(name, buffer.getvalue())
            else:
                self.store.delete(name)
            removed += count
            rewritten += 1
        lines = self._erase_audit(transactions) if transactions else 0
        return ErasedRows(removed, lines, rewritten, frozenset(transactions))

    def _erase_audit(self, transactions: set[str]) -> int:
        removed = 0
        for name in self.store.names("audit/applied="):
            try:
                text = self.store.read(name).decode("utf-8")
            except FileNotFoundError:
                continue
            kept, dropped = audit_without(text, transactions)
            if dropped:
                if kept:
                    self.store.write(name, kept.encode())
                else:
                    self.store.delete(name)
                removed += dropped
        return removed

    def write_audit(self, day: str, name: str, text: str) -> None:
        self.store.write(f"audit/applied={day}/{name}", text.encode())

    def audit_lines(self) -> list[str]:
        lines: list[str] = []
        for name in self.store.names("audit/applied="):
            try:
                lines.extend(self.store.read(name).decode("utf-8").splitlines())
            except FileNotFoundError:
                continue
        return lines


class ObjectForgetList:
    """The salted digests of erased cards, read from the store (re-read on a new ETag)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._etag: str | None = None
        self._salt = b""
        self._digests: frozenset[str] = frozenset()

    def refresh(self) -> None:
        """Re-read the list if it changed (one HEAD; the store calls it once per append)."""
        etag = self.store.etag(FORGET_OBJECT)
        if etag is None:
            self._etag, self._salt, self._digests = None, b"", frozenset()
        elif etag != self._etag:
            data = json.loads(self.store.read(FORGET_OBJECT))
            self._salt = bytes.fromhex(data["salt"])
            self._digests = frozenset(data["digests"])
            self._etag = etag

    def add(self, card_ids: Iterable[str]) -> None:
        """Add the cards (a conditional write: two erasures at once both land)."""
        wanted = sorted(set(card_ids))
        for _ in range(20):
            tagged = self.store.read_tagged(FORGET_OBJECT)
            if tagged is None:
                salt, digests = secrets.token_bytes(16), set()
            else:
                data = json.loads(tagged.data)
                salt, digests = bytes.fromhex(data["salt"]), set(data["digests"])
            digests |= {hashlib.sha256(salt + c.encode()).hexdigest() for c in wanted}
            body = json.dumps({"salt": salt.hex(), "digests": sorted(digests)}).encode()
            if tagged is None:
                written = self.store.create(FORGET_OBJECT, body)
            else:
                written = self.store.replace(FORGET_OBJECT, body, tagged.etag)
            if written is not None:
                self._etag = None
                self.refresh()
                return
        raise OSError("the forget list kept changing under this erasure")

    def contains(self, card_id: str) -> bool:
        if not self._digests:
            return False
        digest = hashlib.sha256(self._salt + card_id.encode()).hexdigest()
        return digest in self._digests
