"""Issue 15: a unit's 待交办 tab from a small partial index

A unit's dispatch tab (transferred to it, no handler picked yet) is a few rows among everything
the unit ever handled; its count and page read `ix_cases_unit_unassigned` instead of AND-ing the
unit's index with every unassigned case (30–60 ms → 3 ms at 1,000,000 cases). A new case is not
`assigned`, so the submit path never writes this index.

Revision ID: f15a01b2c3d4
Revises: e14a01b2c3d4
Create Date: 2026-12-01 16:01:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f15a01b2c3d4"
down_revision = "e14a01b2c3d4"
branch_labels = None
depends_on = None

WHERE = sa.text("status = 'assigned' AND assignee_id IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_cases_unit_unassigned",
        "cases",
        ["unit_org_id", "priority", "response_due_at", "id"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_cases_unit_unassigned", table_name="cases")
