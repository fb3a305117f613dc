"""Builds one department's dashboard app: the state file, the fold's consumer, the web views."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard import tables as t
from dashboard.fold import department_subscription
from dashboard.live import Changes, notify_info
from shared.auth import TokenVerifier
from shared.db import make_engine, make_sessionmaker
from shared.departments import Department
from shared.inbox import EventConsumer
from shared.observability import configure_logging
from shared.settings import Settings

SHUTDOWN_SECONDS = 10


def state_path(settings: Settings, department: Department) -> Path:
    """The default state file: ``<data dir>/dashboard-<department>.db``."""
    return settings.data_dir / f"dashboard-{department.value}.db"


def remove_state(path: Path) -> None:
    """Forget the state (``--rebuild``): the next start folds the topic from the beginning."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def open_state(path: Path) -> tuple[AsyncEngine, str]:
    """Open (or create) the state file; return the engine and the fold's generation.

    A file of another schema version is rebuilt: it is only a fold of the topic.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        async with engine.begin() as conn:
            await conn.run_sync(t.metadata.create_all)
            found = dict((await conn.execute(select(t.meta.c.key, t.meta.c.value))).tuples().all())
            if not found:
                found = {"schema": t.SCHEMA_VERSION, "generation": secrets.token_hex(4)}
                await conn.execute(t.meta.insert(), [{"key": k, "value": v} for k, v in found.items()])
        if found.get("schema") == t.SCHEMA_VERSION:
            return engine, found["generation"]
        await engine.dispose()
        remove_state(path)
    raise RuntimeError(f"cannot open the dashboard state at {path}")


def create_app(settings: Settings, department: Department, path: Path | None = None) -> FastAPI:
    from dashboard.web import install_routes

    configure_logging(settings.log_level, settings.log_json)
    path = path or state_path(settings, department)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, generation = await open_state(path)
        changes = Changes()
        sessionmaker = make_sessionmaker(engine, notify_info(changes))
        consumer = EventConsumer(settings=settings, subscription=department_subscription(
            settings, department, generation), sessionmaker=sessionmaker)
        task = asyncio.create_task(consumer.run(), name=f"dashboard-{department.value}")
        app.state.engine, app.state.sessionmaker = engine, make_sessionmaker(engine)
        app.state.changes, app.state.consumer, app.state.task = changes, consumer, task
        try:
            yield
        finally:
            changes.close()
            await consumer.stop()
            done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_SECONDS)
            if not done:
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task
            await engine.dispose()

    app = FastAPI(title=f"Dashboard — {department.danish_name}", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.settings, app.state.department = settings, department
    app.state.token_verifier = TokenVerifier(settings)
    install_routes(app)
    return app
