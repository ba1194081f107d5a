"""privacy: redaction marks, muted playback copy, job parameters, stale theme runs, audit index

Revision ID: 0007_privacy
Revises: 0006_one_job_runner
Create Date: 2026-12-02 09:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007_privacy'
down_revision = '0006_one_job_runner'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=False,
                                      server_default='{}'))
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redacted_playback_key', sa.String(length=255),
                                      nullable=True))
        batch_op.add_column(sa.Column('redaction_pending', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redaction_rejected', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('changed_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('transcript_words', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redaction', sa.String(length=24), nullable=True))
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stale_reason', sa.String(length=255), nullable=True))
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_target', ['target_type', 'target_id'])
        batch_op.create_index('ix_audit_events_action', ['action'])


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_action')
        batch_op.drop_index('ix_audit_events_target')
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.drop_column('stale_reason')
    with op.batch_alter_table('transcript_words', schema=None) as batch_op:
        batch_op.drop_column('redaction')
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_column('changed_at')
        batch_op.drop_column('redaction_rejected')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_column('redaction_pending')
        batch_op.drop_column('redacted_playback_key')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('params')
