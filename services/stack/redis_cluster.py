"""A local Redis Cluster from the ``redis-server`` binary: 3 primaries and 3 replicas on
free loopback ports, joined by ``redis-cli --cluster create``. For the cluster test tier
and benchmarks; production runs a managed or operator-run cluster and names it with
``FRAUD_REDIS_URL=redis-cluster://host:port``."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from services.stack.components import REDIS_HELP
from services.stack.process import ManagedProcess, free_ports, spawn, stop, wait_until
from streams.errors import StackError


@dataclass(frozen=True)
class LocalCluster:
    nodes: list[ManagedProcess]
    ports: list[int]

    @property
    def url(self) -> str:
        """The settings' URL (any node: the client learns the others)."""
        return f"redis-cluster://127.0.0.1:{self.ports[0]}/0"

    def stop(self) -> None:
        for node in self.nodes:
            stop(node)

    def healthy(self) -> bool:
        """Every node runs and serves every slot (``cluster_state:ok``)."""
        return all(n.alive() for n in self.nodes) and all(_cluster_ok(p) for p in self.ports)

    def report(self, lines: int = 12) -> str:
        """Each node's state, and the end of its log where it stopped or logged a crash:
        what a failed cluster test prints so the failure can be read after the fact."""
        parts = []
        for node in self.nodes:
            log = Path(node.log)
            text = log.read_text(errors="replace") if log.exists() else ""
            state = node.state()
            parts.append(f"{node.name} {node.address} pid {node.pid}: {state}")
            if state != "running" or "BUG REPORT" in text:
                logged = text.splitlines()
                crash = [ln for ln in logged if any(m in ln for m in _CRASH_MARKS)]
                parts.extend(f"    {line}" for line in crash[:8] + logged[-lines:])
        return "\n".join(parts)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1.0).ping())
    except (redis.RedisError, OSError):
        return False


def start_cluster(data_dir: Path, primaries: int = 3, replicas: int = 1) -> LocalCluster:
    """Start ``primaries * (1 + replicas)`` nodes (no persistence: a test's cluster) and
    join them; returns once every slot is served (``cluster_state:ok``)."""
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        raise StackError(REDIS_HELP)
    nodes: list[ManagedProcess] = []
    ports: list[int] = []
    try:
        count = primaries * (1 + replicas)
        picked = free_ports(2 * count)
        for i in range(count):
            port, bus = picked[2 * i], picked[2 * i + 1]
            folder = data_dir / f"node{i}"
            folder.mkdir(parents=True, exist_ok=True)
            command = [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", str((folder / "nodes.conf").resolve()),
                "--cluster-node-timeout", "2000",
                "--dir", str(folder.resolve()),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
            ]  # fmt: skip
            nodes.append(spawn(f"redis-{i}", command, f"127.0.0.1:{port}", folder / "log"))
            ports.append(port)
        if not wait_until(lambda: all(_answers(p) for p in ports), 15.0):
            raise StackError(f"redis cluster nodes did not answer (logs under {data_dir})")
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        create += ["--cluster-replicas", str(replicas), "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise StackError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        if not wait_until(lambda: all(_cluster_ok(p) for p in ports), 30.0):
            raise StackError("the redis cluster did not reach cluster_state:ok")
    except BaseException:
        for node in nodes:
            stop(node)
        raise
    return LocalCluster(nodes, ports)


_CRASH_MARKS = ("crashed by signal", "ASSERTION FAILED", "==> ", "Guru Meditation")


def _cluster_ok(port: int) -> bool:
    try:
        info = redis.Redis(port=port, socket_timeout=1.0).cluster("INFO")
    except (redis.RedisError, OSError):
        return False
    return bool(info.get("cluster_state") == "ok")
