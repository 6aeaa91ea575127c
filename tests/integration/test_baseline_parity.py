"""The naive baseline and the real scorer make the same decisions (real broker, Redis, Feast).

Both start from the same Redis state (the same warm history applied under two key
prefixes), read the same Feast profiles (materialised once into a project of the test),
use the same champion, and decide the same 300 transactions from their own topics: the
scorer in batches through ONNX and the direct Feast-layout reader, the baseline one at a
time through ``get_online_features`` and ``Booster.predict``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import redis

from features.definitions import FEATURE_INDEX, PROFILE_FEATURE_NAMES
from features.profiles.feast_repo import REPO_DIR
from features.profiles.materialize import materialize_frames
from features.realtime import RedisFeatureStore
from loadtest.baseline import build_naive_scorer
from services.scorer.service import build_scorer
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.integration.conftest import SmallWorld, to_events
from tests.integration.scorer_helpers import (
    decode_decisions,
    produce,
    read_all,
    review_decoder,
    scorer_env,
    scorer_settings,
)

pytestmark = pytest.mark.integration

N = 300
WARM = 3_000


@pytest.fixture()
def feast_project(
    tmp_path: Path, redis_prefix: str, redis_url: str, small_world: SmallWorld
) -> Iterator[tuple[Path, str]]:
    """A copy of features/repo with the small world's profiles materialised up to the
    first decided transaction; the project's keys are deleted afterwards."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"fraud_{redis_prefix}"
    tx, labels = small_world.transactions, small_world.labels
    end = tx["event_time"].iloc[-N].floor("D") + timedelta(days=1)
    materialize_frames(
        tx[tx["event_time"] < end],
        labels[labels["event_time"] < end],
        redis_url=redis_url,
        repo_dir=repo,
        end=end.to_pydatetime(),
        project=project,
        seed_writer=False,
    )
    yield repo, project
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=b"*" + project.encode(), count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def test_naive_baseline_and_scorer_make_the_same_decisions(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    feast_project: tuple[Path, str],
) -> None:
    repo, project = feast_project
    events = to_events(small_world.transactions.tail(N + WARM))
    warm, transactions = events[:WARM], events[WARM:]
    naive_topics = Topics(prefix=f"{topics.prefix}naive.")
    ensure_topics(kafka_bootstrap, naive_topics)

    decided = {}
    for who, deployment in (("scorer", topics), ("naive", naive_topics)):
        env = scorer_env(
            kafka_bootstrap, redis_url, deployment, f"{redis_prefix}{who}", champion_state, who
        )
        env["FRAUD_FEAST_PROJECT"] = project
        RedisFeatureStore(redis_client, prefix=env["FRAUD_REDIS_PREFIX"]).update_batch(warm)
        produce(kafka_bootstrap, deployment.transactions, transactions)
        settings = scorer_settings(env)
        if who == "scorer":
            build_scorer(settings).run(max_idle_s=4.0)
        else:
            stats = build_naive_scorer(settings, repo).run(max_idle_s=4.0)
            assert stats.decided == N
        decided[who] = {
            d.transaction_id: d
            for d in decode_decisions(read_all(kafka_bootstrap, deployment.scored, idle_s=2.0))
        }

    scorer, naive = decided["scorer"], decided["naive"]
    ids = [t.transaction_id for t in transactions]
    assert sorted(scorer) == sorted(naive) == sorted(ids)
    s_features = np.array([scorer[i].features for i in ids])
    n_features = np.array([naive[i].features for i in ids])
    np.testing.assert_array_equal(n_features, s_features)
    np.testing.assert_allclose(
        [naive[i].score for i in ids], [scorer[i].score for i in ids], rtol=0, atol=1e-5
    )
    assert [naive[i].decision for i in ids] == [scorer[i].decision for i in ids]
    assert {d.model_version for d in naive.values()} == {d.model_version for d in scorer.values()}

    # the comparison covered what matters: warm card history and served Feast profiles
    profiles = s_features[:, [FEATURE_INDEX[n] for n in PROFILE_FEATURE_NAMES]]
    assert (profiles[:, :7] > 0).any()  # labelled frauds at some terminal (count columns)
    assert (s_features[:, FEATURE_INDEX["card_tx_count_30d"]] > 0).mean() > 0.5

    flagged = sorted(i for i in ids if naive[i].decision != "approve")
    messages = read_all(kafka_bootstrap, naive_topics.review, idle_s=2.0)
    cases = [review_decoder.decode(m.value()) for m in messages]
    assert sorted(c.case_id for c in cases) == flagged  # type: ignore[union-attr]
    # the scorer's reasons come with its review cases (its decisions do not wait for them)
    scorer_cases = {
        c.case_id: c  # type: ignore[union-attr]
        for c in (
            review_decoder.decode(m.value())
            for m in read_all(kafka_bootstrap, topics.review, idle_s=2.0)
        )
    }
    assert sorted(scorer_cases) == flagged
    assert [[r.feature for r in naive[i].reasons] for i in flagged] == [
        [r.feature for r in scorer_cases[i].reasons] for i in flagged
    ]
