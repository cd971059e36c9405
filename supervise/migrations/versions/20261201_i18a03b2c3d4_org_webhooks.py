"""Issue 18 (staff robots): WeCom / DingTalk group robots per org

A discipline body's group robots (supervise/robots): its escalations and review requests are
posted there through the outbox (channel `robot`). The webhook address and DingTalk's signing
secret are Fernet-sealed, like a reporter's identity.

Revision ID: i18a03b2c3d4
Revises: i18a02b2c3d4
Create Date: 2026-12-01 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "i18a03b2c3d4"
down_revision = "i18a02b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_robots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("webhook_enc", sa.LargeBinary(), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('wecom', 'dingtalk')", name=op.f("ck_org_robots_kind_valid")),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_org_robots_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_org_robots_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_org_robots_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_robots")),
    )
    with op.batch_alter_table("org_robots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_robots_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_robots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_robots_org_id"))
    op.drop_table("org_robots")
