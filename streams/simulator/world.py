"""The simulated world: customers, their cards and terminals, fixed for a seed.

Customers live at (x, y) on a ``grid_size`` square with a spending mean (uniform in
``amount_mean_range``), a spending std (mean / 2) and a mean number of transactions per
day (uniform in ``daily_rate_range``). Each customer holds one card and shops at the
terminals within ``radius`` of home; those neighbourhoods are precomputed once, as a CSR
layout (``offsets`` / ``neighbours``), so picking a terminal per transaction is one
vectorised gather.

The neighbourhoods are found through a grid of cells one ``radius`` wide: a customer's
terminals lie in the 3 x 3 cells around its own, so the work grows with customers x
terminals in reach, not customers x terminals (a 2,000,000-card world has 4,000,000
terminals). Ids are formatted on demand (:class:`IdColumn`): as strings, the ids of such a
world would take about half a gigabyte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt

from streams.simulator.config import SimulatorConfig

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

_WORLD_STREAM = 0
_PAIRS_PER_BLOCK = 4_000_000  # candidate (customer, terminal) pairs per block: ~100 MB


class IdColumn(Sequence[str]):
    """``{prefix}{i:06d}`` for ``i`` in ``range(n)``: six digits up to 999,999, wider
    beyond (``K1000000``), so every id of a world is unique and ids of the handbook-sized
    world keep their form."""

    def __init__(self, prefix: str, n: int) -> None:
        self.prefix = prefix
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [f"{self.prefix}{i:06d}" for i in range(*index.indices(self._n))]
        i = int(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(index)
        return f"{self.prefix}{i:06d}"

    def take(self, index: npt.NDArray[np.integer]) -> list[str]:
        """The ids of ``index`` (positions in the world), as a list."""
        prefix = self.prefix
        return [f"{prefix}{i:06d}" for i in index.tolist()]


@dataclass(frozen=True)
class World:
    customer_x: F64
    customer_y: F64
    amount_mean: F64
    amount_std: F64
    daily_rate: F64
    terminal_x: F64
    terminal_y: F64
    terminal_channel: list[str]
    terminal_mcc: list[str]
    terminal_country: list[str]
    offsets: I64  # customer c shops at neighbours[offsets[c]:offsets[c + 1]]
    neighbours: I32 | I64  # int32 while terminal indices fit (half the memory)
    customer_ids: IdColumn
    card_ids: IdColumn
    terminal_ids: IdColumn

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_terminals(self) -> int:
        return len(self.terminal_ids)

    def terminal_counts(self) -> I64:
        return np.diff(self.offsets)

    def terminals_of(self, customer: int) -> I64:
        found = self.neighbours[self.offsets[customer] : self.offsets[customer + 1]]
        return found.astype(np.int64)

    def pick_terminals(self, customers: I64, pick: I64) -> I64:
        """The ``pick``-th terminal (in index order) of each customer's neighbourhood."""
        return self.neighbours[self.offsets[customers] + pick].astype(np.int64)

    def distance(self, customers: I64, terminals: I64) -> F64:
        dx = self.customer_x[customers] - self.terminal_x[terminals]
        dy = self.customer_y[customers] - self.terminal_y[terminals]
        return np.asarray(np.hypot(dx, dy), dtype=np.float64)


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> list[str]:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    picks = rng.choice(len(names), size=size, p=p / p.sum())
    return [names[i] for i in picks.tolist()]


@dataclass(frozen=True)
class _Cells:
    """Terminals sorted by grid cell (row-major), each cell's run in ``order``."""

    side: float
    n: int  # cells per row and per column
    order: I64  # terminal indices, by cell then index
    start: I64  # cell k's terminals are order[start[k]:start[k + 1]]

    @classmethod
    def of(cls, tx: F64, ty: F64, grid_size: float, radius: float) -> _Cells:
        n = max(1, math.ceil(grid_size / radius))
        cell = cls._cell(tx, ty, radius, n)
        order = np.argsort(cell, kind="stable").astype(np.int64)
        start = np.zeros(n * n + 1, dtype=np.int64)
        np.cumsum(np.bincount(cell, minlength=n * n), out=start[1:])
        return cls(radius, n, order, start)

    @staticmethod
    def _cell(x: F64, y: F64, side: float, n: int) -> I64:
        col = np.clip(np.floor(x / side), 0, n - 1).astype(np.int64)
        row = np.clip(np.floor(y / side), 0, n - 1).astype(np.int64)
        return row * n + col

    def candidates(self, cx: F64, cy: F64) -> tuple[I64, I64]:
        """Per customer, how many terminals lie in the 3 x 3 cells around it, and their
        positions in ``order`` (three runs per customer: a row of 3 cells is one run)."""
        n = self.n
        home = self._cell(cx, cy, self.side, n)
        row, col = home // n, home % n
        left, right = np.maximum(col - 1, 0), np.minimum(col + 1, n - 1)
        rows = row[:, None] + np.array([-1, 0, 1])
        valid = (rows >= 0) & (rows < n)
        rows = np.clip(rows, 0, n - 1)
        lo = self.start[rows * n + left[:, None]]
        hi = self.start[rows * n + right[:, None] + 1]
        length = np.where(valid, hi - lo, 0)
        flat = length.ravel()
        first = np.cumsum(flat) - flat
        position = np.arange(int(flat.sum()), dtype=np.int64)
        position += np.repeat(lo.ravel() - first, flat)
        return length.sum(axis=1), position


