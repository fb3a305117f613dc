"""Intake use cases. Each writes and flushes; the entrypoint commits (HTTP via Idempotency.run)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import consent as rules
from services.intake import domain as d
from services.intake.area_service import load_area
from services.intake.cpr import Cpr, CprVault, InvalidCpr, parse_cpr
from services.intake.models import (
    Consent,
    ConsentHistory,
    Household,
    ImportRun,
    KnownStaff,
    OutreachAttempt,
    Person,
    Site,
)
from services.intake.schemas import (
    ConsentHistoryRead,
    ConsentIn,
    ConsentRead,
    CriterionRead,
    GrantRead,
    HouseholdIn,
    HouseholdRead,
    ImportRejectedRow,
    ImportReport,
    MemberIn,
    MemberRead,
    OutreachIn,
    SiteIn,
    SiteRead,
)
from shared.auth import Principal
from shared.departments import Department
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.events import intake as events
from shared.outbox import record_event

T = TypeVar("T")
ACTIVE = [s.value for s in d.HouseholdStatus if s is not d.HouseholdStatus.EXITED]


def now() -> datetime:
    return datetime.now(UTC)


# --- sites --------------------------------------------------------------------------------

async def seed_sites(session: AsyncSession) -> None:
    """Create the default sites if missing (their capacity is then the admin's to change)."""
    for site in d.DEFAULT_SITES:
        if await session.get(Site, site.id) is None:
            session.add(Site(id=site.id, name=site.name, capacity=site.capacity))
    await session.flush()


async def list_sites(session: AsyncSession) -> list[SiteRead]:
    counts = dict(((await session.execute(select(Household.site_id, Household.status, func.count())
                                          .group_by(Household.site_id, Household.status)))
                  .all() and {}) or {})
    rows = (await session.execute(select(Household.site_id, Household.status, func.count())
                                  .group_by(Household.site_id, Household.status))).all()
    counts = defaultdict(int, {(site, status): n for site, status, n in rows})
    sites = (await session.execute(select(Site).order_by(Site.id))).scalars()
    return [SiteRead(id=s.id, name=s.name, capacity=s.capacity, enrolled=counts[(s.id, "enrolled")],
                     waitlisted=counts[(s.id, "waitlisted")]) for s in sites]


async def upsert_site(session: AsyncSession, *, data: SiteIn) -> SiteRead:
    site = await session.get(Site, data.id, with_for_update=True)
    if site is None:
        site = Site(id=data.id, name=data.name, capacity=data.capacity)
        session.add(site)
    else:
        site.name, site.capacity = data.name, data.capacity
    await session.flush()
    return next(s for s in await list_sites(session) if s.id == data.id)


# --- households ---------------------------------------------------------------------------

async def create_household(session: AsyncSession, *, vault: CprVault, data: HouseholdIn,
                           register_ref: str | None = None, today: date | None = None) -> HouseholdRead:
    """Register a candidate household with its members and screen it at once."""
    site = await session.get(Site, data.site_id)
    if site is None:
        raise Unprocessable("Unknown site.", fields={"body.site_id": "unknown site"})
    cprs = _parse_members(data.members)
    await _refuse_duplicates(session, vault, cprs)
    household = Household(site_id=site.id, address=data.address, register_ref=register_ref)
    session.add(household)
    await session.flush()
    for member, cpr in zip(data.members, cprs, strict=True):
        session.add(_person(household.id, member, cpr, vault))
    await session.flush()
    await _screen(session, household, today or date.today())
    return await read_household(session, household_id=household.id, vault=vault)


def _parse_members(members: Sequence[MemberIn]) -> list[Cpr]:
    problems: dict[str, str] = {}
    parsed: list[Cpr] = []
    for index, member in enumerate(members):
        try:
            parsed.append(parse_cpr(member.cpr))
        except InvalidCpr as exc:
            problems[f"body.members.{index}.cpr"] = str(exc)
    if problems:
        raise Unprocessable("Invalid CPR number.", fields=problems)
    if len({c.digits for c in parsed}) != len(parsed):
        raise Unprocessable("The same CPR number is given twice.", fields={"body.members": "duplicate CPR"})
    return parsed


async def _refuse_duplicates(session: AsyncSession, vault: CprVault, cprs: Sequence[Cpr]) -> None:
    hashes = [vault.lookup_hash(c) for c in cprs]
    clash = (await session.execute(
        select(Person.id).join(Household, Household.id == Person.household_id)
        .where(Person.cpr_hash.in_(hashes), Person.active, Household.status.in_(ACTIVE)).limit(1)
    )).first()
    if clash is not None:
        raise Conflict("A person with this CPR number is already in an active household.")


def _person(household_id: uuid.UUID, member: MemberIn, cpr: Cpr, vault: CprVault) -> Person:
    return Person(household_id=household_id, role=member.role, birth_date=cpr.birth_date,
                  cpr_ciphertext=vault.encrypt(cpr), cpr_hash=vault.lookup_hash(cpr),
                  cpr_is_replacement=cpr.is_replacement, unemployed_since=member.unemployed_since,
                  lives_at_address=member.lives_at_address)


async def _members(session: AsyncSession, household_id: uuid.UUID) -> list[Person]:
    rows = await session.execute(select(Person).where(Person.household_id == household_id, Person.active)
                                 .order_by(Person.added_at, Person.id))
    return list(rows.scalars())


def _set_status(household: Household, status: d.HouseholdStatus) -> None:
    """Every status change goes through here, so the furthest funnel stage moves with it."""
    household.status = status.value
    previous = d.HouseholdStatus(household.furthest_stage) if household.furthest_stage else None
    reached = d.furthest_stage(previous, status)
    household.furthest_stage = reached.value if reached else None


async def _screen(session: AsyncSession, household: Household, today: date) -> d.Screening:
    members = await _members(session, household.id)
    facts = d.HouseholdFacts(household.site_id, tuple(
        d.MemberFacts(p.id, d.MemberRole(p.role), p.birth_date, p.unemployed_since, p.lives_at_address)
        for p in members), household.address)
    result = d.screen(facts, today=today, area=await load_area(session, household.site_id))
    household.eligible = result.eligible
    household.screening = [{"code": c.code, "met": c.met, "explanation": c.explanation, "state": c.state}
                           for c in result.criteria]
    household.screened_at = now()
    current = d.HouseholdStatus(household.status)
    if current in (d.HouseholdStatus.IDENTIFIED, d.HouseholdStatus.NOT_ELIGIBLE, d.HouseholdStatus.NO_ANSWER,
                   d.HouseholdStatus.CONTACTED):
        _set_status(household, d.HouseholdStatus.IDENTIFIED if result.eligible
                    else d.HouseholdStatus.NOT_ELIGIBLE)
    await session.flush()
    await record_event(session, events.HouseholdScreened(
        family_id=household.id, site_id=household.site_id, eligible=result.eligible,
        criteria=[events.CriterionOutcome(code=c.code, met=c.met) for c in result.criteria]))
    return result


async def rescreen(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault,
                   today: date | None = None) -> HouseholdRead:
    household = await _lock(session, household_id)
    await _screen(session, household, today or date.today())
    return await read_household(session, household_id=household_id, vault=vault)


async def update_member(session: AsyncSession, *, household_id: uuid.UUID, person_id: uuid.UUID,
                        changes: dict[str, Any], vault: CprVault, today: date | None = None) -> HouseholdRead:
    """Correct a member's facts and screen the household again on them."""
    household = await _lock(session, household_id)
    person = await session.get(Person, person_id)
    if person is None or person.household_id != household.id:
        raise NotFound("No such member in this household.")
    if not changes:
        raise Unprocessable("Nothing to change.",
                            fields={"body": "give unemployed_since or lives_at_address"})
    for name, value in changes.items():
        setattr(person, name, value)
    await session.flush()
    await _screen(session, household, today or date.today())
    return await read_household(session, household_id=household_id, vault=vault)


async def _lock(session: AsyncSession, household_id: uuid.UUID) -> Household:
    """Lock the household first: its events then get outbox ids in commit order."""
    household = await session.get(Household, household_id, with_for_update=True)
    if household is None:
        raise NotFound("No such household.")
    return household


async def get_household_site(session: AsyncSession, household_id: uuid.UUID) -> str:
    site = (await session.execute(select(Household.site_id).where(Household.id == household_id))).scalar()
    if site is None:
        raise NotFound("No such household.")
    return str(site)


async def get_household(session: AsyncSession, household_id: uuid.UUID) -> Household:
    """The household, loaded into the session: ``read_household`` then finds it in the identity
    map, so authorising a read and answering it take one query for the row, not two."""
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound("No such household.")
    return household


async def read_household(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault) -> HouseholdRead:
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound("No such household.")
    members = await _members(session, household_id)
    position = await _waitlist_position(session, household) if household.status == "waitlisted" else None
    return HouseholdRead(
        id=household.id, site_id=household.site_id, address=household.address, status=household.status,
        eligible=household.eligible, waitlist_position=position,
        screening=[_criterion(c) for c in household.screening or []],
        members=[MemberRead(id=p.id, role=p.role, birth_year=p.birth_date.year,
                            cpr_masked=vault.decrypt(p.cpr_ciphertext).masked(),
                            unemployed_since=p.unemployed_since, lives_at_address=p.lives_at_address)
                 for p in members])


def _criterion(stored: dict[str, object]) -> CriterionRead:
    """A stored criterion; those screened before ``state`` was kept were met or not, never unknown."""
    state = stored.get("state") or ("met" if stored["met"] else "not_met")
    return CriterionRead(code=str(stored["code"]), met=bool(stored["met"]),
                         explanation=str(stored["explanation"]), state=state)  # type: ignore[arg-type]


def check_site(principal: Principal, site_id: str) -> None:
    """Team staff see their own site only; another site's household is reported as absent."""
    if not principal.can_see_site(site_id):
        raise NotFound("No such household.")


# --- outreach -----------------------------------------------------------------------------

async def record_outreach(session: AsyncSession, *, household_id: uuid.UUID, data: OutreachIn,
                          vault: CprVault, caller: str) -> HouseholdRead:
    household = await _lock(session, household_id)
    if data.at.tzinfo is None:
        raise Unprocessable("Times must carry a time zone.", fields={"body.at": "no time zone"})
    staff_id = await _outreach_staff(session, data.staff_id, caller=caller, site_id=household.site_id)
    status = d.status_after_attempt(d.HouseholdStatus(household.status), d.ContactOutcome(data.outcome))
    attempt = OutreachAttempt(household_id=household.id, at=data.at.astimezone(UTC), staff_id=staff_id,
                              channel=data.channel, outcome=data.outcome)
    session.add(attempt)
    _set_status(household, status)
    await session.flush()
    await record_event(session, events.OutreachAttemptRecorded(
        family_id=household.id, site_id=household.site_id, attempt_id=attempt.id, at=attempt.at,
        staff_id=staff_id, outcome=data.outcome, status=status.value))
    return await read_household(session, household_id=household_id, vault=vault)


async def _outreach_staff(session: AsyncSession, staff_id: str | None, *, caller: str, site_id: str) -> str:
    """Who made the attempt: the caller, or a staff member of the site known from casework.

    The id goes on intake's topic, so it must be a known id and never free text (a name, a note
    or a CPR number typed into the field is refused, and the value is not echoed).
    """
    if staff_id is None or staff_id == caller:
        return caller
    try:
        known = await session.get(KnownStaff, uuid.UUID(staff_id))
    except ValueError:
        known = None
    if known is None or known.site_id != site_id:
        raise Unprocessable("Not a staff member of this site.", fields={
            "body.staff_id": "not a staff member of the household's site, nor the caller"})
    return str(known.staff_id)


async def funnel(session: AsyncSession, *, site_id: str | None) -> dict[str, int]:
    query = select(Household.furthest_stage)
    if site_id:
        query = query.where(Household.site_id == site_id)
    stages = [d.HouseholdStatus(s) if s else None for s in (await session.execute(query)).scalars()]
    return d.funnel_counts(stages)


# --- consent ------------------------------------------------------------------------------

async def give_consent(session: AsyncSession, *, household_id: uuid.UUID, data: ConsentIn,
                       by: str) -> ConsentRead:
    household = await _lock(session, household_id)
    members = {p.id: p for p in await _members(session, household_id)}
    subject, giver = members.get(data.person_id), members.get(data.given_by_person_id)
    if subject is None or giver is None:
        field = "body.person_id" if subject is None else "body.given_by_person_id"
        raise Unprocessable("Not a member of this household.", fields={field: "not a member"})
    _check(lambda: rules.check_grants(data.departments, data.purposes))
    d.check_consent_giver(d.MemberRole(subject.role), d.MemberRole(giver.role), subject.id == giver.id)
    if household.status in ("exited", "not_eligible", "declined"):
        raise Conflict(f"A household that is {household.status} cannot give consent.")
    at = now()
    consent = Consent(household_id=household.id, person_id=subject.id, given_by_person_id=giver.id,
                      departments=[dep.value for dep in data.departments],
                      purposes=[p.value for p in data.purposes], given_at=at, expires_on=data.expires_on)
    session.add(consent)
    await session.flush()
    _log(session, consent, "given", at, by, consent.departments)
    if household.status == "invited":
        _set_status(household, d.transition(d.HouseholdStatus.INVITED, d.HouseholdStatus.CONSENTED))
    await session.flush()
    await _announce_given(session, household, consent, subject)
    return await _consent_read(session, consent, subject)


def _check(rule: Callable[[], T]) -> T:
    """Run a consent rule; a mismatch of departments and purposes is the caller's (422)."""
    try:
        return rule()
    except rules.GrantProblem as exc:
        raise Unprocessable(str(exc), fields=exc.fields) from None


def _log(session: AsyncSession, consent: Consent, state: str, at: datetime, by: str,
         departments: list[str]) -> None:
    """Append to the consent's history: the team reads it, and the receipt is written from it."""
    session.add(ConsentHistory(consent_id=consent.id, state=state, at=at, by=by, departments=departments,
                               expires_on=consent.expires_on if state in ("given", "renewed") else None))


async def _announce_given(session: AsyncSession, household: Household, consent: Consent,
                          person: Person) -> None:
    """``consent-given`` (v2: purpose codes per department) for the departments still covered."""
    live = rules.live_departments(consent.departments, consent.withdrawn)
    grants = [events.Grant(department=g.department.value, purposes=[p.value for p in g.purposes])  # type: ignore[arg-type]
              for g in rules.grants(consent.departments, consent.purposes, consent.withdrawn)
              if not g.withdrawn]
    await record_event(session, events.ConsentGivenV2(
        family_id=household.id, site_id=household.site_id, consent_id=consent.id, person_id=person.id,
        person_role=person.role, departments=live, purposes=consent.purposes,  # type: ignore[arg-type]
        grants=grants, expires_on=consent.expires_on,
        covered_after=await _shared_with(session, household.id)))


async def _locked_consent(session: AsyncSession, household: Household, consent_id: uuid.UUID) -> Consent:
    consent = await session.get(Consent, consent_id, with_for_update=True)
    if consent is None or consent.household_id != household.id:
        raise NotFound("No such consent.")
    return consent


async def revoke_consent(session: AsyncSession, *, household_id: uuid.UUID, consent_id: uuid.UUID,
                         by: str, departments: list[Department] | None = None) -> ConsentRead:
    """Withdraw the consent, or only some of its departments (the others keep it); withdrawing
    the last one withdraws the consent. The other services are told at once."""
    household = await _lock(session, household_id)
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
        covered_after=await _shared_with(session, household.id)))
    return await _consent_read(session, consent)


