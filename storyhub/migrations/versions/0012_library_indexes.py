"""library speed: covering indexes for its per-request questions

Revision ID: 0012_library_indexes
Revises: 0011_library
Create Date: 2026-12-03 13:20:00

At 10,000 stories and 500,000 passages, "how many approved entries, last changed when" read
every library row (summary and embedding included), and the theme filter read every passage
of the theme. These indexes answer both without touching the rows.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012_library_indexes'
down_revision = '0011_library'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_library_entries_state_changed', 'library_entries',
                    ['state', 'changed_at', 'story_id'])
    op.create_index('ix_theme_passages_theme_passage', 'theme_passages',
                    ['theme_id', 'passage_id'])
    op.create_index('ix_passages_id_story', 'passages', ['id', 'story_id'])


def downgrade():
    op.drop_index('ix_passages_id_story', table_name='passages')
    op.drop_index('ix_theme_passages_theme_passage', table_name='theme_passages')
    op.drop_index('ix_library_entries_state_changed', table_name='library_entries')
