"""The local cluster's own health check and report: what a failed cluster test prints."""

from __future__ import annotations

import os
import signal

import pytest

from services.stack.process import wait_until
from services.stack.redis_cluster import LocalCluster

pytestmark = pytest.mark.cluster


def test_a_killed_node_makes_the_cluster_unhealthy_and_is_named_with_its_log(
    own_cluster: LocalCluster,
) -> None:
    assert own_cluster.healthy()
    assert all(": running" in line for line in own_cluster.report().splitlines())

    victim = own_cluster.nodes[-1]
    os.kill(victim.pid, signal.SIGKILL)
    assert wait_until(lambda: not victim.alive(), 10.0)

    assert not own_cluster.healthy()
    report = own_cluster.report().splitlines()
    named = [line for line in report if line.startswith(f"{victim.name} {victim.address}")]
    assert len(named) == 1 and not named[0].endswith(": running")
    following = report[report.index(named[0]) + 1 :]
    assert following and following[0].startswith("    ")  # the end of its log comes next
