"""Helpers for the authorisation matrix and the audit-log tests.

The matrix is a table written in the test module; this module knows the callers (its columns),
reads the table, lists the routes an app really serves, sends one request per cell and judges
the answer. Keeping the mechanics here leaves the test modules with the expectations only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from services.casework import handlers as casework_handlers
from services.casework.app import create_app as casework_app
from services.finance import handlers as finance_handlers
from services.finance.app import create_app as finance_app
from services.intake.app import create_app as intake_app
from services.referrals import handlers as referrals_handlers
from services.referrals.app import create_app as referrals_app
from shared.events.casework import StaffStationed
from shared.events.envelope import Envelope
from shared.events.intake import ConsentGiven, ConsentRevoked, FamilyEnrolled, Member
from shared.events.registry import DomainEvent
from shared.outbox import source_for
from shared.settings import Settings
from tests.intake.factories import GELLERUP_AREA, cpr, define_area, household_body
from tests.support import bearer

CLIENT = "authz-tests"  # the ``azp`` claim every token carries, so the audit log can name the system


@dataclass(frozen=True)
class Caller:
    """One kind of caller: a column of the matrix. ``role=None`` is a request without a token."""

    column: str
    role: str | None
    site: str | None = None
    department: str | None = None

    @property
    def subject(self) -> str:
        return f"{self.column}-user"

    def headers(self, settings: Settings) -> dict[str, str]:
        if self.role is None:
            return {}
        claims = {name: value for name, value in (("site", self.site), ("department", self.department))
                  if value}
        return bearer(settings, self.role, subject=self.subject, client=CLIENT, **claims)


SFB, BU, SO, KB = ("sociale-forhold-og-beskaeftigelse", "boern-og-unge", "sundhed-og-omsorg",
                   "kultur-og-borgerservice")

#: The columns of every matrix, in order. The fixtures live in Gellerup; Viby is "another site".
CALLERS: tuple[Caller, ...] = (
    Caller("ts", "team_staff", site="gellerup"),
    Caller("ts-v", "team_staff", site="viby"),
    Caller("tl", "team_leader", site="gellerup"),
    Caller("tl-v", "team_leader", site="viby"),
    Caller("sfb", "department_staff", department=SFB),
    Caller("bu", "department_staff", department=BU),
    Caller("so", "department_staff", department=SO),
    Caller("kb", "department_staff", department=KB),
    Caller("fin", "finance"),
    Caller("coo", "coordination"),
    Caller("sys", "system"),
    Caller("adm", "admin"),
    Caller("dp", "data_protection"),
    Caller("ev", "evaluator"),
    Caller("pt", "partner"),
    Caller("none", None),
)
BY_COLUMN = {caller.column: caller for caller in CALLERS}

#: Cell values. ``ok``: past authorisation: 2xx, or 409 when an earlier caller already made the
#: change (every body is valid, so a 422 here would be a broken test body that could hide a
#: refusal). ``pub``: needs no token (anything but 401/403; the health probes may say 503 because
#: no broker runs). A number: exactly that status (``503``: past authorisation, but the route
#: asks another service, which the matrix does not run).
OUTCOMES = {"ok", "pub", "401", "403", "404", "422", "503"}


def parse_matrix(table: str) -> dict[str, dict[str, str]]:
    """``"METHOD /path" -> {column: outcome}`` from a text table whose first line names the columns.

    Blank lines and ``#`` comments are ignored, so rows can be grouped and explained.
    """
    lines = [line.split("#", 1)[0].rstrip() for line in table.splitlines()]
    lines = [line for line in lines if line.strip()]
    header = lines[0].split()
    if header != [caller.column for caller in CALLERS]:
        raise ValueError(f"the header must name the callers in order: {[c.column for c in CALLERS]}")
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        method, path, *cells = line.split()
        key = f"{method} {path}"
        if len(cells) != len(header) or not set(cells) <= OUTCOMES:
            raise ValueError(f"row {key!r} needs {len(header)} cells out of {sorted(OUTCOMES)}: {cells}")
        if key in rows:
            raise ValueError(f"row {key!r} appears twice")
        rows[key] = dict(zip(header, cells, strict=True))
    return rows


def served_routes(app: FastAPI) -> set[str]:
    """Every ``"METHOD /path"`` the app answers (HEAD aside), docs and health included."""
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD" and route.path:
                found.add(f"{method} {route.path}")
    return found


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


@dataclass(frozen=True)
class Req:
    """What to send besides the path: a minimal valid body where the role is allowed."""

    json: Any = None
    params: Mapping[str, Any] | None = None
    content: bytes | None = None
    content_type: str | None = None


async def send(http: httpx.AsyncClient, settings: Settings, caller: Caller, method: str, path: str,
               req: Req) -> httpx.Response:
    headers = caller.headers(settings)
    if req.content_type:
        headers["content-type"] = req.content_type
    return await http.request(method, path, headers=headers, json=req.json, params=req.params,
                              content=req.content)


def judge(expected: str, response: httpx.Response) -> str | None:
    """None when the answer fits the cell, else a short description of what came instead."""
    status = response.status_code
    if expected == "ok":
        fits = 200 <= status < 300 or status == 409
    elif expected == "pub":
        fits = status not in (401, 403)
    else:
        fits = status == int(expected)
    if fits and status >= 400 and not response.headers.get("content-type", "").startswith(
            "application/problem+json"):
        return f"{status} is not application/problem+json"
    if fits and status == 401 and response.headers.get("www-authenticate") != "Bearer":
        return "401 without WWW-Authenticate: Bearer"
    if fits:
        return None
    detail = response.text[:160].replace("\n", " ")
    return f"expected {expected}, got {status} {detail}"


@dataclass
class MatrixRun:
    """One service's matrix against one running app; mismatches are collected, not raised."""

    http: httpx.AsyncClient
    settings: Settings
    table: dict[str, dict[str, str]]
    requests: Mapping[str, Req]
    ids: Mapping[str, str]
    mismatches: list[str] = field(default_factory=list)

    def _path(self, key: str, ids: Mapping[str, str]) -> str:
        _, path = key.split(" ", 1)
        missing = [p for p in path_params(path) if p not in ids]
        if missing:
            raise KeyError(f"no fixture id for {missing} in {key}")
        return path.format(**ids)

    def ordered(self) -> list[str]:
        """Reads first, so they see the fixtures as set up, before the writes change them."""
        return sorted(self.table, key=lambda key: not key.startswith("GET "))

    async def check_cells(self) -> None:
        for key in self.ordered():
            method = key.split(" ", 1)[0]
            path = self._path(key, self.ids)
            req = self.requests.get(key, Req())
            for caller in CALLERS:
                expected = self.table[key][caller.column]
                response = await send(self.http, self.settings, caller, method, path, req)
                if problem := judge(expected, response):
                    self.mismatches.append(f"{key} [{caller.column}]: {problem}")

    async def check_guessed_ids(self, exempt: Mapping[str, str]) -> None:
        """Random ids in every id position: 404 for whoever may call the function, and the very
        same answer as for the real object for everyone else (so a refusal leaks nothing)."""
        for key in self.ordered():
            method, path = key.split(" ", 1)
            names = path_params(path)
            if not names or key in exempt:
                continue
            guessed = self._path(key, {name: str(uuid.uuid4()) for name in names})
            req = self.requests.get(key, Req())
            for caller in CALLERS:
                cell = self.table[key][caller.column]
                expected = "404" if cell == "ok" else cell
                response = await send(self.http, self.settings, caller, method, guessed, req)
                if problem := judge(expected, response):
                    self.mismatches.append(f"{key} [{caller.column}] with a guessed id: {problem}")

    async def check_body_ids(self, probes: Mapping[str, str]) -> None:
        """Where a ``422`` cell refuses another site's object named in the body, the answer must be
        word for word the answer to a random id in that field (so the refusal leaks nothing)."""
        for key, name in probes.items():
            method = key.split(" ", 1)[0]
            path = self._path(key, self.ids)
            req = self.requests[key]
            guessed = Req(json={**req.json, name: str(uuid.uuid4())}, params=req.params)
            for caller in CALLERS:
                if self.table[key][caller.column] != "422":
                    continue
                real = await send(self.http, self.settings, caller, method, path, req)
                guess = await send(self.http, self.settings, caller, method, path, guessed)
                seen = [(r.status_code, r.json().get("detail"), r.json().get("errors"))
                        for r in (real, guess)]
                if seen[0] != seen[1]:
                    self.mismatches.append(f"{key} [{caller.column}]: another site's {name} is answered "
                                           f"{seen[0]}, a random one {seen[1]}")

    def check_every_route_has_a_row(self, app: FastAPI) -> None:
        served = served_routes(app)
        for key in sorted(served - set(self.table)):
            self.mismatches.append(f"{key}: served by the app but has no row in the matrix")
        for key in sorted(set(self.table) - served):
            self.mismatches.append(f"{key}: a row in the matrix but not served by the app")


