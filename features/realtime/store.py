"""The batch pipeline shared by every real-time store: encode, plan, apply, compute.

Per batch: encode the transactions (:mod:`.layout`) and send the profile reads (Redis
answers them while the client plans); look the cards up in the process's card cache and
read the missing ones (one ``MGET``); decide the card side in numpy (:mod:`.cards`); run
the atomic script once (card versions checked, card writes, terminal counters); compute
every feature in numpy (:mod:`features.kernels`). If a card changed under the cache (a
partition moved, a second writer, an expired key), the script applies nothing and names
it; the store re-reads those cards and plans again.

A concrete store supplies :meth:`BatchFeatureStore._fetch` (read card values) and
:meth:`BatchFeatureStore._script` (the atomic transition: the Lua script on Redis, its
Python port in memory), so both serve identical features.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
from features.errors import FeatureStoreUnavailable
from features.interface import (
    DefaultProfileReader,
    FeatureMatrix,
    FeatureStats,
    PendingProfiles,
    ProfileReader,
    RowFlag,
    start_profile_read,
)
from features.kernels import (
    DAY_US,
    US,
    card_features,
    clip_features,
    terminal_features,
    transaction_features,
)
from features.profiles.errors import ProfileStoreUnavailable
from features.realtime.cache import CardCache, CardEntry
from features.realtime.cards import CardPlan, plan_cards
from features.realtime.history import card_history
from features.realtime.layout import (
    STATUS_APPLIED,
    STATUS_DUPLICATE,
    STATUS_TERMINAL_LATE,
    STATUS_TOO_LATE,
    EncodedBatch,
    encode_batch,
    terminal_day_counts,
)
from streams.events import Transaction

LUA_SOURCE = resources.files("features.realtime").joinpath("card_state.lua").read_text()
_PROFILE_COLUMNS = np.array([FEATURE_INDEX[n] for n in PROFILE_FEATURE_NAMES], dtype=np.int64)
TERM_ROW = np.dtype([("term", "<u4"), ("day", "<i4"), ("t", "<f8")])
MAX_ATTEMPTS = 8
"""Plans per batch before giving up on cards that keep changing under the cache."""
Reply = list[object]
F64 = npt.NDArray[np.float64]


class BatchFeatureStore(abc.ABC):
    """Real-time features over an atomic per-batch state transition (see module doc).

    ``card_cache_size`` bounds the cards kept in this process (LRU); ``0`` disables the
    cache (every card is read each batch). ``ttl_refresh_s``: a key's TTL is refreshed by
    at most one write per this interval (the TTLs include that much slack).
    """

    def __init__(
        self,
        *,
        prefix: str,
        profiles: ProfileReader | None = None,
        allowed_lateness_s: int = ALLOWED_LATENESS_S,
        card_ttl_s: int = CARD_WINDOW_S + ALLOWED_LATENESS_S + DAY_S,
        terminal_ttl_s: int = (TERMINAL_DAY_SLOTS // 2 + 2) * DAY_S,
        card_cache_size: int = 100_000,
        ttl_refresh_s: int = DAY_S,
    ) -> None:
        self.prefix = prefix
        self.profiles: ProfileReader = profiles or DefaultProfileReader()
        self.allowed_lateness_s = allowed_lateness_s
        self.card_ttl_s = card_ttl_s
        self.terminal_ttl_s = terminal_ttl_s
        self.ttl_refresh_s = ttl_refresh_s
        self.cards = CardCache(card_cache_size, max_age_s=ttl_refresh_s)
        self._term_ttl_at: OrderedDict[str, float] = OrderedDict()
        self.stats = FeatureStats()
        self.stale_cards = 0
        """Cached cards found changed in Redis (re-read): partitions moved or a second writer."""
        self.last_timings_ms: dict[str, float] = {}
        """Per-stage wall time of the last batch: encode, plan, state (round trips), compute."""

    @abc.abstractmethod
    def _fetch(self, keys: list[str]) -> list[bytes | None]:
        """The current values of card keys (``None`` when absent)."""

    @abc.abstractmethod
    def _start(self, keys: list[str], argv: list[bytes | int | str]) -> Callable[[], Reply]:
        """Send ``card_state.lua`` (or run its port) for one batch; the returned function
        waits for and returns the reply. The store computes the card features between
        the two, while Redis runs the script."""

    def clear_cache(self) -> None:
        """Forget every cached card, e.g. when the scorer's partitions are revoked.

        Never needed for correctness (a changed card is detected and re-read), it only
        saves the re-read of cards another process has written since.
        """
        self.cards.clear()

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
        t0 = time.perf_counter()
        batch = encode_batch(transactions, self.prefix, self.allowed_lateness_s)
        profiles = self._start_profiles(batch)
        t1 = time.perf_counter()
        try:
            plan, reply, card_cols, spent = self._apply(batch, commit)
        except BaseException:
            with contextlib.suppress(Exception):
                profiles()  # drain the profile replies so their connection goes back clean
            raise
        t2 = time.perf_counter()
        status = plan.status.copy()
        applied_rows = np.flatnonzero(status == STATUS_APPLIED)
        late_rows = np.asarray(reply[1], dtype=np.int64) - 1
        status[applied_rows[late_rows]] += STATUS_TERMINAL_LATE
        raw = self._assemble(batch, card_cols, status, reply[2:], profiles())  # type: ignore[arg-type]
        bounded, changed = clip_features(raw)
        flags = np.where(raw[:, FEATURE_INDEX["card_is_new"]] > 0, RowFlag.NEW_CARD, 0)
        dup = (status & 3) == STATUS_DUPLICATE
        late = (status & 3) == STATUS_TOO_LATE
        tlate = (status & STATUS_TERMINAL_LATE) != 0
        flags |= np.where(dup, RowFlag.DUPLICATE, 0)
        flags |= np.where(late, RowFlag.TOO_LATE, 0)
        flags |= np.where(tlate, RowFlag.TERMINAL_LATE, 0)
        flags |= np.where(changed > 0, RowFlag.CLIPPED, 0)
        t3 = time.perf_counter()
        self.last_timings_ms = {
            "encode": (t1 - t0) * 1e3,
            "plan": spent["plan"] * 1e3,
            "card_features": spent["card_features"] * 1e3,
            "state_wait": spent["wait"] * 1e3,
            "compute": (t3 - t2) * 1e3,
        }
        if commit:
            s = self.stats
            s.transactions += batch.n
            s.duplicates += int(dup.sum())
            s.too_late += int(late.sum())
            s.terminal_late += int(tlate.sum())
            s.clipped_values += int(changed.sum())
        return FeatureMatrix(
            bounded.astype(np.float32), FEATURE_NAMES, flags.astype(np.uint8), bounded
        )

    def _start_profiles(self, batch: EncodedBatch) -> PendingProfiles:
        """Send the batch's profile reads. Their Redis failures surface as
        :class:`FeatureStoreUnavailable`, the one error the scorer backs off on."""
        try:
            pending = start_profile_read(self.profiles, batch.terminal_ids, batch.t_us)
        except ProfileStoreUnavailable as exc:
            raise FeatureStoreUnavailable("profiles", exc.detail) from exc

        def finish() -> npt.NDArray[np.float32]:
            try:
                return pending()
            except ProfileStoreUnavailable as exc:
                raise FeatureStoreUnavailable("profiles", exc.detail) from exc

        return finish

    def _apply(
        self, batch: EncodedBatch, commit: bool
    ) -> tuple[CardPlan, Reply, dict[str, F64], dict[str, float]]:
        """Plan and run the batch's state transition, computing the card features (which
        need only the plan) while Redis runs the script. Returns the plan, the reply, the
        card feature columns and the seconds spent planning, computing and waiting."""
        clock = time.perf_counter
        spent = {"plan": 0.0, "card_features": 0.0, "wait": 0.0}
        now = time.time()
        keys = batch.card_keys
        found = self.cards.lookup(keys, now)
        entries: list[CardEntry] = [e or CardEntry(b"", 0, 0.0, 0.0, now) for e in found]
        missing = [i for i, e in enumerate(found) if e is None]
        terms = self._terminal_ttl_flags(batch.term_keys, now)
        for _ in range(MAX_ATTEMPTS):
            c0 = clock()
            if missing:
                values = self._fetch([keys[i] for i in missing])
                for i, v in zip(missing, values, strict=True):
                    entries[i] = CardEntry.from_value(v, now)
            plan = self._plan(batch, entries, commit, now)
            finish = self._start(keys + batch.term_keys, self._argv(batch, plan, terms, commit))
            c1 = clock()
            try:
                card_cols = self._card_columns(batch, plan)
            finally:
                c2 = clock()
                reply = finish()
                c3 = clock()
                spent["plan"] += c1 - c0
                spent["card_features"] += c2 - c1
                spent["wait"] += c3 - c2
            if reply[0] == 1:
                if plan.writes is not None:
                    plan.writes.apply(entries, now)
                self.cards.store(keys, entries)
                if commit:
                    self._terminal_ttl_done(batch, plan, reply[1], terms, now)  # type: ignore[arg-type]
                return plan, reply, card_cols, spent
            missing = [int(i) - 1 for i in reply[1]]  # type: ignore[attr-defined]
            self.stale_cards += len(missing)
        self.cards.discard(keys)
        raise FeatureStoreUnavailable(
            "card state", f"{len(missing)} cards changed under {MAX_ATTEMPTS} plans in a row"
        )

    def _plan(
        self, batch: EncodedBatch, entries: list[CardEntry], commit: bool, now: float
    ) -> CardPlan:
        lateness_us = self.allowed_lateness_s * US
        return plan_cards(
            batch,
            entries,
            lateness_us=float(lateness_us),
            retention_us=float(CARD_WINDOW_S * US + lateness_us),
            capacity=CARD_RING_CAPACITY,
            trim_chunk=CARD_TRIM_CHUNK,
            commit=commit,
            now=now,
            ttl_refresh_s=self.ttl_refresh_s,
        )

    def _argv(
        self, batch: EncodedBatch, plan: CardPlan, terms: bytes, commit: bool
    ) -> list[bytes | int | str]:
        applied = np.flatnonzero(plan.status == STATUS_APPLIED)
        rows = np.empty(len(applied), dtype=TERM_ROW)
        rows["term"] = batch.term_index[applied] + 1
        rows["day"] = batch.t_us[applied] // DAY_US
        rows["t"] = batch.t_us[applied]
        return [
            len(batch.card_keys),
            len(batch.term_keys),
            self.allowed_lateness_s * US,
            self.card_ttl_s * 1000,
            self.terminal_ttl_s * 1000,
            TERMINAL_DAY_SLOTS,
            "1" if commit else "0",
            plan.ops,
            plan.payload,
            rows.tobytes(),
            terms,
        ]

    def _terminal_ttl_flags(self, term_keys: list[str], now: float) -> bytes:
        memo, horizon = self._term_ttl_at, now - self.ttl_refresh_s
        return bytes(memo.get(k, 0.0) < horizon for k in term_keys)

    def _terminal_ttl_done(
        self, batch: EncodedBatch, plan: CardPlan, late: list[int], flags: bytes, now: float
    ) -> None:
        """Remember the terminals whose TTL this batch set (flagged and written)."""
        counted = np.flatnonzero(plan.status == STATUS_APPLIED)
        if late:
            counted = np.delete(counted, np.asarray(late, dtype=np.int64) - 1)
        written = np.unique(batch.term_index[counted])
        memo = self._term_ttl_at
        for i in written.tolist():
            if flags[i]:
                memo[batch.term_keys[i]] = now
                memo.move_to_end(batch.term_keys[i])
        while len(memo) > self.cards.max_cards:
            memo.popitem(last=False)

    def _card_columns(self, batch: EncodedBatch, plan: CardPlan) -> dict[str, F64]:
        """Transaction and card features: they depend only on the batch and the plan."""
        h = card_history(batch, plan, CARD_WINDOW_S + self.allowed_lateness_s)
        cols = transaction_features(batch.t_us, batch.amount, batch.channel, batch.mcc)
        cols.update(
            card_features(
                batch.t_us,
                batch.amount,
                batch.term_hash,
                h.ev_t,
                h.ev_amount,
                h.ev_term,
                h.valid,
                h.lower_us,
            )
        )
        return cols

    def _assemble(
        self,
        batch: EncodedBatch,
        cols: dict[str, F64],
        status: npt.NDArray[np.int64],
        terminal_values: Sequence[bytes | None],
        profiles: npt.NDArray[np.float32],
    ) -> F64:
        """Raw float64 features ``[n, len(FEATURE_NAMES)]`` (before clipping)."""
        out = np.empty((batch.n, len(FEATURE_NAMES)), dtype=np.float64)
        for name, values in cols.items():
            out[:, FEATURE_INDEX[name]] = values
        counts = terminal_day_counts(terminal_values, batch, status)
        for name, values in terminal_features(counts).items():
            out[:, FEATURE_INDEX[name]] = values
        out[:, _PROFILE_COLUMNS] = profiles
        return out
