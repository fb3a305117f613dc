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
from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard import tables as t
from shared.db import UTCDateTime, insert_ignoring_conflicts
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

async def _touch_family(session: AsyncSession, data: Mapping[str, Any], envelope: Envelope,
                        state: str | None = None) -> bool:
    """Record the event on the family's timeline; False if the family's consent was withdrawn.

    One upsert does the withdrawal check, the insert and the update (a rebuild folds tens of
    thousands of events, and each statement is a trip to SQLite's thread).
    """
    family_id = str(data["family_id"])
    at = literal(envelope.time, UTCDateTime())
    row = select(literal(family_id).label("family_id"), literal(data["site_id"]).label("site_id"),
                 literal(state or "consented").label("state"), literal(1).label("events"),
                 at.label("last_event_at")).where(~exists().where(t.revoked.c.family_id == family_id))
    new = sqlite_insert(t.families).from_select(
        ["family_id", "site_id", "state", "events", "last_event_at"], row)
    changes: dict[str, Any] = {
        "site_id": new.excluded.site_id, "events": t.families.c.events + 1,
        "last_event_at": func.max(t.families.c.last_event_at, new.excluded.last_event_at)}
    if state is not None:
        changes["state"] = new.excluded.state
    result = await session.execute(new.on_conflict_do_update(index_elements=["family_id"], set_=changes))
    if not getattr(result, "rowcount", 0):
        return False  # withdrawn: nothing about the family is kept
    session.info[CHANGED_KEY] = True
    await session.execute(sqlite_insert(t.timeline).on_conflict_do_nothing(), [{
        "event_id": envelope.id, "family_id": family_id, "event_type": envelope.type, "at": envelope.time,
        "data": {k: v for k, v in data.items() if k not in {"family_id", "site_id", "shared_with"}}}])
    return True


async def on_family_event(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """Any other family event: it goes on the family's timeline."""
    await _touch_family(session, data, envelope)


async def _put_members(session: AsyncSession, family_id: str, members: list[Mapping[str, Any]]) -> None:
    if not members:
        return
    rows = [{"person_id": str(m["person_id"]), "family_id": family_id, "role": m.get("role", "other"),
             "birth_year": m.get("birth_year")} for m in members]
    upsert = sqlite_insert(t.members)
    await session.execute(upsert.on_conflict_do_update(index_elements=["person_id"], set_={
        "family_id": upsert.excluded.family_id, "role": upsert.excluded.role,
        "birth_year": upsert.excluded.birth_year}), rows)


async def on_family_enrolled(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """The family joined: its members' ids, roles and birth years (what the slice carries)."""
    if await _touch_family(session, data, envelope, state="enrolled"):
        await _put_members(session, str(data["family_id"]), data.get("members", []))


async def on_member_added(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    if await _touch_family(session, data, envelope) and data.get("member"):
        await _put_members(session, str(data["family_id"]), [data["member"]])


async def on_family_exited(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    if await _touch_family(session, data, envelope, state="exited"):
        await session.execute(update(t.families).where(t.families.c.family_id == str(data["family_id"]))
                              .values(exit_reason=data.get("reason")))


def on_consent_given(department: Department) -> Handler:
    """A consent naming the department lifts an earlier withdrawal: the family may be shown again."""

    async def handle(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
        if department.value in data.get("departments", []):
            await session.execute(delete(t.revoked).where(t.revoked.c.family_id == str(data["family_id"])))
        await _touch_family(session, data, envelope)

    return handle


def on_consent_revoked(department: Department) -> Handler:
    """The department must stop using the family's data at once: forget all of it, and remember
    only that it was withdrawn, so that later events (or a replay) do not bring it back."""

    async def handle(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
        if department.value not in data.get("departments", []):
            await _touch_family(session, data, envelope)
            return
        await forget_family(session, str(data["family_id"]), at=envelope)

    return handle


async def forget_family(session: AsyncSession, family_id: str, *, at: Envelope) -> None:
    """Delete everything held about one family and keep a tombstone (no data, only the id)."""
    for table in (t.members, t.timeline, t.referrals, t.families):
        await session.execute(delete(table).where(table.c.family_id == family_id))
    await session.execute(insert_ignoring_conflicts(session, t.revoked),
                          [{"family_id": family_id, "revoked_at": at.time}])
    session.info[CHANGED_KEY] = True


# --- referrals ----------------------------------------------------------------------------

async def on_referral_event(session: AsyncSession, data: dict[str, Any], envelope: Envelope) -> None:
    """Each transition carries the referral's whole state: upsert it (per family, in order)."""
    if not await _touch_family(session, data, envelope):
        return
    sent = envelope.type == rf.ReferralSent.event_type
    row: dict[str, Any] = {
        "referral_id": str(data["referral_id"]), "family_id": str(data["family_id"]),
        "site_id": data["site_id"],
        "person_id": data.get("person_id"), "offer_code": data["offer_code"], "priority": data["priority"],
        "state": data["state"], "due_at": _time(data.get("due_at")), "reason_code": data.get("reason_code"),
        "outcome_code": data.get("outcome_code"), "updated_at": envelope.time,
        "sent_at": (_time(data.get("at")) or envelope.time) if sent else None,
        "overdue_announced": envelope.type == rf.ReferralOverdue.event_type}
    upsert = sqlite_insert(t.referrals).values(row)
    keep = {"referral_id", "family_id"}
    if row["sent_at"] is None:
        keep.add("sent_at")
    if not row["overdue_announced"]:
        keep.add("overdue_announced")  # announced once, and it stays so
    await session.execute(upsert.on_conflict_do_update(index_elements=["referral_id"], set_={
        name: getattr(upsert.excluded, name) for name in row if name not in keep}))


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
