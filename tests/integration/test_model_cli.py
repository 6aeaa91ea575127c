"""Acceptance (models): ``fraudctl train`` on a user CSV, promote / rollback through the CLI,
every change published to ``model.events`` on the real broker."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer
from typer.testing import CliRunner

from models.registry import ModelRegistry
from services.cli import app
from streams.events import ModelEvent
from streams.kafka import consumer_config
from streams.topics import Topics
from tests.unit.test_model_registry import bundle

pytestmark = pytest.mark.integration
runner = CliRunner()


def user_transactions(days: int = 32, per_day: int = 160, seed: int = 5) -> pd.DataFrame:
    """A payment export in the documented format: compromised terminals and large amounts
    are fraudulent, so a model has patterns to find."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    seconds = np.sort(rng.uniform(0, days * 86400, n))
    customers = rng.integers(0, 150, n)
    terminals = rng.integers(0, 60, n)
    amounts = np.round(rng.gamma(2.0, 25.0, n), 2)
    day = (seconds // 86400).astype(int)
    compromised = {(int(t), int(d)) for d in range(days) for t in rng.integers(0, 60, 1)}
    hot = np.array(
        [
            (t, d) in compromised or (t, d - 1) in compromised
            for t, d in zip(terminals, day, strict=True)
        ]
    )
    fraud = (amounts > 180) | (hot & (rng.random(n) < 0.5))
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:06d}" for i in range(n)],
            "timestamp": (pd.Timestamp("2026-02-01") + pd.to_timedelta(seconds, "s")).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "customer_id": [f"c{c}" for c in customers],
            "terminal_id": [f"term{t}" for t in terminals],
            "amount": amounts,
            "label": fraud.astype(int),
        }
    )


def _env(tmp_path: Path, bootstrap: str, prefix: str) -> dict[str, str]:
    return {
        "FRAUD_KAFKA_BOOTSTRAP": bootstrap,
        "FRAUD_TOPIC_PREFIX": prefix,
        "FRAUD_STATE_DIR": str(tmp_path / "state"),
    }


def _events(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[ModelEvent]:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"test-{uuid.uuid4().hex}", client_id="test-model")
    )
    consumer.subscribe([topic])
    out: list[ModelEvent] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for message in consumer.consume(50, 0.2):
                if message.error() is None:
                    out.append(msgspec.json.decode(message.value() or b"", type=ModelEvent))
    finally:
        consumer.close()
    return out


