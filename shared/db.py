"""Async database helpers: engine per service, a session per request, dialect-neutral upserts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Column, DateTime, Dialect, TypeDecorator, bindparam, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Executable
from sqlalchemy.sql.schema import Table


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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; a use case commits, anything uncommitted is rolled back."""
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


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
