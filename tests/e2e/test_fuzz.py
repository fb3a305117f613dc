"""Fuzzing every service's OpenAPI with schemathesis: no input, however odd, gives a server
error, and every response (status, content type, headers, body) is what the document says.

The whole embedded system runs (real HTTP, broker and SQLite, with the demo data), and each
service is fuzzed with the roles that use it. Random identifiers only ever find 404s, so a
schemathesis config binds the identifier fields to values that exist in the demo data (with a
probability, so random ones are still tried); the stateful phase then chains what a call
creates into the next calls, using the links schemathesis infers from the response schemas.
The seed is fixed so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import mint_token
from shared.broker import free_port
from shared.embedded import free_base_port
from shared.settings import SERVICES, Settings

pytestmark = pytest.mark.slow
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
SEED = "20261122"
#: Per operation and phase; the whole module stays within a few minutes on two cores.
MAX_EXAMPLES = "30"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
PHASES = ("examples", "fuzzing", "stateful")
#: How often a bound field takes a known value rather than a generated one.
KNOWN_VALUE_PROBABILITY = 0.7
ROLES = {
    "intake": [{"role": "team_staff", "site": "gellerup"}, {"role": "admin"}, {"role": "system"},
               {"role": "data_protection"}, {"role": "partner"}],
    "casework": [{"role": "team_leader", "site": "gellerup"}, {"role": "coordination"},
                 {"role": "evaluator"}, {"role": "data_protection"}],
    "referrals": [{"role": "team_staff", "site": "gellerup"},
                  {"role": "department_staff", "department": "sundhed-og-omsorg"}, {"role": "admin"}],
    "finance": [{"role": "finance"}, {"role": "department_staff", "department": "boern-og-unge"}],
}
#: Which known values each request field may take: field binding → dictionary name.
BINDINGS = {
    "path.family_id": "families", "path.household_id": "families", "query.family_id": "families",
    "body.family_id": "families", "path.referral_id": "referrals",
    "body.person_id": "persons", "body.given_by_person_id": "persons", "path.person_id": "persons",
    "body.staff_id": "staff", "body.deputy_id": "staff", "body.requested_by": "staff",
    "body.staff_ids[*]": "staff", "query.site_id": "sites", "body.site_id": "sites",
    "query.year": "years", "body.year": "years", "body.offer_code": "offers",
}


def _headers(**claims: str) -> dict[str, str]:
    token = mint_token(Settings(), subject="fuzz-setup", **claims)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base = free_base_port()
    data = tmp_path_factory.mktemp("fuzz")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--data-dir", str(data), "--base-port", str(base),
         "--broker-port", str(free_port())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (data / ".demo-seeded").exists():
            time.sleep(0.5)
        assert (data / ".demo-seeded").exists(), "the embedded system did not start"
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def _known_values(base: int) -> dict[str, list[Any]]:
    """Identifiers that exist: the demo families, their members and pairs, and referrals sent
    to the department the department role works for (so its inbox is not empty)."""
    url = {service: f"http://127.0.0.1:{base + i}" for i, service in enumerate(SERVICES)}
    team = _headers(role="team_staff", site="gellerup")
    with httpx.Client(timeout=10) as http:
        households = http.get(f"{url['intake']}/v1/households", headers=team,
                              params={"site_id": "gellerup"}).raise_for_status().json()["items"]
        families = [h["id"] for h in households]
        members = {f: [m["id"] for m in http.get(f"{url['intake']}/v1/households/{f}", headers=team)
                       .raise_for_status().json()["members"]] for f in families}
        staff: set[str] = set()
        deadline = time.monotonic() + 60
        for family in families:  # casework knows a family (and its pair) once it took the event
            while (response := http.get(f"{url['casework']}/v1/families/{family}", headers=team)
                   ).status_code == 404 or not response.json().get("pair"):
                assert time.monotonic() < deadline, "casework did not receive the demo families"
                time.sleep(0.5)
            staff.update(response.raise_for_status().json()["pair"]["staff_ids"])
        referrals = []
        for family in families[:3]:  # referrals need the consent event, so they may take a moment
            person = members[family][0]
            body = {"family_id": family, "offer_code": "faglig-ven-sundhed-og-omsorg", "person_id": person,
                    "reason": "Fuzzing the department's inbox", "fields": {"person_id": person}}
            while (draft := http.post(f"{url['referrals']}/v1/referrals", headers=team, json=body)
                   ).status_code != 201:
                assert time.monotonic() < deadline, f"no referral could be drafted: {draft.text}"
                time.sleep(0.5)
            http.post(f"{url['referrals']}/v1/referrals/{draft.json()['id']}/send",
                      headers=team).raise_for_status()
            referrals.append(draft.json()["id"])
        offers = [o["code"] for o in http.get(f"{url['referrals']}/v1/offers", headers=team)
                  .raise_for_status().json()]
    return {"families": families, "persons": [p for ps in members.values() for p in ps],
            "staff": sorted(staff), "referrals": referrals, "offers": offers, "sites": ["gellerup"],
            "years": [2026]}


@pytest.fixture(scope="module")
def known_values(system: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schemathesis config that binds identifier fields to values from the demo data."""
    values = _known_values(system)
    lines = []
    for name, entries in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(entries)}"]
    lines.append("[parameters]")
    for binding, name in BINDINGS.items():
        lines.append(f'"{binding}" = {{ dictionary = "{name}", probability = {KNOWN_VALUE_PROBABILITY} }}')
    config = tmp_path_factory.mktemp("schemathesis") / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _failures(output: str) -> str:
    """The report from its failures section on (the progress lines before it say little)."""
    start = output.find(" FAILURES ")
    return output[start:][:12000] if start >= 0 else output[-6000:]


@pytest.mark.parametrize(("service", "claims"), [(s, c) for s in SERVICES for c in ROLES[s]],
                         ids=lambda v: v if isinstance(v, str) else "-".join(v.values()))
def test_every_response_is_documented_and_none_is_a_server_error(
        system: int, known_values: Path, service: str, claims: dict[str, str]) -> None:
    port = system + SERVICES.index(service)
    token = mint_token(Settings(), subject="fuzzer", **claims)  # type: ignore[arg-type]
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    result = subprocess.run(
        [SCHEMATHESIS, "--config-file", str(known_values), "run", f"http://127.0.0.1:{port}/openapi.json",
         "-H", f"Authorization: Bearer {token}", "--checks", ",".join(CHECKS), "--phases", ",".join(PHASES),
         "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=known_values.parent,
        env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, _failures(result.stdout)
