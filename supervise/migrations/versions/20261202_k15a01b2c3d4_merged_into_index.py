"""Issue 15 (10,000,000 cases): the cases merged into one, from a small partial index

Every 受理 and 答复 looks up the cases merged into the case (their reporters are told too:
workflow._sms); `merged_into_id` had no index, so each such action read the whole `cases` table
(0.4 s at 1,000,000 cases, 1.8 s at 10,000,000), and so did the foreign-key check of every
deleted case. Merged cases are few: the partial index is small and never written by a submission.

Revision ID: k15a01b2c3d4
Revises: i18a05b2c3d4
Create Date: 2026-12-02 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "k15a01b2c3d4"
down_revision = "i18a05b2c3d4"
branch_labels = None
depends_on = None

WHERE = sa.text("merged_into_id IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_cases_merged_into", "cases", ["merged_into_id"], postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade() -> None:
    op.drop_index("ix_cases_merged_into", table_name="cases")
