"""What API callers send that is not a topic event."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from streams.events import Id, LabelValue


class LabelSubmission(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A label as a client posts it to ``/v1/labels``.

    Who labelled and when are not the client's to say: the analyst is the identity of the
    caller's API key and the time is the server's (a body that sends ``analyst``,
    ``labelled_at`` or any other field is refused). ``chargeback`` needs the key's
    ``chargeback`` scope. The note is redacted of card numbers before it is stored.
    """

    transaction_id: Id
    label: LabelValue
    source: Literal["analyst", "chargeback"] = "analyst"
    note: Annotated[str, Meta(max_length=2000)] | None = None


class ErasureRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/erasures`` (scope ``admin``): erase one customer's data."""

    customer_id: Id
    card_ids: Annotated[list[Id], Meta(max_length=1000)] = []
    discover: bool = False
    """Also scan the retained transactions and review topics for the customer."""


class CaseVerdict(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/cases/{id}/verdict`` (scope ``review``): fraud / legit resolve the case
    and emit its label (the analyst is the key's identity, the time the server's);
    escalate and needs_info hand it on. A retried verdict answers as the first did."""

    verdict: Literal["fraud", "legit", "escalate", "needs_info"]
    note: Annotated[str, Meta(max_length=2000)] | None = None


class CaseNoteSubmission(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/cases/{id}/note``: free text, redacted of card numbers before storage."""

    text: Annotated[str, Meta(min_length=1, max_length=2000)]
