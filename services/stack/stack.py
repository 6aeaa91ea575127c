"""``stack up | down | status``: use what is reachable, start what is missing, stop only
what was started here (by PID, recorded in ``<state_dir>/stack.json``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.connections import redis_client
from services.settings import CommonSettings
from services.stack.components import (
    broker_reachable,
    redis_answers,
    start_broker,
    start_redis,
    stop_broker,
)
from services.stack.process import ManagedProcess, PidFile, stop
from streams.kafka import Endpoint, ensure_topics


@dataclass(frozen=True)
class Component:
    name: str
    address: str
    ready: bool
    started_here: bool
    pid: int | None = None


@dataclass(frozen=True)
class StackState:
    kafka: Component
    redis: Component
    topics: dict[str, str]

    @property
    def redis_url(self) -> str:
        return self.redis.address

    def env(self) -> dict[str, str]:
        """Environment a service needs to reach this stack."""
        return {"FRAUD_KAFKA_BOOTSTRAP": self.kafka.address, "FRAUD_REDIS_URL": self.redis.address}


def _pid_file(settings: CommonSettings) -> PidFile:
    return PidFile(settings.state_dir / "stack.json")


def up(settings: CommonSettings) -> StackState:
    """Make the broker and Redis reachable and create all topics (idempotent)."""
    pid_file = _pid_file(settings)
    started = {name: proc for name, proc in pid_file.read().items() if proc.alive()}

    bootstrap: Endpoint = settings.kafka()
    if "kafka" in started:
        bootstrap = started["kafka"].address
    elif not broker_reachable(bootstrap, timeout_s=3.0):
        started["kafka"] = start_broker(
            settings.kafka_bootstrap,
            settings.state_dir / "kafka",
            settings.state_dir / "logs" / "kafka.log",
        )
        bootstrap = started["kafka"].address
    pid_file.write(started)

    redis_url = settings.redis_url.get_secret_value()
    if "redis" in started and redis_answers(started["redis"].address):
        redis_url = started["redis"].address
    elif not configured_redis_answers(settings):
        started["redis"] = start_redis(
            settings.state_dir / "redis", settings.state_dir / "logs" / "redis.log"
        )
        redis_url = started["redis"].address
    pid_file.write(started)

    topics = ensure_topics(bootstrap, settings.topics())
    return StackState(
        kafka=_component("kafka", str(bootstrap), True, started),
        redis=_component("redis", redis_url, True, started),
        topics=topics,
    )


def configured_redis_answers(settings: CommonSettings) -> bool:
    """The configured Redis answers a PING, reached as the services reach it (TLS files,
    ACL user)."""
    try:
        return bool(redis_client(settings, socket_timeout=1.0).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def status(settings: CommonSettings) -> StackState:
    started = {name: proc for name, proc in _pid_file(settings).read().items() if proc.alive()}
    bootstrap = started["kafka"].address if "kafka" in started else settings.kafka()
    redis_url = (
        started["redis"].address if "redis" in started else settings.redis_url.get_secret_value()
    )
    return StackState(
        kafka=_component("kafka", str(bootstrap), broker_reachable(bootstrap, 2.0), started),
        redis=_component(
            "redis",
            redis_url,
            redis_answers(redis_url) if "redis" in started else configured_redis_answers(settings),
            started,
        ),
        topics={},
    )


def down(settings: CommonSettings) -> list[str]:
    """Stop what ``up`` started (and only that); returns the names stopped."""
    pid_file = _pid_file(settings)
    stopped = []
    for name, process in pid_file.read().items():
        if process.alive():
            if name == "kafka":
                stop_broker(process)  # saves what it acknowledged first
            else:
                stop(process)
            stopped.append(name)
    pid_file.write({})
    return stopped


def _component(
    name: str, address: str, ready: bool, started: dict[str, ManagedProcess]
) -> Component:
    proc = started.get(name)
    return Component(name, address, ready, proc is not None, proc.pid if proc else None)
