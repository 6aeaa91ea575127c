"""The state epoch: how a writer of the real-time state knows Redis still holds it.

Redis can lose its data without an error anyone sees: a restart without persistence, a
failover to a replica that was empty, a ``FLUSHALL``. Card windows and terminal counts
then read as new, and velocity features silently drop to zero. So the state carries an
epoch: one key, ``<prefix>:epoch`` = ``<generation>:<token>``, written when the state
starts and replaced only when it is rebuilt. Every batch script checks it - inside the same
``EVALSHA`` that applies the batch, so it costs no round trip - and applies nothing when
the key differs from the epoch the store expects (:class:`features.errors.FeatureStateLost`).

On a Redis Cluster one key would live on one node, and a node that lost its data alone
(a primary lost with no replica to take over) would go unnoticed. So the epoch is also
kept once per hash slot (``<prefix>:epoch:{<tag of slot s>}``, 16,384 small keys written
with the epoch) and each node's part of a batch checks the copy in the slot of its own
first key: a copy moves with its slot when the cluster is resharded, and a node that
lost its data lost the copies of its slots.

Generations name namespaces: generation 0 keeps its keys under ``<prefix>``, generation g
under ``<prefix>:g<g>``. A rebuild writes a fresh namespace (nothing half-lost mixes in,
and readers keep the old one until the new one is whole), then publishes the next
generation's epoch; every store that meets it moves to the new namespace.

The rebuild itself (replaying ``transactions``) is the scorer's: see
``services/scorer/rebuild.py`` and ``docs/adr/0007-redis-state-epoch.md``.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import redis

from features.errors import FeatureStateLost, FeatureStoreUnavailable
from features.interface import FeatureMatrix, FeatureStats
from features.realtime.store import BatchFeatureStore
from features.redis_nodes import is_cluster, slot_of, slot_tags
from streams.events import Transaction

R = TypeVar("R")

REBUILD_LEASE_MS = 30_000
"""How long a rebuild claim lasts unless renewed: a rebuilder that died is replaced."""


@dataclass(frozen=True)
class Epoch:
    generation: int
    token: str

    @property
    def value(self) -> bytes:
        return f"{self.generation}:{self.token}".encode()

    @classmethod
    def parse(cls, raw: bytes | str | None) -> Epoch | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        generation, sep, token = text.partition(":")
        if not sep or not generation.isdigit() or not token:
            return None  # not written by us: treated as no epoch at all
        return cls(int(generation), token)

    @classmethod
    def first(cls) -> Epoch:
        return cls(0, uuid.uuid4().hex[:16])

    def successor(self, floor: int = 0) -> Epoch:
        """The epoch of a rebuild: a generation above this one and above ``floor``."""
        return Epoch(max(self.generation, floor) + 1, uuid.uuid4().hex[:16])

    def namespace(self, prefix: str) -> str:
        """The key prefix of this generation's state."""
        return prefix if self.generation == 0 else f"{prefix}:g{self.generation}"

    def __str__(self) -> str:
        return self.value.decode()


def epoch_key(prefix: str) -> str:
    return f"{prefix}:epoch"


def epoch_copy_key(key: str, slot: int) -> str:
    """The copy of the epoch held in hash slot ``slot`` of a Redis Cluster."""
    return f"{key}:{{{slot_tags()[slot]}}}"


def epoch_copy_keys(key: str) -> list[str]:
    """The copies of the epoch, slot by slot."""
    return [epoch_copy_key(key, s) for s in range(len(slot_tags()))]


def rebuild_key(prefix: str) -> str:
    return f"{prefix}:rebuild"


