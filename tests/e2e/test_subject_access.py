"""The subject-access report (GDPR art. 15) across the four services, over real HTTP.

The four services run for real: each is served by uvicorn on its own port, on its own SQLite file
(the embedded path), with the broker carrying intake's events to the others. A family is enrolled
and worked with in every service (a goal and an employment status in casework, a referral, the
adult's status in finance); the team reads some of it. Then data protection gives intake the
mother's CPR number and gets, as JSON and as CSV:

- one part per service, each holding the rows that name the mother or her family (and no CPR
  column anywhere), and every recorded access naming her or her family;
- the other services were asked over HTTP by person id with the data-protection token: each one's
  own audit log names data protection reading the mother through its subject-access endpoint;
- the CPR number is nowhere in the answer, and only data protection may ask;
- a service that does not answer fails the report with 503 problem+json (never a partial report).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.casework.app import create_app as casework_app
from services.finance.app import create_app as finance_app
from services.intake.app import create_app as intake_app
from services.referrals.app import create_app as referrals_app
from shared.broker import free_port
from tests.intake.factories import define_area, household_body
from tests.support import Broker, bearer, eventually, make_settings

pytestmark = [pytest.mark.broker, pytest.mark.slow]
HEALTH = "sundhed-og-omsorg"
FACTORIES = {"intake": intake_app, "casework": casework_app, "referrals": referrals_app,
             "finance": finance_app}


@contextlib.asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[uvicorn.Server]:
    """The app behind uvicorn on a real port (its lifespan included) until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield server
    finally:
        server.should_exit = True
        await task


def holds(part: dict[str, Any], table: str, **values: str) -> bool:
    return any(all(row.get(k) == v for k, v in values.items()) for row in part["holdings"].get(table, []))


def reads_naming(part: dict[str, Any], person: str) -> list[dict[str, Any]]:
    return [e for e in part["reads"] if any(s["id"] == person for s in e["subjects"])]


