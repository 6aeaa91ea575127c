"""What an idle consumer costs on a broker: fetch requests per second and client CPU.

A consumer with the project's settings (``streams.kafka.consumer_config``) subscribes to an
empty topic and polls as an idle scorer does (``next_batch(consumer, 500, 5 ms)``). A
broker that honours a fetch's ``MaxWaitTime`` (Apache Kafka: ``fetch.wait.max.ms``)
answers an empty fetch after that wait, so the client sends at most a few hundred
requests a second and stays near 0 % CPU; a broker that answers at once makes librdkafka
fetch in a tight loop. The embedded broker (noida-db) is the second kind: this probe is
how that was measured.

    python -m loadtest.fetch_probe --bootstrap 127.0.0.1:19092 [--seconds 5] [--out f.json]

Prints the numbers and writes JSON; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from loadtest.procstats import process_cpu_s
from streams.consume import next_batch
from streams.kafka import consumer_config


def probe_idle_fetch(
    bootstrap: str, *, partitions: int = 12, warmup_s: float = 3.0, seconds: float = 5.0
) -> dict[str, Any]:
    """Requests/s to the broker and this process's CPU share while polling an empty topic."""
    topic = f"fetch-probe-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    sent: list[int] = []
    rtt_us: list[float] = []

    def on_stats(raw: str) -> None:
        for broker in json.loads(raw)["brokers"].values():
            if broker["nodeid"] >= 0:
                sent.append(int(broker["tx"]))
                rtt_us.append(float(broker["rtt"]["avg"]))

    config = consumer_config(bootstrap, group_id=f"{topic}-group", client_id="fetch-probe")
    config.update({"statistics.interval.ms": 500, "stats_cb": on_stats})
    consumer = Consumer(config)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + warmup_s
        while time.monotonic() < deadline:
            next_batch(consumer, 500, 0.005)
        before, cpu0, t0 = len(sent), process_cpu_s(), time.monotonic()
        sent_at_start = sent[-1] if sent else 0
        while time.monotonic() - t0 < seconds:
            next_batch(consumer, 500, 0.005)
        wall = time.monotonic() - t0
        cpu = process_cpu_s() - cpu0
    finally:
        consumer.close()
        admin.delete_topics([topic])
    reports = sent[before:]
    return {
        "bootstrap": bootstrap,
        "partitions": partitions,
        "seconds": round(wall, 2),
        "requests_per_s": round((reports[-1] - sent_at_start) / wall, 1) if reports else None,
        "avg_rtt_us": round(rtt_us[-1], 1) if rtt_us else None,
        "client_cpu_pct": round(100 * cpu / wall, 1),
        "fetch_wait_max_ms": config["fetch.wait.max.ms"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = probe_idle_fetch(args.bootstrap, seconds=args.seconds)
    print(
        f"idle consumer on {result['partitions']} empty partitions: "
        f"{result['requests_per_s']} requests/s to the broker (avg rtt {result['avg_rtt_us']} us, "
        f"fetch.wait.max.ms={result['fetch_wait_max_ms']}), client CPU {result['client_cpu_pct']} %"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":  # pragma: no cover - a measurement tool
    main()
