"""The embedded default: the whole system on one machine, no Docker.

Starts a tansu broker on loopback, creates the topics, starts the four services (each migrates
its own SQLite file before it serves, so the four migrate at once) and one dashboard per
department (base port + 10 …) together as child processes forked from a preloaded fork server
(``shared.supervisor``), and shows each phase with its duration. Then it
supervises: a service or the broker that dies is restarted with backoff (the broker on the same
port; if that port is taken, on a new one, and the services are restarted with the new address).
A slow or blocked service is reported, never a reason to stop the rest. Ctrl-C (SIGINT) or
SIGTERM stops the services first and the broker last.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console

from shared.broker import TansuBroker, free_port, free_port_block, port_is_free
from shared.departments import Department
from shared.settings import SERVICES, Settings
from shared.supervisor import Backoff, Child, Supervised, fork, start_fork_server, stop_all

console = Console(highlight=False)
#: How long the services get to finish their work after SIGTERM before they are killed: on
#: Ctrl-C the whole system is down within 5 s (a service rejoining its consumer group right after
#: a broker restart can take longer to leave it; killing it then is safe, as the outbox keeps
#: unpublished events and the inbox makes redelivered ones harmless), and when the services are
#: restarted for a moved broker.
STOP_GRACE, RESTART_GRACE = 4.0, 20.0
#: How long the runner waits for a restarted broker's port to be released before moving.
PORT_RELEASE_WAIT = 5.0
#: Dashboards listen on base port + this + 0..3 (8011–8014 by default), in ``Department`` order.
DASHBOARD_PORT_OFFSET = 10
#: Every port the runner listens on, as an offset from its base port.
PORT_OFFSETS = (*range(len(SERVICES)), *range(DASHBOARD_PORT_OFFSET, DASHBOARD_PORT_OFFSET + len(Department)))


def free_base_port() -> int:
    """A base port under which every service and dashboard port is free (tests, benchmarks)."""
    return free_port_block(PORT_OFFSETS)
#: What the fork server imports once for every child: what they share (the libraries, ``shared``,
#: the dashboard, which four children use) and what their start-up would import lazily (the
#: SQLite driver, alembic, uvicorn's protocol modules). Each service's own modules (a quarter of
#: the imports) are left to its child: imported once either way, but then on both cores at once.
PRELOAD = ("shared.serve", "shared.cli", "shared.app", "shared.migrations", "alembic.command",
           "alembic.runtime.environment", "dashboard.__main__",
           "sqlalchemy.dialects.sqlite.aiosqlite", "uvicorn.loops.auto", "uvicorn.protocols.http.auto",
           "uvicorn.protocols.websockets.auto", "uvicorn.lifespan.on")
#: How often the runner asks the children whether they are ready while they start.
START_POLL = 0.05


def say(message: str, style: str | None = None) -> None:
    """One timestamped line; never wrapped, so commands stay copyable in a narrow terminal."""
    console.print(f"{datetime.now(UTC):%H:%M:%S} {message}", style=style, soft_wrap=True, markup=False)


@contextmanager
def phase(label: str) -> Iterator[None]:
    """Announce a start-up phase, then say how long it took."""
    say(f"▸ {label} …")
    started = time.monotonic()
    yield
    say(f"✓ {label} ({time.monotonic() - started:.1f} s)")


class StopFlag:
    """Set by SIGINT/SIGTERM; the runner checks it between steps."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGINT, self._set)
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, _signum: int, _frame: object) -> None:
        self.requested = True


@dataclass
class Running:
    service: str
    port: int
    child: Supervised
    ready: bool = False
    ever_ready: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _broker_port(preferred: int) -> int:
    if port_is_free(preferred):
        return preferred
    port = free_port()
    say(f"port {preferred} is taken by another program; the broker listens on {port} instead", style="bold")
    return port


