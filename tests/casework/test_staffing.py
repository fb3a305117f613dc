"""Staffing changes keep the makkerpar: an FTE change keeps the person, a departure hands the
families over beside the member who stays, new staff complete waiting pairs, and the entry point
never names someone who has left."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.casework.support import SOCIAL, TODAY, announced, enrol, ok, station
from tests.support import bearer

HEALTH, CHILDREN = "sundhed-og-omsorg", "boern-og-unge"
YESTERDAY = TODAY - timedelta(days=1)


async def pair_of(cw, family_id) -> dict:
    return await ok(await cw.get(f"/v1/families/{family_id}", headers=cw.team))


async def test_an_fte_change_is_a_new_stationing_of_the_same_person_who_keeps_the_families(cw) -> None:
    job = await station(cw, "job_consultant")
    await station(cw, "health_visitor", HEALTH)
    family = await enrol(cw)
    before = (await pair_of(cw, family.id))["pair"]
    assert job["id"] in before["staff_ids"]
    change = TODAY + timedelta(days=30)
    new = await ok(await cw.post(f"/v1/staff/{job['id']}/stationings", headers=cw.leader,
                                 json={"fte": "0.5", "starts_on": str(change)}), 201)
    assert (new["staff_id"], Decimal(new["fte"]), new["department"]) == (job["id"], Decimal("0.5"), SOCIAL)
    staff = (await ok(await cw.get("/v1/staff", headers=cw.team)))["items"]
    mine = next(s for s in staff if s["id"] == job["id"])
    assert [(s["starts_on"], s["ends_on"], Decimal(s["fte"])) for s in mine["stationings"]] == [
        (str(TODAY - timedelta(days=60)), str(change - timedelta(days=1)), 1),
        (str(change), None, Decimal("0.5"))]
    assert mine["leaves_on"] is None
    assert (await pair_of(cw, family.id))["pair"] == before  # same person, same pair
    ended = await announced(cw, "stationing-ended")
    assert [(e["stationing_id"], e["ends_on"]) for e in ended] == [
        (job["stationing_id"], str(change - timedelta(days=1)))]
    stationed = await announced(cw, "staff-stationed")
    assert stationed[-1]["staff_id"] == job["id"] and stationed[-1]["stationing_id"] == new["id"]
    assert await announced(cw, "makkerpar-ended") == []
    overlap = await cw.post(f"/v1/staff/{job['id']}/stationings", headers=cw.leader,
                            json={"fte": "0.8", "starts_on": str(change)})
    assert overlap.status_code == 409
    viby = bearer(cw.settings, "team_leader", site="viby")
    assert (await cw.post(f"/v1/staff/{job['id']}/stationings", headers=viby,
                          json={"fte": "0.8", "starts_on": str(change)})).status_code == 404


async def test_a_leavers_families_get_a_new_member_beside_the_one_who_stays(cw) -> None:
    team = {s["id"]: s for s in [await station(cw, "job_consultant"),
                                 await station(cw, "health_visitor", HEALTH),
                                 await station(cw, "pedagogue", CHILDREN)]}
    families = [await enrol(cw) for _ in range(3)]
    pairs = {f.id: set((await pair_of(cw, f.id))["pair"]["staff_ids"]) for f in families}
    leaver = max(team, key=lambda s: sum(s in p for p in pairs.values()))  # in two pairs of three
    await ok(await cw.post(f"/v1/stationings/{team[leaver]['stationing_id']}/end", headers=cw.leader,
                           json={"ends_on": str(YESTERDAY)}))
    for family in families:
        now = await pair_of(cw, family.id)
        old = pairs[family.id]
        if leaver not in old:
            assert set(now["pair"]["staff_ids"]) == old and len(now["pair_history"]) == 1
            continue
        stays = (old - {leaver}).pop()
        assert now["pair_status"] == "assigned" and leaver not in now["pair"]["staff_ids"]
        assert stays in now["pair"]["staff_ids"]  # continuity for the member who stays
        assert now["pair"]["reason_code"] == "staff_left"
        assert now["pair_history"][0]["ended_reason"] == "staff_left"
        call = await ok(await cw.get(f"/v1/families/{family.id}/entry-point", headers=cw.team))
        assert leaver not in call["call_today"] and stays in call["call_today"]
    moved = [f.id for f in families if leaver in pairs[f.id]]
    ended = await announced(cw, "makkerpar-ended")
    assert sorted(e["family_id"] for e in ended) == sorted(str(f) for f in moved)
    assert {e["reason_code"] for e in ended} == {"staff_left"}
    assigned = [e for e in await announced(cw, "makkerpar-assigned") if e["reason_code"] == "staff_left"]
    assert sorted(e["family_id"] for e in assigned) == sorted(str(f) for f in moved)
    staff = (await ok(await cw.get("/v1/staff", headers=cw.team)))["items"]
    assert next(s for s in staff if s["id"] == leaver)["leaves_on"] == str(YESTERDAY)
    # Someone leaving gets no new families, even while the last day has not come.
    later = await enrol(cw)
    assert leaver not in (await pair_of(cw, later.id))["pair"]["staff_ids"]


async def test_a_pair_that_cannot_be_replaced_waits_and_new_staff_complete_it(cw) -> None:
    job = await station(cw, "job_consultant")
    health = await station(cw, "health_visitor", HEALTH)
    family = await enrol(cw)
    await ok(await cw.post(f"/v1/stationings/{job['stationing_id']}/end", headers=cw.leader,
                           json={"ends_on": str(TODAY + timedelta(days=14))}))
    waiting = await pair_of(cw, family.id)
    assert waiting["pair_status"] == "pending" and waiting["pair"] is None
    assert [e["family_id"] for e in await announced(cw, "makkerpar-pending")] == [str(family.id)]
    pending = await ok(await cw.get("/v1/families", params={"pair_status": "pending"}, headers=cw.team))
    assert [f["id"] for f in pending["items"]] == [str(family.id)]
    newcomer = await station(cw, "school_teacher", CHILDREN)
    done = await pair_of(cw, family.id)
    assert done["pair_status"] == "assigned"
    assert set(done["pair"]["staff_ids"]) == {health["id"], newcomer["id"]}  # health kept
    assert done["pair"]["reason_code"] == "staff_left"
    assert len(await announced(cw, "makkerpar-pending")) == 1  # a retry that works says so once


async def test_new_staff_give_a_family_waiting_since_enrolment_its_pair(cw) -> None:
    tilst = bearer(cw.settings, "team_staff", site="tilst")
    await station(cw, "job_consultant", site="tilst")
    family = await enrol(cw, site="tilst")
    assert (await ok(await cw.get(f"/v1/families/{family.id}", headers=tilst)))["pair_status"] == "pending"
    await station(cw, "job_consultant", site="tilst")  # still one discipline: still waiting, no new event
    assert len(await announced(cw, "makkerpar-pending")) == 1
    leader = await station(cw, "psychologist", HEALTH, site="tilst", role="leader")  # leaders are no pair
    assert (await ok(await cw.get(f"/v1/families/{family.id}", headers=tilst)))["pair_status"] == "pending"
    psychologist = await station(cw, "psychologist", HEALTH, site="tilst")
    now = await ok(await cw.get(f"/v1/families/{family.id}", headers=tilst))
    assert now["pair_status"] == "assigned" and now["pair"]["reason_code"] == "enrolled"
    assert psychologist["id"] in now["pair"]["staff_ids"] and leader["id"] not in now["pair"]["staff_ids"]


async def test_the_entry_point_never_names_a_deputy_who_has_left(cw) -> None:
    await station(cw, "job_consultant")
    await station(cw, "health_visitor", HEALTH)
    family = await enrol(cw)
    member, other = (await pair_of(cw, family.id))["pair"]["staff_ids"]
    deputy = await station(cw, "pedagogue", CHILDREN)
    await ok(await cw.post("/v1/absences", headers=cw.team, json={
        "staff_id": member, "deputy_id": deputy["id"], "from_date": str(YESTERDAY),
        "to_date": str(TODAY + timedelta(days=5))}), 201)
    call = await ok(await cw.get(f"/v1/families/{family.id}/entry-point", headers=cw.team))
    assert set(call["call_today"]) == {deputy["id"], other}
    await ok(await cw.post(f"/v1/stationings/{deputy['stationing_id']}/end", headers=cw.leader,
                           json={"ends_on": str(YESTERDAY)}))
    call = await ok(await cw.get(f"/v1/families/{family.id}/entry-point", headers=cw.team))
    assert call["call_today"] == [other]
