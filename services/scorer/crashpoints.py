"""A test hook: the scorer SIGKILLs itself at a named point of its batch cycle.

The fault-injection suite (``tests/faults``) needs a crash exactly between two steps of
settling a batch, which a kill from outside lands on only by chance. The points, in the
order a batch passes them:

* ``after_send`` - its decisions, review cases and dead letters are queued to the producer;
* ``after_ack`` - the broker acknowledged all of them;
* ``after_mark`` - its transactions are marked decided in the ledger;
* ``after_commit`` - its offsets are committed.

Unset (the default, and always in production) the hook is one ``is None`` test per point.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Literal

CrashPoint = Literal["after_send", "after_ack", "after_mark", "after_commit"]
CRASH_POINTS: tuple[CrashPoint, ...] = ("after_send", "after_ack", "after_mark", "after_commit")

log = logging.getLogger("fraud.scorer")


class CrashHook:
    """Kill this process the ``after``-th time the batch cycle reaches ``point``."""

    def __init__(self, point: CrashPoint | None, after: int = 1) -> None:
        self.point = point
        self.after = after
        self.reached_count = 0

    def reached(self, point: CrashPoint) -> None:
        if self.point != point:
            return
        self.reached_count += 1
        if self.reached_count >= self.after:
            log.warning("stage=crash_hook point=%s batch=%d: SIGKILL", point, self.reached_count)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)
