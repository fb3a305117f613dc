"""Plumbing tables every service's database has: outbox, inbox, idempotency keys, audit log.

They live in one MetaData of their own; each service's migrations include it beside the
service's own tables, so the definitions exist once.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import UTCDateTime

plumbing_metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants a BIGINT identity.
_BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL (containment queries and a GIN index), JSON text on SQLite.
_Subjects = JSON().with_variant(JSONB(), "postgresql")

outbox = Table(
    "outbox",
    plumbing_metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("partition_key", String(200), nullable=False),
    Column("subject", String(200), nullable=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("correlation_id", String(100), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("published_at", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Set when the row was queued again after its first publication (a broker that lost what it
    # had acknowledged, or ``oto republish``): the backlog's age counts from then, not from when
    # the event happened.
    Column("requeued_at", UTCDateTime(), nullable=True),
    # A row the relay cannot publish for a reason of its own (not an outage): set aside with the
    # reason; later rows of the same key wait behind it until it is retried or discarded.
    Column("parked_at", UTCDateTime(), nullable=True),
    Column("parked_reason", String(500), nullable=True),
    Column("discarded_at", UTCDateTime(), nullable=True),
)
# The relay's only query: unpublished rows in id order.
Index("ix_outbox_unpublished", outbox.c.id, postgresql_where=outbox.c.published_at.is_(None),
      sqlite_where=outbox.c.published_at.is_(None))
# Parked rows, and so the keys held behind them, are found without a scan.
Index("ix_outbox_parked", outbox.c.partition_key, postgresql_where=outbox.c.parked_at.isnot(None),
      sqlite_where=outbox.c.parked_at.isnot(None))

# The department view reads one family's events.
Index("ix_outbox_key", outbox.c.partition_key, outbox.c.id)

inbox = Table(
    "inbox",
    plumbing_metadata,
    Column("consumer", String(100), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("event_id", String(100), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("processed_at", UTCDateTime(), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    plumbing_metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("principal", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),
)

#: What the relay must remember across restarts, by name: the broker incarnation marker it wrote
#: last (see ``shared.outbox``).
relay_state = Table(
    "relay_state",
    plumbing_metadata,
    Column("name", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

audit_log = Table(
    "audit_log",
    plumbing_metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("client", String(200), nullable=True),
    Column("role", String(50), nullable=False),
    Column("department", String(100), nullable=True),
    Column("site_id", String(100), nullable=True),
    #: ``[{"kind": "person" | "family" | "referral", "id": …}]``: every subject the answer named.
    Column("subjects", _Subjects, nullable=False),
    Column("endpoint", String(300), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("correlation_id", String(100), nullable=True),
)
# "Who has seen data about this person": JSONB containment answered from a GIN index.
Index("ix_audit_subjects", audit_log.c.subjects, postgresql_using="gin",
      postgresql_ops={"subjects": "jsonb_path_ops"})
