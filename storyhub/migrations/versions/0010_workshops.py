"""workshops, packs and agreed actions

Revision ID: 0010_workshops
Revises: 0009_hardening
Create Date: 2026-12-02 18:50:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0010_workshops'
down_revision = '0009_hardening'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
