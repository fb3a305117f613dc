"""Writes that answer with personal data are audited like reads, and a list writes one entry.

The test walks every non-GET route of every service whose path names a family, household,
referral or person, or whose response schema (from the OpenAPI document) carries personal data,
and calls it through the HTTP stack as a caller the authorisation matrix allows, with the
matrix's body. Each successful answer must leave exactly one ``allowed`` entry with the request's
correlation id, naming every subject the answer and the path name and, for the fixture family,
its persons. A route that cannot be checked (it never answers 2xx on the fixtures) is listed in
``UNCHECKED`` with the reason, and the test fails if such a route does answer.

Then, on PostgreSQL: when the audit entry cannot be written, a write answers 503 and its change is
not made (the entry shares the write's transaction); and a page of three households writes one
entry naming all three families and their persons, not one row per household.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from services.referrals import handlers as referrals_handlers
from shared.audit import subjects_in
from shared.events.intake import ConsentGiven, ConsentRevoked, FamilyEnrolled, Member
from shared.tables import audit_log
from tests.authz_support import BY_COLUMN, CALLERS, SERVICES, SO, Req, deliver, parse_matrix, path_params
from tests.intake.factories import household_body
from tests.support import service_api
from tests.test_audit_log import REFUSE_AUDIT_WRITES, family_shaped_routes, names
from tests.test_authorisation_matrix import TABLES

pytestmark = pytest.mark.postgres

#: Routes answering with personal data that this walk cannot call successfully, with the reason.
UNCHECKED = {
    "POST /v1/subject-access": "the matrix asks for an unregistered CPR number (nobody to name); the "
                               "report's own entry is checked in e2e/test_subject_access.py",
}


#: The state a referral must be in for each referral route, reached from a draft by these calls.
STEPS = {"accept": ("send",), "decline": ("send",), "status": ("send", "accept"),
         "start": ("send", "accept"), "complete": ("send", "accept", "start"), "resume": ("send", "hold")}


async def referral_ready_for(http: httpx.AsyncClient, app: Any, key: str) -> tuple[str, str]:
    """A new referral of a new Gellerup family, moved to the state ``key`` starts from. "hold" is
    the system's move when consent is withdrawn; consent is then given again so it may resume."""
    family, mother, consent = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4()
    members = [Member(person_id=mother, role="mother", birth_year=1985)]
    await deliver(app, referrals_handlers.on_family_enrolled,
                  FamilyEnrolled(family_id=family, site_id="gellerup", members=members), "intake")
    given = {"family_id": family, "site_id": "gellerup", "person_id": mother, "departments": [SO]}
    await deliver(app, referrals_handlers.on_consent_given, ConsentGiven(
        consent_id=consent, purposes=["coordinated_help"], **given), "intake")
    settings = http.settings  # type: ignore[attr-defined]
    team, so = BY_COLUMN["ts"].headers(settings), BY_COLUMN["so"].headers(settings)
    referral = (await http.post("/v1/referrals", headers=team, json={
        "family_id": family, "offer_code": "physical-rehabilitation", "person_id": mother, "reason": "Ryg",
        "fields": {"person_id": mother, "health_concern_code": "back_pain"}})).json()["id"]
    for step in STEPS.get(key.rsplit("/", 1)[-1], ()):
        if step == "hold":
            revoked = ConsentRevoked(consent_id=consent, **given)
            await deliver(app, referrals_handlers.on_consent_revoked, revoked, "intake")
            await deliver(app, referrals_handlers.on_consent_given, ConsentGiven(
                consent_id=uuid.uuid4(), purposes=["coordinated_help"], **given), "intake")
            continue
        headers = team if step == "send" else so
        response = await http.post(f"/v1/referrals/{referral}/{step}", headers=headers)
        assert response.status_code == 200, f"set-up {step}: {response.text}"
    return str(referral), mother


