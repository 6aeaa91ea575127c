"""The real-time store on a Redis Cluster: the batch script split by node.

A cluster refuses one script over keys of many hash slots (CROSSSLOT), so the batch is
grouped by the node that serves each key's slot (a card's keys share the hash tag
``{card_id}``, a terminal's ``{terminal_id}``) and each node runs the same script
(:mod:`.card_state.lua`) over its own cards and terminals: one declared anchor key, the
others in ARGV. The batch's plan, arguments and reply keep the single-server shape: this
class cuts them per node and joins the replies (:meth:`ClusterFeatureStore._start`).

Nodes do not commit together, so a batch that touches several nodes runs in two steps:
every node first checks (epoch, card versions; nothing written) and only when all agree
do they apply. Each node checks the epoch's copy in the slot of its part's first key
(:func:`features.realtime.epoch.epoch_copy_key`), so a node that lost its data is found
by any batch that touches it. The scorer is its cards' only writer, so the check holds
until the apply. A node that no longer serves a key (a slot moved: MOVED, ASK, TRYAGAIN,
"non local key") fails its script before any write (the script reads every key first);
the store then refreshes its slot map and sends that node's part again, split by the new
owners.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from redis.cluster import ClusterNode, RedisCluster

from features.errors import FeatureStoreUnavailable
from features.realtime.epoch import epoch_copy_key
from features.realtime.redis_store import RedisFeatureStore
from features.realtime.store import LUA_SOURCE, TERM_ROW, Reply, ScriptChannel
from features.redis_nodes import MOVED_ATTEMPTS, is_redirect, refresh_slots, slot_of

OPS = np.dtype(
    [
        ("head", "u1", 4),
        ("offset", "<u4"),
        ("start", "<u4"),
        ("length", "<u4"),
        ("trailer", "V12"),
    ]
)
"""One card's 28-byte operation (layout: the script's header)."""

_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
)


@dataclass
class _Part:
    """One node's share of a batch: global indices of its cards, terminals and rows."""

    node: ClusterNode
    cards: list[int] = field(default_factory=list)
    terms: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    """The single-server arguments of one batch, decoded once."""

    keys: list[str]
    nc: int
    nt: int
    head: list[bytes | int | str]
    ops: np.ndarray
    payload: bytes
    rows: np.ndarray
    refresh_us: bytes | int | str
    epoch: bytes | str
    epoch_key: str | None


class ClusterFeatureStore(RedisFeatureStore):
    """:class:`RedisFeatureStore` on a ``RedisCluster`` client (see module doc)."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        kwargs.setdefault("pipeline_chunk", 0)  # chunks chain through one key: one node
        super().__init__(client, **kwargs)
        self.cluster: RedisCluster = client
        self.redirects = 0
        """Node parts sent again because their slots had moved."""

    @property
    def _where(self) -> str:
        return "redis cluster " + ",".join(n.name for n in self.cluster.get_primaries())

    def _fetch(self, keys: list[str]) -> list[bytes | None]:
        for attempt in range(MOVED_ATTEMPTS):
            try:
                return list(self.cluster.mget_nonatomic(keys))
            except _UNAVAILABLE as exc:
                raise FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}") from exc
            except redis.exceptions.ResponseError as exc:
                if not is_redirect(exc) or attempt == MOVED_ATTEMPTS - 1:
                    raise
                self._refresh(attempt)
        raise AssertionError("unreachable")

    def memory_usage(self, key: str) -> int:
        return int(self.cluster.memory_usage(key, samples=0) or 0)

    # -- the split script -----------------------------------------------------------------
    def _script_channel(self) -> contextlib.AbstractContextManager[ScriptChannel | None]:
        return contextlib.nullcontext()  # no pipelined batches here (see __init__)

    def _start(
        self, keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], Reply]:
        batch = _decode(keys, argv)
        commit = argv[6] == "1"
        parts = self._parts(batch, range(batch.nc), range(batch.nt))
        two_steps = commit and len(parts) > 1
        first = self._send_parts(batch, parts, commit=commit and not two_steps)

        def finish() -> Reply:
            replies = self._settle_parts(batch, first, commit=commit and not two_steps)
            joined = _join(batch, replies)
            if not two_steps or joined[0] != 1:
                return joined
            applied = self._settle_parts(
                batch, self._send_parts(batch, [p for p, _ in replies], commit=True), commit=True
            )
            return _join(batch, applied)

        return finish

    def _parts(self, batch: _Batch, cards: Sequence[int], terms: Sequence[int]) -> list[_Part]:
        by_node: dict[str, _Part] = {}

        def part(key: str) -> _Part:
            node = self.cluster.get_node_from_key(key)
            return by_node.setdefault(node.name, _Part(node))

        for i in cards:
            part(batch.keys[i]).cards.append(i)
        for i in terms:
            part(batch.keys[batch.nc + i]).terms.append(i)
        return list(by_node.values())

    def _send_parts(
        self, batch: _Batch, parts: list[_Part], *, commit: bool
    ) -> list[tuple[_Part, Callable[[], object]]]:
        return [(p, self._send_node(p.node, _argv(batch, p, commit))) for p in parts]

    def _send_node(self, node: ClusterNode, args: list[bytes | int | str]) -> Callable[[], object]:
        """Send one node's EVALSHA; the returned call reads its reply (or its error)."""
        client = self.cluster.get_redis_connection(node)
        pool = client.connection_pool
        anchor = args[15]
        try:
            conn = pool.get_connection("EVALSHA")
        except _UNAVAILABLE as exc:
            raise FeatureStoreUnavailable(node.name, f"{type(exc).__name__}: {exc}") from exc
        try:
            conn.send_command("EVALSHA", self.sha, 1, anchor, *args)
        except _UNAVAILABLE as exc:
            conn.disconnect()
            pool.release(conn)
            raise FeatureStoreUnavailable(node.name, f"{type(exc).__name__}: {exc}") from exc

        def read() -> object:
            try:
                try:
                    return conn.read_response()
                except redis.exceptions.NoScriptError:
                    client.script_load(LUA_SOURCE)
                    conn.send_command("EVALSHA", self.sha, 1, anchor, *args)
                    return conn.read_response()
            except _UNAVAILABLE as exc:
                conn.disconnect()
                raise FeatureStoreUnavailable(node.name, f"{type(exc).__name__}: {exc}") from exc
            finally:
                pool.release(conn)

        return read

    def _settle_parts(
        self, batch: _Batch, sent: list[tuple[_Part, Callable[[], object]]], *, commit: bool
    ) -> list[tuple[_Part, Reply]]:
        """Every part's reply; a part whose slots moved is split by the new owners and sent
        again (its script failed before writing anything)."""
        done: list[tuple[_Part, Reply]] = []
        for attempt in range(MOVED_ATTEMPTS):
            moved: list[_Part] = []
            failure: BaseException | None = None
            for part, read in sent:
                try:
                    done.append((part, list(read())))  # type: ignore[call-overload]
                except redis.exceptions.ResponseError as exc:
                    if not is_redirect(exc):
                        failure = failure or exc
                    moved.append(part)
                except FeatureStoreUnavailable as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
            if not moved:
                return done
            self.redirects += len(moved)
            self._refresh(attempt)
            again = [p for m in moved for p in self._parts(batch, m.cards, m.terms)]
            sent = self._send_parts(batch, again, commit=commit)
        raise FeatureStoreUnavailable(self._where, "slots kept moving under the batch")

    def _refresh(self, attempt: int) -> None:
        refresh_slots(self.cluster, attempt)