async def renew_consent(session: AsyncSession, *, household_id: uuid.UUID, consent_id: uuid.UUID,
                        expires_on: date | None, by: str) -> ConsentRead:
    household = await _lock(session, household_id)
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
        household = await _lock(session, consent.household_id)
        consent.state = d.transition_consent(d.ConsentState(consent.state), d.ConsentState.EXPIRED).value
        live = rules.live_departments(consent.departments, consent.withdrawn)
        _log(session, consent, "expired", now(), by, live)
        await session.flush()
        await record_event(session, events.ConsentRevoked(
            family_id=household.id, site_id=household.site_id, consent_id=consent.id,
            person_id=consent.person_id, departments=live, state="expired",  # type: ignore[arg-type]
            covered_after=await _shared_with(session, household.id)))
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


async def _covered(session: AsyncSession, household_id: uuid.UUID, today: date) -> set[Department]:
    rows = await session.execute(select(Consent, Person.role).join(Person, Person.id == Consent.person_id)
                                 .where(Consent.household_id == household_id))
    return d.covered_departments((d.ConsentFacts(d.MemberRole(role), frozenset(
        Department(x) for x in rules.live_departments(c.departments, c.withdrawn)), d.ConsentState(c.state),
        c.expires_on)
        for c, role in rows.all()), today=today)


