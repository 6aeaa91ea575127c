"""One simulated day of transactions, with its ground truth, as numpy columns.

Every day draws from its own random streams (``[seed, stream, day]``), so any day can be
generated alone, in any order, with the same result: the history writer goes day by day
and the live stream generates the next day only when it needs it (bounded memory).

Transaction ids are ``"tx"`` + 16 hex digits (two groups of 8) of a bijective mix of
``(day, kind, seq)`` with a salt: unique within a salt, stable for a seed, and saying
nothing about the label. The dash keeps every run of decimal digits under 13, so no id can
look like a card number to the intake's PAN scanner (:mod:`streams.pan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.simulator.config import MAX_ROWS_PER_DAY, SimulatorConfig
from streams.simulator.errors import InvalidSimulatorConfig
from streams.simulator.world import World

I8 = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

DAY_US = 86_400 * 1_000_000
_BASE, _TERMINALS, _CUSTOMERS, _CARD_TESTING = 1, 2, 3, 4  # random stream ids
_KIND_BASE, _KIND_CARD_TESTING = 0, 1
_SEQ_BITS = 23
assert MAX_ROWS_PER_DAY == 1 << _SEQ_BITS
_DAY_OFFSET = 1 << 32  # seeds must be >= 0: compromises may start on negative days


@dataclass(frozen=True)
class DayBatch:
    """Rows of one day, sorted by (time, transaction_id)."""

    day: int
    time_us: I64  # microseconds since the start of the day
    customer: I64
    terminal: I64
    amount: F64
    device: list[str | None]
    transaction_id: list[str]
    is_fraud: I8
    scenario: I8
    label_delay_us: I64

    def __len__(self) -> int:
        return len(self.time_us)

    def take(self, index: I64) -> DayBatch:
        return DayBatch(
            day=self.day,
            time_us=self.time_us[index],
            customer=self.customer[index],
            terminal=self.terminal[index],
            amount=self.amount[index],
            device=[self.device[i] for i in index],
            transaction_id=[self.transaction_id[i] for i in index],
            is_fraud=self.is_fraud[index],
            scenario=self.scenario[index],
            label_delay_us=self.label_delay_us[index],
        )


def per_day_count(rate: float, day: int) -> int:
    """How many compromises start on ``day``: fractional rates spread evenly over days."""
    return int(np.floor((day + 1) * rate) - np.floor(day * rate))


def compromised(seed: int, stream: int, population: int, rate: float, day: int) -> I64:
    """Indices compromised on ``day`` (deterministic for seed, stream and day)."""
    count = per_day_count(rate, day)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, stream, day + _DAY_OFFSET])
    return rng.choice(population, size=count, replace=False).astype(np.int64)


def active_compromised(
    seed: int, stream: int, population: int, rate: float, day: int, duration_days: int
) -> I64:
    """Indices compromised on any of the ``duration_days`` days ending with ``day``.

    Days before day 0 count too: the world is already in its steady state on day 0, so
    short histories and streams have the same fraud rate as long ones.
    """
    days = range(day - duration_days + 1, day + 1)
    picked = [compromised(seed, stream, population, rate, d) for d in days]
    return np.unique(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def _mix(keys: U64, salt: int) -> U64:
    """splitmix64 finaliser of ``keys + salt``: a bijection of uint64 for a fixed salt."""
    with np.errstate(over="ignore"):
        z = keys + np.uint64(salt % (1 << 64))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def _times(rng: np.random.Generator, n: int, config: SimulatorConfig) -> F64:
    """Seconds of the day, normal around ``time_of_day_mean_s``, truncated to the day."""
    t = rng.normal(config.time_of_day_mean_s, config.time_of_day_std_s, n)
    bad = (t < 0) | (t >= 86_400)
    while bad.any():
        t[bad] = rng.normal(config.time_of_day_mean_s, config.time_of_day_std_s, int(bad.sum()))
        bad = (t < 0) | (t >= 86_400)
    return np.asarray(t, dtype=np.float64)


def base_rows(
    world: World, config: SimulatorConfig, day: int
) -> tuple[I64, I64, I64, F64, I8, I8, I64]:
    """The day's rows before card testing, in draw order (by customer), without ids:
    ``(time_us, customer, terminal, amount, is_fraud, scenario, label_delay_us)``.
    :func:`generate_day` adds ids and sorts them; a caller that needs only the numbers
    (seeding weeks of state for millions of cards) skips that work."""
    rng = np.random.default_rng([config.seed, _BASE, day])
    counts = rng.poisson(world.daily_rate)
    n_terminals = world.terminal_counts()
    counts[n_terminals == 0] = 0  # a customer with no terminal nearby cannot shop
    customer = np.repeat(np.arange(world.n_customers, dtype=np.int64), counts)
    n = len(customer)
    time_us = (_times(rng, n, config) * 1_000_000).astype(np.int64)
    mean = world.amount_mean[customer]
    amount = rng.normal(mean, world.amount_std[customer])
    negative = amount <= 0
    amount[negative] = rng.uniform(0.0, 2.0 * mean[negative])
    amount = np.maximum(np.round(amount, 2), 0.01)
    pick = (rng.random(n) * n_terminals[customer]).astype(np.int64)
    terminal = world.pick_terminals(customer, pick)
    is_fraud = np.zeros(n, dtype=np.int8)
    scenario = np.zeros(n, dtype=np.int8)
    # scenario 1: high amounts
    high = amount > config.fraud_amount_threshold
    is_fraud[high], scenario[high] = 1, 1
    # scenario 2: compromised terminals
    bad_terminals = active_compromised(
        config.seed,
        _TERMINALS,
        world.n_terminals,
        config.compromised_terminals_per_day,
        day,
        config.terminal_compromise_days,
    )
    on_bad = np.isin(terminal, bad_terminals)
    is_fraud[on_bad], scenario[on_bad] = 1, 2
    # scenario 3: compromised customers, a share of their transactions at x5 amounts
    bad_customers = active_compromised(
        config.seed,
        _CUSTOMERS,
        world.n_customers,
        config.compromised_customers_per_day,
        day,
        config.customer_compromise_days,
    )
    stolen = np.isin(customer, bad_customers) & (rng.random(n) < config.customer_fraud_share)
    amount[stolen] = np.round(amount[stolen] * config.customer_fraud_amount_factor, 2)
    is_fraud[stolen], scenario[stolen] = 1, 3
    delay = _label_delay(rng, n, config)
    return time_us, customer, terminal, amount, is_fraud, scenario, delay


def _label_delay(rng: np.random.Generator, n: int, config: SimulatorConfig) -> I64:
    low, high = config.label_delay_days
    return (rng.uniform(low, high, n) * DAY_US).astype(np.int64)


def _far_terminals(
    rng: np.random.Generator, world: World, config: SimulatorConfig, victims: I64
) -> I64:
    """One terminal per row, outside the victim's neighbourhood, preferably e-commerce."""
    ecom = np.flatnonzero(np.array(world.terminal_channel) == "ecom")
    n = len(victims)
    out = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    for _ in range(50):
        if len(todo) == 0:
            break
        use_ecom = (rng.random(len(todo)) < config.card_testing_ecom_share) & (len(ecom) > 0)
        anywhere = rng.integers(0, world.n_terminals, len(todo))
        if len(ecom):
            anywhere[use_ecom] = ecom[rng.integers(0, len(ecom), int(use_ecom.sum()))]
        out[todo] = anywhere
        near = world.distance(victims[todo], out[todo]) < config.radius
        todo = todo[near]
    return out


