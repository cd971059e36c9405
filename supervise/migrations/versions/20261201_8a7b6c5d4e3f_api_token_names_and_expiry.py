"""API tokens get a name and an expiry (issue 12, item 8)

Existing tokens keep working for 90 days from this migration, as a new one would, so nothing an
integration relies on breaks without notice; `supervise user tokens` lists them.

Revision ID: 8a7b6c5d4e3f
Revises: 3f1e2d4c5b6a
Create Date: 2026-12-01 11:00:00
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "8a7b6c5d4e3f"
down_revision = "3f1e2d4c5b6a"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), server_default="", nullable=False))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.DateTime()), sa.column("revoked_at", sa.DateTime()))
    expiry = (datetime.now(UTC) + timedelta(days=90)).replace(tzinfo=None)
    op.execute(tokens.update().where(tokens.c.revoked_at.is_(None)).values(expires_at=expiry))


def downgrade():
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("name")
