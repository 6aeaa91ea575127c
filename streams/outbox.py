"""A durable outbox of ``ModelEvent``s: an append-only JSON-lines file and a delivery cursor.

Whoever changes state writes the event here first (fsynced, no network, never blocked by
the broker); a publisher drains it to ``model.events`` and moves the cursor only after the
broker acknowledged. A crash or a broker outage therefore delays an event, never loses it;
a crash between the acknowledgement and the cursor write sends it again, so delivery is at
least once and consumers drop an ``event_id`` they have seen.

Layout: ``<path>`` holds one event per line; ``<path>.cursor`` the byte offset up to which
events were delivered (written atomically). A torn last line (a crash mid-append) is
skipped. The model registry's audit log is drained through the same class (its lines are
decoded by the registry's own ``decode``); the retrainer's reports go to a file of their
own, which is truncated once everything in it was delivered (``compact_bytes``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec

from streams.durable import append_durable, fsync_dir, write_atomic
from streams.events import ModelEvent

log = logging.getLogger("fraud.outbox")

Decode = Callable[[bytes], ModelEvent | None]
_decoder = msgspec.json.Decoder(ModelEvent)


def decode_event(line: bytes) -> ModelEvent | None:
    try:
        return _decoder.decode(line)
    except msgspec.DecodeError:
        return None


@dataclass(frozen=True)
class Pending:
    event: ModelEvent
    end: int
    """Byte offset just after this event's line: the cursor once it is delivered."""


@dataclass(frozen=True)
class _Line:
    event: ModelEvent | None
    end: int


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        decode: Decode = decode_event,
        compact_bytes: int | None = 1 << 20,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.cursor_path = self.path.with_name(self.path.name + ".cursor")
        self.decode = decode
        self.compact_bytes = compact_bytes
        self.name = name or self.path.stem
        self._claim: IO[str] | None = None

    # -- writing ----------------------------------------------------------------------
    def append(self, events: Sequence[ModelEvent]) -> list[ModelEvent]:
        """Store ``events`` durably (an ``event_id`` is given to those without); returns
        them as stored."""
        stored = [
            e if e.event_id else msgspec.structs.replace(e, event_id=uuid.uuid4().hex)
            for e in events
        ]
        if not stored:
            return stored
        text = "".join(msgspec.json.encode(e).decode() + "\n" for e in stored)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            append_durable(self.path, text)
        return stored

    def start_at_end(self) -> None:
        """Mark everything already in the file as delivered (a log whose earlier lines were
        published by other means)."""
        if not self.cursor_path.exists():
            size = self.path.stat().st_size if self.path.exists() else 0
            self._write_cursor(size)

    # -- draining -----------------------------------------------------------------------
    def claim(self) -> bool:
        """Become this outbox's only drainer (held until :meth:`release` or exit), so two
        processes do not announce the same events twice; False while another holds it."""
        if self._claim is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.with_name(f".{self.path.name}.drain.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._claim = handle
        return True

    def release(self) -> None:
        if self._claim is not None:
            fcntl.flock(self._claim, fcntl.LOCK_UN)
            self._claim.close()
            self._claim = None

    def pending(self, limit: int = 500) -> list[Pending]:
        """Up to ``limit`` undelivered events, oldest first (complete lines only; a line that
        does not decode, torn by a crash, is passed over)."""
        return [Pending(line.event, line.end) for line in self._scan(limit) if line.event]

    def pass_unreadable(self) -> int:
        """Move the cursor over unreadable lines right after it (the drainer calls this: a
        torn line followed by nothing would otherwise never be passed). Returns them."""
        passed, end = 0, None
        for item in self._scan(limit=1):
            if item.event is not None:
                break
            passed, end = passed + 1, item.end
        if end is not None:
            log.warning("stage=outbox %s passed %d unreadable lines", self.name, passed)
            self.delivered(end)
        return passed

    def _scan(self, limit: int) -> Iterator[_Line]:
        if not self.path.exists():
            return
        start = self.cursor()
        with self.path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if start > size:  # the file was replaced under the cursor: send it all again
                start = 0
            handle.seek(start)
            data = handle.read()
        end, found = start, 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                return  # still being written (or torn: the next append starts a new line)
            end += len(line)
            if not line.strip():
                continue
            event = self.decode(line)
            yield _Line(event, end)
            found += event is not None
            if found >= limit:
                return

    def delivered(self, end: int) -> None:
        """Everything up to byte ``end`` reached the broker."""
        self._write_cursor(end)
        if self.compact_bytes is not None and end >= self.compact_bytes:
            self._compact(end)

    def cursor(self) -> int:
        try:
            return int(json.loads(self.cursor_path.read_text())["offset"])
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError):
            log.warning("stage=outbox %s unreadable cursor: sending everything again", self.name)
            return 0

    def backlog(self) -> list[ModelEvent]:
        """Every undelivered event (for metrics and logs)."""
        return [p.event for p in self.pending(limit=1 << 30)]

    # -- internals ------------------------------------------------------------------------
    def _write_cursor(self, offset: int) -> None:
        self.cursor_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.cursor_path, json.dumps({"offset": offset}).encode())

    def _compact(self, end: int) -> None:
        """Empty the file once all of it was delivered. The cursor goes to 0 first: a crash
        in between re-sends delivered events (allowed) rather than skipping new ones."""
        with self._locked():
            if self.path.stat().st_size != end:
                return  # appended meanwhile: next time
            self._write_cursor(0)
            os.truncate(self.path, 0)
            with self.path.open("rb") as handle:
                os.fsync(handle.fileno())
            fsync_dir(self.path.parent)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(f".{self.path.name}.lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
