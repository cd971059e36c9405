"""Issue 18 (staff robots): WeCom / DingTalk group robots per org

(Reserved stub: filled in by the part that owns it.)

Revision ID: i18a03b2c3d4
Revises: i18a02b2c3d4
Create Date: 2026-12-01 22:30:00
"""

revision = "i18a03b2c3d4"
down_revision = "i18a02b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
