"""What the simulator generates: world size, spending habits and fraud scenarios.

The defaults follow the "simulated dataset" chapter of the Fraud Detection Handbook
(Le Borgne et al.): 5,000 customers, 10,000 terminals on a 100x100 grid, ~0.8 % fraud.
:meth:`SimulatorConfig.small` is a tenth of that world for tests, with the compromise
rates scaled so that the fraud rate and each scenario's share stay the same.
:meth:`SimulatorConfig.scaled` is the handbook's world grown (or shrunk) to a card count:
two terminals per card on a grid grown to keep the handbook's density, so a customer
still has ~78 terminals within ``radius``, and the compromise rates grown with it.

Fraud scenarios (``scenario`` in the ground truth):

0. legitimate;
1. amount above ``fraud_amount_threshold``;
2. ``compromised_terminals_per_day`` terminals compromised each day for
   ``terminal_compromise_days``: every transaction on them is fraud;
3. ``compromised_customers_per_day`` customers compromised each day for
   ``customer_compromise_days``: ``customer_fraud_share`` of their transactions are fraud,
   with the amount multiplied by ``customer_fraud_amount_factor``;
4. card testing (the *new* pattern, off by default, for drift demos): each day
   ``card_testing_per_day`` cards do a burst of small amounts at terminals they never
   used, within minutes.

Fractional per-day rates are spread evenly over days (day ``d`` gets
``floor((d+1)*rate) - floor(d*rate)``), so counts are exact and reproducible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from streams.simulator.errors import InvalidSimulatorConfig

SCENARIOS: tuple[int, ...] = (0, 1, 2, 3, 4)
SCENARIO_NAMES: dict[int, str] = {
    0: "legit",
    1: "high_amount",
    2: "compromised_terminal",
    3: "compromised_customer",
    4: "card_testing",
}

HANDBOOK_CUSTOMERS = 5_000
TERMINALS_PER_CUSTOMER = 2
MAX_ROWS_PER_DAY = 1 << 23
"""Transactions of one kind in one day that get distinct ids (``day.py``'s sequence bits)."""

# Share of all transactions per fraud scenario, (low, high); checked by ``check_bounds``.
DEFAULT_SCENARIO_BOUNDS: dict[int, tuple[float, float]] = {
    1: (0.0001, 0.0030),
    2: (0.0010, 0.0150),
    3: (0.0008, 0.0060),
    4: (0.0, 0.0200),
}

# Merchant category codes given to terminals, with their weights.
DEFAULT_MCC_WEIGHTS: dict[str, float] = {
    "5411": 0.26,  # grocery stores
    "5812": 0.14,  # restaurants
    "5814": 0.10,  # fast food
    "5541": 0.09,  # service stations
    "5912": 0.07,  # drug stores
    "5311": 0.06,  # department stores
    "5999": 0.06,  # miscellaneous retail
    "5691": 0.05,  # clothing
    "5732": 0.04,  # electronics
    "4121": 0.04,  # taxis
    "4111": 0.04,  # commuter transport
    "7011": 0.03,  # hotels
    "5942": 0.02,  # book stores
}
# Countries of e-commerce terminals (physical terminals are all in ``home_country``).
DEFAULT_ECOM_COUNTRIES: dict[str, float] = {
    "FR": 0.70,
    "DE": 0.08,
    "NL": 0.05,
    "IE": 0.05,
    "GB": 0.04,
    "ES": 0.03,
    "US": 0.05,
}


@dataclass(frozen=True)
class SimulatorConfig:
    """Every knob of the generator. Same config + same seed -> same data, byte for byte."""

    seed: int = 42
    n_customers: int = 5_000
    n_terminals: int = 10_000
    grid_size: float = 100.0
    radius: float = 5.0
    amount_mean_range: tuple[float, float] = (5.0, 100.0)
    daily_rate_range: tuple[float, float] = (0.0, 4.0)
    time_of_day_mean_s: float = 43_200.0
    time_of_day_std_s: float = 20_000.0
    currency: str = "EUR"
    home_country: str = "FR"
    ecom_share: float = 0.15
    mcc_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MCC_WEIGHTS))
    ecom_countries: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ECOM_COUNTRIES))
    # scenario 1
    fraud_amount_threshold: float = 220.0
    # scenario 2
    compromised_terminals_per_day: float = 2.0
    terminal_compromise_days: int = 28
    # scenario 3
    compromised_customers_per_day: float = 3.0
    customer_compromise_days: int = 14
    customer_fraud_share: float = 1.0 / 3.0
    customer_fraud_amount_factor: float = 5.0
    # scenario 4: card testing, the new pattern (drift)
    card_testing_per_day: float = 5.0
    card_testing_burst: tuple[int, int] = (4, 10)
    card_testing_amount: tuple[float, float] = (0.5, 5.0)
    card_testing_gap_s: float = 20.0
    card_testing_ecom_share: float = 0.7
    new_pattern_from_day: int | None = None
    # ground truth: when a label becomes known (chargeback delay)
    label_delay_days: tuple[float, float] = (1.0, 7.0)
    # expected outcome, checked by ``check_bounds``
    fraud_rate_bounds: tuple[float, float] = (0.004, 0.015)
    scenario_bounds: dict[int, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_SCENARIO_BOUNDS)
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise InvalidSimulatorConfig(problems)

    @classmethod
    def default(cls, **overrides: Any) -> SimulatorConfig:
        """The handbook's world: 5,000 customers, 10,000 terminals."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides: Any) -> SimulatorConfig:
        """A tenth of the handbook's world (500 customers, 1,000 terminals), for tests.

        Terminal density drops tenfold, so the compromise rates are scaled down tenfold
        too: the share of compromised terminals and customers (hence the fraud rate)
        stays as in the default world.
        """
        base: dict[str, Any] = {
            "n_customers": 500,
            "n_terminals": 1_000,
            "compromised_terminals_per_day": 0.2,
            "compromised_customers_per_day": 0.3,
            "card_testing_per_day": 0.5,
        }
        base.update(overrides)
        return cls(**base)

    @classmethod
    def scaled(cls, cards: int, **overrides: Any) -> SimulatorConfig:
        """The handbook's world with ``cards`` customers (one card each).

        Terminals: two per card. The grid grows with the square root of the card count, so
        customers and terminals keep the handbook's density and every customer ~78
        terminals within ``radius``; the compromise and card-testing rates grow with the
        card count, so the fraud rate and each scenario's share stay the same.
        ``scaled(5_000)`` is :meth:`default`.
        """
        factor = cards / HANDBOOK_CUSTOMERS
        base: dict[str, Any] = {
            "n_customers": cards,
            "n_terminals": TERMINALS_PER_CUSTOMER * cards,
            "grid_size": cls.grid_size * math.sqrt(factor),
            "compromised_terminals_per_day": cls.compromised_terminals_per_day * factor,
            "compromised_customers_per_day": cls.compromised_customers_per_day * factor,
            "card_testing_per_day": cls.card_testing_per_day * factor,
        }
        base.update(overrides)
        return cls(**base)

    def with_(self, **changes: Any) -> SimulatorConfig:
        return replace(self, **changes)

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.seed < 0:
            out.append("seed must be >= 0")
        if self.n_customers < 1 or self.n_terminals < 1:
            out.append("n_customers and n_terminals must be >= 1")
        expected_rows = self.n_customers * sum(self.daily_rate_range) / 2
        if expected_rows > 0.9 * MAX_ROWS_PER_DAY:
            out.append(
                f"about {expected_rows:,.0f} transactions a day: ids allow "
                f"{MAX_ROWS_PER_DAY - 1:,} (fewer customers or a lower daily rate)"
            )
        if self.radius <= 0 or self.grid_size <= 0:
            out.append("radius and grid_size must be > 0")
        low, high = self.card_testing_burst
        if not 1 <= low <= high:
            out.append("card_testing_burst must be (low, high) with 1 <= low <= high")
        a_low, a_high = self.card_testing_amount
        if not 0.01 <= a_low <= a_high:
            out.append("card_testing_amount must be (low, high) with 0.01 <= low <= high")
        if not 0.0 <= self.customer_fraud_share <= 1.0:
            out.append("customer_fraud_share must be within [0, 1]")
        if not 0.0 <= self.ecom_share <= 1.0 or not 0.0 <= self.card_testing_ecom_share <= 1.0:
            out.append("ecom shares must be within [0, 1]")
        d_low, d_high = self.label_delay_days
        if not 0.0 <= d_low <= d_high:
            out.append("label_delay_days must be (low, high) with 0 <= low <= high")
        for name in (
            "compromised_terminals_per_day",
            "compromised_customers_per_day",
            "card_testing_per_day",
        ):
            if getattr(self, name) < 0:
                out.append(f"{name} must be >= 0")
        if self.compromised_terminals_per_day > self.n_terminals:
            out.append("compromised_terminals_per_day exceeds n_terminals")
        if max(self.compromised_customers_per_day, self.card_testing_per_day) > self.n_customers:
            out.append("per-day compromised customers exceed n_customers")
        if self.new_pattern_from_day is not None and self.new_pattern_from_day < 0:
            out.append("new_pattern_from_day must be >= 0")
        if not self.mcc_weights or not self.ecom_countries:
            out.append("mcc_weights and ecom_countries must not be empty")
        return out

    def card_testing_on(self, day: int) -> bool:
        """Whether scenario 4 is switched on for simulated ``day`` (history mode)."""
        return self.new_pattern_from_day is not None and day >= self.new_pattern_from_day

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (for the manifest), keys sorted by the JSON writer."""
        data = asdict(self)
        data["scenario_bounds"] = {str(k): list(v) for k, v in self.scenario_bounds.items()}
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data
