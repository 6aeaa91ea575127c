"""API keys: stored as salted hashes, authenticated by identity, revocable; rate limits."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from services.api.keys import KeyFile, KeyRing, parse_scopes, split_key
from services.api.ratelimit import RateLimiter, retry_after_header
from streams.errors import ConfigError

pytestmark = pytest.mark.unit


def test_the_secret_is_never_stored_and_authenticates_as_its_identity(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "keys.json")
    secret, stored = keys.create("ana", "labels+read")
    text = keys.path.read_text()
    assert secret.split("_", 2)[2] not in text
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert json.loads(text)["keys"][0]["name"] == "ana"
    principal = KeyRing(keys).authenticate(secret)
    assert principal is not None
    assert (principal.name, principal.key_id) == ("ana", stored.key_id)
    assert principal.scopes == frozenset({"labels", "read"})


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "fk",
        "fk__x",
        "fk_0123456789abcdef_",
        "fk_XYZ3456789abcdef_s",
        "fk_0123456789abcdef_wrong",
    ],
)
def test_wrong_or_malformed_keys_are_refused_without_error(tmp_path: Path, presented: str) -> None:
    keys = KeyFile(tmp_path / "keys.json")
    keys.create("ana", "read")
    assert KeyRing(keys).authenticate(presented) is None


def test_a_known_key_id_with_a_wrong_secret_is_refused(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "keys.json")
    secret, _ = keys.create("ana", "read")
    assert KeyRing(keys).authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


def test_revocation_and_new_keys_apply_without_restart(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "keys.json")
    first, stored = keys.create("ana", "read")
    ring = KeyRing(keys, reload_s=0.0)
    second, _ = keys.create("bob", "score")
    assert ring.authenticate(second) is not None
    assert keys.revoke(stored.key_id)
    assert ring.authenticate(first) is None
    assert not keys.revoke(stored.key_id)  # already revoked
    assert [k.revoked_at is not None for k in keys.read()] == [True, False]


def test_a_ring_without_keys_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fraudctl keys create"):
        KeyRing(KeyFile(tmp_path / "none.json"))


def test_scopes_are_checked_and_errors_echo_no_secret(tmp_path: Path) -> None:
    assert parse_scopes("read+score") == ("read", "score")
    with pytest.raises(ConfigError) as refused:
        parse_scopes("read+superuser")
    assert "superuser" in str(refused.value)
    assert split_key("fk_0123456789abcdef_secret") == ("0123456789abcdef", "secret")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError):
        KeyFile(tmp_path / "bad.json").read()


def test_token_bucket_admits_the_rate_and_a_burst_then_says_when() -> None:
    now = [0.0]
    limiter = RateLimiter(10.0, burst_s=1.0, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(10)] == [0.0] * 10
    wait = limiter.acquire("k")
    assert wait == pytest.approx(0.1)
    assert retry_after_header(wait) == "1"
    assert limiter.acquire("other") == 0.0  # per key
    now[0] += 0.1
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k", rate_per_s=0) == 0.0  # a key's own 0: unlimited
    slow = limiter.acquire("slow", rate_per_s=0.5)
    assert slow == 0.0 and limiter.acquire("slow", rate_per_s=0.5) == pytest.approx(2.0)
