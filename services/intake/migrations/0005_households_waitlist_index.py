"""households waitlist index

A partial index over the waitlisted households in order per site: a waitlisted family's
position counts only those ahead of it, and a freed place finds the first in line, without
reading every waitlisted household of the site.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 11:47:59.949738
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITLISTED = "status = 'waitlisted'"


def upgrade() -> None:
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.create_index('ix_households_waitlist', ['site_id', 'waitlisted_at', 'id'], unique=False,
                              postgresql_where=sa.text(WAITLISTED), sqlite_where=sa.text(WAITLISTED))


def downgrade() -> None:
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_index('ix_households_waitlist')
