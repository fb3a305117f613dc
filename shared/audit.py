"""The audit log of personal-data access: who, which system, when, whose data, why, and the outcome.

One entry per request, naming every subject whose data the answer carried: the families, the
referrals and — so "who has seen data about this person" is one query — the persons (a family's
members are named too, through the service's own member lookup). A read's entry is committed
before the data leaves the service; a write's entry is written in the write's own transaction.
If the entry cannot be written the request fails. Denied reads are logged too. The table is
append-only in the database (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias
from uuid import UUID

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy import Select, Table, bindparam, exists, func, literal_column, or_, select, type_coerce
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from shared import observability as obs
from shared.auth import Principal
from shared.db import Statement, fetch_autocommit, is_postgres
from shared.errors import Forbidden, NotFound
from shared.tables import audit_log

SubjectKind = Literal["person", "family", "referral"]
Subject = tuple[SubjectKind, str]
Ids = Iterable[UUID | str]
#: Where the session carries its service's member lookup (set by ``shared.app``).
MEMBERS_INFO_KEY = "audit_members"
#: Where a use case leaves the members it has just read or written (``know_members``).
KNOWN_MEMBERS_KEY = "audit_known_members"

#: One statement object for every entry, its values bound per execution: SQLAlchemy keys its
#: compiled-statement cache by a statement's structure, and an ``insert().values(…)`` built per
#: request made it recompute that key each time (more CPU than the rest of the audit write).
_INSERT_ENTRY = audit_log.insert()

#: Response keys naming a subject, wherever they appear in an answer.
_KEYS: dict[str, SubjectKind] = {
    "family_id": "family", "household_id": "family", "person_id": "person",
    "given_by_person_id": "person", "participant_ids": "person", "referral_id": "referral",
}


def subjects_in(value: Any, *, top_level: SubjectKind | None = None) -> list[Subject]:
    """The subjects a JSON answer names: its id fields, members' ids, and (when the answer is one
    object of a subject kind, e.g. a household) its own ``id``. Deriving them from what is really
    returned keeps the log true to the answer without each route listing them by hand."""
    return _named_in(jsonable_encoder(value), top_level)


def _named_in(answer: Any, top_level: SubjectKind | None) -> list[Subject]:
    """``subjects_in`` of an answer that is JSON already (walking it is cheap, encoding is not)."""
    found: list[Subject] = []

    def walk(node: Any, kind: SubjectKind | None) -> None:
        if isinstance(node, dict):
            if kind is not None and node.get("id") is not None:
                found.append((kind, str(node["id"])))
            for key, child in node.items():
                named = _KEYS.get(key)
                if named is not None:
                    for item in child if isinstance(child, list) else [child]:
                        if item is not None:
                            found.append((named, str(item)))
                else:
                    walk(child, "person" if key == "members" else None)
        elif isinstance(node, list):
            for child in node:
                walk(child, kind)

    walk(answer, top_level)
    return found


def _subjects(families: Ids, persons: Ids, referrals: Ids, more: Iterable[Subject]) -> list[Subject]:
    named: list[Subject] = [("family", str(i)) for i in families]
    named += [("person", str(i)) for i in persons] + [("referral", str(i)) for i in referrals]
    return named + list(more)


def know_members(session: AsyncSession, family: str, persons: Collection[str]) -> None:
    """Tell the transaction's next audit entry every person the family holds (active or not, as
    the member lookup would find them), so it needs no lookup: for a use case that has just read
    or written them all, after its last change to the family's persons."""
    session.info.setdefault(KNOWN_MEMBERS_KEY, {})[family] = persons


async def _with_members(session: AsyncSession, subjects: list[Subject],
                        known: Mapping[str, Collection[str]] | None = None) -> list[dict[str, str]]:
    """The subjects, each once, with the members of every named family added as persons.

    ``known``: the members the caller has just read itself (every person of each named family, as
    the member lookup would return them), which saves the lookup's round trip; without it, those
    a use case left with ``know_members`` (used once)."""
    told = session.info.pop(KNOWN_MEMBERS_KEY, None)
    known = told if known is None else known
    lookup: MemberLookup | None = session.info.get(MEMBERS_INFO_KEY)
    families = list(dict.fromkeys(i for kind, i in subjects if kind == "family"))
    if lookup is not None and families:
        members = known if known is not None and set(known) >= set(families) \
            else await lookup(session, families)
        subjects = subjects + [("person", p) for family in families for p in members.get(family, ())]
    return [{"kind": kind, "id": i} for kind, i in dict.fromkeys(subjects)]


