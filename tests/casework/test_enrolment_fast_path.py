"""Casework's handling of intake's events (above all ``family-enrolled`` and the makkerpar it
assigns) leaves exactly the rows and events the ORM path left, in the statements it needs.

``tests/casework/data/enrolment_flow.json`` was recorded from the ORM path before the fast path
replaced it (``OTO_RECORD_ENROLMENT_FLOW=1`` records it again). The events go through casework's
real consumer (``EventConsumer.handle_batch``, so the inbox claims them and each partition batch is
one transaction) and the flow covers: an enrolment before the site has staff (pending), the
staff arriving (the waiting family gets its pair), enrolments choosing the least loaded pair with
an absent and a half-time member, a site with one discipline only, an event with no consent cover
(from before it was announced), a redelivery and a re-sent enrolment with a new member, a family
known from ``member-added`` before its enrolment, consent changes, an exit and a re-enrolment,
several enrolments in one batch, one batch of one family's events (member added, enrolled, exited:
one session, each handler seeing what the one before wrote), a member leaving (hand-over keeping
the other) and a reassignment.
Every table the flow touches is compared row by row on both databases, ids and recent times
replaced by stable labels (``tests.intake.test_write_fast_path.Labels``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import event

from services.casework import handlers, staffing
from services.casework.app import create_app
from services.casework.models import Absence, Staff, Stationing, metadata
from shared.departments import Department
from shared.events import DomainEvent
from shared.events.envelope import Envelope
from shared.events.intake import (
    ConsentGivenV2,
    ConsentRevoked,
    FamilyEnrolled,
    FamilyExited,
    Grant,
    Member,
    MemberAdded,
)
from shared.inbox import EventConsumer
from shared.kafka import serialise
from shared.outbox import source_for
from shared.tables import audit_log, idempotency_keys, inbox, outbox
from tests.snapshots import Labels, assert_matches_snapshot, labelled_rows, now_time
from tests.support import bearer, service_api

GOLDEN = Path(__file__).parent / "data" / "enrolment_flow.json"
#: The day the events happened in intake (a fixed day: enrolment days are compared).
HAPPENED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
STARTS_ON = date(2026, 1, 5)
ALL = [d.value for d in Department]
HEALTH, SOCIAL = Department.HEALTH_AND_CARE.value, "sociale-forhold-og-beskaeftigelse"
#: Tables in the order they are compared, each with the columns that order its rows (ids are
#: fixed by the flow where the order needs them; makkerpar ids are labelled in assignment order).
TABLES: dict[str, tuple[str, ...]] = {
    "staff": ("id",), "stationings": ("id",), "absences": ("id",), "families": ("id",),
    "family_members": ("person_id",), "makkerpar": ("assigned_at", "family_id"), "outbox": ("id",),
    "inbox": ("processed_at", "event_id"), "audit_log": ("id",), "idempotency_keys": ("id",)}
SHARED = {"outbox": outbox, "inbox": inbox, "audit_log": audit_log, "idempotency_keys": idempotency_keys}
NUMBERED = {"outbox": "id", "audit_log": "id", "idempotency_keys": "id"}


def fixed(n: int) -> uuid.UUID:
    """Ids the flow chooses (families, persons, staff), so rows sort and pairs tie alike each run."""
    return uuid.UUID(int=n)


class Intake:
    """Hands intake's events to casework's consumer as the broker would, one partition batch at a
    time, with fixed event ids."""

    def __init__(self, cw: Any) -> None:
        self.consumer = EventConsumer(settings=cw.settings, subscription=handlers.SUBSCRIPTION,
                                      sessionmaker=cw.app.state.sessionmaker, retry_delay=0.01)
        self.topic = cw.settings.domain_topic("intake")
        self.offset = 0
        self.sent: list[ConsumerRecord] = []

    def record(self, payload: DomainEvent) -> ConsumerRecord:
        self.offset += 1
        envelope = Envelope(type=payload.event_type, source=source_for("intake"), key=payload.partition_key(),
                            data=payload.model_dump(mode="json"), id=str(fixed(10_000 + self.offset)),
                            time=HAPPENED)
        message = serialise(self.topic, envelope)
        record = ConsumerRecord(self.topic, 0, self.offset, 0, 0, message.key, message.value, None,
                                len(message.key), len(message.value), message.headers)
        self.sent.append(record)
        return record

    async def send(self, *payloads: DomainEvent) -> None:
        """One batch: the consumer handles it in one transaction (one each if it fails)."""
        await self.consumer.handle_batch([self.record(p) for p in payloads])

    async def redeliver(self, record: ConsumerRecord) -> None:
        await self.consumer.handle_batch([record])


def enrolled(family: int, site: str = "gellerup", *, adults: int = 1, children: int = 1,
             shared_with: list[str] | None = ALL) -> FamilyEnrolled:
    """Family ``n`` has persons ``n*10+1…`` (adults first)."""
    roles = ["mother", "father"]
    members = [Member(person_id=fixed(family * 10 + 1 + i), role=roles[min(i, 1)], birth_year=1985)  # type: ignore[arg-type]
               for i in range(adults)]
    members += [Member(person_id=fixed(family * 10 + 1 + adults + i), role="child", birth_year=2014)  # type: ignore[arg-type]
                for i in range(children)]
    return FamilyEnrolled(family_id=fixed(family), site_id=site, members=members, shared_with=shared_with)


async def station(cw: Any, number: int, site: str, discipline: str, *, fte: str = "1",
                  role: str = "staff") -> None:
    """A staff member with a fixed id (``station_staff`` would pick a random one, and pairs tie
    on load by id), then the site's waiting families get their pair as ``station_staff`` does."""
    async with cw.app.state.sessionmaker() as session:
        session.add(Staff(id=fixed(number), site_id=site, display_name=f"{discipline} {number}",
                          discipline=discipline, department=SOCIAL, role=role))
        await session.flush()
        session.add(Stationing(id=fixed(number + 1), staff_id=fixed(number), site_id=site, department=SOCIAL,
                               fte=Decimal(fte), starts_on=STARTS_ON))
        await session.flush()
        await staffing.retry_pending(session, site_id=site)
        await session.commit()


