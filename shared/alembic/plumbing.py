"""Migration steps for the plumbing tables, shared by every service's migrations.

Each function is a frozen snapshot: a later change to ``shared.tables`` gets a new function
(``upgrade_v2``) and a new revision in every service, never an edit here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def upgrade_v1() -> None:
    """Create the plumbing tables as they were in version 1 (frozen: never edit)."""
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=50), nullable=False),
    sa.Column('department', sa.String(length=100), nullable=True),
    sa.Column('site_id', sa.String(length=100), nullable=True),
    sa.Column('subject_kind', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('endpoint', sa.String(length=300), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('correlation_id', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_subject', ['subject_id', 'at'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('principal', 'key', name='uq_idempotency_principal_key')
    )
    op.create_table('inbox',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'source', 'event_id')
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('partition_key', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('correlation_id', sa.String(length=100), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_key', ['partition_key', 'id'], unique=False)
        batch_op.create_index('ix_outbox_unpublished', ['id'], unique=False, postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))


def downgrade_v1() -> None:
    """Drop the version-1 plumbing tables."""
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unpublished', postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))
        batch_op.drop_index('ix_outbox_key')

    op.drop_table('outbox')
    op.drop_table('inbox')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_subject')

    op.drop_table('audit_log')


def upgrade_v2_audit() -> None:
    """Audit entries per request naming their subjects (a JSON list, JSONB on PostgreSQL) instead
    of one row per subject; old rows keep their one subject. Then the log becomes append-only."""
    subjects = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subjects', subjects, nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE audit_log SET subjects = "
                   "jsonb_build_array(jsonb_build_object('kind', subject_kind, 'id', subject_id))")
    else:
        op.execute("UPDATE audit_log SET subjects = "
                   "json_array(json_object('kind', subject_kind, 'id', subject_id))")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('subjects', existing_type=subjects, nullable=False)
        batch_op.drop_index('ix_audit_subject')
        batch_op.drop_column('subject_kind')
        batch_op.drop_column('subject_id')
        batch_op.create_index('ix_audit_subjects', ['subjects'], unique=False, postgresql_using='gin',
                              postgresql_ops={'subjects': 'jsonb_path_ops'})
    append_only('audit_log')


def downgrade_v2_audit() -> None:
    """Back to one subject per row (the first subject each entry named)."""
    drop_append_only('audit_log')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_kind', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('subject_id', sa.String(length=36), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE audit_log SET subject_kind = subjects->0->>'kind', subject_id = subjects->0->>'id'")
    else:
        op.execute("UPDATE audit_log SET subject_kind = json_extract(subjects, '$[0].kind'), "
                   "subject_id = json_extract(subjects, '$[0].id')")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_subjects', postgresql_using='gin',
                            postgresql_ops={'subjects': 'jsonb_path_ops'})
        batch_op.alter_column('subject_kind', existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column('subject_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column('subjects')
        batch_op.create_index('ix_audit_subject', ['subject_id', 'at'], unique=False)


def append_only(table: str) -> None:
    """Triggers that refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) on ``table``: the
    database itself keeps the rows, whatever a caller with write access tries."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""CREATE OR REPLACE FUNCTION oto_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                  USING ERRCODE = '42501'; END $$""")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION oto_refuse_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION oto_refuse_change()")
        return
    for operation in ('UPDATE', 'DELETE'):
        op.execute(f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END")


def drop_append_only(table: str) -> None:
    """Remove ``append_only``'s triggers (downgrade only)."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        return
    for operation in ('update', 'delete'):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")


def upgrade_v2_outbox() -> None:
    """Version 2: outbox rows can be parked, discarded and requeued; the relay keeps its state."""
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requeued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('parked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('parked_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('discarded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_parked', ['partition_key'], unique=False,
                              postgresql_where=sa.text('parked_at IS NOT NULL'),
                              sqlite_where=sa.text('parked_at IS NOT NULL'))
    op.create_table('relay_state',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade_v2_outbox() -> None:
    """Back to version 1."""
    op.drop_table('relay_state')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_parked', postgresql_where=sa.text('parked_at IS NOT NULL'),
                            sqlite_where=sa.text('parked_at IS NOT NULL'))
        batch_op.drop_column('discarded_at')
        batch_op.drop_column('parked_reason')
        batch_op.drop_column('parked_at')
        batch_op.drop_column('requeued_at')
