"""File model registry: one immutable folder per version, atomic pointers, an audit log.

Layout under ``root``::

    versions/v0001/  model.onnx model.txt feature_spec.json metrics.json policy.json
                     model_card.md model_card.json pr_curve.png reference.npy manifest.json
    champion.json    {"version": ..., "history": [older champions...]}   (write + os.replace)
    challenger.json  {"version": ...}
    audit.jsonl      one line per change, append-only

A version folder is assembled under a temporary name and renamed into place, its files
are made read-only and their sha256 recorded in ``manifest.json``; nothing ever writes
into it again. Every change is appended to the audit log and handed to ``publish`` (the
services layer sends it to ``model.events``); this module never imports Kafka.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import RegistryError, RegistryIntegrityError, VersionNotFound
from models.policy import ThresholdPolicy
from models.scoring import FeatureSpec
from streams.events import ModelEvent, ModelEventKind

Publish = Callable[[ModelEvent], None]
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
        reference = _npy_bytes(np.asarray(self.reference, dtype=np.float32))
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
            "metrics.json": _json_bytes(self.metrics),
            "policy.json": self.policy.to_json().encode(),
            "model_card.md": markdown.encode(),
            "model_card.json": _json_bytes(card),
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
    def __init__(self, root: Path, *, publish: Publish | None = None) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.audit_path = self.root / "audit.jsonl"
        self.publish = publish
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    # -- versions -------------------------------------------------------------------------

    def register(self, bundle: ModelBundle, *, parent: str | None = None) -> ModelVersion:
        """Store a new immutable version (parent defaults to the current champion)."""
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
                (staging / name).write_bytes(content)
            manifest = {
                "version": version,
                "created_at": _now().isoformat(),
                "parent": parent,
                "fingerprint": bundle.fingerprint,
                "feature_set_id": bundle.spec.feature_set_id,
                "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
            }
            (staging / MANIFEST).write_bytes(_json_bytes(manifest))
            for child in staging.iterdir():
                child.chmod(0o444)
            final = self.versions_dir / version
            os.rename(staging, final)
            final.chmod(0o555)
            self._record("registered", version, None, [], {"fingerprint": bundle.fingerprint})
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

    def promote(self, version: str, reason: str) -> ModelVersion:
        """Make ``version`` the champion; the old one is remembered for :meth:`rollback`."""
        self.verify(version)
        with self._lock():
            pointer = self._pointer("champion")
            previous = pointer.get("version")
            history = list(pointer.get("history", []))
            if previous and previous != version:
                history.append(previous)
            self._write_pointer("champion", {"version": version, "history": history})
            if self._pointer("challenger").get("version") == version:
                self._write_pointer("challenger", {"version": None})
            self._record("promoted", version, previous, [reason], {})
        return self.get(version)

    def set_challenger(self, version: str, reason: str) -> ModelVersion:
        self.verify(version)
        with self._lock():
            previous = self._pointer("challenger").get("version")
            self._write_pointer("challenger", {"version": version})
            self._record("registered", version, previous, [reason], {"role": "challenger"})
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
            self._write_pointer("champion", {"version": previous, "history": history})
            self._record("rolled_back", previous, current, [reason], {})
        return self.get(previous)

    def reject(self, version: str, reasons: builtins.list[str]) -> None:
        """Record that ``version`` failed its gates; it stops being the challenger."""
        self.get(version)
        with self._lock():
            if self._pointer("challenger").get("version") == version:
                self._write_pointer("challenger", {"version": None})
            self._record("rejected", version, None, reasons, {})

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
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line]

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _number(name: str) -> int:
        return int(name[1:]) if name[1:].isdigit() else 0

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _pointer(self, name: str) -> dict[str, Any]:
        path = self.root / f"{name}.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def _write_pointer(self, name: str, payload: dict[str, Any]) -> None:
        temp = self.root / f".{name}.{uuid.uuid4().hex}.tmp"
        temp.write_bytes(_json_bytes({**payload, "updated_at": _now().isoformat()}))
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, self.root / f"{name}.json")

    def _record(
        self,
        kind: ModelEventKind,
        version: str,
        previous: str | None,
        reasons: builtins.list[str],
        details: dict[str, object],
    ) -> None:
        event = ModelEvent(
            kind=kind,
            model_version=version,
            at=_now(),
            previous_version=previous,
            reasons=reasons,
            details=details,
        )
        line = {
            "at": event.at.isoformat(),
            "kind": kind,
            "version": version,
            "previous": previous,
            "reasons": reasons,
            "details": details,
        }
        with self.audit_path.open("a") as handle:
            handle.write(json.dumps(line, sort_keys=True) + "\n")
        if self.publish is not None:
            self.publish(event)


def _now() -> datetime:
    return datetime.now(UTC)


def _json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n").encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
