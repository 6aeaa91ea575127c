"""Errors raised by the feature layer (all subclasses of :class:`streams.errors.FraudError`)."""

from __future__ import annotations

from streams.errors import FraudError


class FeatureStoreUnavailable(FraudError):
    """The online feature store (Redis) did not answer; nothing of the batch was applied.

    The scoring loop should back off and retry the same batch (pause consumption); the
    update is atomic per batch and idempotent per transaction, so a retry is safe.
    """

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"feature store at {where} unavailable: {detail}")
        self.where = where
        self.detail = detail


class TrainingDataError(FraudError):
    """The history given to the offline builder is missing columns or is malformed."""

    def __init__(self, detail: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.missing = missing


class FeatureKernelMissing(FraudError):
    """The card kernel's C library was not built (``make setup`` / ``pip install -e .``)."""

    def __init__(self, source: str) -> None:
        super().__init__(f"card kernel not built from {source}: run `make setup`")
        self.source = source


class FeatureStateLost(FeatureStoreUnavailable):
    """The state epoch in Redis is not the one the store expects: Redis lost the state
    (or it was rebuilt under a new epoch). Nothing of the batch was applied.

    ``found`` is the epoch in Redis now (``None``: no epoch at all). A store cannot
    continue on its own: its owner rebuilds the state or moves to the new epoch
    (:mod:`features.realtime.epoch`). As a :class:`FeatureStoreUnavailable`, a caller
    that knows nothing of epochs (the REST API) answers it as "not available now".
    """

    def __init__(self, where: str, expected: bytes, found: bytes | None) -> None:
        super().__init__(
            where,
            f"state epoch {found.decode() if found else 'missing'}, "
            f"expected {expected.decode()}: Redis lost the real-time state",
        )
        self.expected = expected
        self.found = found
