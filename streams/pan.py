"""Detection of raw card numbers (PANs) in an incoming payload.

A payload is refused when it has a field whose *name* says it holds a card number, or a
JSON string value made of 13-19 digits (spaces or dashes allowed between groups) that
passes the Luhn check. Numbers that are not strings (amounts, epoch millis) are not
looked at, so a legitimate timestamp never trips the check.
"""

from __future__ import annotations

import re

_PAN_FIELD = re.compile(
    rb'"(?:pan|card_?number|cardnumber|primary_?account_?number|ccn|cc_?number)"\s*:'
)
"""Matched against the lower-cased payload: the same as ``re.IGNORECASE`` on bytes (both
fold ASCII letters only), at half the cost."""
_DIGIT_STRING = re.compile(rb'"((?:\d[ \-]?){12,18}\d)"')
_MAYBE_DIGIT_STRING = re.compile(rb'"\d[\d \-]{12}')
"""A necessary condition for :data:`_DIGIT_STRING` (a quote, a digit, then 12 more digits
or separators), cheap to scan for: the backtracking pattern runs only when it holds."""


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def find_pan(payload: bytes) -> str | None:
    """Return a short description of the PAN found in ``payload``, or None."""
    field = _PAN_FIELD.search(payload.lower())
    if field is not None:
        name = payload[field.start() : field.end() - 1]  # as written, not lower-cased
        return f"field {name.decode(errors='replace').strip()} is not allowed"
    if _MAYBE_DIGIT_STRING.search(payload) is None:
        return None
    for match in _DIGIT_STRING.finditer(payload):
        digits = re.sub(rb"[ \-]", b"", match.group(1)).decode()
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return f"a Luhn-valid {len(digits)}-digit card number at byte {match.start()}"
    return None
