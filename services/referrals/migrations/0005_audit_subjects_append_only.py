"""audit entries per request naming persons; append-only audit log

The audit log now keeps one entry per request with every subject it named (persons included)
in a JSON list; PostgreSQL and SQLite triggers refuse UPDATE and DELETE on it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 14:20:00.000000
"""
from collections.abc import Sequence

from shared.alembic import plumbing

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.upgrade_v2_audit()


def downgrade() -> None:
    plumbing.downgrade_v2_audit()
