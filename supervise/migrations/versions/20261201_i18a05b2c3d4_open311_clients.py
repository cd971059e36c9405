"""Issue 18 (Open311): API clients (api_key) of the GeoReport v2 endpoints

`open311_clients`: who may call /open311/v2 with an api_key (only its SHA-256 kept), the org whose
subtree its requests are about, the channel its cases carry, whether its callers' phones count as
verified (real-name), revocation and last use. `open311_requests`: which case each client
submitted and the token its POST answered with (supervise/open311/).

Revision ID: i18a05b2c3d4
Revises: i18a04b2c3d4
Create Date: 2026-12-01 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "i18a05b2c3d4"
down_revision = "i18a04b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open311_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("verified_callers", sa.Boolean(), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "channel IN ('hotline', 'import', 'web')", name=op.f("ck_open311_clients_channel_valid")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_open311_clients_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_open311_clients_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_clients")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_clients_key_hash")),
    )
    op.create_table(
        "open311_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["open311_clients.id"], name=op.f("fk_open311_requests_client_id_open311_clients")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_open311_requests_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_requests")),
        sa.UniqueConstraint("case_id", name=op.f("uq_open311_requests_case_id")),
        sa.UniqueConstraint("token", name=op.f("uq_open311_requests_token")),
    )
    op.create_index("ix_open311_requests_client_created", "open311_requests", ["client_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_open311_requests_client_created", table_name="open311_requests")
    op.drop_table("open311_requests")
    op.drop_table("open311_clients")
