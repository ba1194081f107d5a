"""accounts and storytellers: sign-in limits, storyteller codes per site

sign_in_counters: recent password checks per account, address or browser (hashed keys);
storytellers: site_id, the site whose reporters may add stories under the code (filled in
from the storyteller's first story).

Revision ID: 0009_hardening
Revises: 0008_story_keys
Create Date: 2026-12-02 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_hardening'
down_revision = '0008_story_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sign_in_counters',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('not_before', sa.Double(), nullable=False),
        sa.Column('expires_at', sa.Double(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_sign_in_counters')),
    )
    with op.batch_alter_table('sign_in_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_counters_expires_at'), ['expires_at'],
                              unique=False)
    with op.batch_alter_table('storytellers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_storytellers_site_id'), ['site_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_storytellers_site_id_sites'), 'sites',
                                    ['site_id'], ['id'], ondelete='SET NULL')
    op.execute(
        "UPDATE storytellers SET site_id = (SELECT stories.site_id FROM stories "
        "WHERE stories.storyteller_id = storytellers.id ORDER BY stories.id LIMIT 1)")


def downgrade():
    with op.batch_alter_table('storytellers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_storytellers_site_id_sites'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_storytellers_site_id'))
        batch_op.drop_column('site_id')
    with op.batch_alter_table('sign_in_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_counters_expires_at'))
    op.drop_table('sign_in_counters')
