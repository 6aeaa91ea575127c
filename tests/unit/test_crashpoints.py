"""The fault suite's crash hook: inert unless set, and then a SIGKILL at exactly the n-th
time its point is reached; the scorer's group timeouts are settings, checked together."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from pydantic import ValidationError

from services.scorer.crashpoints import CRASH_POINTS, CrashHook
from services.scorer.settings import ScorerSettings

pytestmark = pytest.mark.unit

_SCRIPT = """
from services.scorer.crashpoints import CrashHook
hook = CrashHook("after_ack", 3)
for i in range(1, 6):
    hook.reached("after_send")
    hook.reached("after_ack")
    print(i, flush=True)
"""


def test_an_unset_hook_never_fires() -> None:
    hook = CrashHook(None)
    for point in CRASH_POINTS * 3:
        hook.reached(point)
    assert hook.reached_count == 0


def test_the_hook_kills_the_process_the_nth_time_its_point_is_reached() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["1", "2"]  # the third after_ack never printed


def test_group_timeouts_are_settings_checked_together() -> None:
    """The poll interval covers the session, and a write expires within a session (a
    stalled scorer's queued writes are dropped before its partitions can move)."""
    settings = ScorerSettings(
        session_timeout_ms=6_000, max_poll_interval_ms=8_000, delivery_timeout_ms=5_000
    )
    assert (settings.session_timeout_ms, settings.max_poll_interval_ms) == (6_000, 8_000)
    with pytest.raises(ValidationError, match="at least session_timeout_ms"):
        ScorerSettings(session_timeout_ms=10_000, max_poll_interval_ms=5_000)
    with pytest.raises(ValidationError, match="delivery_timeout_ms must be at most"):
        ScorerSettings(session_timeout_ms=6_000, delivery_timeout_ms=8_000)
    with pytest.raises(ValidationError, match="crash_at"):
        ScorerSettings(crash_at="after_lunch")  # type: ignore[arg-type]
