from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelMismatch, RegistryError, RegistryIntegrityError, VersionNotFound
from models.policy import ThresholdPolicy
from models.registry import ModelBundle, ModelRegistry
from models.scoring import FeatureSpec
from streams.events import ModelEvent


def bundle(tag: str) -> ModelBundle:
    return ModelBundle(
        onnx=f"onnx-{tag}".encode(),
        model_text=f"tree-{tag}",
        spec=FeatureSpec(("a", "b"), "fs-1"),
        metrics={"average_precision": 0.5, "roc_auc": 0.9},
        policy=ThresholdPolicy(0.2, 0.9, 0.005),
        reference=np.arange(6, dtype=np.float32).reshape(3, 2),
        fingerprint=f"fp-{tag}",
        card_markdown=f"# Model card - unregistered\n{tag}",
        card={"tag": tag},
        pr_curve_png=b"\x89PNG",
    )


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.unit
def test_versions_are_numbered_read_only_and_never_overwritten(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = registry.register(bundle("one"))
    second = registry.register(bundle("two"))
    assert (first.version, second.version) == ("v0001", "v0002")
    assert second.parent is None
    assert (first.path / "model.txt").read_text() == "tree-one"
    assert {p.name for p in first.path.iterdir()} == {
        "model.onnx",
        "model.txt",
        "feature_spec.json",
        "metrics.json",
        "policy.json",
        "model_card.md",
        "model_card.json",
        "pr_curve.png",
        "reference.npy",
        "manifest.json",
    }
    for file in first.path.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o444
    np.testing.assert_array_equal(first.reference(), bundle("one").reference)
    assert first.policy() == ThresholdPolicy(0.2, 0.9, 0.005)
    assert first.spec() == FeatureSpec(("a", "b"), "fs-1")
    assert [v.version for v in registry.list()] == ["v0001", "v0002"]


@pytest.mark.unit
def test_promote_and_rollback_never_change_a_versions_files(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    v1 = registry.register(bundle("one"))
    registry.promote("v0001", "first")
    v2 = registry.register(bundle("two"))
    assert v2.parent == "v0001"  # parent is the champion at registration
    assert (v2.path / "model_card.md").read_text() == "# Model card - v0002 (parent v0001)\ntwo"
    assert json.loads((v2.path / "model_card.json").read_text())["version"] == "v0002"
    before = {v.version: snapshot(v.path) for v in (v1, v2)}

    registry.promote("v0002", "better AP")
    assert registry.champion() is not None and registry.champion().version == "v0002"  # type: ignore[union-attr]
    restored = registry.rollback("AP dropped in production")
    assert restored.version == "v0001"
    assert registry.champion().version == "v0001"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback("again")

    after = {v.version: snapshot(v.path) for v in (v1, v2)}
    assert after == before
    for version in ("v0001", "v0002"):
        registry.verify(version)
    events: list[ModelEvent] = registry.announcements().backlog()  # none announced yet
    assert [(e.kind, e.model_version, e.previous_version) for e in events] == [
        ("registered", "v0001", None),
        ("promoted", "v0001", None),
        ("registered", "v0002", None),
        ("promoted", "v0002", "v0001"),
        ("rolled_back", "v0001", "v0002"),
    ]
    assert events[-1].reasons == ["AP dropped in production"]
    audit = registry.audit()
    assert [line["kind"] for line in audit] == [e.kind for e in events]
    assert [line["event_id"] for line in audit] == [e.event_id for e in events]
    assert len({e.event_id for e in events}) == 5


@pytest.mark.unit
def test_challenger_reject_and_status(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(bundle("one"))
    registry.register(bundle("two"))
    registry.promote("v0001", "start")
    registry.set_challenger("v0002", "retrained")
    assert registry.challenger().version == "v0002"  # type: ignore[union-attr]
    assert registry.status("v0002") == "challenger"
    registry.reject("v0002", ["drift gate failed", "AP -0.05"])
    assert registry.challenger() is None
    assert registry.status("v0002") == "rejected"
    assert registry.status("v0001") == "champion"
    assert registry.audit()[-1]["reasons"] == ["drift gate failed", "AP -0.05"]


@pytest.mark.unit
def test_unknown_version_and_tampered_files_are_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    entry = registry.register(bundle("one"))
    with pytest.raises(VersionNotFound):
        registry.get("v0042")
    with pytest.raises(VersionNotFound):
        registry.promote("../etc", "no")
    target = entry.path / "model.onnx"
    target.chmod(0o644)
    target.write_bytes(b"tampered")
    with pytest.raises(RegistryIntegrityError, match=r"model\.onnx"):
        registry.promote("v0001", "tampered model must not serve")
    assert registry.champion() is None


@pytest.mark.unit
def test_pointers_are_replaced_atomically_without_leftovers(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(bundle("one"))
    registry.promote("v0001", "go")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not list((tmp_path / "versions").glob(".tmp-*"))
    assert (tmp_path / "champion.json").is_file()


@pytest.mark.unit
def test_serving_model_scores_decides_and_explains_only_flagged_rows(tmp_path: Path) -> None:
    from models.pipeline import TrainConfig, train_from_table
    from models.serving import ServingModel
    from tests.unit.test_model_synthetic import FEATURES, synthetic_table

    table = synthetic_table(days=14, per_day=300, seed=2)
    config = TrainConfig(train_days=7, delay_days=2, test_days=5, review_rate=0.02)
    outcome = train_from_table(table, FEATURES, "fs-x", config=config, source="s", fingerprint="f")
    entry = ModelRegistry(tmp_path).register(outcome.bundle)
    with pytest.raises(ModelMismatch):
        ServingModel.load(entry, expected_features=FEATURES[::-1], expected_feature_set="fs-x")
    serving = ServingModel.load(entry, expected_features=FEATURES, expected_feature_set="fs-x")
    x = table[FEATURES].to_numpy(np.float32)[-2000:]
    scored = serving.score(x)
    flagged = scored.scores >= serving.policy.review_threshold
    assert flagged.any() and not flagged.all()
    assert (scored.outcomes[~flagged] == "approve").all()
    assert [bool(r) for r in scored.reasons] == flagged.tolist()
    assert all(len(r) <= 3 for r in scored.reasons)


@pytest.mark.unit
def test_a_promotion_cut_short_after_its_pointer_is_finished_by_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after the champion pointer's rename: the promotion was made (the
    scorers serve it), so its audit line and announcement must follow, not vanish."""
    registry = ModelRegistry(tmp_path)
    registry.register(bundle("one"))
    append = ModelRegistry._append_audit

    def killed(self: ModelRegistry, line: dict[str, object]) -> None:
        raise SystemExit("SIGKILL")

    monkeypatch.setattr(ModelRegistry, "_append_audit", killed)
    with pytest.raises(SystemExit):
        registry.promote("v0001", "go")
    monkeypatch.setattr(ModelRegistry, "_append_audit", append)
    assert registry.champion().version == "v0001"  # type: ignore[union-attr]
    assert [line["kind"] for line in registry.audit()] == ["registered"]

    ModelRegistry(tmp_path).register(bundle("two"))  # the next writer, another process
    assert [(line["kind"], line["version"]) for line in registry.audit()] == [
        ("registered", "v0001"),
        ("promoted", "v0001"),
        ("registered", "v0002"),
    ]
    pointer = json.loads((tmp_path / "champion.json").read_text())
    assert registry.audit()[1]["event_id"] == pointer["event"]["event_id"]
    announced = registry.announcements().backlog()
    assert [e.kind for e in announced] == ["registered", "promoted", "registered"]


@pytest.mark.unit
def test_a_registration_cut_short_after_its_rename_is_recorded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path)
    monkeypatch.setattr(
        ModelRegistry, "_append_audit", lambda self, line: (_ for _ in ()).throw(SystemExit())
    )
    with pytest.raises(SystemExit):
        registry.register(bundle("one"))
    monkeypatch.undo()
    (tmp_path / "versions" / ".tmp-deadbeef").mkdir()  # a registration killed before rename
    registry.promote("v0001", "go")
    assert [(line["kind"], line["version"]) for line in registry.audit()] == [
        ("registered", "v0001"),
        ("promoted", "v0001"),
    ]
    assert registry.audit()[0]["details"] == {"recovered": True}
    assert not list((tmp_path / "versions").glob(".tmp-*"))


@pytest.mark.unit
def test_a_torn_audit_line_is_skipped_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(bundle("one"))
    with registry.audit_path.open("a") as handle:
        handle.write('{"kind": "prom')  # a power loss mid-append
    registry.promote("v0001", "go")
    assert [line["kind"] for line in registry.audit()] == ["registered", "promoted"]
    assert registry.status("v0001") == "champion"
    outbox = registry.announcements()
    assert [e.kind for e in outbox.backlog()] == ["registered", "promoted"]


@pytest.mark.unit
def test_a_registry_from_before_event_ids_announces_only_new_changes(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(bundle("one"))
    lines = registry.audit()
    old = [{k: v for k, v in line.items() if k != "event_id"} for line in lines]
    registry.audit_path.write_text("".join(json.dumps(line) + "\n" for line in old))
    (tmp_path / "audit.jsonl.cursor").unlink()  # the old code published directly, no cursor
    registry.promote("v0001", "go")
    waiting = registry.announcements().backlog()
    assert [(e.kind, e.model_version) for e in waiting] == [("promoted", "v0001")]
    old_event = (
        ModelRegistry(tmp_path)
        .announcements()
        .decode(registry.audit_path.read_bytes().splitlines()[0])
    )
    assert old_event is not None and old_event.event_id  # derived from the line, stable
