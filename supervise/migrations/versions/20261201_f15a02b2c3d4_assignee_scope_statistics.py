"""Issue 15 (desk tab counts): PostgreSQL learns that a handler's cases belong to one owner or unit

The desk's tab counts (cases/queries.py `queue_counts`) read at most 1,000 rows a tab. For 我的待办
the query says `assignee_id = :me AND owner_org_id = :body` (or `unit_org_id = :unit`); PostgreSQL
multiplies the two selectivities as if they were independent, expects a few hundred rows, and ANDs
two bitmaps, one of them every case the body owns (71 ms for a township handler at 1,000,000
cases). With the functional dependency known it expects the handler's thousands of cases and reads
the first thousand from the assignee index (7 ms). Extended statistics are PostgreSQL's alone and
no model mirrors them; SQLite has no planner statistics of this kind, so nothing happens there.

Revision ID: f15a02b2c3d4
Revises: f15a01b2c3d4
Create Date: 2026-12-01 16:02:00
"""

from alembic import op

revision = "f15a02b2c3d4"
down_revision = "f15a01b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE STATISTICS IF NOT EXISTS st_cases_assignee_scope (dependencies) "
        "ON assignee_id, owner_org_id, unit_org_id FROM cases"
    )
    op.execute("ANALYZE cases")  # built now, not at autovacuum's next visit (a few seconds at 10M)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_cases_assignee_scope")
