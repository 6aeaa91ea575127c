"""``fraudctl bench``'s own behaviour: a SIGTERM runs the bench's clean-up, and the scorer
bench's command line ramps as far as the bench's own default."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loadtest import cli_bench
from loadtest.bench_scorer import ScorerBenchConfig

pytestmark = pytest.mark.unit

_SCRIPT = """
import sys, time
from pathlib import Path
from loadtest.cli_bench import exit_on_sigterm
exit_on_sigterm()
done = Path(sys.argv[1])
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    done.write_text("cleaned up")
"""


def test_sigterm_ends_a_bench_through_its_clean_up(tmp_path: Path) -> None:
    done = tmp_path / "done"
    child = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(done)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == 128 + signal.SIGTERM
    assert done.read_text() == "cleaned up"


def test_the_scorer_bench_ramps_by_the_bench_default_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[ScorerBenchConfig] = []

    def fake_run(config: ScorerBenchConfig, **_: Any) -> dict[str, Any]:
        seen.append(config)
        raise SystemExit(0)  # the configuration is all this test needs

    monkeypatch.setattr("loadtest.bench_scorer.run_scorer_bench", fake_run)
    runner = CliRunner()
    previous = signal.getsignal(signal.SIGTERM)  # the group's callback installs its own
    try:
        for args in (["scorer", "--phases", "latency"], ["scorer", "--ramp", "1000,5000"]):
            result = runner.invoke(cli_bench.app, args)
            assert result.exit_code == 0, result.output
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen[0].ramp_rates == ScorerBenchConfig().ramp_rates
    assert 10_000.0 in seen[0].ramp_rates
    assert seen[1].ramp_rates == (1_000.0, 5_000.0)