async def _entries(http: httpx.AsyncClient, subject_id: str) -> list[dict[str, Any]]:
    admin = BY_COLUMN["adm"].headers(http.settings)  # type: ignore[attr-defined]
    response = await http.get("/audit", params={"subject_id": subject_id, "limit": 200}, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _allowed_caller(row: dict[str, str]) -> str | None:
    return next((c.column for c in CALLERS if row[c.column] == "ok"), None)


@pytest.mark.parametrize("service", list(SERVICES))
async def test_every_write_answering_with_personal_data_is_audited_in_one_entry(
        service: str, postgres_url: str) -> None:
    under_test = SERVICES[service]
    table = parse_matrix(TABLES[service])
    problems: list[str] = []
    async with service_api(under_test.create_app, service=service, broker=None,
                           database_url=postgres_url) as http:
        app = http.app  # type: ignore[attr-defined]
        ids, requests = await under_test.fixture(http, app)
        writes = family_shaped_routes(app, methods={"POST", "PUT", "PATCH", "DELETE"})
        assert writes, "the walk found no writes answering with personal data"
        checked = 0
        for key in [k for k in table if k in writes]:
            method, path = key.split(" ", 1)
            column = _allowed_caller(table[key])
            if column is None:
                continue
            req = requests.get(key, Req())
            if service == "referrals" and "{referral_id}" in path:
                # Each transition needs its own referral (of its own family) in the state it starts from.
                referral, mother = await referral_ready_for(http, app, key)
                ids = {**ids, "referral_id": referral, "person_id": mother}
                if req.json and "fields" in req.json:
                    req = Req(json={"fields": {**req.json["fields"], "person_id": mother}})
            url = path.format(**{name: ids[name] for name in path_params(path)})
            request_id = f"audit-write-{uuid.uuid4().hex[:12]}"
            settings = http.settings  # type: ignore[attr-defined]
            caller = BY_COLUMN[column]
            headers = {**caller.headers(settings), "x-request-id": request_id}
            response = await http.request(method, url, headers=headers, json=req.json, params=req.params,
                                          content=req.content)
            if key in UNCHECKED:
                continue
            if not 200 <= response.status_code < 300:
                problems.append(f"{key} as {column}: {response.status_code} {response.text[:160]}")
                continue
            named = {i for _, i in subjects_in({n: ids[n] for n in path_params(path)})}
            named |= {i for _, i in subjects_in(response.json())}
            fixture_family = ids["family_id"] in named
            if fixture_family and "person_id" in ids and service != "finance":
                named.add(ids["person_id"])
            anchor = ids["family_id"] if fixture_family else next(iter(sorted(named)), None)
            if anchor is None:
                problems.append(f"{key}: names nobody in its path or answer, yet was found personal")
                continue
            mine = [e for e in await _entries(http, anchor) if e["correlation_id"] == request_id]
            if len(mine) != 1:
                problems.append(f"{key} as {column}: {len(mine)} entries with the request's id, expected one")
                continue
            entry = mine[0]
            missing = sorted(i for i in named if not names(entry, i))
            if missing or entry["outcome"] != "allowed" or entry["endpoint"] != f"{method} {url}" \
                    or entry["actor"] != caller.subject:
                problems.append(f"{key}: entry {entry} misses {missing} or differs in outcome/endpoint/actor")
            checked += 1
        for route in sorted(set(writes) - set(table)):
            problems.append(f"{route}: personal write without a matrix row to call it with")
        assert checked, "no write was checked"
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


async def test_a_write_whose_audit_entry_cannot_be_written_fails_and_changes_nothing(
        postgres_url: str) -> None:
    under_test = SERVICES["casework"]
    async with service_api(under_test.create_app, service="casework", broker=None,
                           database_url=postgres_url) as http:
        ids, _ = await under_test.fixture(http, http.app)  # type: ignore[attr-defined]
        team = BY_COLUMN["ts"].headers(http.settings)  # type: ignore[attr-defined]
        wishes = f"/v1/families/{ids['family_id']}/plan/wishes"
        assert (await http.put(wishes, headers=team, json={"wishes": "Før"})).status_code == 200
        async with http.app.state.engine.begin() as connection:  # type: ignore[attr-defined]
            for statement in REFUSE_AUDIT_WRITES:
                await connection.execute(text(statement))
        refused = await http.put(wishes, headers=team, json={"wishes": "Efter"})
        goal = await http.post(f"/v1/families/{ids['family_id']}/goals", headers=team,
                               json={"life_area": "housing", "own_words": "Et større hjem"})
        async with http.app.state.engine.begin() as connection:  # type: ignore[attr-defined]
            await connection.execute(text("DROP TRIGGER audit_log_refuses_writes ON audit_log"))
        plan = (await http.get(f"/v1/families/{ids['family_id']}/plan", headers=team)).json()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert goal.status_code == 503, goal.text
    assert plan["wishes"] == "Før"
    assert all(g["own_words"] != "Et større hjem" for g in plan["goals"])


async def test_a_list_page_writes_one_entry_naming_every_family_and_person_on_it(postgres_url: str) -> None:
    under_test = SERVICES["intake"]
    async with service_api(under_test.create_app, service="intake", broker=None,
                           database_url=postgres_url) as http:
        team = BY_COLUMN["ts"].headers(http.settings)  # type: ignore[attr-defined]
        households = []
        for _ in range(3):
            response = await http.post("/v1/households", headers=team, json=household_body())
            assert response.status_code == 201, response.text
            households.append(response.json())
        engine = http.app.state.engine  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            before = (await connection.execute(select(func.count()).select_from(audit_log))).scalar_one()
        page = await http.get("/v1/households", headers={**team, "x-request-id": "one-entry-per-page"})
        async with engine.connect() as connection:
            after = (await connection.execute(select(func.count()).select_from(audit_log))).scalar_one()
        entries = await _entries(http, households[0]["id"])
    assert page.status_code == 200 and len(page.json()["items"]) == 3
    assert after - before == 1
    entry = next(e for e in entries if e["correlation_id"] == "one-entry-per-page")
    expected = {h["id"] for h in households} | {m["id"] for h in households for m in h["members"]}
    assert {s["id"] for s in entry["subjects"]} == expected
    assert {s["kind"] for s in entry["subjects"]} == {"family", "person"}


async def test_the_audit_log_pages_with_a_cursor(postgres_url: str) -> None:
    under_test = SERVICES["intake"]
    async with service_api(under_test.create_app, service="intake", broker=None,
                           database_url=postgres_url) as http:
        team = BY_COLUMN["ts"].headers(http.settings)  # type: ignore[attr-defined]
        household = (await http.post("/v1/households", headers=team, json=household_body())).json()
        for _ in range(4):
            assert (await http.get(f"/v1/households/{household['id']}", headers=team)).status_code == 200
        dp = BY_COLUMN["dp"].headers(http.settings)  # type: ignore[attr-defined]
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            params = {"subject_id": household["members"][0]["id"], "limit": 2,
                      **({"cursor": cursor} if cursor else {})}
            response = await http.get("/audit", params=params, headers=dp)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= 2
            seen += [e["id"] for e in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        bad = await http.get("/audit", params={"subject_id": household["id"], "cursor": "%%%"}, headers=dp)
    assert len(seen) == 5 and seen == sorted(set(seen)) and pages == 3
    assert bad.status_code == 422 and "query.cursor" in bad.text

