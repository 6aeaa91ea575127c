"""Helpers of the learning-loop fault cases (feedback processor, retrainer).

A case that stops a broker never touches the session's shared one: :func:`own_broker`
starts a noida-db broker on a free loopback port with its own data folder, which the case
may stop and restart on the same folder (the data a real restart would find).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer

from services.stack.components import start_broker, stop_broker
from services.stack.process import ManagedProcess, free_port, port_open
from streams.events import ModelEvent
from streams.kafka import consumer_config
from streams.serde import model_event_decoder


@dataclass
class OwnBroker:
    address: str
    data_dir: Path
    log: Path
    process: ManagedProcess | None = None
    outages: list[tuple[float, float | None]] = field(default_factory=list)

    def start(self) -> None:
        deadline = time.monotonic() + 30
        while port_open("127.0.0.1", int(self.address.rsplit(":", 1)[1])):
            if time.monotonic() > deadline:  # the stopped one still holds the port
                raise RuntimeError(f"port of {self.address} still taken after the stop")
            time.sleep(0.2)
        self.process = start_broker(self.address, self.data_dir, self.log)
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], time.monotonic())

    def stop(self) -> None:
        """Stop it as an operator would (saving what it acknowledged, see
        :func:`stop_broker`); the outage starts now."""
        self.outages.append((time.monotonic(), None))
        if self.process is not None:
            stop_broker(self.process)
            self.process = None


@contextmanager
def own_broker(folder: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(f"127.0.0.1:{free_port()}", folder / "broker", folder / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        if broker.process is not None:
            stop_broker(broker.process)


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, log: Callable[[], str]
) -> float:
    """Poll ``check``; returns the seconds it took, or fails naming ``what`` with the end of
    the process log (a stalled service says why only there)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"{what} not seen in {timeout_s:.0f}s; end of the log:\n{log()[-6000:]}")


def scrape(port: int, name: str, labels: str = "") -> float | None:
    """One sample of a process's /metrics (None when absent or not answering)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def model_events(bootstrap: str, topic: str, idle_s: float = 3.0) -> list[ModelEvent]:
    """Everything on ``topic`` (read from the start until ``idle_s`` of silence)."""
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"read-{uuid.uuid4().hex}", client_id="fault-case")
    )
    consumer.subscribe([topic])
    out: list[ModelEvent] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < idle_s:
            for message in consumer.consume(100, 0.5):
                if message.error() is None:
                    event = model_event_decoder.decode(message.value())
                    assert isinstance(event, ModelEvent), event
                    out.append(event)
                    quiet_since = time.monotonic()
    finally:
        consumer.close()
    return out
