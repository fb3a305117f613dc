"""The fold: one handler per event type of a department topic, writing the dashboard's read model.

Handlers run inside the inbox's transaction (``shared.inbox.EventConsumer``), so each event is
folded exactly once however often it is delivered, and a restart resumes from the committed
offset. A dashboard team can reuse ``department_subscription`` with handlers of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard import tables as t
from dashboard.batch import FAMILY, MEMBER, REFERRAL, TIMELINE, batch_of, family_row
from shared.departments import Department
from shared.events import casework as cw
from shared.events import finance as fin
from shared.events import intake as it
from shared.events import referrals as rf
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY, DomainEvent, FamilyEvent, InvalidPayload
from shared.inbox import Handler, Subscription
from shared.settings import Settings
from shared.slices import default_policy
from shared.slices.referrals import EVENTS as REFERRAL_EVENTS

#: Session ``info`` key: set by a handler, read after the commit to tell the browsers.
CHANGED_KEY = "dashboard_changed"


def parse_slice(envelope: Envelope) -> dict[str, Any]:
    """Check a department event: a known type, and every field it carries valid for that type.

    A slice leaves fields out, so the full model cannot validate it; each field present is
    checked against the model's own field type instead. Unknown types and bad fields raise
    (``UnknownEventType``/``InvalidPayload``) and the consumer skips the message.
    """
    model = REGISTRY.spec(envelope.type).model
    fields = model.model_fields
    if issubclass(model, FamilyEvent) and "family_id" not in envelope.data:
        raise InvalidPayload(f"{envelope.type}: invalid fields: family_id (missing)")
    bad = []
    for name, value in envelope.data.items():
        if name not in fields:
            continue  # an added optional field: ignored, as the payload models do
        try:
            _adapter(model, name).validate_python(value)
        except ValidationError:
            bad.append(name)
    if bad:
        raise InvalidPayload(f"{envelope.type}: invalid fields: {', '.join(sorted(bad))}")
    return envelope.data


@cache
def _adapter(model: type[DomainEvent], name: str) -> TypeAdapter[Any]:
    annotation: Any = model.model_fields[name].annotation
    return TypeAdapter(annotation)


# --- families -----------------------------------------------------------------------------

def _touch_family(session: AsyncSession, data: Mapping[str, Any], envelope: Envelope, *,
                  state: str | None = None, exit_reason: str | None = None) -> str:
    """Note the event for the family and its timeline; nothing is kept if its consent was withdrawn
    (the writes check, see ``dashboard.batch``). Returns the family id."""
    batch = batch_of(session)
    family_id = str(data["family_id"])
    batch.add(FAMILY, family_row(dict(data), envelope.time, state=state, exit_reason=exit_reason))
    batch.add(TIMELINE, {"event_id": envelope.id, "family_id": family_id, "event_type": envelope.type,
                         "at": envelope.time, "data": {k: v for k, v in data.items()
                                                       if k not in {"family_id", "site_id", "shared_with"}}})
    session.info[CHANGED_KEY] = True
    return family_id


async def on_family_event(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """Any other family event: it goes on the family's timeline."""
    _touch_family(session, data, envelope)


def _put_members(session: AsyncSession, family_id: str, members: list[Mapping[str, Any]]) -> None:
    for m in members:
        batch_of(session).add(MEMBER, {"person_id": str(m["person_id"]), "family_id": family_id,
                                       "role": m.get("role", "other"), "birth_year": m.get("birth_year")})


