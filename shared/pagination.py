"""Cursor (keyset) pagination: an opaque cursor, a capped page size, no OFFSET scans."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.errors import Unprocessable
from shared.screening import UNSAFE_TEXT

T = TypeVar("T")
MAX_PAGE_SIZE = 200

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size (at most 200).")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(str(value)).encode()).decode().rstrip("=")


def _invalid_cursor() -> Unprocessable:
    return Unprocessable("The cursor is not valid.", fields={"query.cursor": "invalid"})


def decode_cursor(cursor: str) -> str:
    """The position a cursor holds. A cursor is opaque but comes from the caller, so anything
    else (another JSON value, text the database cannot store) is 422, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _invalid_cursor() from None
    if not isinstance(value, str) or UNSAFE_TEXT.search(value):
        raise _invalid_cursor()
    return value


def cursor_key(cursor: str, parse_key: Callable[[str], Any] = str) -> Any:
    """The key a cursor holds, parsed; 422 for anything that is not one."""
    try:
        return parse_key(decode_cursor(cursor))
    except (ValueError, TypeError, ArithmeticError):
        raise _invalid_cursor() from None  # valid base64 of a string that is no key


def bigint_key(text: str) -> int:
    """A cursor's key that is a BIGINT id: ASCII digits only (``"¹".isdigit()`` is true, and
    ``int("¹")`` raises), and within BIGINT (the database would refuse the comparison: a 503)."""
    if not (text.isascii() and text.isdigit()) or int(text) > 2**63 - 1:
        raise ValueError("not a BIGINT id")
    return int(text)


async def paginate(
    session: AsyncSession, query: Select[Any], *, key: InstrumentedAttribute[Any],
    cursor: str | None, limit: int, convert: Callable[[Any], T],
    parse_key: Callable[[str], Any] = str,
) -> Page[T]:
    """Order by the unique ``key`` column and start after the cursor's key."""
    if cursor is not None:
        query = query.where(key > cursor_key(cursor, parse_key))
    rows: Sequence[Any] = (await session.execute(query.order_by(key).limit(limit + 1))).scalars().all()
    items = list(rows[:limit])
    next_cursor = encode_cursor(getattr(items[-1], key.key)) if len(rows) > limit else None
    return Page[T](items=[convert(item) for item in items], next_cursor=next_cursor)
