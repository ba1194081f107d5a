"""transcript words: checked, set when a person confirmed a word the recogniser was unsure of

Revision ID: 0015_word_checked
Revises: 0014_library_matches
Create Date: 2026-12-04 09:00:00

An unsure word (probability under `storyhub.transcripts.text.UNSURE_BELOW`) must be looked at
before a quote holding it is printed: a reporter confirms it ("It's right") or corrects it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_word_checked'
down_revision = '0014_library_matches'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('transcript_words', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('transcript_words', schema=None) as batch_op:
        batch_op.drop_column('checked')
