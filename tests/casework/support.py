"""Helpers for casework tests without a broker: intake's events handed to casework's handlers as
its consumer would, staff stationed through the API, and the outbox read back to see what was
announced."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from services.casework import handlers
from shared.departments import Department
from shared.events.envelope import Envelope
from shared.events.intake import FamilyEnrolled, FamilyExited, Member
from shared.outbox import source_for
from shared.tables import outbox
from tests.support import bearer

TODAY = date.today()
SOCIAL = "sociale-forhold-og-beskaeftigelse"


@dataclass
class Enrolled:
    id: uuid.UUID
    adults: list[uuid.UUID]
    children: list[uuid.UUID]


async def deliver(http: Any, handler: Any, event: Any, on: date) -> None:
    """Hand an intake event to casework's handler as its consumer does (commit with the effect);
    the envelope's time is the day it happened in intake."""
    envelope = Envelope(type=event.event_type, source=source_for("intake"), key=event.partition_key(),
                        data=event.model_dump(mode="json"), time=datetime.combine(on, time(10), UTC))
    async with http.app.state.sessionmaker() as session:
        await handler(session, event, envelope)
        await session.commit()


async def enrol(http: Any, *, site: str = "gellerup", adults: int = 1, children: int = 1,
                on: date = TODAY) -> Enrolled:
    family = Enrolled(uuid.uuid4(), [uuid.uuid4() for _ in range(adults)],
                      [uuid.uuid4() for _ in range(children)])
    roles = ["mother", "father", "other_adult"]
    members = [Member(person_id=p, role=roles[min(i, 2)], birth_year=1985)  # type: ignore[arg-type]
               for i, p in enumerate(family.adults)]
    members += [Member(person_id=p, role="child", birth_year=2014) for p in family.children]
    await deliver(http, handlers.on_family_enrolled,
                  FamilyEnrolled(family_id=family.id, site_id=site, members=members,
                                 shared_with=[d.value for d in Department]), on)
    return family


async def leave(http: Any, family: Enrolled, *, site: str = "gellerup", on: date = TODAY) -> None:
    await deliver(http, handlers.on_family_exited,
                  FamilyExited(family_id=family.id, site_id=site, reason="moved_away"), on)


async def station(http: Any, discipline: str, department: str = SOCIAL, *, site: str = "gellerup",
                  fte: str = "1", starts_on: date = TODAY - timedelta(days=60),
                  role: str = "staff") -> dict[str, Any]:
    response = await http.post("/v1/staff", headers=bearer(http.settings, "team_leader", site=site), json={
        "site_id": site, "display_name": f"{discipline} {uuid.uuid4().hex[:4]}", "discipline": discipline,
        "department": department, "fte": fte, "starts_on": str(starts_on), "role": role})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def announced(http: Any, name: str) -> list[dict[str, Any]]:
    """The payloads of the casework events of one type in the outbox, in the order recorded."""
    async with http.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.c.payload).where(
            outbox.c.event_type == f"dk.aarhus.oto.casework.{name}.v1").order_by(outbox.c.id))).scalars()
        return list(rows)


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()
