"""Start and stop background processes in their own process group, tracked by PID files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ManagedProcess:
    """A process ``stack up`` started: enough to find it and stop it again."""

    name: str
    pid: int
    address: str
    command: list[str]
    log: str

    def alive(self) -> bool:
        return self.state() == "running"

    def state(self) -> str:
        """``running``, ``exited`` (a zombie not yet reaped) or ``gone``."""
        try:
            status = psutil.Process(self.pid).status()
        except psutil.NoSuchProcess:
            return "gone"
        return "exited" if status == psutil.STATUS_ZOMBIE else "running"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: the sockets stay bound until all are picked,
    so processes started one after another (each binding its ports later) cannot be handed
    the same port twice."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def spawn(name: str, command: list[str], address: str, log_path: Path) -> ManagedProcess:
    """Start ``command`` detached in a new session (its own process group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return ManagedProcess(name, proc.pid, address, command, str(log_path))


def stop(process: ManagedProcess, grace_s: float = 5.0) -> None:
    """Stop the whole process group; SIGKILL what ignores SIGTERM (the noida-db child does)."""
    try:
        root = psutil.Process(process.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)


class PidFile:
    """``state/stack.json``: what ``stack up`` started, so ``down`` stops only that."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, ManagedProcess]:
        if not self.path.exists():
            return {}
        raw = json.loads(self.path.read_text())
        return {name: ManagedProcess(**entry) for name, entry in raw.items()}

    def write(self, processes: dict[str, ManagedProcess]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in processes.items()}, indent=2))
        tmp.replace(self.path)


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``check`` until it is true (True) or ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return False
