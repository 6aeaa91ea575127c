"""The demo's child processes: ``fraudctl ...`` each in its own process group, logs in files.

Stopping is the same for all: SIGTERM to the group, wait, SIGKILL what is left. A child's
own session keeps the terminal's Ctrl-C away from it, so the demo stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from services.demo.plan import ProcessSpec

FRAUDCTL = (sys.executable, "-m", "services.cli")


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free right now on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Child:
    """A running ``fraudctl`` subprocess started from a :class:`ProcessSpec`."""

    def __init__(self, spec: ProcessSpec, env: Mapping[str, str], cwd: Path) -> None:
        self.spec = spec
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = spec.log.open("ab")
        self.proc = subprocess.Popen(
            [*FRAUDCTL, *spec.args],
            env={**os.environ, **env, **spec.extra_env},
            cwd=cwd,  # faust keeps its <app>-data folder in the working directory
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.spec.log.read_text(errors="replace")

    def signal_group(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)


def stop_all(children: list[Child], grace_s: float = 15.0) -> dict[str, int | None]:
    """SIGTERM every group, wait up to ``grace_s`` in total, SIGKILL stragglers.

    Returns each child's exit code (``-9`` for those killed, ``None`` if it could not be
    reaped).
    """
    for child in children:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(c.alive() for c in children):
        time.sleep(0.2)
    codes: dict[str, int | None] = {}
    for child in children:
        if child.alive():
            child.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(5)
            codes[child.name] = -9
        else:
            codes[child.name] = child.proc.returncode
        # anything left in the group (e.g. a grandchild) goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child._log.close()
    return codes