def _neighbourhoods(
    cx: F64, cy: F64, tx: F64, ty: F64, radius: float, grid_size: float
) -> tuple[I64, I32 | I64]:
    """Each customer's terminals within ``radius``, sorted by terminal index (CSR)."""
    cells = _Cells.of(tx, ty, grid_size, radius)
    n_c, n_t = len(cx), len(tx)
    index_type = np.int32 if n_t < 2**31 else np.int64
    r2 = radius * radius
    sx, sy = tx[cells.order], ty[cells.order]  # by cell: candidates are contiguous runs
    per_customer = max(1.0, 9.0 * n_t / (cells.n * cells.n))
    block = max(1, int(_PAIRS_PER_BLOCK / per_customer))
    counts = np.zeros(n_c, dtype=np.int64)
    # room for the expected count without the border's shortfall: rarely grown, and the
    # pages never filled are never touched (np.zeros maps them lazily)
    expected = n_c * n_t * math.pi * r2 / (grid_size * grid_size)
    found: npt.NDArray[np.signedinteger] = np.zeros(int(expected * 1.02) + 1024, index_type)
    filled = 0
    for start in range(0, n_c, block):
        stop = min(start + block, n_c)
        bx, by = cx[start:stop], cy[start:stop]
        per, position = cells.candidates(bx, by)
        # (cx - tx) ** 2 + (cy - ty) ** 2 < r2, operation for operation as a full distance
        # matrix computes it: exactly the same terminals in reach
        d2 = np.repeat(bx, per)
        d2 -= sx[position]
        d2 *= d2
        dy = np.repeat(by, per)
        dy -= sy[position]
        dy *= dy
        d2 += dy
        near = np.flatnonzero(d2 < r2)
        who = np.repeat(np.arange(stop - start, dtype=np.int64), per)[near]
        key = np.sort(who * n_t + cells.order[position[near]])  # by customer, then terminal
        counts[start:stop] = np.bincount(key // n_t, minlength=stop - start)
        if filled + len(key) > len(found):
            remaining = len(key) * (n_c - start) / max(stop - start, 1)
            found = np.resize(found, filled + int(remaining * 1.05) + len(key))
        found[filled : filled + len(key)] = key % n_t
        filled += len(key)
    offsets = np.zeros(n_c + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, found[:filled]


def build_world(config: SimulatorConfig) -> World:
    """Draw customers and terminals for ``config.seed`` (independent of any day)."""
    rng = np.random.default_rng([config.seed, _WORLD_STREAM])
    n_c, n_t, size = config.n_customers, config.n_terminals, config.grid_size
    cx = rng.uniform(0.0, size, n_c)
    cy = rng.uniform(0.0, size, n_c)
    mean = rng.uniform(*config.amount_mean_range, n_c)
    rate = rng.uniform(*config.daily_rate_range, n_c)
    tx = rng.uniform(0.0, size, n_t)
    ty = rng.uniform(0.0, size, n_t)
    is_ecom = rng.random(n_t) < config.ecom_share
    mcc = _choice(rng, config.mcc_weights, n_t)
    ecom_country = _choice(rng, config.ecom_countries, n_t)
    offsets, neighbours = _neighbourhoods(cx, cy, tx, ty, config.radius, size)
    ecom, pos = "ecom", "pos"
    return World(
        customer_x=cx,
        customer_y=cy,
        amount_mean=mean,
        amount_std=mean / 2.0,
        daily_rate=rate,
        terminal_x=tx,
        terminal_y=ty,
        terminal_channel=[ecom if e else pos for e in is_ecom.tolist()],
        terminal_mcc=mcc,
        terminal_country=[
            country if e else config.home_country
            for e, country in zip(is_ecom.tolist(), ecom_country, strict=True)
        ],
        offsets=offsets,
        neighbours=neighbours,
        customer_ids=IdColumn("U", n_c),
        card_ids=IdColumn("K", n_c),
        terminal_ids=IdColumn("T", n_t),
    )
