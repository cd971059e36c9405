"""Issue 16 (duplicates): hot-spot flags (热点)

A unit with at least HOTSPOT_THRESHOLD complaints in 30 days is flagged to its discipline body by a
daily job (supervise/cases/hotspots.py): one row per unit and window end day, so a rerun writes
nothing.

Revision ID: g16a03b2c3d4
Revises: g16a02b2c3d4
Create Date: 2026-12-01 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "g16a03b2c3d4"
down_revision = "g16a02b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hot_spots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("body_id", sa.Integer(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_hot_spots_org_id_orgs")),
        sa.ForeignKeyConstraint(["body_id"], ["orgs.id"], name=op.f("fk_hot_spots_body_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hot_spots")),
        sa.UniqueConstraint("org_id", "window_end", name="uq_hot_spots_org_window_end"),
    )


def downgrade() -> None:
    op.drop_table("hot_spots")
