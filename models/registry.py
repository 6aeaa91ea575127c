"""File model registry: one immutable folder per version, atomic pointers, an audit log.

Layout under ``root``::

    versions/v0001/  model.onnx model.txt feature_spec.json metrics.json policy.json
                     model_card.md model_card.json pr_curve.png reference.npy manifest.json
    champion.json    {"version": ..., "history": [older champions...], "event": {...}}
    challenger.json  {"version": ..., "event": {...}}
    audit.jsonl      one line per change, append-only, each with its ``event_id``
    audit.jsonl.cursor   how much of the audit log was announced on ``model.events``

A version folder is assembled under a temporary name, fsynced and renamed into place, its
files are made read-only and their sha256 recorded in ``manifest.json``; nothing ever
writes into it again. Pointers are replaced atomically (fsync, rename, fsync the folder).

A change is made, or not, at one atomic step: the version folder's rename (register), or
the pointer file's rename, which carries the change's event (promote, rollback, challenger,
reject of the challenger). The audit line follows under the same lock; should a crash fall
in between, the next writer to take the lock finds the pointer's event (or the version)
missing from the audit log and appends it. The audit log is also the registry's outbox:
:meth:`ModelRegistry.announcements` is drained to ``model.events`` by the services layer
(at least once, by ``event_id``), so no network call ever happens under the lock and a
broker outage delays an announcement without touching the change. This module never
imports Kafka.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np

from models.errors import (
    PromotionConflict,
    RegistryError,
    RegistryIntegrityError,
    VersionNotFound,
)
from models.policy import ThresholdPolicy
from models.registry_files import (
    audit_event,
    change_record,
    json_bytes,
    jsonable,
    lost_promotion,
    now,
    npy_bytes,
    write_synced,
)
from models.scoring import FeatureSpec
from streams.durable import append_durable, fsync_dir, write_atomic
from streams.outbox import Outbox

log = logging.getLogger("fraud.registry")
MANIFEST = "manifest.json"
CARD_TITLE = "# Model card - "  # the registry fills in the version it assigns


@dataclass(frozen=True)
class ModelBundle:
    """Everything a trained model leaves behind, ready to be registered."""

    onnx: bytes
    model_text: str
    spec: FeatureSpec
    metrics: dict[str, Any]
    policy: ThresholdPolicy
    reference: np.ndarray
    fingerprint: str
    card_markdown: str = ""
    card: dict[str, Any] = field(default_factory=dict)
    pr_curve_png: bytes = b""

    def files(self, version: str = "", parent: str | None = None) -> dict[str, bytes]:
        reference = npy_bytes(np.asarray(self.reference, dtype=np.float32))
        markdown = self.card_markdown
        if version and markdown.startswith(CARD_TITLE):
            _, _, rest = markdown.partition("\n")
            title = f"{CARD_TITLE}{version}" + (f" (parent {parent})" if parent else "")
            markdown = f"{title}\n{rest}"
        card = {**self.card, "version": version, "parent": parent} if version else self.card
        return {
            "model.onnx": self.onnx,
            "model.txt": self.model_text.encode(),
            "feature_spec.json": self.spec.to_json().encode(),
            "metrics.json": json_bytes(self.metrics),
            "policy.json": self.policy.to_json().encode(),
            "model_card.md": markdown.encode(),
            "model_card.json": json_bytes(card),
            "pr_curve.png": self.pr_curve_png,
            "reference.npy": reference,
        }


@dataclass(frozen=True)
class ModelVersion:
    version: str
    path: Path
    created_at: str
    parent: str | None
    fingerprint: str
    feature_set_id: str
    files: dict[str, str]

    def spec(self) -> FeatureSpec:
        return FeatureSpec.read(self.path / "feature_spec.json")

    def policy(self) -> ThresholdPolicy:
        return ThresholdPolicy.from_json((self.path / "policy.json").read_text())

    def metrics(self) -> dict[str, Any]:
        return dict(json.loads((self.path / "metrics.json").read_text()))

    def reference(self) -> np.ndarray:
        return np.load(self.path / "reference.npy", allow_pickle=False)


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.audit_path = self.root / "audit.jsonl"
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    def announcements(self) -> Outbox:
        """The audit log as an outbox: changes not yet announced on ``model.events``.

        A registry written before the audit log carried event ids announced its changes
        itself, so its cursor starts at the end of the log."""
        outbox = Outbox(self.audit_path, decode=audit_event, compact_bytes=None, name="registry")
        outbox.start_at_end()
        return outbox

    # -- versions -------------------------------------------------------------------------

    def register(
        self,
        bundle: ModelBundle,
        *,
        parent: str | None = None,
        details: dict[str, object] | None = None,
    ) -> ModelVersion:
        """Store a new immutable version (parent defaults to the current champion);
        ``details`` go into its audit line (e.g. what its policy was fitted on)."""
        with self._lock():
            if parent is None:
                parent = self._pointer("champion").get("version")
            number = 1 + max(
                (self._number(p.name) for p in self.versions_dir.glob("v*")), default=0
            )
            version = f"v{number:04d}"
            files = bundle.files(version, parent)
            staging = self.versions_dir / f".tmp-{uuid.uuid4().hex}"
            staging.mkdir()
            for name, content in files.items():
                write_synced(staging / name, content)
            manifest = {
                "version": version,
                "created_at": now().isoformat(),
                "parent": parent,
                "fingerprint": bundle.fingerprint,
                "feature_set_id": bundle.spec.feature_set_id,
                "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
            }
            write_synced(staging / MANIFEST, json_bytes(manifest))
            for child in staging.iterdir():
                child.chmod(0o444)
            fsync_dir(staging)
            final = self.versions_dir / version
            os.rename(staging, final)  # the commit point of a registration
            final.chmod(0o555)
            fsync_dir(self.versions_dir)
            self._append_audit(
                change_record(
                    "registered",
                    version,
                    None,
                    [],
                    {"fingerprint": bundle.fingerprint, **(details or {})},
                )
            )
        return self.get(version)

    def get(self, version: str) -> ModelVersion:
        path = self.versions_dir / version
        if not version.startswith("v") or not (path / MANIFEST).is_file():
            raise VersionNotFound(version)
        raw = json.loads((path / MANIFEST).read_text())
        return ModelVersion(
            raw["version"],
            path,
            raw["created_at"],
            raw["parent"],
            raw["fingerprint"],
            raw["feature_set_id"],
            dict(raw["files"]),
        )

    def list(self) -> builtins.list[ModelVersion]:
        names = sorted((p.name for p in self.versions_dir.glob("v*")), key=self._number)
        return [self.get(name) for name in names]

    def verify(self, version: str) -> None:
        """Raise :class:`RegistryIntegrityError` if any file differs from its manifest hash."""
        entry = self.get(version)
        changed = [
            name
            for name, digest in entry.files.items()
            if not (entry.path / name).is_file()
            or hashlib.sha256((entry.path / name).read_bytes()).hexdigest() != digest
        ]
        if changed:
            raise RegistryIntegrityError(version, changed)

    # -- pointers -------------------------------------------------------------------------

    def champion(self) -> ModelVersion | None:
        version = self._pointer("champion").get("version")
        return self.get(version) if version else None

    def challenger(self) -> ModelVersion | None:
        version = self._pointer("challenger").get("version")
        return self.get(version) if version else None

    def promote(
        self,
        version: str,
        reason: str,
        details: dict[str, object] | None = None,
        *,
        replaces: str | EllipsisType | None = ...,
    ) -> ModelVersion:
        """Make ``version`` the champion; the old one is remembered for :meth:`rollback`.

        ``replaces`` is the champion the decision was made against (None: there was none);
        if another writer changed the champion meanwhile, :class:`PromotionConflict` is
        raised and the audit records the lost promotion."""
        self.verify(version)
        with self._lock():
            pointer = self._pointer("champion")
            previous = pointer.get("version")
            if replaces is not ... and previous != replaces:
                self._append_audit(lost_promotion(version, replaces, previous, reason))
                raise PromotionConflict(version, replaces, previous)
            history = list(pointer.get("history", []))
            if previous and previous != version:
                history.append(previous)
            event = change_record("promoted", version, previous, [reason], details or {})
            self._write_pointer("champion", {"version": version, "history": history}, event)
            if self._pointer("challenger").get("version") == version:
                self._write_pointer("challenger", {"version": None}, event)
            self._append_audit(event)
        return self.get(version)

    def set_challenger(self, version: str, reason: str) -> ModelVersion:
        self.verify(version)
        with self._lock():
            previous = self._pointer("challenger").get("version")
            event = change_record("registered", version, previous, [reason], {"role": "challenger"})
            self._write_pointer("challenger", {"version": version}, event)
            self._append_audit(event)
        return self.get(version)

    def rollback(self, reason: str) -> ModelVersion:
        """Make the previous champion the champion again; returns it."""
        with self._lock():
            pointer = self._pointer("champion")
            history = list(pointer.get("history", []))
            current = pointer.get("version")
            if not history:
                raise RegistryError(
                    f"nothing to roll back to: champion {current} has no predecessor"
                )
            previous = history.pop()
            self.verify(previous)
            event = change_record("rolled_back", previous, current, [reason], {})
            self._write_pointer("champion", {"version": previous, "history": history}, event)
            self._append_audit(event)
        return self.get(previous)

    def reject(
        self,
        version: str,
        reasons: builtins.list[str],
        details: dict[str, object] | None = None,
    ) -> None:
        """Record that ``version`` failed its gates; it stops being the challenger."""
        self.get(version)
        with self._lock():
            event = change_record("rejected", version, None, reasons, details or {})
            if self._pointer("challenger").get("version") == version:
                self._write_pointer("challenger", {"version": None}, event)
            self._append_audit(event)

    def status(self, version: str) -> str:
        """``champion`` | ``challenger`` | ``rejected`` | ``registered``."""
        if self._pointer("champion").get("version") == version:
            return "champion"
        if self._pointer("challenger").get("version") == version:
            return "challenger"
        if any(e["kind"] == "rejected" and e["version"] == version for e in self.audit()):
            return "rejected"
        return "registered"

    def audit(self) -> builtins.list[dict[str, Any]]:
        """Every change, oldest first (a line torn by a crash is skipped)."""
        if not self.audit_path.exists():
            return []
        lines = []
        for text in self.audit_path.read_text().splitlines():
            try:
                line = json.loads(text) if text else None
            except json.JSONDecodeError:
                log.warning("stage=registry skipped a torn audit line in %s", self.audit_path)
                continue
            if isinstance(line, dict):
                lines.append(line)
        return lines

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _number(name: str) -> int:
        return int(name[1:]) if name[1:].isdigit() else 0

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """The writers' lock; whoever takes it first finishes a change a crash cut short."""
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._reconcile()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _reconcile(self) -> None:
        """Append the audit lines a crash left out: a pointer's event, a new version."""
        for staging in self.versions_dir.glob(".tmp-*"):  # a registration that never renamed
            shutil.rmtree(staging, ignore_errors=True)
        audit = self.audit()
        known = {line.get("event_id") for line in audit}
        for name in ("champion", "challenger"):
            event = self._pointer(name).get("event")
            if isinstance(event, dict) and event.get("event_id") not in known:
                log.warning(
                    "stage=registry recovered %s %s: its audit line was cut by a crash",
                    event.get("kind"),
                    event.get("version"),
                )
                self._append_audit(event)
                known.add(event.get("event_id"))
        registered = {line["version"] for line in audit if line.get("kind") == "registered"}
        for path in sorted(self.versions_dir.glob("v*"), key=lambda p: self._number(p.name)):
            if path.name not in registered and (path / MANIFEST).is_file():
                log.warning("stage=registry recovered the registration of %s", path.name)
                self._append_audit(
                    change_record("registered", path.name, None, [], {"recovered": True})
                )

    def _pointer(self, name: str) -> dict[str, Any]:
        path = self.root / f"{name}.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def _write_pointer(
        self, name: str, payload: dict[str, Any], event: dict[str, Any] | None = None
    ) -> None:
        body = {**payload, "updated_at": now().isoformat()}
        if event is not None:
            body["event"] = event
        write_atomic(self.root / f"{name}.json", json_bytes(body))

    def _append_audit(self, line: dict[str, Any]) -> None:
        self.announcements()  # fixes where announcing starts before the first new line
        append_durable(self.audit_path, json.dumps(line, sort_keys=True, default=jsonable) + "\n")
