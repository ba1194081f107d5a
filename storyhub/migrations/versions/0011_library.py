"""staff library: curation and search

Revision ID: 0011_library
Revises: 0010_workshops
Create Date: 2026-12-02 18:50:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0011_library'
down_revision = '0010_workshops'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
