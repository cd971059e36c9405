"""Limits and hosts (issue 14): placeholder

Revision ID: e14a03b2c3d4
Revises: e14a02b2c3d4
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "e14a03b2c3d4"
down_revision = "e14a02b2c3d4"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
