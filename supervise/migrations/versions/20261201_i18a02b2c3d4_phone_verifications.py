"""Issue 18 (verified phones): one-time codes for real-name reports

A real-name report is accepted as real-name only with a code sent by SMS to its number
(supervise/intake/verification.py). The number is stored sealed and as a keyed hash; the code is
not stored (derived from the row's salt under the server's key).

Revision ID: i18a02b2c3d4
Revises: i18a01b2c3d4
Create Date: 2026-12-01 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "i18a02b2c3d4"
down_revision = "i18a01b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_verifications")),
    )
    op.create_index(
        "ix_phone_verifications_phone_hash_created_at", "phone_verifications", ["phone_hash", "created_at"]
    )
    op.create_index("ix_phone_verifications_expires_at", "phone_verifications", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_phone_verifications_expires_at", table_name="phone_verifications")
    op.drop_index("ix_phone_verifications_phone_hash_created_at", table_name="phone_verifications")
    op.drop_table("phone_verifications")
