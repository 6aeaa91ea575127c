"""Each fault visible while it lasts: a gauge, a counter, and one log line when it begins
and one when it ends.

Faults (the label of ``fraud_fault_active`` and ``fraud_faults_total``, and the word in
the log lines ``stage=fault fault=<name> state=begin|end``):

* ``broker`` - writes not acknowledged: the broker is down, restarting or refusing;
* ``redis`` - the feature store or the decision ledger cannot be reached;
* ``state_lost`` - Redis lost its data (the state epoch changed); lasts while the state is
  rebuilt from ``transactions``;
* ``group`` - the consumer lost its group membership (fenced, dropped past
  ``max.poll.interval.ms``, partitions lost) and is rejoining;
* ``refused`` - the broker refuses the scorer's writes for good (topic gone, not
  authorised, a fatal producer error): the scorer stops with the reason.

The alert rules in ``deploy/prometheus/alerts.yml`` fire on these series.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from services.scorer.metrics import FAULT_ACTIVE as ACTIVE
from services.scorer.metrics import FAULTS_BEGUN as BEGUN

Fault = Literal["broker", "redis", "state_lost", "group", "refused"]
FAULTS: tuple[Fault, ...] = ("broker", "redis", "state_lost", "group", "refused")

for _fault in FAULTS:  # every series exists from the start, at 0
    ACTIVE.labels(_fault).set(0)
    BEGUN.labels(_fault)

log = logging.getLogger("fraud.scorer")


class FaultState:
    """Which faults are on now, since when; logs the edges, not every retry."""

    def __init__(self) -> None:
        self.since: dict[Fault, float] = {}

    def begin(self, fault: Fault, detail: str) -> None:
        if fault in self.since:
            return
        self.since[fault] = time.monotonic()
        ACTIVE.labels(fault).set(1)
        BEGUN.labels(fault).inc()
        log.warning("stage=fault fault=%s state=begin %s", fault, detail)

    def end(self, fault: Fault, detail: str = "") -> None:
        started = self.since.pop(fault, None)
        if started is None:
            return
        ACTIVE.labels(fault).set(0)
        log.warning(
            "stage=fault fault=%s state=end after_s=%.1f %s",
            fault,
            time.monotonic() - started,
            detail,
        )

    def active(self, fault: Fault) -> bool:
        return fault in self.since
