"""A test hook: the scorer SIGKILLs itself at a named point of its batch cycle.

The fault-injection suite (``tests/faults``) needs a crash exactly between two steps of
settling a batch, which a kill from outside lands on only by chance. The points, in the
order a batch passes them:

* ``after_send`` - its decisions and dead letters are queued to the producer;
* ``before_cases`` - its reasons are computed, its review cases not yet queued (batches
  with review cases only; the hook first flushes the producer, so the decisions are in
  the log without their cases);
* ``after_ack`` - the broker acknowledged all of them;
* ``after_mark`` - its transactions are marked decided in the ledger;
* ``after_commit`` - its offsets are committed.

Unset (the default, and always in production) the hook is one ``is None`` test per point.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import Literal

CrashPoint = Literal["after_send", "before_cases", "after_ack", "after_mark", "after_commit"]
CRASH_POINTS: tuple[CrashPoint, ...] = (
    "after_send",
    "before_cases",
    "after_ack",
    "after_mark",
    "after_commit",
)

log = logging.getLogger("fraud.scorer")


class CrashHook:
    """Kill this process the ``after``-th time the batch cycle reaches ``point``."""

    def __init__(self, point: CrashPoint | None, after: int = 1) -> None:
        self.point = point
        self.after = after
        self.reached_count = 0

    def reached(self, point: CrashPoint, prepare: Callable[[], object] | None = None) -> None:
        """``prepare`` runs just before the kill (e.g. to make a window certain)."""
        if self.point != point:
            return
        self.reached_count += 1
        if self.reached_count >= self.after:
            if prepare is not None:
                prepare()
            log.warning("stage=crash_hook point=%s batch=%d: SIGKILL", point, self.reached_count)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)
