"""The benchmark's traffic mixes: what each generator sends (the share the champion flags
is measured by the bench, not asserted here)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import jsonschema
import msgspec
import pytest

from loadtest.bench_scorer import mix_summary, mix_targets, stage_p99_between
from loadtest.mixes import (
    ATTACK_SHARE,
    SCHEMA_CARDS,
    SCHEMA_FILE,
    SPENDS_PER_CARD,
    SchemaMix,
    SimulatorMix,
    chunks,
    parse_mixes,
)
from streams.events import Transaction
from streams.serde import transaction_decoder
from streams.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _simulator() -> Simulator:
    return Simulator(SimulatorConfig.small(seed=5), run_id="mixes")


def _decoded(records: list[tuple[bytes, bytes]]) -> list[Transaction]:
    out = []
    for key, value in records:
        tx = transaction_decoder.decode(value)
        assert isinstance(tx, Transaction), tx
        assert key == tx.card_id.encode()
        out.append(tx)
    return out


def test_the_schema_mix_is_valid_against_the_published_schema_and_reuses_cards() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    records = list(chunks(SchemaMix(seed=3), 20_000))
    validator = jsonschema.Draft202012Validator(schema)
    for _, value in records[:2_000]:
        validator.validate(json.loads(value))
    txs = _decoded(records)  # the scorer's own decoder takes every one
    cards = {t.card_id for t in txs}
    assert 2_500 < len(cards) <= SCHEMA_CARDS  # 20,000 draws from 3,000 cards
    assert len({t.transaction_id for t in txs}) == 20_000
    holders = {(t.card_id, t.customer_id) for t in txs}
    assert len(holders) == len(cards)  # one holder per card
    amounts = [t.amount for t in txs]
    assert min(amounts) >= 1.0 and max(amounts) <= 1_000.0
    assert {t.channel for t in txs} == {"atm", "ecom", "moto", "pos"}


def test_two_schema_generators_of_one_seed_send_the_same_traffic_under_new_ids() -> None:
    first, second = (_decoded(list(chunks(SchemaMix(seed=5), 500))) for _ in range(2))
    assert {t.transaction_id for t in first}.isdisjoint(t.transaction_id for t in second)
    same = [msgspec.structs.replace(t, transaction_id="x", event_time=NOW) for t in first]
    again = [msgspec.structs.replace(t, transaction_id="x", event_time=NOW) for t in second]
    assert same == again


def test_the_schema_mix_values_every_property_the_schema_lists() -> None:
    record = SchemaMix(seed=1).record()
    schema = json.loads(SCHEMA_FILE.read_text())["$defs"]["Transaction"]
    assert set(record) == set(schema["properties"])


def test_the_attack_mix_is_stolen_cards_spending_large_amounts_again_and_again() -> None:
    normal = _decoded(SimulatorMix(_simulator(), "normal", first_day=3, seed=1).take(6_000))
    attack = _decoded(SimulatorMix(_simulator(), "attack", first_day=3, seed=1).take(6_000))
    threshold = SimulatorConfig.small().fraud_amount_threshold
    assert [t.transaction_id for t in normal] == [t.transaction_id for t in attack]
    changed = [
        a
        for n, a in zip(normal, attack, strict=True)
        if msgspec.structs.replace(n, event_time=a.event_time) != a  # re-timed to now
    ]
    assert ATTACK_SHARE - 0.03 < len(changed) / len(attack) < ATTACK_SHARE + 0.03
    assert all(1.2 * threshold <= t.amount <= 8 * threshold for t in changed)
    spends = Counter(t.card_id for t in changed)
    assert len(changed) > 2 * len(spends)  # a stolen card spends again and again
    assert len(changed) <= SPENDS_PER_CARD * len(spends) * 3  # blocked, maybe stolen again
    holders = {t.card_id: t.customer_id for t in normal}
    assert all(holders[t.card_id] == t.customer_id for t in changed)  # the card's own holder


def test_the_cold_mix_sends_every_transaction_on_a_card_never_seen() -> None:
    cold = _decoded(SimulatorMix(_simulator(), "cold", first_day=3, seed=1).take(3_000))
    again = _decoded(SimulatorMix(_simulator(), "cold", first_day=3, seed=1).take(10))
    cards = [t.card_id for t in cold + again]
    assert len(set(cards)) == len(cards)  # not even a second generator repeats one


def test_mixes_are_named_and_refused_when_unknown() -> None:
    assert parse_mixes("schema, normal") == ("normal", "schema")
    with pytest.raises(ValueError, match="unknown traffic mix 'burst'"):
        parse_mixes("normal,burst")


def test_stage_p99_is_interpolated_from_the_histogram_between_two_readings() -> None:
    before = {"features": [(0.001, 10.0), (0.005, 10.0), (0.01, 10.0), (float("inf"), 10.0)]}
    after = {"features": [(0.001, 10.0), (0.005, 60.0), (0.01, 110.0), (float("inf"), 110.0)]}
    # 100 batches between: 50 in (1, 5] ms, 50 in (5, 10] ms -> p99 at 98 % of (5, 10]
    assert stage_p99_between(before, after) == {"features": pytest.approx(9.9)}
    slow = {"explain": [(0.01, 0.0), (float("inf"), 5.0)]}
    assert stage_p99_between({}, slow) == {"explain": 10.0}  # past the last bound


def test_a_mix_is_summarised_beside_the_echo_floor_and_checked() -> None:
    echo = {"p50_ms": 4.0, "p95_ms": 9.0, "p99_ms": 14.0, "missing": 0}
    scorer = {
        "p50_ms": 9.0,
        "p95_ms": 20.0,
        "p99_ms": 31.5,
        "missing": 0,
        "flag_rate": 0.12,
        "stage_p99_ms": {"features": 8.0},
    }
    summary = mix_summary(echo, scorer)
    assert summary["p99_over_echo_ms"] == 17.5 and summary["flag_rate"] == 0.12
    checks = mix_targets({"attack": summary})
    assert checks["attack:scorer_p99_ms<=50"] == {"value": 31.5, "met": True}
    assert checks["attack:p99_minus_echo_p99_ms<=15"] == {"value": 17.5, "met": False}
    assert checks["attack:flag_rate>=0.10"] == {"value": 0.12, "met": True}
