"""The reads' fast paths answer and audit exactly as the paths before them did.

The team view's Core path (one statement, the audit's members taken from it) answers what the ORM
path (``service.read_household`` and the audit's own member lookup) did and writes the same audit
entry, in two statements where the ORM path took four: for an ordinary family, one with a member
no longer active, a waitlisted one, another site's (denied) and a missing one (denied), on both
databases. On PostgreSQL the team view and the list page are each ONE statement on the driver
that also writes the entry, and the department slice two (the events, then the entry): their
answers and entries (every column but the id, time and correlation id, subjects in order) equal
what the session's path (the Core statements and ``record_access``) gives for the same caller,
allowed and denied alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select, update

from services.intake import service
from services.intake.app import create_app
from services.intake.household_view import audited_household_view_in_session, household_page
from services.intake.models import Household, Person
from services.intake.schemas import HouseholdSummary
from shared.audit import record_access
from shared.auth import Principal, Role
from shared.db import is_postgres
from shared.departments import Department
from shared.errors import NotFound
from shared.pagination import paginate
from shared.slice_view import PURPOSE, _family_events, _visible
from shared.tables import audit_log
from tests.intake.factories import define_area, household_body
from tests.support import bearer, service_api


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as http:
        site = await http.post("/v1/sites", headers=bearer(http.settings, "admin"),
                               json={"id": "hasle", "name": "Hasle", "capacity": 1})
        assert site.status_code == 201, site.text
        for site_id in ("gellerup", "hasle"):
            await define_area(http, bearer(http.settings, "admin"), site_id)
        yield http


async def _create(api: Any, team: dict[str, str], site: str = "gellerup") -> dict[str, Any]:
    response = await api.post("/v1/households", json=household_body(site), headers=team)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _consent_and_enrol(api: Any, household: dict[str, Any], team: dict[str, str]) -> str:
    hid, mother = household["id"], household["members"][0]["id"]
    assert (await api.post(f"/v1/households/{hid}/outreach", headers=team, json={
        "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})).status_code == 201
    assert (await api.post(f"/v1/households/{hid}/consents", headers=team, json={
        "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
        "departments": ["sundhed-og-omsorg"]})).status_code == 201
    enrolled = await api.post(f"/v1/households/{hid}/enrol", headers=team)
    assert enrolled.status_code == 200, enrolled.text
    return str(enrolled.json()["status"])


@pytest.fixture
def driver_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements run on the driver directly (``shared.db.fetch_autocommit``): SQLAlchemy's
    own statements go through prepared statements, never ``Connection.fetch``."""
    run: list[str] = []
    fetch = asyncpg.Connection.fetch

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        run.append(query)
        return await fetch(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", counted)
    yield run


async def _entry_row(api: Any) -> dict[str, Any]:
    """The last entry, every column but its id, time and correlation id; subjects in order."""
    async with api.app.state.sessionmaker() as session:
        row = (await session.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(1))).one()
    return {k: v for k, v in row._mapping.items() if k not in {"id", "at", "correlation_id"}}


async def _last_entry(api: Any) -> dict[str, Any]:
    async with api.app.state.sessionmaker() as session:
        row = (await session.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(1))).one()
    entry = dict(row._mapping)
    return {"actor": entry["actor"], "role": entry["role"], "site_id": entry["site_id"],
            "endpoint": entry["endpoint"], "purpose": entry["purpose"], "outcome": entry["outcome"],
            # the member lookup reads persons in no particular order: compare as a set
            "subjects": sorted((s["kind"], s["id"]) for s in entry["subjects"])}


async def _orm_path(api: Any, household_id: str, principal: Principal, *, allowed: bool) -> tuple[
        dict[str, Any] | None, dict[str, Any]]:
    """What the ORM path answered and audited (the entry written by the audit's member lookup)."""
    answer = None
    async with api.app.state.sessionmaker() as session:
        if allowed:
            read = await service.read_household(session, household_id=uuid.UUID(household_id),
                                                vault=api.app.state.vault)
            answer = read.model_dump(mode="json")
        await record_access(session, principal, families=[uuid.UUID(household_id)],
                            endpoint=f"GET /v1/households/{household_id}", purpose="casework",
                            allowed=allowed)
    return answer, await _last_entry(api)


