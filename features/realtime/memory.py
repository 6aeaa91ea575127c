"""The in-memory real-time store: a Python port of ``card_state.lua`` over a dict.

Same bytes, same semantics as :class:`RedisFeatureStore` (the contract tests run both);
values never expire. For unit tests and tools, not for production.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from features.realtime.layout import NEG, TRAILER
from features.realtime.store import BatchFeatureStore, Reply, ScriptChannel

_F64 = struct.Struct("<d")
_SLOT = struct.Struct("<ii")
_ROW = struct.Struct("<Iid")
_OP = struct.Struct("<BBBBIII")
_OP_SIZE, _ROW_SIZE = 28, 16


def run_script(state: dict[str, bytes], keys: list[str], argv: list[Any]) -> Reply:
    """Exactly what ``card_state.lua`` does, on ``state`` (see the script for the protocol)."""
    nc, nt = int(argv[0]), int(argv[1])
    late, slots, commit = float(argv[2]), int(argv[5]), str(argv[6]) == "1"
    ops: bytes = argv[7]
    payload: bytes = argv[8]
    rows: bytes = argv[9]
    after, token = (str(argv[11]), str(argv[12])) if len(argv) > 12 else ("", "")
    epoch = argv[13] if len(argv) > 13 else b""
    if epoch:
        found = state.get(keys[-1])
        if found != (epoch.encode() if isinstance(epoch, str) else epoch):
            return [3, found]
    if after and state.get(keys[nc + nt]) != after.encode():
        return [2]
    stale = []
    for ci in range(nc):
        p = ci * _OP_SIZE
        expect = ops[p + 16 : p + 28] if ops[p + 2] == 1 else b""
        if state.get(keys[ci], b"")[-TRAILER:] != expect:
            stale.append(ci + 1)
    if stale:
        return [0, stale]
    pre = [state.get(k) for k in keys[nc : nc + nt]]
    tmax: dict[int, float] = {}
    mods: dict[int, dict[int, list[int]]] = {}
    late_rows = []
    for i in range(len(rows) // _ROW_SIZE):
        ti, day, t = _ROW.unpack_from(rows, i * _ROW_SIZE)
        tv = pre[ti - 1]
        m = tmax.get(ti)
        if m is None:
            m = _F64.unpack_from(tv)[0] if tv else NEG
            mods[ti] = {}
        if t >= m - late:
            slot = day % slots
            cell = mods[ti].get(slot)
            if cell is None:
                cell = mods[ti][slot] = list(_SLOT.unpack_from(tv, 8 + slot * 8)) if tv else [0, 0]
            if cell[0] != day:
                cell[0], cell[1] = day, 0
            cell[1] += 1
            m = max(m, t)
        else:
            late_rows.append(i + 1)
        tmax[ti] = m
    if commit:
        for ci in range(nc):
            mode, _, _, _, off, start, length = _OP.unpack_from(ops, ci * _OP_SIZE)
            body = payload[start : start + length]
            if mode == 1:
                state[keys[ci]] = state[keys[ci]][:off] + body
            elif mode == 2:
                state[keys[ci]] = body
        for ti, cells in mods.items():
            if not cells:
                continue
            key, tv = keys[nc + ti - 1], pre[ti - 1]
            new = bytearray(tv or bytes(8 + slots * 8))
            new[:8] = _F64.pack(tmax[ti])
            for slot, (d, c) in cells.items():
                new[8 + slot * 8 : 16 + slot * 8] = _SLOT.pack(d, c)
            state[key] = bytes(new)
        if token:
            state[keys[nc + nt]] = token.encode()
    return [1, late_rows, *pre]


class InMemoryFeatureStore(BatchFeatureStore):
    """Real-time features over a plain dict ``key -> bytes`` (no expiry)."""

    def __init__(self, *, prefix: str = "mem", **kwargs: Any) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.state: dict[str, bytes] = {}

    def _fetch(self, keys: list[str]) -> list[bytes | None]:
        return [self.state.get(k) for k in keys]

    def _start(
        self, keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], Reply]:
        reply = run_script(self.state, keys, argv)  # at once: in the order sent
        return lambda: reply
