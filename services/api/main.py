"""Wiring the API process: settings -> feature store, champion, producer -> uvicorn."""

from __future__ import annotations

import logging
import os
import socket
import time

import redis
import uvicorn
from prometheus_client import start_http_server

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from services.allocator import tune_hot_path
from services.api.app import ApiContext, create_app
from services.api.audit import AuditLog
from services.api.auth import ApiKeys
from services.api.console_login import LoginSigner, load_secret
from services.api.contracts import LabelSubmission
from services.api.keys import KeyFile, KeyRing
from services.api.ratelimit import RateLimiter
from services.api.settings import ApiSettings
from services.cases.erasure import CaseStorePart
from services.cases.service import open_desk
from services.erasure.service import erase_customer
from services.gc_pauses import settle_collector
from services.scorer.champion import ChampionWatcher
from services.scorer.ledger import DecisionLedger
from services.scorer.model_events import ModelEventsListener
from services.scorer.pipeline import ScoringPipeline
from services.scorer.wiring import open_following_store, redis_client
from streams.kafka import Endpoint, broker_reachable, producer_config
from streams.producer import AckedProducer
from streams.serde import Decoder, transaction_decoder


class _Readiness:
    """Redis + model + broker checks, the broker's cached for a few seconds."""

    def __init__(self, client: redis.Redis, bootstrap: Endpoint, champion: ChampionWatcher) -> None:
        self._client = client
        self._bootstrap = bootstrap
        self._champion = champion
        self._broker = (0.0, False)

    def __call__(self) -> dict[str, bool]:
        try:
            redis_ok = bool(self._client.ping())
        except (redis.RedisError, OSError):
            redis_ok = False
        checked_at, broker_ok = self._broker
        if time.monotonic() - checked_at > 5.0:
            broker_ok = broker_reachable(self._bootstrap, timeout_s=1.0)
            self._broker = (time.monotonic(), broker_ok)
        return {
            "redis": redis_ok,
            "model": self._champion.current() is not None,
            "broker": broker_ok,
        }


def build_context(settings: ApiSettings) -> tuple[ApiContext, ChampionWatcher]:
    keys = ApiKeys(
        KeyRing(KeyFile(settings.keys_path)),
        RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst_s),
    )
    client = redis_client(settings)
    registry = settings.registry()
    champion = ChampionWatcher(
        registry, FEATURE_NAMES, FEATURE_SET_ID, interval_s=settings.reload_interval_s
    )
    if settings.listens_for_promotions(settings.reload_on_events):
        champion.listen(
            ModelEventsListener(
                settings.kafka(),
                settings.topics().model_events,
                champion.wake,
                member=f"api-{socket.gethostname()}-{os.getpid()}",
            )
        )
    ledger = DecisionLedger(client, settings.redis_prefix, settings.dedupe_ttl_s)
    # linger.ms 0: a request's records leave at once (its response waits for them); the
    # shared default of 1 ms batches across requests, which cost ~1 ms on every answer
    producer = AckedProducer(
        producer_config(settings.kafka(), client_id="api", defaults={"linger.ms": 0})
    )
    topics = settings.topics()
    cases = None
    if settings.cases_enabled:
        relay_producer = AckedProducer(producer_config(settings.kafka(), client_id="api-cases"))
        cases = open_desk(settings, relay_producer, topics)
    ctx = ApiContext(
        pipeline=ScoringPipeline(open_following_store(client, settings), champion.current),
        ledger=ledger,
        producer=producer,
        audit=AuditLog(
            producer,
            topics,
            ledger,
            settings.audit_delivery,
            ack_timeout_s=settings.audit_ack_timeout_s,
        ),
        topics=topics,
        registry=registry,
        keys=keys,
        current_version=lambda: champion.current().version,
        readiness=_Readiness(client, settings.kafka(), champion),
        max_request_bytes=settings.max_request_bytes,
        max_batch=settings.max_batch,
        transaction_decoder=transaction_decoder.with_bounds(settings.event_time_bounds()),
        label_decoder=Decoder(LabelSubmission, free_text=("note",)),
        metrics_public=settings.metrics_public,
        docs_public=settings.docs_public,
        erase=lambda wanted, principal: erase_customer(
            settings,
            wanted.customer_id,
            wanted.card_ids,
            requested_by=f"api:{principal.name}",
            discover_in_topics=wanted.discover,
            extra_parts=[CaseStorePart(cases.store)] if cases is not None else (),
        ).as_dict(),
        cases=cases,
        console=LoginSigner(load_secret(settings.console_secret_path), settings.console_login_s)
        if cases is not None
        else None,
        secure_cookies=settings.tls_cert_file is not None,
    )
    return ctx, champion


def main(settings: ApiSettings | None = None) -> None:
    settings = settings or ApiSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tune_hot_path(settings)
    ctx, champion = build_context(settings)
    settle_collector(settings.gc_young_threshold)
    champion.start()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    try:
        uvicorn.run(
            create_app(ctx),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            ssl_certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
            ssl_keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
        )
    finally:
        champion.stop()
