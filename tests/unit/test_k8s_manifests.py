"""deploy/k8s cannot be applied here (no cluster, no kubeconform offline), so it is checked
statically: every document against a checked-in JSON Schema subset of its kind
(deploy/k8s/schemas: the fields these manifests may use, typos refused), and against the
project: the scorer's command is a real ``fraudctl`` subcommand, its settings are known
``FRAUD_*`` names, its member id is the pod's stable name, and the autoscaler never asks
for more scorers than ``transactions`` has partitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services.scorer.settings import ScorerSettings
from services.settings_names import unknown_variables
from streams.topics import TRANSACTIONS
from tests.unit.test_deploy_files import _resolve

pytestmark = pytest.mark.unit

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def _by_kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for _, d in _documents() if d["kind"] == kind]
    return doc


@pytest.mark.parametrize(
    ("name", "doc"), _documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_manifest_matches_the_schema_of_its_kind(name: str, doc: dict[str, Any]) -> None:
    schema = json.loads((K8S / "schemas" / f"{doc['kind'].lower()}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_the_schema_refuses_a_misspelt_field() -> None:
    doc = _by_kind("StatefulSet")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    broken = {**container, "envFrm": container["envFrom"]}
    doc["spec"]["template"]["spec"]["containers"] = [broken]
    schema = json.loads((K8S / "schemas" / "statefulset.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match="envFrm"):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(_by_kind("Kustomization")["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_scorer_pod_runs_a_real_command_with_known_settings_and_a_stable_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pod = _by_kind("StatefulSet")["spec"]["template"]["spec"]
    (scorer,) = pod["containers"]
    _resolve(scorer["args"])
    env = {e["name"]: e for e in scorer["env"]}
    assert env["FRAUD_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    config = _by_kind("ConfigMap")["data"]
    names = {**config, **{name: "x" for name in env}}
    assert unknown_variables(names, ScorerSettings.model_fields) == []
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = ScorerSettings()
    assert settings.kafka_assignment_strategy == "cooperative-sticky"
    partitions = settings.topics().partition_count(TRANSACTIONS)
    scaling = _by_kind("ScaledObject")["spec"]
    assert scaling["maxReplicaCount"] <= partitions == 48
    trigger = scaling["triggers"][0]["metadata"]
    assert trigger["consumerGroup"] == settings.group_id
    assert trigger["topic"] == settings.topics().transactions
    assert trigger["bootstrapServers"] == settings.kafka_bootstrap
