"""The batch pipeline shared by every real-time store: encode, apply, decode, compute.

A concrete store only supplies :meth:`BatchFeatureStore._apply` - the atomic state
transition of one batch (the Lua script on Redis, its Python port in memory) - and
inherits the client-side feature computation, so both stores serve identical features.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from importlib import resources

import numpy as np
import numpy.typing as npt

from features.definitions import (
    ALLOWED_LATENESS_S,
    CARD_RING_CAPACITY,
    CARD_TRIM_CHUNK,
    CARD_WINDOW_S,
    DAY_S,
    FEATURE_INDEX,
    FEATURE_NAMES,
    PROFILE_FEATURE_NAMES,
    TERMINAL_DAY_SLOTS,
)
from features.interface import (
    DefaultProfileReader,
    FeatureMatrix,
    FeatureStats,
    ProfileReader,
    RowFlag,
)
from features.kernels import (
    US,
    card_features,
    clip_features,
    terminal_features,
    transaction_features,
)
from features.realtime.layout import (
    STATUS_DUPLICATE,
    STATUS_TERMINAL_LATE,
    STATUS_TOO_LATE,
    EncodedBatch,
    decode_reply,
    encode_batch,
)
from streams.events import Transaction

LUA_SOURCE = resources.files("features.realtime").joinpath("card_state.lua").read_text()
_PROFILE_COLUMNS = np.array([FEATURE_INDEX[n] for n in PROFILE_FEATURE_NAMES], dtype=np.int64)


def script_argv(
    batch: EncodedBatch, lateness_s: int, card_ttl_s: int, terminal_ttl_s: int, commit: bool
) -> list[bytes | int | str]:
    retention_s = CARD_WINDOW_S + lateness_s
    return [
        len(batch.card_keys),
        len(batch.term_keys),
        lateness_s * US,
        retention_s * US,
        card_ttl_s * 1000,
        terminal_ttl_s * 1000,
        CARD_RING_CAPACITY,
        TERMINAL_DAY_SLOTS,
        "1" if commit else "0",
        batch.packed,
        CARD_TRIM_CHUNK,
    ]


def compute_matrix(
    batch: EncodedBatch, reply: Sequence[bytes], lateness_s: int, profiles: ProfileReader
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Raw float64 features ``[n, len(FEATURE_NAMES)]`` (before clipping) and row status."""
    d = decode_reply(reply, batch, CARD_WINDOW_S + lateness_s)
    cols: dict[str, npt.NDArray[np.float64]] = {}
    cols.update(transaction_features(batch.t_us, batch.amount, batch.channel, batch.mcc))
    cols.update(
        card_features(
            batch.t_us,
            batch.amount,
            batch.term_hash,
            d.ev_t,
            d.ev_amount,
            d.ev_term,
            d.valid,
            d.lower_us,
        )
    )
    cols.update(terminal_features(d.day_counts))
    out = np.empty((batch.n, len(FEATURE_NAMES)), dtype=np.float64)
    for name, values in cols.items():
        out[:, FEATURE_INDEX[name]] = values
    as_of = batch.t_us.astype(np.float64) / US
    out[:, _PROFILE_COLUMNS] = profiles.read_batch(batch.terminal_ids, as_of)
    return out, d.status


class BatchFeatureStore(abc.ABC):
    """Real-time features over an atomic per-batch state transition (see module doc)."""

    def __init__(
        self,
        *,
        prefix: str,
        profiles: ProfileReader | None = None,
        allowed_lateness_s: int = ALLOWED_LATENESS_S,
        card_ttl_s: int = CARD_WINDOW_S + ALLOWED_LATENESS_S + DAY_S,
        terminal_ttl_s: int = (TERMINAL_DAY_SLOTS // 2 + 2) * DAY_S,
    ) -> None:
        self.prefix = prefix
        self.profiles: ProfileReader = profiles or DefaultProfileReader()
        self.allowed_lateness_s = allowed_lateness_s
        self.card_ttl_s = card_ttl_s
        self.terminal_ttl_s = terminal_ttl_s
        self.stats = FeatureStats()
        self.last_timings_ms: dict[str, float] = {}
        """Per-stage wall time of the last batch: encode, state (round trip), compute."""

    @abc.abstractmethod
    def _apply(self, keys: list[str], argv: list[bytes | int | str]) -> list[bytes]:
        """Run the state transition of one batch atomically; return the script's reply."""

    def update_and_read_batch(self, transactions: Sequence[Transaction]) -> FeatureMatrix:
        """Apply the batch and return each transaction's features as of just before it."""
        return self._run(transactions, commit=True)

    def update_batch(self, transactions: Sequence[Transaction]) -> None:
        self._run(transactions, commit=True)

    def read_batch(self, transactions: Sequence[Transaction]) -> FeatureMatrix:
        """Features as if the batch were applied now, leaving the state unchanged."""
        return self._run(transactions, commit=False)

    def _run(self, transactions: Sequence[Transaction], *, commit: bool) -> FeatureMatrix:
        if not transactions:
            empty = np.zeros((0, len(FEATURE_NAMES)), dtype=np.float64)
            return FeatureMatrix(
                empty.astype(np.float32), FEATURE_NAMES, np.zeros(0, dtype=np.uint8), empty
            )
        lateness = self.allowed_lateness_s
        t0 = time.perf_counter()
        batch = encode_batch(transactions, self.prefix, lateness)
        argv = script_argv(batch, lateness, self.card_ttl_s, self.terminal_ttl_s, commit)
        t1 = time.perf_counter()
        reply = self._apply(batch.card_keys + batch.term_keys, argv)
        t2 = time.perf_counter()
        raw, status = compute_matrix(batch, reply, lateness, self.profiles)
        bounded, changed = clip_features(raw)
        flags = np.zeros(batch.n, dtype=np.uint8)
        flags |= np.where(raw[:, FEATURE_INDEX["card_is_new"]] > 0, RowFlag.NEW_CARD, 0).astype(
            np.uint8
        )
        dup = (status & 3) == STATUS_DUPLICATE
        late = (status & 3) == STATUS_TOO_LATE
        tlate = (status & STATUS_TERMINAL_LATE) != 0
        flags |= np.where(dup, RowFlag.DUPLICATE, 0).astype(np.uint8)
        flags |= np.where(late, RowFlag.TOO_LATE, 0).astype(np.uint8)
        flags |= np.where(tlate, RowFlag.TERMINAL_LATE, 0).astype(np.uint8)
        flags |= np.where(changed > 0, RowFlag.CLIPPED, 0).astype(np.uint8)
        t3 = time.perf_counter()
        self.last_timings_ms = {
            "encode": (t1 - t0) * 1e3,
            "state": (t2 - t1) * 1e3,
            "compute": (t3 - t2) * 1e3,
        }
        if commit:
            s = self.stats
            s.transactions += batch.n
            s.duplicates += int(dup.sum())
            s.too_late += int(late.sum())
            s.terminal_late += int(tlate.sum())
            s.clipped_values += int(changed.sum())
        return FeatureMatrix(bounded.astype(np.float32), FEATURE_NAMES, flags, bounded)
