"""library speed: each theme placement knows its story

Revision ID: 0013_theme_passage_story
Revises: 0012_library_indexes
Create Date: 2026-12-03 19:20:00

The library asks "which stories have a passage in this theme" (its theme filter) and "which
themes are these twenty stories in" (its cards) on nearly every page. Both went through the
passages table: at 500,000 passages the theme filter walked 25,000 of them a request. The
story id on each placement (a passage never changes story) answers both from one index.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013_theme_passage_story'
down_revision = '0012_library_indexes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('theme_passages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('story_id', sa.Integer(), nullable=True))
    op.execute("UPDATE theme_passages SET story_id = (SELECT passages.story_id FROM passages "
               "WHERE passages.id = theme_passages.passage_id)")
    with op.batch_alter_table('theme_passages', schema=None) as batch_op:
        batch_op.alter_column('story_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index('ix_theme_passages_theme_passage')
        batch_op.create_index('ix_theme_passages_theme_story', ['theme_id', 'story_id'])
        batch_op.create_index('ix_theme_passages_run_story', ['run_id', 'story_id', 'theme_id'])


def downgrade():
    with op.batch_alter_table('theme_passages', schema=None) as batch_op:
        batch_op.drop_index('ix_theme_passages_run_story')
        batch_op.drop_index('ix_theme_passages_theme_story')
        batch_op.create_index('ix_theme_passages_theme_passage', ['theme_id', 'passage_id'])
        batch_op.drop_column('story_id')
