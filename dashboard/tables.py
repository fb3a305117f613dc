"""The dashboard's own SQLite state: a read model folded from the department topic.

It is rebuildable from the topic at any time (``--rebuild``), so it has no migrations: a file
written by another ``SCHEMA_VERSION`` is thrown away and folded again from the beginning.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

from shared.db import UTCDateTime
from shared.tables import inbox

#: Bump when a table changes: an older file is then rebuilt from the topic.
SCHEMA_VERSION = "1"

metadata = MetaData()
# The inbox's dedupe table lives beside the read model, so a fold and its claim commit together.
inbox.to_metadata(metadata)

meta = Table("dashboard_meta", metadata,
             Column("key", String(50), primary_key=True),
             Column("value", String(200), nullable=False))

families = Table(
    "families", metadata,
    Column("family_id", String(36), primary_key=True),
    Column("site_id", String(80), nullable=False),
    #: ``consented`` (known from a consent only), ``enrolled`` or ``exited``.
    Column("state", String(20), nullable=False),
    Column("exit_reason", String(40), nullable=True),
    Column("events", Integer, nullable=False),
    Column("last_event_at", UTCDateTime(), nullable=False),
)
Index("ix_families_recent", families.c.last_event_at)
Index("ix_families_site", families.c.site_id, families.c.last_event_at)

members = Table(
    "members", metadata,
    Column("person_id", String(36), primary_key=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("role", String(30), nullable=False),
    Column("birth_year", Integer, nullable=True),
)

timeline = Table(
    "timeline", metadata,
    Column("event_id", String(100), primary_key=True),
    Column("family_id", String(36), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
)
Index("ix_timeline_family", timeline.c.family_id, timeline.c.at)

referrals = Table(
    "referrals", metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("site_id", String(80), nullable=False),
    Column("person_id", String(36), nullable=True),
    Column("offer_code", String(80), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("due_at", UTCDateTime(), nullable=True),
    #: The referrals service announced it overdue (it does so once, when the due date passes).
    Column("overdue_announced", Boolean, nullable=False, default=False),
    Column("reason_code", String(80), nullable=True),
    Column("outcome_code", String(80), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("ix_referrals_site_state", referrals.c.site_id, referrals.c.state)

stationings = Table(
    "stationings", metadata,
    Column("stationing_id", String(36), primary_key=True),
    Column("staff_id", String(36), nullable=False),
    Column("site_id", String(80), nullable=False, index=True),
    Column("discipline", String(80), nullable=True),
    Column("role", String(20), nullable=True),
    #: Decimal as text, exactly as the event carries it.
    Column("fte", String(20), nullable=True),
    Column("starts_on", String(10), nullable=True),
    Column("ends_on", String(10), nullable=True),
)

charges = Table(
    "charges", metadata,
    #: The allocation of a site's year (one, recomputed), else the ledger entry id.
    Column("charge_key", String(120), primary_key=True),
    Column("kind", String(20), nullable=False),  # allocation, settlement, correction
    Column("site_id", String(80), nullable=False, index=True),
    Column("year", Integer, nullable=False),
    Column("amount_ore", Integer, nullable=False),
    Column("fte_days", String(20), nullable=True),
    Column("period_start", String(10), nullable=True),
    Column("period_end", String(10), nullable=True),
    Column("original_entry_id", String(36), nullable=True),
    Column("at", UTCDateTime(), nullable=False),
)

#: Families whose consent for the department was withdrawn: nothing about them is kept, and
#: later events about them are not folded until a new consent names the department.
revoked = Table(
    "revoked_families", metadata,
    Column("family_id", String(36), primary_key=True),
    Column("revoked_at", UTCDateTime(), nullable=False),
)
