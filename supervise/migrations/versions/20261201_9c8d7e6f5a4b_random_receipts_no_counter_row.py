"""Random public tracking numbers; the per-year counter row goes (issue 12, item 2)

New cases get a random 查询编号 (`MS-K7QP3-XWA9M`); staff see a register number derived from the
case's id (`2026-000123`). Existing cases keep their numbers, which still open them. The counter
table every submission locked is dropped.

Revision ID: 9c8d7e6f5a4b
Revises: 8a7b6c5d4e3f
Create Date: 2026-12-01 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9c8d7e6f5a4b"
down_revision = "8a7b6c5d4e3f"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_table("tracking_counters")


def downgrade():
    op.create_table(
        "tracking_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_tracking_counters")),
    )
    # The next sequential number of a year follows the highest one of the old format.
    op.execute(
        "INSERT INTO tracking_counters (year, value) "
        "SELECT CAST(substr(tracking_no, 3, 4) AS INTEGER), MAX(CAST(substr(tracking_no, 8, 6) AS INTEGER)) "
        "FROM cases WHERE tracking_no LIKE 'MS____-______' GROUP BY substr(tracking_no, 3, 4)"
    )
