"""Async database helpers: engine per service, a session per request, dialect-neutral upserts."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import Column, DateTime, Dialect, TypeDecorator, bindparam, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.schema import Table
from sqlalchemy.util import greenlet_spawn


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """PostgreSQL via asyncpg, SQLite via aiosqlite (WAL, foreign keys, a busy timeout)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: on asyncpg it is BEGIN; `;`; ROLLBACK — three round trips on every checkout,
    # more than a typical read costs. A connection the server dropped fails its first statement
    # instead; SQLAlchemy then invalidates it and every older connection of the pool, the request
    # answers 503 (``is_outage``) and the next one reconnects (tests/faults/test_database_restart.py).
    # Connections are recycled hourly so none outlives a server-side idle timeout unnoticed.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 3600)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """``info`` travels with every session (the outbox keeps its relay wake-up there)."""
    return async_sessionmaker(engine, expire_on_commit=False, info=dict(info or {}))


def is_postgres(session_or_engine: AsyncSession | AsyncEngine) -> bool:
    if isinstance(session_or_engine, AsyncSession):
        return session_or_engine.get_bind().dialect.name == "postgresql"
    return session_or_engine.dialect.name == "postgresql"


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], *,
                      same: Mapping[str, Any] | None = None, update: Sequence[str] = (),
                      returning: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """Insert many rows with one statement; a row whose primary key exists is skipped, or, with
    ``update``, has those columns overwritten (the rest keep the first writer's values).

    This is what a batch of projection events costs one round trip for. On PostgreSQL the rows
    travel as one array per column into ``INSERT … SELECT FROM unnest(…)``: the statement's text is
    the same for any number of rows, so it is compiled and prepared once, and the server runs one
    statement instead of one per row. On SQLite (the embedded default) it is one ``executemany``.
    Every row names the same columns; ``same`` gives columns whose value is the same in every
    row (sent once, not once per row). Rows with the same key are merged first, in order, as
    one statement per row in sequence would have left them (PostgreSQL refuses to update a row
    twice in one statement). ``returning`` names columns of the rows really written, which come
    back as tuples (on PostgreSQL as one array per column: one result row, not one per row).
    """
    if not rows:
        return []
    same = same or {}
    postgres = is_postgres(session)
    if not postgres and same:
        rows = [{**row, **same} for row in rows]
        same = {}
    rows = _merge_same_key(table, rows, update) if update else rows
    columns = tuple(rows[0])
    statement = _insert_statement(table, columns, tuple(same), tuple(update), tuple(returning), postgres)
    if postgres:
        parameters: Any = {column: [row[column] for row in rows] for column in columns}
        parameters.update(same)
    else:
        parameters = list(rows)
    result = await session.execute(statement, parameters)
    if not returning:
        return []
    if postgres:
        arrays = result.one()
        return list(zip(*arrays, strict=True)) if arrays[0] is not None else []
    return [tuple(row) for row in result]


_InsertShape = tuple[Table, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]
_INSERTS: dict[_InsertShape, Executable] = {}


def _insert_statement(table: Table, columns: tuple[str, ...], same: tuple[str, ...], update: tuple[str, ...],
                      returning: tuple[str, ...], postgres: bool) -> Executable:
    """Built once per shape, so SQLAlchemy's compiled cache and asyncpg's prepared statements hit."""
    key = (table, columns, same, update, returning, postgres)
    if (statement := _INSERTS.get(key)) is None:
        insert: Any
        if postgres:
            arrays = [bindparam(c, type_=ARRAY(table.c[c].type)) for c in columns]
            source = func.unnest(*arrays).table_valued(*columns).render_derived(name="batch")
            values = [*(source.c[c] for c in columns), *(bindparam(c, type_=table.c[c].type) for c in same)]
            insert = pg_insert(table).from_select([*columns, *same], select(*values))
        else:
            insert = sqlite_insert(table)
        if update:
            primary_key = [c.name for c in table.primary_key]
            statement = insert.on_conflict_do_update(
                index_elements=primary_key, set_={c: insert.excluded[c] for c in update})
        else:
            statement = insert.on_conflict_do_nothing()
        if returning:
            statement = statement.returning(*(table.c[c] for c in returning))
            if postgres:
                written = statement.cte("written")
                statement = select(*(func.array_agg(written.c[c]) for c in returning))
        _INSERTS[key] = statement
    return statement


