"""target areas

A site's target area as data: its streets, whole or by house-number range. No area is created
here: a site without one screens its households' area criterion as unknown (not eligible) until
an admin defines or imports it, and households screened before keep their stored result.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 14:03:15.552117
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('target_areas',
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ),
    sa.PrimaryKeyConstraint('site_id')
    )
    op.create_table('target_area_streets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('street', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('street_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('from_number', sa.Integer(), nullable=True),
    sa.Column('to_number', sa.Integer(), nullable=True),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['target_areas.site_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('target_area_streets', schema=None) as batch_op:
        batch_op.create_index('ix_target_area_streets_site', ['site_id', 'street_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('target_area_streets', schema=None) as batch_op:
        batch_op.drop_index('ix_target_area_streets_site')

    op.drop_table('target_area_streets')
    op.drop_table('target_areas')
