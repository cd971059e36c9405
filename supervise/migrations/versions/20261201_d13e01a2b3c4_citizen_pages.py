"""Citizen pages (issue 13): one-time SMS links that open a case (case_links)

Revision ID: d13e01a2b3c4
Revises: ab12cd34ef56
Create Date: 2026-12-01 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "d13e01a2b3c4"
down_revision = "ab12cd34ef56"
branch_labels = None
depends_on = None


def upgrade():
    # A new table only: plain CREATE TABLE works the same on SQLite and PostgreSQL.
    op.create_table(
        "case_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_links_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_case_links_token_hash")),
    )
    op.create_index(op.f("ix_case_links_case_id"), "case_links", ["case_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_case_links_case_id"), table_name="case_links")
    op.drop_table("case_links")
