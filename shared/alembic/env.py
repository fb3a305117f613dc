"""Alembic environment shared by all services (the service and URL come from the config)."""

import asyncio
import importlib

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shared.db import make_engine
from shared.tables import plumbing_metadata

config = context.config
service = config.attributes["service"]
url = config.attributes["url"]
service_metadata = importlib.import_module(f"services.{service}.models").metadata
target_metadata = [service_metadata, plumbing_metadata]
# Serialises concurrent upgrades (several replicas starting at once) on PostgreSQL.
MIGRATION_LOCK = 727_001


def _configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection, url=None if connection is not None else url,
        target_metadata=target_metadata, render_as_batch=url.startswith("sqlite"),
        compare_type=True, literal_binds=connection is None,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        context.run_migrations()


async def _run_online() -> None:
    engine = make_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
