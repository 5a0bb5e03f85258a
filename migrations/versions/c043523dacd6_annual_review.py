"""annual review: reviews, candidates, reviewers, scores

A score is 0–100, one per reviewer and project; its composite foreign keys refuse a score by someone not invited
or of a project that is not a candidate.

Revision ID: c043523dacd6
Revises: a1e5f0c3b7d2
Create Date: 2026-11-26 14:52:31.081903

"""
from alembic import op
import sqlalchemy as sa

import credits.timeutil


revision = 'c043523dacd6'
down_revision = 'a1e5f0c3b7d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_reviews_status')),
    sa.CheckConstraint('year >= 2000 AND year <= 2100', name=op.f('ck_reviews_year')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_reviews_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews'))
    )
    op.create_index(op.f('ix_reviews_year'), 'reviews', ['year'])

    op.create_table('review_candidates',
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=False),
    sa.Column('added_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_review_candidates_added_by_id_users')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_review_candidates_project_id_projects')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_review_candidates_review_id_reviews')),
    sa.PrimaryKeyConstraint('review_id', 'project_id', name=op.f('pk_review_candidates'))
    )
    op.create_index(op.f('ix_review_candidates_project_id'), 'review_candidates', ['project_id'])

    op.create_table('review_reviewers',
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=False),
    sa.Column('invited_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_review_reviewers_invited_by_id_users')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_review_reviewers_review_id_reviews')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_review_reviewers_user_id_users')),
    sa.PrimaryKeyConstraint('review_id', 'user_id', name=op.f('pk_review_reviewers'))
    )
    op.create_index(op.f('ix_review_reviewers_user_id'), 'review_reviewers', ['user_id'])

    op.create_table('review_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score >= 0 AND score <= 100', name=op.f('ck_review_scores_score')),
    sa.ForeignKeyConstraint(['review_id', 'project_id'], ['review_candidates.review_id', 'review_candidates.project_id'], name=op.f('fk_review_scores_candidate')),
    sa.ForeignKeyConstraint(['review_id', 'reviewer_id'], ['review_reviewers.review_id', 'review_reviewers.user_id'], name=op.f('fk_review_scores_reviewer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_scores')),
    sa.UniqueConstraint('review_id', 'project_id', 'reviewer_id', name=op.f('uq_review_scores_review_id_project_id_reviewer_id'))
    )


def downgrade():
    op.drop_table('review_scores')
    op.drop_index(op.f('ix_review_reviewers_user_id'), table_name='review_reviewers')
    op.drop_table('review_reviewers')
    op.drop_index(op.f('ix_review_candidates_project_id'), table_name='review_candidates')
    op.drop_table('review_candidates')
    op.drop_index(op.f('ix_reviews_year'), table_name='reviews')
    op.drop_table('reviews')
