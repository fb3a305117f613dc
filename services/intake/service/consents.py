"""Intake use cases for consent: given, withdrawn (whole or per department), renewed, expired.

The rules of grants and receipts are in ``services/intake/consent.py``; here they are stored and
announced to the other services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import consent as rules
from services.intake import domain as d
from services.intake.models import Consent, ConsentHistory, Household, Person
from services.intake.schemas import ConsentHistoryRead, ConsentIn, ConsentRead, GrantRead
from services.intake.service.households import (
    Held,
    change_status,
    lock_household,
    lock_household_with_people,
    now,
)
from shared.audit import know_members
from shared.departments import Department
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events import intake as events
from shared.outbox import record_event

T = TypeVar("T")
_consents = Consent.__table__  # type: ignore[attr-defined]
_history = ConsentHistory.__table__  # type: ignore[attr-defined]
_persons = Person.__table__  # type: ignore[attr-defined]
# Built once with bound values (see ``households``' statements).
_INSERT_CONSENT = _consents.insert()
_CONSENT_COLUMNS = [c.name for c in _consents.columns]
_INSERT_HISTORY = _history.insert()
_HISTORY_COLUMNS = [c.name for c in _history.columns if c.name != "id"]
#: The household's consents with their persons' roles: what its coverage is decided from.
_CONSENTS = (select(_consents.c.departments, _consents.c.withdrawn, _consents.c.state, _consents.c.expires_on,
                    _persons.c.role).join(_persons, _persons.c.id == _consents.c.person_id)
             .where(_consents.c.household_id == bindparam("household_id")))


async def give_consent(session: AsyncSession, *, household_id: uuid.UUID, data: ConsentIn,
                       by: str) -> ConsentRead:
    household, persons = await lock_household_with_people(session, household_id)
    members = {p.id: p for p in persons if p.active}
    subject, giver = members.get(data.person_id), members.get(data.given_by_person_id)
    if subject is None or giver is None:
        field = "body.person_id" if subject is None else "body.given_by_person_id"
        raise Unprocessable("Not a member of this household.", fields={field: "not a member"})
    _check(lambda: rules.check_grants(data.departments, data.purposes))
    d.check_consent_giver(d.MemberRole(subject.role), d.MemberRole(giver.role), subject.id == giver.id)
    if household.status in ("exited", "not_eligible", "declined"):
        raise Conflict(f"A household that is {household.status} cannot give consent.")
    # Not added to the session: the rows are inserted on Core, the object carries their values.
    consent = Consent(id=uuid.uuid4(), household_id=household.id, person_id=subject.id,
                      given_by_person_id=giver.id, departments=[dep.value for dep in data.departments],
                      purposes=[p.value for p in data.purposes], withdrawn=[], state="given", given_at=now(),
                      expires_on=data.expires_on)
    await session.execute(_INSERT_CONSENT, {column: getattr(consent, column) for column in _CONSENT_COLUMNS})
    entry = _entry(consent, "given", consent.given_at, by, consent.departments)
    await session.execute(_INSERT_HISTORY, {column: getattr(entry, column) for column in _HISTORY_COLUMNS})
    if household.status == "invited":
        await change_status(session, household, d.transition(d.HouseholdStatus.INVITED,
                                                               d.HouseholdStatus.CONSENTED))
    await _announce_given(session, household, consent, subject)
    know_members(session, str(household_id), [str(p.id) for p in persons])
    return _consent_answer(consent, subject, [entry])


def _check(rule: Callable[[], T]) -> T:
    """Run a consent rule; a mismatch of departments and purposes is the caller's (422)."""
    try:
        return rule()
    except rules.GrantProblem as exc:
        raise Unprocessable(str(exc), fields=exc.fields) from None


def _log(session: AsyncSession, consent: Consent, state: str, at: datetime, by: str,
         departments: list[str]) -> None:
    """Append to the consent's history: the team reads it, and the receipt is written from it."""
    session.add(_entry(consent, state, at, by, departments))


def _entry(consent: Consent, state: str, at: datetime, by: str, departments: list[str]) -> ConsentHistory:
    return ConsentHistory(consent_id=consent.id, state=state, at=at, by=by, departments=departments,
                          expires_on=consent.expires_on if state in ("given", "renewed") else None)


async def _announce_given(session: AsyncSession, household: Household | Row[Any], consent: Consent,
                          person: Person | Held) -> None:
    """``consent-given`` (v2: purpose codes per department) for the departments still covered."""
    live = rules.live_departments(consent.departments, consent.withdrawn)
    grants = [events.Grant(department=g.department.value, purposes=[p.value for p in g.purposes])  # type: ignore[arg-type]
              for g in rules.grants(consent.departments, consent.purposes, consent.withdrawn)
              if not g.withdrawn]
    await record_event(session, events.ConsentGivenV2(
        family_id=household.id, site_id=household.site_id, consent_id=consent.id, person_id=person.id,
        person_role=person.role, departments=live, purposes=consent.purposes,  # type: ignore[arg-type]
        grants=grants, expires_on=consent.expires_on,
        covered_after=await shared_with(session, household.id)))


async def _locked_consent(session: AsyncSession, household: Household, consent_id: uuid.UUID) -> Consent:
    consent = await session.get(Consent, consent_id, with_for_update=True)
    if consent is None or consent.household_id != household.id:
        raise NotFound("No such consent.")
    return consent


