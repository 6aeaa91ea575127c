"""Locust load test of the fraud scorer against its latency SLA.

    locust -f loadtest/locustfile.py                      # web UI on :8089
    locust -f loadtest/locustfile.py --headless -u 4 --user-rate 50 -t 60s --sla-p99-ms 50
    locust -f loadtest/locustfile.py HttpScoreUser --host http://127.0.0.1:8000 --api-key K
    fraudctl loadtest --rate 200 --duration 60 --sla-p99-ms 50   # the same, fewer flags

Users: :class:`KafkaTransactionUser` (the default when no class is named) sends simulated
transactions to ``transactions``; Locust then shows ``kafka / e2e decision`` (produce ->
decision readable on ``transactions.scored``, failures = no decision within
``--decision-timeout-s``) and ``kafka / produce ack``. :class:`HttpScoreUser` calls
``POST /v1/score``. Load shape: ``--shape constant | step | spike``.

SLA: ``--sla-p95-ms``, ``--sla-p99-ms``, ``--sla-max-fail-ratio``, ``--sla-min-rps`` (or
``FRAUD_SLA_*``). At the end of a run the verdict is printed as one line plus a
per-percentile table; a headless run exits 0 when the SLA is met, 1 when it is missed and
2 when it could not start (no broker, no topic).
Broker and topics come from ``FRAUD_KAFKA_BOOTSTRAP`` and ``FRAUD_TOPIC_PREFIX``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from loadtest import runtime
from loadtest.http_user import HttpScoreUser
from loadtest.kafka_user import KafkaTransactionUser
from loadtest.options import add_arguments, sla_thresholds
from loadtest.shapes import ProfileShape
from loadtest.sla import evaluate_run
from streams.errors import FraudError

__all__ = ["HttpScoreUser", "KafkaTransactionUser", "ProfileShape"]
log = logging.getLogger("fraud.loadtest")


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if not environment.parsed_options.user_classes:  # no class named: the Kafka path only
        environment.user_classes = [KafkaTransactionUser]


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    try:
        runtime.start(environment, with_kafka=KafkaTransactionUser in environment.user_classes)
    except FraudError as exc:  # no broker, no topic: nothing to measure, stop at once
        log.error("cannot start the load test: %s", exc)
        environment.process_exit_code = 2
        gevent.spawn(environment.runner.quit)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        runtime.finish()  # before any verdict: every sent transaction gets its outcome
    if not environment.parsed_options.headless and not isinstance(environment.runner, WorkerRunner):
        _report(environment)  # web UI: a verdict per test; the exit code is left alone


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    startable = environment.process_exit_code != 2
    if startable and options.headless and not isinstance(environment.runner, WorkerRunner):
        environment.process_exit_code = 0 if _report(environment) else 1
        if options.csv_prefix:  # let Locust's CSV writer take one more (final) snapshot
            gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
    runtime.close()


def _report(environment: Any) -> bool:
    """Print the verdict (one line + table per SLA request); write it as JSON if asked."""
    sla = sla_thresholds(environment.parsed_options)
    verdicts = evaluate_run(environment.runner.stats.entries.values(), sla)
    for verdict in verdicts:
        print(verdict.line(), flush=True)
        if verdict.requests:
            print(verdict.table(), flush=True)
    passed = all(v.passed for v in verdicts)
    path = environment.parsed_options.sla_report
    if not path and environment.parsed_options.csv_prefix:
        path = f"{environment.parsed_options.csv_prefix}_sla.json"
    if path:
        body: dict[str, Any] = {"passed": passed, "verdicts": [v.as_dict() for v in verdicts]}
        try:
            kafka = runtime.current().kafka
        except RuntimeError:
            kafka = None
        if kafka is not None:
            body["kafka"] = vars(kafka.tracker.counts) | {"run_id": kafka.feed.run_id}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(body, indent=2) + "\n")
    return passed