def _merge_same_key(table: Table, rows: Sequence[Mapping[str, Any]],
                    update: Sequence[str]) -> list[Mapping[str, Any]]:
    """One row per primary key: the first row's values, overwritten by each later row's ``update``."""
    primary_key = [c.name for c in table.primary_key]
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(c) for c in primary_key)  # a column in ``same`` is equal in all rows
        if (earlier := merged.get(key)) is None:
            merged[key] = dict(row)
        else:
            earlier.update({c: row[c] for c in update})
    return list(merged.values())


def open_session(request: Request) -> AsyncSession:
    """A session for this request's service (``async with``): anything uncommitted is rolled back."""
    return request.app.state.sessionmaker()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; a use case commits, anything uncommitted is rolled back."""
    async with open_session(request) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


class Statement:
    """One SQL statement run on PostgreSQL as the driver's own prepared statement (asyncpg caches
    it per connection), for the hot reads (``fetch_autocommit``)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql


async def fetch_autocommit(engine: AsyncEngine, statement: Statement, *args: Any) -> Sequence[Any]:
    """Run one statement in autocommit on a connection of the engine's pool, driver to driver.

    Why: ``AsyncSession.execute`` costs a greenlet hand-off per statement, the session's
    transaction bookkeeping and SQLAlchemy's result processing — about half of a read's CPU,
    more than PostgreSQL's own work. The hot reads (the team view, the household list, the
    department slice) are each one statement whose audit entry is written by the same statement
    (``WITH entry AS (INSERT …) SELECT …``) or by one more autocommit statement, so they need
    no transaction: a single statement is atomic, and with no ``BEGIN`` none can be left open
    when the connection goes back to the pool. The connection is the pool's, so the pool's size,
    recycling and invalidation apply; SQLAlchemy's dialect has set its JSON codecs on it, so JSON
    columns come back decoded. Errors are raised as SQLAlchemy's (``DBAPIError`` and its
    subclasses), which the error handlers answer (503 for an unreachable or refusing database).
    A connection that failed in the driver, or whose statement was cancelled, is discarded
    rather than pooled: its state is unknown."""
    async with _read_gate(engine):
        return await _fetch(engine, statement, args)


#: One gate per engine in front of its pool for ``fetch_autocommit`` (see ``_read_gate``).
_READ_GATES: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _read_gate(engine: AsyncEngine) -> asyncio.Semaphore:
    """At most the pool's own size of reads at once, first come first served.

    Under more concurrent requests than connections (64 against a pool of 20 + 20 overflow) the
    pool let a returned connection go to whichever request asked next, so a request woken for it
    could lose it again and again (measured in-process: p99 7.9 s, the longest wait the whole
    run), and every overflow connection was closed on return and opened again for the next
    (20 new connections in 8 s). A FIFO semaphore (asyncio's is fair) of the pool's size keeps
    the reads on the persistent connections and serves them in order; a one-statement read
    holds its connection for one round trip, so that many saturate a worker."""
    gate = _READ_GATES.get(engine)
    if gate is None:
        size = getattr(engine.sync_engine.pool, "size", lambda: 5)()
        gate = _READ_GATES[engine] = asyncio.Semaphore(max(1, size))
    return gate


