"""Cheap structural checks on raw JSON bytes, run before any parser sees them."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from streams.errors import PayloadGuardMissing

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a payload may have. Every event of this project
is at most 4 deep; a parser that recurses per level can be stopped by 1,000 ``[``."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = (ord("["), ord("{"))


def nesting_depth(payload: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (an upper bound when the bytes
    are not valid JSON). Linear, in C: counts first, and only a payload with more opening
    brackets than :data:`MAX_DEPTH` pays for the exact scan."""
    opens = payload.count(b"[") + payload.count(b"{")
    if opens <= MAX_DEPTH:
        return opens
    brackets = _STRING.sub(b"", payload).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == _OPEN[0]) | (codes == _OPEN[1]), 1, -1)
    return int(np.cumsum(steps).max())


def _load_guard() -> Any:
    try:
        from streams._payload_guard import lib
    except ImportError as exc:  # not built: `make setup` (or `pip install -e .`) builds it
        raise PayloadGuardMissing(f"streams/payload_guard.c ({exc})") from None
    return lib


_GUARD = _load_guard()


def clean_flat_object(payload: bytes) -> bool:
    """True when ``payload`` is certainly clean for the intake: one flat JSON object of
    ASCII text without escapes, no key twice, no card-number field name and no run of 13
    digits in any string (``streams/payload_guard.c`` says exactly what). One C pass; False
    only means "not sure", and the exact checks then decide."""
    return bool(_GUARD.payload_guard_clean(payload, len(payload)))
