"""Issue 18 (verified phones): one-time codes for real-name reports

(Reserved stub: filled in by the part that owns it.)

Revision ID: i18a02b2c3d4
Revises: i18a01b2c3d4
Create Date: 2026-12-01 22:30:00
"""

revision = "i18a02b2c3d4"
down_revision = "i18a01b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
