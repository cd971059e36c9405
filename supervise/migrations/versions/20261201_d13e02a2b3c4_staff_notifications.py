"""Staff notifications (issue 13): placeholder, filled by the notifications work

Revision ID: d13e02a2b3c4
Revises: d13e01a2b3c4
Create Date: 2026-12-01 13:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "d13e02a2b3c4"
down_revision = "d13e01a2b3c4"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
