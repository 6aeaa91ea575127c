"""Fixtures of the fault cases: a broker of the case's own, which it may stop and restart.

A case that stops a broker never touches the session's shared one: it starts a noida-db
broker on a free loopback port with its own data folder, and restarts it on the same
folder (the data a real restart would find).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.stack.components import start_broker
from services.stack.process import ManagedProcess, free_port, port_open, stop


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
        """Stop it (its whole process group); the outage starts now."""
        self.outages.append((time.monotonic(), None))
        if self.process is not None:
            stop(self.process)
            self.process = None


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(f"127.0.0.1:{free_port()}", tmp_path / "broker", tmp_path / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        if broker.process is not None:
            stop(broker.process)