def _decode(keys: list[str], argv: list[bytes | int | str]) -> _Batch:
    nc, nt = int(argv[0]), int(argv[1])
    epoch = argv[13]
    assert isinstance(epoch, bytes | str)
    return _Batch(
        keys=keys,
        nc=nc,
        nt=nt,
        head=list(argv[2:6]),
        ops=np.frombuffer(bytes(argv[7]), dtype=OPS),  # type: ignore[arg-type]
        payload=bytes(argv[8]),  # type: ignore[arg-type]
        rows=np.frombuffer(bytes(argv[9]), dtype=TERM_ROW),  # type: ignore[arg-type]
        refresh_us=argv[10],
        epoch=epoch,
        epoch_key=keys[-1] if epoch else None,
    )


def _rows_of(batch: _Batch, part: _Part) -> tuple[np.ndarray, np.ndarray]:
    """The batch's terminal rows of ``part``'s terminals (their terminal index local to the
    part) and their global row numbers (0-based)."""
    local = np.zeros(batch.nt + 1, dtype=np.int64)
    local[np.asarray(part.terms, dtype=np.int64) + 1] = np.arange(1, len(part.terms) + 1)
    mapped = local[batch.rows["term"].astype(np.int64)]
    where = np.flatnonzero(mapped > 0)
    rows = batch.rows[where].copy()
    rows["term"] = mapped[where]
    return rows, where


def _argv(batch: _Batch, part: _Part, commit: bool) -> list[bytes | int | str]:
    ops = batch.ops[np.asarray(part.cards, dtype=np.int64)].copy()
    pieces, start = [], 0
    for op in ops:
        begin, length = int(op["start"]), int(op["length"])
        pieces.append(batch.payload[begin : begin + length])
        op["start"] = start
        start += length
    rows, _ = _rows_of(batch, part)
    keys = [batch.keys[i] for i in part.cards] + [batch.keys[batch.nc + i] for i in part.terms]
    if batch.epoch_key is not None:  # the copy in the anchor's slot: served by this node
        keys.append(epoch_copy_key(batch.epoch_key, slot_of(keys[0])))
    return [
        len(part.cards),
        len(part.terms),
        *batch.head,
        "1" if commit else "0",
        ops.tobytes(),
        b"".join(pieces),
        rows.tobytes(),
        batch.refresh_us,
        "",
        "",
        batch.epoch,
        len(keys),
        *keys,
    ]


def _join(batch: _Batch, replies: list[tuple[_Part, Reply]]) -> Reply:
    """The single-server reply of the batch from its parts' replies."""
    for _, reply in replies:
        if reply[0] == 3:
            return reply
    stale = [
        part.cards[int(i) - 1] + 1
        for part, reply in replies
        if reply[0] == 0
        for i in reply[1]  # type: ignore[attr-defined]
    ]
    if stale or any(reply[0] != 1 for _, reply in replies):
        return [0, sorted(stale)]
    late: list[int] = []
    pre: list[object] = [None] * batch.nt
    for part, reply in replies:
        _, where = _rows_of(batch, part)
        late += [int(where[int(i) - 1]) + 1 for i in reply[1]]  # type: ignore[attr-defined]
        for local, i in enumerate(part.terms):
            pre[i] = reply[2 + local] if 2 + local < len(reply) else None
    return [1, sorted(late), *pre]


def redis_feature_store(client: Any, **kwargs: Any) -> RedisFeatureStore:
    """The real-time store for ``client``: split per node on a Redis Cluster."""
    if isinstance(client, RedisCluster):
        return ClusterFeatureStore(client, **kwargs)
    return RedisFeatureStore(client, **kwargs)
