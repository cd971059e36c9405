"""Issue 16 (points): a point's retired QR tokens

When a point's QR code is reissued (重新生成二维码) its old token is kept here, so that the old
sticker opens a page saying 此码已更换 with a link to the point's current form instead of a 404.

Revision ID: g16a02b2c3d4
Revises: g16a01b2c3d4
Create Date: 2026-12-01 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "g16a02b2c3d4"
down_revision = "g16a01b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_point_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=False),
        sa.Column("retired_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["point_id"], ["points.id"], name=op.f("fk_retired_point_tokens_point_id_points")
        ),
        sa.ForeignKeyConstraint(
            ["retired_by_id"], ["users.id"], name=op.f("fk_retired_point_tokens_retired_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retired_point_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_retired_point_tokens_token")),
    )
    op.create_index(
        op.f("ix_retired_point_tokens_point_id"), "retired_point_tokens", ["point_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_retired_point_tokens_point_id"), table_name="retired_point_tokens")
    op.drop_table("retired_point_tokens")
