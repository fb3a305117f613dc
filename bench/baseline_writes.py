"""The REST-write baseline: registering and enrolling a household as bare asyncpg inserts.

Four requests, as the system's flow (``bench.rest_write``): register, outreach, consent, enrol.
Each writes in one transaction the rows the system's request writes — the household and its two
persons, the outreach attempt, the consent and its history entry, the status changes — plus the
outbox row, the audit entry and the idempotency record, and nothing else: no screening, no CPR
encryption, no rule checks, no reads. Mounted on ``bench.baseline_app``'s pool
(its JSON codec encodes the Python values bound to the ``::json`` parameters).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Request

SOURCE = "/oto/intake"
OUTBOX = ("INSERT INTO outbox (event_id, event_type, source, partition_key, subject, occurred_at,"
          " correlation_id, payload) VALUES ($1, $2, $3, $4, $4, $5, $1, $6::json)")
AUDIT = ("INSERT INTO audit_log (at, actor, role, site_id, subjects, endpoint, purpose, outcome)"
         " VALUES ($1, 'baseline', 'team_staff', 'gellerup', $2::json, $3, $4, 'allowed')")
IDEMPOTENCY = ("INSERT INTO idempotency_keys (principal, key, fingerprint, status_code, response_body,"
               " created_at) VALUES ('baseline', $1, $2, $3, $4::json, $5)")
HOUSEHOLD = ("INSERT INTO households (id, site_id, address, status, furthest_stage, eligible, screening,"
             " screened_at, created_at) VALUES ($1, $2, $3, 'identified', 'identified', true, $4::json,"
             " $5, $5)")
PERSONS = ("INSERT INTO persons (id, household_id, role, birth_date, cpr_ciphertext, cpr_hash,"
           " cpr_is_replacement, unemployed_since, lives_at_address, active, added_at)"
           " SELECT unnest($1::uuid[]), $2, unnest($3::text[]), unnest($4::date[]), unnest($5::text[]),"
           " unnest($6::text[]), false, unnest($7::date[]), true, true, $8")
OUTREACH = ("INSERT INTO outreach_attempts (id, household_id, at, staff_id, channel, outcome)"
            " VALUES ($1, $2, $3, 'baseline', 'door_knock', $4)")
CONSENT = ("INSERT INTO consents (id, household_id, person_id, given_by_person_id, departments, purposes,"
           " state, given_at, withdrawn) VALUES ($1, $2, $3, $4, $5::json, $6::json, 'given', $7, '[]')")
HISTORY = ("INSERT INTO consent_history (consent_id, state, at, by, departments)"
           " VALUES ($1, 'given', $2, 'baseline', $3::json)")
STATUS = "UPDATE households SET status = $2, furthest_stage = $2 WHERE id = $1"
ENROLLED = ("UPDATE households SET status = 'enrolled', furthest_stage = 'enrolled', enrolled_at = $2"
            " WHERE id = $1")


def _date(text: str | None) -> Any:
    return datetime.strptime(text, "%Y-%m-%d").date() if text else None


def _born(cpr: str) -> Any:
    digits = cpr.replace("-", "")
    century = 1900 if digits[6] in "0123" else 2000
    return datetime(century + int(digits[4:6]), int(digits[2:4]), int(digits[0:2])).date()


async def _common(conn: asyncpg.Connection, request: Request, *, family: UUID, event: str,
                  payload: dict[str, Any], answer: dict[str, Any], status: int, now: datetime) -> None:
    """The outbox row, the audit entry and the idempotency record every system write has."""
    key = request.headers.get("idempotency-key") or str(uuid.uuid4())
    await conn.execute(OUTBOX, str(uuid.uuid4()), f"dk.aarhus.oto.intake.{event}", SOURCE, str(family), now,
                       {"family_id": str(family), "site_id": "gellerup", **payload})
    await conn.execute(AUDIT, now, [{"kind": "family", "id": str(family)}], f"POST {request.url.path}", event)
    await conn.execute(IDEMPOTENCY, key, hashlib.sha256(key.encode()).hexdigest(), status, answer, now)


def write_router() -> APIRouter:
    router = APIRouter(prefix="/bench")

    @router.post("/households", status_code=201)
    async def register(body: dict[str, Any], request: Request) -> dict[str, Any]:
        now, family = datetime.now(UTC), uuid.uuid4()
        members = [(uuid.uuid4(), m) for m in body["members"]]
        answer = {"id": str(family), "status": "identified",
                  "members": [{"id": str(i), "role": m["role"]} for i, m in members]}
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute(HOUSEHOLD, family, body["site_id"], body["address"],
                               [{"code": "target_area", "met": True}], now)
            await conn.execute(PERSONS, [i for i, _ in members], family, [m["role"] for _, m in members],
                               [_born(m["cpr"]) for _, m in members], [m["cpr"] for _, m in members],
                               [hashlib.sha256(m["cpr"].encode()).hexdigest() for _, m in members],
                               [_date(m.get("unemployed_since")) for _, m in members], now)
            await _common(conn, request, family=family, event="household-screened.v1",
                          payload={"eligible": True}, answer=answer, status=201, now=now)
        return answer

    @router.post("/households/{family}/outreach", status_code=201)
    async def outreach(family: UUID, body: dict[str, Any], request: Request) -> dict[str, Any]:
        now, attempt = datetime.now(UTC), uuid.uuid4()
        answer = {"id": str(family), "status": "invited"}
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute(OUTREACH, attempt, family, datetime.fromisoformat(body["at"]), body["outcome"])
            await conn.execute(STATUS, family, "invited")
            await _common(conn, request, family=family, event="outreach-attempt-recorded.v1",
                          payload={"attempt_id": str(attempt)}, answer=answer, status=201, now=now)
        return answer

    @router.post("/households/{family}/consents", status_code=201)
    async def consent(family: UUID, body: dict[str, Any], request: Request) -> dict[str, Any]:
        now, consent_id = datetime.now(UTC), uuid.uuid4()
        answer = {"id": str(consent_id), "household_id": str(family), "state": "given"}
        departments = body["departments"]
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute(CONSENT, consent_id, family, UUID(body["person_id"]),
                               UUID(body["given_by_person_id"]), departments, body["purposes"], now)
            await conn.execute(HISTORY, consent_id, now, departments)
            await conn.execute(STATUS, family, "consented")
            await _common(conn, request, family=family, event="consent-given.v2",
                          payload={"consent_id": str(consent_id)}, answer=answer, status=201, now=now)
        return answer

    @router.post("/households/{family}/enrol")
    async def enrol(family: UUID, request: Request) -> dict[str, Any]:
        now = datetime.now(UTC)
        answer = {"id": str(family), "status": "enrolled"}
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute(ENROLLED, family, now)
            await _common(conn, request, family=family, event="family-enrolled.v1",
                          payload={"shared_with": ["sundhed-og-omsorg"]}, answer=answer, status=200, now=now)
        return answer

    return router
