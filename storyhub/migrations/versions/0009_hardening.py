"""accounts and storytellers: sign-in limits, storyteller codes per site

Revision ID: 0009_hardening
Revises: 0008_story_keys
Create Date: 2026-12-02 18:50:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0009_hardening'
down_revision = '0008_story_keys'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
