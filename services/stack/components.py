"""Finding or starting each component of the embedded stack: the broker and Redis."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import redis

from services.stack.process import ManagedProcess, free_port, port_open, spawn, stop, wait_until
from streams.errors import StackError
from streams.kafka import broker_reachable, wait_for_broker

REDIS_HELP = (
    "no Redis answered and no redis-server is on PATH. Install one "
    "(Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`; "
    "Docker: `docker run -p 6379:6379 redis:7`) or point FRAUD_REDIS_URL at a running Redis."
)


def noida_binary() -> str:
    found = shutil.which("noida-db") or str(Path(sys.executable).parent / "noida-db")
    if not Path(found).exists():
        raise StackError("the noida-db broker is not installed: run `make setup`")
    return found


def start_broker(
    bootstrap: str, data_dir: Path, log: Path, timeout_s: float = 60.0
) -> ManagedProcess:
    """Start the embedded noida-db Kafka broker on the port named by ``bootstrap``."""
    host, _, port_text = bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", ""):
        raise StackError(f"broker {bootstrap} does not answer and is not local: start it there")
    port = int(port_text)
    if port_open("127.0.0.1", port):
        raise StackError(f"port {port} is taken by something that does not speak Kafka")
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        noida_binary(),
        "start",
        "--only",
        "kafka",
        "--kafka-port",
        str(port),
        "--data-dir",
        str(data_dir.resolve()),
    ]
    process = spawn("kafka", command, f"127.0.0.1:{port}", log)
    try:
        wait_for_broker(process.address, timeout_s)
    except Exception as exc:
        stop(process)
        raise StackError(f"the embedded broker did not come up (log: {log}): {exc}") from exc
    return process


def stop_broker(process: ManagedProcess, timeout_s: float = 30.0) -> None:
    """Stop an embedded broker without losing what it acknowledged: ``noida-db stop kafka``
    saves its data first, then the process group is stopped.

    A signal alone (SIGTERM is ignored, so SIGKILL; SIGINT as well) loses what it
    acknowledged since it last saved: on noida-db 0.2.3, a producer writing flat out had
    7,000, 10,500 and 100,096 of 150,000-190,000 acknowledged records gone after the
    restart in three trials; none after this (tests/integration/test_stack.py).
    """
    command = process.command
    if "--data-dir" in command and process.alive():
        data_dir = command[command.index("--data-dir") + 1]
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                [noida_binary(), "stop", "kafka", "--data-dir", data_dir],
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
    stop(process)


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1.0).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def start_redis(data_dir: Path, log: Path, port: int | None = None) -> ManagedProcess:
    """Start ``redis-server`` from PATH (on ``port``, else a free one) with its data under
    ``data_dir``, persisted: an append-only file fsynced every second plus snapshots.

    Without persistence a restart empties Redis and every card window, terminal count and
    decision-ledger entry with it. ``everysec`` loses at most the last second of writes on
    a crash of the machine (a crash of Redis alone loses nothing: the kernel still holds
    the file).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(REDIS_HELP)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir.resolve()),
        "--save",
        "60 1000",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
    ]
    process = spawn("redis", command, f"redis://127.0.0.1:{port}/0", log)
    if not wait_until(lambda: redis_answers(process.address), 15.0):
        stop(process)
        raise StackError(f"redis-server did not answer on port {port} (log: {log})")
    return process


def describe_redis(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 6379}/{(parsed.path or '/0').lstrip('/') or '0'}"


__all__ = [
    "broker_reachable",
    "describe_redis",
    "redis_answers",
    "start_broker",
    "start_redis",
    "stop_broker",
]
