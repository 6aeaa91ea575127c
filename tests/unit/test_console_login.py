"""Console logins: signed, dated cookies that name the key, never hold it; CSRF tokens."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.api.console_login import LoginSigner, csrf_matches, load_secret

pytestmark = pytest.mark.unit


def test_a_login_round_trips_and_a_forgery_does_not(tmp_path: Path) -> None:
    secret = load_secret(tmp_path / "console-secret")
    assert stat.S_IMODE((tmp_path / "console-secret").stat().st_mode) == 0o600
    assert load_secret(tmp_path / "console-secret") == secret  # created once
    signer = LoginSigner(secret, max_age_s=3600)
    cookie, login = signer.issue("0123456789abcdef", "ana")
    assert signer.read(cookie) == login
    head, _, signature = cookie.rpartition(".")
    assert signer.read(f"{head}.{signature[:-2]}xx") is None
    assert LoginSigner(b"another secret", 3600).read(cookie) is None
    assert signer.read(None) is None and signer.read("garbage") is None
    assert csrf_matches(login, login.csrf)
    assert not csrf_matches(login, None) and not csrf_matches(login, login.csrf + "x")


def test_an_old_login_is_refused(tmp_path: Path) -> None:
    signer = LoginSigner(b"s" * 32, max_age_s=3600)
    cookie, _ = signer.issue("0123456789abcdef", "ana")
    assert LoginSigner(b"s" * 32, max_age_s=-1).read(cookie) is None
