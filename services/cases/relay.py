"""The label relay: outbox rows -> ``fraud.labels``, marked sent after the broker's ack.

A crash between the acknowledgement and the mark sends a label again (at least once);
the label's transaction id is its key, and a retried verdict never adds a row, so a case
has one label however often its request was retried. One relay runs per API process;
several processes on one store may each send a row once more (still at least once).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import select, update

from services.cases.metrics import LABELS_RELAYED
from services.cases.models import LabelOutbox
from services.cases.store import CaseStore
from streams.errors import FraudError
from streams.producer import AckedProducer

log = logging.getLogger("fraud.cases")


class LabelRelay:
    def __init__(
        self, store: CaseStore, producer: AckedProducer, topic: str, batch: int = 500
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.batch = batch
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_pending(self) -> int:
        """Send every unsent label (in batches); returns how many were marked sent. The
        broker is waited for outside any database transaction (a SQLite store would
        otherwise hold its write lock, and every claim, through a broker outage)."""
        sent = 0
        while True:
            with self.store.sessions() as session:
                rows = [
                    (r.outbox_id, r.transaction_id, r.payload)
                    for r in session.scalars(
                        select(LabelOutbox)
                        .where(LabelOutbox.sent_at.is_(None))
                        .order_by(LabelOutbox.outbox_id)
                        .limit(self.batch)
                    )
                ]
            if not rows:
                return sent
            for _, transaction_id, payload in rows:
                self.producer.produce(self.topic, payload.encode(), transaction_id.encode())
            self.producer.wait_acked()  # raises: nothing is marked, all is sent again
            with self.store.transaction() as session:
                session.execute(
                    update(LabelOutbox)
                    .where(LabelOutbox.outbox_id.in_([r[0] for r in rows]))
                    .values(sent_at=datetime.now(UTC))
                )
            LABELS_RELAYED.inc(len(rows))
            sent += len(rows)

    def start(self, interval_s: float = 1.0) -> None:
        """Publish in the background: every ``interval_s`` and whenever :attr:`wake` is set."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.publish_pending()
                except (FraudError, Exception) as exc:  # the broker or the store is down
                    log.warning("stage=relay labels wait for the next round: %s", exc)
                self.wake.wait(interval_s)
                self.wake.clear()

        self._thread = threading.Thread(target=loop, name="label-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
