"""The audit log of personal-data reads: who, which system, when, whom, why, and the outcome.

An entry is written and committed before the data leaves the service; if it cannot be written
the read fails. Denied reads are logged too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shared import observability as obs
from shared.auth import Principal
from shared.errors import Forbidden, NotFound
from shared.tables import audit_log

SubjectKind = Literal["person", "family", "referral"]


async def record_read(
    session: AsyncSession, principal: Principal, *, subject_kind: SubjectKind,
    subject_id: UUID | str, endpoint: str, purpose: str, allowed: bool = True,
) -> None:
    """Append one entry and commit it (callers read before, return after)."""
    await record_reads(session, principal, subject_kind=subject_kind, subject_ids=[subject_id],
                       endpoint=endpoint, purpose=purpose, allowed=allowed)


async def record_reads(
    session: AsyncSession, principal: Principal, *, subject_kind: SubjectKind,
    subject_ids: list[UUID] | list[str] | list[UUID | str], endpoint: str, purpose: str,
    allowed: bool = True,
) -> None:
    """One entry per subject read (a list shows many), committed together."""
    at, correlation = datetime.now(UTC), obs.correlation_id.get()
    department = principal.department.value if principal.department else None
    rows = [{"at": at, "actor": principal.subject, "client": principal.client, "role": str(principal.role),
             "department": department, "site_id": principal.site, "subject_kind": subject_kind,
             "subject_id": str(subject), "endpoint": endpoint, "purpose": purpose,
             "outcome": "allowed" if allowed else "denied", "correlation_id": correlation}
            for subject in subject_ids]
    if session.in_transaction() and (await session.connection()).invalidated:
        # A statement before this one lost the connection (the database went away): the
        # transaction is dead, and writing in it would raise PendingRollbackError (a 500) instead
        # of the database's own error (a 503). Start afresh; the entry is written if it can be.
        await session.rollback()
    if rows:
        await session.execute(audit_log.insert(), rows)
    await session.commit()


@asynccontextmanager
async def audited_read(session: AsyncSession, principal: Principal, *, subject_kind: SubjectKind,
                       subject_id: UUID | str, endpoint: str, purpose: str) -> AsyncIterator[None]:
    """Wrap a read: a refusal inside is logged as denied, a success as allowed (both committed)."""
    try:
        yield
    except (NotFound, Forbidden):
        await session.rollback()
        await record_read(session, principal, subject_kind=subject_kind, subject_id=subject_id,
                          endpoint=endpoint, purpose=purpose, allowed=False)
        raise
    await record_read(session, principal, subject_kind=subject_kind, subject_id=subject_id,
                      endpoint=endpoint, purpose=purpose)
