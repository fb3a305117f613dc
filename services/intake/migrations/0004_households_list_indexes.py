"""households list indexes for keyset pagination

The household list filters by site (and optionally status) and orders by id after the cursor;
with (site_id, id) and (site_id, status, id) every page reads its rows straight from an index
instead of filtering the primary key or sorting all of a site's households. The new
(site_id, status, id) index replaces (site_id, status), whose uses it serves as its prefix.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:36:53.498825
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_index('ix_households_site_status')
        batch_op.create_index('ix_households_site_id', ['site_id', 'id'], unique=False)
        batch_op.create_index('ix_households_site_status_id', ['site_id', 'status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_index('ix_households_site_status_id')
        batch_op.drop_index('ix_households_site_id')
        batch_op.create_index('ix_households_site_status', ['site_id', 'status'], unique=False)
