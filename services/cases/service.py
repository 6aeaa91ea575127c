"""Wiring of the case ingester: settings -> store (migrated), consumer, producer -> loop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from confluent_kafka import Consumer
from prometheus_client import start_http_server

from services.cases.desk import CaseDesk
from services.cases.ingester import CaseIngester, IngestCounts, default_instance_id
from services.cases.metrics import watch_queue
from services.cases.relay import LabelRelay
from services.cases.settings import CaseIngestSettings, CaseStoreSettings
from services.cases.store import CaseStore
from services.cases.workflow import Workflow
from streams.kafka import consumer_config, producer_config
from streams.producer import AckedProducer
from streams.topics import Topics

log = logging.getLogger("fraud.cases")


def open_store(settings: CaseStoreSettings) -> CaseStore:
    """The configured case store, its schema migrated to the newest version."""
    store = CaseStore.open(
        settings.cases_url(),
        lease_s=settings.case_lease_s,
        approval_amount=settings.case_approval_amount,
        sla_s=settings.case_sla_s,
        history_per_card=settings.case_history_per_card,
    )
    store.migrate()
    return store


def open_desk(settings: CaseStoreSettings, producer: AckedProducer, topics: Topics) -> CaseDesk:
    """The API's case desk: the migrated store, its workflow, the label relay."""
    store = open_store(settings)
    watch_queue(store.stats)
    relay = LabelRelay(store, producer, topics.labels)
    return CaseDesk(store, Workflow(store), relay)


def build_ingester(settings: CaseIngestSettings, store: CaseStore) -> CaseIngester:
    consumer = Consumer(
        consumer_config(
            settings.kafka(),
            group_id=settings.cases_group(),
            client_id="cases",
            instance_id=settings.case_instance_id or default_instance_id(),
            assignment_strategy=settings.kafka_assignment_strategy,
        )
    )
    producer = AckedProducer(producer_config(settings.kafka(), client_id="cases"))
    return CaseIngester(
        consumer, producer, store, settings.topics(), batch_max=settings.case_batch_max
    )


def main(settings: CaseIngestSettings, idle_exit_s: float | None = None) -> IngestCounts:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    store = open_store(settings)
    if settings.cases_metrics_port:
        watch_queue(store.stats)
        start_http_server(settings.cases_metrics_port)
    ingester = build_ingester(settings, store)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop)
    log.info("stage=start group=%s store=%s", settings.cases_group(), store.dialect)
    try:
        return ingester.run(stop, idle_exit_s)
    finally:
        ingester.close()
        store.close()
        log.info("stage=stop %s", ingester.counts)
