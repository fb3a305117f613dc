"""The fold's family writes, buffered per transaction and written with one statement per kind.

A rebuild folds tens of thousands of events, and every statement is a round trip to SQLite's
worker thread (aiosqlite), which on a busy machine costs far more than SQLite's own work. So the
family handlers only note what they fold here, and just before the inbox's transaction commits
(``before_commit``) the notes are written kind by kind with ``executemany``: families first,
then timeline entries, members and referrals, each only while its family is still kept. A
withdrawal is a barrier: what came before it is written first, then the family is forgotten, so
the order of one family's events is kept exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, bindparam, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from shared.db import UTCDateTime

BATCH_KEY = "dashboard_batch"
KEPT = "EXISTS (SELECT 1 FROM families f WHERE f.family_id = :family_id)"

FAMILY = text("""
INSERT INTO families (family_id, site_id, state, exit_reason, events, last_event_at)
SELECT :family_id, :site_id, COALESCE(:state, 'consented'), :exit_reason, 1, :at
WHERE NOT EXISTS (SELECT 1 FROM revoked_families r WHERE r.family_id = :family_id)
ON CONFLICT (family_id) DO UPDATE SET
  site_id = excluded.site_id, events = families.events + 1,
  last_event_at = MAX(families.last_event_at, excluded.last_event_at),
  state = COALESCE(:state, families.state), exit_reason = COALESCE(:exit_reason, families.exit_reason)
""").bindparams(bindparam("at", type_=UTCDateTime()))
TIMELINE = text(f"""
INSERT INTO timeline (event_id, family_id, event_type, at, data)
SELECT :event_id, :family_id, :event_type, :at, :data WHERE {KEPT}
ON CONFLICT (event_id) DO NOTHING
""").bindparams(bindparam("at", type_=UTCDateTime()), bindparam("data", type_=JSON()))
MEMBER = text(f"""
INSERT INTO members (person_id, family_id, role, birth_year)
SELECT :person_id, :family_id, :role, :birth_year WHERE {KEPT}
ON CONFLICT (person_id) DO UPDATE SET
  family_id = excluded.family_id, role = excluded.role, birth_year = excluded.birth_year
""")
REFERRAL = text(f"""
INSERT INTO referrals (referral_id, family_id, site_id, person_id, offer_code, priority, state, sent_at,
                       due_at, overdue_announced, reason_code, outcome_code, updated_at)
SELECT :referral_id, :family_id, :site_id, :person_id, :offer_code, :priority, :state, :sent_at,
       :due_at, :overdue_announced, :reason_code, :outcome_code, :updated_at WHERE {KEPT}
ON CONFLICT (referral_id) DO UPDATE SET
  site_id = excluded.site_id, person_id = excluded.person_id, offer_code = excluded.offer_code,
  priority = excluded.priority, state = excluded.state, due_at = excluded.due_at,
  reason_code = excluded.reason_code, outcome_code = excluded.outcome_code, updated_at = excluded.updated_at,
  sent_at = COALESCE(excluded.sent_at, referrals.sent_at),
  overdue_announced = MAX(referrals.overdue_announced, excluded.overdue_announced)
""").bindparams(*(bindparam(name, type_=UTCDateTime()) for name in ("sent_at", "due_at", "updated_at")),
                bindparam("overdue_announced", type_=Boolean()))
LIFT = text("DELETE FROM revoked_families WHERE family_id = :family_id")
#: Written in this order, so the later kinds find their family (a lifted withdrawal first).
KINDS: tuple[TextClause, ...] = (LIFT, FAMILY, TIMELINE, MEMBER, REFERRAL)


@dataclass
class FoldBatch:
    """What one transaction folds about families, in segments split at withdrawals."""

    rows: dict[TextClause, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    #: (rows written before the barrier, the barrier)
    segments: list[tuple[dict[TextClause, list[dict[str, Any]]], Callable[[Connection], None]]] = field(
        default_factory=list)

    #: Families with rows in the current segment.
    families: set[str] = field(default_factory=set)

    def add(self, kind: TextClause, row: dict[str, Any]) -> None:
        self.rows[kind].append(row)
        self.families.add(row["family_id"])

    def lift(self, family_id: str) -> None:
        """A new consent: the family may be kept again from here on. Lifts are written first in a
        segment, which keeps the order unless the family already has rows in it: then the lift
        ends the segment (rare; a consent normally comes before the family's other events)."""
        if family_id in self.families:

            def lift(conn: Connection) -> None:
                conn.execute(LIFT, [{"family_id": family_id}])

            self.barrier(lift)
        else:
            self.rows[LIFT].append({"family_id": family_id})

    def barrier(self, action: Callable[[Connection], None]) -> None:
        """Run ``action`` after everything noted so far and before anything noted later."""
        self.segments.append((self.rows, action))
        self.rows = {k: [] for k in KINDS}
        self.families = set()

    def write(self, conn: Connection) -> None:
        for rows, action in self.segments:
            _write(conn, rows)
            action(conn)
        _write(conn, self.rows)


def _write(conn: Connection, rows: dict[TextClause, list[dict[str, Any]]]) -> None:
    for kind in KINDS:
        if rows[kind]:
            conn.execute(kind, rows[kind])


def batch_of(session: Any) -> FoldBatch:
    """The transaction's batch (an ``AsyncSession`` or its ``Session``)."""
    info = session.info
    if BATCH_KEY not in info:
        info[BATCH_KEY] = FoldBatch()
    batch: FoldBatch = info[BATCH_KEY]
    return batch


def family_row(data: dict[str, Any], at: datetime, *, state: str | None = None,
               exit_reason: str | None = None) -> dict[str, Any]:
    return {"family_id": str(data["family_id"]), "site_id": data["site_id"], "state": state,
            "exit_reason": exit_reason, "at": at}


@event.listens_for(Session, "before_commit")
def _write_batch(session: Session) -> None:
    batch = session.info.pop(BATCH_KEY, None)
    if batch is not None:
        batch.write(session.connection())


@event.listens_for(Session, "after_soft_rollback")
def _drop_batch(session: Session, _previous: Any) -> None:
    session.info.pop(BATCH_KEY, None)
