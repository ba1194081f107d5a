"""theme runs: model_wrapped_key, the key a run's saved model is sealed with

Revision ID: 0016_theme_model_keys
Revises: 0015_word_checked
Create Date: 2026-12-04 12:00:00

A saved theme model holds the words of every story in its run (vocabulary, keywords), so it is
sealed like a story's audio, under a key of the run's own, wrapped by a master key. Models
saved before stay as they are (plain) until the run is found again or a story leaves it.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016_theme_model_keys'
down_revision = '0015_word_checked'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_wrapped_key', sa.String(length=200),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('theme_runs', schema=None) as batch_op:
        batch_op.drop_column('model_wrapped_key')
