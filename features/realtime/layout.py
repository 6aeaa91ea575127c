"""Binary layout of the real-time state, and one batch turned into arrays.

The same bytes are written by the Lua script (Redis) and by its Python port (in-memory
store). Layout:

- card value: 32-byte records in arrival order
  ``txid_hash 8 | time_us f64 | amount f64 | terminal_hash u32 | seq u32``, then a 12-byte
  trailer ``next_seq u32 | max_time f64``. The trailer is the card's *version*: every
  applied transaction increments ``next_seq``, so a scorer holding the card in its cache
  checks the trailer (``GETRANGE -12 -1``) and appends in place (one ``SETRANGE``);
- terminal value: ``max_time f64`` then ``TERMINAL_DAY_SLOTS`` x ``day i32 | count i32``.

Card keys carry a layout version (``card2``): a store never misreads an older layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from features.card_kernel import terminal_day_counts as day_counts_kernel
from features.definitions import TERMINAL_DAY_SLOTS
from features.kernels import (
    DAY_US,
    TERMINAL_MAX_DAYS,
    channel_code,
    merchant_category_code,
    reference_day,
    terminal_hash,
    time_us,
    transaction_hash,
)
from streams.events import Transaction

CARD_RECORD = np.dtype(
    [("txh", "<u8"), ("t", "<f8"), ("amount", "<f8"), ("term", "<u4"), ("seq", "<u4")]
)
CARD_TRAILER = np.dtype([("next_seq", "<u4"), ("max_time", "<f8")])
TERM_SLOT = np.dtype([("day", "<i4"), ("count", "<i4")])
TERM_VALUE_BYTES = 8 + TERMINAL_DAY_SLOTS * TERM_SLOT.itemsize
TERM_VALUE = np.dtype([("max_time", "<f8"), ("slots", TERM_SLOT, (TERMINAL_DAY_SLOTS,))])
assert TERM_VALUE.itemsize == TERM_VALUE_BYTES
REC, TRAILER = CARD_RECORD.itemsize, CARD_TRAILER.itemsize
assert REC == 32 and TRAILER == 12 and TERM_SLOT.itemsize == 8

STATUS_APPLIED, STATUS_DUPLICATE, STATUS_TOO_LATE, STATUS_TERMINAL_LATE = 0, 1, 2, 4
assert (STATUS_APPLIED, STATUS_TOO_LATE) == (0, 2)  # card_kernel.c's terminal_day_counts
MAX_KEYS_PER_KIND = 65_535
NEG = -1e300
"""``max_time`` of a card or terminal with no event."""

_MCC: dict[str, int] = {}
_TERM_HASH: dict[str, int] = {}
_CHANNEL: dict[str, int] = {}


def card_key(prefix: str, card_id: str) -> str:
    """All keys of one card share the Redis Cluster hash tag ``{card_id}``."""
    return f"{prefix}:card2:{{{card_id}}}"


def terminal_key(prefix: str, terminal_id: str) -> str:
    return f"{prefix}:term:{{{terminal_id}}}"


def card_keys(prefix: str, card_ids: Iterable[str]) -> list[str]:
    return _keys(card_key, prefix, card_ids)


def _keys(key: Callable[[str, str], str], prefix: str, ids: Iterable[str]) -> list[str]:
    """``key(prefix, i)`` for many ids: the format is taken from ``key`` once."""
    head, _, tail = key(prefix, "\0").partition("\0")
    return [head + i + tail for i in ids]


@dataclass(frozen=True)
class EncodedBatch:
    """One batch turned into arrays and its distinct card and terminal keys."""

    t_us: npt.NDArray[np.int64]
    amount: npt.NDArray[np.float64]
    txh: npt.NDArray[np.uint64]
    term_hash: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    mcc: npt.NDArray[np.int64]
    card_index: npt.NDArray[np.int64]
    term_index: npt.NDArray[np.int64]
    ref_day: npt.NDArray[np.int64]
    card_keys: list[str]
    term_keys: list[str]
    terminal_ids: list[str]

    @property
    def n(self) -> int:
        return len(self.t_us)


_COLUMNS = attrgetter(
    "event_time",
    "amount",
    "transaction_id",
    "card_id",
    "terminal_id",
    "merchant_category",
    "channel",
)


def _codes(
    values: Sequence[str], table: dict[str, int], fn: Callable[[str], int]
) -> npt.NDArray[np.int64]:
    """``fn`` of each value, computed once per distinct value (and remembered)."""
    codes = list(map(table.get, values))
    if None in codes:
        if len(table) > 1_000_000:
            table.clear()
        for i, v in enumerate(values):
            if codes[i] is None:
                code = table.get(v)
                codes[i] = table[v] = fn(v) if code is None else code
    return np.array(codes, dtype=np.int64)


def encode_batch(transactions: Sequence[Transaction], prefix: str, lateness_s: int) -> EncodedBatch:
    n = len(transactions)
    times, amounts, ids, card_ids, terminal_ids, mccs, channels = (
        list(c) for c in zip(*map(_COLUMNS, transactions), strict=True)
    )
    cards: dict[str, int] = {}
    terms: dict[str, int] = {}
    ci = [cards.setdefault(c, len(cards)) for c in card_ids]
    ti = [terms.setdefault(t, len(terms)) for t in terminal_ids]
    if len(cards) > MAX_KEYS_PER_KIND or len(terms) > MAX_KEYS_PER_KIND:
        raise ValueError(f"batch of {n} has too many distinct keys")
    t_us = np.array(list(map(time_us, times)), dtype=np.int64)
    term_index = np.array(ti, dtype=np.int64)
    return EncodedBatch(
        t_us=t_us,
        amount=np.array(amounts, dtype=np.float64),
        txh=np.frombuffer(b"".join(map(transaction_hash, ids)), dtype="<u8"),
        term_hash=_codes(list(terms), _TERM_HASH, terminal_hash)[term_index],
        channel=_codes(channels, _CHANNEL, channel_code),
        mcc=_codes(mccs, _MCC, merchant_category_code),
        card_index=np.array(ci, dtype=np.int64),
        term_index=term_index,
        ref_day=reference_day(t_us, lateness_s),
        card_keys=_keys(card_key, prefix, cards),
        term_keys=_keys(terminal_key, prefix, terms),
        terminal_ids=terminal_ids,
    )


def terminal_day_counts(
    pre: Sequence[bytes | None], batch: EncodedBatch, status: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Counts of days ``D-1 .. D-30``: the stored buckets plus this batch's own increments.

    An applied row adds to its terminal's day; every row sees all of the batch's increments
    to days before its reference day (those are final, see definitions), except a too-late
    row, which sees the state at its arrival: only increments of earlier rows. The loops
    run in C (:func:`features.card_kernel.terminal_day_counts`).
    """
    empty = bytes(TERM_VALUE_BYTES)
    raw = b"".join([v or empty for v in pre])
    if len(raw) != len(pre) * TERM_VALUE_BYTES:
        raise ValueError("a terminal value of the wrong size")
    words = np.frombuffer(raw, dtype="<i4").reshape(len(pre), TERM_VALUE_BYTES // 4)
    day = batch.t_us // DAY_US
    return day_counts_kernel(words, batch.term_index, batch.ref_day, day, status, TERMINAL_MAX_DAYS)


def terminal_values(
    first_day: int, day_counts: npt.NDArray[np.integer], max_time: npt.NDArray[np.float64]
) -> npt.NDArray[np.void]:
    """Terminal values (:data:`TERM_VALUE`) as the script leaves them after counting
    ``day_counts[i, j]`` transactions on day ``first_day + j`` at terminal ``i``, in time
    order, the newest at ``max_time[i]`` (a seeded history; at most
    :data:`TERMINAL_DAY_SLOTS` days, so no two share a slot)."""
    n, days = day_counts.shape
    if days > TERMINAL_DAY_SLOTS:
        raise ValueError(f"{days} days do not fit {TERMINAL_DAY_SLOTS} day slots")
    values = np.zeros(n, dtype=TERM_VALUE)
    values["max_time"] = max_time
    for j in range(days):
        counted = day_counts[:, j] > 0
        slot = values["slots"][:, (first_day + j) % TERMINAL_DAY_SLOTS]
        slot["day"] = np.where(counted, first_day + j, slot["day"])
        slot["count"] = np.where(counted, day_counts[:, j], slot["count"])
        values["slots"][:, (first_day + j) % TERMINAL_DAY_SLOTS] = slot
    return values
