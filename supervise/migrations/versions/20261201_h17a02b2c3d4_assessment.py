"""Issue 17 (assessment): orgs.population (人口), for the assessment's complaints per 1,000 residents

Nothing else is stored: scores are computed from the statistics summary when asked, and the
weights and minimum sample are rows of `settings`.

Revision ID: h17a02b2c3d4
Revises: h17a01b2c3d4
Create Date: 2026-12-01 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "h17a02b2c3d4"
down_revision = "h17a01b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("population", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.drop_column("population")