async def revoke_consent(session: AsyncSession, *, household_id: uuid.UUID, consent_id: uuid.UUID,
                         by: str, departments: list[Department] | None = None) -> ConsentRead:
    """Withdraw the consent, or only some of its departments (the others keep it); withdrawing
    the last one withdraws the consent. The other services are told at once."""
    household = await lock_household(session, household_id)
    consent = await _locked_consent(session, household, consent_id)
    if d.ConsentState(consent.state) not in (d.ConsentState.GIVEN, d.ConsentState.RENEWED):
        raise Conflict(f"The consent is {consent.state}: nothing is left to withdraw.")
    if departments is None:
        departments = [Department(x) for x in rules.live_departments(consent.departments, consent.withdrawn)]
    withdrawn = _check(lambda: rules.withdraw(consent.departments, consent.withdrawn, departments))
    if set(withdrawn) >= set(consent.departments):
        consent.state = d.transition_consent(d.ConsentState(consent.state), d.ConsentState.WITHDRAWN).value
    consent.withdrawn = withdrawn
    gone = [x.value for x in departments]
    _log(session, consent, "withdrawn", now(), by, gone)
    await session.flush()
    await record_event(session, events.ConsentRevoked(
        family_id=household.id, site_id=household.site_id, consent_id=consent.id,
        person_id=consent.person_id, departments=gone,  # type: ignore[arg-type]
        covered_after=await shared_with(session, household.id)))
    return await _consent_read(session, consent)


async def renew_consent(session: AsyncSession, *, household_id: uuid.UUID, consent_id: uuid.UUID,
                        expires_on: date | None, by: str) -> ConsentRead:
    household = await lock_household(session, household_id)
    consent = await _locked_consent(session, household, consent_id)
    consent.state = d.transition_consent(d.ConsentState(consent.state), d.ConsentState.RENEWED).value
    consent.expires_on = expires_on
    live = rules.live_departments(consent.departments, consent.withdrawn)
    _log(session, consent, "renewed", now(), by, live)
    await session.flush()
    person = await session.get(Person, consent.person_id)
    assert person is not None
    await _announce_given(session, household, consent, person)
    return await _consent_read(session, consent, person)


async def expire_consents(session: AsyncSession, *, today: date, by: str) -> int:
    """Consents past their expiry date become expired, and the other services are told at once."""
    due = (await session.execute(select(Consent).where(
        Consent.state.in_(["given", "renewed"]), Consent.expires_on < today)  # type: ignore[attr-defined,operator]
        .with_for_update())).scalars().all()
    for consent in due:
        household = await lock_household(session, consent.household_id)
        consent.state = d.transition_consent(d.ConsentState(consent.state), d.ConsentState.EXPIRED).value
        live = rules.live_departments(consent.departments, consent.withdrawn)
        _log(session, consent, "expired", now(), by, live)
        await session.flush()
        await record_event(session, events.ConsentRevoked(
            family_id=household.id, site_id=household.site_id, consent_id=consent.id,
            person_id=consent.person_id, departments=live, state="expired",  # type: ignore[arg-type]
            covered_after=await shared_with(session, household.id)))
    return len(due)


async def list_consents(session: AsyncSession, *, household_id: uuid.UUID) -> list[ConsentRead]:
    rows = await session.execute(select(Consent, Person).join(Person, Person.id == Consent.person_id)
                                 .where(Consent.household_id == household_id).order_by(Consent.given_at))
    return [await _consent_read(session, consent, person) for consent, person in rows.all()]


async def read_consent(session: AsyncSession, *, household_id: uuid.UUID,
                       consent_id: uuid.UUID) -> ConsentRead:
    """One consent with its history and receipt; another household's consent is absent."""
    consent = await session.get(Consent, consent_id)
    if consent is None or consent.household_id != household_id:
        raise NotFound("No such consent.")
    return await _consent_read(session, consent)


async def _consent_read(session: AsyncSession, consent: Consent,
                        person: Person | None = None) -> ConsentRead:
    person = person or await session.get(Person, consent.person_id)
    assert person is not None
    rows = (await session.execute(select(ConsentHistory).where(ConsentHistory.consent_id == consent.id)
                                  .order_by(ConsentHistory.id))).scalars().all()
    return _consent_answer(consent, person, rows)


def _consent_answer(consent: Consent, person: Person | Held,
                    rows: Sequence[ConsentHistory]) -> ConsentRead:
    """The consent with its history (``rows``, oldest first) and the receipt written from it."""
    history = [rules.Entry(h.state, h.at, tuple(h.departments if h.departments is not None
                                                 else consent.departments), h.expires_on) for h in rows]
    receipt = rules.receipt(role=person.role, birth_year=person.birth_date.year, purposes=consent.purposes,
                            history=history)
    return ConsentRead(
        id=consent.id, person_id=consent.person_id, given_by_person_id=consent.given_by_person_id,
        departments=consent.departments, purposes=consent.purposes,
        grants=[GrantRead(department=g.department.value, purposes=[p.value for p in g.purposes],
                          withdrawn=g.withdrawn)
                for g in rules.grants(consent.departments, consent.purposes, consent.withdrawn)],
        state=consent.state, given_at=consent.given_at, expires_on=consent.expires_on,
        history=[ConsentHistoryRead(state=h.state, at=h.at, departments=list(h.departments),
                                    expires_on=h.expires_on) for h in history],
        receipt=receipt)


async def departments_covered(session: AsyncSession, household_id: uuid.UUID, today: date) -> set[Department]:
    rows = await session.execute(_CONSENTS, {"household_id": household_id})
    return d.covered_departments((d.ConsentFacts(d.MemberRole(c.role), frozenset(
        Department(x) for x in rules.live_departments(c.departments, c.withdrawn)), d.ConsentState(c.state),
        c.expires_on)
        for c in rows.all()), today=today)


async def shared_with(session: AsyncSession, household_id: uuid.UUID) -> list[str]:
    """The departments that may see the family's events now: those its consent covers."""
    covered = await departments_covered(session, household_id, date.today())
    return [department.value for department in Department if department in covered]
