"""stories: wrapped_key, the story's own data key for its files, wrapped by a master key;
sites: local_terms, local names to redact in its stories

Revision ID: 0008_story_keys
Revises: 0007_privacy
Create Date: 2026-12-02 13:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_story_keys'
down_revision = '0007_privacy'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wrapped_key', sa.String(length=200), nullable=True))
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('local_terms', sa.Text(), nullable=False,
                                      server_default=''))


def downgrade():
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('local_terms')
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_column('wrapped_key')
