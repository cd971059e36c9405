"""Issue 17 (statistics): the monthly summary table

`stats_monthly`: one row per (month received, subject unit, owning body, category, channel, 定性)
with additive counts, rebuilt by the workers for each month whose cases changed
(supervise/stats/services.py). Empty until the first `supervise stats refresh` or job run.

Revision ID: h17a01b2c3d4
Revises: g16a04b2c3d4
Create Date: 2026-12-01 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "h17a01b2c3d4"
down_revision = "g16a04b2c3d4"
branch_labels = None
depends_on = None

COUNTS = (
    "received",
    "answered",
    "answered_on_time",
    "answer_working_days",
    "rated",
    "satisfied",
    "basically_satisfied",
    "unsatisfied",
    "reopened",
    "escalated",
)


def upgrade() -> None:
    op.create_table(
        "stats_monthly",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("subject_org_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("owner_org_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("categories.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.UniqueConstraint(
            "month",
            "subject_org_id",
            "owner_org_id",
            "category_id",
            "channel",
            "kind",
            name="uq_stats_monthly_dimensions",
        ),
    )
    op.create_index("ix_stats_monthly_subject_month", "stats_monthly", ["subject_org_id", "month"])


def downgrade() -> None:
    op.drop_index("ix_stats_monthly_subject_month", table_name="stats_monthly")
    op.drop_table("stats_monthly")