async def write_entry(
    session: AsyncSession, principal: Principal, *, endpoint: str, purpose: str,
    families: Ids = (), persons: Ids = (), referrals: Ids = (), subjects: Iterable[Subject] = (),
    allowed: bool = True, members: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Add one entry to the caller's transaction (a write commits it with its change); nothing is
    written when the answer named nobody. ``members``: see ``_with_members``."""
    named = await _with_members(session, _subjects(families, persons, referrals, subjects), members)
    if not named:
        return
    department = principal.department.value if principal.department else None
    await session.execute(_INSERT_ENTRY, {
        "at": datetime.now(UTC), "actor": principal.subject, "client": principal.client,
        "role": str(principal.role), "department": department, "site_id": principal.site,
        "subjects": named, "endpoint": endpoint[:300], "purpose": purpose,
        "outcome": "allowed" if allowed else "denied", "correlation_id": obs.correlation_id.get()})


#: The columns an entry written inside a read's own statement takes from its parameters, in this
#: order (``entry_values``); ``subjects`` and ``outcome`` the statement computes itself.
_ENTRY_COLUMNS = ("at", "actor", "client", "role", "department", "site_id", "endpoint", "purpose",
                  "correlation_id")


def entry_values(principal: Principal, *, endpoint: str, purpose: str) -> tuple[Any, ...]:
    """The parameters of ``entry_insert``'s statement, as ``write_entry`` fills the same columns."""
    department = principal.department.value if principal.department else None
    return (datetime.now(UTC), principal.subject, principal.client, str(principal.role), department,
            principal.site, endpoint[:300], purpose, obs.correlation_id.get())


def entry_insert(first: int, *, subjects: str, outcome: str, where: str = "") -> str:
    """SQL (PostgreSQL) writing one entry from a read's own statement, as a data-modifying CTE:
    ``WITH entry AS (<this>) SELECT …``. The entry is then written by the very statement that
    reads, so it is committed with the read or not at all (a failed insert fails the read), in
    one round trip instead of BEGIN, SELECT, INSERT, COMMIT.

    ``first``: the number of the first of ``entry_values``' parameters; ``subjects``: an SQL
    expression of the JSONB array of subjects, each ``{"kind": …, "id": …}`` in the order
    ``write_entry`` would name them; ``outcome``: an SQL expression, ``'allowed'`` or
    ``'denied'``; ``where``: a condition without which nothing is written (an empty answer)."""
    values = ", ".join(f"${first + i}" for i in range(len(_ENTRY_COLUMNS)))
    return (f"INSERT INTO audit_log ({', '.join(_ENTRY_COLUMNS)}, subjects, outcome) "
            f"SELECT {values}, {subjects}, {outcome} {where} RETURNING outcome")


def subject_json(kind: SubjectKind, id_sql: str) -> str:
    """SQL of one subject as JSONB, ``{"kind": …, "id": …}`` (see ``entry_insert``)."""
    return f"jsonb_build_object('kind', '{kind}', 'id', ({id_sql})::text)"


async def record_access(
    session: AsyncSession, principal: Principal, *, endpoint: str, purpose: str,
    families: Ids = (), persons: Ids = (), referrals: Ids = (), subjects: Iterable[Subject] = (),
    allowed: bool = True, members: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Write one entry for a read and commit it (callers read before, return after)."""
    if session.in_transaction() and (await session.connection()).invalidated:
        # A statement before this one lost the connection (the database went away): the
        # transaction is dead, and writing in it would raise PendingRollbackError (a 500) instead
        # of the database's own error (a 503). Start afresh; the entry is written if it can be.
        await session.rollback()
    await write_entry(session, principal, endpoint=endpoint, purpose=purpose, families=families,
                      persons=persons, referrals=referrals, subjects=subjects, allowed=allowed,
                      members=members)
    await session.commit()


@asynccontextmanager
async def audited_read(session: AsyncSession, principal: Principal, *, endpoint: str, purpose: str,
                       families: Ids = (), persons: Ids = (), referrals: Ids = ()) -> AsyncIterator[None]:
    """Wrap a read: a refusal inside is logged as denied, a success as allowed (both committed)."""
    named = _subjects(families, persons, referrals, ())
    try:
        yield
    except (NotFound, Forbidden):
        await session.rollback()
        await record_access(session, principal, endpoint=endpoint, purpose=purpose, subjects=named,
                            allowed=False)
        raise
    await record_access(session, principal, endpoint=endpoint, purpose=purpose, subjects=named)


def naming(session: AsyncSession, subject_ids: Collection[str]) -> Any:
    """A condition: the entry names any of ``subject_ids`` (as whatever kind). PostgreSQL answers
    it from the GIN index on the JSONB ``subjects``; SQLite scans (the embedded default is small)."""
    if is_postgres(session):
        subjects = type_coerce(audit_log.c.subjects, JSONB)
        return or_(*(subjects.contains([{"id": i}]) for i in subject_ids))
    each = func.json_each(audit_log.c.subjects).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(
        func.json_extract(each.c.value, "$.id").in_(list(subject_ids))))


def entries_naming(session: AsyncSession, subject_ids: Collection[str]) -> Select[Any]:
    """Every entry naming one of ``subject_ids``, in the order they were written."""
    return select(audit_log).where(naming(session, subject_ids)).order_by(audit_log.c.id)


async def audit_answer(session: AsyncSession, principal: Principal, request: Request, answer: Any, *,
                       top_level: SubjectKind | None = None, encoded: bool = False) -> None:
    """Add the entry for a write's answer to the write's transaction: the subjects named in the
    path and in the answer itself (nothing when neither names anyone). ``encoded``: the answer is
    JSON already (as ``Idempotency`` stores it), so it is not encoded again."""
    name = getattr(request.scope.get("route"), "name", None) or "change"
    named = _named_in(dict(request.path_params), None) + (
        _named_in(answer, top_level) if encoded else subjects_in(answer, top_level=top_level))
    await write_entry(session, principal, endpoint=f"{request.method} {request.url.path}"[:300],
                      purpose=name.replace("_", " "), subjects=named)


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_known_members(session: Session, _previous: Any) -> None:
    """Members told before a rollback may be of rows that are gone."""
    session.info.pop(KNOWN_MEMBERS_KEY, None)


class MemberTable:
    """A member lookup over a service's own table linking persons to families, so a family's
    entry names its members (a family's data is about them) without another service asked."""

    def __init__(self, table: Table, *, family: str, person: str) -> None:
        self.table, self.family, self.person = table, family, person
        column = table.c[family]
        # Each family's persons by id, so an entry's order is fixed (the statements that write
        # the entry themselves on PostgreSQL name them in the same order).
        self._query = select(column, table.c[person]).where(
            column.in_(bindparam("families", expanding=True))).order_by(column, table.c[person])

    async def __call__(self, session: AsyncSession, families: list[str]) -> Mapping[str, Collection[str]]:
        found: dict[str, list[str]] = {}
        keys = [UUID(f) for f in families if _is_uuid(f)]
        if not keys:
            return found
        for family_id, person_id in await session.execute(self._query, {"families": keys}):
            found.setdefault(str(family_id), []).append(str(person_id))
        return found

    def persons_sql(self, family_sql: str) -> str:
        """SQL (PostgreSQL) of the JSONB array of the family's persons as subjects, by id."""
        person = f"m.{self.person}"
        return (f"COALESCE((SELECT jsonb_agg({subject_json('person', person)} ORDER BY {person}) "
                f"FROM {self.table.name} m WHERE m.{self.family} = {family_sql}), '[]'::jsonb)")


#: A service's member lookup: family id -> the persons it holds as that family's members.
MemberLookup: TypeAlias = MemberTable


def members_from(table: Table, *, family: str, person: str) -> MemberLookup:
    """The member lookup of a service whose ``table`` links persons to families."""
    return MemberTable(table, family=family, person=person)


@functools.cache
def _family_entry(members: MemberLookup | None) -> Statement:
    """One entry naming one family ($1) and its members, ``outcome`` $2, then ``entry_values``."""
    subjects = f"jsonb_build_array({subject_json('family', '$1::uuid')})"
    if members is not None:
        subjects += f" || {members.persons_sql('$1::uuid')}"
    return Statement(entry_insert(3, subjects=subjects, outcome="$2::text"))


async def record_family_access(engine: AsyncEngine, principal: Principal, *, family: UUID,
                               endpoint: str, purpose: str, allowed: bool,
                               members: MemberLookup | None) -> None:
    """``record_access`` for a read of one family, as one autocommit statement (PostgreSQL):
    the entry names the family and its members, computed by the statement itself."""
    await fetch_autocommit(engine, _family_entry(members), family, "allowed" if allowed else "denied",
                           *entry_values(principal, endpoint=endpoint, purpose=purpose))


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
