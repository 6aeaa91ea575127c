"""The REST user: ``POST /v1/score`` with one simulated transaction and the API key.

Run it with ``--host http://api:8000`` and ``--api-key`` (``FRAUD_LOADTEST_API_KEY``); a
response counts as a success only when it is a 200 carrying the decision of the
transaction that was sent.
"""

from __future__ import annotations

from typing import Any

import msgspec
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from loadtest import runtime
from streams.serde import encode


class _Decisions(msgspec.Struct):
    decisions: list[dict[str, Any]]


_decode = msgspec.json.Decoder(_Decisions).decode


class HttpScoreUser(FastHttpUser):
    host = "http://127.0.0.1:8000"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._pacer: runtime.Pacer | None = None
        self._headers: dict[str, str] = {}

    def on_start(self) -> None:
        options = runtime.current().options
        self._pacer = runtime.Pacer(options.user_rate)
        self._headers = {
            "X-API-Key": options.api_key.get_secret_value(),
            "Content-Type": "application/json",
        }

    def wait_time(self) -> float:
        return self._pacer.wait() if self._pacer is not None else 0.0

    @task
    def score(self) -> None:
        tx = runtime.current().feed.next()
        with self.client.post(
            "/v1/score", data=encode(tx).decode(), headers=self._headers, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                decisions = _decode(response.content or b"").decisions
            except msgspec.DecodeError as exc:
                response.failure(f"undecodable response: {exc}")
                return
            if [d.get("transaction_id") for d in decisions] != [tx.transaction_id]:
                response.failure("response does not carry the decision of the transaction sent")
            else:
                response.success()
