"""Demo data for the embedded system, entered through the public APIs as real users would."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from shared.auth import mint_token
from shared.settings import Settings

STAFF = [("job_consultant", "sociale-forhold-og-beskaeftigelse", "1"),
         ("social_worker", "sociale-forhold-og-beskaeftigelse", "1"),
         ("school_teacher", "boern-og-unge", "1"), ("health_visitor", "sundhed-og-omsorg", "1"),
         ("health_consultant", "sundhed-og-omsorg", "0.5"),
         ("citizen_service", "kultur-og-borgerservice", "0.5")]
_serial = itertools.count(100)
#: The demo's target area for Gellerup: the street its families live on (``_family``).
GELLERUP_AREA = {"name": "Gellerup/Toveshøj", "streets": [{"street": "Gudrunsvej", "from_number": 1,
                                                           "to_number": 99}]}


def _cpr(day: int, yy: int, digit7: int) -> str:
    return f"{day:02d}06{yy:02d}-{digit7}{next(_serial):03d}"


def _token(settings: Settings, role: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(settings, subject=f"demo-{role}", role=role, **claims)}


def seed(urls: dict[str, str], settings: Settings, families: int = 6) -> dict[str, int]:
    """Gellerup's target area, staff for Gellerup, a budget, and families taken through outreach,
    consent and enrolment."""
    team = _token(settings, "team_staff", site="gellerup")
    leader = _token(settings, "team_leader", site="gellerup")
    finance = _token(settings, "finance")
    with httpx.Client(timeout=10) as http:
        http.put(f"{urls['intake']}/v1/sites/gellerup/area", headers=_token(settings, "admin"),
                 json=GELLERUP_AREA).raise_for_status()
        for discipline, department, fte in STAFF:
            http.post(f"{urls['casework']}/v1/staff", headers=leader, json={
                "site_id": "gellerup", "display_name": f"Demo {discipline}", "discipline": discipline,
                "department": department, "fte": fte, "starts_on": "2026-01-01"}).raise_for_status()
        http.post(f"{urls['finance']}/v1/budgets", headers=finance, json={
            "site_id": "gellerup", "year": 2026, "total_ore": 680_000_000, "pool_ore": 350_000_000},
        ).raise_for_status()
        for n in range(families):
            _family(http, urls["intake"], team, n)
    return {"staff": len(STAFF), "families": families}


def _family(http: httpx.Client, intake: str, team: dict[str, str], n: int) -> None:
    body = {"site_id": "gellerup", "address": f"Gudrunsvej {10 + n}, 8220 Brabrand", "members": [
        {"cpr": _cpr(1 + n, 82, 1), "role": "mother", "unemployed_since": "2015-09-01"},
        {"cpr": _cpr(2 + n, 80, 1), "role": "father", "unemployed_since": "2017-01-01"},
        {"cpr": _cpr(3 + n, 14, 4), "role": "child"}]}
    household = http.post(f"{intake}/v1/households", headers=team, json=body).json()
    hid, mother = household["id"], household["members"][0]["id"]
    http.post(f"{intake}/v1/households/{hid}/outreach", headers=team, json={
        "at": "2026-02-03T16:00:00Z", "outcome": "agreed"}).raise_for_status()
    http.post(f"{intake}/v1/households/{hid}/consents", headers=team, json={
        "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
        "departments": ["sociale-forhold-og-beskaeftigelse", "boern-og-unge", "sundhed-og-omsorg",
                        "kultur-og-borgerservice"]}).raise_for_status()
    time.sleep(0.05)
    http.post(f"{intake}/v1/households/{hid}/enrol", headers=team).raise_for_status()
