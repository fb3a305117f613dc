"""What casework records can be read back: lists by site, in pages, audited where they hold
personal data, another site's object absent (404), and in a fixed number of queries."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event

from tests.casework.support import TODAY, enrol, ok, station
from tests.support import bearer

HEALTH = "sundhed-og-omsorg"


@contextlib.contextmanager
def counted(cw: Any) -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = cw.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def items(cw: Any, path: str, headers: dict[str, str] | None = None, **params: str) -> list[Any]:
    return (await ok(await cw.get(path, params=params, headers=headers or cw.team)))["items"]  # type: ignore[no-any-return]


async def audited(cw: Any, subject: uuid.UUID) -> list[tuple[str, str, str]]:
    entries = await ok(await cw.get("/audit", params={"subject_id": str(subject)},
                                    headers=bearer(cw.settings, "admin")))
    return [(e["endpoint"], e["site_id"], e["outcome"]) for e in entries["items"]]


async def test_the_family_list_is_by_site_filtered_paged_and_audited(cw) -> None:
    await station(cw, "job_consultant")
    await station(cw, "health_visitor", HEALTH)
    gellerup = [await enrol(cw) for _ in range(3)]
    viby = await enrol(cw, site="viby")  # no staff there: waits for its pair
    first = await ok(await cw.get("/v1/families", params={"limit": 2}, headers=cw.team))
    rest = await ok(await cw.get("/v1/families", params={"limit": 2, "cursor": first["next_cursor"]},
                                 headers=cw.team))
    listed = first["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert sorted(f["id"] for f in listed) == sorted(str(f.id) for f in gellerup)
    assert all(f["pair_status"] == "assigned" and len(f["pair"]["staff_ids"]) == 2 for f in listed)
    assert all(f["enrolled_on"] == str(TODAY) for f in listed)
    assert await items(cw, "/v1/families", pair_status="pending") == []
    assert (await cw.get("/v1/families", params={"site_id": "viby"}, headers=cw.team)).status_code == 403
    coordination = bearer(cw.settings, "coordination")
    waiting = await ok(await cw.get("/v1/families", params={"pair_status": "pending"}, headers=coordination))
    assert [f["id"] for f in waiting["items"]] == [str(viby.id)]
    by_site = await ok(await cw.get("/v1/families", params={"site_id": "gellerup", "status": "active"},
                                    headers=coordination))
    assert len(by_site["items"]) == 3
    assert (await cw.get("/v1/families", headers=bearer(cw.settings, "finance"))).status_code == 403
    assert ("GET /v1/families", "gellerup", "allowed") in await audited(cw, gellerup[0].id)


async def test_lists_take_the_same_number_of_queries_for_one_family_or_many(cw) -> None:
    await station(cw, "job_consultant")
    await station(cw, "health_visitor", HEALTH)
    opening = await ok(await cw.post("/v1/job-openings", headers=cw.team, json={
        "site_id": "gellerup", "employer": "Bilka", "role": "Lager", "hours_per_week": "20",
        "kind": "ordinary"}), 201)

    async def one_more() -> None:
        family = await enrol(cw)
        candidate = {"family_id": str(family.id), "person_id": str(family.adults[0])}
        match = await ok(await cw.post(f"/v1/job-openings/{opening['id']}/candidates", headers=cw.team,
                                       json=candidate), 201)
        for decision in ({"state": "matched"}, {"state": "placed", "starts_on": str(TODAY)}):
            await ok(await cw.post(f"/v1/job-matches/{match['id']}/decision", headers=cw.team, json=decision))
        await ok(await cw.post(f"/v1/job-matches/{match['id']}/follow-ups", headers=cw.team,
                               json={"on": str(TODAY), "expectations_aligned": True}), 201)

    async def queries() -> tuple[int, int, int]:
        sizes = []
        for path in ("/v1/families", "/v1/job-matches", "/v1/staff"):
            with counted(cw) as statements:
                await ok(await cw.get(path, headers=cw.team))
            sizes.append(len(statements))
        return sizes[0], sizes[1], sizes[2]

    await one_more()
    few = await queries()
    assert all(few)
    for _ in range(4):
        await one_more()
    await station(cw, "pedagogue", "boern-og-unge")
    assert await queries() == few


async def test_a_familys_contacts_escalations_and_measurements_read_back(cw) -> None:
    job = await station(cw, "job_consultant")
    await station(cw, "health_visitor", HEALTH)
    family = await enrol(cw)
    base = f"/v1/families/{family.id}"
    await ok(await cw.post(f"{base}/contacts", headers=cw.team, json={
        "kind": "home_visit", "at": "2026-03-02T16:30:00Z", "staff_ids": [job["id"]],
        "participant_ids": [str(family.adults[0])], "note": "Mor fortalte om sin ryg"}), 201)
    for step in ("team_sparring", "colleague_joins"):
        await ok(await cw.post(f"{base}/escalations", headers=cw.team, json={
            "task_ref": "back-pain", "step": step, "reason_code": "back_pain",
            "requested_by": job["id"]}), 201)
    await ok(await cw.post(f"{base}/measurements/employment", headers=cw.team, json={
        "person_id": str(family.adults[0]), "status": "unemployed", "since": "2024-01-01"}), 201)
    await ok(await cw.post(f"{base}/measurements/wellbeing", headers=cw.team,
                           json={"score": 5, "at": "2026-01-10T10:00:00Z"}), 201)

    contacts = (await ok(await cw.get(f"{base}/contacts", headers=cw.team)))["items"]
    assert [(c["kind"], c["note"], c["staff_ids"]) for c in contacts] == [
        ("home_visit", "Mor fortalte om sin ryg", [job["id"]])]
    steps = (await ok(await cw.get(f"{base}/escalations", params={"task_ref": "back-pain"},
                                   headers=cw.team)))["items"]
    assert sorted(s["step"] for s in steps) == ["colleague_joins", "team_sparring"]
    assert all(s["requested_by"] == job["id"] and s["reason_code"] == "back_pain" for s in steps)
    page = await ok(await cw.get(f"{base}/measurements", params={"limit": 1}, headers=cw.team))
    assert len(page["items"]) == 1 and page["next_cursor"]
    employment = (await ok(await cw.get(f"{base}/measurements", params={"kind": "employment"},
                                        headers=cw.team)))["items"]
    assert [(m["person_id"], m["value"]) for m in employment] == [
        (str(family.adults[0]), {"status": "unemployed", "since": "2024-01-01"})]

    viby = bearer(cw.settings, "team_staff", site="viby")
    for path in ("contacts", "escalations", "measurements"):
        assert (await cw.get(f"{base}/{path}", headers=viby)).status_code == 404
        assert (await cw.get(f"/v1/families/{uuid.uuid4()}/{path}", headers=cw.team)).status_code == 404
    log = await audited(cw, family.id)
    assert (f"GET {base}/contacts", "gellerup", "allowed") in log
    assert (f"GET {base}/measurements", "viby", "denied") in log


async def test_the_plan_carries_its_actions_in_every_version(cw) -> None:
    job = await station(cw, "job_consultant")
    family = await enrol(cw)
    base = f"/v1/families/{family.id}"
    plan = await ok(await cw.post(f"{base}/goals", headers=cw.team, json={
        "life_area": "employment", "own_words": "Et job", "person_id": str(family.adults[0])}), 201)
    goal = plan["goals"][0]["id"]
    action = await ok(await cw.post(f"{base}/goals/{goal}/actions", headers=cw.team, json={
        "description": "Skriv CV", "owner": job["id"], "due_on": "2026-04-01"}), 201)
    await ok(await cw.post(f"{base}/actions/{action['id']}/status", headers=cw.team, json={"status": "done"}))
    now = await ok(await cw.get(f"{base}/plan", headers=cw.team))
    assert now["version"] == 3
    assert [(a["description"], a["owner"], a["status"]) for a in now["goals"][0]["actions"]] == [
        ("Skriv CV", job["id"], "done")]
    second = await ok(await cw.get(f"{base}/plan", params={"version": 2}, headers=cw.team))
    assert [(a["id"], a["status"], a["due_on"]) for a in second["goals"][0]["actions"]] == [
        (action["id"], "open", "2026-04-01")]
    first = await ok(await cw.get(f"{base}/plan", params={"version": 1}, headers=cw.team))
    assert first["goals"][0]["actions"] == []


async def test_a_goal_can_only_name_a_member_of_its_own_family(cw) -> None:
    family, other = await enrol(cw), await enrol(cw)
    base = f"/v1/families/{family.id}/goals"
    goal = {"life_area": "health", "own_words": "Mindre ondt i ryggen"}
    wrong = await cw.post(base, headers=cw.team, json={**goal, "person_id": str(other.adults[0])})
    assert wrong.status_code == 422, wrong.text
    assert [e["field"] for e in wrong.json()["errors"]] == ["body.person_id"]
    unknown = await cw.post(base, headers=cw.team, json={**goal, "person_id": str(uuid.uuid4())})
    assert unknown.status_code == 422 and unknown.json()["errors"] == wrong.json()["errors"]
    child = str(family.children[0])
    right = await ok(await cw.post(base, headers=cw.team, json={**goal, "person_id": child}), 201)
    assert right["version"] == 1 and right["goals"][0]["person_id"] == child


async def test_job_openings_and_matches_read_back_by_site_opening_and_family(cw) -> None:
    await station(cw, "job_consultant")
    await station(cw, "health_visitor", HEALTH)
    family, other = await enrol(cw), await enrol(cw)
    opening = await ok(await cw.post("/v1/job-openings", headers=cw.team, json={
        "site_id": "gellerup", "employer": "Bilka Tilst", "role": "Opfylder", "hours_per_week": "15",
        "kind": "flex_job"}), 201)
    await ok(await cw.post("/v1/job-openings", headers=bearer(cw.settings, "team_staff", site="viby"), json={
        "site_id": "viby", "employer": "Netto", "role": "Kasse", "hours_per_week": "10", "kind": "ordinary"}),
        201)
    match = await ok(await cw.post(f"/v1/job-openings/{opening['id']}/candidates", headers=cw.team, json={
        "family_id": str(family.id), "person_id": str(family.adults[0])}), 201)
    await ok(await cw.post(f"/v1/job-openings/{opening['id']}/candidates", headers=cw.team, json={
        "family_id": str(other.id), "person_id": str(other.adults[0])}), 201)
    for decision in ({"state": "matched"}, {"state": "placed", "starts_on": "2026-04-01"}):
        await ok(await cw.post(f"/v1/job-matches/{match['id']}/decision", headers=cw.team, json=decision))
    await ok(await cw.post(f"/v1/job-matches/{match['id']}/follow-ups", headers=cw.team, json={
        "on": "2026-04-15", "expectations_aligned": True, "note": "Godt i gang"}), 201)

    openings = await items(cw, "/v1/job-openings")
    assert [(o["employer"], o["kind"], o["status"]) for o in openings] == [
        ("Bilka Tilst", "flex_job", "filled")]
    assert await items(cw, "/v1/job-openings", status="open") == []
    assert len(await items(cw, "/v1/job-matches", opening_id=opening["id"])) == 2
    by_family = await items(cw, "/v1/job-matches", family_id=str(family.id))
    assert [(m["id"], m["state"], m["starts_on"]) for m in by_family] == [
        (match["id"], "placed", "2026-04-01")]
    assert by_family[0]["follow_ups"] == [{"on": "2026-04-15", "expectations_aligned": True,
                                           "note": "Godt i gang"}]
    viby = bearer(cw.settings, "team_staff", site="viby")
    for other_sites in ({"opening_id": opening["id"]}, {"family_id": str(family.id)}):
        assert (await cw.get("/v1/job-matches", params=other_sites, headers=viby)).status_code == 404
    assert await items(cw, "/v1/job-matches", viby) == []
    assert ("GET /v1/job-matches", "gellerup", "allowed") in await audited(cw, family.id)


async def test_a_new_familys_plan_is_an_empty_first_version_not_a_404(cw) -> None:
    await station(cw, "job_consultant")
    family = await enrol(cw)
    base = f"/v1/families/{family.id}/plan"
    assert await ok(await cw.get(base, headers=cw.team)) == {
        "family_id": str(family.id), "version": 0, "wishes": "", "goals": []}
    assert (await ok(await cw.get(base, params={"version": 0}, headers=cw.team)))["goals"] == []
    assert (await cw.get(base, params={"version": 1}, headers=cw.team)).status_code == 404
    await ok(await cw.put(f"{base}/wishes", headers=cw.team, json={"wishes": "Et hjem med plads"}))
    assert (await ok(await cw.get(base, headers=cw.team)))["version"] == 1
    assert (await cw.get(f"/v1/families/{uuid.uuid4()}/plan", headers=cw.team)).status_code == 404
