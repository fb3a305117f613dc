"""Referrals' reactions to intake (families, consent) and casework (escalations to a faglig ven)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import domain as d
from services.referrals import service
from services.referrals.models import ConsentCover, FamilySite, Offer, Referral
from services.referrals.schemas import ReferralIn
from shared.auth import Principal, Role
from shared.events.casework import EscalationRaised
from shared.events.envelope import Envelope
from shared.events.intake import ConsentGiven, ConsentRevoked, FamilyEnrolled
from shared.inbox import Subscription

SYSTEM = Principal(subject="referrals-service", role=Role.SYSTEM)


async def on_family_enrolled(session: AsyncSession, event: FamilyEnrolled, _: Envelope) -> None:
    if await session.get(FamilySite, event.family_id) is None:
        session.add(FamilySite(family_id=event.family_id, site_id=event.site_id))
        await session.flush()


async def on_consent_given(session: AsyncSession, event: ConsentGiven, _: Envelope) -> None:
    if await session.get(FamilySite, event.family_id) is None:
        session.add(FamilySite(family_id=event.family_id, site_id=event.site_id))
    for department in event.departments:
        if await session.get(ConsentCover, (event.consent_id, department)) is None:
            session.add(ConsentCover(consent_id=event.consent_id, department=department,
                                     family_id=event.family_id))
    await session.flush()


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


async def on_escalation_raised(session: AsyncSession, event: EscalationRaised, _: Envelope) -> None:
    """A faglig-ven escalation becomes a referral draft, sent at once when consent allows it."""
    if event.step != "faglig_ven" or event.target_department is None:
        return
    existing = (await session.execute(select(Referral.id).where(
        Referral.escalation_id == event.escalation_id))).first()
    if existing is not None:
        return
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
    FamilyEnrolled: on_family_enrolled, ConsentGiven: on_consent_given, ConsentRevoked: on_consent_revoked,
    EscalationRaised: on_escalation_raised})
