"""Case desk (issue 13): drafts saved as staff type (case_drafts)

Revision ID: d13e03a2b3c4
Revises: d13e02a2b3c4
Create Date: 2026-12-01 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "d13e03a2b3c4"
down_revision = "d13e02a2b3c4"
branch_labels = None
depends_on = None


def upgrade():
    # A new table only: plain CREATE TABLE works the same on SQLite and PostgreSQL.
    op.create_table(
        "case_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_drafts_case_id_cases")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_case_drafts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_drafts")),
        sa.UniqueConstraint("case_id", "user_id", "action", name="uq_case_drafts_case_user_action"),
    )
    op.create_index(op.f("ix_case_drafts_case_id"), "case_drafts", ["case_id"], unique=False)
    op.create_index(op.f("ix_case_drafts_user_id"), "case_drafts", ["user_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_case_drafts_user_id"), table_name="case_drafts")
    op.drop_index(op.f("ix_case_drafts_case_id"), table_name="case_drafts")
    op.drop_table("case_drafts")
