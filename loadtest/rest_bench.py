"""REST ``POST /v1/score`` latency at a fixed request rate, one transaction per request.

Starts the real API process (``fraudctl serve api``) and sends requests on an open-loop
schedule (request ``i`` is due at ``t0 + i / rps``) from a few keep-alive connections.
Two latencies per request: from the moment it was sent to the complete response (what the
client sees), and from the moment it was *due* (includes any wait for a free connection,
so a slow server cannot hide behind a late schedule).
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.bench_setup import BenchError, spawn_module, stop_process
from loadtest.latency import percentiles
from services.api.keys import KeyFile
from services.stack.process import free_port, wait_until
from streams.events import Transaction
from streams.serde import encode


def _get(port: int, path: str) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return 0


def _worker(
    api_key: str,
    port: int,
    jobs: queue.Queue[tuple[float, bytes] | None],
    results: list[tuple[float, float, int]],
    lock: threading.Lock,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "X-API-Key": api_key}
    while True:
        job = jobs.get()
        if job is None:
            break
        due, body = job
        sent = time.perf_counter()
        try:
            conn.request("POST", "/v1/score", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = 0
        done = time.perf_counter()
        with lock:
            results.append(((done - sent) * 1e3, (done - due) * 1e3, status))
    conn.close()


def drive(
    port: int, bodies: Sequence[bytes], rps: float, api_key: str, connections: int = 8
) -> dict[str, Any]:
    """Send ``bodies`` at ``rps`` on an open-loop schedule; latency percentiles."""
    jobs: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    workers = [
        threading.Thread(target=_worker, args=(api_key, port, jobs, results, lock), daemon=True)
        for _ in range(connections)
    ]
    for w in workers:
        w.start()
    t0 = time.perf_counter()
    for i, body in enumerate(bodies):
        due = t0 + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((due, body))
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join(120)
    elapsed = time.perf_counter() - t0
    ok = [r for r in results if r[2] == 200]
    return {
        "target_rps": rps,
        "requests": len(bodies),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "achieved_rps": round(len(results) / elapsed, 1) if elapsed else 0.0,
        "connections": connections,
        "latency": percentiles(np.array([r[0] for r in ok])),
        "latency_from_schedule": percentiles(np.array([r[1] for r in ok])),
    }


def run_rest_bench(
    env: dict[str, str],
    transactions: Sequence[Transaction],
    *,
    rps: float,
    warmup: int,
    log_path: Path,
) -> dict[str, Any]:
    """Start the API with ``env`` (``FRAUD_*``), warm it up, then drive it at ``rps``."""
    port = free_port()
    keys = log_path.with_suffix(".keys.json")
    api_key, _ = KeyFile(keys).create("rest-bench", "score")
    proc = spawn_module(
        "services.cli",
        ["serve", "api", "--port", str(port)],
        {**env, "FRAUD_API_KEYS_FILE": str(keys), "FRAUD_RATE_LIMIT_PER_S": "0"},
        log_path,
    )
    try:
        if not wait_until(lambda: _get(port, "/readyz") == 200, 90.0, 0.5):
            tail = log_path.read_text(errors="replace")[-1500:]
            raise BenchError(f"the API did not become ready on port {port}: {tail}")
        bodies = [encode(t) for t in transactions]
        drive(port, bodies[:warmup], rps=min(rps, 100.0), api_key=api_key)
        measured = drive(port, bodies[warmup:], rps=rps, api_key=api_key)
        return {"endpoint": "POST /v1/score", **measured}
    finally:
        stop_process(proc)
