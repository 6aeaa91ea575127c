"""Times as integer microseconds since the epoch (UTC), the unit every profile path uses.

Kept apart from :mod:`features.profiles.risk` so the hot path (the direct reader in the
scorer) does not import pandas: ``to_utc_us`` imports it only when it is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from features.profiles.errors import ProfileInputError

if TYPE_CHECKING:
    import pandas as pd

DAY_US = 86_400_000_000
TimesLike: TypeAlias = "pd.Series | pd.DatetimeIndex | np.ndarray | Sequence[object]"


def to_utc_us(times: TimesLike) -> np.ndarray:
    """Integer microseconds since the epoch (UTC) of tz-aware or UTC-naive times."""
    import pandas as pd

    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_localize(None)
    if index.hasnans:
        raise ProfileInputError("as-of / event times must not contain NaT")
    ns = index.as_unit("ns").asi8
    return np.floor_divide(ns, 1000)
