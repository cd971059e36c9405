"""Staff notifications (issue 13): one unread notice per case and level, grouped

Revision ID: d13e02a2b3c4
Revises: d13e01a2b3c4
Create Date: 2026-12-01 13:00:00

A notice now carries its group (kind and level, e.g. ``escalated:1``), how many events it stands
for, the clocks they were about and when it last changed. A partial unique index keeps one
*unread* notice per user, case and group, so a sweep that finds three late clocks on a case tells
each person once. Plain ADD COLUMN on both databases (nullable or with a server default).
"""

import sqlalchemy as sa
from alembic import op

revision = "d13e02a2b3c4"
down_revision = "d13e01a2b3c4"
branch_labels = None
depends_on = None

UNREAD = "read_at IS NULL"


def upgrade():
    op.add_column("notifications", sa.Column("group_key", sa.String(length=80), nullable=True))
    op.add_column("notifications", sa.Column("repeats", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("notifications", sa.Column("clocks", sa.JSON(), nullable=True))
    op.add_column("notifications", sa.Column("updated_at", sa.DateTime(), nullable=True))
    op.create_index(
        "uq_notifications_unread_group",
        "notifications",
        ["user_id", "case_id", "group_key"],
        unique=True,
        postgresql_where=sa.text(UNREAD),
        sqlite_where=sa.text(UNREAD),
    )


def downgrade():
    op.drop_index("uq_notifications_unread_group", table_name="notifications")
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("clocks")
        batch_op.drop_column("repeats")
        batch_op.drop_column("group_key")
