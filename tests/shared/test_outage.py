"""Which database errors mean "the database is away" (retry, 503) and which are the caller's."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shared.db import is_outage


def _wrapped(orig: Exception, kind: type[DBAPIError] = DBAPIError, **kwargs: bool) -> DBAPIError:
    return kind("SELECT 1", {}, orig, **kwargs)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
    _wrapped(asyncpg.exceptions.AdminShutdownError("terminating")),
    _wrapped(Exception("socket gone"), connection_invalidated=True),
    _wrapped(Exception("database is locked"), OperationalError),
], ids=lambda e: type(e).__name__)
def test_an_unreachable_database_is_an_outage(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize("error", [
    _wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key"), IntegrityError),
    _wrapped(asyncpg.exceptions.UndefinedTableError("no such table")),
    asyncpg.exceptions.NumericValueOutOfRangeError("out of range"),
    ValueError("a bug"),
], ids=lambda e: type(e).__name__)
def test_a_statement_the_database_refuses_is_not_an_outage(error: BaseException) -> None:
    assert not is_outage(error)
