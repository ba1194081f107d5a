"""workshop quotes: keep_unsure, set when a facilitator prints a quote with unchecked words

Revision ID: 0017_quote_keep_unsure
Revises: 0016_theme_model_keys
Create Date: 2026-12-04 18:00:00

A quote holding words the recogniser was unsure of, that nobody has checked, is held back from
a pack unless the facilitator explicitly keeps it as it is.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_quote_keep_unsure'
down_revision = '0016_theme_model_keys'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workshop_quotes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keep_unsure', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('workshop_quotes', schema=None) as batch_op:
        batch_op.drop_column('keep_unsure')
