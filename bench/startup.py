"""Start-up: from launching ``./run.sh`` (an installed checkout, a fresh data folder, no demo) to
every service's and every dashboard's ``/readyz`` answering 200, over a few runs.

Baseline, started the same way in the same run: one bare interpreter importing FastAPI,
SQLAlchemy's asyncio layer, aiokafka and uvicorn and serving a FastAPI app with one ``/readyz``
route: the least one service process can cost. Eight such interpreters at once (the number of
processes the system starts) are measured too, for the notes: what the runner cost when each
child was an interpreter of its own.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import support
from bench.report import Figure, Section
from shared.departments import Department
from shared.embedded import DASHBOARD_PORT_OFFSET, PRELOAD
from shared.settings import SERVICES

GOAL_SECONDS = 10.0
#: How often the benchmark asks every /readyz while the system starts.
POLL = 0.02
READY_TIMEOUT = 120.0
#: The broker listens on the base port plus this (the children use base + 0..3 and 10..13).
BROKER_OFFSET = 20
BARE_APP = ("import fastapi, sqlalchemy.ext.asyncio, aiokafka, uvicorn\n"
            "app = fastapi.FastAPI()\n"
            "app.get('/readyz')(lambda: {'status': 'ready'})\n"
            "uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')\n")
PHASE_LINE = re.compile(r"✓ (?P<label>.+?) (?:ready on \S+ )?\((?P<seconds>[\d.]+) s\)$")


@dataclass
class Start:
    """One start: seconds from launch to each child's first 200, the runner's own phase lines,
    and the CPU the whole process tree had used when the last child was ready."""

    ready: dict[str, float]
    phases: list[tuple[str, float]] = field(default_factory=list)
    first_line: float = 0.0
    cpu_seconds: float = 0.0
    #: The runner's lines about a child that exited or was late: why a run was slow.
    incidents: list[str] = field(default_factory=list)

    @property
    def all_ready(self) -> float:
        return max(self.ready.values())


def run(*, quick: bool) -> list[Section]:
    runs = 2 if quick else 3
    with support.scratch_dir("startup") as scratch:
        _warm_up(scratch)
        starts, bare, eight = [], [], []
        for index in range(runs):  # interleaved, so both see the same machine
            starts.append(_start_system(scratch / f"data-{index}"))
            bare.append(_start_bare(1, scratch)[0])
            eight.append(max(_start_bare(8, scratch)))
    return [_section(starts, bare, eight, _import_profile(), _preload_cpu(), quick)]



# --- the system ---------------------------------------------------------------------------

def _warm_up(scratch: Path) -> None:
    """One start not counted: the page cache holds the interpreter and the wheels afterwards,
    as on any machine that ran the system before ("an installed checkout")."""
    _start_system(scratch / "data-warm-up")


def _children() -> dict[str, tuple[int, str]]:
    """Each child's port and the path of its readiness check."""
    return {**{service: (offset, "/readyz") for offset, service in enumerate(SERVICES)},
            **{f"dashboard {d.value}": (DASHBOARD_PORT_OFFSET + offset, "/readyz")
               for offset, d in enumerate(Department)}}


def _free_base(offsets: Sequence[int]) -> int:
    """A base port below the kernel's ephemeral range where every ``base + offset`` (the
    children's ports and the broker's) can be bound: a port in that range may be the local end of a
    connection of some other program, and a child that cannot bind exits and is restarted with
    backoff, which would measure the collision instead of the start."""
    while True:
        base = random.randrange(20_000, 32_000)
        if all(_bindable(base + offset) for offset in offsets):
            return base


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_system(data_dir: Path) -> Start:
    base = _free_base([*(offset for offset, _ in _children().values()), BROKER_OFFSET])
    command = [str(support.ROOT / "run.sh"), "--data-dir", str(data_dir), "--base-port", str(base),
               "--broker-port", str(base + BROKER_OFFSET), "--no-demo"]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=support.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True, env={**os.environ, "COLUMNS": "200"})
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=_read_lines, args=(process, started, lines), daemon=True)
    reader.start()
    try:
        ready = _wait_ready({name: f"http://127.0.0.1:{base + offset}{path}"
                             for name, (offset, path) in _children().items()}, started, process)
        cpu = support.tree_cpu_seconds(process.pid)
        ready_at = max(ready.values())
    finally:
        _stop_runner(process)
        reader.join(timeout=10)
    incidents = [line for at, line in lines if at <= ready_at and any(
        word in line for word in ("exited", "restart", "not ready"))]
    return Start(ready=ready, phases=_phases(lines), first_line=lines[0][0] if lines else 0.0,
                 cpu_seconds=cpu, incidents=incidents)


