"""Issue 16 (points): a point's retired QR tokens (reserved; filled by its part of issue 16)

Revision ID: g16a02b2c3d4
Revises: g16a01b2c3d4
Create Date: 2026-12-01 19:30:00
"""

revision = "g16a02b2c3d4"
down_revision = "g16a01b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
