"""The hot-path allocator tuning: a batch's large buffers are reused from the heap instead
of being mapped (and faulted in) afresh. Each check runs in a child process: the tuning is
process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from services.allocator import MMAP_THRESHOLD_MAX, tune_allocator, tune_hot_path
from services.settings import CommonSettings

pytestmark = pytest.mark.unit

FAULTS_OF_BATCH_BUFFERS = """
import json, resource, sys
from services.allocator import tune_hot_path
from services.settings import CommonSettings

tuned = tune_hot_path(CommonSettings())["tuned"] if sys.argv[1] == "tuned" else False
held = [bytearray(64) for _ in range(1000)]  # the heap has other live blocks, as in a process
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for k in range(40):  # a batch: a buffer of 1-2 MB written, then freed
    buf = bytearray((1 << 20) + k * 16384)
    buf[::4096] = b"x" * len(buf[::4096])
    del buf
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"tuned": tuned, "faults": after - before}))
"""


def _faults(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_BATCH_BUFFERS, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tuned_process_reuses_batch_buffers_instead_of_faulting_them_in() -> None:
    """glibc's own mmap threshold follows the largest block freed so far, so a buffer
    larger than every earlier one is mapped afresh; batch sizes vary, and growing sizes are
    the deterministic case of it."""
    default, tuned = _faults("default"), _faults("tuned")
    assert tuned["tuned"] is True
    pages = 40 * 256  # 40 batches of at least 256 pages
    assert int(default["faults"]) >= pages // 2  # glibc's own thresholds: mapped each time
    assert int(tuned["faults"]) < pages // 10  # reused from the heap


def test_zero_thresholds_leave_glibc_alone_and_bad_ones_are_refused() -> None:
    assert tune_allocator(0, 0) is False
    with pytest.raises(ValueError):
        tune_allocator(MMAP_THRESHOLD_MAX + 1, 0)
    with pytest.raises(ValueError):
        tune_allocator(1 << 20, -1)
    off = CommonSettings(allocator_mmap_threshold_kb=0, allocator_trim_threshold_kb=0)
    assert tune_hot_path(off) == {"mmap_threshold": 0, "trim_threshold": 0, "tuned": False}
