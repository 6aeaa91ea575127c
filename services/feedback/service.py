"""The feedback processor process: settings -> training store + risk writer -> faust worker.

Runs one faust worker (``faust.Worker``) in this process; SIGTERM / SIGINT stop it
gracefully (acked offsets committed). Scale out by starting more processes with the same
settings: they share the faust app id (consumer group) and split the internal partitions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faust

from features.training_store import TrainingStore
from services.connections import redis_client
from services.feedback.settings import FeedbackSettings
from services.feedback.sink import FeedbackSink, RiskUpdater
from services.storage_metrics import quarantined_part
from streams.feedback.app import build_app
from streams.feedback.rewind import rewind_committed
from streams.kafka import ensure_topics, wait_for_broker

log = logging.getLogger("fraud.feedback")


def build_risk_updater(settings: FeedbackSettings) -> RiskUpdater:
    from features.profiles.layout import FeastLayout
    from features.profiles.writer import TerminalRiskWriter

    client = redis_client(settings)
    return TerminalRiskWriter(
        client,
        FeastLayout(project=settings.feast_project),
        state_prefix=settings.redis_prefix,
        delay_days=settings.label_delay_days,
    )


def build_worker(settings: FeedbackSettings) -> tuple[faust.Worker, FeedbackSink]:
    wait_for_broker(settings.kafka())
    ensure_topics(
        settings.kafka(),
        settings.topics(),
        only=("transactions.scored", "fraud.labels", "transactions.dlq"),
    )
    config = settings.app_config()
    if config.datadir:  # faust expects its data folder to exist
        Path(config.datadir).mkdir(parents=True, exist_ok=True)
    rewind_committed(
        settings.kafka(),
        config.app_id,
        config.source_topics,
        settings.restart_replay,
        instance_id=config.instance_id,
    )
    risk = build_risk_updater(settings) if settings.risk_updates else None
    store = TrainingStore(
        settings.training_root,
        on_quarantine=quarantined_part,
        endpoint_url=settings.s3_endpoint_url,
    )
    sink = FeedbackSink(store, risk)
    app, _join = build_app(config, sink)
    worker = faust.Worker(app, loglevel="INFO", quiet=True, override_logging=False)
    return worker, sink


def main(settings: FeedbackSettings | None = None) -> None:
    settings = settings or FeedbackSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker, sink = build_worker(settings)
    if settings.metrics_port:
        from prometheus_client import REGISTRY, start_http_server

        from services.feedback.metrics import FeedbackCollector

        REGISTRY.register(FeedbackCollector(getattr(worker.app, "feedback_counters", None)))
        start_http_server(settings.metrics_port)
    log.info(
        "stage=start app=%s training=%s risk=%s",
        settings.app_config().app_id,
        settings.training_root,
        settings.risk_updates,
    )
    try:
        worker.execute_from_commandline()
    finally:
        sink.stop()
        worker.app.feedback_offload.close()  # type: ignore[attr-defined]
        counters = getattr(worker.app, "feedback_counters", None)
        log.info("stage=stop stream=%s sink=%s", counters, sink.counters)
