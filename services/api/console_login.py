"""Console logins: an API key (scope ``review``) is exchanged for a signed cookie.

The cookie holds the key's id, the analyst's name and a CSRF token, signed with the
console secret (itsdangerous, HMAC-SHA256) and dated; never the key itself. Every request
re-checks that the key is still active, so revoking a key ends its logins. Every state
change must send the token back (``X-CSRF-Token`` header or ``csrf`` form field), which a
page of another origin cannot read; the cookie is HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "fraud_console"
_SALT = "fraud-console-login"


@dataclass(frozen=True)
class Login:
    key_id: str
    name: str
    csrf: str


def load_secret(path: Path) -> bytes:
    """The console's signing secret, created (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class LoginSigner:
    def __init__(self, secret: bytes, max_age_s: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age_s = max_age_s

    def issue(self, key_id: str, name: str) -> tuple[str, Login]:
        login = Login(key_id, name, secrets.token_urlsafe(24))
        return str(self._serializer.dumps([login.key_id, login.name, login.csrf])), login

    def read(self, cookie: str | None) -> Login | None:
        if not cookie:
            return None
        try:
            key_id, name, csrf = self._serializer.loads(cookie, max_age=int(self.max_age_s))
        except (BadSignature, ValueError, TypeError):
            return None
        return Login(str(key_id), str(name), str(csrf))


def csrf_matches(login: Login, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(login.csrf, str(presented))
