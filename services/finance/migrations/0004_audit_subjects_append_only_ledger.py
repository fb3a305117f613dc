"""audit entries per request naming persons; append-only audit log and ledger

The audit log now keeps one entry per request with every subject it named (persons included)
in a JSON list; PostgreSQL and SQLite triggers refuse UPDATE and DELETE on it and on the ledger
(corrections are new entries: a reversal and a correction).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 14:20:00.000000
"""
from collections.abc import Sequence

from shared.alembic import plumbing

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.upgrade_v2_audit()
    plumbing.append_only('ledger')


def downgrade() -> None:
    plumbing.drop_append_only('ledger')
    plumbing.downgrade_v2_audit()
