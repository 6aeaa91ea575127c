"""Traffic mixes of the latency benchmark: what the scorer is paced with.

The simulator's own traffic flatters a scorer: few flags and warm cards. The bench runs
each paced step with one of these mixes:

* ``normal`` - the simulator's traffic (~0.5 % flagged by a champion trained on it);
* ``attack`` - the same traffic in which a burst of stolen-card spending makes
  :data:`ATTACK_SHARE` of the transactions (:class:`AttackBurst`): cards of the stream
  stolen and spending :data:`SPENDS_PER_CARD` times each, amounts from 1.2x to 8x the
  simulator's fraud-amount threshold - its compromised-customer pattern (the bench
  measures the share the champion flags; the aim is at least 10 %: a stolen card's first
  large amount alone scores below the review threshold of a champion trained on the
  simulator, its repeats mostly above);
* ``cold`` - the simulator's traffic with every card new (a card id never sent before):
  each transaction costs the scorer a Redis read of an empty history and a card-cache miss;
* ``schema`` - an independent generator that knows only the published JSON Schema
  (``streams/schemas/transaction.schema.json``): random schema-valid values, reusing
  :data:`SCHEMA_CARDS` cards and :data:`SCHEMA_TERMINALS` terminals, amounts log-uniform
  from 1 to 1,000 (the one choice the schema cannot make: it allows up to 1,000,000), and
  transaction ids of letters (random digits can form a Luhn-valid number, which the
  scorer refuses as a card number).

Each generator hands out ``(key, value)`` records; :func:`paced_produce` sends them at a
rate, as :func:`streams.simulator.stream_transactions` does for the normal mix.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from streams.events import Transaction
from streams.kafka import Endpoint, producer_config, warm_up_producer
from streams.serde import encode
from streams.simulator import Simulator
from streams.simulator.source import LiveSource

Mix = Literal["normal", "attack", "cold", "schema"]
MIXES: tuple[Mix, ...] = ("normal", "attack", "cold", "schema")
ATTACK_SHARE = 0.2
STOLEN_CARDS = 100
SPENDS_PER_CARD = 3
SCHEMA_CARDS = 3_000
SCHEMA_TERMINALS = 5_000
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "streams/schemas/transaction.schema.json"

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
Record = tuple[bytes, bytes]
"""(key, value) of one transaction record."""


class Generator(Protocol):
    def take(self, n: int) -> list[Record]: ...


class AttackBurst:
    """Turns :data:`ATTACK_SHARE` of a stream's transactions into stolen-card spending:
    :data:`STOLEN_CARDS` cards of the stream at a time, each spending
    :data:`SPENDS_PER_CARD` times an amount 1.2x to 8x ``threshold`` before it is blocked
    and another card of the stream is stolen (a card that keeps spending large amounts
    makes them its normal: its mean and spread grow). In a finite world a blocked card
    can be stolen again later."""

    def __init__(self, threshold: float, seed: int) -> None:
        self._threshold = threshold
        self._rng = random.Random(seed)
        self._stolen: list[list[Any]] = []
        """[card_id, customer_id, spends left] of the cards being used."""

    def apply(self, tx: Transaction) -> Transaction:
        if self._rng.random() >= ATTACK_SHARE:
            return tx
        if len(self._stolen) < STOLEN_CARDS and all(s[0] != tx.card_id for s in self._stolen):
            self._stolen.append([tx.card_id, tx.customer_id, SPENDS_PER_CARD])
        at = self._rng.randrange(len(self._stolen))
        card, holder, left = self._stolen[at]
        if left <= 1:  # blocked after this one: the next attack steals another card
            self._stolen[at] = self._stolen[-1]
            self._stolen.pop()
        else:
            self._stolen[at][2] = left - 1
        return msgspec.structs.replace(
            tx,
            card_id=card,
            customer_id=holder,
            amount=round(self._threshold * self._rng.uniform(1.2, 8.0), 2),
        )


class SimulatorMix:
    """The simulator's transactions, re-timed to now, altered per mix."""

    def __init__(self, simulator: Simulator, mix: Mix, *, first_day: int, seed: int) -> None:
        if mix not in ("normal", "attack", "cold"):
            raise ValueError(f"not a simulator mix: {mix}")
        self.mix = mix
        self._source = LiveSource(simulator, first_day=first_day)
        self._attack = AttackBurst(simulator.config.fraud_amount_threshold, seed)
        self._cold_prefix = f"cold-{uuid.uuid4().hex[:8]}-"
        self._cold = 0

    def take(self, n: int) -> list[Record]:
        now = datetime.now(UTC)
        out: list[Record] = []
        for batch, index in self._source.take(n, card_testing=False):
            for tx in self._source.transactions(batch, index, now):
                if self.mix == "attack":
                    tx = self._attack.apply(tx)
                elif self.mix == "cold":
                    self._cold += 1
                    tx = msgspec.structs.replace(tx, card_id=f"{self._cold_prefix}{self._cold}")
                out.append((tx.card_id.encode(), encode(tx)))
        return out


