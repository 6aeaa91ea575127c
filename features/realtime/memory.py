"""The in-memory real-time store: a Python port of ``card_state.lua`` over a dict.

Same bytes, same semantics as :class:`RedisFeatureStore` (the contract tests run both);
values never expire. For unit tests and tools, not for production.
"""

from __future__ import annotations

import struct
from typing import Any

from features.realtime.store import BatchFeatureStore

_HDR, _REC, _NEG = 12, 32, -1e300
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_CARD_HDR = struct.Struct("<Id")
_SLOT = struct.Struct("<ii")
_INFO = struct.Struct("<IId")
_ARG = struct.Struct("<HHi")


def apply_batch(state: dict[str, bytes], keys: list[str], argv: list[Any]) -> list[bytes]:
    """Exactly what ``card_state.lua`` does, on ``state`` (see the script for the layout)."""
    nc, nt = int(argv[0]), int(argv[1])
    late, retention = float(argv[2]), float(argv[3])
    cap, slots, commit = int(argv[6]), int(argv[7]), str(argv[8]) == "1"
    args: bytes = argv[9]
    chunk = int(argv[10])
    pre = [state.get(k) for k in keys]
    nseq: dict[int, int] = {}
    maxt: dict[int, float] = {}
    tail: dict[int, list[bytes]] = {}
    dirty: set[int] = set()
    tmax: dict[int, float] = {}
    tmods: dict[int, dict[int, list[int]]] = {}
    info: list[bytes] = []
    for i in range(len(args) // 36):
        p = i * 36
        ci, ti, day = _ARG.unpack_from(args, p)
        (t,) = _F64.unpack_from(args, p + 16)
        txh = args[p + 8 : p + 16]
        v = pre[ci - 1]
        if ci not in nseq:
            nseq[ci], maxt[ci] = _CARD_HDR.unpack_from(v) if v else (0, _NEG)
            tail[ci] = []
        status, seq = 0, nseq[ci]
        if v:
            q = v.find(txh, _HDR)
            while q >= 0:
                if (q - _HDR) % _REC == 0:
                    status, seq = 1, _U32.unpack_from(v, q + 28)[0]
                    break
                q = v.find(txh, q + 1)
        if status == 0:
            for r in tail[ci]:
                if r[:8] == txh:
                    status, seq = 1, _U32.unpack_from(r, 28)[0]
                    break
        arrival_max = maxt[ci]
        if status == 0 and t < arrival_max - late:
            status = 2
        if status == 0:
            tail[ci].append(args[p + 8 : p + 36] + _U32.pack(seq))
            nseq[ci] = seq + 1
            maxt[ci] = max(arrival_max, t)
            dirty.add(ci)
            tv = pre[nc + ti - 1]
            if ti not in tmax:
                tmax[ti] = _F64.unpack_from(tv)[0] if tv else _NEG
                tmods[ti] = {}
            if t >= tmax[ti] - late:
                slot = day % slots
                m = tmods[ti].get(slot)
                if m is None:
                    m = list(_SLOT.unpack_from(tv, 8 + slot * 8)) if tv else [0, 0]
                    tmods[ti][slot] = m
                if m[0] != day:
                    m[0], m[1] = day, 0
                m[1] += 1
                tmax[ti] = max(tmax[ti], t)
            else:
                status += 4
        info.append(_INFO.pack(seq, status, arrival_max))
    reply = [b"".join(info)]
    for ci in range(1, nc + 1):
        v = pre[ci - 1]
        reply.append(v or b"")
        if commit and ci in dirty:
            added = b"".join(tail[ci])
            hdr = _CARD_HDR.pack(nseq[ci], maxt[ci])
            old = (len(v) - _HDR) // _REC if v else 0
            n = old + len(added) // _REC
            drop = max(0, n - cap)
            thr = maxt[ci] - retention
            while v and drop < old and _F64.unpack_from(v, _HDR + drop * _REC + 8)[0] < thr:
                drop += 1
            if not v:
                state[keys[ci - 1]] = hdr + added
            elif drop >= chunk or drop > old:
                keep = v[_HDR + drop * _REC :] if drop <= old else b""
                tail_keep = added if drop <= old else added[(drop - old) * _REC :]
                state[keys[ci - 1]] = hdr + keep + tail_keep
            else:
                state[keys[ci - 1]] = hdr + v[_HDR:] + added
    for ti in range(1, nt + 1):
        tv = pre[nc + ti - 1]
        reply.append(tv or b"")
        if commit and tmods.get(ti):
            new = bytearray(tv or bytes(8 + slots * 8))
            new[:8] = _F64.pack(tmax[ti])
            for slot, (d, c) in tmods[ti].items():
                new[8 + slot * 8 : 16 + slot * 8] = _SLOT.pack(d, c)
            state[keys[nc + ti - 1]] = bytes(new)
    return reply


class InMemoryFeatureStore(BatchFeatureStore):
    """Real-time features over a plain dict ``key -> bytes`` (no expiry)."""

    def __init__(self, *, prefix: str = "mem", **kwargs: Any) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.state: dict[str, bytes] = {}

    def _apply(self, keys: list[str], argv: list[bytes | int | str]) -> list[bytes]:
        return apply_batch(self.state, keys, argv)
