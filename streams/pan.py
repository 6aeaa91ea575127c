"""The one scanner for raw card numbers (PANs): intake, dead letters, notes, the sweep.

A PAN here is 13-19 digits that pass the Luhn check, written in one run or in the groups
cards are printed in (4-4-4-4, 4-6-5, with single spaces, dashes or dots between), standing
alone or inside longer text (``x4111111111111111``, ``call 4111 1111 1111 1111 back``). A
longer run of digits is not a PAN (it is some other number), and neither is one that
starts with 0 (no card scheme issues those). Identifiers are strings too: an id holding
such a run is refused like any other, so producers must not use ids that are, or contain,
a Luhn-valid 13-19 digit number. Only *strings* are looked at, after JSON unescaping
(``"\\u0034111..."`` is the same string as ``"4111..."``), keys included: a JSON number
such as an epoch in microseconds is not a card number, and looking at numbers would refuse
legitimate data. Digits are Unicode decimal digits (a full-width ``４`` counts as a 4).

The intake refuses a payload that holds a PAN, or a field whose *name* says it holds one
(:func:`find_pan`); whatever is kept of a refused payload is redacted first
(:func:`redact_payload`); free text is redacted before it is written (:func:`redact_text`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import msgspec

from streams.jsonscan import MAX_DEPTH, nesting_depth

REDACTED = "[card number removed]"

_FIELD_NAMES = r"pan|card_?number|cardnumber|primary_?account_?number|ccn|cc_?number"
_PAN_FIELD = re.compile(rb'"(?:' + _FIELD_NAMES.encode() + rb')"\s*:')
"""Matched against the lower-cased payload: the same as ``re.IGNORECASE`` on bytes (both
fold ASCII letters only), at half the cost."""
_PAN_FIELD_NAME = re.compile(r"(?:" + _FIELD_NAMES + r")\Z", re.IGNORECASE)
_CANDIDATE = re.compile(rb"\d(?:[ \-.]?\d){12}")
"""A necessary condition for a PAN written with ASCII digits and no escapes, cheap to scan
raw bytes for: the exact scan (decode, walk the strings) runs only when it holds, or when
the payload has an escape or non-ASCII text (which could spell digits another way)."""
_DIGITS_AS_ZERO = bytes(ord("0") if 48 <= b <= 57 else ord("x") for b in range(256))
_THIRTEEN = b"0" * 13


def _may_hold_candidate(payload: bytes) -> bool:
    """Whether ``payload`` holds 13 ASCII digits in a row once the separators a PAN may have
    are deleted, which every :data:`_CANDIDATE` match does. Two C passes, several times
    cheaper than the regular expression, which then runs only on such payloads."""
    return _THIRTEEN in payload.translate(_DIGITS_AS_ZERO, b" -.")


_RUN = re.compile(r"\d(?:[ \-.]?\d)*")
"""A maximal run of digits with single separators; the PAN is looked for in its groups."""
_GROUP = re.compile(r"\d+")


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


def _ascii_digits(digits: str) -> str:
    return digits if digits.isascii() else "".join(str(unicodedata.digit(c)) for c in digits)


def _card_shaped(sizes: list[int]) -> bool:
    """Digit groups a card number is written in: one run, 4-4-4(-4)(-1..4), or 4-6-4/5.
    Other shapes (a UUID's 8-4-4-4-12, a date) join no groups into a number."""
    if len(sizes) == 1:
        return True
    if sizes[:-1] == [4] * (len(sizes) - 1) and 1 <= sizes[-1] <= 4:
        return True
    return len(sizes) == 3 and sizes[:2] == [4, 6] and sizes[2] in (4, 5)


def pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every PAN in ``text``.

    Within a run of digit groups joined by single separators every window of whole
    consecutive groups that is card-shaped and holds 13-19 digits is a candidate, so two
    card numbers written side by side are two PANs, not one 32-digit number; a group of
    more than 19 digits is some other number, and so is the fraction of a decimal number
    (the digits after ``1.``), which logs print floats with.
    """
    for run in _RUN.finditer(text):
        if run.end() - run.start() < 13:
            continue
        groups = [
            (g.start(), g.end(), _ascii_digits(g.group())) for g in _GROUP.finditer(run.group())
        ]
        i = 0
        while i < len(groups):
            if i and text[run.start() + groups[i][0] - 1] == ".":
                i += 1  # the fraction of a decimal number (1.4397199469995031) is no card
                continue
            found = None
            count = 0
            for j in range(i, len(groups)):
                count += len(groups[j][2])
                if count > 19:
                    break
                window = groups[i : j + 1]
                if count >= 13 and _card_shaped([len(g[2]) for g in window]):
                    digits = "".join(g[2] for g in window)
                    if digits[0] != "0" and luhn_valid(digits):
                        found = j
                        break
            if found is None:
                i += 1
                continue
            yield run.start() + groups[i][0], run.start() + groups[found][1]
            i = found + 1


def contains_pan(text: str) -> bool:
    return next(pan_spans(text), None) is not None


def redact_text(text: str) -> str:
    """``text`` with every PAN replaced by :data:`REDACTED`."""
    spans = list(pan_spans(text))
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)


def strings_of(document: Any) -> Iterator[tuple[str, bool]]:
    """Every string of a decoded JSON document, values and keys at any depth, each with
    whether it is a key."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item, False
        elif isinstance(item, dict):
            for key, value in item.items():
                yield str(key), True
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _decoded(payload: bytes) -> Any:
    """The payload as a JSON document, or :data:`_NOT_JSON` (also when nested too deep
    to walk safely)."""
    if nesting_depth(payload) > MAX_DEPTH:
        return _NOT_JSON
    try:
        return msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError, ValueError):
        return _NOT_JSON


