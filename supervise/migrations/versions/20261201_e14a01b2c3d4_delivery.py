"""Delivery (issue 14): placeholder, filled by the delivery work

Revision ID: e14a01b2c3d4
Revises: d13e03a2b3c4
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "e14a01b2c3d4"
down_revision = "d13e03a2b3c4"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
