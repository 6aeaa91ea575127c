"""The model registry on S3-compatible object storage, for several hosts sharing it.

Layout under ``s3://bucket/prefix`` (the same files as the folder registry)::

    versions/v0042/claim.json      who took the number (If-None-Match: *)
    versions/v0042/<files>         model.onnx ... reference.npy, then manifest.json
    champion.json, challenger.json  pointers, each carrying its change's event
    audit/<at>-<event_id>.json     one object per change: concurrent writers lose none
    announced/<event_id>           set once the change reached ``model.events``

There is no lock: every write that two hosts could make at once is conditional.

* A version number is taken by creating its ``claim.json`` (``If-None-Match: *``); the
  loser takes the next number. The files follow, ``manifest.json`` last: it is the commit
  point, a version without it is not listed. Nothing under a claimed prefix is written
  again, so a version read once is kept in a local cache folder and never fetched again
  (its files are checked against the manifest's sha256 when cached).
* A pointer changes by ``If-Match`` on the ETag it was read at (``If-None-Match: *`` when
  there was none): of two promoters that read the same champion, one wins; the other gets
  :class:`PromotionConflict` and a ``promotion_lost`` audit record.
* The audit record follows the pointer; a crash in between is healed by the next writer,
  which finds the pointer's event without its record and creates it (same key: once).
* :meth:`ObjectModelRegistry.champion` asks for the pointer's ETag with a HEAD and reads
  it only when it changed, which keeps the scorers' fallback poll cheap.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Any

from models.errors import (
    PromotionConflict,
    RegistryError,
    RegistryIntegrityError,
    VersionNotFound,
)
from models.registry import MANIFEST, ModelBundle, ModelVersion
from models.registry_files import (
    audit_event,
    change_record,
    json_bytes,
    jsonable,
    lost_promotion,
    now,
)
from streams.object_outbox import ObjectOutbox
from streams.object_store import ObjectStore

log = logging.getLogger("fraud.registry")
_RETRIES = 20


class ObjectModelRegistry:
    def __init__(self, store: ObjectStore, cache_dir: Path) -> None:
        self.store = store
        self.root = store.url
        key = hashlib.sha256(store.url.encode()).hexdigest()[:16]
        self.cache_dir = Path(cache_dir) / key
        self._champion_seen: tuple[str, ModelVersion | None] | None = None
        self._records: dict[str, dict[str, Any]] = {}

    def announcements(self) -> ObjectOutbox:
        """The audit records as an outbox: changes not yet announced on ``model.events``."""
        return ObjectOutbox(self.store, decode=audit_event, name="registry")

    # -- versions -------------------------------------------------------------------------

    def register(
        self,
        bundle: ModelBundle,
        *,
        parent: str | None = None,
        details: dict[str, object] | None = None,
    ) -> ModelVersion:
        """Store a new immutable version (parent defaults to the current champion);
        ``details`` go into its audit record."""
        self._reconcile()
        if parent is None:
            parent = self._pointer("champion")[0].get("version")
        number = 1 + max((_number(v) for v in self._version_names(claimed=True)), default=0)
        claim = json_bytes({"claimed_at": now().isoformat(), "by": uuid.uuid4().hex})
        for _ in range(_RETRIES):
            if self.store.create(f"versions/v{number:04d}/claim.json", claim) is not None:
                break
            number += 1
        else:
            raise RegistryError(f"no free version number after {_RETRIES} tries")
        version = f"v{number:04d}"
        files = bundle.files(version, parent)
        for name, content in files.items():
            self.store.write(f"versions/{version}/{name}", content)
        manifest = {
            "version": version,
            "created_at": now().isoformat(),
            "parent": parent,
            "fingerprint": bundle.fingerprint,
            "feature_set_id": bundle.spec.feature_set_id,
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        }
        self.store.write(f"versions/{version}/{MANIFEST}", json_bytes(manifest))  # commit
        self._record(
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
        """The version, its files in the local cache (fetched and checked once)."""
        if not version.startswith("v") or not version[1:].isdigit():
            raise VersionNotFound(version)
        folder = self.cache_dir / version
        if not (folder / MANIFEST).is_file():
            self._fetch(version, folder)
        raw = json.loads((folder / MANIFEST).read_text())
        return ModelVersion(
            raw["version"],
            folder,
            raw["created_at"],
            raw["parent"],
            raw["fingerprint"],
            raw["feature_set_id"],
            dict(raw["files"]),
        )

    def list(self) -> builtins.list[ModelVersion]:
        return [self.get(name) for name in sorted(self._version_names(), key=_number)]

    def verify(self, version: str) -> None:
        """Raise :class:`RegistryIntegrityError` if any stored object differs from its
        manifest hash (the store is read, not the cache)."""
        entry = self.get(version)
        changed = []
        for name, digest in entry.files.items():
            try:
                data = self.store.read(f"versions/{version}/{name}")
            except FileNotFoundError:
                changed.append(name)
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                changed.append(name)
        if changed:
            raise RegistryIntegrityError(version, changed)

    def _fetch(self, version: str, folder: Path) -> None:
        try:
            manifest = json.loads(self.store.read(f"versions/{version}/{MANIFEST}"))
        except FileNotFoundError:
            raise VersionNotFound(version) from None
        staging = folder.with_name(f".tmp-{version}-{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        try:
            for name, digest in manifest["files"].items():
                data = self.store.read(f"versions/{version}/{name}")
                if hashlib.sha256(data).hexdigest() != digest:
                    raise RegistryIntegrityError(version, [name])
                (staging / name).write_bytes(data)
            (staging / MANIFEST).write_bytes(json_bytes(manifest))
            try:
                os.rename(staging, folder)  # another reader may have cached it first
            except OSError:
                if not (folder / MANIFEST).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _version_names(self, *, claimed: bool = False) -> set[str]:
        wanted = "claim.json" if claimed else MANIFEST
        return {
            parts[1]
            for name in self.store.names("versions/")
            if len(parts := name.split("/")) == 3 and parts[2] == wanted
        }

    # -- pointers -------------------------------------------------------------------------

    def champion(self) -> ModelVersion | None:
        etag = self.store.etag("champion.json")
        if etag is None:
            return None
        if self._champion_seen is not None and self._champion_seen[0] == etag:
            return self._champion_seen[1]
        pointer, etag = self._pointer("champion")
        version = pointer.get("version")
        entry = self.get(version) if version else None
        self._champion_seen = (etag or "", entry)
        return entry

    def challenger(self) -> ModelVersion | None:
        version = self._pointer("challenger")[0].get("version")
        return self.get(version) if version else None

    def promote(
        self,
        version: str,
        reason: str,
        details: dict[str, object] | None = None,
        *,
        replaces: str | EllipsisType | None = ...,
    ) -> ModelVersion:
        """Make ``version`` the champion by a conditional write of the pointer; a writer
        that changed it first makes this one raise :class:`PromotionConflict`."""
        self.verify(version)
        self._reconcile()
        pointer, etag = self._pointer("champion")
        previous = pointer.get("version")
        if replaces is not ... and previous != replaces:
            self._lost(version, replaces, previous, reason)
        history = list(pointer.get("history", []))
        if previous and previous != version:
            history.append(previous)
        event = change_record("promoted", version, previous, [reason], details or {})
        body = {"version": version, "history": history}
        if not self._write_pointer("champion", body, event, etag):
            found = self._pointer("champion")[0].get("version")
            self._lost(version, previous, found, reason)
        self._clear_challenger(version, event)
        self._record(event)
        return self.get(version)

    def set_challenger(self, version: str, reason: str) -> ModelVersion:
        self.verify(version)
        self._reconcile()
        for _ in range(_RETRIES):
            pointer, etag = self._pointer("challenger")
            previous = pointer.get("version")
            event = change_record("registered", version, previous, [reason], {"role": "challenger"})
            if self._write_pointer("challenger", {"version": version}, event, etag):
                self._record(event)
                return self.get(version)
        raise RegistryError(f"challenger pointer kept changing: {version} not set")

    def rollback(self, reason: str) -> ModelVersion:
        """Make the previous champion the champion again (conditional like a promotion)."""
        self._reconcile()
        pointer, etag = self._pointer("champion")
        history = list(pointer.get("history", []))
        current = pointer.get("version")
        if not history:
            raise RegistryError(f"nothing to roll back to: champion {current} has no predecessor")
        previous = history.pop()
        self.verify(previous)
        event = change_record("rolled_back", previous, current, [reason], {})
        if not self._write_pointer(
            "champion", {"version": previous, "history": history}, event, etag
        ):
            found = self._pointer("champion")[0].get("version")
            self._lost(previous, current, found, reason)
        self._record(event)
        return self.get(previous)

    def reject(
        self,
        version: str,
        reasons: builtins.list[str],
        details: dict[str, object] | None = None,
    ) -> None:
        """Record that ``version`` failed its gates; it stops being the challenger."""
        self.get(version)
        self._reconcile()
        event = change_record("rejected", version, None, reasons, details or {})
        self._clear_challenger(version, event)
        self._record(event)

    def status(self, version: str) -> str:
        """``champion`` | ``challenger`` | ``rejected`` | ``registered``."""
        if self._pointer("champion")[0].get("version") == version:
            return "champion"
        if self._pointer("challenger")[0].get("version") == version:
            return "challenger"
        if any(e["kind"] == "rejected" and e["version"] == version for e in self.audit()):
            return "rejected"
        return "registered"

    def audit(self) -> builtins.list[dict[str, Any]]:
        """Every change, oldest first (by the time in each record's key)."""
        lines = []
        for name in self.store.names("audit/"):
            if name not in self._records:  # records never change: each is read once
                try:
                    line = json.loads(self.store.read(name))
                except (FileNotFoundError, json.JSONDecodeError):
                    continue
                self._records[name] = line if isinstance(line, dict) else {}
            if self._records[name]:
                lines.append(self._records[name])
        return lines

    # -- internals ------------------------------------------------------------------------

    def _lost(self, version: str, expected: str | None, found: str | None, reason: str) -> None:
        self._record(lost_promotion(version, expected, found, reason))
        log.warning(
            "stage=registry promotion of %s lost: champion %s expected, %s found",
            version,
            expected,
            found,
        )
        raise PromotionConflict(version, expected, found)

    def _clear_challenger(self, version: str, event: dict[str, Any]) -> None:
        for _ in range(_RETRIES):
            pointer, etag = self._pointer("challenger")
            if pointer.get("version") != version:
                return
            if self._write_pointer("challenger", {"version": None}, event, etag):
                return
        log.warning("stage=registry challenger pointer kept changing: %s left in it", version)

    def _pointer(self, name: str) -> tuple[dict[str, Any], str | None]:
        tagged = self.store.read_tagged(f"{name}.json")
        if tagged is None:
            return {}, None
        return dict(json.loads(tagged.data)), tagged.etag

    def _write_pointer(
        self, name: str, payload: dict[str, Any], event: dict[str, Any], etag: str | None
    ) -> bool:
        body = json_bytes({**payload, "updated_at": now().isoformat(), "event": event})
        key = f"{name}.json"
        if etag is None:
            return self.store.create(key, body) is not None
        return self.store.replace(key, body, etag) is not None

    def _reconcile(self) -> None:
        """Create the audit records a crash left out (a pointer's event without one)."""
        for name in ("champion", "challenger"):
            event = self._pointer(name)[0].get("event")
            if isinstance(event, dict) and not self.store.exists(_audit_key(event)):
                log.warning(
                    "stage=registry recorded %s %s: its audit record was missing (a crash, "
                    "or its writer is still finishing)",
                    event.get("kind"),
                    event.get("version"),
                )
                self._record(event)

    def _record(self, line: dict[str, Any]) -> None:
        data = json.dumps(line, sort_keys=True, default=jsonable).encode()
        self.store.create(_audit_key(line), data)  # the same event twice is one record


def _audit_key(line: dict[str, Any]) -> str:
    """Sortable by time: ``audit/20261206T120501.123456Z-<event_id>.json``."""
    at = datetime.fromisoformat(str(line["at"])).astimezone(UTC)
    return f"audit/{at:%Y%m%dT%H%M%S.%fZ}-{line['event_id']}.json"


def _number(name: str) -> int:
    return int(name[1:]) if name[1:].isdigit() else 0
