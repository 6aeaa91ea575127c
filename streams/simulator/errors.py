"""Errors of the transaction simulator (all under :class:`streams.errors.FraudError`)."""

from __future__ import annotations

from pathlib import Path

from streams.errors import ConfigError, FraudError


class InvalidSimulatorConfig(ConfigError):
    """The simulator configuration contradicts itself; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid simulator config: " + "; ".join(problems))
        self.problems = problems


class HistoryNotFound(FraudError):
    """``read_history`` found no simulated history (or an incomplete one) at ``path``."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"no simulated history at {path}: {detail}")
        self.path = path
        self.detail = detail


class HistoryExists(FraudError):
    """``write_history`` would overwrite a history at ``path`` (pass ``overwrite=True``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"a simulated history already exists at {path}; use overwrite")
        self.path = path
