"""Running the project's real processes (``fraudctl serve ...``) from tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAUDCTL = [sys.executable, "-m", "services.cli"]


class ServiceProcess:
    """A ``fraudctl`` subprocess in its own process group, with its output in a log file."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        log_path: Path,
        command: list[str] | None = None,
    ) -> None:
        """Run ``fraudctl <args>`` (or ``<command> <args>``)."""
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [*(command or FRAUDCTL), *args],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pause(self) -> None:
        """SIGSTOP: the process stalls (a long GC pause, a frozen VM), sockets stay open."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the crash a test wants to survive."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait for the graceful shutdown."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
        finally:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
