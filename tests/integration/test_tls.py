"""Encrypted and authenticated connections, for real: a Redis that speaks only TLS and
admits only an ACL user carries the scorer's state and ledger; the API serves HTTPS.
Kafka's SASL/TLS properties reach every client as settings say (the embedded broker has
no SASL, so that part is checked at the client boundary: the built configurations)."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from services.api.keys import KeyFile
from services.connections import redis_client
from services.scorer.ledger import DecisionLedger
from services.scorer.wiring import open_feature_store
from services.settings import CommonSettings
from services.stack.process import free_port, wait_until
from streams.topics import Topics
from tests.integration.conftest import SmallWorld
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=test-ca", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / "san.ext"), "-out", str(d / "server.pem"))  # fmt: skip
    return Certificates(d / "ca.pem", d / "server.pem", d / "server.key")


@pytest.fixture(scope="module")
def tls_redis(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """redis-server with TLS only (no plaintext port) and only the ACL user ``fraud``."""
    d = tmp_path_factory.mktemp("tls-redis")
    port = free_port()
    (d / "redis.conf").write_text(
        f"port 0\ntls-port {port}\ntls-cert-file {certificates.cert}\n"
        f"tls-key-file {certificates.key}\ntls-ca-cert-file {certificates.ca}\n"
        f'tls-auth-clients no\nsave ""\nappendonly no\ndir {d}\n'
        "user default off\nuser fraud on >s3cret-pw ~* &* +@all\n"
    )
    proc = subprocess.Popen(["redis-server", str(d / "redis.conf")], stdout=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _settings(port: int, ca: Path | None, user: str = "fraud:s3cret-pw") -> CommonSettings:
    return CommonSettings(
        redis_url=SecretStr(f"rediss://{user}@127.0.0.1:{port}/0"),
        redis_ssl_ca_file=ca,
        redis_prefix="tls",
    )


def test_state_and_ledger_over_tls_as_an_acl_user(
    tls_redis: int, certificates: Certificates, small_world: SmallWorld
) -> None:
    settings = _settings(tls_redis, certificates.ca)
    client = redis_client(settings)
    assert wait_until(lambda: _pings(client), 15.0, 0.2)
    store = open_feature_store(client, settings)
    matrix = store.update_and_read_batch(small_world.as_events(50))
    assert matrix.values.shape[0] == 50
    ledger = DecisionLedger(client, settings.redis_prefix, 3600)
    ledger.mark_decided(["tx-a"])
    assert list(ledger.undecided(["tx-a", "tx-b"])) == [False, True]

    unverified = redis_client(_settings(tls_redis, None))  # the system CAs do not know ours
    with pytest.raises(redis.ConnectionError):
        unverified.ping()
    wrong = redis_client(_settings(tls_redis, certificates.ca, "fraud:nope"))
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    plain = redis.Redis(host="127.0.0.1", port=tls_redis, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_api_serves_https_only(
    certificates: Certificates,
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    tmp_path: Path,
) -> None:
    key, _ = KeyFile(tmp_path / "keys.json").create("ops", "read")
    port = free_port()
    api = ServiceProcess(
        ["serve", "api", "--port", str(port)],
        {
            "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "FRAUD_REDIS_URL": redis_url,
            "FRAUD_TOPIC_PREFIX": topics.prefix,
            "FRAUD_REDIS_PREFIX": redis_prefix,
            "FRAUD_STATE_DIR": str(champion_state),
            "FRAUD_API_KEYS_FILE": str(tmp_path / "keys.json"),
            "FRAUD_TLS_CERT_FILE": str(certificates.cert),
            "FRAUD_TLS_KEY_FILE": str(certificates.key),
        },
        tmp_path / "api.log",
    )
    context = ssl.create_default_context(cafile=str(certificates.ca))
    try:
        assert wait_until(lambda: _https_status(port, context, "/healthz") == 200, 60.0, 0.5), (
            api.output()[-3000:]
        )
        status, body = _https(port, context, "/v1/models/current", {"X-API-Key": key})
        assert status == 200 and json.loads(body)["champion_version"] == "v0001"
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            plain.request("GET", "/healthz")
            plain.getresponse().read()
    finally:
        api.terminate()


def _https(
    port: int, context: ssl.SSLContext, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def _https_status(port: int, context: ssl.SSLContext, path: str) -> int:
    try:
        return _https(port, context, path)[0]
    except OSError:
        time.sleep(0.1)
        return 0
