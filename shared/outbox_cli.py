"""``oto republish`` and ``oto outbox …``: the operator's outbox commands, on a service's database.

They work on the database named by ``OTO_DATABASE_URL`` (or the service's embedded SQLite file)
and need no running service: the service's relay notices the queued rows within its poll
interval. Registered in ``shared.cli``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from shared.settings import ServiceName, Settings

if TYPE_CHECKING:  # imported by every `oto` command (`oto run` too): SQLAlchemy only when used
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
outbox_app = typer.Typer(help="A service's outbox: parked events.", no_args_is_help=True,
                         epilog="Example: oto outbox parked intake")
ServiceArg = Annotated[ServiceName, typer.Argument(help="The service whose outbox (its OTO_DATABASE_URL).")]


def _in_session(service: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from shared.db import make_engine, make_sessionmaker

    async def run() -> T:
        engine = make_engine(Settings(service=service).resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _operator() -> Any:
    from shared.auth import Principal, Role

    return Principal(subject=f"cli:{getpass.getuser()}", role=Role.ADMIN, client="oto-cli")


def republish(
    service: ServiceArg,
    since: Annotated[datetime | None, typer.Option(
        help="Only events that occurred at or after this time (ISO 8601, UTC if no offset).")] = None,
) -> None:
    """Re-publish a service's kept outbox in order (disaster recovery: a rebuilt or emptied broker)."""
    from shared.outbox import requeue_published

    moment = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    count = _in_session(service, lambda session: requeue_published(session, since=moment))
    typer.echo(f"{service}: {count} events queued for re-publishing")


@outbox_app.command("parked", epilog="Example: oto outbox parked intake")
def parked(service: ServiceArg) -> None:
    """List the events the relay parked (one JSON object per line)."""
    from shared.outbox_admin import list_parked

    for event in _in_session(service, list_parked):
        typer.echo(json.dumps(event.model_dump(mode="json")))


@outbox_app.command("retry", epilog="Example: oto outbox retry intake 3f2b…-event-id")
def retry(service: ServiceArg, event_id: str) -> None:
    """Queue a parked event again once its cause is fixed."""
    from shared.outbox_admin import retry_parked

    action = _in_session(service, lambda session: retry_parked(session, event_id=event_id))
    typer.echo(json.dumps(action.model_dump()))


@outbox_app.command("discard", epilog="Example: oto outbox discard intake 3f2b…-event-id")
def discard(service: ServiceArg, event_id: str) -> None:
    """Never publish a parked event (written to the audit log with your user name)."""
    from shared.outbox_admin import discard_parked

    action = _in_session(service, lambda session: discard_parked(
        session, event_id=event_id, principal=_operator(), endpoint="oto outbox discard"))
    typer.echo(json.dumps(action.model_dump()))


def register(app: typer.Typer) -> None:
    """Add these commands to the ``oto`` command."""
    app.command("republish", epilog="Example: oto republish intake --since 2026-11-28T00:00:00Z")(republish)
    app.add_typer(outbox_app, name="outbox")
