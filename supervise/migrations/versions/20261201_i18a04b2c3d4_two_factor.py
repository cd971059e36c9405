"""Issue 18 (2FA): TOTP secrets and recovery codes for staff

(Reserved stub: filled in by the part that owns it.)

Revision ID: i18a04b2c3d4
Revises: i18a03b2c3d4
Create Date: 2026-12-01 22:30:00
"""

revision = "i18a04b2c3d4"
down_revision = "i18a03b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
