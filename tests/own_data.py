"""An independent transaction generator: a user's own file, not the simulator's.

It writes what the documentation asks of a user's CSV (docs/guides/own-data.md) in a shape
the simulator never produces: upper-case column names that need ``--col``, naive
timestamps (UTC), numeric merchant category codes (``742`` for ``0742``), empty channel
cells, and ``yes``/``no`` labels. Fraud comes from compromised terminals (a share of
their transactions during a window) and card-testing bursts (small amounts, minutes
apart).

The week before the test week holds no fraud: such a label becomes usable *during* the
test week, mid-day, which online reaches the store through the feedback processor as
labels arrive; a daily materialisation alone would serve it a day late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = {
    "transaction_id": "TX_ID",
    "event_time": "TX_TIME",
    "card_id": "CARD_TOKEN",
    "customer_id": "HOLDER",
    "terminal_id": "POS_ID",
    "amount": "AMOUNT_EUR",
    "merchant_category": "MCC",
    "channel": "CHANNEL",
    "label": "CONFIRMED_FRAUD",
}
"""Role -> this file's column; the roles the usual names do not find need ``--col``."""
COL_ARGS = [
    f"--col={role}={name}"
    for role, name in COLUMNS.items()
    if role not in ("transaction_id", "channel")  # TX_ID and CHANNEL are usual names
]
MCCS = (5411, 5812, 5999, 742, 4111, 5732)
CHANNELS = ("pos", "ecom", "atm", "")


@dataclass(frozen=True)
class OwnData:
    frame: pd.DataFrame
    start: datetime
    days: int
    test_days: int

    @property
    def test_start(self) -> datetime:
        return self.start + timedelta(days=self.days - self.test_days)

    def times(self) -> pd.Series:
        return pd.to_datetime(self.frame[COLUMNS["event_time"]], utc=True)

    def before_test(self) -> pd.DataFrame:
        return self.frame[self.times() < pd.Timestamp(self.test_start, tz="UTC")]

    def test_day(self, index: int) -> pd.DataFrame:
        low = pd.Timestamp(self.test_start + timedelta(days=index), tz="UTC")
        times = self.times()
        return self.frame[(times >= low) & (times < low + pd.Timedelta(days=1))]

    def write(self, path: Path, frame: pd.DataFrame | None = None) -> Path:
        (self.frame if frame is None else frame).to_csv(path, index=False)
        return path


def generate(
    *,
    cards: int = 300,
    terminals: int = 120,
    days: int = 70,
    test_days: int = 7,
    seed: int = 5,
    start: datetime = datetime(2026, 3, 2),
) -> OwnData:
    rng = np.random.default_rng(seed)
    home = rng.integers(0, terminals, size=(cards, 6))
    spend = rng.lognormal(3.2, 0.6, cards)
    rows: list[tuple[int, float, int, float, int, str]] = []
    for card in range(cards):
        n = rng.poisson(0.7 * days)
        at = np.sort(rng.uniform(0, days * 86_400, n))
        for t in at:
            terminal = (
                int(home[card, rng.integers(0, 6)])
                if rng.random() < 0.9
                else int(rng.integers(0, terminals))
            )
            amount = round(float(rng.lognormal(np.log(spend[card]), 0.5)), 2)
            rows.append((card, float(t), terminal, amount, 0, str(rng.choice(CHANNELS))))
    gap = ((days - 2 * test_days) * 86_400, (days - test_days) * 86_400)
    compromised = rng.choice(terminals, size=12, replace=False)
    windows = {}
    for terminal in compromised:
        begin = float(rng.uniform(0, days - 10)) * 86_400
        windows[int(terminal)] = (begin, begin + 10 * 86_400)
    for i, (card, t, terminal, amount, _, channel) in enumerate(rows):
        low, high = windows.get(terminal, (0.0, -1.0))
        if low <= t < high and not gap[0] <= t < gap[1] and rng.random() < 0.3:
            rows[i] = (card, t, terminal, amount, 1, channel)
    for card in rng.choice(cards, size=25, replace=False):
        begin = float(rng.uniform(0, days - 1)) * 86_400
        if gap[0] - 86_400 <= begin < gap[1]:
            continue
        for k in range(int(rng.integers(4, 9))):
            terminal = int(rng.integers(0, terminals))
            rows.append((int(card), begin + 240.0 * k, terminal, 1.0 + k, 1, "ecom"))
    rows.sort(key=lambda row: row[1])
    card_ids = np.array([r[0] for r in rows])
    seconds = np.array([r[1] for r in rows])
    times = pd.Timestamp(start) + pd.to_timedelta(np.round(seconds, 3), unit="s")
    frame = pd.DataFrame(
        {
            COLUMNS["transaction_id"]: [f"T{i:07d}" for i in range(len(rows))],
            COLUMNS["event_time"]: times.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3],
            COLUMNS["card_id"]: [f"tok-{c:05d}" for c in card_ids],
            COLUMNS["customer_id"]: [f"holder-{c // 2:05d}" for c in card_ids],
            COLUMNS["terminal_id"]: [f"pos-{r[2]:04d}" for r in rows],
            COLUMNS["amount"]: [r[3] for r in rows],
            COLUMNS["merchant_category"]: rng.choice(MCCS, size=len(rows)),
            COLUMNS["channel"]: [r[5] for r in rows],
            COLUMNS["label"]: np.where([r[4] for r in rows], "yes", "no"),
        }
    )
    return OwnData(frame, start, days, test_days)
