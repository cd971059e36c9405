"""Issue 16: every case's channel (来源渠道) and a keyed hash of its reporter's phone

`channel` says how a complaint arrived (qr / web / phone / letter / visit / hotline / import);
existing cases came by a point's QR code or by the web form. `reporter_hash` finds one reporter's
other cases (重复访) without decrypting anyone's number; existing cases get theirs here when the
app's keys are at hand (`supervise init` / `flask db upgrade` run inside the app), else
`supervise reporters rehash` fills them later. Two indexes serve the duplicate suggestions.

Revision ID: g16a01b2c3d4
Revises: f15a02b2c3d4
Create Date: 2026-12-01 19:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "g16a01b2c3d4"
down_revision = "f15a02b2c3d4"
branch_labels = None
depends_on = None

CHANNELS = "'qr', 'web', 'phone', 'letter', 'visit', 'hotline', 'import'"
WITH_HASH = sa.text("reporter_hash IS NOT NULL")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.add_column("cases", sa.Column("reporter_hash", sa.String(length=64), nullable=True))
    op.add_column("cases", sa.Column("channel", sa.String(length=16), server_default="web", nullable=False))
    if not _sqlite():
        op.create_check_constraint("channel_valid", "cases", f"channel IN ({CHANNELS})")
    op.execute("UPDATE cases SET channel = 'qr' WHERE point_id IS NOT NULL")
    op.create_index("ix_cases_subject_received", "cases", ["subject_org_id", "received_at"])
    op.create_index(
        "ix_cases_reporter_hash",
        "cases",
        ["reporter_hash", "received_at"],
        postgresql_where=WITH_HASH,
        sqlite_where=WITH_HASH,
    )
    from supervise.cases.reporters import rehash_reporters

    rehash_reporters(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_cases_reporter_hash", table_name="cases")
    op.drop_index("ix_cases_subject_received", table_name="cases")
    with op.batch_alter_table("cases") as batch_op:
        if not _sqlite():
            batch_op.drop_constraint("channel_valid", type_="check")
        batch_op.drop_column("channel")
        batch_op.drop_column("reporter_hash")
