"""external funding: grants per site with amount, period and what they pay for

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 15:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'grants',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('funder', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('amount_ore', sa.BigInteger(), nullable=False),
        sa.Column('pays_for', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('site_id', 'code', name='uq_grants_site_code'),
    )
    op.create_index('ix_grants_site_period', 'grants', ['site_id', 'period_start'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_grants_site_period', table_name='grants')
    op.drop_table('grants')
