"""plumbing v2: outbox rows parked, discarded, requeued; the relay's state

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:20:00.000000
"""
from collections.abc import Sequence

from shared.alembic import plumbing

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.upgrade_v2_outbox()


def downgrade() -> None:
    plumbing.downgrade_v2_outbox()