async def test_the_fast_team_view_answers_and_audits_as_the_orm_path_did(api: Any) -> None:
    gellerup = bearer(api.settings, "team_staff", site="gellerup")
    hasle = bearer(api.settings, "team_staff", site="hasle")
    ordinary = await _create(api, gellerup)
    left = await _create(api, gellerup)
    async with api.app.state.sessionmaker() as session:  # a member who has left the household
        await session.execute(update(Person).where(Person.id == uuid.UUID(left["members"][1]["id"]))
                              .values(active=False))
        await session.commit()
    assert await _consent_and_enrol(api, await _create(api, hasle, "hasle"), hasle) == "enrolled"
    await _consent_and_enrol(api, await _create(api, hasle, "hasle"), hasle)
    waiting = await _create(api, hasle, "hasle")
    assert await _consent_and_enrol(api, waiting, hasle) == "waitlisted"

    cases = [(ordinary["id"], gellerup, "gellerup", True), (left["id"], gellerup, "gellerup", True),
             (waiting["id"], hasle, "hasle", True), (waiting["id"], gellerup, "gellerup", False),
             (str(uuid.uuid4()), gellerup, "gellerup", False)]
    statements: list[str] = []
    event.listen(api.app.state.engine.sync_engine, "before_cursor_execute",
                 lambda _c, _k, statement, *_: statements.append(statement))
    on_postgres = is_postgres(api.app.state.engine)
    for household_id, team, site, allowed in cases:
        statements.clear()
        fast = await api.get(f"/v1/households/{household_id}", headers=team)
        if on_postgres:  # one statement on the driver reads and writes the entry; no session
            assert statements == []
        elif allowed:  # the household with its members and place, then the audit entry: no lookups
            assert [s.split()[0] for s in statements] == ["SELECT", "INSERT"]
        assert fast.status_code == (200 if allowed else 404), fast.text
        fast_entry = await _last_entry(api)
        principal = Principal(subject="team_staff-user", role=Role.TEAM_STAFF, site=site)
        answer, orm_entry = await _orm_path(api, household_id, principal, allowed=allowed)
        if allowed:
            assert fast.json() == answer
        assert fast_entry == orm_entry
    left_view = (await api.get(f"/v1/households/{left['id']}", headers=gellerup)).json()
    assert len(left_view["members"]) == 1  # the member who left is not shown, but is audited:
    assert ("person", left["members"][1]["id"]) in (await _last_entry(api))["subjects"]
    assert (await api.get(f"/v1/households/{waiting['id']}", headers=hasle)).json()[
        "waitlist_position"] == 2


async def _orm_page(api: Any, *, site_id: str | None, status: str | None, cursor: str | None,
                    limit: int) -> dict[str, Any]:
    """The page the ORM path (``select(Household)`` through ``shared.pagination.paginate``) gave."""
    query = select(Household)
    if site_id:
        query = query.where(Household.site_id == site_id)
    if status:
        query = query.where(Household.status == status)
    async with api.app.state.sessionmaker() as session:
        page = await paginate(session, query, key=Household.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                              convert=lambda h: HouseholdSummary(id=h.id, site_id=h.site_id, status=h.status,
                                                                 eligible=h.eligible), parse_key=uuid.UUID)
    return page.model_dump(mode="json")


async def test_the_core_household_list_pages_as_the_orm_path_did(api: Any) -> None:
    gellerup = bearer(api.settings, "team_staff", site="gellerup")
    system = bearer(api.settings, "system")
    for _ in range(5):
        await _create(api, gellerup)
    hasle = bearer(api.settings, "team_staff", site="hasle")
    await _consent_and_enrol(api, await _create(api, hasle, "hasle"), hasle)
    for site_id, status, headers in (("gellerup", None, gellerup), ("hasle", "enrolled", hasle),
                                     (None, None, system), (None, "identified", system)):
        cursor, pages = None, 0
        while True:
            query = {"limit": 2, **({"site_id": site_id} if site_id else {}),
                     **({"status": status} if status else {}), **({"cursor": cursor} if cursor else {})}
            fast = await api.get("/v1/households", params=query, headers=headers)
            assert fast.status_code == 200, fast.text
            assert fast.json() == await _orm_page(api, site_id=site_id, status=status, cursor=cursor, limit=2)
            named = {i for kind, i in (await _last_entry(api))["subjects"] if kind == "family"}
            assert named == {item["id"] for item in fast.json()["items"]}
            cursor, pages = fast.json()["next_cursor"], pages + 1
            if cursor is None:
                break
        assert pages >= 1
    broken = await api.get("/v1/households", params={"cursor": "bm90LWEtdXVpZA"}, headers=system)
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "query.cursor"


async def _enrolled_family(api: Any) -> tuple[str, dict[str, str]]:
    """A family of Hasle, enrolled with consent for health and care: its outbox holds events
    for that department."""
    hasle = bearer(api.settings, "team_staff", site="hasle")
    household = await _create(api, hasle, "hasle")
    assert await _consent_and_enrol(api, household, hasle) == "enrolled"
    return str(household["id"]), hasle


