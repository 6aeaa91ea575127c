"""A user's own data end to end, by the documented commands, with no training/serving skew.

A CSV that is not the simulator's (:mod:`tests.own_data`, in the documented format) is
trained on, materialised and built into the offline training table with the same
``--col`` mapping; its history before the test week is streamed with ``fraudctl produce``,
then the test week one day at a time, each day after that day's materialisation (the
documented daily job). The real scorer process decides everything; the feature vectors
it served, read back with ``fraudctl decisions tail --json``, must equal the offline
training features of every test-week transaction, for every one of the 44 features.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from features.definitions import FEATURE_INDEX, FEATURE_NAMES, FEATURE_SET_ID
from features.profiles.names import DAYS_SINCE_FEATURE, REPO_DIR
from services.cli import app
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.integration.scorer_helpers import DecisionCounter
from tests.own_data import COL_ARGS, generate
from tests.processes import ServiceProcess

pytestmark = pytest.mark.e2e

runner = CliRunner()


def fraudctl(env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"fraudctl {' '.join(args)}:\n{result.output}"
    return result.stdout


def wait_for(counter: DecisionCounter, expected: int, scorer: ServiceProcess) -> None:
    deadline = time.monotonic() + 90
    while counter.count() < expected:
        assert scorer.alive(), scorer.output()[-3000:]
        assert time.monotonic() < deadline, f"{counter.seen} of {expected} decided"


def test_own_csv_trained_materialised_streamed_serves_its_training_features(
    kafka_bootstrap: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    data = generate()
    source = data.write(tmp_path / "my.csv")
    repo = tmp_path / "repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.", partitions={"transactions": 1})
    ensure_topics(kafka_bootstrap, topics)  # one partition: the file's order is the stream's
    env = {
        "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_REDIS_PREFIX": redis_prefix,
        "FRAUD_FEAST_PROJECT": f"fraud_{redis_prefix}",
        "FRAUD_STATE_DIR": str(tmp_path / "state"),
        "FRAUD_GROUP_ID": f"{topics.prefix}scorer",
        "FRAUD_INSTANCE_ID": f"{topics.prefix}scorer-0",
        "FRAUD_METRICS_PORT": "0",
        "FRAUD_EVENT_TIME_MAX_AGE_S": "0",  # a past week replayed: no lower time bound
    }

    fraudctl(env, "train", "--data", str(source), *COL_ARGS, "--promote")
    table_path = tmp_path / "training.parquet"
    fraudctl(env, "features", "build-training", "--data", str(source), *COL_ARGS,
             "--out", str(table_path))  # fmt: skip
    offline = pd.read_parquet(table_path).set_index("transaction_id")

    scorer = ServiceProcess(["serve", "scorer"], env, tmp_path / "scorer.log")
    counter = DecisionCounter(kafka_bootstrap, topics.scored)
    try:
        warm = data.write(tmp_path / "before-test-week.csv", data.before_test())
        report = json.loads(fraudctl(env, "produce", "--file", str(warm), *COL_ARGS, "--json"))
        assert report["rejected"] == 0 and report["sent"] == len(data.before_test())
        decided = report["sent"]
        wait_for(counter, decided, scorer)
        for day in range(data.test_days):
            start = data.test_start + timedelta(days=day)
            fraudctl(env, "features", "materialize", "--data", str(source), *COL_ARGS,
                     "--end", start.isoformat(), "--repo", str(repo))  # fmt: skip
            path = data.write(tmp_path / f"test-day-{day}.csv", data.test_day(day))
            report = json.loads(fraudctl(env, "produce", "--file", str(path), *COL_ARGS, "--json"))
            assert report["rejected"] == 0
            decided += report["sent"]
            wait_for(counter, decided, scorer)
    finally:
        counter.close()
        assert scorer.terminate() == 0, scorer.output()[-3000:]
        _drop_project(redis_url, env["FRAUD_FEAST_PROJECT"])

    lines = fraudctl(env, "decisions", "tail", "--from-beginning", "--no-follow", "--json")
    decisions = {d["transaction_id"]: d for d in map(json.loads, lines.splitlines())}
    assert len(decisions) == len(data.frame)
    week = data.frame["TX_ID"][data.times() >= pd.Timestamp(data.test_start, tz="UTC")]
    assert len(week) > 1000
    served = np.array([decisions[t]["features"] for t in week])
    assert {decisions[t]["feature_set"] for t in week} == {FEATURE_SET_ID}
    trained = offline.loc[week, list(FEATURE_NAMES)].to_numpy().astype(np.float32)

    for name, column in FEATURE_INDEX.items():
        online, expected = served[:, column], trained[:, column].astype(np.float64)
        if name == DAYS_SINCE_FEATURE:
            # stored at the day's start as float32, aged online by the reader: float32 rounding
            np.testing.assert_allclose(online, expected, rtol=1e-6, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(online, expected, err_msg=name)
    # the comparison covered what matters: warm card windows, served terminal risk
    assert (trained[:, FEATURE_INDEX["card_tx_count_30d"]] > 0).mean() > 0.9
    assert (trained[:, FEATURE_INDEX["terminal_tx_count_7d"]] > 0).mean() > 0.9
    assert (trained[:, FEATURE_INDEX["terminal_fraud_share_28d"]] > 0).any()
    assert (trained[:, FEATURE_INDEX[DAYS_SINCE_FEATURE]] < 365).any()
    merchant = trained[:, FEATURE_INDEX["tx_merchant_category_code"]]
    assert len(np.unique(merchant)) == 6  # 0742 read as 742 and given back its zero


def _drop_project(redis_url: str, project: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=b"*" + project.encode(), count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
