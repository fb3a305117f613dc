"""referrals sent_at: a department sees a referral only once it was sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 14:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
    # Referrals sent before the column existed: the history says when (the first move to sent).
    op.execute("UPDATE referrals SET sent_at = (SELECT min(h.at) FROM referral_history h "
               "WHERE h.referral_id = referrals.id AND h.to_state = 'sent')")


def downgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('sent_at')
