"""Target areas through the API, on SQLite and PostgreSQL: kept by admins, imported as CSV, and
the screening's first criterion checked and explained against them."""

from __future__ import annotations

import pytest

from services.intake.app import create_app
from tests.intake.factories import define_area, household_body
from tests.support import bearer, service_api


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as http:
        http.admin = bearer(http.settings, "admin")
        yield http


def area_criterion(household: dict) -> dict:
    return next(c for c in household["screening"] if c["code"] == "target_area")


async def test_screening_checks_the_address_against_the_sites_area_and_explains_it(api) -> None:
    await define_area(api, api.admin, area={"name": "Gellerup/Toveshøj", "streets": [
        {"street": "Gudrunsvej", "from_number": 2, "to_number": 40, "side": "even"}]})
    inside = (await api.post("/v1/households", headers=api.team,
                             json=household_body(address="gudrunsvej  12B, 1. th, 8220 Brabrand"))).json()
    assert inside["eligible"] is True and inside["status"] == "identified"
    assert area_criterion(inside) == {"code": "target_area", "met": True, "state": "met",
                                      "explanation": "gudrunsvej 12B is in the Gellerup/Toveshøj area"}
    outside = (await api.post("/v1/households", headers=api.team,
                              json=household_body(address="Silkeborgvej 123, 8000 Aarhus C"))).json()
    assert outside["eligible"] is False and outside["status"] == "not_eligible"
    assert area_criterion(outside) == {
        "code": "target_area", "met": False, "state": "not_met",
        "explanation": "Silkeborgvej 123 is not in the Gellerup/Toveshøj area"}
    odd = (await api.post("/v1/households", headers=api.team,
                          json=household_body(address="Gudrunsvej 13"))).json()
    assert area_criterion(odd)["met"] is False


async def test_a_site_without_an_area_finds_nobody_eligible_until_one_is_imported(api) -> None:
    tilst = bearer(api.settings, "team_staff", site="tilst")
    household = (await api.post("/v1/households", headers=tilst,
                                json=household_body("tilst", address="Tilst Skolevej 4, 8381 Tilst"))).json()
    assert (household["eligible"], household["status"]) == (False, "not_eligible")
    assert area_criterion(household)["state"] == "unknown"
    assert "no target area is defined for site tilst" in area_criterion(household)["explanation"]
    missing = await api.get("/v1/sites/tilst/area", headers=tilst)
    assert missing.status_code == 404

    csv = "street,from_number,to_number,side\nTilst Skolevej,1,29,\r\nMerkurvej,,,\n"
    imported = await api.post("/v1/sites/tilst/area/import", params={"name": "Tilst"},
                              content=csv.encode(), headers={**api.admin, "content-type": "text/csv"})
    assert imported.status_code == 200, imported.text
    streets = imported.json()["streets"]
    assert [(s["street"], s["from_number"], s["to_number"], s["side"]) for s in streets] == [
        ("Tilst Skolevej", 1, 29, "all"), ("Merkurvej", None, None, "all")]
    again = await api.post(f"/v1/households/{household['id']}/screen", headers=tilst)
    assert (again.json()["eligible"], again.json()["status"]) == (True, "identified")
    assert area_criterion(again.json())["explanation"] == "Tilst Skolevej 4 is in the Tilst area"
    read = await api.get("/v1/sites/tilst/area", headers=tilst)
    assert read.status_code == 200 and read.json()["name"] == "Tilst"


async def test_a_bad_area_changes_nothing_and_names_each_bad_row(api) -> None:
    await define_area(api, api.admin)
    bad_file = ("street,from_number,to_number,side\nGudrunsvej,1,9,\nDortesvej,9,1,\nJettesvej,2,,\n"
                f"{'x' * 201},,,\nEdwin Rahrs Vej,1,99999999999,\n")  # too long for the columns
    refused = await api.post("/v1/sites/gellerup/area/import", content=bad_file.encode(),
                             headers={**api.admin, "content-type": "text/csv"})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in refused.json()["errors"]} == {"body.line 3", "body.line 4", "body.line 5",
                                                       "body.line 6"}
    bad_body = await api.put("/v1/sites/gellerup/area", headers=api.admin, json={
        "name": "Gellerup", "streets": [{"street": "Gudrunsvej"}, {"street": "Dortesvej", "from_number": 5}]})
    assert bad_body.status_code == 422
    assert [e["field"] for e in bad_body.json()["errors"]] == ["body.streets.1"]
    unchanged = (await api.get("/v1/sites/gellerup/area", headers=api.team)).json()
    assert [s["street"] for s in unchanged["streets"]] == ["Gudrunsvej"]
    unknown_site = await api.put("/v1/sites/risskov/area", headers=api.admin, json={
        "name": "Risskov", "streets": [{"street": "Vejlby Centervej"}]})
    assert unknown_site.status_code == 404
    not_admin = await api.put("/v1/sites/gellerup/area", headers=bearer(api.settings, "team_leader",
                                                                          site="gellerup"),
                              json={"name": "Gellerup", "streets": [{"street": "Silkeborgvej"}]})
    assert not_admin.status_code == 403