def report(service: str, mismatches: Iterable[str]) -> str:
    lines = list(mismatches)
    return f"{len(lines)} mismatching cells in {service}:\n  " + "\n  ".join(lines)


Handler = Callable[[Any, Any, Envelope], Awaitable[None]]


async def deliver(app: FastAPI, handler: Handler, event: DomainEvent, producer: str) -> None:
    """Hand another service's event to a handler as the consumer would: in a session it commits."""
    envelope = Envelope(type=event.event_type, source=source_for(producer), key=event.partition_key(),
                        data=event.model_dump(mode="json"))
    async with app.state.sessionmaker() as session:
        await handler(session, event, envelope)
        await session.commit()


async def park_an_event(app: FastAPI) -> str:
    """A parked outbox row (as the relay leaves one it cannot send), for the outbox admin routes."""
    from datetime import UTC, datetime

    from shared.tables import outbox

    event_id = str(uuid.uuid4())
    async with app.state.engine.begin() as conn:
        await conn.execute(outbox.insert().values(
            event_id=event_id, event_type="dk.aarhus.oto.intake.outreach-recorded.v1",
            source="/oto/intake", partition_key=str(uuid.uuid4()), occurred_at=datetime.now(UTC),
            payload={}, parked_at=datetime.now(UTC), parked_reason="UnicodeEncodeError: test"))
    return event_id