async def test_data_protection_gets_a_persons_data_and_every_access_from_all_four_services(
        broker: Broker, tmp_path) -> None:
    namespace = make_settings().topic_namespace
    ports = {name: free_port() for name in FACTORIES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    apps = {name: factory(make_settings(broker=broker, service=name, topic_namespace=namespace,
                                        database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
                                        peer_urls=urls))
            for name, factory in FACTORIES.items()}
    settings = apps["intake"].state.settings
    team = bearer(settings, "team_staff", site="gellerup", subject="caseworker-anna")
    leader = bearer(settings, "team_leader", site="gellerup")
    dpo = bearer(settings, "data_protection", subject="dpo-mette")
    async with contextlib.AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(served(app, ports[name]))
        http = {name: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
                for name, url in urls.items()}
        await define_area(http["intake"], bearer(settings, "admin"))
        body = household_body()
        mother_cpr = body["members"][0]["cpr"]
        household = (await http["intake"].post("/v1/households", json=body, headers=team)).json()
        family, mother = household["id"], household["members"][0]["id"]
        outreach = {"at": "2026-03-02T16:30:00Z", "outcome": "agreed"}
        for path, payload in (("outreach", outreach),
                              ("consents", {"person_id": mother, "given_by_person_id": mother,
                                            "purposes": ["coordinated_help"], "departments": [HEALTH]})):
            assert (await http["intake"].post(f"/v1/households/{family}/{path}", headers=team,
                                              json=payload)).status_code == 201
        assert (await http["intake"].post(f"/v1/households/{family}/enrol", headers=team)).status_code == 200
        assert (await http["intake"].get(f"/v1/households/{family}", headers=team)).status_code == 200

        async def casework_has_family() -> bool:
            return (await http["casework"].get(f"/v1/families/{family}", headers=team)).status_code == 200
        assert await eventually(casework_has_family, timeout=30)
        assert (await http["casework"].post("/v1/staff", headers=leader, json={
            "site_id": "gellerup", "display_name": "Job", "discipline": "job_consultant",
            "department": "sociale-forhold-og-beskaeftigelse", "fte": "1",
            "starts_on": "2026-01-01"})).status_code == 201
        goal = await http["casework"].post(f"/v1/families/{family}/goals", headers=team, json={
            "life_area": "health", "own_words": "Mindre ondt i ryggen", "person_id": mother})
        employment = await http["casework"].post(
            f"/v1/families/{family}/measurements/employment", headers=team,
            json={"person_id": mother, "status": "unemployed", "since": "2016-03-01"})
        assert goal.status_code == 201 and employment.status_code == 201

        async def referral_sent() -> bool:
            drafted = await http["referrals"].post("/v1/referrals", headers=team, json={
                "family_id": family, "offer_code": "physical-rehabilitation", "person_id": mother,
                "reason": "ondt i ryggen",
                "fields": {"person_id": mother, "health_concern_code": "back_pain"}})
            return drafted.status_code == 201
        assert await eventually(referral_sent, timeout=30)

        async def finance_knows_the_adult() -> bool:
            part = await http["finance"].get(f"/v1/persons/{mother}/subject-access", headers=dpo)
            return part.status_code == 200 and holds(part.json(), "adult_status", person_id=mother)
        assert await eventually(finance_knows_the_adult, timeout=30)

        refused = await http["intake"].post("/v1/subject-access", headers=team, json={"cpr": mother_cpr})
        report = await http["intake"].post("/v1/subject-access", headers=dpo, json={"cpr": mother_cpr})
        as_csv = await http["intake"].post("/v1/subject-access", headers=dpo, json={"cpr": mother_cpr},
                                           params={"format": "csv"})
        peer_logs = {name: (await http[name].get("/audit", params={"subject_id": mother}, headers=dpo)).json()
                     for name in ("casework", "referrals", "finance")}
        intake_log = (await http["intake"].get("/audit", params={"subject_id": mother}, headers=dpo)).json()
        # Finance stops answering (its address now leads nowhere): no partial report.
        settings.peer_urls["finance"] = f"http://127.0.0.1:{free_port()}"
        partial = await http["intake"].post("/v1/subject-access", headers=dpo, json={"cpr": mother_cpr})

    assert refused.status_code == 403
    assert report.status_code == 200, report.text
    answer = report.json()
    assert answer["person_ids"] == [mother]
    parts = {part["service"]: part for part in answer["parts"]}
    assert list(parts) == ["intake", "casework", "referrals", "finance"]
    assert holds(parts["intake"], "persons", id=mother) and holds(parts["intake"], "households", id=family)
    assert holds(parts["intake"], "consents", person_id=mother)
    assert holds(parts["casework"], "family_members", person_id=mother)
    assert holds(parts["casework"], "goals", person_id=mother)
    assert holds(parts["casework"], "measurements", person_id=mother)
    assert holds(parts["referrals"], "referrals", person_id=mother)
    assert holds(parts["finance"], "adult_status", person_id=mother)
    assert all("cpr" not in column for part in parts.values() for rows in part["holdings"].values()
               for row in rows for column in row)
    for service in ("intake", "casework", "referrals"):
        seen = reads_naming(parts[service], mother)
        assert any(e["actor"] == "caseworker-anna" and e["outcome"] == "allowed" for e in seen), service
    digits = mother_cpr.replace("-", "")
    assert mother_cpr not in report.text and digits not in report.text
    for name, log in peer_logs.items():
        assert any(e["actor"] == "dpo-mette" and e["endpoint"] == f"GET /v1/persons/{mother}/subject-access"
                   for e in log["items"]), name
    assert any(e["actor"] == "dpo-mette" and e["endpoint"] == "POST /v1/subject-access"
               for e in intake_log["items"])

    assert partial.status_code == 503 and "finance" in partial.json()["detail"]
    assert partial.headers["content-type"].startswith("application/problem+json")

    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {r["service"] for r in rows} == {"intake", "casework", "referrals", "finance"}
    assert {r["section"] for r in rows} == {"holding", "access"}
    assert mother_cpr not in as_csv.text and digits not in as_csv.text
