"""The subject-access report (GDPR art. 15, *indsigt*): one person's data and every recorded access,
across all four services, composed by intake — the only service that can turn a CPR number into
a person id.

Intake looks the CPR number up by its keyed hash, then asks each other service's data-protection
endpoint (``GET /v1/persons/{person_id}/subject-access``) over REST with the caller's own
data-protection token: the CPR number never leaves intake, only the person id does, and each
service's own audit log records who asked. A service that does not answer fails the report (503):
a report missing a service would tell the person less than the law gives them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.cpr import CprVault, InvalidCpr, parse_cpr
from services.intake.models import Person
from shared.audit_api import PersonalTables, SubjectAccessPart, subject_access_part
from shared.errors import ServiceUnavailable, Unprocessable

#: The services asked besides intake, in report order.
PEERS = ("casework", "referrals", "finance")
PEER_TIMEOUT_SECONDS = 10.0


class SubjectAccessIn(BaseModel):
    model_config = {"extra": "forbid"}

    cpr: str = Field(min_length=10, max_length=11, pattern=r"^\d{6}-?\d{4}$",
                     description="The person's CPR number (never echoed, never sent on)")


class SubjectAccessReport(BaseModel):
    """Everything the four services hold about a person, and every recorded access to it."""

    person_ids: list[UUID]
    generated_at: datetime
    parts: list[SubjectAccessPart]


async def person_ids_for(session: AsyncSession, *, vault: CprVault, cpr: str) -> list[UUID]:
    """Every person record intake keeps under this CPR number (one per household they were in)."""
    try:
        parsed = parse_cpr(cpr)
    except InvalidCpr as exc:
        raise Unprocessable("Invalid CPR number.", fields={"body.cpr": str(exc)}) from None
    rows = await session.execute(select(Person.id).where(Person.cpr_hash == vault.lookup_hash(parsed))
                                 .order_by(Person.added_at))
    return list(rows.scalars())


async def compose_report(session: AsyncSession, *, person_ids: list[UUID], personal: PersonalTables,
                         peers: Mapping[str, str], authorization: str,
                         correlation_id: str | None) -> SubjectAccessReport:
    """Intake's own part for each person id, then each other service's, asked over REST."""
    parts = [await subject_access_part(session, personal, service="intake", person_id=p) for p in person_ids]
    headers = {"authorization": authorization, **({"x-request-id": correlation_id} if correlation_id else {})}
    async with httpx.AsyncClient(timeout=PEER_TIMEOUT_SECONDS) as client:
        for service in PEERS:
            base = peers.get(service)
            if base is None:
                raise ServiceUnavailable(f"No address is configured for {service} (OTO_PEER_URLS).")
            for person_id in person_ids:
                url = f"{base.rstrip('/')}/v1/persons/{person_id}/subject-access"
                try:
                    response = await client.get(url, headers=headers)
                except httpx.HTTPError:
                    raise ServiceUnavailable(f"{service} did not answer the subject-access request.") \
                        from None
                if response.status_code != 200:
                    raise ServiceUnavailable(f"{service} answered the subject-access request with "
                                             f"{response.status_code}.")
                parts.append(SubjectAccessPart.model_validate(response.json()))
    return SubjectAccessReport(person_ids=person_ids, generated_at=datetime.now(UTC), parts=parts)


CSV_COLUMNS = ("service", "person_id", "section", "table", "record")


def report_csv(report: SubjectAccessReport) -> str:
    """One line per row held and per recorded access: service, person id, ``holding`` or
    ``access``, the table (for holdings), and the record as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for part in report.parts:
        for table, rows in part.holdings.items():
            for row in rows:
                writer.writerow([part.service, part.person_id, "holding", table,
                                 json.dumps(row, sort_keys=True)])
        for entry in part.reads:
            writer.writerow([part.service, part.person_id, "access", "audit_log",
                             entry.model_dump_json()])
    return out.getvalue()
