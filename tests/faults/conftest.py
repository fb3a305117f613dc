"""Fixtures for the fault-injection tests: extra databases, a PostgreSQL instance of a test's own.

The session's broker and PostgreSQL server (``tests/conftest.py``) are shared with every other
test, so nothing here stops them: a test that crashes a broker starts a dedicated tansu, and a
test that stops the database server gets a dedicated instance (``dedicated_postgres``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.faults.postgres_instance import PostgresInstance
from tests.support import run_admin_sql


@pytest.fixture
def new_database(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Make throwaway databases on the shared server (several per test); all dropped afterwards."""
    made: list[str] = []
    base = postgres_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)

    def make() -> str:
        name = f"oto_fault_{uuid.uuid4().hex[:12]}"
        run_admin_sql(postgres_server, f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{base}/{name}"

    yield make
    for name in made:
        run_admin_sql(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def dedicated_postgres() -> Iterator[PostgresInstance]:
    """A running PostgreSQL instance of this test alone; stopped and deleted afterwards."""
    instance = PostgresInstance()
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.remove()
