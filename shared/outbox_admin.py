"""Operators' hand on the outbox: list parked rows, retry or discard one, re-publish a period.

The same functions serve the admin API (``/v1/outbox/...``, admin only) and the ``oto`` command.
Discarding an event means a consumer will never learn of it, so it is written to the audit log
with who did it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import record_access
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.errors import Conflict, NotFound
from shared.outbox import PENDING_KEY
from shared.tables import outbox

#: Parked rows listed at most (there should be a handful; each holds its key).
MAX_LISTED = 500


class ParkedEvent(BaseModel):
    """A row the relay set aside, why, and how many later rows of its key wait behind it."""

    event_id: str
    event_type: str
    partition_key: str
    occurred_at: datetime
    parked_at: datetime
    reason: str | None
    held: int


class ParkedAction(BaseModel):
    event_id: str
    status: Literal["queued", "discarded"]


def _parked() -> Any:
    return (outbox.c.parked_at.isnot(None), outbox.c.discarded_at.is_(None),
            outbox.c.published_at.is_(None))


async def list_parked(session: AsyncSession) -> list[ParkedEvent]:
    """The parked rows in id order, each with the count of rows held behind it."""
    rows = (await session.execute(select(outbox).where(*_parked()).order_by(outbox.c.id)
                                  .limit(MAX_LISTED))).all()
    result = []
    for row in rows:
        held = (await session.execute(select(func.count()).where(
            outbox.c.partition_key == row.partition_key, outbox.c.published_at.is_(None),
            outbox.c.parked_at.is_(None), outbox.c.discarded_at.is_(None)))).scalar_one()
        result.append(ParkedEvent(event_id=row.event_id, event_type=row.event_type,
                                  partition_key=row.partition_key, occurred_at=row.occurred_at,
                                  parked_at=row.parked_at, reason=row.parked_reason, held=int(held)))
    return result


async def _parked_row(session: AsyncSession, event_id: str) -> Any:
    row = (await session.execute(select(outbox).where(outbox.c.event_id == event_id)
                                 .with_for_update())).first()
    if row is None:
        raise NotFound("No such event in this service's outbox.")
    if row.parked_at is None or row.discarded_at is not None or row.published_at is not None:
        raise Conflict("The event is not parked.")
    return row


async def retry_parked(session: AsyncSession, *, event_id: str) -> ParkedAction:
    """Queue a parked row again (after its cause is fixed); the caller commits."""
    await _parked_row(session, event_id)
    await session.execute(update(outbox).where(outbox.c.event_id == event_id)
                          .values(parked_at=None, parked_reason=None))
    session.info[PENDING_KEY] = True  # the commit wakes the relay
    return ParkedAction(event_id=event_id, status="queued")


async def discard_parked(session: AsyncSession, *, event_id: str, principal: Principal,
                         endpoint: str) -> ParkedAction:
    """Give up on a parked row: it is never published, its key's later rows flow. Audited and
    committed."""
    row = await _parked_row(session, event_id)
    await session.execute(update(outbox).where(outbox.c.event_id == event_id)
                          .values(discarded_at=datetime.now(UTC)))
    session.info[PENDING_KEY] = True
    # The key names the family for family events (a budget's id otherwise); the entry names it so
    # "what happened to this family's events" finds the discard.
    await record_access(session, principal, families=[row.partition_key], endpoint=endpoint,
                        purpose=f"discard parked event {event_id} ({row.event_type})"[:200])
    return ParkedAction(event_id=event_id, status="discarded")


AdminOnly = Depends(require_roles(Role.ADMIN))


def outbox_router() -> APIRouter:
    router = APIRouter(prefix="/v1/outbox", tags=["operations"])

    @router.get("/parked", response_model=list[ParkedEvent],
                summary="Events the relay cannot publish, with their reason (admin)")
    async def parked(session: SessionDep, principal: Principal = AdminOnly) -> list[ParkedEvent]:
        return await list_parked(session)

    @router.post("/parked/{event_id}/retry", response_model=ParkedAction,
                 summary="Queue a parked event again once its cause is fixed (admin)")
    async def retry(event_id: str, session: SessionDep, principal: Principal = AdminOnly) -> ParkedAction:
        action = await retry_parked(session, event_id=event_id)
        await session.commit()
        return action

    @router.post("/parked/{event_id}/discard", response_model=ParkedAction,
                 summary="Never publish a parked event; later events of its key flow (admin, audited)")
    async def discard(event_id: str, request: Request, session: SessionDep,
                      principal: Principal = AdminOnly) -> ParkedAction:
        return await discard_parked(session, event_id=event_id, principal=principal,
                                    endpoint=f"{request.method} {request.url.path}")

    return router
