"""HTTP routes of the referrals service: the team refers, each department works its inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from services.referrals import domain as d
from services.referrals import service
from services.referrals.models import Referral
from services.referrals.schemas import (
    CompleteIn,
    FieldsIn,
    OfferIn,
    OfferRead,
    OverdueReport,
    ReasonIn,
    ReferralIn,
    ReferralRead,
    StatusIn,
)
from shared.audit import audit_answer, audited_read, record_access, subjects_in
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.departments import Department
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, paginate

router = APIRouter(prefix="/v1", tags=["referrals"])
Team = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER))]
DepartmentStaff = Annotated[Principal, Depends(require_roles(Role.DEPARTMENT_STAFF))]
Anyone = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER, Role.DEPARTMENT_STAFF,
                                                    Role.COORDINATION, Role.SYSTEM, Role.ADMIN))]
#: Referrals are a family's personal data: only the team and the departments work with them.
Caseworkers = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER,
                                                         Role.DEPARTMENT_STAFF))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
System = Annotated[Principal, Depends(require_roles(Role.SYSTEM))]


@router.get("/offers", response_model=list[OfferRead], summary="The catalogue of department offers")
async def list_offers(session: SessionDep, principal: Anyone,
                      department: Department | None = None) -> list[OfferRead]:
    return await service.list_offers(session, department.value if department else None)


@router.post("/offers", response_model=OfferRead, status_code=201, summary="Add or change an offer (admin)")
async def upsert_offer(body: OfferIn, idem: IdempotencyDep, principal: Admin) -> OfferRead:
    return await idem.run(OfferRead, lambda: service.upsert_offer(idem.session, data=body))


@router.post("/referrals", response_model=ReferralRead, status_code=201, summary="Draft a referral")
async def draft(body: ReferralIn, idem: IdempotencyDep, principal: Team) -> ReferralRead:
    async def action() -> ReferralRead:
        referral = await service.draft(idem.session, principal=principal, data=body)
        return await service.read(idem.session, principal, referral)
    return await idem.run(ReferralRead, action, subject="referral")


@router.get("/referrals", response_model=Page[ReferralRead],
            summary="List referrals: a department sees its inbox, the team its site's referrals")
async def list_referrals(request: Request, session: SessionDep, principal: Caseworkers, limit: Limit = 50,
                         cursor: Cursor = None,
                         department: Department | None = None, status: d.State | None = None,
                         family_id: UUID | None = None, overdue: bool | None = None,
                         ) -> Page[ReferralRead]:
    query = service.visible(select(Referral), principal)
    if department:
        query = query.where(Referral.target_department == department.value)
    if status:
        query = query.where(Referral.state == status.value)
    if family_id:
        query = query.where(Referral.family_id == family_id)
    if overdue is not None:
        open_states = [s.value for s in d.OPEN]
        late = Referral.state.in_(open_states) & (Referral.due_at < service.now())  # type: ignore[attr-defined,operator]
        query = query.where(late if overdue else ~late)
    page = await paginate(session, query, key=Referral.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda r: r, parse_key=UUID)
    items = [await service.read(session, principal, r) for r in page.items]
    await record_access(session, principal, endpoint=f"GET {request.url.path}", purpose="referral list",
                        subjects=subjects_in(items, top_level="referral"))
    return Page[ReferralRead](items=items, next_cursor=page.next_cursor)


@router.get("/referrals/{referral_id}", response_model=ReferralRead)
async def read_referral(referral_id: UUID, request: Request, session: SessionDep,
                        principal: Caseworkers) -> ReferralRead:
    # The family is looked up for the log only (never returned), so a denied read names it too.
    family_id = await service.family_of(session, referral_id)
    families = [family_id] if family_id else []
    async with audited_read(session, principal, referrals=[referral_id], families=families,
                            endpoint=f"GET {request.url.path}", purpose="referral"):
        referral = await service.get_referral(session, principal, referral_id)
        return await service.read(session, principal, referral)


@router.put("/referrals/{referral_id}/fields", response_model=ReferralRead,
            summary="Fill in the information the offer needs (drafts only)")
async def set_fields(referral_id: UUID, body: FieldsIn, request: Request, session: SessionDep,
                     principal: Team) -> ReferralRead:
    referral = await service.set_fields(session, principal=principal, referral_id=referral_id,
                                        fields=body.fields)
    result = await service.read(session, principal, referral)
    await audit_answer(session, principal, request, result)
    await session.commit()
    return result


async def _move(idem: IdempotencyDep, principal: Principal, referral_id: UUID, target: d.State,
                reason_code: str | None = None, outcome_code: str | None = None) -> ReferralRead:
    async def action() -> ReferralRead:
        referral = await service.get_referral(idem.session, principal, referral_id, lock=True)
        await service.move(idem.session, principal=principal, referral=referral, target=target,
                           reason_code=reason_code, outcome_code=outcome_code)
        return await service.read(idem.session, principal, referral)
    return await idem.run(ReferralRead, action)


@router.post("/referrals/{referral_id}/send", response_model=ReferralRead,
             summary="Send (the family's consent must cover the department)")
async def send(referral_id: UUID, idem: IdempotencyDep, principal: Team) -> ReferralRead:
    return await _move(idem, principal, referral_id, d.State.SENT)


@router.post("/referrals/{referral_id}/resume", response_model=ReferralRead,
             summary="Resume a referral on hold to its state before the hold (consent must cover again)")
async def resume(referral_id: UUID, idem: IdempotencyDep, principal: Team) -> ReferralRead:
    async def action() -> ReferralRead:
        referral = await service.get_referral(idem.session, principal, referral_id, lock=True)
        await service.resume(idem.session, principal=principal, referral=referral)
        return await service.read(idem.session, principal, referral)
    return await idem.run(ReferralRead, action)


@router.post("/referrals/{referral_id}/cancel", response_model=ReferralRead, summary="Cancel with a reason")
async def cancel(referral_id: UUID, body: ReasonIn, idem: IdempotencyDep, principal: Team) -> ReferralRead:
    return await _move(idem, principal, referral_id, d.State.CANCELLED, reason_code=body.reason_code)


@router.post("/referrals/{referral_id}/accept", response_model=ReferralRead,
             summary="Accept (the receiving department)")
async def accept(referral_id: UUID, idem: IdempotencyDep, principal: DepartmentStaff) -> ReferralRead:
    return await _move(idem, principal, referral_id, d.State.ACCEPTED)


@router.post("/referrals/{referral_id}/decline", response_model=ReferralRead,
             summary="Decline with a reason (the receiving department)")
async def decline(referral_id: UUID, body: ReasonIn, idem: IdempotencyDep,
                  principal: DepartmentStaff) -> ReferralRead:
    return await _move(idem, principal, referral_id, d.State.DECLINED, reason_code=body.reason_code)


@router.post("/referrals/{referral_id}/start", response_model=ReferralRead,
             summary="Start the work (the receiving department)")
async def start(referral_id: UUID, idem: IdempotencyDep, principal: DepartmentStaff) -> ReferralRead:
    return await _move(idem, principal, referral_id, d.State.IN_PROGRESS)


@router.post("/referrals/{referral_id}/complete", response_model=ReferralRead,
             summary="Complete with an outcome (the receiving department)")
async def complete(referral_id: UUID, body: CompleteIn, idem: IdempotencyDep,
                   principal: DepartmentStaff) -> ReferralRead:
    return await _move(idem, principal, referral_id, d.State.COMPLETED, outcome_code=body.outcome_code)


@router.post("/referrals/{referral_id}/status", response_model=ReferralRead,
             summary="The department's own business status (e.g. waiting for first appointment)")
async def note_status(referral_id: UUID, body: StatusIn, idem: IdempotencyDep,
                      principal: DepartmentStaff) -> ReferralRead:
    async def action() -> ReferralRead:
        referral = await service.note_status(idem.session, principal=principal, referral_id=referral_id,
                                             business_status=body.business_status)
        return await service.read(idem.session, principal, referral)
    return await idem.run(ReferralRead, action)


@router.post("/referrals/overdue-check", response_model=OverdueReport,
             summary="Publish an overdue event once per late referral")
async def overdue_check(idem: IdempotencyDep, principal: System,
                        at: Annotated[datetime | None, Query()] = None) -> OverdueReport:
    return await idem.run(OverdueReport, lambda: _flag(idem, principal, at))


async def _flag(idem: IdempotencyDep, principal: Principal, at: datetime | None) -> OverdueReport:
    return OverdueReport(flagged=await service.flag_overdue(idem.session, by=principal.subject, at=at))
