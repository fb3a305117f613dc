"""Referral use cases. Each writes and flushes; the entrypoint commits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import domain as d
from services.referrals.models import (
    ConsentCover,
    FamilyMember,
    FamilySite,
    Offer,
    Referral,
    ReferralHistory,
)
from services.referrals.schemas import HistoryRead, OfferIn, OfferRead, ReferralIn, ReferralRead
from shared.auth import Principal, Role
from shared.consent import Cover, covered_departments
from shared.departments import Department
from shared.errors import NotFound, Unprocessable
from shared.events import referrals as ev
from shared.outbox import record_event

EVENT_FOR = {d.State.DRAFT: ev.ReferralDrafted, d.State.SENT: ev.ReferralSent,
             d.State.ACCEPTED: ev.ReferralAccepted, d.State.DECLINED: ev.ReferralDeclined,
             d.State.IN_PROGRESS: ev.ReferralStarted, d.State.COMPLETED: ev.ReferralCompleted,
             d.State.CANCELLED: ev.ReferralCancelled, d.State.ON_HOLD: ev.ReferralPutOnHold}


def now() -> datetime:
    return datetime.now(UTC)


def actor_of(principal: Principal) -> d.Actor:
    if principal.role is Role.DEPARTMENT_STAFF:
        return d.Actor.DEPARTMENT
    return d.Actor.SYSTEM if principal.role is Role.SYSTEM else d.Actor.TEAM


# --- offers -------------------------------------------------------------------------------

async def seed_offers(session: AsyncSession) -> None:
    for seed in d.SEED_OFFERS:
        if await session.get(Offer, seed.code) is None:
            session.add(Offer(code=seed.code, department=seed.department.value, title=seed.title,
                              required_fields=list(seed.required_fields), sla_days=seed.sla_days))
    await session.flush()


async def list_offers(session: AsyncSession, department: str | None) -> list[OfferRead]:
    query = select(Offer).order_by(Offer.department, Offer.code)
    if department:
        query = query.where(Offer.department == department)
    offers = (await session.execute(query)).scalars()
    return [OfferRead.model_validate(o, from_attributes=True) for o in offers]


async def upsert_offer(session: AsyncSession, *, data: OfferIn) -> OfferRead:
    unknown = [f for f in data.required_fields if f not in d.KNOWN_FIELDS]
    if unknown:
        raise Unprocessable("Unknown information fields.",
                            fields={"body.required_fields": ", ".join(unknown)})
    offer = await session.get(Offer, data.code) or Offer(code=data.code, required_fields=[], department="",
                                                         title="", sla_days=1)
    for name, value in data.model_dump(mode="json").items():
        setattr(offer, name, value)
    session.add(offer)
    await session.flush()
    return OfferRead.model_validate(offer, from_attributes=True)


# --- visibility ---------------------------------------------------------------------------

def visible(query: Select[Any], principal: Principal) -> Select[Any]:
    """Departments see the referrals they have received; team staff their site's; others all.

    A department receives a referral when the team sends it: a draft is the team's working note,
    so it is absent for the department even when addressed to it (and stays absent if it is
    cancelled unsent, e.g. when the family's consent for the department is revoked). What the
    department received stays readable after a revocation: it is its own case record.
    """
    if principal.role is Role.DEPARTMENT_STAFF and principal.department is not None:
        return query.where(Referral.target_department == principal.department.value,
                           Referral.sent_at.is_not(None))  # type: ignore[union-attr]
    if principal.is_team:
        return query.where(Referral.site_id == principal.site)
    return query


async def get_referral(session: AsyncSession, principal: Principal, referral_id: uuid.UUID,
                       lock: bool = False) -> Referral:
    """Another department's or site's referral is reported as absent (no existence leak)."""
    query = visible(select(Referral).where(Referral.id == referral_id), principal)
    referral = (await session.execute(query.with_for_update() if lock else query)).scalar()
    if referral is None:
        raise NotFound("No such referral.")
    return referral


async def family_of(session: AsyncSession, referral_id: uuid.UUID) -> uuid.UUID | None:
    """The referral's family whoever asks: for the audit log only, never for a response."""
    return (await session.execute(select(Referral.family_id).where(Referral.id == referral_id))).scalar()


async def read(session: AsyncSession, principal: Principal, referral: Referral) -> ReferralRead:
    """The team's free-text reason is shown to the team only; the offer's fields to the team and
    the receiving department (whose work needs them), never to overview or system roles."""
    history = (await session.execute(select(ReferralHistory).where(
        ReferralHistory.referral_id == referral.id).order_by(ReferralHistory.id))).scalars()
    receiving = principal.role is Role.DEPARTMENT_STAFF and principal.department is not None and \
        principal.department.value == referral.target_department
    return ReferralRead(
        id=referral.id, family_id=referral.family_id, site_id=referral.site_id,
        offer_code=referral.offer_code,
        target_department=referral.target_department, person_id=referral.person_id,
        priority=referral.priority, fields=referral.fields if principal.is_team or receiving else None,
        state=referral.state,
        business_status=referral.business_status, outcome_code=referral.outcome_code,
        reason_code=referral.reason_code, due_at=referral.due_at,
        overdue=d.is_overdue(d.State(referral.state), referral.due_at, now()),
        reason=referral.reason if principal.is_team else None,
        history=[HistoryRead.model_validate(h, from_attributes=True) for h in history])


# --- lifecycle ----------------------------------------------------------------------------

async def draft(session: AsyncSession, *, principal: Principal, data: ReferralIn,
                escalation_id: uuid.UUID | None = None) -> Referral:
    offer = await session.get(Offer, data.offer_code)
    if offer is None or not offer.active:
        raise Unprocessable("Unknown offer.", fields={"body.offer_code": "unknown offer"})
    family = await session.get(FamilySite, data.family_id)
    if family is None or not principal.can_see_site(family.site_id):
        raise Unprocessable("Unknown family.", fields={"body.family_id": "unknown family"})
    d.require_family_in_programme(family.exited_at is not None)
    if data.person_id is not None:
        await _check_member(session, data.family_id, data.person_id, "body.person_id")
    if data.fields:
        _check_fields(offer, data.fields)
        await _check_field_person(session, data.family_id, data.fields)
    referral = Referral(family_id=data.family_id, site_id=family.site_id, offer_code=offer.code,
                        target_department=offer.department, person_id=data.person_id, priority=data.priority,
                        reason=data.reason, fields=data.fields, escalation_id=escalation_id)
    session.add(referral)
    await session.flush()
    await _log_and_publish(session, referral, None, principal.subject)
    return referral


def _check_fields(offer: Offer, fields: dict[str, str]) -> dict[str, str]:
    try:
        return d.validate_fields(tuple(offer.required_fields), fields)
    except d.FieldProblem as exc:
        raise Unprocessable(str(exc), fields={f"body.fields.{f}": str(exc) for f in exc.fields}) from None


async def _check_member(session: AsyncSession, family_id: uuid.UUID, person_id: uuid.UUID,
                        field: str) -> None:
    """A referral names only a person of its own family (members learnt from intake's events)."""
    member = await session.get(FamilyMember, person_id)
    if member is None or member.family_id != family_id:
        raise Unprocessable("The person is not a member of this family.",
                            fields={field: "not a member of the family"})


async def _check_field_person(session: AsyncSession, family_id: uuid.UUID, fields: dict[str, str]) -> None:
    """The ``person_id`` information goes to the department, so it must be the family's too."""
    if "person_id" not in fields:
        return
    try:
        person_id = uuid.UUID(fields["person_id"])
    except ValueError:
        raise Unprocessable("The person is not a member of this family.",
                            fields={"body.fields.person_id": "not a person id"}) from None
    await _check_member(session, family_id, person_id, "body.fields.person_id")


async def set_fields(session: AsyncSession, *, principal: Principal, referral_id: uuid.UUID,
                     fields: dict[str, str]) -> Referral:
    referral = await get_referral(session, principal, referral_id, lock=True)
    if referral.state != "draft":
        raise d.ReferralsConflict("Only a draft's information can be changed.")
    offer = await session.get(Offer, referral.offer_code)
    assert offer is not None
    referral.fields = _check_fields(offer, fields)
    await _check_field_person(session, referral.family_id, referral.fields)
    await session.flush()
    return referral


async def covered(session: AsyncSession, family_id: uuid.UUID, today: date | None = None) -> set[Department]:
    """Departments the family's live consents cover today (adults' only, unexpired)."""
    rows = await session.execute(
        select(ConsentCover.department, ConsentCover.person_role, FamilyMember.role, ConsentCover.expires_on)
        .outerjoin(FamilyMember, FamilyMember.person_id == ConsentCover.person_id)  # type: ignore[arg-type]
        .where(ConsentCover.family_id == family_id, ConsentCover.active))
    return covered_departments((Cover(Department(department), role or member_role, expires_on)
                                for department, role, member_role, expires_on in rows.all()),
                               today=today or date.today())


async def move(session: AsyncSession, *, principal: Principal, referral: Referral, target: d.State,
               reason_code: str | None = None, outcome_code: str | None = None) -> Referral:
    """Make one transition; every transition is recorded and published."""
    current = d.State(referral.state)
    if target is d.State.SENT and current is d.State.DRAFT:
        offer = await session.get(Offer, referral.offer_code)
        assert offer is not None
        _check_fields(offer, referral.fields)
        cover = await covered(session, referral.family_id)
        d.require_consent(cover, Department(referral.target_department))
        sla = timedelta(days=offer.sla_days)
    actor = actor_of(principal)
    d.transition(current, target, actor=actor, reason_code=reason_code)
    if target is d.State.SENT and current is d.State.DRAFT:
        referral.sent_at = now()  # from now on the department has received it
        referral.due_at = d.due_at(referral.sent_at, sla, referral.priority)
    if target is d.State.ON_HOLD:
        referral.state_before_hold = current.value
    referral.state, referral.reason_code = target.value, reason_code or referral.reason_code
    referral.outcome_code = outcome_code or referral.outcome_code
    await session.flush()
    await _log_and_publish(session, referral, current, principal.subject, reason_code)
    return referral


async def resume(session: AsyncSession, *, principal: Principal, referral: Referral) -> Referral:
    """Take a referral on hold back to the state it had, once consent covers the department again."""
    current = d.State(referral.state)
    before = d.State(referral.state_before_hold) if referral.state_before_hold else None
    target = d.resume(current, before, actor=actor_of(principal),
                      covered=await covered(session, referral.family_id),
                      target_department=Department(referral.target_department))
    # The hold's reason no longer describes the referral; the history keeps it.
    referral.state, referral.state_before_hold, referral.reason_code = target.value, None, None
    await session.flush()
    await _log_and_publish(session, referral, current, principal.subject, event=ev.ReferralResumed)
    return referral


async def _log_and_publish(session: AsyncSession, referral: Referral, before: d.State | None, by: str,
                           reason_code: str | None = None, event: Any = None) -> None:
    session.add(ReferralHistory(referral_id=referral.id, from_state=before.value if before else None,
                                to_state=referral.state, by=by, reason_code=reason_code))
    await session.flush()
    model = event or EVENT_FOR[d.State(referral.state)]
    await record_event(session, model(
        family_id=referral.family_id, site_id=referral.site_id, referral_id=referral.id,
        offer_code=referral.offer_code, target_department=referral.target_department,
        person_id=referral.person_id, priority=referral.priority, state=referral.state, at=now(),
        due_at=referral.due_at, reason_code=reason_code, outcome_code=referral.outcome_code,
        received_by=referral.target_department if referral.sent_at else None))


async def note_status(session: AsyncSession, *, principal: Principal, referral_id: uuid.UUID,
                      business_status: str) -> Referral:
    referral = await get_referral(session, principal, referral_id, lock=True)
    if actor_of(principal) is not d.Actor.DEPARTMENT:
        raise d.NotAllowed("Only the receiving department keeps the business status.")
    referral.business_status = business_status
    await session.flush()
    await _log_and_publish(session, referral, d.State(referral.state), principal.subject,
                           "business_status", event=ev.ReferralStatusNoted)
    return referral


async def flag_overdue(session: AsyncSession, *, by: str, at: datetime | None = None) -> int:
    """Publish an overdue event once per referral that has passed its due date."""
    at = at or now()
    rows = (await session.execute(select(Referral).where(
        Referral.state.in_([s.value for s in d.OPEN]), Referral.due_at < at,  # type: ignore[attr-defined]
        Referral.overdue_notified.is_(False)).with_for_update())).scalars().all()  # type: ignore[attr-defined]
    for referral in rows:
        referral.overdue_notified = True
        await _log_and_publish(session, referral, d.State(referral.state), by, "overdue",
                               event=ev.ReferralOverdue)
    return len(rows)
