"""HTTP routes of partners' tips. A partner submits tips and reads only its own tips' state; the
site's team reads and follows up its site's tips; the coordination group and municipal systems
read the counts (the steering report)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.intake import service, tip_service
from services.intake.api import Overview, Staff
from services.intake.tip_schemas import TipFollowUpIn, TipIn, TipRead, TipStatus, TipSummaryRead
from services.intake.tips import TipState
from shared.audit import record_access
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["intake"])
Partner = Annotated[Principal, Depends(require_roles(Role.PARTNER))]


@router.post("/tips", response_model=TipStatus, status_code=201,
             summary="Pass on a tip (partner): an address in a site's target area and a reason code")
async def submit_tip(body: TipIn, idem: IdempotencyDep, principal: Partner) -> TipStatus:
    return await idem.run(TipStatus, lambda: tip_service.submit_tip(
        idem.session, partner=principal, data=body))


@router.get("/tips/mine", response_model=Page[TipStatus],
            summary="The partner's own tips: received, and whether followed up; nothing about a family")
async def own_tips(session: SessionDep, principal: Partner, limit: Limit = 50,
                   cursor: Cursor = None) -> Page[TipStatus]:
    return await tip_service.own_tips(session, partner=principal, cursor=cursor, limit=limit)


@router.get("/tips/summary", response_model=TipSummaryRead,
            summary="Tips per site and state, their outcomes and the funnel of the households identified")
async def tip_summary(session: SessionDep, principal: Overview,
                      site_id: Annotated[str | None, Query(max_length=50)] = None) -> TipSummaryRead:
    site_id = service.require_site_access(principal, site_id)
    return await tip_service.summary(session, site_id=site_id)


@router.get("/tips/{tip_id}/status", response_model=TipStatus,
            summary="One of the partner's own tips: received, and whether followed up")
async def tip_status(tip_id: UUID, session: SessionDep, principal: Partner) -> TipStatus:
    return await tip_service.tip_status(session, partner=principal, tip_id=tip_id)


@router.get("/tips", response_model=Page[TipRead], summary="The site's tips to follow up (team)")
async def list_tips(request: Request, session: SessionDep, principal: Staff, limit: Limit = 50,
                    cursor: Cursor = None, site_id: Annotated[str | None, Query(max_length=50)] = None,
                    state: TipState | None = None) -> Page[TipRead]:
    site_id = service.require_site_access(principal, site_id)
    page = await tip_service.site_tips(session, site_id=site_id, state=state, cursor=cursor, limit=limit)
    await record_access(session, principal, families=[t.household_id for t in page.items if t.household_id],
                        endpoint=f"GET {request.url.path}", purpose="partner tips")
    return page


@router.post("/tips/{tip_id}/follow-up", response_model=TipRead,
             summary="Record what the team found on following a tip up (once)")
async def follow_up(tip_id: UUID, body: TipFollowUpIn, idem: IdempotencyDep, principal: Staff) -> TipRead:
    await tip_service.check_tip_site(idem.session, principal=principal, tip_id=tip_id)
    return await idem.run(TipRead, lambda: tip_service.follow_up(idem.session, tip_id=tip_id, data=body))
