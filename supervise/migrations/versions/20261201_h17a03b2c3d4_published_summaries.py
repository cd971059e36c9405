"""Issue 17 (public page): published case summaries (公开摘要)

Staff write an anonymised summary of a closed case; a second person approves it for /public; it
can be withdrawn at any time (supervise/accountability).

Revision ID: h17a03b2c3d4
Revises: h17a02b2c3d4
Create Date: 2026-12-01 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "h17a03b2c3d4"
down_revision = "h17a02b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "published_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_by_id", sa.Integer(), nullable=False),
        sa.Column("written_at", sa.DateTime(), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("withdrawn_by_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_published_summaries_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["written_by_id"], ["users.id"], name=op.f("fk_published_summaries_written_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_published_summaries_approved_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by_id"], ["users.id"], name=op.f("fk_published_summaries_withdrawn_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_summaries")),
    )
    op.create_index("ix_published_summaries_case_id", "published_summaries", ["case_id"])
    op.create_index("ix_published_summaries_approved_at", "published_summaries", ["approved_at"])


def downgrade() -> None:
    op.drop_index("ix_published_summaries_approved_at", table_name="published_summaries")
    op.drop_index("ix_published_summaries_case_id", table_name="published_summaries")
    op.drop_table("published_summaries")