class System:
    """The broker and the services under supervision."""

    def __init__(self, data_dir: Path, base_port: int, broker: TansuBroker) -> None:
        #: Each service's address, for the ones that call another (intake's subject-access report,
        #: casework's steering report).
        self.peer_urls: dict[str, str] = {s: f"http://127.0.0.1:{base_port + offset}"
                                          for offset, s in enumerate(SERVICES)}
        self.data_dir, self.broker = data_dir, broker
        self.broker_backoff = Backoff()
        self.broker_restart_at: float | None = None
        self.broker_started_at = time.monotonic()
        self.services = [self._running(service, base_port + offset)
                         for offset, service in enumerate(SERVICES)]
        #: One dashboard per department, started with the services and supervised like them.
        self.dashboards = [self._dashboard(department, base_port + DASHBOARD_PORT_OFFSET + offset)
                           for offset, department in enumerate(Department)]
        self.http = httpx.Client(timeout=1.0)

    def settings(self) -> Settings:
        return Settings(kafka_bootstrap=self.broker.bootstrap, kafka_idempotence=False,
                        data_dir=self.data_dir)

    def _running(self, service: str, port: int) -> Running:
        url = f"sqlite+aiosqlite:///{self.data_dir / f'{service}.db'}"
        return Running(service, port, Supervised(
            service, lambda: _spawn(service, port, url, self.broker.bootstrap, self.data_dir,
                                    self.peer_urls), log_path=self.data_dir / f"{service}.log"))

    def _dashboard(self, department: Department, port: int) -> Running:
        return Running(f"dashboard {department.value}", port, Supervised(
            f"dashboard {department.value}",
            lambda: _spawn_dashboard(department, port, self.broker.bootstrap, self.data_dir),
            log_path=self.data_dir / f"dashboard-{department.value}.log"))

    def start_children(self) -> None:
        for running in self.children:
            running.child.launch()

    @property
    def children(self) -> list[Running]:
        """Everything supervised, dashboards first (they are stopped first)."""
        return [*self.dashboards, *self.services]

    def check(self) -> None:
        """One supervision step: restart what died (when its backoff is over), poll readiness."""
        self._check_broker()
        for running in self.children:
            if running.child.process is None:  # not started yet (the dashboards wait)
                continue
            if running.child.check(say):
                running.ready = False
            process = running.child.process
            if not running.ready and process is not None and process.poll() is None:
                running.ready = self._ready(running)
                if running.ready and running.ever_ready:
                    say(f"{running.service} is ready again")
                elif running.ready:
                    running.ever_ready = True
                    say(f"✓ {running.service} ready on {running.url} "
                        f"({time.monotonic() - running.child.started_at:.1f} s)")

    def _ready(self, running: Running) -> bool:
        try:  # a blocked service times out here: it is not ready, and that is all
            return self.http.get(f"{running.url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def _check_broker(self) -> None:
        now = time.monotonic()
        if self.broker_restart_at is None and not self.broker.alive():
            code = self.broker.process.returncode if self.broker.process is not None else None
            delay = self.broker_backoff.next_delay(now - self.broker_started_at)
            say(f"the broker exited with code {code}; restarting it on port {self.broker.port} "
                f"in {delay:.1f} s", style="bold red")
            self.broker_restart_at = now + delay
        if self.broker_restart_at is not None and now >= self.broker_restart_at:
            self.restart_broker()

    def restart_broker(self) -> None:
        """Start the broker again on its port; if the port stays taken, on a new one, loudly, and
        restart the services with the new address (they were given it in their environment)."""
        old = self.broker.port
        self.broker.stop()
        deadline = time.monotonic() + PORT_RELEASE_WAIT
        while not port_is_free(old) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not port_is_free(old):
            self.broker.port = free_port()
            say(f"!!! port {old} is taken by another program: the broker now listens on "
                f"{self.broker.bootstrap}; restarting every service with the new address !!!",
                style="bold red")
        self.broker_started_at, self.broker_restart_at = time.monotonic(), None
        try:
            self.broker.start()
        except (OSError, TimeoutError) as exc:
            delay = self.broker_backoff.next_delay(0)
            say(f"the broker did not start ({exc}); trying again in {delay:.1f} s", style="bold red")
            self.broker_restart_at = time.monotonic() + delay
            return
        create_topics(self.settings())
        say(f"broker restarted on {self.broker.bootstrap}", style="bold")
        if self.broker.port != old:
            started = [r for r in self.children if r.child.process is not None]
            stop_all([r.child.process for r in started if r.child.process is not None], RESTART_GRACE)
            for running in started:
                running.child.launch()
                running.ready = False

    def stop(self) -> None:
        """Services first (they flush to a broker that is still there), the broker last."""
        self.http.close()
        stop_all([r.child.process for r in self.children if r.child.process is not None], STOP_GRACE)
        self.broker.stop()


def create_topics(settings: Settings) -> None:
    """Create every topic; a failure is reported (the services' relays create them again)."""
    from shared.kafka import ensure_topics

    try:
        asyncio.run(asyncio.wait_for(ensure_topics(settings, settings.all_topics()), timeout=30))
    except Exception as exc:  # reported; the relays re-create topics themselves
        say(f"could not create the topics: {exc!r}", style="bold red")


def run(data_dir: Path, base_port: int, broker_port: int, ready_timeout: float = 60.0,
        demo: bool = False) -> int:
    """Run until interrupted; return the exit code."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = StopFlag()
    start_fork_server(PRELOAD)  # imports while the broker starts
    with phase("starting the broker"):
        broker = TansuBroker(_broker_port(broker_port), log_path=data_dir / "broker.log",
                             supervised=True).start()
    system = System(data_dir, base_port, broker)
    try:
        with phase("creating the topics"):
            create_topics(system.settings())
        with phase("starting the services (each migrates its database) and the dashboards"):
            system.start_children()
            deadline = time.monotonic() + ready_timeout
            while not stop.requested and not all(r.ready for r in system.children) \
                    and time.monotonic() < deadline:
                system.check()
                time.sleep(START_POLL)
        late = [r.service for r in system.children if not r.ready]
        if late:
            say(f"not ready after {ready_timeout:.0f} s: {', '.join(late)} (see their logs in "
                f"{data_dir}); the runner keeps them supervised", style="bold red")
        demo_line = _seed_demo(system, data_dir) if demo and not late and not stop.requested else None
        if not stop.requested:
            _print_summary(system, data_dir, demo_line)
        while not stop.requested:
            system.check()
            time.sleep(0.2)
        return 0
    finally:
        say("stopping …")
        system.stop()
        say("stopped")


def _seed_demo(system: System, data_dir: Path) -> str | None:
    if (data_dir / ".demo-seeded").exists():
        return "seeded before (delete data/.demo-seeded to seed again)"
    from shared.demo import seed

    try:
        with phase("seeding the demo"):
            counts = seed({r.service: r.url for r in system.services}, system.settings())
    except (httpx.HTTPError, KeyError, ValueError) as exc:  # a refused or unreadable answer
        say(f"the demo data could not be seeded ({type(exc).__name__}: {exc}); the system runs without it",
            style="bold red")
        return None
    (data_dir / ".demo-seeded").touch()
    return ", ".join(f"{n} {what}" for what, n in counts.items())


def _spawn(service: str, port: int, url: str, bootstrap: str, data_dir: Path,
           peer_urls: dict[str, str]) -> Child:
    """One service (``python -m shared.serve``); it migrates its database before it serves."""
    env = {**os.environ, "OTO_SERVICE": service, "OTO_PORT": str(port), "OTO_HOST": "127.0.0.1",
           "OTO_DATABASE_URL": url, "OTO_KAFKA_BOOTSTRAP": bootstrap,
           "OTO_KAFKA_IDEMPOTENCE": "false", "OTO_MIGRATE_ON_START": "true",
           "OTO_DATA_DIR": str(data_dir), "OTO_PEER_URLS": json.dumps(peer_urls), "OTO_ENV": "dev"}
    return fork("shared.serve:main", env=env, log_path=data_dir / f"{service}.log")


def _spawn_dashboard(department: Department, port: int, bootstrap: str, data_dir: Path) -> Child:
    """One department's dashboard (``python -m dashboard``), with the services' dev settings."""
    env = {**os.environ, "OTO_KAFKA_BOOTSTRAP": bootstrap, "OTO_KAFKA_IDEMPOTENCE": "false",
           "OTO_DATA_DIR": str(data_dir), "OTO_ENV": "dev"}
    return fork("dashboard.__main__:serve", department, host="127.0.0.1", port=port, rebuild=False,
                env=env, log_path=data_dir / f"dashboard-{department.value}.log")


def summary_rows(system: System, data_dir: Path, demo_line: str | None) -> list[tuple[str, ...]]:
    """The summary as rows of a plain table: what runs where, and the commands to use it."""
    rows: list[tuple[str, ...]] = [("service", "API", "docs", "log")]
    rows += [(r.service, f"{r.url}/v1", f"{r.url}/docs", str(data_dir / f"{r.service}.log"))
             for r in system.services]
    rows += [(r.service, f"{r.url}/", "log in: 'Log ind som udvikler'",
              str(data_dir / f"{r.service.replace(' ', '-')}.log")) for r in system.dashboards]
    rows.append(("broker", system.broker.bootstrap, "", str(data_dir / "broker.log")))
    if demo_line:
        rows.append(("demo", demo_line, "", ""))
    return rows


def _print_summary(system: System, data_dir: Path, demo_line: str | None) -> None:
    rows = summary_rows(system, data_dir, demo_line)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    commands = [("dev token", ".venv/bin/oto token --role team_staff --site gellerup"),
                ("follow a topic", ".venv/bin/oto subscribe sundhed-og-omsorg --from-beginning"),
                ("stop", "Ctrl-C")]
    lines += [""] + [f"{what.ljust(15)} {command}" for what, command in commands]
    console.print("\nOpgang til Opgang — embedded\n" + "\n".join(lines) + "\n", soft_wrap=True,
                  markup=False)
