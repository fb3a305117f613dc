"""HTTP routes of the intake service: parse, authorise, call a use case. No SQL, no rules.

Team staff of a site use it for their site's households; municipal systems (role ``system``)
for all sites; department staff do not use intake directly. Reads of households are audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from services.intake import service
from services.intake import subject_access as access
from services.intake.cpr import CprVault
from services.intake.domain import IMPORT_COLUMNS
from services.intake.household_view import (
    audited_household_page,
    audited_household_view,
    audited_household_view_in_session,
    household_page,
)
from services.intake.schemas import (
    ConsentIn,
    ConsentRead,
    ExitIn,
    ExpiryReport,
    FunnelRead,
    HouseholdIn,
    HouseholdRead,
    HouseholdSummary,
    ImportReport,
    MemberIn,
    MemberUpdate,
    OutreachIn,
    RenewIn,
    SiteIn,
    SiteRead,
    WithdrawIn,
)
from services.intake.subject_access import CSV_COLUMNS, SubjectAccessIn, SubjectAccessReport
from services.intake.tip_service import tip_funnel
from shared.audit import audit_answer, audited_read, record_access
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep, is_postgres, open_session
from shared.errors import UnsupportedMediaType
from shared.idempotency import IdempotencyDep
from shared.observability import correlation_id
from shared.openapi import model_response
from shared.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["intake"])
Staff = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER, Role.SYSTEM))]
Overview = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER, Role.SYSTEM,
                                                      Role.COORDINATION))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
SystemOnly = Annotated[Principal, Depends(require_roles(Role.SYSTEM))]
DataProtection = Annotated[Principal, Depends(require_roles(Role.DATA_PROTECTION))]
Importer = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.TEAM_LEADER))]


async def vault(request: Request) -> CprVault:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a thread
    hand-off on every request for an attribute read."""
    return request.app.state.vault  # type: ignore[no-any-return]


Vault = Annotated[CprVault, Depends(vault)]


async def _authorise(session: SessionDep, principal: Principal, household_id: UUID) -> None:
    service.check_site(principal, await service.get_household_site(session, household_id))


@router.get("/sites", response_model=list[SiteRead])
async def list_sites(session: SessionDep, principal: Overview) -> list[SiteRead]:
    return await service.list_sites(session)


@router.post("/sites", response_model=SiteRead, status_code=201, summary="Add or change a site (admin)")
async def put_site(body: SiteIn, idem: IdempotencyDep, principal: Admin) -> SiteRead:
    return await idem.run(SiteRead, lambda: service.upsert_site(idem.session, data=body))


@router.post("/households", response_model=HouseholdRead, status_code=201,
             summary="Register a candidate household (CPR in the body only) and screen it")
async def create_household(body: HouseholdIn, idem: IdempotencyDep, principal: Staff,
                           v: Vault) -> HouseholdRead:
    service.check_site(principal, body.site_id)
    return await idem.run(HouseholdRead, lambda: service.create_household(
        idem.session, vault=v, data=body), subject="family")


@router.get("/households", response_model=Page[HouseholdSummary])
async def list_households(request: Request, principal: Staff, limit: Limit = 50, cursor: Cursor = None,
                          site_id: Annotated[str | None, Query(max_length=50)] = None,
                          status: Annotated[str | None, Query(max_length=30)] = None,
                          ) -> Response:
    # A hot read: on PostgreSQL the page and its audit entry are one statement (``household_view``),
    # without a session; the answer is serialised once, straight from its model.
    site_id = service.require_site_access(principal, site_id)
    engine, endpoint = request.app.state.engine, f"GET {request.url.path}"
    if is_postgres(engine):
        page = await audited_household_page(engine, principal, site_id=site_id, status=status,
                                            cursor=cursor, limit=limit, endpoint=endpoint,
                                            purpose="household list")
    else:
        async with open_session(request) as session:
            page = await household_page(session, site_id=site_id, status=status, cursor=cursor,
                                        limit=limit)
            await record_access(session, principal, families=[h.id for h in page.items],
                                endpoint=endpoint, purpose="household list")
    return model_response(page)