class SchemaMix:
    """Transactions built from the JSON Schema alone: every property the schema lists,
    valued from its keywords (type, enum, pattern, length, bounds, format), ids drawn
    from fixed pools (a card is reused, as a card is); no project code knows them. The
    seed fixes the traffic; each generator's transaction ids are its own."""

    def __init__(self, schema_file: Path = SCHEMA_FILE, seed: int = 11) -> None:
        document = json.loads(schema_file.read_text())
        self.schema: dict[str, Any] = document["$defs"]["Transaction"]
        self._rng = random.Random(seed)
        self._pools = {
            "card_id": [f"sc{self._rng.getrandbits(40):x}" for _ in range(SCHEMA_CARDS)],
            "terminal_id": [f"st{self._rng.getrandbits(40):x}" for _ in range(SCHEMA_TERMINALS)],
        }
        self._customer_of = {c: f"su{i}" for i, c in enumerate(self._pools["card_id"])}
        self._id_prefix = "".join(random.SystemRandom().choices(_LETTERS, k=8))
        """Per generator, not per seed: two runs of one seed send the same traffic under
        new transaction ids (the same ids would be skipped as already decided)."""

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in self.schema["properties"].items():
            if name in self._pools:
                out[name] = self._rng.choice(self._pools[name])
            elif name == "customer_id":
                continue  # the card's holder, set below
            elif name == "transaction_id":  # letters: a long digit run could pass for a PAN
                out[name] = self._id_prefix + "".join(self._rng.choices(_LETTERS, k=16))
            elif name == "amount":
                out[name] = round(10 ** self._rng.uniform(0.0, 3.0), 2)
            else:
                out[name] = self._value(spec)
        out["customer_id"] = self._customer_of[out["card_id"]]
        return out

    def take(self, n: int) -> list[Record]:
        out = []
        for _ in range(n):
            record = self.record()
            out.append((record["card_id"].encode(), json.dumps(record).encode()))
        return out

    def _value(self, spec: dict[str, Any]) -> Any:
        if "anyOf" in spec:
            options = spec["anyOf"]
            return self._value(self._rng.choice(options))
        if "enum" in spec:
            return self._rng.choice(spec["enum"])
        kind = spec.get("type")
        if kind == "null":
            return None
        if kind == "integer":
            return self._rng.randint(int(spec.get("minimum", 0)), int(spec.get("maximum", 100)))
        if kind == "number":
            low = spec.get("minimum", spec.get("exclusiveMinimum", 0.0))
            return round(self._rng.uniform(low, spec.get("maximum", 1000.0)), 2) or 0.01
        if kind == "string" and spec.get("format") == "date-time":
            return datetime.now(UTC).isoformat()
        if kind == "string":
            return self._string(spec)
        raise ValueError(f"schema keyword set not handled: {spec}")

    def _string(self, spec: dict[str, Any]) -> str:
        """A string matching the schema's patterns: ``^[class]{n}$`` or
        ``^[class][class]*$`` (within minLength / maxLength)."""
        pattern = spec.get("pattern", "^[a-z]*$")
        classes = [_chars(c) for c in re.findall(r"\[([^\]]+)\]", pattern)]
        fixed = re.search(r"\]\{(\d+)\}", pattern)
        if fixed and len(classes) == 1:
            return "".join(self._rng.choice(classes[0]) for _ in range(int(fixed[1])))
        if len(classes) == 2:
            size = self._rng.randint(max(1, spec.get("minLength", 1)), min(16, spec["maxLength"]))
            rest = "".join(self._rng.choice(classes[1]) for _ in range(size - 1))
            return self._rng.choice(classes[0]) + rest
        raise ValueError(f"pattern not handled: {pattern}")


def _chars(char_class: str) -> str:
    """The characters of a regex character class such as ``A-Za-z0-9_.:\\-``."""
    out, i = [], 0
    text = char_class.replace("\\-", "\x00")
    while i < len(text):
        if i + 2 < len(text) and text[i + 1] == "-":
            out += [chr(c) for c in range(ord(text[i]), ord(text[i + 2]) + 1)]
            i += 3
        else:
            out.append("-" if text[i] == "\x00" else text[i])
            i += 1
    return "".join(out)


def parse_mixes(text: str) -> tuple[Mix, ...]:
    """``attack,normal`` -> the mixes, in the bench's order; refuses an unknown one."""
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MIXES]
    if unknown:
        raise ValueError(f"unknown traffic mix {unknown[0]!r}: one of {', '.join(MIXES)}")
    return tuple(m for m in MIXES for c in chosen if c == m)


def generator(mix: Mix, simulator_factory: Callable[[], Simulator], first_day: int) -> Generator:
    if mix == "schema":
        return SchemaMix()
    return SimulatorMix(simulator_factory(), mix, first_day=first_day, seed=MIXES.index(mix))


def paced_produce(
    source: Generator,
    *,
    bootstrap: Endpoint,
    topic: str,
    rate: float,
    duration_s: float,
    client_id: str = "bench-producer",
    slice_s: float = 0.005,
) -> dict[str, Any]:
    """Send ``rate * duration_s`` records of ``source`` to ``topic`` at ``rate``, handed out
    every ``slice_s``; the count and achieved rate (as the normal mix's report has them)."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(bootstrap, client_id=client_id))
    warm_up_producer(producer, bootstrap, topic)
    total = round(rate * duration_s)
    sent = tick = 0
    started = last = time.monotonic()
    while sent < total:
        elapsed = time.monotonic() - started
        due = min(total, int(elapsed * rate) + 1)
        if due > sent:
            for key, value in source.take(due - sent):
                _produce(producer, topic, key, value)
            sent, last = due, time.monotonic()
        producer.poll(0)
        # wake at the next slice boundary, or later still if nothing is due by then
        tick = max(tick + 1, int(elapsed / slice_s) + 1)
        delay = max(tick * slice_s, sent / rate) - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
    elapsed = last - started
    remaining = producer.flush(60)
    return {
        "count": sent,
        "elapsed_s": elapsed,
        "achieved_rate": (sent - 1) / elapsed if sent > 1 and elapsed else 0.0,
        "undelivered": remaining,
    }


def _produce(producer: Any, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.005)


def chunks(source: Generator, n: int, size: int = 512) -> Iterator[Record]:
    """``n`` records of ``source`` (for tests and one-off producers)."""
    while n > 0:
        take = min(size, n)
        yield from source.take(take)
        n -= take
