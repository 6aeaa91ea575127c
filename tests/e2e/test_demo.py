"""``fraudctl demo`` as a newcomer runs it, shortened: every service up, every transaction
decided exactly once, a summary written, everything it started stopped again."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from streams.kafka import broker_reachable
from tests.processes import FRAUDCTL, ROOT

pytestmark = pytest.mark.e2e


def test_short_demo_decides_every_transaction_once_and_cleans_up(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    state = tmp_path / "demo"
    env = {
        **os.environ,
        "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,  # reused, so the demo must leave it running
        "FRAUD_REDIS_URL": redis_url,
    }
    done = subprocess.run(
        [*FRAUDCTL, "demo", "--minutes", "1", "--rate", "50", "--state-dir", str(state)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo summary" in done.stdout
    (run,) = (state / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["produced"] >= 1_000  # ~50/s for about a minute
    scorer_logs = sorted((state / "logs").glob("*/scorer-*.log"))
    why = done.stdout[-2000:] + "".join(f"\n{p.name}: " + p.read_text()[-800:] for p in scorer_logs)
    assert summary["decisions"] == summary["produced"], why  # none lost, none left undecided
    assert summary["duplicates"] == 0
    assert summary["versions"]  # every decision names a model version
    # the policy leaves analysts a review band, and the console's queue is the store's
    assert summary["outcomes"].get("review", 0) > 0, summary["outcomes"]
    assert "review console http://127.0.0.1:" in done.stdout
    with sqlite3.connect(run / "cases.db") as cases:
        flagged = cases.execute("SELECT count(*) FROM cases").fetchone()[0]
        resolved, sent = cases.execute(
            "SELECT count(*), count(o.sent_at) FROM cases c JOIN label_outbox o USING (case_id)"
            " WHERE c.state = 'resolved'"
        ).fetchone()
    # the ingester and the relay stop with the demo: the last seconds may not be in yet
    assert 0 < flagged <= summary["flagged"]
    assert 0 < sent <= resolved
    assert summary["labels"].get("oracle", 0) >= sent  # the relay's labels reached the topic
    assert all(code is not None for code in summary["exit_codes"].values())  # all stopped
    assert (run / "dashboard.txt").read_text().startswith("╭")
    assert broker_reachable(kafka_bootstrap)  # a broker the demo did not start stays up
    leftovers = subprocess.run(
        ["pgrep", "-f", str(state)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""
