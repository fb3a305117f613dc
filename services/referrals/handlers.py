"""Referrals' reactions to intake (families, consent) and casework (escalations to a faglig ven)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import domain as d
from services.referrals import service
from services.referrals.models import ConsentCover, FamilyMember, FamilySite, Offer, Referral
from services.referrals.schemas import ReferralIn
from shared.auth import Principal, Role
from shared.db import insert_rows
from shared.events.casework import EscalationRaised
from shared.events.envelope import Envelope
from shared.events.intake import (
    ConsentGiven,
    ConsentGivenBase,
    ConsentGivenV2,
    ConsentRevoked,
    FamilyEnrolled,
    FamilyExited,
    Member,
    MemberAdded,
)
from shared.inbox import NotYet, Subscription, one_at_a_time

SYSTEM = Principal(subject="referrals-service", role=Role.SYSTEM)
SITES, MEMBERS, COVERS = (cast(Table, model.__table__) for model in (FamilySite, FamilyMember, ConsentCover))


async def on_families_enrolled(session: AsyncSession,
                               batch: Sequence[tuple[FamilyEnrolled, Envelope]]) -> None:
    """Learn each family's site and members (kept as first learnt: a family keeps its id)."""
    await _add_sites(session, [event for event, _ in batch])
    await _add_members(session, [(event.family_id, member) for event, _ in batch for member in event.members])


async def on_members_added(session: AsyncSession, batch: Sequence[tuple[MemberAdded, Envelope]]) -> None:
    await _add_members(session, [(event.family_id, event.member) for event, _ in batch])


async def _add_sites(session: AsyncSession, events: Sequence[FamilyEnrolled | ConsentGivenBase]) -> None:
    await insert_rows(session, SITES, [{"family_id": e.family_id, "site_id": e.site_id} for e in events])


async def _add_members(session: AsyncSession, members: list[tuple[Any, Member]]) -> None:
    """Learn who belongs to the family, so a referral can only name one of its members."""
    await insert_rows(session, MEMBERS, [{"person_id": member.person_id, "family_id": family_id,
                                          "role": member.role} for family_id, member in members])


async def on_consents_given(session: AsyncSession,
                            batch: Sequence[tuple[ConsentGivenBase, Envelope]]) -> None:
    """A new consent, or a renewal (same id, new expiry): record whose it is and until when (a
    revoked cover stays inactive)."""
    events = [event for event, _ in batch]
    await _add_sites(session, events)
    await insert_rows(session, COVERS, [
        {"consent_id": e.consent_id, "department": department, "family_id": e.family_id, "active": True,
         "person_id": e.person_id, "person_role": e.person_role, "expires_on": e.expires_on}
        for e in events for department in e.departments], update=("person_id", "person_role", "expires_on"))


on_family_enrolled = one_at_a_time(on_families_enrolled)
on_member_added = one_at_a_time(on_members_added)
on_consent_given = one_at_a_time(on_consents_given)


async def on_consent_revoked(session: AsyncSession, event: ConsentRevoked, _: Envelope) -> None:
    """Stop at once: open referrals to the departments no longer covered wait or are cancelled."""
    for department in event.departments:
        cover = await session.get(ConsentCover, (event.consent_id, department))
        if cover is not None:
            cover.active = False
    await session.flush()
    still = await service.covered(session, event.family_id)
    lost = [x for x in event.departments if x not in {c.value for c in still}]
    referrals = (await session.execute(select(Referral).where(
        Referral.family_id == event.family_id, Referral.target_department.in_(lost))  # type: ignore[attr-defined]
        .with_for_update())).scalars().all()
    for referral in referrals:
        target = d.state_after_consent_revoked(d.State(referral.state))
        if target is not None:
            await service.move(session, principal=SYSTEM, referral=referral, target=target,
                               reason_code="consent_revoked")


async def on_family_exited(session: AsyncSession, event: FamilyExited, envelope: Envelope) -> None:
    """The family left: what is not closed is cancelled (each with its event), and the family is
    marked so that no new referral is made for it."""
    family = await session.get(FamilySite, event.family_id, with_for_update=True)
    if family is None:
        family = FamilySite(family_id=event.family_id, site_id=event.site_id)
        session.add(family)
    family.exited_at = family.exited_at or envelope.time
    await session.flush()
    referrals = (await session.execute(select(Referral).where(Referral.family_id == event.family_id)
                                       .order_by(Referral.created_at, Referral.id)  # type: ignore[arg-type]
                                       .with_for_update())).scalars().all()
    for referral in referrals:
        target = d.state_after_family_exited(d.State(referral.state))
        if target is not None:
            await service.move(session, principal=SYSTEM, referral=referral, target=target,
                               reason_code="family_exited")


async def on_escalation_raised(session: AsyncSession, event: EscalationRaised, _: Envelope) -> None:
    """A faglig-ven escalation becomes a referral draft, sent at once when consent allows it."""
    if event.step != "faglig_ven" or event.target_department is None:
        return
    family = await session.get(FamilySite, event.family_id)
    if family is not None and family.exited_at is not None:
        return  # the family has left: nothing more is referred (not an error to dead-letter)
    existing = (await session.execute(select(Referral.id).where(
        Referral.escalation_id == event.escalation_id))).first()
    if existing is not None:
        return
    if event.person_id is not None and await session.get(FamilyMember, event.person_id) is None:
        # The person's enrolment comes on intake's topic and may simply not have arrived yet.
        raise NotYet("the escalation names a person this service has not learnt of yet")
    offer = await session.get(Offer, event.offer_code) if event.offer_code else None
    if offer is None or offer.department != event.target_department:
        offer = await session.get(Offer, f"faglig-ven-{event.target_department}")
    assert offer is not None
    if await session.get(FamilySite, event.family_id) is None:
        session.add(FamilySite(family_id=event.family_id, site_id=event.site_id))
        await session.flush()
    fields = {"person_id": str(event.person_id)} if offer.required_fields == ["person_id"] and \
        event.person_id else {}
    referral = await service.draft(session, principal=SYSTEM, escalation_id=event.escalation_id,
                                   data=ReferralIn(family_id=event.family_id, offer_code=offer.code,
                                                   person_id=event.person_id, priority=event.priority,
                                                   reason=f"escalation: {event.reason_code}", fields=fields))
    if fields and offer.department in {x.value for x in await service.covered(session, event.family_id)}:
        await service.move(session, principal=SYSTEM, referral=referral, target=d.State.SENT)


SUBSCRIPTION = Subscription(name="referrals", services=("intake", "casework"), handlers={
    FamilyExited: on_family_exited, ConsentRevoked: on_consent_revoked,
    EscalationRaised: on_escalation_raised},
    batch_handlers={FamilyEnrolled: on_families_enrolled, MemberAdded: on_members_added,
                    ConsentGiven: on_consents_given, ConsentGivenV2: on_consents_given})
