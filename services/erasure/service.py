"""One erasure, top to bottom.

    discover (optional)   retained transactions / review cases -> more cards, transactions
    training store        rows and audit lines of the cards removed; cards forgotten
    changelogs            tombstones for the feedback processor's served rows and labels
    redis                 card state, ledger and ground-truth keys deleted
    verify                no key under the deployment's prefix names an id any more
    audit                 one line in <erasure_dir>/audit.jsonl (append-only, fsynced)

The audit line holds a salted SHA-256 of the customer id, not the id: enough to answer
"was this customer erased, when, by whom" when given the id again, and nothing more.
Idempotent: a second run removes nothing and says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from features.training_store import TrainingStore
from services.connections import redis_client
from services.erasure.parts import ErasurePart, RedisPart, Subject, TrainingStorePart
from services.erasure.settings import ErasureSettings
from services.erasure.topics import discover, tombstone_changelogs

log = logging.getLogger("fraud.erasure")


@dataclass
class ErasureReport:
    erasure_id: str
    customer_sha256: str
    cards: int
    transactions: int
    removed: dict[str, dict[str, int]] = field(default_factory=dict)
    remaining_redis_keys: int = 0
    discovered_records: int = 0

    @property
    def total_removed(self) -> int:
        return sum(sum(part.values()) for part in self.removed.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id,
            "customer_sha256": self.customer_sha256,
            "cards": self.cards,
            "transactions": self.transactions,
            "removed": self.removed,
            "total_removed": self.total_removed,
            "remaining_redis_keys": self.remaining_redis_keys,
            "discovered_records": self.discovered_records,
        }


def erase_customer(
    settings: ErasureSettings,
    customer_id: str,
    card_ids: Sequence[str],
    *,
    requested_by: str,
    discover_in_topics: bool = False,
    extra_parts: Sequence[ErasurePart] = (),
) -> ErasureReport:
    """Erase one customer; ``card_ids`` are the cards the issuer knows they hold (this
    service only ever sees card tokens, never who holds them)."""
    subject = Subject(customer_id, set(card_ids))
    report = ErasureReport(
        erasure_id=uuid.uuid4().hex,
        customer_sha256=_customer_digest(settings.erasure_root, customer_id),
        cards=0,
        transactions=0,
    )
    topics = settings.topics()
    endpoint = settings.kafka()
    if discover_in_topics:
        report.discovered_records = discover(
            endpoint, [topics.transactions, topics.review], subject
        )
    redis_part = RedisPart(redis_client(settings), settings.redis_prefix)
    parts: list[ErasurePart] = [
        TrainingStorePart(
            TrainingStore(settings.training_root, endpoint_url=settings.s3_endpoint_url)
        )
    ]
    parts += list(extra_parts)
    for part in parts:
        report.removed[part.name] = part.erase(subject)
    served, pending = settings.changelogs()
    report.removed["changelogs"] = {
        "tombstones": tombstone_changelogs(endpoint, served, pending, subject)
    }
    report.removed[redis_part.name] = redis_part.erase(subject)
    report.remaining_redis_keys = len(redis_part.remaining(subject))
    report.cards, report.transactions = len(subject.card_ids), len(subject.transaction_ids)
    _append_audit(settings.erasure_root, report, requested_by)
    log.info(
        "stage=erase erasure=%s cards=%d transactions=%d removed=%d remaining_keys=%d",
        report.erasure_id,
        report.cards,
        report.transactions,
        report.total_removed,
        report.remaining_redis_keys,
    )
    return report


def _customer_digest(root: Path, customer_id: str) -> str:
    """SHA-256 of the id under this deployment's erasure salt (created on first use)."""
    salt_file = root / "salt"
    root.mkdir(parents=True, exist_ok=True)
    if not salt_file.exists():
        fd = os.open(salt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(os.urandom(16).hex())
    salt = bytes.fromhex(salt_file.read_text().strip())
    return hashlib.sha256(salt + customer_id.encode()).hexdigest()


def _append_audit(root: Path, report: ErasureReport, requested_by: str) -> None:
    line = json.dumps(
        {
            **report.as_dict(),
            "requested_by": requested_by,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        separators=(",", ":"),
    )
    path = root / "audit.jsonl"
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_audit(root: Path) -> list[dict[str, Any]]:
    path = root / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
