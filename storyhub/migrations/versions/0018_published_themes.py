"""published theme runs: what the staff library shows of themes

Revision ID: 0018_published_themes
Revises: 0017_quote_keep_unsure
Create Date: 2026-12-04 17:15:57

A facilitator publishes a finished run to the staff library (theme_runs.published_at and _by,
on one run at most); the names and stories staff see are kept as they were then
(library_themes, library_theme_stories), so later edits reach staff only when published again.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018_published_themes'
down_revision = '0017_quote_keep_unsure'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('library_themes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('theme_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['theme_runs.id'], name=op.f('fk_library_themes_run_id_theme_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['theme_id'], ['themes.id'], name=op.f('fk_library_themes_theme_id_themes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_library_themes'))
    )
    with op.batch_alter_table('library_themes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_themes_run_id'), ['run_id'], unique=False)

    op.create_table('library_theme_stories',
    sa.Column('theme_id', sa.Integer(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('passages', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_library_theme_stories_story_id_stories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['theme_id'], ['library_themes.id'], name=op.f('fk_library_theme_stories_theme_id_library_themes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('theme_id', 'story_id', name=op.f('pk_library_theme_stories'))
    )
    with op.batch_alter_table('library_theme_stories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_theme_stories_story_id'), ['story_id'], unique=False)

    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('published_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_theme_runs_published_by_id_users'), 'users', ['published_by_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_theme_runs_published_by_id_users'), type_='foreignkey')
        batch_op.drop_column('published_by_id')
        batch_op.drop_column('published_at')

    with op.batch_alter_table('library_theme_stories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_library_theme_stories_story_id'))

    op.drop_table('library_theme_stories')
    with op.batch_alter_table('library_themes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_library_themes_run_id'))

    op.drop_table('library_themes')
