"""The scorer's side of the state epoch: under which epoch it writes, how it tells that
Redis lost the state, and the rebuild that follows (docs/adr/0007-redis-state-epoch.md).

At start the scorer reads the epoch. None and no committed offsets: a first run, so it
creates generation 0. None while the group has committed offsets, or an epoch that is not
the one the last commits were made under (each commit carries its epoch as metadata): the
state is gone and the scorer rebuilds it before it decides anything.

While running, every batch script checks the epoch (:mod:`features.realtime.epoch`). A
refused batch means either another scorer rebuilt the state (a higher generation: follow
it) or Redis lost it: the ``state_lost`` fault begins, one scorer claims the rebuild and
replays ``transactions`` into the next generation's namespace (:mod:`.rebuild`) while the
others wait, all of them keeping their group membership. No batch is scored until the new
epoch is published; then the refused batch is scored again against the rebuilt state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from confluent_kafka import TopicPartition

from features.errors import FeatureStateLost, FeatureStoreUnavailable
from features.realtime.epoch import Epoch, EpochStore
from features.realtime.store import BatchFeatureStore
from services.scorer import metrics
from services.scorer.faults import FaultState
from services.scorer.rebuild import RebuildReport

log = logging.getLogger("fraud.scorer")
R = TypeVar("R")

Rebuild = Callable[[str, Callable[[int], None]], RebuildReport]
"""Replay ``transactions`` into the namespace given; calls back with the count applied."""


class StateGuard:
    def __init__(
        self,
        epochs: EpochStore,
        features: BatchFeatureStore,
        faults: FaultState,
        rebuild: Rebuild,
        owner: str,
    ) -> None:
        self.epochs = epochs
        self.features = features
        self.faults = faults
        self.rebuild = rebuild
        self.owner = owner
        self.epoch: Epoch | None = None

    @property
    def metadata(self) -> str:
        """What each offset commit carries: the epoch its work was written under."""
        return str(self.epoch) if self.epoch is not None else ""

    def start(self, committed: Sequence[TopicPartition]) -> None:
        """Settle the epoch before the first batch (``committed``: the group's committed
        offsets of ``transactions``, with their metadata)."""
        current = self._retry(self.epochs.read, _Pause(lambda: None))
        marks = [m for m in (Epoch.parse(tp.metadata) for tp in committed) if m is not None]
        progressed = any(tp.offset >= 0 for tp in committed)
        if current is None and (not progressed or (not marks and self._legacy_state())):
            self._follow(
                self._retry(lambda: self.epochs.create(Epoch.first()), _Pause(lambda: None))
            )
            log.info(
                "stage=state epoch %s created (%s)",
                self.epoch,
                "first run" if not progressed else "state kept from before epochs",
            )
            return
        if current is not None and not any(
            m.generation >= current.generation and m != current for m in marks
        ):
            self._retry(lambda: self.epochs.adopt_copies(current), _Pause(lambda: None))
            self._follow(current)
            return
        floor = max([m.generation for m in marks] + [current.generation if current else 0])
        self.epoch = Epoch(floor, "unknown")
        found = current.value if current is not None else None
        self.recover(FeatureStateLost(self.epochs.key, self.epoch.value, found), lambda: None)

    def _legacy_state(self) -> bool:
        """Commits without epochs (a deployment from before them) over a Redis that holds
        card state: adopt it rather than rebuild."""
        return bool(self._retry(self.epochs.holds_state, _Pause(lambda: None)))

    def recover(self, lost: FeatureStateLost, keep_alive: Callable[[], None]) -> None:
        """A batch script refused: follow a newer epoch, or rebuild the state."""
        assert self.epoch is not None
        found = Epoch.parse(lost.found)
        if found is not None and found.generation > self.epoch.generation:
            log.info("stage=state moving to epoch %s (rebuilt elsewhere)", found)
            self._follow(found)
            return
        self.faults.begin(
            "state_lost",
            f"Redis lost the real-time state: epoch {found or 'missing'}, expected {self.epoch}",
        )
        target = self.epoch.successor(floor=found.generation if found else 0)
        pause = _Pause(keep_alive)
        while True:
            current = self._retry(self.epochs.read, pause)
            if current is not None and current.generation > self.epoch.generation:
                self._follow(current)  # another scorer rebuilt it
                break
            claimed = self._retry(lambda: self.epochs.claim_rebuild(self.owner), pause)
            if claimed and self._rebuild_into(target, keep_alive):
                break
            pause()
        self.faults.end("state_lost", f"epoch {self.epoch}")

    def _rebuild_into(self, target: Epoch, keep_alive: Callable[[], None]) -> bool:
        namespace = target.namespace(self.epochs.prefix)
        log.warning("stage=state rebuilding into %s (epoch %s)", namespace, target)
        outcome: list[RebuildReport | BaseException] = []

        def renew(applied: int) -> None:
            self.epochs.claim_rebuild(self.owner)

        def work() -> None:
            try:
                outcome.append(self.rebuild(namespace, renew))
            except BaseException as exc:  # reported on the scorer's thread
                outcome.append(exc)

        worker = threading.Thread(target=work, name="state-rebuild", daemon=True)
        worker.start()
        while worker.is_alive():
            keep_alive()
            worker.join(0.1)
        result = outcome[0] if outcome else RuntimeError("the rebuild thread died")
        if isinstance(result, BaseException):
            metrics.STATE_REBUILDS.labels("failed").inc()
            log.warning("stage=state rebuild failed, will try again: %s", result)
            return False
        self._retry(lambda: self.epochs.publish(target), _Pause(keep_alive))
        self._retry(lambda: self.epochs.release_rebuild(self.owner), _Pause(keep_alive))
        self._follow(target)
        metrics.STATE_REBUILDS.labels("complete" if result.complete else "partial").inc()
        metrics.STATE_REBUILD_TRANSACTIONS.set(result.transactions)
        log.warning(
            "stage=state rebuilt epoch %s from %d transactions of %d partitions in %.1fs%s",
            target,
            result.transactions,
            result.partitions,
            result.seconds,
            ""
            if result.complete
            else " (INCOMPLETE: retention dropped history the features reach back to)",
        )
        return True

    def _follow(self, epoch: Epoch) -> None:
        self.epoch = epoch
        self.features.follow_epoch(
            self.epochs.key, epoch.value, epoch.namespace(self.epochs.prefix)
        )
        metrics.STATE_GENERATION.set(epoch.generation)

    def _retry(self, call: Callable[[], R], pause: Callable[[], None]) -> R:
        """``call`` until Redis answers (the ``redis`` fault while it does not)."""
        while True:
            try:
                result = call()
            except FeatureStoreUnavailable as exc:
                self.faults.begin("redis", exc.detail)
                pause()
                continue
            self.faults.end("redis")
            return result


class _Pause:
    """Half a second of waiting that keeps the group membership alive."""

    def __init__(self, keep_alive: Callable[[], None]) -> None:
        self.keep_alive = keep_alive

    def __call__(self) -> None:
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            self.keep_alive()
            time.sleep(0.05)
