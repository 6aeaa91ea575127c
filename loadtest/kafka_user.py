"""The Kafka user: sends simulated transactions to ``transactions`` at ``--user-rate``/s.

Its results are not per user: the process's one decision reader matches decisions to
sends and reports ``kafka / e2e decision`` (produce -> decision readable) and
``kafka / produce ack`` (produce -> broker acknowledgement) to Locust.
"""

from __future__ import annotations

from typing import Any

from locust import User, task
from locust.exception import StopUser

from loadtest import runtime


class KafkaTransactionUser(User):
    """A producer of card transactions (the scorer's real input path)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._pacer: runtime.Pacer | None = None

    def on_start(self) -> None:
        self._pacer = runtime.Pacer(runtime.current().options.user_rate)

    def wait_time(self) -> float:
        return self._pacer.wait() if self._pacer is not None else 0.0

    @task
    def send_transaction(self) -> None:
        kafka = runtime.current().kafka
        if kafka is None:  # the Kafka side did not start (logged); the run is quitting
            raise StopUser()
        kafka.send()
