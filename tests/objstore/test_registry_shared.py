"""The model registry shared by several hosts: on s3:// (moto) and, the same tests, on a
local folder."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from models.errors import PromotionConflict, RegistryIntegrityError, VersionNotFound
from models.policy import ThresholdPolicy
from models.registry import ModelBundle
from models.registry_open import Registry, open_registry
from models.scoring import FeatureSpec
from streams.object_store import ObjectStore
from tests.objstore.conftest import Location

pytestmark = pytest.mark.objstore


def bundle(tag: str) -> ModelBundle:
    return ModelBundle(
        onnx=f"onnx-{tag}".encode(),
        model_text=f"tree-{tag}",
        spec=FeatureSpec(("a", "b"), "fs-1"),
        metrics={"average_precision": 0.5},
        policy=ThresholdPolicy(0.2, 0.9, 0.005),
        reference=np.arange(6, dtype=np.float32).reshape(3, 2),
        fingerprint=f"fp-{tag}",
        card_markdown=f"# Model card - unregistered\n{tag}",
    )


def open_at(where: Location, cache: str = "cache") -> Registry:
    return open_registry(
        where.url, endpoint_url=where.endpoint_url, cache_dir=where.cache_dir.parent / cache
    )


def test_register_promote_load_and_rollback(location: Location) -> None:
    registry = open_at(location)
    first = registry.register(bundle("one"))
    registry.promote("v0001", "first")
    second = registry.register(bundle("two"))
    assert (first.version, second.version, second.parent) == ("v0001", "v0002", "v0001")
    registry.promote("v0002", "better")

    reader = open_at(location, cache="other-host")
    champion = reader.champion()
    assert champion is not None and champion.version == "v0002"
    assert (champion.path / "model.txt").read_text() == "tree-two"
    assert (
        (champion.path / "model_card.md")
        .read_text()
        .startswith("# Model card - v0002 (parent v0001)")
    )
    np.testing.assert_array_equal(champion.reference(), bundle("two").reference)
    assert champion.policy() == ThresholdPolicy(0.2, 0.9, 0.005)
    assert [v.version for v in reader.list()] == ["v0001", "v0002"]
    assert reader.status("v0001") == "registered"

    assert registry.rollback("AP dropped").version == "v0001"
    assert reader.champion().version == "v0001"  # type: ignore[union-attr]
    assert [(e["kind"], e["version"]) for e in reader.audit()] == [
        ("registered", "v0001"),
        ("promoted", "v0001"),
        ("registered", "v0002"),
        ("promoted", "v0002"),
        ("rolled_back", "v0001"),
    ]
    with pytest.raises(VersionNotFound):
        reader.get("v0009")


def test_announcements_are_every_change_once_delivered(location: Location) -> None:
    registry = open_at(location)
    registry.register(bundle("one"))
    registry.promote("v0001", "first")
    outbox = registry.announcements()
    outbox.claim()
    pending = outbox.pending()
    assert [(p.event.kind, p.event.model_version) for p in pending] == [
        ("registered", "v0001"),
        ("promoted", "v0001"),
    ]
    outbox.delivered(pending[-1].end)
    outbox.release()
    assert open_at(location).announcements().backlog() == []


def test_a_version_is_never_rewritten(location: Location) -> None:
    """The stored files are what the manifest says; a changed object is caught."""
    registry = open_at(location)
    registry.register(bundle("one"))
    registry.verify("v0001")
    if location.on_s3:
        store = ObjectStore(location.url, endpoint_url=location.endpoint_url)
        names = store.names("versions/v0001/")
        assert sorted(n.rsplit("/", 1)[1] for n in names) == sorted(
            [*bundle("one").files(), "manifest.json", "claim.json"]
        )
        store.write("versions/v0001/model.txt", b"tampered")
    else:
        path = Path(location.url) / "versions" / "v0001" / "model.txt"
        path.chmod(0o644)
        path.write_text("tampered")
    with pytest.raises(RegistryIntegrityError) as caught:
        registry.verify("v0001")
    assert caught.value.files == ["model.txt"]
    with pytest.raises(RegistryIntegrityError):
        registry.promote("v0001", "must not promote a changed version")


def test_concurrent_promotions_exactly_one_wins(location: Location) -> None:
    registry = open_at(location)
    for tag in ("one", "two", "three"):
        registry.register(bundle(tag))
    registry.promote("v0001", "first")
    racers = {"v0002": open_at(location, "a"), "v0003": open_at(location, "b")}
    start = threading.Barrier(len(racers))
    won: list[str] = []
    lost: list[PromotionConflict] = []

    def race(version: str, mine: Registry) -> None:
        start.wait()
        try:
            mine.promote(version, f"gates passed for {version}", replaces="v0001")
            won.append(version)
        except PromotionConflict as exc:
            lost.append(exc)

    threads = [threading.Thread(target=race, args=item) for item in racers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1 and len(lost) == 1
    (winner,) = won
    (loser,) = {"v0002", "v0003"} - {winner}
    assert (lost[0].version, lost[0].expected, lost[0].found) == (loser, "v0001", winner)
    assert registry.champion().version == winner  # type: ignore[union-attr]
    trail = [(e["kind"], e["version"]) for e in registry.audit()]
    assert trail.count(("promoted", winner)) == 1
    assert ("promoted", loser) not in trail
    assert trail.count(("promotion_lost", loser)) == 1
    # the lost promotion is in the audit, not on model.events
    pending = [(p.event.kind, p.event.model_version) for p in registry.announcements().pending()]
    assert ("promoted", winner) in pending and all(k != "promotion_lost" for k, _ in pending)


def test_concurrent_registrations_take_distinct_versions(location: Location) -> None:
    start = threading.Barrier(3)
    made: dict[str, str] = {}

    def register(tag: str) -> None:
        mine = open_at(location, f"host-{tag}")
        start.wait()
        made[tag] = mine.register(bundle(tag)).version

    threads = [threading.Thread(target=register, args=(tag,)) for tag in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(made.values()) == ["v0001", "v0002", "v0003"]
    reader = open_at(location, "reader")
    for tag, version in made.items():
        entry = reader.get(version)
        assert (entry.path / "model.txt").read_text() == f"tree-{tag}"
        assert entry.fingerprint == f"fp-{tag}"
        reader.verify(version)
    registered = [e["version"] for e in reader.audit() if e["kind"] == "registered"]
    assert sorted(registered) == ["v0001", "v0002", "v0003"]


def _follow(url: str, endpoint: str | None, cache: str, ready: object, seen: object) -> None:
    """A second host: poll the champion until it is v0002, report what it saw."""
    registry = open_registry(url, endpoint_url=endpoint, cache_dir=Path(cache))
    first = registry.champion()
    ready.put(first.version if first else None)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        champion = registry.champion()
        if champion is not None and champion.version == "v0002":
            seen.put(  # type: ignore[attr-defined]
                (champion.version, (champion.path / "model.txt").read_text(), time.time())
            )
            return
        time.sleep(0.02)
    seen.put((None, "", time.time()))  # type: ignore[attr-defined]


def test_other_processes_see_a_promotion(location: Location, tmp_path: Path) -> None:
    registry = open_at(location)
    registry.register(bundle("one"))
    registry.register(bundle("two"))
    registry.promote("v0001", "first")
    spawn = multiprocessing.get_context("spawn")
    ready, seen = spawn.Queue(), spawn.Queue()
    followers = [
        spawn.Process(
            target=_follow,
            args=(location.url, location.endpoint_url, str(tmp_path / f"host{i}"), ready, seen),
        )
        for i in range(2)
    ]
    for follower in followers:
        follower.start()
    try:
        assert [ready.get(timeout=120) for _ in followers] == ["v0001", "v0001"]
        registry.promote("v0002", "better")
        results = [seen.get(timeout=120) for _ in followers]
    finally:
        for follower in followers:
            follower.join(30)
    assert [r[:2] for r in results] == [("v0002", "tree-two"), ("v0002", "tree-two")]
    assert [f.exitcode for f in followers] == [0, 0]


def test_fraudctl_model_commands_take_the_registry_url(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from services.cli import app
    from services.stack.process import free_port

    registry = open_at(location)
    registry.register(bundle("one"))
    registry.register(bundle("two"))
    monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FRAUD_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")  # no broker
    if location.endpoint_url:
        monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", location.endpoint_url)
    runner = CliRunner()
    for version in ("v0001", "v0002"):
        promoted = runner.invoke(app, ["model", "promote", version, "--registry", location.url])
        assert promoted.exit_code == 0, promoted.output
    listed = runner.invoke(app, ["model", "list", "--registry", location.url, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["version"], r["status"]) for r in rows] == [
        ("v0001", "registered"),
        ("v0002", "champion"),
    ]
    assert registry.champion().version == "v0002"  # type: ignore[union-attr]
    waiting = [p.event.kind for p in registry.announcements().pending()]
    assert waiting == ["registered", "registered", "promoted", "promoted"]
