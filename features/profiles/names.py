"""Names and constants of the terminal-risk profile: one place, derived, never re-listed.

The feature registry (:mod:`features.definitions`) registers these names with
``source="profile"``, ``entity="terminal"``; the Feast feature view, the offline function,
the direct reader and the writer all take their column order from :data:`TERMINAL_RISK_FEATURES`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

RISK_WINDOWS_DAYS: tuple[int, ...] = (1, 2, 3, 7, 14, 28, 30)
"""Windows (days) of the label-delayed fraud count / share."""

DEFAULT_DELAY_DAYS = 7
"""Label delay: a window ends ``delay`` days before the as-of day."""

DAYS_SINCE_NONE = 365.0
"""``terminal_days_since_fraud`` when the terminal has no usable fraud (also its cap)."""

FRAUD_COUNT_FEATURES: tuple[str, ...] = tuple(
    f"terminal_fraud_count_{w}d" for w in RISK_WINDOWS_DAYS
)
FRAUD_SHARE_FEATURES: tuple[str, ...] = tuple(
    f"terminal_fraud_share_{w}d" for w in RISK_WINDOWS_DAYS
)
DAYS_SINCE_FEATURE = "terminal_days_since_fraud"

TERMINAL_RISK_FEATURES: tuple[str, ...] = (
    *FRAUD_COUNT_FEATURES,
    *FRAUD_SHARE_FEATURES,
    DAYS_SINCE_FEATURE,
)
"""The fixed column order of every terminal-risk matrix (15 columns)."""

DAYS_SINCE_COLUMN = len(TERMINAL_RISK_FEATURES) - 1

TERMINAL_RISK_DEFAULTS: tuple[float, ...] = (0.0,) * (2 * len(RISK_WINDOWS_DAYS)) + (
    DAYS_SINCE_NONE,
)
"""Value of each column for a terminal with no (or an expired) profile."""

TERMINAL_ENTITY = "terminal"
TERMINAL_JOIN_KEY = "terminal_id"
CUSTOMER_ENTITY = "customer"
CUSTOMER_JOIN_KEY = "customer_id"
TERMINAL_RISK_VIEW = "terminal_risk"
FEAST_PROJECT = "fraud"

TERMINAL_RISK_TTL = timedelta(days=2)
"""Feature-view TTL: a profile older than this (relative to the as-of time) is served as
defaults. Rows are written at every day start and at every label arrival, so 2 days
tolerate one missed daily refresh before the profile degrades to defaults."""

ONLINE_KEY_TTL_SECONDS = 3 * 24 * 3600
"""Redis key TTL of the online rows (``key_ttl_seconds`` in ``feature_store.yaml``): a
terminal that stops receiving rows is dropped from Redis a day after its profile expired."""

SOURCE_FILE = "terminal_risk.parquet"
"""File name of the Feast source table under the repository's ``data/`` folder."""

REPO_DIR = Path(__file__).resolve().parent.parent / "repo"
"""The Feast repository (``feature_store.yaml`` + definitions) of this project."""
