"""The batch pipeline shared by every real-time store: encode, plan, apply, compute.

Per batch: encode the transactions (:mod:`.layout`) and send the profile reads (Redis
answers them while the client plans); look the cards up in the process's card cache and
read the missing ones (one ``MGET``); decide the card side in the client (:mod:`.cards`); run
the atomic script once (card versions checked, card writes, terminal counters); while it
runs, compute the transaction and card features and the cache's next state; then the
terminal features from its reply (:mod:`features.kernels`). If a card changed under the cache (a
partition moved, a second writer, an expired key), the script applies nothing and names
it; the store re-reads those cards and plans again.

A concrete store supplies :meth:`BatchFeatureStore._fetch` (read card values) and
:meth:`BatchFeatureStore._start` (the atomic transition: the Lua script on Redis, its
Python port in memory), so both serve identical features; a store whose scripts could run
out of order also supplies :meth:`BatchFeatureStore._script_channel`.
"""

from __future__ import annotations

import abc
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from features.definitions import (
    ALLOWED_LATENESS_S,
    CARD_RING_CAPACITY,
    CARD_TRIM_CHUNK,
    CARD_WINDOW_S,
    CARD_WRITE_MODES,
    DAY_S,
    FEATURE_INDEX,
    FEATURE_NAMES,
    PROFILE_FEATURE_NAMES,
    TERMINAL_DAY_SLOTS,
    CardWriteMode,
)
from features.errors import FeatureStateLost, FeatureStoreUnavailable
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
    card_features_of_segments,
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
    card_keys,
    encode_batch,
    terminal_day_counts,
)
from streams.events import Transaction

LUA_SOURCE = resources.files("features.realtime").joinpath("card_state.lua").read_text()
_PROFILE_COLUMNS = np.array([FEATURE_INDEX[n] for n in PROFILE_FEATURE_NAMES], dtype=np.int64)
TERM_ROW = np.dtype([("term", "<u4"), ("day", "<i4"), ("t", "<f8")])
MAX_ATTEMPTS = 8
"""Plans per batch before giving up on cards that keep changing under the cache."""
PIPELINE_CHUNK = 160
"""Batches of at least twice this many transactions are applied as pipelined chunks of
about this size (``0`` turns it off): Redis runs one chunk's script while the client
plans the next. A scorer batch of 500 makes 3 chunks: measured against 2 (chunks of 200)
and 4 (125) in alternating runs of ``fraudctl bench features``, p99 8.4-10.5 ms vs
10.6-11.9 and 10.7-15.2."""
Reply = list[object]
F64 = npt.NDArray[np.float64]


class ScriptChannel(abc.ABC):
    """Where the scripts of one pipelined batch go, so that they run in the order sent:
    Redis runs one connection's commands in order, those of several in any order (a chunk
    run before its predecessor would be refused by the chain and redone one by one)."""

    @abc.abstractmethod
    def send(self, keys: list[str], argv: list[bytes | int | str]) -> Callable[[], Reply]:
        """Send one script; the returned function reads its reply (and those before it)."""


@dataclass(frozen=True)
class _Sent:
    """One chunk of a pipelined batch whose script is on its way."""

    transactions: Sequence[Transaction]
    batch: EncodedBatch
    profiles: PendingProfiles
    plan: CardPlan
    finish: Callable[[], Reply]


