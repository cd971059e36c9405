"""Issue 16: a password set by someone else (admin, import) is one-time

`users.password_must_change`: every staff page leads to 修改密码 until the person has chosen
their own. Existing accounts are left as they are (their passwords were handed out before).

Revision ID: g16a04b2c3d4
Revises: g16a03b2c3d4
Create Date: 2026-12-01 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "g16a04b2c3d4"
down_revision = "g16a03b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("password_must_change", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("password_must_change")
