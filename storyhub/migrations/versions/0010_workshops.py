"""workshops, their themes and quotes, pack versions and the actions agreed

Revision ID: 0010_workshops
Revises: 0009_hardening
Create Date: 2026-12-02 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_workshops'
down_revision = '0009_hardening'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('workshops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=True),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('audience', sa.Enum('mixed', 'staff', 'probation', name='workshop_audience'), nullable=False),
    sa.Column('facilitators', sa.String(length=300), nullable=False),
    sa.Column('safeguarding_contact', sa.String(length=300), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('notice', sa.String(length=300), nullable=True),
    sa.Column('last_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_workshops_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['theme_runs.id'], name=op.f('fk_workshops_run_id_theme_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workshops'))
    )
    op.create_table('workshop_packs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workshop_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('markdown', sa.Text(), nullable=False),
    sa.Column('story_ids', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_workshop_packs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshops.id'], name=op.f('fk_workshop_packs_workshop_id_workshops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workshop_packs')),
    sa.UniqueConstraint('workshop_id', 'version', name=op.f('uq_workshop_packs_workshop_id'))
    )
    with op.batch_alter_table('workshop_packs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workshop_packs_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('workshop_themes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workshop_id', sa.Integer(), nullable=False),
    sa.Column('theme_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('questions', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['theme_id'], ['themes.id'], name=op.f('fk_workshop_themes_theme_id_themes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshops.id'], name=op.f('fk_workshop_themes_workshop_id_workshops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workshop_themes'))
    )
    with op.batch_alter_table('workshop_themes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workshop_themes_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('agreed_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workshop_id', sa.Integer(), nullable=False),
    sa.Column('workshop_theme_id', sa.Integer(), nullable=True),
    sa.Column('what', sa.Text(), nullable=False),
    sa.Column('who', sa.String(length=200), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('agreed', 'in_progress', 'done', 'dropped', name='action_status'), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_agreed_actions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshops.id'], name=op.f('fk_agreed_actions_workshop_id_workshops'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workshop_theme_id'], ['workshop_themes.id'], name=op.f('fk_agreed_actions_workshop_theme_id_workshop_themes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreed_actions'))
    )
    with op.batch_alter_table('agreed_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreed_actions_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('workshop_quotes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workshop_theme_id', sa.Integer(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('passage_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('speaker', sa.String(length=60), nullable=False),
    sa.Column('start', sa.Double(), nullable=False),
    sa.Column('end', sa.Double(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['passage_id'], ['passages.id'], name=op.f('fk_workshop_quotes_passage_id_passages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_workshop_quotes_story_id_stories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workshop_theme_id'], ['workshop_themes.id'], name=op.f('fk_workshop_quotes_workshop_theme_id_workshop_themes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workshop_quotes')),
    sa.UniqueConstraint('workshop_theme_id', 'passage_id', name=op.f('uq_workshop_quotes_workshop_theme_id'))
    )
    with op.batch_alter_table('workshop_quotes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workshop_quotes_story_id'), ['story_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workshop_quotes_workshop_theme_id'), ['workshop_theme_id'], unique=False)



def downgrade():
    with op.batch_alter_table('workshop_quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workshop_quotes_workshop_theme_id'))
        batch_op.drop_index(batch_op.f('ix_workshop_quotes_story_id'))

    op.drop_table('workshop_quotes')
    with op.batch_alter_table('agreed_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreed_actions_workshop_id'))

    op.drop_table('agreed_actions')
    with op.batch_alter_table('workshop_themes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workshop_themes_workshop_id'))

    op.drop_table('workshop_themes')
    with op.batch_alter_table('workshop_packs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workshop_packs_workshop_id'))

    op.drop_table('workshop_packs')
    op.drop_table('workshops')
    for name in ('workshop_audience', 'action_status'):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
