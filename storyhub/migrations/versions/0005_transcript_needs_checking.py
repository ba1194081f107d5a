"""transcripts: needs_checking, set when part of the speech may be missing from the words

Revision ID: ca2210754727
Revises: 599dce509102
Create Date: 2026-12-02 01:24:48.166823

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ca2210754727'
down_revision = '599dce509102'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_checking', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_column('needs_checking')
