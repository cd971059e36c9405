"""Issue 18 (SMS providers): delivery receipts and provider ids on outbox rows

(Reserved stub: filled in by the part that owns it.)

Revision ID: i18a01b2c3d4
Revises: h17a03b2c3d4
Create Date: 2026-12-01 22:30:00
"""

revision = "i18a01b2c3d4"
down_revision = "h17a03b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
