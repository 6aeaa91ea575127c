"""Typed errors of the models package, all under :class:`streams.errors.FraudError`.

Each carries the data a caller needs to act (rows, columns, versions); the CLI catches
:class:`ModelError` at its edge and prints the message without a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.errors import FraudError


def _preview(items: Sequence[object], limit: int = 10) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    more = len(items) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown


class ModelError(FraudError):
    """Root of everything the models package raises on purpose."""


class DataError(ModelError):
    """The input table cannot be trained on; names the column and the offending rows."""

    def __init__(
        self, message: str, *, column: str | None = None, rows: Sequence[int] = ()
    ) -> None:
        detail = f" (data rows {_preview(list(rows))}; 1-based, header not counted)" if rows else ""
        super().__init__(f"{message}{detail}")
        self.column = column
        self.rows = list(rows)


class MissingColumns(DataError):
    """Required roles could not be matched to any column of the file."""

    def __init__(self, missing: Sequence[str], available: Sequence[str]) -> None:
        hint = " ".join(f"--col {role}=<COLUMN>" for role in missing)
        super().__init__(
            f"missing column(s) for {', '.join(missing)}; file has: {_preview(list(available), 30)}"
            f"; map them with {hint}"
        )
        self.missing = list(missing)
        self.available = list(available)


class SplitError(DataError):
    """The time windows leave a split empty, or a split has a single class."""


class ExportParityError(ModelError):
    """ONNX and LightGBM probabilities differ by more than the allowed tolerance."""

    def __init__(self, max_abs_diff: float, tolerance: float, worst_row: int) -> None:
        super().__init__(
            f"ONNX parity failed: max |p_onnx - p_lightgbm| = {max_abs_diff:.3g} "
            f"> {tolerance:g} (worst row {worst_row})"
        )
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.worst_row = worst_row


class ModelLoadError(ModelError):
    """A model file is missing or corrupt and was refused; the previous model keeps serving."""


class ModelMismatch(ModelLoadError):
    """The model's stored feature spec does not match what the caller serves."""

    def __init__(self, message: str, *, expected: Sequence[str], found: Sequence[str]) -> None:
        super().__init__(message)
        self.expected = list(expected)
        self.found = list(found)


class RegistryError(ModelError):
    """The registry refused an operation (unknown version, nothing to roll back to...)."""


class VersionNotFound(RegistryError):
    def __init__(self, version: str) -> None:
        super().__init__(f"model version {version!r} is not in the registry")
        self.version = version


class RegistryIntegrityError(RegistryError):
    """A registered version's files changed after registration."""

    def __init__(self, version: str, files: Sequence[str]) -> None:
        super().__init__(f"version {version}: files changed since registration: {', '.join(files)}")
        self.version = version
        self.files = list(files)


class PromotionConflict(RegistryError):
    """Another writer changed the champion between this promoter's read and its write;
    this promotion was not made (the registry's audit records it as lost)."""

    def __init__(self, version: str, expected: str | None, found: str | None) -> None:
        super().__init__(
            f"promotion of {version} lost: the champion was expected to be {expected}, "
            f"another writer made it {found}"
        )
        self.version = version
        self.expected = expected
        self.found = found


class TreeShapKernelMissing(ModelError):
    """The TreeSHAP kernel's C library was not built (``make setup`` / ``pip install -e .``)."""

    def __init__(self, source: str) -> None:
        super().__init__(f"TreeSHAP kernel not built from {source}: run `make setup`")
        self.source = source
