"""The write path (register, outreach, consent, enrol, on Core with fewer statements) leaves
exactly the rows, outbox events, audit entries and idempotency records the ORM path left.

``tests/intake/data/write_flow.json`` was recorded from the ORM path before the fast path
replaced it (``OTO_RECORD_WRITE_FLOW=1`` records it again). The flow covers an enrolment, a full
site's waitlist, a household found not eligible, a replayed request, and refusals that must
leave nothing behind (a CPR number already in a household, an unknown site, a non-member's
consent, enrolling a household without consent). Every table the writes touch is compared row by
row, ids and times replaced by stable labels (the same id gets the same label wherever it
appears, in rows, payloads and stored answers), on both databases.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from services.intake.app import create_app
from services.intake.models import metadata
from shared.tables import audit_log, idempotency_keys, outbox
from tests.intake.factories import define_area
from tests.snapshots import Labels, assert_matches_snapshot, labelled_rows, now_time
from tests.support import bearer, service_api

GOLDEN = Path(__file__).parent / "data" / "write_flow.json"
#: Tables in the order they are compared, each with the columns that order its rows.
TABLES = {"households": ("created_at",), "persons": ("added_at",), "outreach_attempts": ("at",),
          "consents": ("given_at",), "consent_history": ("id",), "outbox": ("id",), "audit_log": ("id",),
          "idempotency_keys": ("id",)}
SHARED = {"outbox": outbox, "audit_log": audit_log, "idempotency_keys": idempotency_keys}


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as http:
        admin = bearer(http.settings, "admin")
        site = await http.post("/v1/sites", headers=admin,
                               json={"id": "hasle", "name": "Hasle", "capacity": 1})
        assert site.status_code == 201, site.text
        for site_id in ("gellerup", "hasle"):
            await define_area(http, admin, site_id)
        yield http


def _household(site: str, mother: str, child: str,
               address: str = "Gudrunsvej 10, 8220 Brabrand") -> dict[str, Any]:
    return {"site_id": site, "address": address, "members": [
        {"cpr": mother, "role": "mother", "unemployed_since": "2016-03-01"},
        {"cpr": child, "role": "child"}]}


class Flow:
    def __init__(self, api: Any) -> None:
        self.api = api
        self.keys = (f"key-{n}" for n in range(1000))
        self.answers: list[tuple[str, int, Any]] = []

    async def post(self, team: dict[str, str], path: str, body: Any, expected: int, *,
                   key: str | None = None) -> Any:
        response = await self.api.post(path, json=body, headers={
            **team, "Idempotency-Key": key or next(self.keys)})
        assert response.status_code == expected, response.text
        self.answers.append((path, response.status_code, response.json()))
        return response.json()

    async def enrol(self, team: dict[str, str], site: str, mother: str, child: str) -> dict[str, Any]:
        family = await self.post(team, "/v1/households", _household(site, mother, child), 201)
        base, person = f"/v1/households/{family['id']}", family["members"][0]["id"]
        await self.post(team, f"{base}/outreach", {"at": "2026-03-02T16:30:00Z", "outcome": "agreed"}, 201)
        await self.post(team, f"{base}/consents", {
            "person_id": person, "given_by_person_id": person, "purposes": ["coordinated_help"],
            "departments": ["sundhed-og-omsorg", "boern-og-unge"]}, 201, key=f"consent-{family['id']}")
        await self.post(team, f"{base}/enrol", None, 200)
        return dict(family)


async def _run_flow(api: Any) -> Flow:
    flow = Flow(api)
    gellerup = bearer(api.settings, "team_staff", site="gellerup")
    hasle = bearer(api.settings, "team_staff", site="hasle")
    first = await flow.enrol(gellerup, "gellerup", "010185-1001", "010115-4002")
    await flow.enrol(hasle, "hasle", "020185-1003", "020115-4004")
    waiting = await flow.enrol(hasle, "hasle", "030185-1005", "030115-4006")  # hasle is full
    outside = await flow.post(gellerup, "/v1/households", _household(
        "gellerup", "040185-1007", "040115-4008", address="Elsewhere 1, 8000 Aarhus C"), 201)
    # refusals: nothing may be written by them
    await flow.post(gellerup, "/v1/households", _household("gellerup", "010185-1001", "050115-4010"), 409)
    await flow.post(bearer(api.settings, "system"), "/v1/households",
                    _household("nowhere", "060185-1011", "060115-4012"), 422)
    await flow.post(gellerup, f"/v1/households/{outside['id']}/enrol", None, 409)
    await flow.post(gellerup, f"/v1/households/{first['id']}/consents", {
        "person_id": str(uuid.uuid4()), "given_by_person_id": first["members"][0]["id"],
        "purposes": ["coordinated_help"], "departments": ["sundhed-og-omsorg"]}, 422)
    # a replay answers the first answer again (and is audited again), writing nothing else
    mother = waiting["members"][0]["id"]
    await flow.post(hasle, f"/v1/households/{waiting['id']}/consents", {
        "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
        "departments": ["sundhed-og-omsorg", "boern-og-unge"]}, 201, key=f"consent-{waiting['id']}")
    return flow




async def _snapshot(api: Any, flow: Flow) -> dict[str, Any]:
    labels = Labels()
    answers = [[labels.text(path), status, labels.value(now_time(body))]
               for path, status, body in flow.answers]
    numbered = {"consent_history": "id", "outbox": "id", "audit_log": "id", "idempotency_keys": "id"}
    tables = await labelled_rows(api.app.state.sessionmaker, {**metadata.tables, **SHARED}, TABLES,
                                 numbered, labels)
    for entry in tables["audit_log"]:  # the member lookup reads persons in no particular order
        entry["subjects"] = sorted(entry["subjects"], key=lambda s: (s["kind"], s["id"]))
    return {"answers": answers, "tables": tables}


async def test_the_write_path_leaves_what_the_orm_path_left(api: Any) -> None:
    assert_matches_snapshot(await _snapshot(api, await _run_flow(api)), GOLDEN, "OTO_RECORD_WRITE_FLOW")


async def test_the_frequent_writes_run_the_statements_they_need_and_no_more(api: Any) -> None:
    """Register 7 (the replay check, one read of site, area and CPR clash, the household, its
    members, the event, the audit entry, the idempotency record), outreach 9, consent 10 and enrol
    11 (each: the site check, the replay check, the locked row, its changes, the answer, event,
    entry, record); the ORM path took 14, 10, 13 and 15, with member lookups and reads back."""
    statements: list[str] = []
    event.listen(api.app.state.engine.sync_engine, "before_cursor_execute",
                 lambda _c, _k, statement, *_: statements.append(statement))
    counts = []
    flow = Flow(api)
    original = flow.post

    async def counted(*args: Any, **kwargs: Any) -> Any:
        statements.clear()
        answer = await original(*args, **kwargs)
        counts.append(len(statements))
        return answer

    flow.post = counted  # type: ignore[method-assign]
    team = bearer(api.settings, "team_staff", site="gellerup")
    await flow.enrol(team, "gellerup", "070185-1013", "070115-4014")
    assert counts == [7, 9, 10, 11]