async def _shared_with(session: AsyncSession, household_id: uuid.UUID) -> list[str]:
    """The departments that may see the family's events now: those its consent covers."""
    covered = await _covered(session, household_id, date.today())
    return [department.value for department in Department if department in covered]


# --- enrolment, waitlist, exit ------------------------------------------------------------

async def enrol(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault) -> HouseholdRead:
    """Enrol if the site has room, else put the family on the site's ordered waitlist."""
    site_id = await get_household_site(session, household_id)
    site = await session.get(Site, site_id, with_for_update=True)  # serialises capacity decisions
    household = await _lock(session, household_id)
    assert site is not None
    if household.status != "consented":
        raise Conflict(f"Only a consented household can be enrolled; this one is {household.status}.")
    has_consent = bool(await _covered(session, household_id, date.today()))
    enrolled = await _count(session, site_id, "enrolled")
    decision = d.decide_enrolment(has_consent=has_consent, enrolled=enrolled, capacity=site.capacity)
    if decision is d.HouseholdStatus.ENROLLED:
        await _enrol_now(session, household)
    else:
        _set_status(household, decision)
        household.waitlisted_at = now()
        await session.flush()
        await record_event(session, events.FamilyWaitlisted(
            family_id=household.id, site_id=site_id, position=await _waitlist_position(session, household)))
    return await read_household(session, household_id=household_id, vault=vault)


