"""Real parts for tests: a Kafka-protocol broker, a PostgreSQL server, SQLite files.

Broker: ``OTO_TEST_KAFKA_BOOTSTRAP`` if set; else Kafka via testcontainers when a Docker engine
answers; else a tansu process for the session. PostgreSQL: ``OTO_TEST_POSTGRES_URL`` (a server
where databases may be created) if set; else testcontainers; else the local server on
127.0.0.1:5432. Nothing here skips: if no fallback works, the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.broker import TansuBroker
from tests.support import Broker, run_admin_sql

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

#: Tests that run a whole system (the runner's eight processes and a broker) or kill and restart
#: brokers and databases: ``./test.sh`` runs the suite in several pytest workers (most tests wait
#: on a broker most of the time), and these go one after another in one of them, so two whole
#: systems never compete for the two cores while a test waits for one to be ready.
WHOLE_SYSTEM = ("tests/e2e/", "tests/faults/")
#: Tests that drive chromium: one after another too (each browser is a handful of processes).
BROWSER = ("tests/dashboard/test_browser.py", "tests/casework/test_steering_report_browser.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the groups above for ``pytest-xdist --dist loadgroup`` (no effect without xdist)."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith(WHOLE_SYSTEM):
            item.add_marker(pytest.mark.xdist_group("whole-system"))
        elif path.startswith(BROWSER):
            item.add_marker(pytest.mark.xdist_group("browser"))


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if bootstrap := os.environ.get("OTO_TEST_KAFKA_BOOTSTRAP"):
        yield Broker(bootstrap, os.environ.get("OTO_TEST_KAFKA_IDEMPOTENCE", "true") == "true")
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield Broker(kafka.get_bootstrap_server(), True)
        return
    tansu = TansuBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    try:
        yield Broker(tansu.bootstrap, False)
    finally:
        tansu.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A libpq URL of a server where the tests may create databases."""
    if url := os.environ.get("OTO_TEST_POSTGRES_URL"):
        yield url
        return
    if _docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as pg:
            yield pg.get_connection_url()
        return
    yield LOCAL_POSTGRES


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A throwaway database for one test, dropped afterwards; an asyncpg SQLAlchemy URL."""
    name = f"oto_test_{uuid.uuid4().hex[:12]}"
    run_admin_sql(postgres_server, f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    run_admin_sql(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite (the embedded path) and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))
