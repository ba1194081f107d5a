"""one job runner: job kinds as text, keys for one active job each, fencing; states derived

A story's and a theme run's state now follow their job and transcript rows, so the copies
stored beside them (stories.status, theme_runs.status and .error) go.

Revision ID: 0006_one_job_runner
Revises: ca2210754727
Create Date: 2026-12-02 01:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006_one_job_runner'
down_revision = 'ca2210754727'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.Enum('transcribe', 'analysis',
                                                            name='job_kind'),
                              type_=sa.String(length=40), existing_nullable=False,
                              postgresql_using='kind::text')
        batch_op.add_column(sa.Column('key', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('claims', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.execute("UPDATE jobs SET kind = 'themes' WHERE kind = 'analysis'")
    op.execute("UPDATE jobs SET claims = attempts")
    op.execute("UPDATE jobs SET key = 'transcribe:recording:' || CAST(target_id AS VARCHAR) "
               "WHERE kind = 'transcribe' AND target_id IS NOT NULL")
    op.execute("UPDATE jobs SET key = 'themes:run' WHERE kind = 'themes'")
    # Before the unique index: any older duplicates stop being active.
    op.execute("UPDATE jobs SET status = 'failed', error = 'A duplicate of another job.' "
               "WHERE status IN ('queued', 'running') AND id NOT IN (SELECT MIN(id) FROM jobs "
               "WHERE status IN ('queued', 'running') GROUP BY key)")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('claims', server_default=None)
        batch_op.create_index('uq_jobs_active_key', ['key'], unique=True,
                              postgresql_where=ACTIVE, sqlite_where=ACTIVE)
    sa.Enum(name='job_kind').drop(op.get_bind(), checkfirst=True)

    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_column('status')
    sa.Enum(name='story_status').drop(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.drop_column('status')
        batch_op.drop_column('error')
    sa.Enum(name='theme_run_status').drop(op.get_bind(), checkfirst=True)


def downgrade():
    run_status = sa.Enum('queued', 'running', 'done', 'failed', name='theme_run_status')
    run_status.create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('status', run_status, nullable=False,
                                      server_default='done'))
    op.execute("UPDATE theme_runs SET status = (SELECT CAST(jobs.status AS VARCHAR) FROM jobs "
               "WHERE jobs.id = theme_runs.job_id), error = (SELECT jobs.error FROM jobs "
               "WHERE jobs.id = theme_runs.job_id) WHERE job_id IS NOT NULL"
               if op.get_bind().dialect.name == 'sqlite' else
               "UPDATE theme_runs SET status = CAST(CAST(jobs.status AS VARCHAR) AS "
               "theme_run_status), error = jobs.error FROM jobs WHERE jobs.id = theme_runs.job_id")
    story_status = sa.Enum('uploaded', 'queued', 'transcribing', 'transcribed', 'reviewed',
                           'failed', name='story_status')
    story_status.create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', story_status, nullable=False,
                                      server_default='uploaded'))
    op.execute("UPDATE stories SET status = 'transcribed' WHERE id IN "
               "(SELECT story_id FROM transcripts)")
    op.execute("UPDATE stories SET status = 'reviewed' WHERE id IN "
               "(SELECT story_id FROM transcripts WHERE reviewed_at IS NOT NULL)")

    op.execute("UPDATE jobs SET kind = 'analysis' WHERE kind = 'themes'")
    job_kind = sa.Enum('transcribe', 'analysis', name='job_kind')
    job_kind.create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('uq_jobs_active_key', postgresql_where=ACTIVE, sqlite_where=ACTIVE)
        batch_op.drop_column('claims')
        batch_op.drop_column('key')
        batch_op.alter_column('kind', existing_type=sa.String(length=40), type_=job_kind,
                              existing_nullable=False, postgresql_using='kind::job_kind')