async def _fetch(engine: AsyncEngine, statement: Statement, args: tuple[Any, ...]) -> Sequence[Any]:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        fairy = await greenlet_spawn(engine.sync_engine.raw_connection)
    except dbapi_error as error:  # as a session's checkout raises it
        raise DBAPIError.instance(None, None, error, dbapi_error, connection_invalidated=True) from error
    driver: asyncpg.Connection = fairy.driver_connection
    lost: BaseException | None = None
    try:
        return await driver.fetch(statement.sql, *args)
    except asyncpg.PostgresError as error:  # the server refused the statement, or went away
        lost = error if driver.is_closed() else None
        raise _as_dbapi_error(statement, error, invalidated=lost is not None) from error
    except (asyncpg.InterfaceError, OSError) as error:
        lost = error
        raise _as_dbapi_error(statement, error, invalidated=True) from error
    except BaseException:  # cancelled mid-statement: the connection's state is unknown
        await greenlet_spawn(fairy.invalidate)
        raise
    finally:
        if lost is not None:
            # As SQLAlchemy does on a disconnect: this connection and every older one of the
            # pool are replaced on their next checkout (the server that dropped one dropped all).
            await greenlet_spawn(engine.sync_engine.pool._invalidate, fairy, lost)
        await greenlet_spawn(fairy.close)


class _DriverError(Exception):
    """The driver's error with its SQLSTATE, where SQLAlchemy's own wrapping puts them."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.sqlstate = self.pgcode = getattr(error, "sqlstate", None)


def _as_dbapi_error(statement: Statement, error: Exception, *, invalidated: bool) -> DBAPIError:
    """The error as SQLAlchemy raises it for a statement run through the session (a data error,
    an integrity error, or any other database error), so one set of handlers answers both."""
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    kind = {"22": DataError, "23": IntegrityError}.get(sqlstate[:2], DBAPIError)
    return kind(statement.sql, None, _DriverError(error), connection_invalidated=invalidated)


def utcnow() -> datetime:
    """Now, timezone-aware UTC (all stored times are)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always read back timezone-aware.

    PostgreSQL keeps the offset itself; SQLite keeps none, so a plain ``DateTime(timezone=True)``
    stores an aware time's wall clock (another offset would be a different instant) and reads
    it back naive, and an API would then answer ``2026-01-01T10:00:00`` where its schema (and
    RFC 3339) promises an offset. Converting to UTC on the way in and attaching UTC on the way
    out makes both databases behave alike.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utc_column(nullable: bool = False) -> Column:
    """A timezone-aware timestamp column for SQLModel fields (``sa_column=utc_column()``)."""
    return Column(UTCDateTime(), nullable=nullable)


#: SQLSTATE classes meaning the database is away rather than the statement wrong: connection
#: exception, insufficient resources, operator intervention (shutdown, cannot connect now).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})


def is_outage(error: BaseException) -> bool:
    """The database cannot be reached right now: a caller retries later (or answers 503); the
    request or message itself is not at fault and must not be dead-lettered or refused for good.

    asyncpg raises its own errors while connecting (SQLAlchemy wraps only statements' errors),
    so the SQLSTATE is read from either."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    cause = error.orig if isinstance(error, DBAPIError) else error
    sqlstate = str(getattr(cause, "sqlstate", "") or "")
    if sqlstate:
        return sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
    return isinstance(error, OperationalError | InterfaceError | ConnectionError | OSError | TimeoutError)


def signal_after_commit(flag_key: str, callback_key: str) -> None:
    """After a commit of a session whose ``info`` has ``flag_key`` set, call the callable its
    ``info`` holds under ``callback_key`` (if any); a rollback clears the flag. The one way a
    write tells an in-process listener that it is durable now (the outbox relay, a dashboard's
    live pages), without the listener polling."""

    @event.listens_for(Session, "after_commit")
    def _signal(session: Session) -> None:
        if session.info.pop(flag_key, False):
            callback = session.info.get(callback_key)
            if callback is not None:
                callback()

    @event.listens_for(Session, "after_soft_rollback")
    def _forget(session: Session, _previous: Any) -> None:
        session.info.pop(flag_key, None)
