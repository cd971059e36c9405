"""Delivery (issue 14): outbox rows claimed before an external send; `sending` and `unknown`

Revision ID: e14a01b2c3d4
Revises: d13e03a2b3c4
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e14a01b2c3d4"
down_revision = "d13e03a2b3c4"
branch_labels = None
depends_on = None

NEW_STATES = "'pending', 'sending', 'delivered', 'unknown', 'dead'"
OLD_STATES = "'pending', 'delivered', 'dead'"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _foreign_keys(on: bool) -> None:
    """SQLite re-creates `outbox` to change its CHECK, and `notifications` refers to it: the
    pragma only changes outside a transaction (as in 20261201_3f1e2d4c5b6a)."""
    if _sqlite():
        with op.get_context().autocommit_block():
            op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _foreign_keys(False)
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.drop_constraint(op.f("ck_outbox_status_valid"), type_="check")
        batch_op.create_check_constraint("status_valid", f"status IN ({NEW_STATES})")
    _foreign_keys(True)


def downgrade():
    # Rows in the new states go back to the old ones without a re-send: `sending`/`unknown` may
    # have reached the citizen, so they become dead letters an admin looks at.
    op.execute("UPDATE outbox SET status = 'dead' WHERE status IN ('sending', 'unknown')")
    _foreign_keys(False)
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_status_valid"), type_="check")
        batch_op.create_check_constraint("status_valid", f"status IN ({OLD_STATES})")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("claimed_at")
    _foreign_keys(True)