@router.get("/households/{household_id}", response_model=HouseholdRead)
async def read_household(household_id: UUID, request: Request, principal: Staff) -> Response:
    # The team view: on PostgreSQL one statement reads the household, its members and waitlist
    # place and writes the audit entry naming them (``household_view``); on SQLite the same read
    # and entry in the session's transaction. Either way the entry is committed before the answer
    # leaves, and an absent household or another site's is a 404 with a denied entry.
    # (A comment, not a docstring: FastAPI would publish a docstring as the operation's description.)
    state, endpoint = request.app.state, f"GET {request.url.path}"
    if is_postgres(state.engine):
        read = await audited_household_view(state.engine, principal, household_id=household_id,
                                            vault=state.vault, endpoint=endpoint, purpose="casework")
    else:
        async with open_session(request) as session:
            read = await audited_household_view_in_session(
                session, principal, household_id=household_id, vault=state.vault,
                endpoint=endpoint, purpose="casework")
    return model_response(read)


@router.post("/households/{household_id}/screen", response_model=HouseholdRead,
             summary="Re-run the eligibility screening on the current data")
async def rescreen(household_id: UUID, idem: IdempotencyDep, principal: Staff, v: Vault) -> HouseholdRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(HouseholdRead, lambda: service.rescreen(
        idem.session, household_id=household_id, vault=v))


@router.patch("/households/{household_id}/members/{person_id}", response_model=HouseholdRead,
               summary="Correct a member's unemployment start or address, and screen again")
async def update_member(household_id: UUID, person_id: UUID, body: MemberUpdate, request: Request,
                        session: SessionDep, principal: Staff, v: Vault) -> HouseholdRead:
    await _authorise(session, principal, household_id)
    result = await service.update_member(session, household_id=household_id, person_id=person_id,
                                         changes=body.model_dump(exclude_unset=True), vault=v)
    await audit_answer(session, principal, request, result)
    await session.commit()
    return result


@router.post("/households/{household_id}/outreach", response_model=HouseholdRead, status_code=201)
async def record_outreach(household_id: UUID, body: OutreachIn, idem: IdempotencyDep, principal: Staff,
                          v: Vault) -> HouseholdRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(HouseholdRead, lambda: service.record_outreach(
        idem.session, household_id=household_id, data=body, vault=v, caller=principal.subject))


@router.post("/households/{household_id}/consents", response_model=ConsentRead, status_code=201)
async def give_consent(household_id: UUID, body: ConsentIn, idem: IdempotencyDep,
                       principal: Staff) -> ConsentRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(ConsentRead, lambda: service.give_consent(
        idem.session, household_id=household_id, data=body, by=principal.subject))


@router.get("/households/{household_id}/consents", response_model=list[ConsentRead],
            summary="The household's consents with their receipts (append-only history)")
async def list_consents(household_id: UUID, request: Request, session: SessionDep,
                        principal: Staff) -> list[ConsentRead]:
    async with audited_read(session, principal, families=[household_id],
                            endpoint=f"GET {request.url.path}", purpose="consent record"):
        await _authorise(session, principal, household_id)
        return await service.list_consents(session, household_id=household_id)


@router.get("/households/{household_id}/consents/{consent_id}", response_model=ConsentRead,
            summary="One consent: its departments and purposes, its history and the receipt written from it")
async def read_consent(household_id: UUID, consent_id: UUID, request: Request, session: SessionDep,
                       principal: Staff) -> ConsentRead:
    async with audited_read(session, principal, families=[household_id],
                            endpoint=f"GET {request.url.path}", purpose="consent record"):
        await _authorise(session, principal, household_id)
        return await service.read_consent(session, household_id=household_id, consent_id=consent_id)


@router.post("/households/{household_id}/consents/{consent_id}/revoke", response_model=ConsentRead,
             summary="Withdraw the consent, or with a body only the departments named (the others keep it)")
async def revoke_consent(household_id: UUID, consent_id: UUID, idem: IdempotencyDep, principal: Staff,
                         body: WithdrawIn | None = None) -> ConsentRead:
    await _authorise(idem.session, principal, household_id)
    departments = body.departments if body else None
    return await idem.run(ConsentRead, lambda: service.revoke_consent(
        idem.session, household_id=household_id, consent_id=consent_id, by=principal.subject,
        departments=departments))


@router.post("/households/{household_id}/consents/{consent_id}/renew", response_model=ConsentRead)
async def renew_consent(household_id: UUID, consent_id: UUID, body: RenewIn, idem: IdempotencyDep,
                        principal: Staff) -> ConsentRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(ConsentRead, lambda: service.renew_consent(
        idem.session, household_id=household_id, consent_id=consent_id, expires_on=body.expires_on,
        by=principal.subject))


