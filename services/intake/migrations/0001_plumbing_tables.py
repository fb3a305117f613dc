"""plumbing tables: outbox, inbox, idempotency keys, audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-22 15:55:29.966015
"""
from collections.abc import Sequence

from shared.alembic import plumbing

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.upgrade_v1()


def downgrade() -> None:
    plumbing.downgrade_v1()