async def on_family_enrolled(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """The family joined: its members' ids, roles and birth years (what the slice carries)."""
    family_id = _touch_family(session, data, envelope, state="enrolled")
    _put_members(session, family_id, data.get("members", []))


async def on_member_added(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    family_id = _touch_family(session, data, envelope)
    if data.get("member"):
        _put_members(session, family_id, [data["member"]])


async def on_family_exited(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    _touch_family(session, data, envelope, state="exited", exit_reason=data.get("reason"))


def on_consent_given(department: Department) -> Handler:
    """A consent naming the department lifts an earlier withdrawal: the family may be shown again."""

    async def handle(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
        if department.value in data.get("departments", []):
            batch_of(session).lift(str(data["family_id"]))
        _touch_family(session, data, envelope)

    return handle


def on_consent_revoked(department: Department) -> Handler:
    """The department must stop using the family's data at once: forget all of it, and remember
    only that it was withdrawn, so that later events (or a replay) do not bring it back."""

    async def handle(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
        if department.value not in data.get("departments", []):
            _touch_family(session, data, envelope)
            return
        forget_family(session, str(data["family_id"]), at=envelope)

    return handle


def forget_family(session: AsyncSession, family_id: str, *, at: Envelope) -> None:
    """Delete everything held about one family and keep a tombstone (no data, only the id)."""

    def forget(conn: Connection) -> None:
        for table in (t.members, t.timeline, t.referrals, t.families):
            conn.execute(delete(table).where(table.c.family_id == family_id))
        conn.execute(sqlite_insert(t.revoked).on_conflict_do_nothing(),
                     [{"family_id": family_id, "revoked_at": at.time}])

    batch_of(session).barrier(forget)
    session.info[CHANGED_KEY] = True


# --- referrals ----------------------------------------------------------------------------

async def on_referral_event(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """Each transition carries the referral's whole state: upsert it (per family, in order)."""
    family_id = _touch_family(session, data, envelope)
    sent = envelope.type == rf.ReferralSent.event_type
    batch_of(session).add(REFERRAL, {
        "referral_id": str(data["referral_id"]), "family_id": family_id, "site_id": data["site_id"],
        "person_id": data.get("person_id"), "offer_code": data["offer_code"], "priority": data["priority"],
        "state": data["state"], "due_at": _time(data.get("due_at")), "reason_code": data.get("reason_code"),
        "outcome_code": data.get("outcome_code"), "updated_at": envelope.time,
        "sent_at": (_time(data.get("at")) or envelope.time) if sent else None,
        "overdue_announced": envelope.type == rf.ReferralOverdue.event_type})


def _time(raw: Any) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else raw


# --- staff and finance (site-wide) --------------------------------------------------------

async def on_staff_stationed(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    stationing_id = str(data["stationing_id"])
    row = {"staff_id": str(data["staff_id"]), "site_id": data["site_id"],
           "discipline": data.get("discipline"), "role": data.get("role"), "fte": str(data.get("fte")),
           "starts_on": data.get("starts_on"), "ends_on": data.get("ends_on")}
    await session.execute(delete(t.stationings).where(t.stationings.c.stationing_id == stationing_id))
    await session.execute(t.stationings.insert().values(stationing_id=stationing_id, **row))
    session.info[CHANGED_KEY] = True


async def on_stationing_ended(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    await session.execute(update(t.stationings).where(
        t.stationings.c.stationing_id == str(data["stationing_id"])).values(ends_on=data.get("ends_on")))
    session.info[CHANGED_KEY] = True


async def _put_charge(session: AsyncSession, key: str, kind: str, data: Mapping[str, Any],
                      envelope: Envelope, **extra: Any) -> None:
    await session.execute(delete(t.charges).where(t.charges.c.charge_key == key))
    await session.execute(t.charges.insert().values(
        charge_key=key, kind=kind, site_id=data["site_id"], year=data["year"], amount_ore=data["amount_ore"],
        at=envelope.time, **extra))
    session.info[CHANGED_KEY] = True


async def on_allocation_computed(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """A recomputed allocation replaces the site's year's earlier one."""
    await _put_charge(session, f"allocation:{data['site_id']}:{data['year']}", "allocation", data, envelope,
                      fte_days=data.get("fte_days"))


async def on_settlement_issued(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    await _put_charge(session, str(data["entry_id"]), "settlement", data, envelope,
                      period_start=data.get("period_start"), period_end=data.get("period_end"))


async def on_correction_posted(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    await _put_charge(session, str(data["correction_entry_id"]), "correction", data, envelope,
                      original_entry_id=str(data["original_entry_id"]))


def handlers(department: Department) -> dict[type[DomainEvent], Handler]:
    """A handler for every event type the slice policy can put on the department's topic."""
    specific: dict[type[DomainEvent], Handler] = {
        it.FamilyEnrolled: on_family_enrolled, it.MemberAdded: on_member_added,
        it.FamilyExited: on_family_exited, it.ConsentGiven: on_consent_given(department),
        it.ConsentRevoked: on_consent_revoked(department),
        cw.StaffStationed: on_staff_stationed, cw.StationingEnded: on_stationing_ended,
        fin.AllocationComputed: on_allocation_computed, fin.SettlementIssued: on_settlement_issued,
        fin.CorrectionPosted: on_correction_posted,
        **{model: on_referral_event for model in REFERRAL_EVENTS},
    }
    result: dict[type[DomainEvent], Handler] = {}
    for rule in default_policy().rules:
        if rule.department is department:
            fallback = on_family_event if issubclass(rule.event, FamilyEvent) else None
            handler = specific.get(rule.event, fallback)
            if handler is not None:
                result[rule.event] = handler
    return result


def department_subscription(
        settings: Settings, department: Department, generation: str,
        handlers_by_type: Mapping[type[DomainEvent], Handler] | None = None) -> Subscription:
    """Read only the department's topic, as group ``<ns>.dashboard.<department>.<generation>``.

    A new generation (a new state file, ``--rebuild``) is a new consumer group, so it starts
    from offset 0; the same generation resumes where it committed.
    """
    return Subscription(name=f"dashboard.{department.value}.{generation}", services=(),
                        handlers=handlers_by_type or handlers(department),
                        topics=(settings.department_topic(department.value),), parse=parse_slice,
                        dead_letter=False)


def family_id_of(value: str) -> str | None:
    """A search term as a family id, or None when it is not one."""
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None