async def _enrol_now(session: AsyncSession, household: Household) -> None:
    _set_status(household, d.transition(d.HouseholdStatus(household.status), d.HouseholdStatus.ENROLLED))
    household.enrolled_at = now()
    await session.flush()
    members = await _members(session, household.id)
    await record_event(session, events.FamilyEnrolled(
        family_id=household.id, site_id=household.site_id,
        members=[events.Member(person_id=p.id, role=p.role, birth_year=p.birth_date.year)  # type: ignore[arg-type]
                 for p in members], shared_with=await _shared_with(session, household.id)))


async def _count(session: AsyncSession, site_id: str, status: str) -> int:
    return int((await session.execute(select(func.count()).select_from(Household).where(
        Household.site_id == site_id, Household.status == status))).scalar_one())


async def _waitlist_position(session: AsyncSession, household: Household) -> int:
    ahead = (await session.execute(select(func.count()).select_from(Household).where(
        Household.site_id == household.site_id, Household.status == "waitlisted",
        Household.waitlisted_at < household.waitlisted_at))).scalar_one()
    return int(ahead) + 1


async def exit_family(session: AsyncSession, *, household_id: uuid.UUID, reason: str,
                      vault: CprVault) -> HouseholdRead:
    """Exit with a reason; a freed place goes at once to the first family on the waitlist."""
    site_id = await get_household_site(session, household_id)
    await session.get(Site, site_id, with_for_update=True)
    household = await _lock(session, household_id)
    was_enrolled = household.status == "enrolled"
    _set_status(household, d.transition(d.HouseholdStatus(household.status), d.HouseholdStatus.EXITED))
    household.exited_at, household.exit_reason = now(), d.ExitReason(reason).value
    await session.flush()
    await record_event(session, events.FamilyExited(
        family_id=household.id, site_id=site_id, reason=reason,  # type: ignore[arg-type]
        shared_with=await _shared_with(session, household.id)))
    if was_enrolled:
        await _offer_place(session, site_id)
    return await read_household(session, household_id=household_id, vault=vault)


