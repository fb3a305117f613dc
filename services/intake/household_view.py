"""The team's reads of households on SQLAlchemy Core: the team view of one household in one
statement (``GET /v1/households/{id}``), and a page of the household list
(``GET /v1/households``).

The team view is the most frequent read of personal data, and each one must also write an audit
entry in the same transaction. The ORM path took four statements (the row, the members, the
waitlist position, the audit's member lookup) plus the session's bookkeeping. Here one Core
``SELECT`` returns the household with every person ever in it (the active ones are the answer's
members; all of them are named in the audit entry, exactly as the member lookup would name them)
and, for a waitlisted family, its position. With the audit ``INSERT`` and the ``COMMIT`` a read
is BEGIN, SELECT, INSERT, COMMIT: the round trips of the bare audited read itself.

The statement is built once, with a bound parameter: SQLAlchemy keys its compiled-statement cache
by a statement's structure, and building a new statement per request made it recompute that key
every time (about as much CPU as the rest of the read).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.intake.cpr import CprVault
from services.intake.models import Household, Person
from services.intake.schemas import HouseholdRead, HouseholdSummary, MemberRead
from services.intake.service.households import criterion_read
from shared.errors import NotFound
from shared.pagination import Page, cursor_key, encode_cursor

_households = Household.__table__  # type: ignore[attr-defined]
_persons = Person.__table__  # type: ignore[attr-defined]
_ahead = aliased(_households)

#: The family's place on its site's waitlist (1 = next), only while it is waitlisted.
_POSITION = case((_households.c.status == "waitlisted", select(func.count()).where(
    _ahead.c.site_id == _households.c.site_id, _ahead.c.status == "waitlisted",
    _ahead.c.waitlisted_at < _households.c.waitlisted_at).scalar_subquery() + 1), else_=None)

_VIEW = (select(_households.c.id, _households.c.site_id, _households.c.address, _households.c.status,
                _households.c.eligible, _households.c.screening, _POSITION.label("position"),
                _persons.c.id.label("person_id"), _persons.c.role, _persons.c.birth_date,
                _persons.c.cpr_ciphertext, _persons.c.unemployed_since, _persons.c.lives_at_address,
                _persons.c.active)
         .select_from(_households.outerjoin(_persons, _persons.c.household_id == _households.c.id))
         .where(_households.c.id == bindparam("household_id"))
         .order_by(_persons.c.added_at, _persons.c.id))


@dataclass(frozen=True)
class HouseholdView:
    """The answer, and every person the household has held (the audit entry names them all)."""

    read: HouseholdRead
    person_ids: list[str]


async def load_household_view(session: AsyncSession, *, household_id: uuid.UUID,
                              vault: CprVault) -> HouseholdView:
    rows = (await session.execute(_VIEW, {"household_id": household_id})).all()
    if not rows:
        raise NotFound("No such household.")
    first = rows[0]
    people = [row for row in rows if row.person_id is not None]
    members = [MemberRead(id=p.person_id, role=p.role, birth_year=p.birth_date.year,
                          cpr_masked=vault.decrypt(p.cpr_ciphertext).masked(),
                          unemployed_since=p.unemployed_since, lives_at_address=p.lives_at_address)
               for p in people if p.active]
    read = HouseholdRead(id=first.id, site_id=first.site_id, address=first.address, status=first.status,
                         eligible=first.eligible, waitlist_position=first.position,
                         screening=[criterion_read(c) for c in first.screening or []], members=members)
    return HouseholdView(read=read, person_ids=[str(p.person_id) for p in people])



@functools.cache
def _page_query(by_site: bool, by_status: bool, after: bool) -> Any:
    """One statement per shape of the list query, built once (see the module's docstring): the
    summary's four columns, in id order, from the (site, status, id) index, one row more than
    the page to know whether another follows."""
    query = select(_households.c.id, _households.c.site_id, _households.c.status, _households.c.eligible)
    if by_site:
        query = query.where(_households.c.site_id == bindparam("site_id"))
    if by_status:
        query = query.where(_households.c.status == bindparam("status"))
    if after:
        query = query.where(_households.c.id > bindparam("after"))
    return query.order_by(_households.c.id).limit(bindparam("rows"))


async def household_page(session: AsyncSession, *, site_id: str | None, status: str | None,
                         cursor: str | None, limit: int) -> Page[HouseholdSummary]:
    """A page of household summaries (keyset pagination by id, as ``shared.pagination``)."""
    params: dict[str, Any] = {"site_id": site_id, "status": status, "rows": limit + 1}
    if cursor is not None:
        params["after"] = cursor_key(cursor, uuid.UUID)
    query = _page_query(bool(site_id), bool(status), cursor is not None)
    rows = (await session.execute(query, {k: v for k, v in params.items() if v is not None})).all()
    items = [HouseholdSummary(id=r.id, site_id=r.site_id, status=r.status, eligible=r.eligible)
             for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page[HouseholdSummary](items=items, next_cursor=next_cursor)
