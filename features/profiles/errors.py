"""Errors of the profile store (terminal risk in Feast's Redis layout)."""

from __future__ import annotations

from streams.errors import FraudError


class ProfileError(FraudError):
    """Root of the profile-store errors."""


class ProfileStoreUnavailable(ProfileError):
    """Redis did not answer; the caller may retry with back-off or pause consumption."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"profile store unavailable during {operation}: {detail}")
        self.operation = operation
        self.detail = detail


class ProfileLayoutError(ProfileError):
    """Feast's Redis layout is not what the direct reader/writer expects (e.g. after a Feast
    upgrade); the fast path must not silently serve defaults."""


class ProfileInputError(ProfileError):
    """Input frames or arguments do not have the required columns, types or shapes."""
