"""HTTP routes for the target areas (kept by admins) and the cohort profile (aggregates only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from services.intake import area_service, profile_service, service
from services.intake.api import Admin, Overview
from services.intake.areas import AREA_COLUMNS
from services.intake.schemas import AreaIn, AreaRead, ProfileRead
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.idempotency import IdempotencyDep

router = APIRouter(prefix="/v1", tags=["intake"])
#: Areas are reference data (streets, no people): whoever reads the overview, and the admins who keep them.
Reader = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER, Role.SYSTEM,
                                                    Role.COORDINATION, Role.ADMIN))]
SiteId = Annotated[str, Path(max_length=50)]


@router.put("/sites/{site_id}/area", response_model=AreaRead,
            summary="Define a site's target area (admin); replaces its streets")
async def define_area(site_id: SiteId, body: AreaIn, session: SessionDep, principal: Admin) -> AreaRead:
    area = await area_service.define_area(session, site_id=site_id, data=body, by=principal.subject)
    await session.commit()
    return area


@router.post("/sites/{site_id}/area/import", response_model=AreaRead, status_code=200,
             summary="Replace a site's target area from a CSV file (admin); a bad row changes nothing",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "Columns: " + ", ".join(AREA_COLUMNS)
                 + " (only street is required; empty numbers: the whole street)"}}}}})
async def import_area(site_id: SiteId, request: Request, idem: IdempotencyDep, principal: Admin,
                      name: Annotated[str | None, Query(min_length=1, max_length=200)] = None) -> AreaRead:
    content = await request.body()
    return await idem.run(AreaRead, lambda: area_service.import_area(
        idem.session, site_id=site_id, content=content, name=name, by=principal.subject))


@router.get("/sites/{site_id}/area", response_model=AreaRead, summary="A site's target area")
async def read_area(site_id: SiteId, session: SessionDep, principal: Reader) -> AreaRead:
    return await area_service.read_area(session, site_id=site_id)


@router.get("/profile", response_model=ProfileRead,
            summary="The cohort enrolled in a period, at enrolment: aggregates with small numbers withheld")
async def cohort_profile(session: SessionDep, principal: Overview, period_start: date, period_end: date,
                         site_id: Annotated[str | None, Query(max_length=50)] = None) -> ProfileRead:
    site_id = service.require_site_access(principal, site_id)
    return await profile_service.cohort_profile(session, site_id=site_id, period_start=period_start,
                                                period_end=period_end)