_NOT_JSON = object()


def find_pan(payload: bytes) -> str | None:
    """A short description of the PAN (or PAN-named field) in a JSON ``payload``, or None.

    The caller has bounded the payload's size and nesting depth (:mod:`streams.serde`).
    """
    field = _PAN_FIELD.search(payload.lower())
    if field is not None:
        name = payload[field.start() : field.end() - 1]  # as written, not lower-cased
        return f"field {name.decode(errors='replace').strip()} is not allowed"
    if (
        b"\\" not in payload
        and payload.isascii()
        and (not _may_hold_candidate(payload) or _CANDIDATE.search(payload) is None)
    ):
        return None
    document = _decoded(payload)
    texts = (
        iter([(_unescaped_view(payload), False)])  # not JSON: scan all of it
        if document is _NOT_JSON
        else strings_of(document)
    )
    for text, is_key in texts:
        if is_key and _PAN_FIELD_NAME.match(text):
            return f"field {text!r} is not allowed"
        for start, _ in pan_spans(text):
            return f"a Luhn-valid card number in a string (at character {start})"
    return None


def count_pans(payload: bytes) -> int:
    """How many PANs a stored record holds: in its JSON strings, or anywhere in its text
    when it is not JSON (the check behind the "no card number at rest" sweep)."""
    document = _decoded(payload)
    if document is _NOT_JSON:
        return len(list(pan_spans(_unescaped_view(payload))))
    return sum(len(list(pan_spans(text))) for text, _ in strings_of(document))


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescaped_view(payload: bytes) -> str:
    """Text to scan for bytes that are not JSON (or are to be read as text): UTF-8 where
    it decodes (else byte for byte), with every ``\\uXXXX`` escape turned into the
    character it spells, so a JSON string inside reads here as it would decoded."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = payload.decode("latin-1")
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _redact_document(item: Any) -> Any:
    if isinstance(item, str):
        return redact_text(item)
    if isinstance(item, dict):
        return {redact_text(str(k)): _redact_document(v) for k, v in item.items()}
    if isinstance(item, list):
        return [_redact_document(v) for v in item]
    return item


def _holds_pan(data: bytes, as_text: bool) -> bool:
    """Whether ``data`` holds a PAN as the sweep reads it (its JSON strings, or its text
    when it is not JSON) or, ``as_text``, also anywhere in its text."""
    document = _decoded(data)
    if document is not _NOT_JSON and any(contains_pan(t) for t, _ in strings_of(document)):
        return True
    return (document is _NOT_JSON or as_text) and contains_pan(_unescaped_view(data))


def redact_payload(payload: bytes, *, as_text: bool = False) -> tuple[bytes, bool]:
    """What may be kept of a refused payload: (bytes, redacted).

    The original comes back unchanged only when the scan proves it holds no PAN; otherwise
    a redacted copy: JSON re-encoded with every string redacted, or, for bytes that are not
    JSON, their text view (escapes spelled out) with every PAN replaced. Redacting can
    reveal a number escapes had split, so the copy is scanned again (a few rounds); what
    cannot be proven clean is replaced whole. ``as_text`` reads the bytes as text even when
    they parse as JSON (a record key ``4111111111111111`` is a JSON number, and still a
    card number).
    """
    if not _holds_pan(payload, as_text):
        return payload, False
    current = payload
    for _ in range(4):
        document = _NOT_JSON if as_text else _decoded(current)
        if document is _NOT_JSON:
            current = redact_text(_unescaped_view(current)).encode("utf-8", errors="replace")
        else:
            current = msgspec.json.encode(_redact_document(document))
        if not _holds_pan(current, as_text):
            return current, True
    return REDACTED.encode(), True
