"""Detection of raw card numbers (PANs) in an incoming payload.

A payload is refused when it has a field whose *name* says it holds a card number, or a
JSON string value made of 13-19 digits (spaces or dashes allowed between groups) that
passes the Luhn check. Numbers that are not strings (amounts, epoch millis) are not
looked at, so a legitimate timestamp never trips the check.
"""

from __future__ import annotations

import re

_PAN_FIELD = re.compile(
    rb'"(?:pan|card_?number|cardnumber|primary_?account_?number|ccn|cc_?number)"\s*:',
    re.IGNORECASE,
)
_DIGIT_STRING = re.compile(rb'"((?:\d[ \-]?){12,18}\d)"')


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
    field = _PAN_FIELD.search(payload)
    if field is not None:
        return f"field {field.group(0)[:-1].decode(errors='replace').strip()} is not allowed"
    for match in _DIGIT_STRING.finditer(payload):
        digits = re.sub(rb"[ \-]", b"", match.group(1)).decode()
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return f"a Luhn-valid {len(digits)}-digit card number at byte {match.start()}"
    return None
