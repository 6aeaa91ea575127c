"""The outbox of a log kept as one object per record (the model registry on S3).

Records live under ``audit/`` (a sortable key each); a record announced on
``model.events`` gets an empty marker ``announced/<record name>``. Pending is every record
without a marker, oldest key first, so a record written late by a host whose clock lags
is still announced (no cursor can pass it by). Two drainers on two hosts may announce a
record twice; delivery is at least once anyway and consumers drop an ``event_id`` seen.
"""

from __future__ import annotations

import logging

from streams.events import ModelEvent
from streams.object_store import ObjectStore
from streams.outbox import Decode, Pending, decode_event

log = logging.getLogger("fraud.outbox")
RECORDS = "audit/"
MARKS = "announced/"


class ObjectOutbox:
    def __init__(self, store: ObjectStore, *, decode: Decode = decode_event, name: str) -> None:
        self.store = store
        self.decode = decode
        self.name = name
        self._listed: list[str] = []

    def claim(self) -> bool:
        return True  # no lock across hosts: a twice-announced event is dropped by its id

    def release(self) -> None:
        return None

    def start_at_end(self) -> None:
        return None

    def pass_unreadable(self) -> int:
        """Mark records that are not events (a lost promotion, a torn write) as passed."""
        passed = 0
        for name in self._waiting():
            if self._event(name) is None:
                self.store.write(MARKS + name.removeprefix(RECORDS), b"")
                passed += 1
        if passed:
            log.info("stage=outbox %s passed %d records that are not events", self.name, passed)
        return passed

    def pending(self, limit: int = 500) -> list[Pending]:
        """Up to ``limit`` unannounced events, oldest first; ``end`` counts them, for
        :meth:`delivered`."""
        found: list[Pending] = []
        self._listed = []
        for name in self._waiting():
            event = self._event(name)
            if event is None:
                continue
            self._listed.append(name)
            found.append(Pending(event, len(self._listed)))
            if len(found) >= limit:
                break
        return found

    def delivered(self, end: int) -> None:
        """The first ``end`` events of the last :meth:`pending` reached the broker."""
        for name in self._listed[:end]:
            self.store.write(MARKS + name.removeprefix(RECORDS), b"")
        self._listed = self._listed[end:]

    def backlog(self) -> list[ModelEvent]:
        return [p.event for p in self.pending(limit=1 << 30)]

    def _waiting(self) -> list[str]:
        marked = {n.removeprefix(MARKS) for n in self.store.names(MARKS)}
        return [n for n in self.store.names(RECORDS) if n.removeprefix(RECORDS) not in marked]

    def _event(self, name: str) -> ModelEvent | None:
        try:
            return self.decode(self.store.read(name))
        except FileNotFoundError:
            return None
