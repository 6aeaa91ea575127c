"""Terminal-risk profiles: one offline definition, a Feast repo, a fast reader, one writer.

Heavy modules (Feast, pandas) are imported by the submodules that need them; import from
``features.profiles.<module>`` in hot paths.
"""

from __future__ import annotations

from features.profiles.layout import FeastLayout
from features.profiles.names import (
    DEFAULT_DELAY_DAYS,
    RISK_WINDOWS_DAYS,
    TERMINAL_RISK_DEFAULTS,
    TERMINAL_RISK_FEATURES,
)
from features.profiles.reader import FeastRedisProfileReader, finalize_profiles
from features.profiles.risk import terminal_risk
from features.profiles.source import profile_source_frame, write_profile_source
from features.profiles.writer import TerminalLabel, TerminalRiskWriter, labels_from_frames

__all__ = [
    "DEFAULT_DELAY_DAYS",
    "RISK_WINDOWS_DAYS",
    "TERMINAL_RISK_DEFAULTS",
    "TERMINAL_RISK_FEATURES",
    "FeastLayout",
    "FeastRedisProfileReader",
    "TerminalLabel",
    "TerminalRiskWriter",
    "finalize_profiles",
    "labels_from_frames",
    "profile_source_frame",
    "terminal_risk",
    "write_profile_source",
]
