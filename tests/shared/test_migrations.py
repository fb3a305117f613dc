"""Every service's migrations upgrade from empty to head, round-trip, and match the models."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shared import migrations
from shared.db import make_engine
from shared.settings import SERVICES
from shared.tables import plumbing_metadata


def _service_metadata(service: str):
    import importlib

    return importlib.import_module(f"services.{service}.models").metadata


async def _diff_and_tables(url: str, service: str) -> tuple[list, set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            def inspect_sync(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                diff = compare_metadata(context, [_service_metadata(service), plumbing_metadata])
                return diff, set(inspect(sync_conn).get_table_names())
            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_reach_head_round_trip_and_match_the_models(
        service: str, database_url: str) -> None:
    await migrations.upgrade(service, database_url)
    engine = make_engine(database_url)
    assert await migrations.current_revision(engine) == migrations.head_revision(service)
    await engine.dispose()
    diff, tables = await _diff_and_tables(database_url, service)
    assert diff == [], f"models and migrations of {service} differ: {diff}"
    assert {"outbox", "inbox", "idempotency_keys", "audit_log"} <= tables
    config = migrations.alembic_config(service, database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
    _, tables_again = await _diff_and_tables(database_url, service)
    assert tables_again == tables
