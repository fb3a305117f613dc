"""consents: departments withdrawn one by one; history entries name departments and expiry;
staff known from casework (outreach names one of them or the caller)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('known_staff',
    sa.Column('staff_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.PrimaryKeyConstraint('staff_id')
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('consent_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('departments', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('expires_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('consent_history', schema=None) as batch_op:
        batch_op.drop_column('expires_on')
        batch_op.drop_column('departments')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_column('withdrawn')
    op.drop_table('known_staff')