def _card_testing_rows(
    world: World, config: SimulatorConfig, day: int
) -> tuple[I64, I64, I64, F64, list[str | None], I64]:
    victims = compromised(
        config.seed, _CARD_TESTING, world.n_customers, config.card_testing_per_day, day
    )
    rng = np.random.default_rng([config.seed, _CARD_TESTING, day, 1])
    low, high = config.card_testing_burst
    sizes = rng.integers(low, high + 1, len(victims))
    customer = np.repeat(victims, sizes)
    n = len(customer)
    span_s = high * config.card_testing_gap_s * 4
    starts = rng.uniform(0.0, 86_400.0 - span_s, len(victims))
    gaps = rng.exponential(config.card_testing_gap_s, n)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    csum = np.cumsum(gaps)
    offset = csum - np.repeat(csum[first] if n else csum[:0], sizes)
    seconds = np.minimum(np.repeat(starts, sizes) + offset, 86_399.999)
    amount = np.round(rng.uniform(*config.card_testing_amount, n), 2)
    terminal = _far_terminals(rng, world, config, customer)
    burst_device = [f"X{v:08d}" for v in rng.integers(0, 10**8, len(victims))]
    device: list[str | None] = [
        burst_device[b] if world.terminal_channel[t] == "ecom" else None
        for b, t in zip(np.repeat(np.arange(len(victims)), sizes), terminal, strict=True)
    ]
    delay = _label_delay(rng, n, config)
    return (seconds * 1_000_000).astype(np.int64), customer, terminal, amount, device, delay


