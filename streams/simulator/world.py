"""The simulated world: customers, their cards and terminals, fixed for a seed.

Customers live at (x, y) on a ``grid_size`` square with a spending mean (uniform in
``amount_mean_range``), a spending std (mean / 2) and a mean number of transactions per
day (uniform in ``daily_rate_range``). Each customer holds one card and shops at the
terminals within ``radius`` of home; those neighbourhoods are precomputed once, as a CSR
layout (``offsets`` / ``neighbours``), so picking a terminal per transaction is one
vectorised gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.simulator.config import SimulatorConfig

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_WORLD_STREAM = 0
_CHUNK = 256  # customers per distance block: 256 x 10,000 float64 = 20 MB


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
    neighbours: I64
    customer_ids: list[str]
    card_ids: list[str]
    terminal_ids: list[str]

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_terminals(self) -> int:
        return len(self.terminal_ids)

    def terminal_counts(self) -> I64:
        return np.diff(self.offsets)

    def terminals_of(self, customer: int) -> I64:
        return self.neighbours[self.offsets[customer] : self.offsets[customer + 1]]

    def distance(self, customers: I64, terminals: I64) -> F64:
        dx = self.customer_x[customers] - self.terminal_x[terminals]
        dy = self.customer_y[customers] - self.terminal_y[terminals]
        return np.asarray(np.hypot(dx, dy), dtype=np.float64)


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> list[str]:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    picks = rng.choice(len(names), size=size, p=p / p.sum())
    return [names[i] for i in picks]


def _neighbourhoods(cx: F64, cy: F64, tx: F64, ty: F64, radius: float) -> tuple[I64, I64]:
    counts = np.zeros(len(cx), dtype=np.int64)
    blocks: list[I64] = []
    r2 = radius * radius
    for start in range(0, len(cx), _CHUNK):
        stop = min(start + _CHUNK, len(cx))
        d2 = (cx[start:stop, None] - tx[None, :]) ** 2 + (cy[start:stop, None] - ty[None, :]) ** 2
        rows, cols = np.nonzero(d2 < r2)  # row-major: grouped by customer, terminals sorted
        counts[start:stop] = np.bincount(rows, minlength=stop - start)
        blocks.append(cols.astype(np.int64))
    offsets = np.zeros(len(cx) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    neighbours = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
    return offsets, neighbours


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
    offsets, neighbours = _neighbourhoods(cx, cy, tx, ty, config.radius)
    return World(
        customer_x=cx,
        customer_y=cy,
        amount_mean=mean,
        amount_std=mean / 2.0,
        daily_rate=rate,
        terminal_x=tx,
        terminal_y=ty,
        terminal_channel=["ecom" if e else "pos" for e in is_ecom],
        terminal_mcc=mcc,
        terminal_country=[
            country if e else config.home_country
            for e, country in zip(is_ecom, ecom_country, strict=True)
        ],
        offsets=offsets,
        neighbours=neighbours,
        customer_ids=[f"U{i:06d}" for i in range(n_c)],
        card_ids=[f"K{i:06d}" for i in range(n_c)],
        terminal_ids=[f"T{i:06d}" for i in range(n_t)],
    )
