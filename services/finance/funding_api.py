"""HTTP routes of external funding: finance records grants; finance, the coordination group and
municipal systems (the steering report) read grants and each site's year after them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.finance import funding
from services.finance.api import Finance, Site, Year
from services.finance.funding_schemas import FundingRead, GrantIn, GrantRead
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["finance"])
#: Funding is money per site and year, no person: the report's readers may read it.
Readers = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.COORDINATION, Role.SYSTEM))]


@router.post("/grants", response_model=GrantRead, status_code=201,
             summary="Record external funding of a site: a grant's amount, period and what it pays for")
async def record_grant(body: GrantIn, idem: IdempotencyDep, principal: Finance) -> GrantRead:
    return await idem.run(GrantRead, lambda: funding.record_grant(idem.session, data=body))


@router.get("/grants", response_model=Page[GrantRead],
            summary="Grants of one site or all (paying for some of a year if given), with yearly parts")
async def list_grants(session: SessionDep, principal: Readers, site_id: Site | None = None,
                      year: Annotated[int | None, Query(ge=2019, le=2100)] = None, limit: Limit = 50,
                      cursor: Cursor = None) -> Page[GrantRead]:
    return await funding.list_grants(session, site_id=site_id, year=year, cursor=cursor, limit=limit)


@router.get("/funding", response_model=list[FundingRead],
            summary="Per site, a year's budget, what external funding pays and what the råderum and the "
                    "departments pay after it")
async def site_funding(session: SessionDep, principal: Readers, year: Year,
                       site_id: Site | None = None) -> list[FundingRead]:
    return await funding.funding(session, year=year, site_id=site_id)