def _read_lines(process: subprocess.Popen[str], started: float, lines: list[tuple[float, str]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append((time.monotonic() - started, line.rstrip("\n")))


def _wait_ready(urls: dict[str, str], started: float, process: subprocess.Popen[Any]) -> dict[str, float]:
    ready: dict[str, float] = {}
    deadline = started + READY_TIMEOUT
    with httpx.Client(timeout=1.0) as http:
        while len(ready) < len(urls):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s (or the runner exited): "
                                   f"{sorted(set(urls) - set(ready))}")
            for name, url in urls.items():
                if name not in ready:
                    with contextlib.suppress(httpx.HTTPError):
                        if http.get(url).status_code == 200:
                            ready[name] = time.monotonic() - started
            time.sleep(POLL)
    return ready


def _stop_runner(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a user stops it; killed (the whole group) if it does not stop."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _phases(lines: Sequence[tuple[float, str]]) -> list[tuple[str, float]]:
    """The runner's "✓ label (x s)" lines, in order."""
    found = []
    for _, line in lines:
        match = PHASE_LINE.search(line)
        if match:
            found.append((match["label"], float(match["seconds"])))
    return found


# --- the baseline -------------------------------------------------------------------------

def _start_bare(count: int, scratch: Path) -> list[float]:
    """``count`` bare interpreters started at once; seconds from launch to each one's first 200."""
    base = _free_base(range(count))
    ports = [base + offset for offset in range(count)]
    started = time.monotonic()
    processes = [subprocess.Popen([sys.executable, "-c", BARE_APP.replace("{port}", str(port))],
                                  cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for port in ports]
    try:
        ready = _wait_ready({str(port): f"http://127.0.0.1:{port}/readyz" for port in ports}, started,
                            processes[0])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return list(ready.values())


# --- where the time goes ------------------------------------------------------------------

def _import_profile(top: int = 8) -> list[tuple[str, float]]:
    """``python -X importtime`` of one service: the libraries whose import costs most (cumulative
    ms of a package's first import), and the project's own modules (their self times summed)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import services.intake.app"],
                            cwd=support.ROOT, capture_output=True, text=True, check=True)
    costs: dict[str, float] = {}
    own = 0.0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        root = name.split(".")[0]
        if root in ("shared", "services", "dashboard"):
            own += int(parts[0].rsplit(":", 1)[1]) / 1000
        else:
            costs[root] = max(costs.get(root, 0.0), int(parts[1]) / 1000)
    ranked = sorted(costs.items(), key=lambda item: -item[1])[:top]
    return [*ranked, ("the project's own modules", own)]


def _preload_cpu() -> float:
    """CPU seconds the fork server spends importing, once for all eight children."""
    before = os.times()
    subprocess.run([sys.executable, "-c", "import " + ", ".join(PRELOAD)], cwd=support.ROOT, check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


# --- the report ---------------------------------------------------------------------------

def _section(starts: list[Start], bare: list[float], eight: list[float],
             imports: list[tuple[str, float]], preload: float, quick: bool) -> Section:
    system = statistics.median(s.all_ready for s in starts)
    baseline = statistics.median(bare)
    figures = [
        Figure("./run.sh to every /readyz 200 (median)", "s", system, baseline,
               goal=f"<= {GOAL_SECONDS:.0f} s", met=system <= GOAL_SECONDS),
        Figure("./run.sh to every /readyz 200 (slowest run)", "s", max(s.all_ready for s in starts),
               max(bare)),
        Figure("CPU of the whole process tree until ready", "s",
               statistics.median(s.cpu_seconds for s in starts), None),
    ]
    middle = sorted(starts, key=lambda s: s.all_ready)[len(starts) // 2]
    services = max(middle.ready[s] for s in SERVICES)
    dashboards = max(t for name, t in middle.ready.items() if name not in SERVICES)
    incidents = [f"run {index + 1}: " + "; ".join(s.incidents) for index, s in enumerate(starts)
                 if s.incidents]
    notes = [
        "Per run, seconds to everything ready: " + ", ".join(f"{s.all_ready:.1f}" for s in starts)
        + "; one bare FastAPI interpreter (the baseline): " + ", ".join(f"{b:.1f}" for b in bare)
        + "; eight bare interpreters at once (what eight children of their own cost): "
        + ", ".join(f"{e:.1f}" for e in eight) + ".",
        f"Phases of the median run (the runner's own lines, seconds): first output line after "
        f"{middle.first_line:.1f} s (the interpreter, `oto`'s imports, ensure-venv's check); "
        + "; ".join(f"{label} {seconds:.1f}" for label, seconds in middle.phases
                    if "ready on" not in label and label not in middle.ready)
        + f". Every service ready {services:.1f} s and every dashboard {dashboards:.1f} s after "
          f"the launch.",
        f"The fork server imports the libraries, `shared` and the dashboard once ({preload:.1f} s "
        f"of CPU in one interpreter, while the runner starts the broker); each child is a fork of "
        f"it and only imports its service's own modules, builds its app, migrates its SQLite file "
        f"and connects.",
        "Import profile of one service (`python -X importtime -c 'import services.intake.app'`, "
        "cumulative ms, the fork server pays it once): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in imports) + ".",
    ]
    if incidents:
        notes.append("Children that exited or were late before everything was ready (the runner's "
                     "lines): " + " | ".join(incidents) + ".")
    setup = ("`./run.sh --no-demo` on this checkout (virtualenv installed, bytecode compiled), a fresh "
             "data folder and free ports per run, one start not counted first; the benchmark polls "
             f"every /readyz (four services, four dashboards) every {POLL * 1000:.0f} ms from launch "
             "and stops the runner with Ctrl-C (SIGINT) after. Baseline: one bare interpreter "
             "(FastAPI, SQLAlchemy asyncio, aiokafka, uvicorn imported; one /readyz route) launched "
             f"the same way, in the same runs. {len(starts)} runs."
             + (" Quick run: indicative only." if quick else ""))
    return Section("Start-up: ./run.sh until everything is ready", setup, figures, notes)
