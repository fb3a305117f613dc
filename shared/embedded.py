"""The embedded default: the whole system on one machine, no Docker.

Starts a tansu broker on loopback, creates the topics, migrates one SQLite file per service,
starts the four services and one dashboard per department (``DASHBOARD_PORT_OFFSET`` above the
services' ports) as child processes, waits until each is ready, and stops everything on Ctrl-C
(SIGINT) or SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from shared import migrations
from shared.broker import TansuBroker, free_port
from shared.departments import Department
from shared.kafka import ensure_topics
from shared.settings import SERVICES, Settings

console = Console()
#: Dashboards listen on base port + this + 0..3 (8011–8014 by default), in ``Department`` order.
DASHBOARD_PORT_OFFSET = 10


@dataclass
class Running:
    service: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _broker_port(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def run(data_dir: Path, base_port: int, broker_port: int, ready_timeout: float = 60.0,
        demo: bool = False) -> int:
    """Run until interrupted; return the exit code."""
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = TansuBroker(_broker_port(broker_port), log_path=data_dir / "broker.log").start()
    children: list[Running] = []
    stop_requested = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        settings = Settings(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False,
                            data_dir=data_dir)
        asyncio.run(ensure_topics(settings, settings.all_topics()))
        for offset, service in enumerate(SERVICES):
            url = f"sqlite+aiosqlite:///{data_dir / f'{service}.db'}"
            migrations.upgrade_sync(service, url)
            children.append(_spawn(service, base_port + offset, url, broker.bootstrap, data_dir))
        _wait_ready(children, ready_timeout)
        # The dashboards start once the services are up, so they do not slow the services' start.
        dashboards = [_spawn_dashboard(department, base_port + DASHBOARD_PORT_OFFSET + offset,
                                       broker.bootstrap, data_dir)
                      for offset, department in enumerate(Department)]
        children += dashboards
        _wait_ready(dashboards, ready_timeout)
        if demo and not (data_dir / ".demo-seeded").exists():
            from shared.demo import seed

            counts = seed({c.service: c.url for c in children}, settings)
            (data_dir / ".demo-seeded").touch()
            console.print(f"demo data: {counts}")
        _print_table(children, broker.bootstrap)
        while not stop_requested:
            if any(child.process.poll() is not None for child in children):
                console.print("[red]a service stopped unexpectedly; shutting down[/red]")
                return 1
            time.sleep(0.2)
        return 0
    finally:
        console.print("stopping …")
        for child in children:
            child.process.terminate()
        for child in children:
            try:
                child.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                child.process.kill()
        broker.stop()
        console.print("stopped")


def _spawn(service: str, port: int, url: str, bootstrap: str, data_dir: Path) -> Running:
    env = {**os.environ, "OTO_SERVICE": service, "OTO_PORT": str(port), "OTO_HOST": "127.0.0.1",
           "OTO_DATABASE_URL": url, "OTO_KAFKA_BOOTSTRAP": bootstrap,
           "OTO_KAFKA_IDEMPOTENCE": "false", "OTO_MIGRATE_ON_START": "false",
           "OTO_DATA_DIR": str(data_dir)}
    log = open(data_dir / f"{service}.log", "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen([sys.executable, "-m", "shared.serve"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    return Running(service, port, process)


def _spawn_dashboard(department: Department, port: int, bootstrap: str, data_dir: Path) -> Running:
    """One department's dashboard (``python -m dashboard``), with the services' dev settings."""
    env = {**os.environ, "OTO_KAFKA_BOOTSTRAP": bootstrap, "OTO_KAFKA_IDEMPOTENCE": "false",
           "OTO_DATA_DIR": str(data_dir)}
    log = open(data_dir / f"dashboard-{department.value}.log", "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen([sys.executable, "-m", "dashboard", department.value, "--port", str(port),
                                "--host", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return Running(f"dashboard {department.value}", port, process)


def _wait_ready(children: list[Running], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = {child.service: child for child in children}
    with httpx.Client(timeout=2) as client:
        while waiting and time.monotonic() < deadline:
            for name, child in list(waiting.items()):
                if child.process.poll() is not None:
                    raise RuntimeError(f"{name} exited; see its log in the data folder")
                try:
                    if client.get(f"{child.url}/readyz").status_code == 200:
                        del waiting[name]
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
    if waiting:
        raise RuntimeError(f"not ready after {timeout}s: {', '.join(waiting)}")


def _print_table(children: list[Running], bootstrap: str) -> None:
    table = Table(title="Opgang til Opgang — embedded")
    for column in ("service", "API", "docs"):
        table.add_column(column)
    for child in children:
        if child.service.startswith("dashboard "):
            table.add_row(child.service, f"{child.url}/", "log in: 'Log ind som udvikler'")
        else:
            table.add_row(child.service, f"{child.url}/v1", f"{child.url}/docs")
    console.print(table)
    console.print(f"broker: {bootstrap}   dev token: [bold].venv/bin/oto token --role team_staff "
                  "--site gellerup[/bold]   stop: Ctrl-C")
