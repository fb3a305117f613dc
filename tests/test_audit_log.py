"""Every read of personal data leaves an audit entry, allowed or denied, or it does not happen.

``PERSONAL_DATA_READS`` lists each service's personal-data read endpoints. For each one the test
proves, on PostgreSQL:

- an allowed read writes one ``allowed`` entry naming the family, the family's persons (so "who
  has seen data about this person" is one query) and the referral, for referral reads, with who
  (the ``sub`` claim), which system (``azp``), role, department, site, when, which endpoint, a
  purpose and the request's correlation id;
- a read refused at object level (another site, another department) answers 404 and writes a
  ``denied`` entry naming the same subject; a list cannot be refused that way (it shows only what
  the caller may see), so for lists the test shows another site's or department's caller neither
  sees the family nor leaves an entry naming it;
- the entries are found per person or family with ``GET /audit?subject_id=`` as admin, the
  coordination group and data protection, and that endpoint refuses every other caller;
- when the audit entry cannot be written (a PostgreSQL trigger makes every insert into
  ``audit_log`` fail, as a revoked INSERT privilege would), the read answers 503 problem+json and
  nothing the read would have shown appears in the body.

A guard test fails when an app serves a personal-data-shaped GET route (an id of a family,
household, referral or person in the path, or a response naming families or persons) that is not
in the list, so a new read cannot skip the audit unnoticed.

The API offers no way to change the log, which the guard checks too; the database refuses it as
well (``test_append_only.py``). Writes that answer with personal data are audited too
(``test_audit_writes.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.authz_support import BY_COLUMN, CALLERS, CLIENT, SERVICES, Caller, path_params, served_routes
from tests.support import make_settings, service_api

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class PersonalRead:
    """One personal-data read endpoint and who to try it with."""

    route: str
    #: The fixture ids an entry must name (every read names the family and its persons).
    subjects: tuple[str, ...] = ("family_id", "person_id")
    #: A caller who may read it; None when nobody ever gets data from it (see the note).
    allowed: str | None = "ts"
    #: Callers refused at object level: 404 and a ``denied`` entry.
    denied: tuple[str, ...] = ("ts-v",)
    #: For lists: callers whose list must not show the family (and who leave no entry naming it).
    hidden_from: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""


SLICE = "GET /v1/families/{family_id}/slice"
PART = "GET /v1/persons/{person_id}/subject-access"

PERSONAL_DATA_READS: dict[str, list[PersonalRead]] = {
    "intake": [
        PersonalRead("GET /v1/households", denied=(), hidden_from=("ts-v",)),
        PersonalRead("GET /v1/households/{household_id}"),
        PersonalRead("GET /v1/households/{household_id}/consents"),
        PersonalRead("GET /v1/households/{household_id}/consents/{consent_id}"),
        # A tip the team followed up names the household it led to.
        PersonalRead("GET /v1/tips", denied=(), hidden_from=("ts-v",)),
        PersonalRead(SLICE, denied=("ts-v", "bu")),
        PersonalRead(PART, subjects=("person_id",), allowed="dp", denied=()),
    ],
    "casework": [
        PersonalRead("GET /v1/families", denied=(), hidden_from=("ts-v",)),
        PersonalRead("GET /v1/families/{family_id}"),
        PersonalRead("GET /v1/families/{family_id}/entry-point"),
        PersonalRead("GET /v1/families/{family_id}/plan"),
        PersonalRead("GET /v1/families/{family_id}/contacts"),
        PersonalRead("GET /v1/families/{family_id}/escalations"),
        PersonalRead("GET /v1/families/{family_id}/measurements"),
        PersonalRead("GET /v1/job-matches", denied=(), hidden_from=("ts-v",)),
        PersonalRead(SLICE, denied=("ts-v", "bu")),
        PersonalRead(PART, subjects=("person_id",), allowed="dp", denied=()),
    ],
    "referrals": [
        PersonalRead("GET /v1/referrals", subjects=("family_id", "person_id", "referral_id"), allowed="so",
                     denied=(), hidden_from=("bu", "ts-v")),
        PersonalRead("GET /v1/referrals/{referral_id}", subjects=("family_id", "person_id", "referral_id"),
                     allowed="so", denied=("bu", "ts-v")),
        PersonalRead(SLICE, allowed="so", denied=("ts-v", "bu")),
        PersonalRead(PART, subjects=("person_id",), allowed="dp", denied=()),
    ],
    "finance": [
        PersonalRead("GET /v1/savings", subjects=("family_id",), allowed="fin", denied=(),
                     params={"year": 2026},
                     note="no object-level refusal: finance and coordination see every site; finance "
                          "knows the persons of families with adults' statuses only, the fixture has none"),
        PersonalRead(SLICE, subjects=("family_id",), allowed=None, denied=("ts", "ts-v", "so"),
                     note="finance publishes no family events, so its family view is empty for all"),
        PersonalRead(PART, subjects=("person_id",), allowed="dp", denied=()),
    ],
}

FAMILY_SHAPED_PARAMS = {"family_id", "household_id", "referral_id", "person_id"}
FAMILY_SHAPED_PROPERTIES = {"family_id", "household_id", "person_id", "members"}
FAMILY_SHAPED_SCHEMAS = ("Household", "Family", "Referral", "Consent", "Member")

REFUSE_AUDIT_WRITES = [
    """CREATE FUNCTION refuse_audit_write() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'permission denied for table audit_log' USING ERRCODE = '42501'; END $$""",
    """CREATE TRIGGER audit_log_refuses_writes BEFORE INSERT ON audit_log
       FOR EACH ROW EXECUTE FUNCTION refuse_audit_write()""",
]


def _schema_names(node: Any, components: dict[str, Any], seen: set[str]) -> tuple[set[str], set[str]]:
    """The schema names and property names a response schema reaches, references followed."""
    names: set[str] = set()
    properties: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                more_names, more_properties = _schema_names(components.get(name, {}), components, seen)
                names |= {name} | more_names
                properties |= more_properties
        properties |= set(node.get("properties", {})) if isinstance(node.get("properties"), dict) else set()
        children: list[Any] = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return names, properties
    for child in children:
        more_names, more_properties = _schema_names(child, components, seen)
        names |= more_names
        properties |= more_properties
    return names, properties


def family_shaped_reads(app: FastAPI) -> set[str]:
    """GET routes that name a family, household, referral or person in the path, or whose answer
    names families or persons: the reads that must be audited unless shown otherwise."""
    return family_shaped_routes(app, methods={"GET"})


def family_shaped_routes(app: FastAPI, *, methods: set[str]) -> set[str]:
    """Routes of ``methods`` naming a family, household, referral or person in the path, or whose
    success answer (any 2xx in the OpenAPI document) names families or persons."""
    document = app.openapi()
    components = document.get("components", {}).get("schemas", {})
    found = set()
    for route in served_routes(app):
        method, path = route.split(" ", 1)
        if method not in methods:
            continue
        if FAMILY_SHAPED_PARAMS & set(path_params(path)):
            found.add(route)
            continue
        responses = document["paths"].get(path, {}).get(method.lower(), {}).get("responses", {})
        answer = [body for status, body in responses.items() if status.startswith("2")]
        names, properties = _schema_names(answer, components, set())
        if properties & FAMILY_SHAPED_PROPERTIES or any(n.startswith(FAMILY_SHAPED_SCHEMAS) for n in names):
            found.add(route)
    return found


def test_every_personal_data_read_route_is_in_the_audited_list_and_the_log_cannot_be_changed() -> None:
    problems = []
    for service, under_test in SERVICES.items():
        app = under_test.create_app(make_settings(service=service))
        listed = {read.route for read in PERSONAL_DATA_READS[service]}
        for route in sorted(family_shaped_reads(app) - listed):
            problems.append(f"{service}: {route} reads personal data but is not in PERSONAL_DATA_READS")
        for route in sorted(listed - served_routes(app)):
            problems.append(f"{service}: {route} is listed but not served")
        writes = sorted(r for r in served_routes(app) if "audit" in r and not r.startswith("GET "))
        problems += [f"{service}: {route} could change the audit log" for route in writes]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


async def _entries(http: httpx.AsyncClient, subject_id: str) -> list[dict[str, Any]]:
    """Every entry naming the subject, page by page through the cursor."""
    admin = BY_COLUMN["adm"].headers(http.settings)  # type: ignore[attr-defined]
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"subject_id": subject_id, "limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/audit", params=params, headers=admin)
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


def names(entry: dict[str, Any], subject_id: str) -> bool:
    return any(s["id"] == subject_id for s in entry["subjects"])


@dataclass
class Reader:
    """Calls a read as a caller and returns the answer with the audit entries it added."""

    http: httpx.AsyncClient
    ids: dict[str, str]

    def path(self, read: PersonalRead) -> str:
        return read.route.split(" ", 1)[1].format(**self.ids)

    async def read(self, read: PersonalRead, caller: Caller) -> tuple[httpx.Response, str, dict[str, list]]:
        before = {s: {e["id"] for e in await _entries(self.http, self.ids[s])} for s in read.subjects}
        request_id = f"audit-test-{uuid.uuid4().hex[:12]}"
        headers = {**caller.headers(self.http.settings), "x-request-id": request_id}  # type: ignore[attr-defined]
        response = await self.http.get(self.path(read), params=read.params, headers=headers)
        added = {s: [e for e in await _entries(self.http, self.ids[s]) if e["id"] not in before[s]]
                 for s in read.subjects}
        return response, request_id, added


def _entry_problems(read: PersonalRead, caller: Caller, outcome: str, request_id: str, path: str,
                    added: dict[str, list], ids: dict[str, str], since: datetime) -> list[str]:
    """What is wrong with the entries one read added (nothing when each subject has its entry)."""
    expected = {"actor": caller.subject, "client": CLIENT, "role": caller.role,
                "department": caller.department, "site_id": caller.site, "endpoint": f"GET {path}",
                "outcome": outcome, "correlation_id": request_id}
    problems = []
    one = {e["id"] for subject in read.subjects for e in added[subject]}
    if len(one) > 1:
        problems.append(f"{read.route} as {caller.column}: {len(one)} entries for one request, expected one")
    for subject in read.subjects:
        mine = [e for e in added[subject] if names(e, ids[subject])]
        if len(mine) != 1:
            problems.append(f"{read.route} as {caller.column}: {len(mine)} {outcome} entries naming "
                            f"{subject}, expected one: {added[subject]}")
            continue
        entry = mine[0]
        wrong = {k: entry[k] for k, v in expected.items() if entry[k] != v}
        when = datetime.fromisoformat(entry["at"])
        if wrong or not entry["purpose"] or not since - timedelta(seconds=1) <= when <= datetime.now(UTC):
            problems.append(f"{read.route} as {caller.column}: entry {entry} differs in {sorted(wrong)} "
                            f"(expected {expected}, a purpose, and a time from this test)")
    return problems


def _leaves(value: Any) -> set[str]:
    """Every scalar a JSON answer shows, as text: what must not appear in a failed read."""
    if isinstance(value, dict):
        return set().union(*(_leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_leaves(v) for v in value)) if value else set()
    return {str(value)} if value is not None else set()


@pytest.mark.parametrize("service", list(PERSONAL_DATA_READS))
async def test_each_personal_data_read_is_audited_allowed_or_denied_and_fails_without_its_entry(
        service: str, postgres_url: str) -> None:
    under_test = SERVICES[service]
    problems: list[str] = []
    shown: dict[str, Any] = {}
    async with service_api(under_test.create_app, service=service, broker=None,
                           database_url=postgres_url) as http:
        ids, _ = await under_test.fixture(http, http.app)  # type: ignore[attr-defined]
        reader = Reader(http, ids)
        since = datetime.now(UTC)
        for read in PERSONAL_DATA_READS[service]:
            path = reader.path(read)
            if read.allowed is not None:
                caller = BY_COLUMN[read.allowed]
                response, request_id, added = await reader.read(read, caller)
                if response.status_code != 200:
                    problems.append(f"{read.route} as {caller.column}: got {response.status_code}")
                shown[read.route] = response.json()
                problems += _entry_problems(read, caller, "allowed", request_id, path, added, ids, since)
            for column in read.denied:
                caller = BY_COLUMN[column]
                response, request_id, added = await reader.read(read, caller)
                if response.status_code != 404:
                    problems.append(f"{read.route} as {column}: expected 404, got {response.status_code}")
                problems += _entry_problems(read, caller, "denied", request_id, path, added, ids, since)
            for column in read.hidden_from:
                response, _, added = await reader.read(read, BY_COLUMN[column])
                if ids["family_id"] in response.text or any(added.values()):
                    problems.append(f"{read.route} as {column}: shows the family or names it in the log: "
                                    f"{response.text[:200]} {added}")

        for caller in CALLERS:
            response = await http.get("/audit", params={"subject_id": ids["family_id"]},
                                      headers=caller.headers(http.settings))  # type: ignore[attr-defined]
            may = caller.column in {"adm", "coo", "dp"}
            expected = 200 if may else 401 if caller.role is None else 403
            if response.status_code != expected:
                problems.append(f"GET /audit as {caller.column}: expected {expected}, "
                                f"got {response.status_code}")
            elif may and not any(names(e, ids["family_id"]) for e in response.json()["items"]):
                problems.append(f"GET /audit as {caller.column}: the family's entries are missing")

        async with http.app.state.engine.begin() as connection:  # type: ignore[attr-defined]
            for statement in REFUSE_AUDIT_WRITES:
                await connection.execute(text(statement))
        for read in PERSONAL_DATA_READS[service]:
            path = reader.path(read)
            for column in ([read.allowed] if read.allowed else []) + list(read.denied):
                response, _, _ = await reader.read(read, BY_COLUMN[column])
                problem_json = response.headers.get("content-type", "").startswith("application/problem+json")
                if response.status_code != 503 or not problem_json:
                    problems.append(f"{read.route} as {column} with the audit log failing: expected 503 "
                                    f"problem+json, got {response.status_code} {response.text[:200]}")
                leaked = {v for v in _leaves(shown.get(read.route)) if len(v) > 3 and v in response.text
                          and v not in str(response.request.url)}
                if leaked:
                    problems.append(f"{read.route} as {column} with the audit log failing shows {leaked}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
