"""Child processes the embedded runner keeps alive: restart with backoff, stop in order.

A child runs in its own process group, so a Ctrl-C in the terminal reaches only the runner,
which then stops the services first and the broker last (a broker that died first made every
service log a flood of connection errors while it shut down). On Linux a child is also told to
stop when the runner itself dies, so a killed runner leaves no orphans behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Restart delays double from FIRST_DELAY up to MAX_DELAY; a child that stayed up STABLE_AFTER
#: seconds counts as healthy again and its next restart is quick.
FIRST_DELAY, MAX_DELAY, STABLE_AFTER = 0.5, 30.0, 60.0


@dataclass
class Backoff:
    """Delays before the next restart: 0.5, 1, 2, 4 … 30 s, reset after a stable run."""

    failures: int = 0

    def next_delay(self, uptime: float) -> float:
        if uptime >= STABLE_AFTER:
            self.failures = 0
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** self.failures)
        self.failures += 1
        return delay


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(args: list[str], *, env: dict[str, str] | None = None, log_path: os.PathLike[str] | None = None,
          ) -> subprocess.Popen[bytes]:
    """Start a child in its own process group that stops when the runner dies."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)  # the runner has no threads
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]


@dataclass
class Supervised:
    """One kept-alive child: how to start it, the running process, and when to start it again."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)

    def launch(self) -> None:
        self.process = self.start()
        self.started_at, self.restart_at = time.monotonic(), None

    def check(self, log: Callable[[str], None]) -> bool:
        """Notice a death and plan the restart; restart when due. True if it was (re)started now."""
        now = time.monotonic()
        if self.restart_at is None and self.process is not None and self.process.poll() is not None:
            delay = self.backoff.next_delay(now - self.started_at)
            log(f"{self.name} exited with code {self.process.returncode}; restarting in {delay:.1f} s")
            self.restart_at = now + delay
        if self.restart_at is not None and now >= self.restart_at:
            self.restarts += 1
            self.launch()
            log(f"{self.name} restarted (restart {self.restarts})")
            return True
        return False


def stop_all(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every process at once, wait up to ``grace`` seconds in total, then SIGKILL the rest."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