def base_numbers(day: int, n: int, salt: int) -> U64:
    """The 64-bit numbers the transaction ids of :func:`base_rows`' ``n`` rows of ``day``
    are formatted from (``tx{hi:08x}-{lo:08x}``), in the rows' draw order."""
    keys = (np.uint64(day) << np.uint64(_SEQ_BITS + 1)) | np.arange(n, dtype=np.uint64)
    return _mix(keys, salt)


def generate_day(
    world: World, config: SimulatorConfig, day: int, *, card_testing: bool, salt: int
) -> DayBatch:
    """All transactions of simulated ``day`` (0-based), sorted by (time, transaction_id)."""
    time_us, customer, terminal, amount, is_fraud, scenario, delay = base_rows(world, config, day)
    if len(time_us) >= MAX_ROWS_PER_DAY:
        raise InvalidSimulatorConfig(
            [f"day {day} has {len(time_us):,} transactions: ids allow {MAX_ROWS_PER_DAY - 1:,}"]
        )
    kinds = [np.full(len(time_us), _KIND_BASE, dtype=np.uint64)]
    seqs = [np.arange(len(time_us), dtype=np.uint64)]
    device: list[str | None] = [
        f"D{c:06d}" if world.terminal_channel[t] == "ecom" else None
        for c, t in zip(customer.tolist(), terminal.tolist(), strict=True)
    ]
    if card_testing:
        c_time, c_cust, c_term, c_amount, c_device, c_delay = _card_testing_rows(world, config, day)
        m = len(c_time)
        time_us = np.concatenate([time_us, c_time])
        customer = np.concatenate([customer, c_cust])
        terminal = np.concatenate([terminal, c_term])
        amount = np.concatenate([amount, c_amount])
        is_fraud = np.concatenate([is_fraud, np.ones(m, dtype=np.int8)])
        scenario = np.concatenate([scenario, np.full(m, 4, dtype=np.int8)])
        delay = np.concatenate([delay, c_delay])
        device.extend(c_device)
        kinds.append(np.full(m, _KIND_CARD_TESTING, dtype=np.uint64))
        seqs.append(np.arange(m, dtype=np.uint64))
    keys = (
        (np.uint64(day) << np.uint64(_SEQ_BITS + 1))
        | (np.concatenate(kinds) << np.uint64(_SEQ_BITS))
        | np.concatenate(seqs)
    )
    mixed = _mix(keys, salt)  # formatted as the transaction ids
    order = np.lexsort((mixed, time_us)).astype(np.int64)
    ids = [f"tx{v >> 32:08x}-{v & 0xFFFFFFFF:08x}" for v in mixed[order].tolist()]
    return DayBatch(
        day=day,
        time_us=time_us[order],
        customer=customer[order],
        terminal=terminal[order],
        amount=amount[order],
        device=[device[i] for i in order.tolist()],
        transaction_id=ids,
        is_fraud=is_fraud[order],
        scenario=scenario[order],
        label_delay_us=delay[order],
    )
