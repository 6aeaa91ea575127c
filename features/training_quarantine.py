"""Where the training store puts parts it cannot read, so one torn file never blocks it.

A part written by :class:`features.training_store.TrainingStore` is whole or absent after
a crash (fsync + rename), so an unreadable one means a disk fault or a copy cut short.
Whoever reads it first (the feedback processor or the retrainer) moves it to
``quarantine/day=.../`` under the same name, appends why to ``quarantine/quarantine.jsonl``,
logs it and calls the ``on_quarantine`` hook (the services count it in a metric).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from streams.durable import append_durable, rename_durable

log = logging.getLogger("fraud.training_store")
OnQuarantine = Callable[[Path, str], None]


class Quarantine:
    def __init__(self, folder: Path, on_quarantine: OnQuarantine | None = None) -> None:
        self.folder = folder
        self.on_quarantine = on_quarantine

    def move(self, path: Path, error: Exception) -> Path | None:
        """Move ``path`` (``.../day=D/part-...``) aside; None if another reader did first."""
        target = self.folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            rename_durable(path, target)
        except FileNotFoundError:
            return None
        reason = f"{type(error).__name__}: {error}"
        log.warning(
            "stage=quarantine unreadable training part %s moved to %s (%s); its labels are "
            "landed again from the audit trail",
            path,
            target,
            reason,
        )
        record = {"at": datetime.now(UTC).isoformat(), "part": str(path), "reason": reason}
        append_durable(self.folder / "quarantine.jsonl", json.dumps(record) + "\n")
        if self.on_quarantine is not None:
            self.on_quarantine(target, reason)
        return target

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("day=*/part-*.parquet"))