async def test_the_one_statement_reads_answer_and_audit_as_the_session_path(
        api: Any, driver_statements: list[str]) -> None:
    gellerup = bearer(api.settings, "team_staff", site="gellerup")
    ordinary = await _create(api, gellerup)
    family, hasle = await _enrolled_family(api)
    on_postgres = is_postgres(api.app.state.engine)
    vault = api.app.state.vault

    # The team view: allowed, another site's (denied), missing (denied).
    for household_id, headers, site, allowed in (
            (ordinary["id"], gellerup, "gellerup", True), (family, hasle, "hasle", True),
            (family, gellerup, "gellerup", False), (str(uuid.uuid4()), hasle, "hasle", False)):
        driver_statements.clear()
        fast = await api.get(f"/v1/households/{household_id}", headers=headers)
        assert len(driver_statements) == (1 if on_postgres else 0)
        fast_entry = await _entry_row(api)
        principal = Principal(subject="team_staff-user", role=Role.TEAM_STAFF, site=site)
        endpoint = f"GET /v1/households/{household_id}"
        async with api.app.state.sessionmaker() as session:
            try:
                read = await audited_household_view_in_session(
                    session, principal, household_id=uuid.UUID(household_id), vault=vault,
                    endpoint=endpoint, purpose="casework")
            except NotFound as refused:
                assert not allowed and fast.status_code == 404
                assert fast.json()["detail"] == str(refused)
            else:
                assert allowed and fast.status_code == 200
                assert fast.json() == read.model_dump(mode="json")
        assert fast_entry == await _entry_row(api)
        assert fast_entry["outcome"] == ("allowed" if allowed else "denied")

    # The list page, first and next, and an empty one (no entry at all).
    system = Principal(subject="system-user", role=Role.SYSTEM)
    for site_id, status in (("hasle", None), (None, "identified"), ("hasle", "no-such-status")):
        cursor: str | None = None
        while True:
            before = await _entry_row(api)
            query = {"limit": 1, **({"site_id": site_id} if site_id else {}),
                     **({"status": status} if status else {}), **({"cursor": cursor} if cursor else {})}
            driver_statements.clear()
            fast = await api.get("/v1/households", params=query, headers=bearer(api.settings, "system"))
            assert fast.status_code == 200, fast.text
            assert len(driver_statements) == (1 if on_postgres else 0)
            fast_entry = await _entry_row(api)
            async with api.app.state.sessionmaker() as session:
                page = await household_page(session, site_id=site_id, status=status, cursor=cursor, limit=1)
                await record_access(session, system, families=[h.id for h in page.items],
                                    endpoint="GET /v1/households", purpose="household list")
            assert fast.json() == page.model_dump(mode="json")
            if not page.items:
                assert fast_entry == before == await _entry_row(api)  # an empty page names nobody
                break
            assert fast_entry == await _entry_row(api)
            assert [s["kind"] for s in fast_entry["subjects"]] == ["family", "person", "person"]
            cursor = page.next_cursor
            if cursor is None:
                break

    # The department slice: a department with events, one without (404), a role without a view
    # (403), another site's team (404), the family's own team.
    callers = [(bearer(api.settings, "department_staff", department="sundhed-og-omsorg"),
                Principal(subject="department_staff-user", role=Role.DEPARTMENT_STAFF,
                          department=Department.HEALTH_AND_CARE), 200),
               (bearer(api.settings, "department_staff", department="boern-og-unge"),
                Principal(subject="department_staff-user", role=Role.DEPARTMENT_STAFF,
                          department=Department.CHILDREN_AND_YOUNG_PEOPLE), 404),
               (bearer(api.settings, "finance"), Principal(subject="finance-user", role=Role.FINANCE), 403),
               (gellerup, Principal(subject="team_staff-user", role=Role.TEAM_STAFF, site="gellerup"), 404),
               (hasle, Principal(subject="team_staff-user", role=Role.TEAM_STAFF, site="hasle"), 200)]
    for headers, principal, status_code in callers:
        driver_statements.clear()
        fast = await api.get(f"/v1/families/{family}/slice", headers=headers)
        assert fast.status_code == status_code, fast.text
        assert len(driver_statements) == (2 if on_postgres else 0)
        fast_entry = await _entry_row(api)
        async with api.app.state.sessionmaker() as session:
            visible = _visible(await _family_events(session, uuid.UUID(family)), principal,
                               api.app.state.policy)
            await record_access(session, principal, families=[family], purpose=PURPOSE,
                                endpoint=f"GET /v1/families/{family}/slice", allowed=bool(visible))
        assert fast_entry == await _entry_row(api)
        if status_code == 200:
            assert visible and [e["id"] for e in fast.json()["events"]] == [e.id for e in visible]
            assert len(fast_entry["subjects"]) == 3  # the family and its two persons
