"""Metrics of the local stores shared by several services (one registration per process)."""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import Counter

log = logging.getLogger("fraud.storage")

QUARANTINED_PARTS = Counter(
    "fraud_training_parts_quarantined_total",
    "Unreadable training-store parts moved aside (their labels are re-landed from the audit)",
)


def quarantined_part(path: Path, reason: str) -> None:
    """The training store's ``on_quarantine`` hook: count it (the store logs it)."""
    QUARANTINED_PARTS.inc()
