"""Alembic for every service: one env (``shared/alembic``), per-service version folders.

Each service's tables are in ``services.<name>.models.metadata``; the plumbing tables
(``shared.tables``) are migrated with them into the service's own database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

import shared

ROOT = Path(shared.__file__).resolve().parent.parent


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "shared" / "alembic"))
    config.set_main_option("version_locations", str(ROOT / "services" / service / "migrations"))
    config.set_main_option("path_separator", "os")
    config.attributes["service"] = service
    config.attributes["url"] = url
    return config


def upgrade_sync(service: str, url: str, revision: str = "head") -> None:
    _ensure_sqlite_folder(url)
    command.upgrade(alembic_config(service, url), revision)


async def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Run in a thread: alembic drives its own event loop for the async engine."""
    await asyncio.to_thread(upgrade_sync, service, url, revision)


def head_revision(service: str) -> str | None:
    script = ScriptDirectory.from_config(alembic_config(service, "sqlite://"))
    return script.get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def _ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
