"""The audit log and a person's data over REST: ``GET /audit`` and the subject-access part.

``GET /audit?subject_id=`` pages (by cursor) through the entries naming a person, family or
referral, for admin, the coordination group and data protection. ``GET /v1/persons/{id}/subject-access``
answers, for data protection only, what this service holds about one person id and every entry
naming the person or a family they belong to. Intake asks every service for it when it composes
a subject-access report (GDPR art. 15), so a CPR number never leaves intake: the key is the id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import MetaData, Table, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import SubjectKind, entries_naming, record_access
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.pagination import Cursor, Limit, Page, bigint_key, cursor_key, encode_cursor
from shared.tables import audit_log

AUDIT_READERS = (Role.ADMIN, Role.COORDINATION, Role.DATA_PROTECTION)
DataProtection = Annotated[Principal, Depends(require_roles(Role.DATA_PROTECTION))]
AuditReader = Annotated[Principal, Depends(require_roles(*AUDIT_READERS))]

Holdings = dict[str, list[dict[str, Any]]]
#: Columns naming a person or a family in any service's tables.
PERSON_COLUMNS = ("person_id", "given_by_person_id")
FAMILY_COLUMNS = ("family_id", "household_id")


class AuditSubject(BaseModel):
    kind: str
    id: str


class AuditEntry(BaseModel):
    """One entry of the audit log: who saw whose data, through which endpoint, whether allowed."""

    id: int
    at: datetime
    actor: str
    client: str | None
    role: str
    department: str | None
    site_id: str | None
    subjects: list[AuditSubject]
    endpoint: str
    purpose: str
    outcome: str
    correlation_id: str | None


class SubjectAccessPart(BaseModel):
    """What one service holds about one person id, and every recorded access to it."""

    service: str
    person_id: UUID
    family_ids: list[UUID]
    holdings: dict[str, list[dict[str, Any]]]
    reads: list[AuditEntry]


@dataclass(frozen=True)
class PersonalTables:
    """Where a service keeps personal data: its tables, found by their person and family columns.

    ``ids`` names the tables whose own ``id`` is a person or a family (intake's persons and
    households, casework's families). Columns whose name contains ``cpr`` are never returned.
    """

    metadata: MetaData
    ids: Mapping[str, SubjectKind] = field(default_factory=dict)

    def _conditions(self, table: Table, person_id: UUID, families: list[UUID]) -> list[Any]:
        conditions = [table.c[name] == person_id for name in PERSON_COLUMNS if name in table.c]
        if families:
            conditions += [table.c[name].in_(families) for name in FAMILY_COLUMNS if name in table.c]
        kind = self.ids.get(table.name)
        if kind == "person":
            conditions.append(table.c.id == person_id)
        elif kind == "family" and families:
            conditions.append(table.c.id.in_(families))
        return conditions

    async def collect(self, session: AsyncSession, person_id: UUID) -> tuple[list[UUID], Holdings]:
        """The person's families (from the rows naming the person), then every row naming the
        person or one of those families, per table."""
        families: set[UUID] = set()
        for table in self.metadata.sorted_tables:
            conditions = self._conditions(table, person_id, [])
            if conditions and any(name in table.c for name in FAMILY_COLUMNS):
                for row in await session.execute(select(table).where(or_(*conditions))):
                    families |= {row._mapping[n] for n in FAMILY_COLUMNS if n in row._mapping}
        ordered = sorted(families, key=str)
        holdings: Holdings = {}
        for table in self.metadata.sorted_tables:
            conditions = self._conditions(table, person_id, ordered)
            if not conditions:
                continue
            rows = (await session.execute(select(table).where(or_(*conditions)))).all()
            if rows:
                holdings[table.name] = [jsonable_encoder({k: v for k, v in row._mapping.items()
                                                          if "cpr" not in k}) for row in rows]
        return ordered, holdings


async def subject_access_part(session: AsyncSession, personal: PersonalTables, *, service: str,
                              person_id: UUID) -> SubjectAccessPart:
    """What ``service`` holds about the person, and every entry naming them or their families."""
    families, holdings = await personal.collect(session, person_id)
    ids = [str(person_id), *map(str, families)]
    reads = [_entry(row) for row in (await session.execute(entries_naming(session, ids))).all()]
    return SubjectAccessPart(service=service, person_id=person_id, family_ids=families, holdings=holdings,
                             reads=reads)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry.model_validate(dict(row._mapping))


def audit_router(personal: PersonalTables | None, service: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/audit", response_model=Page[AuditEntry],
                summary="Who saw a person's, family's or referral's data (admin, coordination, "
                        "data protection)")
    async def audit(session: SessionDep, principal: AuditReader,
                    subject_id: Annotated[str, Query(min_length=1, max_length=36)],
                    limit: Limit = 100, cursor: Cursor = None) -> Page[AuditEntry]:
        query = entries_naming(session, [subject_id])
        if cursor is not None:
            query = query.where(audit_log.c.id > cursor_key(cursor, bigint_key))
        rows = (await session.execute(query.limit(limit + 1))).all()
        items = [_entry(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page[AuditEntry](items=items, next_cursor=encode_cursor(items[-1].id) if more else None)

    if personal is None:
        return router

    @router.get("/v1/persons/{person_id}/subject-access", response_model=SubjectAccessPart,
                tags=["data protection"],
                summary="What this service holds about a person, and every recorded access (data protection)")
    async def subject_access(person_id: UUID, request: Request, session: SessionDep,
                             principal: DataProtection) -> SubjectAccessPart:
        part = await subject_access_part(session, personal, service=service, person_id=person_id)
        await record_access(session, principal, endpoint=f"GET {request.url.path}", purpose="subject access",
                            persons=[person_id])
        return part

    return router
