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

On PostgreSQL each read is a single statement that also writes its audit entry (``WITH entry AS
(INSERT INTO audit_log … RETURNING outcome) SELECT …``, ``shared.audit.entry_insert``), run in
autocommit on the driver (``shared.db.fetch_autocommit``): one round trip, atomic (the entry and
the read commit together or not at all), the outcome (allowed, or denied by the caller's site)
and the persons the entry names computed by the statement from the rows it reads. SQLite (the
embedded default) keeps the Core statements above with the session's transaction. Both give the
same answers and the same entries (tests/intake/test_read_fast_path.py).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from services.intake.cpr import CprVault
from services.intake.models import Household, Person
from services.intake.schemas import HouseholdRead, HouseholdSummary, MemberRead
from services.intake.service.households import check_site, criterion_read
from shared.audit import entry_insert, entry_values, record_access, subject_json
from shared.auth import Principal
from shared.db import Statement, fetch_autocommit
from shared.errors import Forbidden, NotFound
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
    people = [row._mapping for row in rows if row.person_id is not None]
    return HouseholdView(read=_household_read(rows[0]._mapping, people, vault),
                         person_ids=[str(p["person_id"]) for p in people])


async def audited_household_view_in_session(
        session: AsyncSession, principal: Principal, *, household_id: uuid.UUID, vault: CprVault,
        endpoint: str, purpose: str) -> HouseholdRead:
    """The team view and its audit entry in the session's transaction (any database): the read,
    then the entry naming the family and every person it has held (taken from the read, no
    member lookup), committed before the answer leaves; absent or another site's: 404, denied."""
    family = str(household_id)
    members: dict[str, list[str]] = {family: []}
    try:
        view = await load_household_view(session, household_id=household_id, vault=vault)
        members[family] = view.person_ids
        check_site(principal, view.read.site_id)
    except (NotFound, Forbidden):
        await session.rollback()
        await record_access(session, principal, families=[household_id], members=members,
                            endpoint=endpoint, purpose=purpose, allowed=False)
        raise
    await record_access(session, principal, families=[household_id], members=members,
                        endpoint=endpoint, purpose=purpose)
    return view.read


def _household_read(first: Any, people: list[Any], vault: CprVault) -> HouseholdRead:
    """The answer from the view's rows (SQLAlchemy row mappings or asyncpg records, by name)."""
    members = [MemberRead(id=p["person_id"], role=p["role"], birth_year=p["birth_date"].year,
                          cpr_masked=vault.decrypt(p["cpr_ciphertext"]).masked(),
                          unemployed_since=p["unemployed_since"], lives_at_address=p["lives_at_address"])
               for p in people if p["active"]]
    return HouseholdRead(id=first["id"], site_id=first["site_id"], address=first["address"],
                         status=first["status"], eligible=first["eligible"],
                         waitlist_position=first["position"],
                         screening=[criterion_read(c) for c in first["screening"] or []], members=members)


#: The team view and its audit entry in one statement (PostgreSQL): $1 the household, $2 and $3
#: the caller's site scope (``Principal.site_scope``), then the entry's values. The entry names
#: the family and every person it has held (as the member lookup would), and is ``allowed`` when
#: the household exists and the caller may see its site; only then does the statement return it.
_VIEW_AUDITED = Statement(f"""
WITH view AS (
    SELECT h.id, h.site_id, h.address, h.status, h.eligible, h.screening,
           CASE WHEN h.status = 'waitlisted' THEN (
               SELECT count(*) FROM households a WHERE a.site_id = h.site_id
                  AND a.status = 'waitlisted' AND a.waitlisted_at < h.waitlisted_at) + 1 END AS position,
           p.id AS person_id, p.role, p.birth_date, p.cpr_ciphertext, p.unemployed_since,
           p.lives_at_address, p.active, p.added_at
    FROM households h LEFT JOIN persons p ON p.household_id = h.id
    WHERE h.id = $1::uuid
), entry AS ({entry_insert(
    4,
    subjects=f"jsonb_build_array({subject_json('family', '$1')}) || COALESCE(("
             f"SELECT jsonb_agg({subject_json('person', 'person_id')} ORDER BY added_at, person_id) "
             f"FROM view WHERE person_id IS NOT NULL), '[]'::jsonb)",
    outcome="CASE WHEN EXISTS (SELECT 1 FROM view WHERE $2::boolean OR site_id = $3::text) "
            "THEN 'allowed' ELSE 'denied' END")})
SELECT entry.outcome, view.* FROM entry LEFT JOIN view ON entry.outcome = 'allowed'
ORDER BY view.added_at, view.person_id""")


async def audited_household_view(engine: AsyncEngine, principal: Principal, *, household_id: uuid.UUID,
                                 vault: CprVault, endpoint: str, purpose: str) -> HouseholdRead:
    """The team view with its audit entry written by the same statement (PostgreSQL only); a
    household that is absent or of another site is absent (404), its entry denied."""
    sees_all, site = principal.site_scope
    rows = await fetch_autocommit(engine, _VIEW_AUDITED, household_id, sees_all, site,
                                  *entry_values(principal, endpoint=endpoint, purpose=purpose))
    if rows[0]["outcome"] != "allowed":
        raise NotFound("No such household.")
    return _household_read(rows[0], [row for row in rows if row["person_id"] is not None], vault)



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


def _filters(site_id: str | None, status: str | None, cursor: str | None) -> list[tuple[str, Any]]:
    """The list's filters in use, as (condition, value): one statement per combination."""
    after = cursor_key(cursor, uuid.UUID) if cursor is not None else None
    return [(condition, value) for condition, value in (
        ("site_id =", site_id), ("status =", status), ("id >", after)) if value]


async def household_page(session: AsyncSession, *, site_id: str | None, status: str | None,
                         cursor: str | None, limit: int) -> Page[HouseholdSummary]:
    """A page of household summaries (keyset pagination by id, as ``shared.pagination``)."""
    used = dict(_filters(site_id, status, cursor))
    params: dict[str, Any] = {"site_id": used.get("site_id ="), "status": used.get("status ="),
                              "after": used.get("id >"), "rows": limit + 1}
    query = _page_query("site_id =" in used, "status =" in used, "id >" in used)
    rows = (await session.execute(query, {k: v for k, v in params.items() if v is not None})).all()
    return _summary_page([row._mapping for row in rows], limit)


#: The page's summaries validated in one call (pydantic's core loops over the list): about a
#: third of building them one model at a time, measured for a page of 50.
_SUMMARIES = TypeAdapter(list[HouseholdSummary])


def _summary_page(rows: list[Any], limit: int) -> Page[HouseholdSummary]:
    """The page from its rows, fetched one past the page to know whether another follows."""
    items = _SUMMARIES.validate_python([dict(r) for r in rows[:limit]])
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page[HouseholdSummary](items=items, next_cursor=next_cursor)


@functools.cache
def _page_audited(conditions: tuple[str, ...]) -> Statement:
    """A page of the list and its audit entry in one statement (PostgreSQL), one per combination
    of filters: $1 the page size, then each filter's value, then the entry's values. The entry
    names the page's families and their persons as ``record_access`` with the member lookup
    would (families in page order, each family's persons by id); an empty page writes none."""
    where = " AND ".join(f"{condition} ${i + 2}" for i, condition in enumerate(conditions))
    return Statement(f"""
WITH page AS (
    SELECT id, site_id, status, eligible FROM households {"WHERE " + where if where else ""}
    ORDER BY id LIMIT $1::integer + 1
), shown AS (
    SELECT id FROM page ORDER BY id LIMIT $1::integer
), entry AS ({entry_insert(
        len(conditions) + 2,
        subjects=f"(SELECT jsonb_agg({subject_json('family', 'id')} ORDER BY id) FROM shown) || COALESCE(("
                 f"SELECT jsonb_agg({subject_json('person', 'p.id')} ORDER BY p.household_id, p.id) "
                 f"FROM persons p JOIN shown ON p.household_id = shown.id), '[]'::jsonb)",
        outcome="'allowed'", where="WHERE EXISTS (SELECT 1 FROM shown)")})
SELECT id, site_id, status, eligible FROM page ORDER BY id""")


async def audited_household_page(engine: AsyncEngine, principal: Principal, *, site_id: str | None,
                                 status: str | None, cursor: str | None, limit: int, endpoint: str,
                                 purpose: str) -> Page[HouseholdSummary]:
    """``household_page`` with its audit entry written by the same statement (PostgreSQL only)."""
    filters = _filters(site_id, status, cursor)
    rows = await fetch_autocommit(
        engine, _page_audited(tuple(condition for condition, _ in filters)), limit,
        *(value for _, value in filters), *entry_values(principal, endpoint=endpoint, purpose=purpose))
    return _summary_page(list(rows), limit)
