"""Issue 16 (duplicates): hot-spot flags (reserved; filled by its part of issue 16)

Revision ID: g16a03b2c3d4
Revises: g16a02b2c3d4
Create Date: 2026-12-01 19:30:00
"""

revision = "g16a03b2c3d4"
down_revision = "g16a02b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