async def away(cw: Any, staff: int, deputy: int) -> None:
    async with cw.app.state.sessionmaker() as session:
        session.add(Absence(id=fixed(900), staff_id=fixed(staff), deputy_id=fixed(deputy),
                            from_date=date(2026, 1, 1), to_date=date(2099, 12, 31)))
        await session.commit()


async def _run_flow(cw: Any) -> list[tuple[str, int, Any]]:
    intake, answers = Intake(cw), []
    leader = bearer(cw.settings, "team_leader", site="gellerup")
    await intake.send(enrolled(1))  # no staff yet: pending
    await station(cw, 100, "gellerup", "social_worker")
    await station(cw, 200, "gellerup", "health_visitor")  # family 1 gets its pair now
    await station(cw, 300, "gellerup", "health_visitor", fte="0.5")
    await station(cw, 400, "gellerup", "social_worker")
    await station(cw, 500, "gellerup", "pedagogue", role="leader")  # no families of their own
    await station(cw, 600, "hasle", "social_worker")  # one discipline only
    await away(cw, 400, 100)
    await intake.send(enrolled(2, adults=2))
    await intake.send(enrolled(3, shared_with=None))  # from before the cover was announced
    await intake.send(enrolled(4, "hasle"))  # pending: the site lacks a second discipline
    await intake.redeliver(intake.sent[1])  # the broker delivers family 2 again: nothing happens
    await intake.send(enrolled(2, adults=2, children=2))  # intake sends it again, a child more
    await intake.send(MemberAdded(family_id=fixed(5), site_id="gellerup", shared_with=[HEALTH],
                                  member=Member(person_id=fixed(51), role="mother", birth_year=1990)))  # type: ignore[arg-type]
    await intake.send(enrolled(5, shared_with=[HEALTH, SOCIAL]))  # known, with no pair yet
    await intake.send(ConsentRevoked(family_id=fixed(2), site_id="gellerup", consent_id=fixed(70),
                                     person_id=fixed(21), departments=[HEALTH], covered_after=[SOCIAL]))  # type: ignore[list-item]
    await intake.send(FamilyExited(family_id=fixed(2), site_id="gellerup", reason="moved_away",  # type: ignore[arg-type]
                                   shared_with=[SOCIAL]))  # type: ignore[list-item]
    await intake.send(enrolled(2, adults=2, children=2, shared_with=[SOCIAL, HEALTH]))  # back again
    await intake.send(ConsentGivenV2(
        family_id=fixed(3), site_id="gellerup", consent_id=fixed(71), person_id=fixed(31),
        person_role="mother", departments=[HEALTH], purposes=["coordinated_help"],  # type: ignore[list-item]
        grants=[Grant(department=HEALTH, purposes=["coordinated_help"])],  # type: ignore[arg-type,list-item]
        covered_after=[HEALTH]))  # type: ignore[list-item]
    await intake.send(enrolled(6), enrolled(7, adults=2, children=0), enrolled(8, "hasle"))  # one batch
    for path, body in ((f"/v1/stationings/{fixed(201)}/end", {"ends_on": "2026-02-27"}),
                       (f"/v1/families/{fixed(3)}/makkerpar/reassign",
                        {"reason_code": "family_request", "reason_text": "The family asked for it."})):
        key = {"Idempotency-Key": f"key-{len(answers)}"}
        response = await cw.post(path, json=body, headers={**leader, **key})
        answers.append((path, response.status_code, response.json()))
    await intake.send(enrolled(9))  # after the hand-over: health visitor 200 has left
    await intake.send(  # one batch, one session: what one handler writes the next one sees
        MemberAdded(family_id=fixed(10), site_id="gellerup", shared_with=[HEALTH],  # type: ignore[list-item]
                    member=Member(person_id=fixed(101), role="mother", birth_year=1990)),  # type: ignore[arg-type]
        enrolled(10, shared_with=None),
        FamilyExited(family_id=fixed(10), site_id="gellerup", reason="moved_away"))  # type: ignore[arg-type]
    return answers


