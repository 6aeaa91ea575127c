"""The local cluster's own health check and report: what a failed cluster test prints."""

from __future__ import annotations

import os
import signal

import pytest
import redis

from services.stack.process import wait_until
from services.stack.redis_cluster import LocalCluster
from tests.cluster.moves import client_of, repair_promoted, slot_maps_agree

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


def test_a_primary_missing_a_slot_of_its_own_is_repaired_and_serves_it_again(
    own_cluster: LocalCluster,
) -> None:
    client = client_of(own_cluster)
    key = "card:{probe}"
    client.set(key, b"kept")
    slot = client.keyslot(key)
    owner = int(client.nodes_manager.get_node_from_slot(slot).port)
    node = redis.Redis(port=owner)
    # the state a replica promoted after a reshard was found in: its own map does not
    # give it the slot, while every other node does
    node.execute_command("CLUSTER DELSLOTS", slot)
    assert wait_until(lambda: node.cluster("INFO")["cluster_state"] == "fail", 10.0)
    assert not slot_maps_agree(client)
    others = [int(n.port) for n in client.get_primaries() if int(n.port) != owner]
    assert all(repair_promoted(own_cluster, port) == [] for port in others)

    assert repair_promoted(own_cluster, owner) == [slot]
    assert wait_until(own_cluster.healthy, 30.0)
    assert wait_until(lambda: slot_maps_agree(client), 30.0)
    assert node.get(key) == b"kept"
    assert repair_promoted(own_cluster, owner) == []
