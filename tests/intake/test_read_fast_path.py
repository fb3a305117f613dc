"""The team view's fast path (one Core statement, the audit's members taken from it) answers
exactly what the ORM path (``service.read_household`` and the audit's own member lookup) did and
writes the same audit entry, in two statements where the ORM path took four: for an ordinary
family, one with a member no longer active, a waitlisted one, another site's (denied) and a
missing one (denied), on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, select, update

from services.intake import service
from services.intake.app import create_app
from services.intake.models import Household, Person
from services.intake.schemas import HouseholdSummary
from shared.audit import record_access
from shared.auth import Principal, Role
from shared.pagination import paginate
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
    for household_id, team, site, allowed in cases:
        statements.clear()
        fast = await api.get(f"/v1/households/{household_id}", headers=team)
        if allowed:  # the household with its members and place, then the audit entry: no lookups
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
