"""HTTP routes of the finance service: the finance role and the coordination group; each
department reads its own statements only."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.finance import savings as by_area
from services.finance import service
from services.finance.schemas import (
    AllocationRead,
    AreaSavingsReportRead,
    BudgetIn,
    BudgetRead,
    CorrectIn,
    CostImportRead,
    EntryRead,
    FamilyCostsIn,
    FamilyCostsRead,
    PreviewIn,
    SavingsIn,
    SavingsRead,
    SettleIn,
    StatementRead,
)
from shared.audit import audit_answer, record_access
from shared.auth import Principal, Role, require_roles
from shared.codes import CODE_PATTERN
from shared.db import SessionDep
from shared.departments import Department
from shared.errors import NotFound
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["finance"])
Finance = Annotated[Principal, Depends(require_roles(Role.FINANCE))]
Overview = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.COORDINATION))]
Readers = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.COORDINATION, Role.DEPARTMENT_STAFF))]
Year = Annotated[int, Query(ge=2019, le=2100)]
Site = Annotated[str, Query(max_length=80, pattern=CODE_PATTERN)]


@router.post("/budgets", response_model=BudgetRead, status_code=201, summary="Set a site's yearly budget")
async def set_budget(body: BudgetIn, idem: IdempotencyDep, principal: Finance) -> BudgetRead:
    return await idem.run(BudgetRead, lambda: service.set_budget(idem.session, data=body))


@router.get("/budgets", response_model=Page[BudgetRead],
            summary="The year's site budgets (total and råderum part)")
async def list_budgets(session: SessionDep, principal: Overview, year: Year, site_id: Site | None = None,
                       limit: Limit = 50, cursor: Cursor = None) -> Page[BudgetRead]:
    return await service.list_budgets(session, year=year, site_id=site_id, cursor=cursor, limit=limit)


@router.get("/allocations", response_model=AllocationRead,
            summary="The year's co-financing split by stationed FTE-days (computed now)")
async def allocation(session: SessionDep, principal: Overview, site_id: Site, year: Year) -> AllocationRead:
    return await service.allocation(session, site_id=site_id, year=year, publish=False)


@router.post("/allocations", response_model=AllocationRead, status_code=201,
             summary="Compute and announce the allocation (each department gets its own share)")
async def publish_allocation(body: SettleIn, idem: IdempotencyDep, principal: Finance) -> AllocationRead:
    return await idem.run(AllocationRead, lambda: service.allocation(
        idem.session, site_id=body.site_id, year=body.year, publish=True))


@router.post("/allocations/preview", response_model=AllocationRead,
             summary="What-if: split a budget by a given roster (nothing is stored)")
async def preview(body: PreviewIn, principal: Overview) -> AllocationRead:
    return service.preview(body)


@router.post("/settlements", response_model=list[EntryRead], status_code=201,
             summary="Issue the charges for a quarter or the year to the ledger")
async def settle(body: SettleIn, idem: IdempotencyDep, principal: Finance) -> list[EntryRead]:
    return await idem.run(list[EntryRead], lambda: service.settle(
        idem.session, site_id=body.site_id, year=body.year, quarter=body.quarter))


@router.post("/ledger/{entry_id}/correct", response_model=list[EntryRead], status_code=201,
             summary="Correct a charge: a reversing entry plus a new one")
async def correct(entry_id: UUID, body: CorrectIn, idem: IdempotencyDep,
                  principal: Finance) -> list[EntryRead]:
    return await idem.run(list[EntryRead], lambda: service.correct(
        idem.session, entry_id=entry_id, amount_ore=body.amount_ore))


def _own(principal: Principal, department: Department) -> None:
    """A department asking for another department's statement is told there is none."""
    if principal.role is Role.DEPARTMENT_STAFF and principal.department is not department:
        raise NotFound("No such statement.")


@router.get("/statements", response_model=StatementRead)
async def statement(session: SessionDep, principal: Readers, site_id: Site, department: Department,
                    year: Year) -> StatementRead:
    _own(principal, department)
    return await service.statement(session, site_id=site_id, department=department.value, year=year)


@router.get("/statements.csv", response_class=Response, summary="The statement as CSV for the finance system")
async def statement_csv(session: SessionDep, principal: Readers, site_id: Site, department: Department,
                        year: Year) -> Response:
    _own(principal, department)
    data = await service.statement(session, site_id=site_id, department=department.value, year=year)
    return Response(service.statement_csv(data), media_type="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="{site_id}-{department.value}-{year}.csv"'})


@router.put("/families/{family_id}/savings", summary="A family's yearly expenditure before and now")
async def set_savings(family_id: UUID, body: SavingsIn, request: Request, session: SessionDep,
                      principal: Finance) -> dict[str, int]:
    result = await service.set_savings(session, family_id=family_id, site_id=body.site_id,
                                       baseline_ore=body.baseline_ore, current_ore=body.current_ore)
    await audit_answer(session, principal, request, result)
    await session.commit()
    return result


@router.get("/savings", response_model=SavingsRead, summary="Savings per year and over years vs the pool")
async def savings(request: Request, session: SessionDep, principal: Overview, year: Year,
                  years: Annotated[int, Query(ge=1, le=20)] = 4,
                  site_id: Annotated[str | None, Query(max_length=50)] = None) -> SavingsRead:
    report = await service.savings(session, site_id=site_id, years=years, year=year)
    # Each family's savings come from its members' employment: personal data, so audited.
    await record_access(session, principal, endpoint=f"GET {request.url.path}", purpose="savings report",
                        families=[f.family_id for f in report.per_family])
    return report


@router.put("/families/{family_id}/costs", response_model=FamilyCostsRead,
            summary="A family's yearly expenditure by area, before enrolment and now")
async def set_family_costs(family_id: UUID, body: FamilyCostsIn, request: Request, session: SessionDep,
                           principal: Finance) -> FamilyCostsRead:
    result = await by_area.set_family_costs(session, family_id=family_id, data=body)
    await audit_answer(session, principal, request, result.model_dump(mode="json"))
    await session.commit()
    return result


@router.post("/costs/imports", response_model=CostImportRead, status_code=201,
             summary="Import families' expenditure by area from the economy system (CSV body, text/csv)",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "Columns: " + ", ".join(by_area.IMPORT_COLUMNS)}}}}})
async def import_costs(request: Request, idem: IdempotencyDep, principal: Finance) -> CostImportRead:
    content = await request.body()
    return await idem.run(CostImportRead, lambda: by_area.import_costs(idem.session, content=content))


@router.get("/savings/areas", response_model=AreaSavingsReportRead,
            summary="Savings per family per year by area, over years, and break-even against the pool")
async def savings_by_area(session: SessionDep, principal: Overview, year: Year,
                          years: Annotated[int, Query(ge=1, le=20)] = 4,
                          site_id: Annotated[str | None, Query(max_length=50)] = None,
                          ) -> AreaSavingsReportRead:
    return await by_area.savings_by_area(session, site_id=site_id, year=year, years=years)
