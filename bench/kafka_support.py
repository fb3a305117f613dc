"""Helpers for the event benchmarks: a broker, throwaway databases, child processes, statistics.

Everything runs on 127.0.0.1 and is bounded: databases are dropped, processes are stopped in a
``finally``, and every wait has a deadline. Child processes are ``python -m bench.<module> …`` so
each load generator and consumer has a CPU (and a GIL) of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.support import admin_sql
from shared.broker import TansuBroker

ROOT = Path(__file__).resolve().parent.parent
#: The local server the tests use too (trust auth); databases are created and dropped on it.


@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for logs and result files; ``OTO_BENCH_KEEP=<dir>`` keeps them there."""
    if keep := os.environ.get("OTO_BENCH_KEEP"):
        path = Path(keep) / unique_name(prefix)
        path.mkdir(parents=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def unique_name(prefix: str) -> str:
    """A fresh name per run, so runs never meet each other's topics or databases."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def postgres_database(prefix: str = "oto_bench_") -> Iterator[str]:
    """A throwaway database on the local server; yields its SQLAlchemy asyncpg URL, then drops it."""
    name = unique_name(prefix)
    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain libpq form of an asyncpg SQLAlchemy URL, for direct asyncpg connections."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.contextmanager
def tansu_broker(work_dir: Path) -> Iterator[TansuBroker]:
    """The project's local broker (memory only), stopped whatever happens."""
    broker = TansuBroker(log_path=work_dir / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop()


class Child:
    """One ``python -m …`` child process with its output in a log file; stop() is safe to repeat."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (the services and consumers finish their batch), then SIGKILL after ``grace``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if self.wait(grace) is None:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 20) -> str:
        """The end of the child's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def child(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[Child]:
    """A child process that is stopped when the block ends, also on errors."""
    process = Child(args, log_path, env)
    try:
        yield process
    finally:
        process.stop()


def wait_for(check: Callable[[], bool], *, timeout: float, interval: float = 0.1, what: str) -> None:
    """Poll ``check`` until it is true; raise TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        time.sleep(interval)


def write_json(path: Path, value: Any) -> None:
    """Write atomically (rename), so a polling reader never sees half a file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(value))
    partial.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


@dataclass(frozen=True)
class Latencies:
    """Latency of matched pairs (received − sent) in milliseconds, and what did not arrive."""

    sorted_ms: list[float]
    missing: int

    @classmethod
    def between(cls, sent: dict[str, float], received: dict[str, float]) -> Latencies:
        """Pair send and receive times by key; keys sent but never received are missing."""
        values = sorted((received[key] - at) * 1000 for key, at in sent.items() if key in received)
        return cls(values, len(sent) - len(values))

    @property
    def count(self) -> int:
        return len(self.sorted_ms)

    def p(self, q: float) -> float:
        return percentile(self.sorted_ms, q)

    @property
    def max(self) -> float:
        return self.sorted_ms[-1] if self.sorted_ms else math.nan

    def summary(self) -> str:
        return (f"p50 {self.p(50):.1f} ms, p99 {self.p(99):.1f} ms, max {self.max:.1f} ms, "
                f"n={self.count}, missing {self.missing}")


async def paced(rate: float, count: int, fire: Callable[[int], Coroutine[Any, Any, None]],
                *, timeout: float) -> float:
    """Open-loop load: start call ``i`` at ``t0 + i / rate`` whether or not earlier ones returned.

    A closed loop (wait for the answer, then send the next) would slow down with the system and
    hide its latency; here a slow system piles up calls in flight, as real clients do. Returns the
    largest lag (s) of a start behind its schedule, to show whether the generator kept up.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: list[asyncio.Task[None]] = []
    worst_lag = 0.0
    for i in range(count):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, loop.time() - due)
        tasks.append(asyncio.create_task(fire(i)))
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    for task in tasks:
        task.cancel()
    return worst_lag


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, to tell a busy machine from a slow system."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuWatch:
    """CPU used by one process and by the whole machine between ``start()`` and ``stop()``."""

    pid: int | None = None
    process_share: float = math.nan  # cores used by ``pid`` on average
    machine_busy: float = math.nan  # fraction of all cores busy

    def start(self) -> CpuWatch:
        self._wall = time.monotonic()
        self._process = process_cpu_seconds(self.pid) if self.pid else 0.0
        self._machine = machine_cpu_ticks()
        return self

    def stop(self) -> CpuWatch:
        wall = time.monotonic() - self._wall
        if self.pid:
            with contextlib.suppress(OSError):
                self.process_share = (process_cpu_seconds(self.pid) - self._process) / wall
        busy, total = machine_cpu_ticks()
        self.machine_busy = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        return self
