"""Child processes the embedded runner keeps alive: restart with backoff, stop in order.

A child runs in its own process group, so a Ctrl-C in the terminal reaches only the runner,
which then stops the services first and the broker last (a broker that died first made every
service log a flood of connection errors while it shut down). On Linux a child is also told to
stop when the runner itself dies, so a killed runner leaves no orphans behind.

Python children are forked from a preloaded fork server (``multiprocessing``'s "forkserver"
context) instead of being started as new interpreters: the server imports FastAPI, SQLAlchemy,
the services and the dashboard once, while the runner starts the broker, and each child is a
copy-on-write fork of it that skips the ~1.5 s of CPU an interpreter spends importing them (eight
children on two cores made start-up take 20 s and more). The fork server is started before any
thread or connection exists and imports only modules (nothing reads the environment or opens a
socket at import time), so a fork of it is as clean as a new interpreter.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import forkserver, get_context
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

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


#: Set for the fork server: the runner's pid, so the server (and only it) dies with the runner.
FORK_SERVER_PARENT = "OTO_FORK_SERVER_PARENT"


class Child(Protocol):
    """What the runner needs of a child process: a ``subprocess.Popen`` or a ``Forked``."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def _stop_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` when the parent process exits (elsewhere: nothing)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, sig)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setpgid(0, 0)
    _stop_with_parent()


def start_fork_server(modules: Sequence[str]) -> None:
    """Start the fork server now, importing ``modules``; it works while the runner goes on."""
    forkserver.set_forkserver_preload(["shared.supervisor", *modules])
    with _naming_the_runner():
        forkserver.ensure_running()


@contextmanager
def _naming_the_runner() -> Iterator[None]:
    """Put the runner's pid in the environment of a fork server started meanwhile (it starts
    one again if the first died), and in no other process's."""
    os.environ[FORK_SERVER_PARENT] = str(os.getpid())
    try:
        yield
    finally:
        del os.environ[FORK_SERVER_PARENT]


def _bind_fork_server_to_runner() -> None:
    """In the fork server (it imports this module first): die with the runner. Its children hold
    its "alive" pipe too, so without this a killed runner would leave the server and its
    children running; with it the server dies, and its children (``_forked_main``) follow."""
    parent = os.environ.get(FORK_SERVER_PARENT)
    if parent is None or parent != str(os.getppid()):
        return
    _stop_with_parent(signal.SIGKILL)
    if str(os.getppid()) != parent:  # the runner died before the line above
        os._exit(1)
    # A child re-runs the runner's main module by name before its own code (multiprocessing's
    # preparation); started as ``python -m shared.cli``, that module is already imported here,
    # and runpy's warning about it, harmless, was printed once per child into the runner's output.
    warnings.filterwarnings("ignore", category=RuntimeWarning,
                            message=r".*found in sys\.modules after import of package")


_bind_fork_server_to_runner()


class Forked:
    """A child forked from the fork server, with the part of ``Popen``'s interface the runner uses."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(self.process.name, timeout or 0.0)
        return self.process.exitcode


def fork(target: str, *args: Any, env: dict[str, str], log_path: Path, **kwargs: Any) -> Forked:
    """Run ``target(*args, **kwargs)`` (``"module:function"``, imported in the child, so the
    runner never imports the services) in a child forked from the fork server
    (``start_fork_server``), with ``env`` as its whole environment and its output in ``log_path``,
    like ``spawn``."""
    process = get_context("forkserver").Process(
        target=_forked_main, args=(target, args, kwargs, env, str(log_path)), name=log_path.stem)
    with _naming_the_runner():
        process.start()
    return Forked(process)


def _forked_main(target: str, args: tuple[Any, ...], kwargs: dict[str, Any], env: dict[str, str],
                 log_path: str) -> None:  # pragma: no cover - runs in the forked child
    """The child's set-up, as ``spawn`` does it: own process group, stop with its parent (the fork
    server), output to the log, the given environment."""
    _die_with_parent()
    # multiprocessing closed stdin; uvicorn's workers (OTO_WORKERS) inherit fd 0, so give it one.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's stdin, open for its life
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.environ.clear()
    os.environ.update(env)
    module, _, function = target.partition(":")
    getattr(importlib.import_module(module), function)(*args, **kwargs)


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
    start: Callable[[], Child]
    #: Where the child writes its output: its last error is quoted when it dies.
    log_path: Path | None = None
    process: Child | None = None
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
            why = last_error(self.log_path) if self.log_path is not None else None
            log(f"{self.name} exited with code {self.process.returncode}; restarting in {delay:.1f} s"
                + (f" (its last error: {why})" if why else ""))
            self.restart_at = now + delay
        if self.restart_at is not None and now >= self.restart_at:
            self.restarts += 1
            self.launch()
            log(f"{self.name} restarted (restart {self.restarts})")
            return True
        return False


def last_error(log_path: Path, tail_bytes: int = 16_384) -> str | None:
    """The last ERROR or CRITICAL line a child wrote (its message only, when it logs JSON), so
    the operator sees why it died ("address already in use", "database is locked") without
    opening its log."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - tail_bytes))
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            return str(record.get("message", ""))[:300]
        if record is None and ("ERROR" in line or "Error" in line):
            return line.strip()[:300]
    return None


def stop_all(processes: Sequence[Child], grace: float) -> None:
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
