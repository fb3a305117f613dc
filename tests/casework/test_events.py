"""Every casework change is announced through the outbox, without free text, names or notes; a
department receives only what its slice rule lets through."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.departments import Department
from tests.casework.support import TODAY, announced, enrol, ok, station
from tests.support import bearer

HEALTH, SOCIAL, CHILDREN = "sundhed-og-omsorg", "sociale-forhold-og-beskaeftigelse", "boern-og-unge"
WORDS = ("Skriv CV", "Bilka Tilst", "Opfylder", "Godt i gang", "At børnene trives", "Familien ønsker")


def no_free_text(payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        assert not any(words in str(payload) for words in WORDS), payload


async def test_plan_absence_job_and_pair_changes_are_announced_without_free_text(cw) -> None:
    job = await station(cw, "job_consultant")
    health = await station(cw, "health_visitor", HEALTH)
    family = await enrol(cw)
    base = f"/v1/families/{family.id}"

    wishes = await ok(await cw.put(f"{base}/plan/wishes", headers=cw.team,
                                   json={"wishes": "At børnene trives"}))
    plan = await ok(await cw.post(f"{base}/goals", headers=cw.team,
                                  json={"life_area": "employment", "own_words": "Et job"}), 201)
    goal = plan["goals"][0]["id"]
    action = await ok(await cw.post(f"{base}/goals/{goal}/actions", headers=cw.team, json={
        "description": "Skriv CV", "owner": job["id"], "due_on": "2026-04-01"}), 201)
    await ok(await cw.post(f"{base}/actions/{action['id']}/status", headers=cw.team, json={"status": "done"}))
    absence = await ok(await cw.post("/v1/absences", headers=cw.team, json={
        "staff_id": job["id"], "deputy_id": health["id"], "from_date": str(TODAY),
        "to_date": str(TODAY + timedelta(days=3))}), 201)
    opening = await ok(await cw.post("/v1/job-openings", headers=cw.team, json={
        "site_id": "gellerup", "employer": "Bilka Tilst", "role": "Opfylder", "hours_per_week": "15",
        "kind": "flex_job"}), 201)
    match = await ok(await cw.post(f"/v1/job-openings/{opening['id']}/candidates", headers=cw.team, json={
        "family_id": str(family.id), "person_id": str(family.adults[0])}), 201)
    for decision in ({"state": "matched"}, {"state": "placed", "starts_on": "2026-04-01"}):
        await ok(await cw.post(f"/v1/job-matches/{match['id']}/decision", headers=cw.team, json=decision))
    await ok(await cw.post(f"/v1/job-matches/{match['id']}/follow-ups", headers=cw.team, json={
        "on": "2026-04-15", "expectations_aligned": False, "note": "Godt i gang"}), 201)
    before = (await ok(await cw.get(base, headers=cw.team)))["pair"]
    await ok(await cw.post(f"{base}/makkerpar/reassign", headers=cw.team, json={
        "reason_code": "family_request", "reason_text": "Familien ønsker en anden"}))

    family_id, site = str(family.id), {"family_id": str(family.id), "site_id": "gellerup"}
    # Family events carry the departments the family's consent covers (here all four).
    stamped = {**site, "shared_with": sorted(d.value for d in Department)}
    assert await announced(cw, "plan-wishes-updated") == [{**stamped, "plan_version": wishes["version"]}]
    assert await announced(cw, "plan-action-added") == [{
        **stamped, "action_id": action["id"], "goal_id": goal, "life_area": "employment",
        "due_on": "2026-04-01",
        "plan_version": 3}]
    assert await announced(cw, "plan-action-status-changed") == [{
        **stamped, "action_id": action["id"], "goal_id": goal, "life_area": "employment", "status": "done",
        "plan_version": 4}]
    assert await announced(cw, "staff-absence-recorded") == [{
        "absence_id": absence["id"], "site_id": "gellerup", "staff_id": job["id"], "deputy_id": health["id"],
        "from_date": str(TODAY), "to_date": str(TODAY + timedelta(days=3))}]
    assert await announced(cw, "job-opening-registered") == [{
        "opening_id": opening["id"], "site_id": "gellerup", "kind": "flex_job", "hours_per_week": "15"}]
    assert await announced(cw, "employer-follow-up-recorded") == [{
        **stamped, "match_id": match["id"], "person_id": str(family.adults[0]), "on": "2026-04-15",
        "expectations_aligned": False}]
    ended = await announced(cw, "makkerpar-ended")
    assert [(e["family_id"], e["reason_code"], e["staff_ids"]) for e in ended] == [
        (family_id, "family_request", before["staff_ids"])]
    no_free_text([e for name in ("plan-wishes-updated", "plan-action-added", "plan-action-status-changed",
                                 "job-opening-registered", "employer-follow-up-recorded", "makkerpar-ended")
                  for e in await announced(cw, name)])

    # The job centre follows the placement's retention (without the note); every department learns
    # that the pair it was told about no longer holds; no department gets the plan's actions.
    jobs = await ok(await cw.get(f"{base}/slice", headers=bearer(
        cw.settings, "department_staff", department=SOCIAL)))
    kinds = [e["type"].split(".")[4] for e in jobs["events"]]
    assert "employer-follow-up-recorded" in kinds and "makkerpar-ended" in kinds
    assert not {"plan-action-added", "plan-wishes-updated", "staff-absence-recorded"} & set(kinds)
    follow = next(e for e in jobs["events"] if e["type"].endswith("employer-follow-up-recorded.v1"))
    assert follow["data"] == {**site, "match_id": match["id"], "person_id": str(family.adults[0]),
                              "on": "2026-04-15", "expectations_aligned": False}
    children = await ok(await cw.get(f"{base}/slice", headers=bearer(
        cw.settings, "department_staff", department=CHILDREN)))
    ended_for_children = [e["data"] for e in children["events"] if e["type"].endswith("makkerpar-ended.v1")]
    assert ended_for_children == [{**site, "assignment_id": ended[0]["assignment_id"],
                                   "reason_code": "family_request"}]
    no_free_text([e["data"] for e in jobs["events"] + children["events"]])