@router.post("/consents/expire-due", response_model=ExpiryReport,
             summary="Expire consents past their date (a daily scheduler calls it)")
async def expire_due(idem: IdempotencyDep, principal: SystemOnly,
                     today: Annotated[date | None, Query()] = None) -> ExpiryReport:
    async def action() -> ExpiryReport:
        count = await service.expire_consents(idem.session, today=today or date.today(), by=principal.subject)
        return ExpiryReport(expired=count)
    return await idem.run(ExpiryReport, action)


@router.post("/households/{household_id}/enrol", response_model=HouseholdRead,
             summary="Enrol (consent required); a full site puts the family on the waitlist")
async def enrol(household_id: UUID, idem: IdempotencyDep, principal: Staff, v: Vault) -> HouseholdRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(HouseholdRead, lambda: service.enrol(
        idem.session, household_id=household_id, vault=v))


@router.post("/households/{household_id}/exit", response_model=HouseholdRead,
             summary="Exit with a reason; the place goes to the first family on the waitlist")
async def exit_family(household_id: UUID, body: ExitIn, idem: IdempotencyDep, principal: Staff,
                      v: Vault) -> HouseholdRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(HouseholdRead, lambda: service.exit_family(
        idem.session, household_id=household_id, reason=body.reason, vault=v))


@router.post("/households/{household_id}/members", response_model=HouseholdRead, status_code=201,
             summary="Add a spouse or adult child at the address")
async def add_member(household_id: UUID, body: MemberIn, idem: IdempotencyDep, principal: Staff,
                     v: Vault) -> HouseholdRead:
    await _authorise(idem.session, principal, household_id)
    return await idem.run(HouseholdRead, lambda: service.add_member(
        idem.session, household_id=household_id, member=body, vault=v))


@router.post("/subject-access", response_model=SubjectAccessReport,
             summary="A person's data and every recorded access, across all four services (data protection; "
                     "CPR in the body only)",
             responses={200: {"content": {"text/csv": {"schema": {
                 "type": "string", "description": "Columns: " + ", ".join(CSV_COLUMNS)}}}}})
async def subject_access(body: SubjectAccessIn, request: Request, session: SessionDep,
                         principal: DataProtection, v: Vault,
                         format: Annotated[Literal["json", "csv"], Query()] = "json") -> Response:
    person_ids = await access.person_ids_for(session, vault=v, cpr=body.cpr)
    report = await access.compose_report(
        session, person_ids=person_ids, personal=request.app.state.personal,
        peers=request.app.state.settings.peer_urls, authorization=request.headers["authorization"],
        correlation_id=correlation_id.get())
    await record_access(session, principal, endpoint=f"POST {request.url.path}",
                        purpose="subject access report", persons=person_ids)
    if format == "csv":
        return Response(access.report_csv(report), media_type="text/csv",
                        headers={"content-disposition": "attachment; filename=subject-access.csv"})
    return Response(report.model_dump_json(), media_type="application/json")


@router.get("/funnel", response_model=FunnelRead, summary="Funnel counts per site (cumulative)")
async def funnel(session: SessionDep, principal: Overview,
                 site_id: Annotated[str | None, Query(max_length=50)] = None) -> FunnelRead:
    site_id = service.require_site_access(principal, site_id)
    return FunnelRead(site_id=site_id, counts=await service.funnel(session, site_id=site_id),
                      identified_by_partner_tip=await tip_funnel(session, site_id=site_id))


def _require_csv(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise UnsupportedMediaType("The register extract is sent as text/csv, "
                                   f"not {media_type or 'without a content type'}.")


CsvOnly = Annotated[None, Depends(_require_csv)]


@router.post("/imports", response_model=ImportReport, status_code=201,
             summary="Import a register extract (CSV body, text/csv); idempotent per file; a team "
                     "leader imports its own site's rows only",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "Columns: " + ", ".join(IMPORT_COLUMNS)}}}}})
async def import_register(request: Request, principal: Importer, _csv: CsvOnly, idem: IdempotencyDep,
                          v: Vault) -> ImportReport:
    # Parameters in this order: who, then the content type, and only then is the body read (the
    # idempotency key's digest reads it, in chunks, stopped at OTO_MAX_IMPORT_BYTES by the limit).
    content = await request.body()
    site = service.import_scope(principal)
    return await idem.run(ImportReport, lambda: service.import_register(
        idem.session, vault=v, content=content, site=site))