async def _offer_place(session: AsyncSession, site_id: str) -> None:
    """Give the freed place to the first waitlisted family whose consent still covers (never
    enrol without consent: it may have been withdrawn or have expired while the family waited)."""
    waiting = (await session.execute(select(Household.id).where(
        Household.site_id == site_id, Household.status == "waitlisted")
        .order_by(Household.waitlisted_at, Household.id))).scalars().all()
    today = date.today()
    next_id = d.next_from_waitlist([(household_id, await _covered(session, household_id, today))
                                    for household_id in waiting])
    if next_id is not None:
        await _enrol_now(session, await _lock(session, next_id))


async def add_member(session: AsyncSession, *, household_id: uuid.UUID, member: MemberIn,
                     vault: CprVault, today: date | None = None) -> HouseholdRead:
    """A spouse or adult child at the address joins the family."""
    household = await _lock(session, household_id)
    if household.status == "exited":
        raise Conflict("The family has exited.")
    cpr = _parse_members([member])[0]
    if member.role == "child" or d.one_year_before(today or date.today()).year - cpr.birth_date.year < 17:
        raise Unprocessable("Only adults are added later.", fields={"body.role": "must be an adult"})
    await _refuse_duplicates(session, vault, [cpr])
    person = _person(household.id, member, cpr, vault)
    session.add(person)
    await session.flush()
    if household.status == "enrolled":
        await record_event(session, events.MemberAdded(
            family_id=household.id, site_id=household.site_id,
            member=events.Member(person_id=person.id, role=member.role, birth_year=cpr.birth_date.year),
            shared_with=await _shared_with(session, household.id)))
    return await read_household(session, household_id=household_id, vault=vault)