async def _snapshot(cw: Any, answers: list[tuple[str, int, Any]]) -> dict[str, Any]:
    labels = Labels()
    tables = await labelled_rows(cw.app.state.sessionmaker, {**metadata.tables, **SHARED}, TABLES,
                                 NUMBERED, labels)
    for row in tables["inbox"]:  # the consumer is named in the test's own topic namespace
        row["consumer"] = row["consumer"].replace(cw.settings.topic_namespace, "<ns>")
    for row in tables["stationings"]:
        row["fte"] = str(Decimal(str(row["fte"])).normalize())  # 1 (SQLite) or 1.00 (PostgreSQL)
    answered = [[labels.text(path), status, labels.value(now_time(body))] for path, status, body in answers]
    return {"answers": answered, "tables": tables}


@pytest.fixture
async def cw(database_url: str):
    async with service_api(create_app, service="casework", broker=None, database_url=database_url) as http:
        yield http


async def test_the_enrolment_path_leaves_what_the_orm_path_left(cw: Any) -> None:
    assert_matches_snapshot(await _snapshot(cw, await _run_flow(cw)), GOLDEN, "OTO_RECORD_ENROLMENT_FLOW")


async def test_an_enrolment_runs_the_statements_it_needs_and_no_more(cw: Any) -> None:
    """Counted from the consumer's claim to its commit, for a family casework does not know yet
    and for one it knows from ``member-added``."""
    await station(cw, 100, "gellerup", "social_worker")
    await station(cw, 200, "gellerup", "health_visitor")
    intake = Intake(cw)
    await intake.send(MemberAdded(family_id=fixed(5), site_id="gellerup", shared_with=[HEALTH],
                                  member=Member(person_id=fixed(51), role="mother", birth_year=1990)))  # type: ignore[arg-type]
    statements: list[str] = []
    event.listen(cw.app.state.engine.sync_engine, "before_cursor_execute",
                 lambda _c, _k, statement, *_: statements.append(statement))
    counts = []
    for family in (enrolled(1, adults=2), enrolled(5)):
        statements.clear()
        await intake.send(family)
        counts.append(len(statements))
    assert counts == EXPECTED_STATEMENTS, statements


#: A new family of three: the inbox claim, the family's lock, the candidates (one read), the
#: family's insert, its members' insert, the pair, the event. A known family of one: the same with
#: the active pair's read, and an update of the family instead of its insert. The ORM path took
#: 17 and 13 (members read one by one, the family written twice, the candidates in three reads).
EXPECTED_STATEMENTS = [7, 8]
