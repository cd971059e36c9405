"""Issue 18 (SMS providers): delivery receipts and provider ids on outbox rows

`outbox.provider` / `provider_id` (Aliyun BizId, Tencent SerialNo), the receipt (回执) pulled by
the receipt job (`receipt_status`, `receipt_code`, `receipt_at`), and Aliyun's number for that
query, sealed and cleared once the receipt is in (`receipt_phone_enc`).

Revision ID: i18a01b2c3d4
Revises: h17a03b2c3d4
Create Date: 2026-12-01 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "i18a01b2c3d4"
down_revision = "h17a03b2c3d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("provider_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("receipt_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("receipt_code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("receipt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("receipt_phone_enc", sa.LargeBinary(), nullable=True))
        batch_op.create_index("ix_outbox_provider_id", ["provider_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_provider_id")
        for column in (
            "receipt_phone_enc",
            "receipt_at",
            "receipt_code",
            "receipt_status",
            "provider_id",
            "provider",
        ):
            batch_op.drop_column(column)