# --- register import ----------------------------------------------------------------------

def import_scope(principal: Principal) -> str | None:
    """The one site a caller may import for: a team leader its own; municipal systems any (None)."""
    return principal.site if principal.is_team else None


async def import_register(session: AsyncSession, *, vault: CprVault, content: bytes, site: str | None = None,
                          progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a register extract; whole good households are created, bad rows reported; idempotent.

    ``site`` restricts the rows to one site (see ``import_scope``); ``None`` takes every site.
    """
    # Hashing and parsing a file of megabytes take CPU time: in a thread, so the service keeps
    # answering (/healthz included) while an import runs.
    digest, text = await asyncio.to_thread(_decode_import, content)
    previous = (await session.execute(select(ImportRun).where(ImportRun.file_sha256 == digest))).scalar()
    if previous is not None:
        return ImportReport(already_imported=True, households=0, persons=0,
                            rejected=[ImportRejectedRow(**r) for r in previous.rejected])  # type: ignore[arg-type]
    groups, errors = await asyncio.to_thread(lambda: d.group_households(d.read_import(text, site=site)))
    rejected = [ImportRejectedRow(line=e.line, reason=e.reason) for e in errors]
    households = persons = 0
    for done, (ref, rows) in enumerate(groups.items(), start=1):
        outcome = await _import_household(session, vault, ref, rows)
        if isinstance(outcome, str):
            rejected.extend(ImportRejectedRow(line=r.line, reason=outcome) for r in rows)
        else:
            households, persons = households + outcome, persons + outcome * len(rows)
        if progress:
            progress(done)
    rejected.sort(key=lambda r: r.line)
    session.add(ImportRun(file_sha256=digest, imported_rows=persons,
                          rejected=[r.model_dump() for r in rejected]))
    await session.flush()
    return ImportReport(already_imported=False, households=households, persons=persons, rejected=rejected)


def _decode_import(content: bytes) -> tuple[str, str]:
    """The file's digest and text; an empty, non-UTF-8 or header-less file is refused before
    anything is recorded (it is not a register extract, so it is no import run either)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unprocessable("The file is not UTF-8 text.", fields={"body": "not UTF-8"}) from None
    if not text.strip():
        raise Unprocessable("The file is empty.", fields={"body": "empty"})
    missing = d.missing_import_columns(text)
    if missing:
        raise Unprocessable("The file is not a register extract in CSV.",
                            fields={"body": f"missing columns: {', '.join(missing)}"})
    return hashlib.sha256(content).hexdigest(), text


async def _import_household(session: AsyncSession, vault: CprVault, ref: str,
                            rows: list[d.ImportRow]) -> int | str:
    """1 if created, 0 if already there (same register reference), else the reason it failed."""
    if (await session.execute(select(Household.id).where(Household.register_ref == ref))).first():
        return 0
    first = rows[0]
    if any((r.site_id, r.address) != (first.site_id, first.address) for r in rows):
        return f"household {ref}: its rows disagree on site or address"
    data = HouseholdIn(site_id=first.site_id, address=first.address, members=[
        MemberIn(cpr=r.cpr.digits, role=r.role.value, unemployed_since=r.unemployed_since,  # type: ignore[arg-type]
                 lives_at_address=r.lives_at_address) for r in rows])
    try:
        async with session.begin_nested():
            await create_household(session, vault=vault, data=data, register_ref=ref)
    except (Unprocessable, Conflict) as exc:
        return f"household {ref}: {exc.detail}"
    return 1


def require_site_access(principal: Principal, site_id: str | None) -> str | None:
    """Team staff are bound to their site; a filter for another site is refused."""
    if principal.is_team:
        if site_id not in (None, principal.site):
            raise Forbidden("Team staff see their own site only.")
        return principal.site
    return site_id
