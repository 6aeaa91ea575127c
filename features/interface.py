"""The narrow interfaces the scorer calls: a feature store and a profile reader.

``FeatureStore.update_and_read_batch(transactions)`` is the hot path: one round trip that
applies a batch to the real-time state and returns every feature of every transaction as
of just before it, in :data:`features.definitions.FEATURE_NAMES` order. Implementations:
:class:`features.realtime.RedisFeatureStore` (production) and
:class:`features.realtime.InMemoryFeatureStore` (unit tests, same semantics); both pass
the same contract tests.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from features.definitions import FEATURE_NAMES, PROFILE_FEATURE_NAMES, PROFILE_FEATURES
from streams.events import Transaction


class RowFlag(enum.IntFlag):
    """Per-row facts the scorer may log or export (bits of ``FeatureMatrix.flags``)."""

    NONE = 0
    NEW_CARD = 1
    DUPLICATE = 2
    """The transaction was already applied (a replay): state unchanged, same features."""
    TOO_LATE = 4
    """Older than the allowed lateness for its card: scored but not applied."""
    TERMINAL_LATE = 8
    """Applied to its card but too late for its terminal's day buckets."""
    CLIPPED = 16
    """At least one value was non-finite or out of range and was replaced or clipped."""


@dataclass(frozen=True)
class FeatureMatrix:
    """Features of one batch: ``values[i]`` belongs to the i-th transaction given."""

    values: npt.NDArray[np.float32]
    names: tuple[str, ...] = FEATURE_NAMES
    flags: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))
    raw: npt.NDArray[np.float64] | None = None
    """The same values before the float32 cast (after clipping), for parity checks."""

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> npt.NDArray[np.float32]:
        return self.values[:, self.names.index(name)]


@dataclass
class FeatureStats:
    """Running counters a scorer exports (e.g. as Prometheus counters)."""

    transactions: int = 0
    duplicates: int = 0
    too_late: int = 0
    terminal_late: int = 0
    clipped_values: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@runtime_checkable
class FeatureStore(Protocol):
    stats: FeatureStats

    def update_batch(self, transactions: Sequence[Transaction]) -> None: ...

    def read_batch(self, transactions: Sequence[Transaction]) -> FeatureMatrix: ...

    def update_and_read_batch(self, transactions: Sequence[Transaction]) -> FeatureMatrix: ...

    def clear_cache(self) -> None:
        """Forget process-local state of entities (e.g. partitions were revoked)."""


@runtime_checkable
class ProfileReader(Protocol):
    """Reads the profile features (terminal label risk) of a batch of terminals.

    Returns ``float32 [n, len(PROFILE_FEATURE_NAMES)]`` in the order of the profile
    definitions, as of each row's ``as_of_us`` (int64 microseconds since the epoch, UTC:
    the unit of every time in the feature layer); defaults where unknown.
    """

    def read_batch(
        self, terminal_ids: Sequence[str], as_of_us: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]: ...


PendingProfiles = Callable[[], npt.NDArray[np.float32]]


def start_profile_read(
    reader: ProfileReader, terminal_ids: Sequence[str], as_of_us: npt.NDArray[np.int64]
) -> PendingProfiles:
    """Start reading a batch's profiles; the returned function waits for and returns them.

    A reader with ``start_batch`` (the direct Feast-layout reader) sends its request now, so
    Redis answers it while the caller plans the batch; any other reader reads when asked.
    """
    start = getattr(reader, "start_batch", None)
    if start is not None:
        pending: PendingProfiles = start(terminal_ids, as_of_us)
        return pending
    return lambda: reader.read_batch(terminal_ids, as_of_us)


PROFILE_DEFAULTS = np.array([f.default for f in PROFILE_FEATURES], dtype=np.float32)


class DefaultProfileReader:
    """A profile reader that knows nothing: every row gets the definitions' defaults."""

    names: tuple[str, ...] = PROFILE_FEATURE_NAMES

    def read_batch(
        self, terminal_ids: Sequence[str], as_of_us: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        return np.tile(PROFILE_DEFAULTS, (len(terminal_ids), 1))


class InMemoryProfileReader:
    """Profiles held in a dict ``terminal_id -> row`` (unit tests); defaults otherwise."""

    def __init__(self, rows: dict[str, Sequence[float]] | None = None) -> None:
        self.rows = {k: np.asarray(v, dtype=np.float32) for k, v in (rows or {}).items()}

    def read_batch(
        self, terminal_ids: Sequence[str], as_of_us: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        out = np.tile(PROFILE_DEFAULTS, (len(terminal_ids), 1))
        for i, t in enumerate(terminal_ids):
            row = self.rows.get(t)
            if row is not None:
                out[i] = row
        return out
