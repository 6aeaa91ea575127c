"""``stack up | down | status``: use what is reachable, start what is missing, stop only
what was started here (by PID, recorded in ``<state_dir>/stack.json``).

Only the embedded default is started: a broker or Redis named by the settings
(``FRAUD_KAFKA_BOOTSTRAP``, ``FRAUD_REDIS_URL``) that does not answer is an error, never
silently replaced by a local one that would hold production's data on one machine."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.connections import redis_client
from services.settings import CommonSettings
from services.stack.components import (
    broker_reachable,
    describe_redis,
    redis_answers,
    start_broker,
    start_redis,
    stop_broker,
)
from services.stack.process import ManagedProcess, PidFile, stop, wait_until
from streams.errors import StackError
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


def up(
    settings: CommonSettings,
    start_missing: bool | None = None,
) -> StackState:
    """Make the broker and Redis reachable and create all topics (idempotent).

    A broker or Redis that is not there is started when ``start_missing``, by default
    only when the settings left its address at the embedded default; otherwise one silent
    for ``stack_wait_s`` (a container still starting) is a :class:`StackError`."""
    configured_wait_s = settings.stack_wait_s
    addresses = {"kafka_bootstrap", "redis_url"}
    if start_missing is None:
        configured = addresses & settings.model_fields_set
    else:
        configured = set() if start_missing else addresses
    pid_file = _pid_file(settings)
    started = {name: proc for name, proc in pid_file.read().items() if proc.alive()}

    bootstrap: Endpoint = settings.kafka()
    if "kafka" in started:
        bootstrap = started["kafka"].address
    elif "kafka_bootstrap" in configured:
        if not broker_reachable(bootstrap, timeout_s=configured_wait_s):
            raise StackError(
                f"the configured broker FRAUD_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} did "
                f"not answer within {configured_wait_s:.0f} s; start it (or unset the "
                "variable to use the embedded broker)"
            )
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
    elif "redis_url" in configured:
        if not wait_until(lambda: configured_redis_answers(settings), configured_wait_s):
            raise StackError(
                f"the configured Redis FRAUD_REDIS_URL ({describe_redis(redis_url)}) did not "
                f"answer within {configured_wait_s:.0f} s; start it (or unset the variable "
                "to use the machine's Redis or one started here)"
            )
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
