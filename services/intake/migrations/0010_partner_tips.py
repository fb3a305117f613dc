"""partners' tips: an address and a reason code for a site's team

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 15:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    op.create_table(
        'partner_tips',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('partner', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column('household_id', sa.Uuid(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('followed_up_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['household_id'], ['households.id']),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_partner_tips_site_state', 'partner_tips', ['site_id', 'state', 'id'], unique=False)
    op.create_index('ix_partner_tips_partner', 'partner_tips', ['partner', 'id'], unique=False)
    op.create_index(op.f('ix_partner_tips_household_id'), 'partner_tips', ['household_id'], unique=False)

def downgrade() -> None:
    op.drop_index(op.f('ix_partner_tips_household_id'), table_name='partner_tips')
    op.drop_index('ix_partner_tips_partner', table_name='partner_tips')
    op.drop_index('ix_partner_tips_site_state', table_name='partner_tips')
    op.drop_table('partner_tips')
