"""docker-compose.yml cannot run here (no Docker engine), so it is checked statically:
every service command of the project's image must name a real ``fraudctl`` subcommand."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from services.cli import app

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _resolve(argv: list[str]) -> Any:
    """The (typer-vendored click) command that ``fraudctl <argv>`` runs."""
    command: Any = typer.main.get_command(app)
    for word in argv:
        subcommands = getattr(command, "commands", None)
        if word.startswith("-") or subcommands is None:
            break
        assert word in subcommands, f"`fraudctl {' '.join(argv)}`: no subcommand {word!r}"
        command = subcommands[word]
    return command


def _fraudctl_invocations(service: dict) -> list[list[str]]:  # type: ignore[type-arg]
    command = service.get("command")
    if command is None:
        return []
    if service.get("entrypoint") == ["sh", "-c"]:
        script = command[0] if isinstance(command, list) else command
        calls = []
        for part in re.split(r"&&|\|\||;|\|", script):
            words = shlex.split(part)
            if words and words[0] == "fraudctl":
                calls.append(words[1:])
        return calls
    return [command if isinstance(command, list) else shlex.split(command)]


def test_compose_services_name_real_fraudctl_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    checked = 0
    for name, service in compose["services"].items():
        if service.get("image") != "fraud-stream:latest":
            continue
        for argv in _fraudctl_invocations(service):
            command = _resolve(argv)
            params = {opt for p in command.params for opt in getattr(p, "opts", [])}
            for word in argv:
                if word.startswith("--"):
                    assert word in params, f"service {name}: unknown option {word}"
            checked += 1
    assert checked >= 5


def test_compose_has_the_production_components() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for needed in ("redis", "prometheus", "alertmanager", "grafana", "scorer", "api"):
        assert needed in services


def test_compose_kafka_answers_the_host_and_keeps_its_data() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "INTERNAL://kafka:9092" in advertised  # the services, inside the network
    assert "HOST://localhost:19092" in advertised  # fraudctl on the host
    assert "19092:19092" in kafka["ports"]
    for name in ("kafka", "redis", "prometheus", "alertmanager", "grafana"):
        mounts = compose["services"][name]["volumes"]
        named = [m.split(":")[0] for m in mounts if not m.startswith(".")]
        assert named and all(v in compose["volumes"] for v in named), name


def test_compose_trainer_materialises_profiles_after_training() -> None:
    trainer = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["trainer"]
    calls = [" ".join(argv[:2]) for argv in _fraudctl_invocations(trainer)]
    assert calls.index("features materialize") > calls.index("train --data")


def test_prometheus_sends_alerts_to_alertmanager() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    routes = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    receivers = {r["name"] for r in routes["receivers"]}
    assert routes["route"]["receiver"] in receivers
    assert {r["receiver"] for r in routes["route"]["routes"]} <= receivers


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_image_is_built_in_two_stages_and_runs_without_tools_as_a_user() -> None:
    *build, final = dockerfile_stages()
    assert build, "a build stage compiles the kernel and the wheels"
    final_text = "\n".join(final)
    for tool in ("gcc", "make", "libc6-dev", "dev.lock", "pytest", "ruff", "mypy", "locust"):
        assert tool not in final_text, f"the final stage installs {tool}"
    assert "--no-index" in final_text  # only the wheels built from the runtime lock
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the final stage runs as root"
    build_text = "\n".join(line for stage in build for line in stage)
    assert "requirements/runtime.lock" in build_text and "dev.lock" not in build_text
    assert "COPY loadtest" not in build_text  # the product's wheel leaves the tools out


def test_compose_redis_is_persisted_on_a_named_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]
