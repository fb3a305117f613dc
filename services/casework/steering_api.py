"""The steering report's route: one period, one site or all sites, as JSON, CSV or HTML."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from services.casework import steering, steering_render
from shared.auth import Principal, Role, require_roles
from shared.codes import CODE_PATTERN
from shared.db import SessionDep
from shared.observability import correlation_id

router = APIRouter(prefix="/v1", tags=["casework"])
#: The governance chain reads it through the coordination group; it holds no personal data.
Governance = Annotated[Principal, Depends(require_roles(Role.COORDINATION))]
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


@router.get("/reports/steering", response_model=steering.SteeringReportRead,
            summary="The steering report for a period, one site or all: aggregates only, small numbers "
                    "withheld (format json, csv or printable html)",
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}},
                                         "text/html": {"schema": {"type": "string"}}}}})
async def steering_report(request: Request, session: SessionDep, principal: Governance,
                          period_start: date, period_end: date,
                          site_id: Annotated[str | None, Query(max_length=50, pattern=CODE_PATTERN)] = None,
                          comparison_cohort_id: UUID | None = None,
                          format: Literal["json", "csv", "html"] = "json") -> Response:
    report = await steering.steering_report(
        session, site_id=site_id, period_start=period_start, period_end=period_end,
        comparison_cohort_id=comparison_cohort_id,
        peers=steering.Peers(urls=request.app.state.settings.peer_urls,
                             authorization=request.headers["authorization"],
                             correlation_id=correlation_id.get()))
    if format == "csv":
        return Response(steering_render.report_csv(report), media_type=MEDIA["csv"],
                        headers={"content-disposition": "attachment; filename=steering-report.csv"})
    if format == "html":
        return Response(steering_render.report_html(report), media_type=MEDIA["html"])
    return Response(report.model_dump_json(), media_type=MEDIA["json"])