class EpochStore:
    """Reading, creating and publishing the epoch, and the claim on a rebuild."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.key = epoch_key(prefix)

    def read(self) -> Epoch | None:
        return Epoch.parse(self._call(lambda: self.client.get(self.key)))

    def create(self, epoch: Epoch) -> Epoch:
        """Write ``epoch`` unless one exists; the epoch in force either way."""
        self._call(lambda: self.client.set(self.key, epoch.value, nx=True))
        current = self.read()
        if current is None:  # flushed between the two calls: try once more
            self._call(lambda: self.client.set(self.key, epoch.value, nx=True))
            current = self.read()
        if current is None:
            raise FeatureStoreUnavailable(self.key, "the state epoch cannot be written")
        self._write_copies(current)
        return current

    def publish(self, epoch: Epoch) -> None:
        """A rebuilt namespace is whole: make ``epoch`` the one in force (on a cluster its
        copies first: a store that meets a new copy follows it, see the module doc)."""
        self._write_copies(epoch)
        self._call(lambda: self.client.set(self.key, epoch.value))

    def adopt_copies(self, epoch: Epoch) -> None:
        """On a cluster, write the per-slot copies of ``epoch`` if the state has none yet
        (it was started before the copies existed). The copy in the epoch key's own slot
        tells: it lives on the same node as the key, so it is missing only if it was never
        written; copies missing on another node are a lost node, left for the batch
        scripts to find."""
        if not is_cluster(self.client):
            return
        probe = epoch_copy_key(self.key, slot_of(self.key))
        if self._call(lambda: self.client.get(probe)) is None:
            self._write_copies(epoch, only_missing=True)

    def _write_copies(self, epoch: Epoch, *, only_missing: bool = False) -> None:
        if not is_cluster(self.client):
            return
        keys = epoch_copy_keys(self.key)

        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, epoch.value, nx=only_missing)
            pipe.execute()

        self._call(write)

    def holds_state(self, pages: int = 1000) -> bool:
        """Whether card state exists under the base namespace. Scans at most ``pages``
        pages of 1,000 keys; a keyspace larger than that is taken to hold some."""
        if is_cluster(self.client):  # one cursor per node: redis-py walks them in turn
            found = self._call(lambda: next(iter(self._scan_cluster(pages)), None))
            return found is not None
        cursor = 0
        for _ in range(pages):
            cursor, keys = self._call(partial(self._scan_cards, cursor))
            if keys:
                return True
            if cursor == 0:
                return False
        return True

    def _scan_cluster(self, pages: int) -> Iterator[bytes]:
        scanned = self.client.scan_iter(match=f"{self.prefix}:card2:*", count=1000)
        return itertools.islice(scanned, pages * 1000)

    def _scan_cards(self, cursor: int) -> tuple[int, list[bytes]]:
        found: tuple[int, list[bytes]] = self.client.scan(
            cursor, match=f"{self.prefix}:card2:*", count=1000
        )
        return found

    def claim_rebuild(self, owner: str) -> bool:
        """Take (or renew, when ``owner`` holds it) the claim on rebuilding the state."""
        key = rebuild_key(self.prefix)
        if self._call(lambda: self.client.set(key, owner, nx=True, px=REBUILD_LEASE_MS)):
            return True
        held = self._call(lambda: self.client.get(key))
        if held is not None and held.decode() == owner:
            self._call(lambda: self.client.pexpire(key, REBUILD_LEASE_MS))
            return True
        return False

    def release_rebuild(self, owner: str) -> None:
        key = rebuild_key(self.prefix)
        held = self._call(lambda: self.client.get(key))
        if held is not None and held.decode() == owner:
            self._call(lambda: self.client.delete(key))

    def _call(self, command: Callable[[], Any]) -> Any:
        try:
            return command()
        except (redis.RedisError, OSError) as exc:
            raise FeatureStoreUnavailable(self.key, f"{type(exc).__name__}: {exc}") from exc


class EpochFollower:
    """A feature store kept on the epoch in force, for a process that writes the state but
    never rebuilds it (the REST API).

    Without an epoch yet it looks for one every ``recheck_s``; when a batch is refused
    (:class:`FeatureStateLost`) it reads the epoch again and, if a rebuild published a
    newer one, moves there and runs the batch again. While none is in force (Redis lost
    the state and the scorers are rebuilding it) the error goes to the caller: the API
    answers 503, it never scores against a lost state.
    """

    def __init__(self, store: BatchFeatureStore, epochs: EpochStore, recheck_s: float = 10.0):
        self.store = store
        self.stats: FeatureStats = store.stats
        self.epochs = epochs
        self.recheck_s = recheck_s
        self._next_check = 0.0

    def update_batch(self, transactions: Sequence[Transaction]) -> None:
        self._call(lambda: self.store.update_batch(transactions))

    def read_batch(self, transactions: Sequence[Transaction]) -> FeatureMatrix:
        return self._call(lambda: self.store.read_batch(transactions))

    def update_and_read_batch(self, transactions: Sequence[Transaction]) -> FeatureMatrix:
        return self._call(lambda: self.store.update_and_read_batch(transactions))

    def clear_cache(self) -> None:
        self.store.clear_cache()

    def _call(self, run: Callable[[], R]) -> R:
        if not self.store.epoch and time.monotonic() >= self._next_check:
            self._catch_up()
        try:
            return run()
        except FeatureStateLost:
            if not self._catch_up():
                raise
            return run()

    def _catch_up(self) -> bool:
        """Follow the epoch in force if it is not the store's; whether it moved."""
        self._next_check = time.monotonic() + self.recheck_s
        current = self.epochs.read()
        if current is None or current.value == self.store.epoch:
            return False
        self.store.follow_epoch(
            self.epochs.key, current.value, current.namespace(self.epochs.prefix)
        )
        return True
