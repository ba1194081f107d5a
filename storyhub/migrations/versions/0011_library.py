"""staff library: curation and search

Revision ID: 0011_library
Revises: 0010_workshops
Create Date: 2026-12-02 18:50:00

The full-text index is the engine's own, so it is made here in SQL and not by a model: an
FTS5 table on SQLite (rowid = story id), a table with a generated tsvector and a GIN index on
PostgreSQL (see storyhub/library/search.py).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_library'
down_revision = '0010_workshops'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('library_entries',
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('state', sa.Enum('draft', 'approved', 'retired', name='curation_state'), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('highlights', sa.JSON(), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=True),
    sa.Column('curated_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['curated_by_id'], ['users.id'], name=op.f('fk_library_entries_curated_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_library_entries_story_id_stories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('story_id', name=op.f('pk_library_entries')),
    sa.UniqueConstraint('code', name=op.f('uq_library_entries_code'))
    )
    with op.batch_alter_table('library_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_entries_approved_at'), ['approved_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_library_entries_changed_at'), ['changed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_library_entries_state'), ['state'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE TABLE library_search (
                story_id integer PRIMARY KEY REFERENCES stories (id) ON DELETE CASCADE,
                title text NOT NULL, summary text NOT NULL, body text NOT NULL,
                document tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', title), 'A')
                    || setweight(to_tsvector('english', summary), 'B')
                    || setweight(to_tsvector('english', body), 'D')) STORED)""")
        op.execute("CREATE INDEX ix_library_search_document ON library_search "
                   "USING gin (document)")
    else:
        op.execute("CREATE VIRTUAL TABLE library_search USING fts5("
                   "title, summary, body, tokenize = 'porter unicode61')")


def downgrade():
    op.execute("DROP TABLE IF EXISTS library_search")
    with op.batch_alter_table('library_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_library_entries_state'))
        batch_op.drop_index(batch_op.f('ix_library_entries_changed_at'))
        batch_op.drop_index(batch_op.f('ix_library_entries_approved_at'))
    op.drop_table('library_entries')
    sa.Enum(name='curation_state').drop(op.get_bind(), checkfirst=True)