def created(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    """The JSON of a fixture-building call, failing loudly if the set-up itself went wrong."""
    assert response.status_code == status, f"fixture set-up: {response.status_code} {response.text}"
    return response.json()  # type: ignore[no-any-return]


# --- fixtures: one real object (and its parts) per service, in Gellerup ----------------------
# Each returns the ids to put in paths and, per endpoint, a minimal valid body or query.

Fixture = tuple[dict[str, str], dict[str, Req]]


async def intake_fixture(http: Any, app: FastAPI) -> Fixture:
    """A household in Gellerup with a consent naming Sundhed og Omsorg."""
    team = BY_COLUMN["ts"].headers(http.settings)
    await define_area(http, BY_COLUMN["adm"].headers(http.settings))
    household = created(await http.post("/v1/households", headers=team, json=household_body()))
    mother = household["members"][0]["id"]
    consent_body = {"person_id": mother, "given_by_person_id": mother, "departments": [SO],
                    "purposes": ["coordinated_help"]}
    consent = created(await http.post(f"/v1/households/{household['id']}/consents", headers=team,
                                      json=consent_body))
    tip_body = {"site_id": "gellerup", "address": "Gudrunsvej 30", "reason": "social_isolation"}
    partner = BY_COLUMN["pt"].headers(http.settings)
    tip = created(await http.post("/v1/tips", headers=partner, json=tip_body))
    # A second tip, followed up: it names the household it led to (the team's list is personal data).
    known = created(await http.post("/v1/tips", headers=partner, json=tip_body))
    created(await http.post(f"/v1/tips/{known['id']}/follow-up", headers=team, json={
        "outcome": "already_known", "household_id": household["id"]}), 200)
    ids = {"household_id": household["id"], "family_id": household["id"], "consent_id": consent["id"],
           "person_id": mother, "site_id": "gellerup", "tip_id": tip["id"]}
    csv = ("household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
           f"matrix-1,gellerup,Gudrunsvej 12,{cpr(80)},mother,2015-01-01,true\n").encode()
    h = "/v1/households/{household_id}"
    requests = {
        "GET /audit": Req(params={"subject_id": household["id"]}),
        "POST /v1/sites": Req(json={"id": "matrix", "name": "Matrix", "capacity": 5}),
        "POST /v1/households": Req(json=household_body()),
        f"POST {h}/outreach": Req(json={"at": "2026-03-02T16:30:00Z", "outcome": "agreed"}),
        f"POST {h}/consents": Req(json=consent_body),
        f"POST {h}/consents/{{consent_id}}/renew": Req(json={}),
        f"POST {h}/members": Req(json={"cpr": cpr(95), "role": "other_adult"}),
        f"PATCH {h}/members/{{person_id}}": Req(json={"lives_at_address": True}),
        f"POST {h}/exit": Req(json={"reason": "other"}),
        "POST /v1/consents/expire-due": Req(params={"today": "2026-01-01"}),
        "POST /v1/imports": Req(content=csv, content_type="text/csv"),
        "PUT /v1/sites/{site_id}/area": Req(json=GELLERUP_AREA),
        "POST /v1/sites/{site_id}/area/import": Req(content=b"street\nGudrunsvej\n", content_type="text/csv"),
        "GET /v1/profile": Req(params={"period_start": "2026-01-01", "period_end": "2026-12-31"}),
        "POST /v1/subject-access": Req(json={"cpr": cpr(99)}),
        "POST /v1/tips": Req(json=tip_body),
        "POST /v1/tips/{tip_id}/follow-up": Req(json={"outcome": "already_known",
                                                      "household_id": household["id"]}),
    }
    return ids, requests


async def casework_fixture(http: Any, app: FastAPI) -> Fixture:
    """A Gellerup family with a health goal and its action, two stationed staff of one discipline
    (so its pair stays pending and no event goes to every department), a job opening and a match."""
    family, mother, child, teen = (str(uuid.uuid4()) for _ in range(4))
    await deliver(app, casework_handlers.on_family_enrolled, FamilyEnrolled(
        family_id=family, site_id="gellerup", members=[
            Member(person_id=mother, role="mother", birth_year=1985),
            Member(person_id=child, role="child", birth_year=2015),
            Member(person_id=teen, role="child", birth_year=2008)],
        shared_with=["sociale-forhold-og-beskaeftigelse", "sundhed-og-omsorg"]), "intake")
    team, leader = BY_COLUMN["ts"].headers(http.settings), BY_COLUMN["tl"].headers(http.settings)
    f = f"/v1/families/{family}"
    plan = created(await http.post(f"{f}/goals", headers=team, json={
        "life_area": "health", "own_words": "Mindre ondt i ryggen", "person_id": mother}))
    goal = plan["goals"][0]["id"]
    staff = [created(await http.post("/v1/staff", headers=leader, json={
        "site_id": "gellerup", "display_name": name, "discipline": discipline, "department": department,
        "fte": "1", "starts_on": "2026-01-01"}))
        for name, discipline, department in (("Job", "job_consultant", SFB), ("Jobs", "job_consultant", SFB))]
    action = created(await http.post(f"{f}/goals/{goal}/actions", headers=team, json={
        "description": "Ring til lægen", "owner": staff[0]["id"]}))
    opening_body = {"site_id": "gellerup", "employer": "Bilka", "role": "Lager", "hours_per_week": "15",
                    "kind": "ordinary"}
    opening = created(await http.post("/v1/job-openings", headers=team, json=opening_body))
    match = created(await http.post(f"/v1/job-openings/{opening['id']}/candidates", headers=team,
                                    json={"family_id": family, "person_id": mother}))
    # The evaluator loads a comparison cohort for the coordination group to read.
    evaluator = bearer(http.settings, "evaluator", client=CLIENT)
    cohort_body = {"code": "kontrolgruppe", "period_start": "2026-01-01", "period_end": "2026-12-31",
                   "figures": [{"measure": "children_using_fritidspas", "numerator": 1, "denominator": 4}]}
    cohort = created(await http.post("/v1/comparison-cohorts", headers=evaluator, json=cohort_body))
    ids = {"family_id": family, "person_id": mother, "goal_id": goal, "action_id": str(action["id"]),
           "stationing_id": staff[0]["stationing_id"], "staff_id": staff[1]["id"],
           "opening_id": opening["id"], "match_id": str(match["id"]), "cohort_id": cohort["id"]}
    at = "2026-01-10T10:00:00Z"
    fam = "/v1/families/{family_id}"
    requests = {
        "GET /audit": Req(params={"subject_id": family}),
        "GET /v1/outcomes": Req(params={"period_start": "2026-01-01", "period_end": "2026-12-31"}),
        "GET /v1/reports/steering": Req(params={"period_start": "2026-01-01", "period_end": "2026-12-31"}),
        "POST /v1/staff": Req(json={"site_id": "gellerup", "display_name": "Matrix",
                                    "discipline": "pedagogue", "department": "boern-og-unge", "fte": "0.5",
                                    "starts_on": "2026-01-01"}),
        "POST /v1/stationings/{stationing_id}/end": Req(json={"ends_on": "2026-12-31"}),
        "POST /v1/staff/{staff_id}/stationings": Req(json={"fte": "0.5", "starts_on": "2026-07-01"}),
        f"POST {fam}/goals": Req(json={"life_area": "housing", "own_words": "Et større hjem"}),
        f"POST {fam}/goals/{{goal_id}}/state": Req(json={"state": "active"}),
        f"PUT {fam}/plan/wishes": Req(json={"wishes": "At have det godt sammen"}),
        f"POST {fam}/goals/{{goal_id}}/actions": Req(json={"description": "Find en læge",
                                                           "owner": staff[1]["id"]}),
        f"POST {fam}/actions/{{action_id}}/status": Req(json={"status": "done"}),
        f"POST {fam}/escalations": Req(json={"task_ref": "matrix", "step": "team_sparring",
                                             "reason_code": "stuck", "requested_by": staff[0]["id"]}),
        f"POST {fam}/measurements/employment": Req(json={"person_id": mother, "status": "unemployed",
                                                         "since": "2025-01-01"}),
        f"POST {fam}/measurements/school-absence": Req(json={"person_id": child, "term": "2025-autumn",
                                                             "absence_percent": "4.5"}),
        f"POST {fam}/measurements/network": Req(json={"person_id": mother, "answer": 3, "occasion": "start",
                                                      "at": at}),
        f"POST {fam}/measurements/wellbeing": Req(json={"score": 6, "at": at}),
        f"POST {fam}/measurements/leisure-job": Req(json={"person_id": child, "started_on": "2026-01-01"}),
        f"POST {fam}/measurements/fritidspas": Req(json={"person_id": child, "activity": "football",
                                                         "on": "2026-01-15"}),
        f"POST {fam}/measurements/youth-education": Req(json={"person_id": teen, "started_on": "2026-08-10",
                                                              "programme": "eud"}),
        f"POST {fam}/measurements/family-answer": Req(json={"person_id": mother, "question": "wellbeing",
                                                            "answer": 4, "occasion": "start", "at": at}),
        "POST /v1/comparison-cohorts": Req(json=cohort_body),
        "POST /v1/comparison-cohorts/import": Req(
            content=b"measure,numerator,denominator\nnetwork_yes_now,1,2\n", content_type="text/csv",
            params={"code": "kontrolgruppe", "period_start": "2026-01-01", "period_end": "2026-12-31"}),
        f"POST {fam}/contacts": Req(json={"kind": "call", "at": at, "staff_ids": [staff[0]["id"]]}),
        "POST /v1/absences": Req(json={"staff_id": staff[0]["id"], "deputy_id": staff[1]["id"],
                                       "from_date": "2026-02-01", "to_date": "2026-02-05"}),
        "POST /v1/job-openings": Req(json=opening_body),
        "POST /v1/job-openings/{opening_id}/candidates": Req(json={"family_id": family, "person_id": mother}),
        "POST /v1/job-matches/{match_id}/decision": Req(json={"state": "matched"}),
        "POST /v1/job-matches/{match_id}/follow-ups": Req(json={"on": "2026-02-01",
                                                                "expectations_aligned": True}),
        f"POST {fam}/makkerpar/reassign": Req(json={"reason_code": "other", "reason_text": "matrix check"}),
    }
    return ids, requests


async def referrals_fixture(http: Any, app: FastAPI) -> Fixture:
    """A Gellerup family whose consent covers Sundhed og Omsorg, and a referral sent there."""
    family, mother = str(uuid.uuid4()), str(uuid.uuid4())
    await deliver(app, referrals_handlers.on_family_enrolled, FamilyEnrolled(
        family_id=family, site_id="gellerup",
        members=[Member(person_id=mother, role="mother", birth_year=1985)]), "intake")
    await deliver(app, referrals_handlers.on_consent_given, ConsentGiven(
        family_id=family, site_id="gellerup", consent_id=uuid.uuid4(), person_id=mother, departments=[SO],
        purposes=["coordinated_help"]), "intake")
    team = BY_COLUMN["ts"].headers(http.settings)
    fields = {"person_id": mother, "health_concern_code": "back_pain"}
    body = {"family_id": family, "offer_code": "physical-rehabilitation", "person_id": mother,
            "reason": "Ondt i ryggen", "fields": fields}
    referral = created(await http.post("/v1/referrals", headers=team, json=body))
    created(await http.post(f"/v1/referrals/{referral['id']}/send", headers=team), 200)
    r = "/v1/referrals/{referral_id}"
    requests = {
        "GET /audit": Req(params={"subject_id": referral["id"]}),
        "POST /v1/offers": Req(json={"code": "matrix-offer", "department": SO, "title": "Matrix",
                                     "required_fields": ["person_id"], "sla_days": 10}),
        "POST /v1/referrals": Req(json=body),
        f"PUT {r}/fields": Req(json={"fields": fields}),
        f"POST {r}/status": Req(json={"business_status": "venter på første aftale"}),
        f"POST {r}/complete": Req(json={"outcome_code": "goal_met"}),
        f"POST {r}/decline": Req(json={"reason_code": "outside_target_group"}),
        f"POST {r}/cancel": Req(json={"reason_code": "family_request"}),
    }
    return {"family_id": family, "referral_id": referral["id"], "person_id": mother}, requests


async def referral_state_fixture(http: Any, app: FastAPI, state: str) -> Fixture:
    """One referral to Sundhed og Omsorg in ``state``: a draft (consent covers the department);
    a referral it received and accepted, on hold after the consent was revoked; a draft made
    after the revocation; a draft cancelled by the revocation."""
    family, mother, consent = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4()
    await deliver(app, referrals_handlers.on_family_enrolled, FamilyEnrolled(
        family_id=family, site_id="gellerup",
        members=[Member(person_id=mother, role="mother", birth_year=1985)]), "intake")
    await deliver(app, referrals_handlers.on_consent_given, ConsentGiven(
        family_id=family, site_id="gellerup", consent_id=consent, person_id=mother, departments=[SO],
        purposes=["coordinated_help"]), "intake")
    team, so = BY_COLUMN["ts"].headers(http.settings), BY_COLUMN["so"].headers(http.settings)
    fields = {"person_id": mother, "health_concern_code": "back_pain"}
    body = {"family_id": family, "offer_code": "physical-rehabilitation", "person_id": mother,
            "reason": "Ondt i ryggen", "fields": fields}

    async def draft() -> str:
        return str(created(await http.post("/v1/referrals", headers=team, json=body))["id"])

    referral = await draft()
    if state == "held_after_revocation":
        created(await http.post(f"/v1/referrals/{referral}/send", headers=team), 200)
        created(await http.post(f"/v1/referrals/{referral}/accept", headers=so), 200)
    if state != "draft":
        await deliver(app, referrals_handlers.on_consent_revoked, ConsentRevoked(
            family_id=family, site_id="gellerup", consent_id=consent, person_id=mother, departments=[SO]),
            "intake")
    if state == "drafted_after_revocation":
        referral = await draft()
    r = "/v1/referrals/{referral_id}"
    requests = {
        f"PUT {r}/fields": Req(json={"fields": fields}),
        f"POST {r}/status": Req(json={"business_status": "venter på første aftale"}),
        f"POST {r}/complete": Req(json={"outcome_code": "goal_met"}),
        f"POST {r}/decline": Req(json={"reason_code": "outside_target_group"}),
        f"POST {r}/cancel": Req(json={"reason_code": "family_request"}),
    }
    return {"family_id": family, "referral_id": referral}, requests


async def finance_fixture(http: Any, app: FastAPI) -> Fixture:
    """A budget for Gellerup 2026, a stationing to split it by, a settled first quarter, and a
    family with savings figures."""
    family = str(uuid.uuid4())
    await deliver(app, finance_handlers.on_staff_stationed, StaffStationed(
        stationing_id=uuid.uuid4(), staff_id=uuid.uuid4(), site_id="gellerup", department=SO,
        discipline="health_visitor", role="staff", fte="1", starts_on="2026-01-01"), "casework")
    await deliver(app, finance_handlers.on_family_enrolled, FamilyEnrolled(
        family_id=family, site_id="gellerup", members=[]), "intake")
    finance = BY_COLUMN["fin"].headers(http.settings)
    budget = {"site_id": "gellerup", "year": 2026, "total_ore": 100_000_000, "pool_ore": 20_000_000}
    created(await http.post("/v1/budgets", headers=finance, json=budget))
    entries = created(await http.post("/v1/settlements", headers=finance, json={
        "site_id": "gellerup", "year": 2026, "quarter": 1}))
    entry = next(e["id"] for e in entries if e["department"] == SO)
    created(await http.put(f"/v1/families/{family}/savings", headers=finance, json={
        "site_id": "gellerup", "baseline_ore": 30_000_000, "current_ore": 20_000_000}), 200)
    site_year = {"site_id": "gellerup", "year": 2026}
    statement = {**site_year, "department": SO}
    requests = {
        "GET /audit": Req(params={"subject_id": family}),
        "GET /v1/budgets": Req(params={"year": site_year["year"]}),
        "GET /v1/allocations": Req(params=site_year),
        "GET /v1/statements": Req(params=statement),
        "GET /v1/statements.csv": Req(params=statement),
        "GET /v1/savings": Req(params={"year": 2026}),
        "POST /v1/budgets": Req(json=budget),
        "POST /v1/allocations": Req(json=site_year),
        "POST /v1/allocations/preview": Req(json={**budget, "roster": [
            {"department": SO, "fte": "1", "starts_on": "2026-01-01"}]}),
        "POST /v1/settlements": Req(json={**site_year, "quarter": 2}),
        "POST /v1/ledger/{entry_id}/correct": Req(json={"amount_ore": 100}),
        "PUT /v1/families/{family_id}/savings": Req(json={"site_id": "gellerup", "baseline_ore": 1000,
                                                          "current_ore": 500}),
        "GET /v1/savings/areas": Req(params={"year": 2026}),
        "PUT /v1/families/{family_id}/costs": Req(json={"site_id": "gellerup", "areas": {
            "income_support": {"baseline_ore": 1000, "current_ore": 500}}}),
        "POST /v1/grants": Req(json={"site_id": "gellerup", "code": "matrix-grant", "funder": "foundation",
                                     "period_start": "2026-01-01", "period_end": "2026-12-31",
                                     "amount_ore": 1_000_000, "pays_for": "pool"}),
        "GET /v1/grants": Req(params={"year": 2026}),
        "GET /v1/funding": Req(params={"year": 2026}),
        "POST /v1/costs/imports": Req(content=f"family_id,site_id,area,baseline_ore,current_ore\n"
                                              f"{family},gellerup,service_act,900,300\n".encode(),
                                      content_type="text/csv"),
    }
    return {"family_id": family, "entry_id": entry, "person_id": str(uuid.uuid4())}, requests


@dataclass(frozen=True)
class ServiceUnderTest:
    create_app: Callable[..., FastAPI]
    fixture: Callable[[Any, FastAPI], Awaitable[Fixture]]


SERVICES: dict[str, ServiceUnderTest] = {
    "intake": ServiceUnderTest(intake_app, intake_fixture),
    "casework": ServiceUnderTest(casework_app, casework_fixture),
    "referrals": ServiceUnderTest(referrals_app, referrals_fixture),
    "finance": ServiceUnderTest(finance_app, finance_fixture),
}
