"""theme edits: each facilitator's edit of a run's themes, with what it changed, for undo

Revision ID: 0019_theme_edits
Revises: 0018_published_themes
Create Date: 2026-12-05 10:00:00

Every rename, hide or show, merge, split, passage move and pin of a theme run is recorded with
the themes and passage places it touched as they were, so the latest can be undone exactly
(storyhub/themes/history.py).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019_theme_edits'
down_revision = '0018_published_themes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('theme_edits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('theme_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('before', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_theme_edits_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['theme_runs.id'], name=op.f('fk_theme_edits_run_id_theme_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['users.id'], name=op.f('fk_theme_edits_undone_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_theme_edits'))
    )
    with op.batch_alter_table('theme_edits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_theme_edits_run_id'), ['run_id'], unique=False)


def downgrade():
    with op.batch_alter_table('theme_edits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_theme_edits_run_id'))

    op.drop_table('theme_edits')