class BatchFeatureStore(abc.ABC):
    """Real-time features over an atomic per-batch state transition (see module doc).

    ``card_cache_size`` bounds the cards kept in this process (LRU); ``0`` disables the
    cache (every card is read each batch). ``ttl_refresh_s``: a card's or terminal's TTL
    is set again by the first write whose event time reaches a later period of this
    length (a day: the TTLs include that much slack); ``0`` sets it on every write. The
    rule reads only the key's own newest event time, so it needs no memory of past
    writes and holds across restarts and moved partitions: a key lives at least its TTL
    past the start of its newest event's period, less the allowed clock skew.
    ``card_writes``: ``"append"`` writes only a card's new records in place (``SETRANGE``;
    Redis then reserves as much again as the value holds, so a card costs ~1.8x its
    bytes); ``"rewrite"`` writes the whole value, trimmed to the window, each time
    (``SET``: memory equals the bytes, each write carries the card's whole history).
    Features are the same either way.
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
        pipeline_chunk: int = PIPELINE_CHUNK,
        card_writes: CardWriteMode = "append",
    ) -> None:
        if card_writes not in CARD_WRITE_MODES:
            raise ValueError(f"card_writes must be one of {CARD_WRITE_MODES}, not {card_writes!r}")
        self.prefix = prefix
        self.card_writes = card_writes
        self.profiles: ProfileReader = profiles or DefaultProfileReader()
        self.allowed_lateness_s = allowed_lateness_s
        self.card_ttl_s = card_ttl_s
        self.terminal_ttl_s = terminal_ttl_s
        self.ttl_refresh_s = ttl_refresh_s
        self.cards = CardCache(card_cache_size, max_age_s=ttl_refresh_s)
        self.stats = FeatureStats()
        self.stale_cards = 0
        """Cached cards found changed in Redis (re-read): partitions moved or a second writer."""
        self.last_timings_ms: dict[str, float] = {}
        """Per-stage wall time of the last batch: encode, plan, state (round trips), compute."""
        self.pipeline_chunk = pipeline_chunk
        self._chain_key = f"{prefix}:chain:{{{uuid.uuid4().hex}}}"
        """One key per store object: the token a pipelined batch's scripts pass on."""
        self._chain_serial = 0
        self.epoch_key: str | None = None
        self.epoch: bytes = b""
        """The state epoch every script checks (``b""``: none; see :mod:`.epoch`)."""

    @property
    def refresh_us(self) -> int:
        """The TTL refresh period in microseconds: the card kernel (cards) and the script
        (terminals) apply the same rule with it."""
        return self.ttl_refresh_s * US

    def follow_epoch(self, epoch_key: str, epoch: bytes, prefix: str) -> None:
        """From now on apply batches only while ``epoch_key`` holds ``epoch``, to the
        namespace ``prefix`` (:mod:`features.realtime.epoch`). Moving to another namespace
        forgets what the process cached of the old one."""
        if prefix != self.prefix:
            self.prefix = prefix
            self._chain_key = f"{prefix}:chain:{{{uuid.uuid4().hex}}}"
            self.clear_cache()
        self.epoch_key, self.epoch = epoch_key, epoch

    def _keys(self, keys: list[str]) -> list[str]:
        """A script's keys, with the epoch key last when the epoch is checked."""
        return [*keys, self.epoch_key] if self.epoch and self.epoch_key else keys

    def _lost(self, reply: Reply) -> FeatureStateLost:
        found = reply[1] if len(reply) > 1 else None
        return FeatureStateLost(
            self.epoch_key or "?", self.epoch, found if isinstance(found, bytes) else None
        )

    @abc.abstractmethod
    def _fetch(self, keys: list[str]) -> list[bytes | None]:
        """The current values of card keys (``None`` when absent)."""

    @abc.abstractmethod
    def _start(
        self, keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], Reply]:
        """Send ``card_state.lua`` (or run its port) for one batch; the returned function
        waits for and returns the reply. The store computes the card features between
        the two, while Redis runs the script. ``channel``: the pipelined batch's, from
        :meth:`_script_channel`."""

    def _script_channel(self) -> contextlib.AbstractContextManager[ScriptChannel | None]:
        """The channel a pipelined batch's scripts go through, open for the batch; ``None``
        where :meth:`_start` keeps the order by itself (the in-memory port runs at once)."""
        return contextlib.nullcontext()

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
        chunk = self.pipeline_chunk
        if commit and chunk and self.cards.max_cards > 0 and len(transactions) >= 2 * chunk:
            return self._run_pipelined(transactions, len(transactions) // chunk)
        return self._run_sequential(transactions, commit)

    def _run_sequential(self, transactions: Sequence[Transaction], commit: bool) -> FeatureMatrix:
        t0 = time.perf_counter()
        batch = encode_batch(transactions, self.prefix, self.allowed_lateness_s)
        profiles = self._start_profiles(batch)
        t1 = time.perf_counter()
        try:
            plan, reply, known, spent = self._apply(batch, commit)
        except BaseException:
            with contextlib.suppress(Exception):
                profiles()  # drain the profile replies so their connection goes back clean
            raise
        t2 = time.perf_counter()
        matrix = self._matrix(batch, plan, reply, known, profiles(), commit)
        self.last_timings_ms = {
            "encode": (t1 - t0) * 1e3,
            "plan": spent["plan"] * 1e3,
            "card_features": spent["card_features"] * 1e3,
            "state_wait": spent["wait"] * 1e3,
            "compute": (time.perf_counter() - t2) * 1e3,
        }
        return matrix

    def _run_pipelined(self, transactions: Sequence[Transaction], chunks: int) -> FeatureMatrix:
        """Apply a large batch as ``chunks`` consecutive chunks, each its own script, sent
        one after the other without waiting: Redis runs chunk k while the client plans
        chunk k+1 (from the cache as chunk k will leave it) and computes features.

        The scripts go through one :class:`ScriptChannel`, so Redis runs them in the order
        sent. Each after the first applies only if its predecessor did (a chain token in one
        key), so the chunks apply in order or not at all from the first refused (or not
        run) one; those are then applied one by one the ordinary way. Features equal those
        of one batch (and of any other split): each row sees the state just before it.
        """
        clock = time.perf_counter
        cut = np.linspace(0, len(transactions), chunks + 1).astype(int).tolist()
        parts = [transactions[a:b] for a, b in pairwise(cut)]
        self._chain_serial += 1
        tokens = ["", *(f"{self._chain_serial}.{k}" for k in range(1, chunks)), ""]
        timings = dict.fromkeys(("encode", "plan", "card_features", "state_wait", "compute"), 0.0)
        c = clock()
        cards = self._prefetch(transactions)
        timings["plan"] += (clock() - c) * 1e3
        with self._script_channel() as channel:
            sent: list[_Sent] = []
            try:
                for k, part in enumerate(parts):
                    after, token = tokens[k], tokens[k + 1]
                    sent.append(self._send(part, cards, after, token, timings, channel))
            except BaseException:
                self._abandon(sent)
                raise
            out, refused = self._collect(sent, timings)
        # a refused chunk and those after it (their replies read, the channel closed)
        out += [self._run_sequential(s.transactions, commit=True) for s in refused]
        self.last_timings_ms = timings
        return FeatureMatrix(
            np.concatenate([m.values for m in out]),
            FEATURE_NAMES,
            np.concatenate([m.flags for m in out]),
            np.concatenate([m.raw for m in out if m.raw is not None]),
        )

    def _collect(
        self, sent: list[_Sent], timings: dict[str, float]
    ) -> tuple[list[FeatureMatrix], list[_Sent]]:
        """The features of the sent chunks, reading their replies in order, up to the first
        chunk refused; returns them and the chunks from that one on (to apply again)."""
        clock = time.perf_counter
        out: list[FeatureMatrix] = []
        for k, s in enumerate(sent):
            c0 = clock()
            try:
                known = self._known_columns(s.batch, s.plan)
                c1 = clock()
                reply = s.finish()
            except BaseException:
                self._stop_at(sent, k)
                raise
            c2 = clock()
            if reply[0] == 3:  # the state epoch changed: nothing of this chunk or after
                self._stop_at(sent, k)
                raise self._lost(reply)
            if reply[0] != 1:  # refused: a card changed under the cache, or its predecessor was
                if reply[0] == 0:
                    self.stale_cards += len(reply[1])  # type: ignore[arg-type]
                self._stop_at(sent, k)
                return out, sent[k:]
            try:
                profiles = s.profiles()
                out.append(self._matrix(s.batch, s.plan, reply, known, profiles, True))
            except BaseException:
                self._abandon(sent[k + 1 :])  # their replies still hold pool connections
                raise
            timings["card_features"] += (c1 - c0) * 1e3
            timings["state_wait"] += (c2 - c1) * 1e3
            timings["compute"] += (clock() - c2) * 1e3
        return out, []

    def _prefetch(self, transactions: Sequence[Transaction]) -> dict[str, CardEntry]:
        """Every card of the batch: from the cache, and those missing from it read in one
        ``MGET`` before any chunk is sent (a read between two chunks would wait behind the
        first one's script). The chunks then plan from this small dict, which each chunk
        updates with its writes, instead of looking the cards up again in the (large,
        cache-cold) card cache."""
        now = time.time()
        keys = list(dict.fromkeys(card_keys(self.prefix, (t.card_id for t in transactions))))
        entries, missing = self._cached(keys, now)
        if missing:
            self._read(keys, missing, entries, now)
            self.cards.store([keys[i] for i in missing], [entries[i] for i in missing])
        return dict(zip(keys, entries, strict=True))

    def _cached(self, keys: list[str], now: float) -> tuple[list[CardEntry], list[int]]:
        """The cached entry of each card key (an empty one where the cache has none) and
        the indices of those it has none for."""
        found = self.cards.lookup(keys, now)
        entries = [e or CardEntry(b"", 0, 0.0, now) for e in found]
        return entries, [i for i, e in enumerate(found) if e is None]

    def _read(
        self, keys: list[str], indices: list[int], entries: list[CardEntry], now: float
    ) -> None:
        """Read the cards at ``indices`` from the store (one round trip) into ``entries``."""
        if indices:
            for i, v in zip(indices, self._fetch([keys[i] for i in indices]), strict=True):
                entries[i] = CardEntry.from_value(v, now)

    def _send(
        self,
        transactions: Sequence[Transaction],
        cards: dict[str, CardEntry],
        after: str,
        token: str,
        timings: dict[str, float],
        channel: ScriptChannel | None,
    ) -> _Sent:
        """Encode and plan one chunk from ``cards`` (see :meth:`_prefetch`) and send its
        script; ``cards`` and the cache take the chunk's writes at once, so the next chunk
        is planned as if this one were applied."""
        t0 = time.perf_counter()
        batch = encode_batch(transactions, self.prefix, self.allowed_lateness_s)
        profiles = self._start_profiles(batch)
        t1 = time.perf_counter()
        try:
            now = time.time()
            keys = batch.card_keys
            entries = [cards[k] for k in keys]
            plan = self.plan(batch, entries, True)
            argv = self._argv(batch, plan, True, after=after, token=token)
            chained = self._keys([*keys, *batch.term_keys, self._chain_key])
            finish = self._start(chained, argv, channel)
        except BaseException:
            with contextlib.suppress(Exception):
                profiles()
            raise
        if plan.writes is not None:
            written = plan.writes.applied(entries, now)
            self.cards.store(keys, written)
            cards.update(zip(keys, written, strict=True))
        timings["encode"] += (t1 - t0) * 1e3
        timings["plan"] += (time.perf_counter() - t1) * 1e3
        return _Sent(transactions, batch, profiles, plan, finish)

    def _stop_at(self, sent: Sequence[_Sent], k: int) -> None:
        """Chunk ``k``'s reply is in but it will not be used: drain its profile read,
        collect the later chunks' replies, and forget all their cards."""
        with contextlib.suppress(Exception):
            sent[k].profiles()
        self.cards.discard(sent[k].batch.card_keys)
        self._abandon(sent[k + 1 :])

    def _abandon(self, sent: Sequence[_Sent]) -> None:
        """Collect the replies of chunks whose results are not needed (so the connection
        goes back clean) and forget their cards: they may or may not have been applied."""
        for s in sent:
            with contextlib.suppress(Exception):
                s.finish()
            with contextlib.suppress(Exception):
                s.profiles()
            self.cards.discard(s.batch.card_keys)

    def _matrix(
        self,
        batch: EncodedBatch,
        plan: CardPlan,
        reply: Reply,
        known: F64,
        profiles: npt.NDArray[np.float32],
        commit: bool,
    ) -> FeatureMatrix:
        """The batch's features from the script's reply: terminal and profile columns,
        clipping, row flags (and the store's counters when the batch was applied)."""
        status = plan.status.copy()
        applied_rows = np.flatnonzero(status == STATUS_APPLIED)
        late_rows = np.asarray(reply[1], dtype=np.int64) - 1
        status[applied_rows[late_rows]] += STATUS_TERMINAL_LATE
        raw = self._assemble(batch, known, status, reply[2:], profiles)  # type: ignore[arg-type]
        bounded, changed = clip_features(raw)
        flags = np.where(raw[:, FEATURE_INDEX["card_is_new"]] > 0, RowFlag.NEW_CARD, 0)
        dup = (status & 3) == STATUS_DUPLICATE
        late = (status & 3) == STATUS_TOO_LATE
        tlate = (status & STATUS_TERMINAL_LATE) != 0
        flags |= np.where(dup, RowFlag.DUPLICATE, 0)
        flags |= np.where(late, RowFlag.TOO_LATE, 0)
        flags |= np.where(tlate, RowFlag.TERMINAL_LATE, 0)
        flags |= np.where(changed > 0, RowFlag.CLIPPED, 0)
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
    ) -> tuple[CardPlan, Reply, F64, dict[str, float]]:
        """Plan and run the batch's state transition, computing the card features (which
        need only the plan) and the card cache's next state while Redis runs the script.
        Returns the plan, the reply, the partly filled feature matrix and the seconds spent
        planning, computing and waiting.

        The cache is updated before the reply arrives: if the script refuses the batch or
        the connection fails, the next plan (or the next batch) finds the cached trailers
        different from Redis's and re-reads those cards, so a wrong guess costs a read,
        never a wrong feature; on a failure the batch's cards are also dropped from it."""
        clock = time.perf_counter
        spent = {"plan": 0.0, "card_features": 0.0, "wait": 0.0}
        now = time.time()
        keys = batch.card_keys
        entries, missing = self._cached(keys, now)
        for _ in range(MAX_ATTEMPTS):
            c0 = clock()
            self._read(keys, missing, entries, now)
            plan = self.plan(batch, entries, commit)
            argv = self._argv(batch, plan, commit)
            finish = self._start(self._keys(keys + batch.term_keys), argv)
            c1 = clock()
            try:
                # while Redis runs the script: the features that need only the plan, and
                # the cache as the script will leave it (kept only if the script agrees)
                known = self._known_columns(batch, plan)
                if plan.writes is not None:
                    self.cards.store(keys, plan.writes.applied(entries, now))
                else:
                    self.cards.store(keys, entries)
            finally:
                c2 = clock()
                try:
                    reply = finish()
                except BaseException:
                    self.cards.discard(keys)
                    raise
                c3 = clock()
                spent["plan"] += c1 - c0
                spent["card_features"] += c2 - c1
                spent["wait"] += c3 - c2
            if reply[0] == 3:
                self.cards.discard(keys)
                raise self._lost(reply)
            if reply[0] == 1:
                return plan, reply, known, spent
            missing = [int(i) - 1 for i in reply[1]]  # type: ignore[attr-defined]
            self.stale_cards += len(missing)
        self.cards.discard(keys)
        raise FeatureStoreUnavailable(
            "card state", f"{len(missing)} cards changed under {MAX_ATTEMPTS} plans in a row"
        )

    def plan(self, batch: EncodedBatch, entries: list[CardEntry], commit: bool) -> CardPlan:
        """The card side of ``batch`` against ``entries`` with this store's lateness,
        window and TTL refresh (what its script is then asked to apply)."""
        lateness_us = self.allowed_lateness_s * US
        return plan_cards(
            batch,
            entries,
            lateness_us=float(lateness_us),
            retention_us=float(CARD_WINDOW_S * US + lateness_us),
            capacity=CARD_RING_CAPACITY,
            # rewrite: a trim chunk of 0 sends every written card whole (cards.py)
            trim_chunk=CARD_TRIM_CHUNK if self.card_writes == "append" else 0,
            commit=commit,
            refresh_us=float(self.refresh_us),
        )

    def _argv(
        self,
        batch: EncodedBatch,
        plan: CardPlan,
        commit: bool,
        *,
        after: str = "",
        token: str = "",
    ) -> list[bytes | int | str]:
        """The script's arguments; ``after``/``token``: the chain of a pipelined batch
        (apply only if the chain key holds ``after``; then set it to ``token``)."""
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
            self.refresh_us,
            after,
            token,
            self.epoch,
        ]

    def _known_columns(self, batch: EncodedBatch, plan: CardPlan) -> F64:
        """Raw features ``[n, len(FEATURE_NAMES)]`` with the transaction and card columns
        filled: they depend only on the batch and the plan (the rest: :meth:`_assemble`)."""
        h = card_history(batch, plan, CARD_WINDOW_S + self.allowed_lateness_s)
        cols = transaction_features(batch.t_us, batch.amount, batch.channel, batch.mcc)
        cols.update(
            card_features_of_segments(
                batch.t_us,
                batch.amount,
                batch.term_hash,
                h.table_t,
                h.table_amount,
                h.table_term,
                h.starts,
                h.lengths,
                h.lower_us,
            )
        )
        out = np.empty((batch.n, len(FEATURE_NAMES)), dtype=np.float64)
        for name, values in cols.items():
            out[:, FEATURE_INDEX[name]] = values
        return out

    def _assemble(
        self,
        batch: EncodedBatch,
        out: F64,
        status: npt.NDArray[np.int64],
        terminal_values: Sequence[bytes | None],
        profiles: npt.NDArray[np.float32],
    ) -> F64:
        """Fill the terminal and profile columns of :meth:`_known_columns`' matrix."""
        counts = terminal_day_counts(terminal_values, batch, status)
        for name, values in terminal_features(counts).items():
            out[:, FEATURE_INDEX[name]] = values
        out[:, _PROFILE_COLUMNS] = profiles
        return out
