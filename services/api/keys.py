"""API keys: who is calling and what they may do, with no secret kept at rest.

A key is ``fk_<key_id>_<secret>``. The key file (``FRAUD_API_KEYS_FILE``, JSON, mode 0600)
holds per key its id, the identity it stands for (``name``: the analyst or the client
system), its scopes, an optional rate limit and an HMAC-SHA-256 of the secret under a
per-key random salt; ``fraudctl keys create`` prints the secret once and never stores it.

Why a salted SHA-256 and not a password hash (scrypt, argon2): the secret is 256 random
bits, so there is nothing to guess; a slow hash would only put ~50 ms of CPU on every
request, which an unauthenticated caller could then spend for us (docs/adr/0006).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from streams.errors import ConfigError

Scope = Literal["score", "labels", "chargeback", "read", "metrics", "docs", "admin", "review"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
SCOPE_HELP = {
    "score": "POST /v1/score: decide transactions (they feed the card's windows)",
    "labels": "POST /v1/labels with source analyst, attributed to the key's name",
    "chargeback": "POST /v1/labels with source chargeback (the card network's verdict)",
    "read": "GET /v1/models/current",
    "metrics": "GET /metrics (when FRAUD_METRICS_PUBLIC is false)",
    "docs": "GET /docs and /openapi.json (when FRAUD_DOCS_PUBLIC is false)",
    "admin": "POST /v1/erasures (erase one customer's data)",
    "review": "the review console and /v1/cases: claim cases, give verdicts (labels under "
    "the key's name), notes",
}
PREFIX = "fk"
_KEY_ID_BYTES = 8


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the identity labels and audit records are written under."""

    name: str
    key_id: str
    scopes: frozenset[str]
    rate_per_s: float | None = None


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    salt: str
    digest: str
    created_at: str
    rate_per_s: float | None = None
    revoked_at: str | None = None

    def principal(self) -> Principal:
        return Principal(self.name, self.key_id, frozenset(self.scopes), self.rate_per_s)


def _digest(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None (never raises, never echoes)."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 2 * _KEY_ID_BYTES:
        return None
    key_id, secret = parts[1], parts[2]
    if not secret or not all(c in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """``score+read`` (or a list) -> validated, sorted scopes; ConfigError names the bad one."""
    wanted = text.replace(",", "+").split("+") if isinstance(text, str) else list(text)
    scopes = sorted({s.strip() for s in wanted if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ConfigError(f"unknown or no scopes {unknown}: choose from {', '.join(SCOPES)}")
    return tuple(scopes)


class KeyFile:
    """The key file: create, list and revoke keys (the CLI), read them (the API)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> list[StoredKey]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text())
            return [StoredKey(**{**k, "scopes": tuple(k["scopes"])}) for k in raw["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"API key file {self.path} is unreadable: {exc}") from exc

    def create(
        self, name: str, scopes: str | Iterable[str], rate_per_s: float | None = None
    ) -> tuple[str, StoredKey]:
        """A new key: (the secret to hand out once, what is stored)."""
        if not name.strip() or len(name) > 128:
            raise ConfigError("a key's name (the identity it stands for) is 1-128 characters")
        key_id = secrets.token_hex(_KEY_ID_BYTES)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        stored = StoredKey(
            key_id=key_id,
            name=name.strip(),
            scopes=parse_scopes(scopes),
            salt=salt.hex(),
            digest=_digest(salt, secret),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            rate_per_s=rate_per_s,
        )
        with self._locked():
            self._write([*self.read(), stored])
        return f"{PREFIX}_{key_id}_{secret}", stored

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked (kept for the audit trail); False if there is no such key."""
        with self._locked():
            keys = self.read()
            found = any(k.key_id == key_id and k.revoked_at is None for k in keys)
            now = datetime.now(UTC).isoformat(timespec="seconds")
            self._write([replace(k, revoked_at=now) if k.key_id == key_id else k for k in keys])
        return found

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, keys: list[StoredKey]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"keys": [asdict(k) for k in keys]}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


class KeyRing:
    """Authenticates presented keys against the key file, re-read when it changes (so a
    revocation or a new key takes effect within ``reload_s`` without a restart)."""

    def __init__(self, key_file: KeyFile, reload_s: float = 1.0) -> None:
        self._file = key_file
        self._reload_s = reload_s
        self._checked = 0.0
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, StoredKey] = {}
        self._load()
        if not self._keys:
            raise ConfigError(
                f"no active API key in {key_file.path}: create one with "
                "`fraudctl keys create --name NAME --scopes score+read`"
            )

    def _load(self) -> None:
        try:
            st = self._file.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._keys = {k.key_id: k for k in self._file.read() if k.revoked_at is None}
            self._stamp = stamp

    def authenticate(self, presented: str) -> Principal | None:
        self._refresh()
        parts = split_key(presented)
        if parts is None:
            return None
        stored = self._keys.get(parts[0])
        if stored is None:
            return None
        digest = _digest(bytes.fromhex(stored.salt), parts[1])
        if not hmac.compare_digest(digest, stored.digest):
            return None
        return stored.principal()

    def active(self, key_id: str) -> Principal | None:
        """The principal of a key that is still active (a console login names its key: a
        revoked key ends the login within ``reload_s``)."""
        self._refresh()
        stored = self._keys.get(key_id)
        return stored.principal() if stored is not None else None

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked > self._reload_s:
            self._checked = now
            self._load()