def test_train_on_a_user_csv_then_promote_and_rollback(
    tmp_path: Path, kafka_bootstrap: str, topics: Topics
) -> None:
    env = _env(tmp_path, kafka_bootstrap, topics.prefix)
    registry = tmp_path / "registry"
    windows = ["--train-days", "14", "--label-delay-days", "7", "--test-days", "7"]

    documented = tmp_path / "payments.csv"
    user_transactions().to_csv(documented, index=False)
    result = runner.invoke(
        app,
        ["train", "--data", str(documented), *windows, "--promote", "--registry", str(registry)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "registered v0001" in result.output

    # the same data under other names, mapped with --col
    renamed = user_transactions().rename(
        columns={"timestamp": "TX_DATETIME", "label": "TX_FRAUD", "amount": "TX_AMOUNT"}
    )
    renamed.columns = [c.upper() for c in renamed.columns]
    handbook = tmp_path / "handbook.csv"
    renamed.to_csv(handbook, index=False)
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(handbook),
            "--col",
            "timestamp=TX_DATETIME",
            "--col",
            "label=TX_FRAUD",
            "--col",
            "amount=TX_AMOUNT",
            "--seed",
            "43",
            *windows,
            "--registry",
            str(registry),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output

    store = ModelRegistry(registry)
    v1, v2 = store.list()
    assert store.champion() == v1
    assert v2.parent == "v0001"
    assert v1.metrics()["onnx_max_abs_diff"] <= 1e-5
    assert v1.metrics()["roc_auc"] > 0.8
    assert (v1.path / "pr_curve.png").read_bytes().startswith(b"\x89PNG")

    result = runner.invoke(app, ["model", "promote", "v0002", "--registry", str(registry)], env=env)
    assert result.exit_code == 0, result.output
    assert store.champion() == v2
    result = runner.invoke(
        app, ["model", "rollback", "--reason", "test", "--registry", str(registry)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "champion: v0001 (rolled back from v0002)" in result.output
    assert store.champion() == v1
    result = runner.invoke(app, ["model", "list", "--registry", str(registry)], env=env)
    assert result.exit_code == 0 and "v0002" in result.output and "champion" in result.output
    result = runner.invoke(
        app, ["model", "show", "v0001", "--json", "--registry", str(registry)], env=env
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["policy_fitted_on"] == "validation window"  # trained, not refit
    assert shown["policy_basis"] == v1.policy().basis
    for version in ("v0001", "v0002"):
        store.verify(version)

    events = _events(kafka_bootstrap, topics.model_events, expected=5)
    assert [(e.kind, e.model_version) for e in events] == [
        ("registered", "v0001"),
        ("promoted", "v0001"),
        ("registered", "v0002"),
        ("promoted", "v0002"),
        ("rolled_back", "v0001"),
    ]
    assert events[-1].previous_version == "v0002"
    assert events[-1].reasons == ["test"]


def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path: Path) -> None:
    port = _closed_port()
    env = _env(tmp_path, f"127.0.0.1:{port}", "x.")
    no_fraud = tmp_path / "no_fraud.csv"
    user_transactions(days=10).assign(label=0).to_csv(no_fraud, index=False)
    result = runner.invoke(
        app, ["train", "--data", str(no_fraud), "--registry", str(tmp_path / "r")], env=env
    )
    assert result.exit_code == 2
    assert "error: no fraud at all" in result.output
    assert "Traceback" not in result.output

    missing = tmp_path / "missing.csv"
    user_transactions(days=10).drop(columns=["terminal_id"]).to_csv(missing, index=False)
    result = runner.invoke(
        app, ["train", "--data", str(missing), "--registry", str(tmp_path / "r")], env=env
    )
    assert result.exit_code == 2
    assert "missing column(s) for terminal_id" in result.output

    result = runner.invoke(
        app, ["model", "promote", "v0009", "--registry", str(tmp_path / "r")], env=env
    )
    assert result.exit_code == 2
    assert "model version 'v0009' is not in the registry" in result.output

    store = ModelRegistry(tmp_path / "r")
    store.register(bundle("one"))
    result = runner.invoke(
        app, ["model", "promote", "v0001", "--registry", str(tmp_path / "r")], env=env
    )
    assert result.exit_code == 0, result.output
    assert f"no broker at 127.0.0.1:{port}: 2 event(s) wait in the registry's" in result.output
    assert store.champion() == store.get("v0001")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_train_on_the_simulator_history_folder_with_served_features(tmp_path: Path) -> None:
    from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
    from models.scoring import OnnxModel
    from streams.simulator import SimulatorConfig, write_history

    history = tmp_path / "history"
    write_history(history, SimulatorConfig.small(seed=3), days=35)
    env = _env(tmp_path, f"127.0.0.1:{_closed_port()}", "x.")
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(history),
            "--train-days",
            "21",
            "--label-delay-days",
            "7",
            "--test-days",
            "7",
            "--promote",
            "--registry",
            str(tmp_path / "registry"),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    champion = ModelRegistry(tmp_path / "registry").champion()
    assert champion is not None
    assert champion.feature_set_id == FEATURE_SET_ID
    assert champion.metrics()["roc_auc"] > 0.7
    model = OnnxModel.load(
        champion.path, expected_features=FEATURE_NAMES, expected_feature_set=FEATURE_SET_ID
    )
    reference = champion.reference()
    assert reference.shape[1] == len(FEATURE_NAMES)
    scores = model.predict(reference[:100])
    assert ((scores >= 0) & (scores <= 1)).all()
