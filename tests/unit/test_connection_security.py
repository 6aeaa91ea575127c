"""Kafka and Redis connection security from settings: SASL_SSL, CA and client certificates
and any librdkafka property reach every client configuration, the faust worker gets the
same security as aiokafka credentials, secrets stay out of logs, and inconsistent settings
stop a service at start."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import faust
import pytest

from features.profiles.errors import ProfileInputError
from features.profiles.feast_repo import feast_connection_string
from services.api.settings import ApiSettings
from services.feedback.settings import FeedbackSettings
from services.settings import CommonSettings
from streams.errors import ConfigError
from streams.feedback.credentials import broker_urls, faust_credentials
from streams.kafka import admin_client, consumer_config, producer_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SASL = {
    "FRAUD_KAFKA_BOOTSTRAP": "b1.example:9096,b2.example:9096",
    "FRAUD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "FRAUD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "FRAUD_KAFKA_SASL_USERNAME": "fraud-scorer",
    "FRAUD_KAFKA_SASL_PASSWORD": "p4ss-w0rd",
}


@pytest.fixture()
def sasl_env(monkeypatch: pytest.MonkeyPatch) -> Path:
    ca = Path("/etc/ssl/certs/ca-certificates.crt")  # a real bundle: librdkafka loads it
    for key, value in SASL.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FRAUD_KAFKA_SSL_CA_FILE", str(ca))
    monkeypatch.setenv("FRAUD_KAFKA_CONFIG__CLIENT_RACK", "use1-az1")
    return ca


def test_sasl_ssl_reaches_producer_consumer_and_admin_configs(sasl_env: Path) -> None:
    conn = CommonSettings().kafka()
    expected = {
        "bootstrap.servers": "b1.example:9096,b2.example:9096",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "fraud-scorer",
        "sasl.password": "p4ss-w0rd",
        "ssl.ca.location": str(sasl_env),
        "client.rack": "use1-az1",
    }
    for config in (
        producer_config(conn, client_id="p"),
        consumer_config(conn, group_id="g", client_id="c"),
    ):
        assert expected.items() <= config.items()
    admin_client(conn)  # librdkafka accepts the properties (it validates names and values)
    assert "p4ss-w0rd" not in str(conn) and "p4ss-w0rd" not in repr(conn)


def test_every_service_settings_class_builds_the_same_connection(sasl_env: Path) -> None:
    for cls in (CommonSettings, ApiSettings, FeedbackSettings):
        assert cls().kafka() == CommonSettings().kafka()
    assert FeedbackSettings().app_config().bootstrap == CommonSettings().kafka()


def test_the_faust_worker_gets_sasl_credentials_with_the_ca(sasl_env: Path) -> None:
    conn = CommonSettings().kafka()
    credentials = faust_credentials(conn)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "fraud-scorer"
    assert credentials.password == "p4ss-w0rd"
    assert str(credentials.mechanism.value) == "SCRAM-SHA-512"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert broker_urls(conn) == ["kafka://b1.example:9096", "kafka://b2.example:9096"]
    assert faust_credentials("h:1") is None


def test_json_passthrough_and_its_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_CONFIG", '{"ssl.endpoint.identification.algorithm": "none"}')
    conn = CommonSettings().kafka()
    assert conn.properties["ssl.endpoint.identification.algorithm"] == "none"
    assert conn.properties["security.protocol"] == "plaintext"
    monkeypatch.setenv("FRAUD_KAFKA_CONFIG", '{"linger.ms": "7"}')  # an operator's value wins
    assert producer_config(CommonSettings().kafka(), client_id="p")["linger.ms"] == "7"
    # ... over a service's own default too (the scorer's longer linger), not over overrides
    conn = CommonSettings().kafka()
    assert producer_config(conn, client_id="p", defaults={"linger.ms": 5})["linger.ms"] == "7"
    assert producer_config(conn, client_id="p", **{"linger.ms": 0})["linger.ms"] == 0
    monkeypatch.delenv("FRAUD_KAFKA_CONFIG")
    conn = CommonSettings().kafka()
    assert producer_config(conn, client_id="p", defaults={"linger.ms": 5})["linger.ms"] == 5
    assert producer_config(conn, client_id="p")["linger.ms"] == 1


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"FRAUD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs FRAUD_KAFKA_SASL_MECHANISM"),
        ({"FRAUD_KAFKA_SASL_USERNAME": "x"}, "would be ignored"),
        ({"FRAUD_KAFKA_SSL_CERT_FILE": "/etc/hostname"}, "go together"),
        ({"FRAUD_REDIS_SSL_CA_FILE": "/no/such/ca.pem"}, "no such file"),
    ],
)
def test_inconsistent_security_settings_stop_the_service(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], error: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=error):
        CommonSettings()


def test_redis_tls_files_reach_the_client_options(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "c.pem", "c.key"))
    for f in (ca, cert, key):
        f.write_text("x")
    options = CommonSettings(
        redis_ssl_ca_file=ca, redis_ssl_cert_file=cert, redis_ssl_key_file=key
    ).redis_options()
    assert options == {"ssl_ca_certs": str(ca), "ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def test_redis_tls_files_reach_feasts_connection_string(tmp_path: Path) -> None:
    """`features materialize` writes through Feast: its connection string must carry the
    same TLS files as every other Redis client, and refuse a value Feast would misparse."""
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    options = CommonSettings(redis_ssl_ca_file=ca).redis_options()
    text = feast_connection_string("rediss://u:p%40ss@cache.example:6380/2", options)
    assert text == f"cache.example:6380,db=2,username=u,password=p@ss,ssl=true,ssl_ca_certs={ca}"
    with pytest.raises(ProfileInputError):
        feast_connection_string("rediss://cache.example:6380", {"ssl_ca_certs": "/a,b"})


def test_no_service_builds_a_kafka_or_redis_client_from_the_raw_settings() -> None:
    """Every client takes settings.kafka() / redis_client(settings), so the security
    settings cannot be skipped by one of them. (The embedded stack starts and probes its
    own broker and Redis by address.)"""
    allowed = {"services/connections.py", "services/stack/components.py", "services/stack/stack.py"}
    offenders = []
    for path in (ROOT / "services").rglob("*.py"):
        name = str(path.relative_to(ROOT))
        if name in allowed or path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "kafka_bootstrap":
                offenders.append(f"{name}:{node.lineno} reads kafka_bootstrap")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("from_url", "Consumer", "Producer", "AdminClient")
            ):
                offenders.append(f"{name}:{node.lineno} builds a client itself")
    assert offenders == []
