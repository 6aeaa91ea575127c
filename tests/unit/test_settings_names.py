"""An unknown FRAUD_ variable is an error naming the closest known one; the list of known
names is the union of every settings class, tool and test variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.commands.config import masked
from services.settings import CommonSettings
from services.settings_names import (
    OTHER_VARIABLES,
    SETTINGS_CLASSES,
    SETTINGS_FIELDS,
    all_fields,
    env_name,
    known_names,
    unknown_variables,
)
from streams.errors import ConfigError

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_the_kept_list_is_every_settings_class_field() -> None:
    fields = all_fields()
    assert fields == SETTINGS_FIELDS, (
        "services/settings_names.py is stale: run `python -m services.settings_names`; "
        f"missing {sorted(fields - SETTINGS_FIELDS)}, extra {sorted(SETTINGS_FIELDS - fields)}"
    )


def test_every_settings_class_is_listed() -> None:
    """A new CommonSettings subclass must join SETTINGS_CLASSES (its fields are then known)."""
    listed = {spec.rpartition(":")[2] for spec in SETTINGS_CLASSES.values()}
    found = set()
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("loadtest/**/*.py")]:
        found |= set(re.findall(r"^class (\w+)\((?:\w+Settings)\):", path.read_text(), re.M))
    assert found <= listed, f"settings classes missing from SETTINGS_CLASSES: {found - listed}"


def test_every_fraud_variable_the_project_spells_is_known() -> None:
    known = known_names()
    files = [
        *ROOT.glob("services/**/*.py"),
        *ROOT.glob("streams/**/*.py"),
        *ROOT.glob("features/**/*.py"),
        *ROOT.glob("models/**/*.py"),
        *ROOT.glob("loadtest/**/*.py"),
        *ROOT.glob("scripts/*.sh"),
        *ROOT.glob("tests/**/*.py"),
        ROOT / "docker-compose.yml",
        ROOT / "Makefile",
        ROOT / ".ci/run",
        ROOT / "features/repo/feature_store.yaml",
    ]
    spelled = set()
    for path in files:
        if path.name == "test_settings_names.py":
            continue
        for name in re.findall(r"\bFRAUD_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()):
            head = name.partition("__")[0]
            if name.isupper() and not name.endswith(("_FEATURES", "_AT")):
                spelled.add(head)
    assert spelled - known == set()


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("FRAUD_KAFKA_BOOTSRAP", "FRAUD_KAFKA_BOOTSTRAP"),
        ("FRAUD_REDIS_ULR", "FRAUD_REDIS_URL"),
        ("FRAUD_METRICS_PROT", "FRAUD_METRICS_PORT"),
        ("FRAUD_API_KEYS", "FRAUD_API_KEYS_FILE"),
        ("FRAUD_ZZZZZZZZZZZZ", None),
    ],
)
def test_a_typo_is_refused_naming_the_closest_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, closest: str | None
) -> None:
    monkeypatch.setenv(name, "x")
    assert unknown_variables({name: "x"}) == [(name, closest)]
    with pytest.raises(ConfigError) as caught:
        CommonSettings()
    assert name in str(caught.value)
    if closest:
        assert f"did you mean {closest}?" in str(caught.value)


def test_variables_of_other_services_tools_and_mapping_keys_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accepted = {
        "FRAUD_GROUP_ID": "scorer-only",  # the scorer's, set in an environment shared by all
        "FRAUD_GATE_MIN_LABELS": "300",  # the retrainer's
        "FRAUD_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # the tests'
        "FRAUD_LOADTEST_SHAPE": "step",  # Locust's
        "FRAUD_KAFKA_CONFIG__CLIENT_RACK": "az1",  # one key of a mapping setting
        "NOT_FRAUD_ANYTHING": "ignored",
    }
    for name, value in accepted.items():
        monkeypatch.setenv(name, value)
    assert unknown_variables(accepted) == []
    assert CommonSettings().kafka().properties["client.rack"] == "az1"


def test_a_field_of_the_class_being_built_is_always_known() -> None:
    """A field added to a class before the kept list is regenerated is not refused."""
    environ = {env_name("brand_new_field"): "1"}
    assert unknown_variables(environ) != []
    assert unknown_variables(environ, extra_fields=["brand_new_field"]) == []


def test_other_variables_are_not_settings_fields() -> None:
    assert not {env_name(f) for f in SETTINGS_FIELDS} & set(OTHER_VARIABLES)


def test_config_show_masks_secrets_and_url_passwords() -> None:
    assert masked(SecretStr("redis://app:s3cret@redis:6379/0")) == "redis://app:****@redis:6379/0"
    assert masked(SecretStr("redis://redis:6379/0")) == "redis://redis:6379/0"
    assert masked(SecretStr("hunter2")) == "****"
    assert masked(SecretStr("")) == ""
    assert masked({"sasl.password": "x", "client.rack": "az1"}) == {
        "sasl.password": "****",
        "client.rack": "az1",
    }
    assert masked(Path("/etc/ca.pem")) == "/etc/ca.pem"
    assert masked(None, "kafka_sasl_password") is None  # nothing set: nothing to hide
