"""What a case action can be refused for; the API turns each into its status code."""

from __future__ import annotations

from streams.errors import FraudError


class CaseError(FraudError):
    """A case action that cannot be done as asked."""


class CaseNotFound(CaseError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id!r}")
        self.case_id = case_id


class CaseConflict(CaseError):
    """The case is not in a state that allows the action (held by another analyst,
    resolved already, the approver is the proposer)."""

    def __init__(self, case_id: str, reason: str, holder: str | None = None) -> None:
        super().__init__(f"case {case_id!r}: {reason}")
        self.case_id = case_id
        self.reason = reason
        self.holder = holder
