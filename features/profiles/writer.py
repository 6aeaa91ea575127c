"""The one writer of label-driven terminal-risk updates into Feast's Redis layout.

State per terminal (keys share the hash tag ``{terminal_id}``):

* ``<prefix>:trisk:{T}:tx`` - transactions per event day (seeded daily from history by
  :meth:`TerminalRiskWriter.seed_transaction_counts`; window days are >= ``delay`` days old,
  so they are settled by then);
* ``<prefix>:trisk:{T}:fr`` - fraud labels: ``t:<transaction_id>`` (the idempotence guard),
  ``d:<day>`` fraud count per event day, ``last`` latest fraud event time (microseconds).

One Lua script per chunk applies labels and rewrites the affected terminals' Feast rows
(timestamp = as-of, whole seconds) atomically, computing exactly what
:func:`features.profiles.risk.terminal_risk` computes at that as-of time. A label is applied
only once it is usable (``max(labelled_at, event_time) <= as_of``); later ones are returned
as deferred. ``as_of`` must not go backwards; a row newer than ``as_of`` is never overwritten.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd
import redis

from features.profiles.cache import publish_profile_change
from features.profiles.errors import ProfileInputError, ProfileStoreUnavailable
from features.profiles.layout import FeastLayout
from features.profiles.names import (
    DEFAULT_DELAY_DAYS,
    ONLINE_KEY_TTL_SECONDS,
    RISK_WINDOWS_DAYS,
    TERMINAL_JOIN_KEY,
)
from features.profiles.risk import fraud_events
from features.profiles.times import DAY_US, to_utc_us
from features.redis_nodes import is_cluster, script_per_node

_SCRIPT = files("features.profiles").joinpath("terminal_risk.lua").read_text()
_ROWS_SCRIPT = files("features.profiles").joinpath("terminal_rows.lua").read_text()
_CHUNK_TERMINALS = 256


@dataclass(frozen=True)
class TerminalLabel:
    """A label joined with its transaction (the feedback loop has both)."""

    transaction_id: str
    terminal_id: str
    event_time: datetime
    labelled_at: datetime
    is_fraud: bool = True


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    duplicates: int
    legit: int
    deferred: tuple[TerminalLabel, ...]
    rows_written: int
    as_of: datetime


class TerminalRiskWriter:
    """Incremental, idempotent terminal-risk updates in Feast's online layout."""

    def __init__(
        self,
        redis_client: redis.Redis,
        layout: FeastLayout,
        *,
        state_prefix: str,
        delay_days: int = DEFAULT_DELAY_DAYS,
        key_ttl_seconds: int = ONLINE_KEY_TTL_SECONDS,
    ) -> None:
        if delay_days < 0:
            raise ProfileInputError(f"delay_days must be >= 0, got {delay_days}")
        self._client = redis_client
        self.layout = layout
        self.state_prefix = state_prefix
        self.delay_days = delay_days
        self.key_ttl_seconds = key_ttl_seconds
        self._script = redis_client.register_script(_SCRIPT)
        windows = [str(w) for w in RISK_WINDOWS_DAYS]
        self._fixed_args: list[bytes | str | int] = [
            str(delay_days),
            str(key_ttl_seconds or 0),
            layout.ts_field,
            str(len(windows)),
            *windows,
            *layout.feature_fields,
        ]
        self._state_ttl_seconds = 2 * (delay_days + max(RISK_WINDOWS_DAYS) + 1) * 86400

    def tx_key(self, terminal_id: str) -> str:
        return f"{self.state_prefix}:trisk:{{{terminal_id}}}:tx"

    def fraud_key(self, terminal_id: str) -> str:
        return f"{self.state_prefix}:trisk:{{{terminal_id}}}:fr"

    def apply_labels(
        self, labels: Iterable[TerminalLabel], *, as_of: datetime | None = None
    ) -> ApplyResult:
        """Apply usable fraud labels (idempotent per transaction_id), rewrite the rows of the
        terminals they touch at ``as_of`` (default now, rounded up to a whole second)."""
        as_of_s = _ceil_seconds(as_of or datetime.now(UTC))
        as_of_us = as_of_s * 1_000_000
        usable: list[TerminalLabel] = []
        deferred: list[TerminalLabel] = []
        legit = 0
        for label in labels:
            if not label.is_fraud:
                legit += 1
                continue
            event_us = _us(label.event_time)
            if max(_us(label.labelled_at), event_us) > as_of_us:
                deferred.append(label)
            else:
                usable.append(label)
        by_terminal: dict[str, list[TerminalLabel]] = {}
        for label in usable:
            by_terminal.setdefault(label.terminal_id, []).append(label)
        applied = rows = 0
        terminals = list(by_terminal)
        for start in range(0, len(terminals), _CHUNK_TERMINALS):
            chunk = terminals[start : start + _CHUNK_TERMINALS]
            written, flags = self._run(chunk, [by_terminal[t] for t in chunk], as_of_s)
            rows += written
            applied += sum(flags)
        return ApplyResult(
            applied=applied,
            duplicates=len(usable) - applied,
            legit=legit,
            deferred=tuple(deferred),
            rows_written=rows,
            as_of=datetime.fromtimestamp(as_of_s, UTC),
        )

    def refresh(self, terminal_ids: Sequence[str], *, as_of: datetime) -> int:
        """Rewrite the rows of ``terminal_ids`` at ``as_of`` from the state (day rollover)."""
        as_of_s = _ceil_seconds(as_of)
        rows = 0
        for start in range(0, len(terminal_ids), _CHUNK_TERMINALS):
            chunk = list(terminal_ids[start : start + _CHUNK_TERMINALS])
            rows += self._run(chunk, [[] for _ in chunk], as_of_s)[0]
        return rows

    def seed_transaction_counts(self, transactions: pd.DataFrame, *, as_of: datetime) -> int:
        """Replace each terminal's day buckets by the counts of ``transactions`` over the
        days any window can need from ``as_of`` on (idempotent). Returns terminals written."""
        end_us = _ceil_seconds(as_of) * 1_000_000
        first_day = end_us // DAY_US - self.delay_days - max(RISK_WINDOWS_DAYS) - 1
        event_us = to_utc_us(transactions["event_time"])
        days = np.floor_divide(event_us, DAY_US)
        keep = (event_us <= end_us) & (days >= first_day)
        counts = (
            pd.DataFrame({"t": transactions[TERMINAL_JOIN_KEY].to_numpy()[keep], "d": days[keep]})
            .groupby(["t", "d"])
            .size()
        )
        by_terminal: dict[str, dict[str, int]] = {
            str(t): {} for t in pd.unique(transactions[TERMINAL_JOIN_KEY])
        }
        for (terminal, day), count in counts.items():
            by_terminal[str(terminal)][str(int(day))] = int(count)
        try:
            # one MULTI on a server; a cluster runs no MULTI over many slots (seeding is
            # idempotent: a seed cut short is completed by the next one)
            atomic = not is_cluster(self._client)
            with self._client.pipeline(transaction=atomic) as pipe:
                for terminal, buckets in by_terminal.items():
                    key = self.tx_key(terminal)
                    pipe.delete(key)
                    if buckets:
                        pipe.hset(key, mapping=buckets)
                        pipe.expire(key, self._state_ttl_seconds)
                pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ProfileStoreUnavailable("seed_transaction_counts", str(exc)) from exc
        return len(by_terminal)

    def _run(
        self, terminals: list[str], labels: list[list[TerminalLabel]], as_of_s: int
    ) -> tuple[int, list[int]]:
        keys: list[bytes | str] = []
        label_args: list[bytes | str | int] = []
        n_labels = 0
        for index, (terminal, group) in enumerate(zip(terminals, labels, strict=True), start=1):
            keys += [
                self.tx_key(terminal),
                self.fraud_key(terminal),
                self.layout.entity_key(terminal),
            ]
            for label in group:
                event_us = _us(label.event_time)
                label_args += [index, label.transaction_id, event_us // DAY_US, event_us]
                n_labels += 1
        args = [str(as_of_s * 1_000_000), str(as_of_s), *self._fixed_args, n_labels, *label_args]
        if is_cluster(self._client):
            return self._run_on_cluster(terminals, labels, as_of_s)
        try:
            reply = self._script(keys=keys, args=args)
            publish_profile_change(self._client, self.layout.generation_key)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ProfileStoreUnavailable("apply_labels", str(exc)) from exc
        return int(reply[0]), [int(flag) for flag in reply[1:]]

    def _run_on_cluster(
        self, terminals: list[str], labels: list[list[TerminalLabel]], as_of_s: int
    ) -> tuple[int, list[int]]:
        """:meth:`_run` on a Redis Cluster, in two steps: each node of the terminals' state
        applies their labels and computes their rows (one script per node), then each
        node of the Feast entity keys (untagged: anywhere) writes its rows unless a newer
        one is there. A crash between the two leaves the labels applied and the rows as
        they were until the same labels come again (the feedback processor acknowledges a
        batch only after this returned): duplicates then, whose terminals' rows are still
        computed and written. The labels are applied once either way."""
        cluster: Any = self._client
        index = {self.tx_key(t): i for i, t in enumerate(terminals)}
        first_label = list(itertools.accumulate((len(g) for g in labels), initial=0))

        def state_args(part: list[str]) -> list[bytes | str | int]:
            label_args: list[bytes | str | int] = []
            keys: list[str] = []
            for local, key in enumerate(part, start=1):
                terminal = terminals[index[key]]
                keys += [key, self.fraud_key(terminal)]
                for label in labels[index[key]]:
                    event_us = _us(label.event_time)
                    label_args += [local, label.transaction_id, event_us // DAY_US, event_us]
            count = len(label_args) // 4
            head = [str(as_of_s * 1_000_000), str(as_of_s), *self._fixed_args, count]
            return [*head, *label_args, "rows", len(keys), *keys]

        try:
            states = script_per_node(cluster, _SCRIPT, list(index), state_args)
            flags = [0] * first_label[-1]
            rows: dict[bytes, list[bytes]] = {}
            for part, reply in states:
                values = list(reply)  # type: ignore[call-overload]
                at = 1
                for key in part:
                    i = index[key]
                    for k in range(len(labels[i])):
                        flags[first_label[i] + k] = int(values[at + k])
                    at += len(labels[i])
                for key, row in zip(part, values[at:], strict=True):
                    rows[self.layout.entity_key(terminals[index[key]])] = list(row)
            width = len(next(iter(rows.values()))) if rows else 0
            ttl = str(self.key_ttl_seconds or 0)

            def row_args(part: list[bytes]) -> list[bytes | str | int]:
                out: list[bytes | str | int] = [self.layout.ts_field, str(as_of_s), ttl, width]
                for key in part:
                    out += [key, *rows[key]]
                return out

            written = script_per_node(cluster, _ROWS_SCRIPT, list(rows), row_args)  # type: ignore[arg-type]
            publish_profile_change(cluster, self.layout.generation_key)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ProfileStoreUnavailable("apply_labels", str(exc)) from exc
        return sum(int(n) for _, n in written), flags  # type: ignore[call-overload]


def labels_from_frames(transactions: pd.DataFrame, labels: pd.DataFrame) -> list[TerminalLabel]:
    """Fraud labels of a history as writer input (earliest fraud label per transaction)."""
    frauds = fraud_events(transactions, labels)
    return [
        TerminalLabel(
            transaction_id=str(row.transaction_id),
            terminal_id=str(row.terminal_id),
            event_time=_from_us(int(row.event_us)),
            labelled_at=_from_us(int(row.usable_us)),
        )
        for row in frauds.itertuples(index=False)
    ]


def _us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ProfileInputError("label times must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _ceil_seconds(moment: datetime) -> int:
    return -(-_us(moment) // 1_000_000)
