"""discipline bodies and units, case owner/subject/unit, kinds and disposals, several roles a user

DESIGN.md §2a. Existing data is carried over as the issue asks: each case's org becomes its subject
unit and its owner is that unit's discipline body (before this revision the only bodies are
commissions, so: the nearest commission at or above it). A case a unit's handler has in hand stays
with that unit as a transferred service complaint; anything else at a unit moves to its owner.
Accounts at units keep their handlers; their intake clerks and supervisors become the unit's
leaders (单位负责人), since only discipline bodies receive and review now.

Revision ID: 3f1e2d4c5b6a
Revises: 671c538301cc
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "3f1e2d4c5b6a"
down_revision = "671c538301cc"
branch_labels = None
depends_on = None

OLD_KINDS = "'commission', 'department', 'township', 'village'"
NEW_KINDS = "'commission', 'discipline_office', 'stationed_group', 'department', 'township', 'village'"
ROLES = "'intake', 'handler', 'supervisor', 'leader', 'admin'"
CASE_KINDS = "'accusation', 'service', 'appeal', 'suggestion', 'out_of_scope'"
DISPOSALS = "'talk_inquiry', 'preliminary_check', 'shelved', 'concluded'"
REJECT_REASONS = "'out_of_scope', 'no_facts', 'already_handled', 'duplicate', 'other'"
OPEN_QUEUE_WHERE = {
    "escalated": "is_open AND escalation_level > 0",
    "overdue": "is_open AND overdue",
    "due_soon": "is_open AND due_soon AND NOT overdue",
}

orgs = sa.table(
    "orgs", sa.column("id", sa.Integer), sa.column("parent_id", sa.Integer), sa.column("kind", sa.String)
)
users = sa.table(
    "users", sa.column("id", sa.Integer), sa.column("org_id", sa.Integer), sa.column("role", sa.String)
)
user_roles = sa.table("user_roles", sa.column("user_id", sa.Integer), sa.column("role", sa.String))
cases = sa.table(
    "cases",
    sa.column("id", sa.Integer),
    sa.column("org_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("assignee_id", sa.Integer),
    sa.column("owner_org_id", sa.Integer),
    sa.column("subject_org_id", sa.Integer),
    sa.column("unit_org_id", sa.Integer),
    sa.column("kind", sa.String),
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _foreign_keys(on: bool) -> None:
    """SQLite re-creates a table to change its constraints, and cannot drop a table others refer
    to while foreign keys are enforced; the pragma only changes outside a transaction."""
    if _sqlite():
        with op.get_context().autocommit_block():
            op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _foreign_keys(False)
    with op.batch_alter_table("orgs") as batch_op:
        batch_op.add_column(sa.Column("supervising_body_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("self_publish_allowed", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.drop_constraint(op.f("ck_orgs_kind_valid"), type_="check")
        batch_op.create_check_constraint("kind_valid", f"kind IN ({NEW_KINDS})")
        batch_op.create_foreign_key(
            batch_op.f("fk_orgs_supervising_body_id_orgs"), "orgs", ["supervising_body_id"], ["id"]
        )

    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.CheckConstraint(f"role IN ({ROLES})", name=op.f("ck_user_roles_role_valid")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
    )
    bind = op.get_bind()
    kind_of = dict(bind.execute(sa.select(orgs.c.id, orgs.c.kind)).all())
    parent_of = dict(bind.execute(sa.select(orgs.c.id, orgs.c.parent_id)).all())
    for user_id, org_id, role in bind.execute(sa.select(users.c.id, users.c.org_id, users.c.role)).all():
        at_unit = kind_of.get(org_id) != "commission"
        new_role = "leader" if at_unit and role in ("intake", "supervisor") else role
        bind.execute(user_roles.insert().values(user_id=user_id, role=new_role))
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role_valid"), type_="check")
        batch_op.drop_column("role")

    with op.batch_alter_table("categories") as batch_op:
        batch_op.add_column(sa.Column("default_kind", sa.String(length=20), nullable=True))
        batch_op.create_check_constraint(
            "default_kind_valid", f"default_kind IS NULL OR default_kind IN ({CASE_KINDS})"
        )
        batch_op.drop_column("default_org_kind")
    _foreign_keys(True)

    # Plain ALTER TABLE ADD COLUMN on `cases`: SQLite cannot copy a table into its generated
    # columns (bucket, is_open), so batch mode is out and its CHECKs are PostgreSQL's alone.
    for name in ("owner_org_id", "subject_org_id", "unit_org_id"):
        if _sqlite():
            # SQLite adds a column with its reference in one statement (no ALTER of constraints).
            op.execute(
                f"ALTER TABLE cases ADD COLUMN {name} INTEGER "
                f"CONSTRAINT fk_cases_{name}_orgs REFERENCES orgs (id)"
            )
        else:
            op.add_column("cases", sa.Column(name, sa.Integer(), nullable=True))
            op.create_foreign_key(op.f(f"fk_cases_{name}_orgs"), "cases", "orgs", [name], ["id"])
    op.add_column("cases", sa.Column("kind", sa.String(length=20), nullable=True))
    op.add_column("cases", sa.Column("reject_reason", sa.String(length=20), nullable=True))
    op.add_column("cases", sa.Column("disposal", sa.String(length=20), nullable=True))
    op.add_column("cases", sa.Column("disposal_note", sa.Text(), nullable=True))
    if not _sqlite():
        for name, values in (
            ("kind", CASE_KINDS),
            ("disposal", DISPOSALS),
            ("reject_reason", REJECT_REASONS),
        ):
            op.create_check_constraint(f"{name}_valid", "cases", f"{name} IS NULL OR {name} IN ({values})")

    _carry_cases_over(bind, kind_of, parent_of)

    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_index("ix_cases_org_bucket_queue")
        batch_op.drop_index("ix_cases_org_open_queue")
        batch_op.create_index(
            "ix_cases_owner_bucket_queue", ["owner_org_id", "bucket", "priority", "response_due_at", "id"]
        )
        batch_op.create_index(
            "ix_cases_owner_open_queue", ["owner_org_id", "is_open", "priority", "response_due_at", "id"]
        )
        batch_op.create_index("ix_cases_unit_queue", ["unit_org_id", "bucket", "response_due_at", "id"])
        for name, where in OPEN_QUEUE_WHERE.items():
            condition = {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}
            batch_op.drop_index(f"ix_cases_org_{name}_queue", **condition)
            batch_op.create_index(
                f"ix_cases_owner_{name}_queue",
                ["owner_org_id", "priority", "response_due_at", "id"],
                unique=False,
                **condition,
            )


def _carry_cases_over(bind, kind_of: dict[int, str], parent_of: dict[int, int | None]) -> None:
    def body_of(org_id: int) -> int:
        current = org_id
        while current is not None and kind_of.get(current) != "commission":
            current = parent_of.get(current)
        return current if current is not None else org_id

    user_org = dict(bind.execute(sa.select(users.c.id, users.c.org_id)).all())
    rows = bind.execute(sa.select(cases.c.id, cases.c.org_id, cases.c.status, cases.c.assignee_id)).all()
    for case_id, org_id, status, assignee_id in rows:
        owner = body_of(org_id)
        values = {"subject_org_id": org_id, "owner_org_id": owner}
        if status != "received":
            values["kind"] = "service"  # the loop so far was a service complaint's loop
        if kind_of.get(org_id) != "commission":
            in_hand_there = (
                status in ("assigned", "processing", "reopened") and user_org.get(assignee_id) == org_id
            )
            if status not in ("received", "accepted"):
                values["unit_org_id"] = org_id  # the unit worked on it: it keeps seeing it
            if not in_hand_there:
                values["org_id"] = owner
                if user_org.get(assignee_id) not in (None, owner):
                    values["assignee_id"] = None
        bind.execute(cases.update().where(cases.c.id == case_id).values(**values))


def downgrade():
    with op.batch_alter_table("cases") as batch_op:
        for name, where in OPEN_QUEUE_WHERE.items():
            condition = {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}
            batch_op.drop_index(f"ix_cases_owner_{name}_queue", **condition)
            batch_op.create_index(
                f"ix_cases_org_{name}_queue",
                ["org_id", "priority", "response_due_at", "id"],
                unique=False,
                **condition,
            )
        batch_op.drop_index("ix_cases_unit_queue")
        batch_op.drop_index("ix_cases_owner_open_queue")
        batch_op.drop_index("ix_cases_owner_bucket_queue")
        batch_op.create_index(
            "ix_cases_org_open_queue", ["org_id", "is_open", "priority", "response_due_at", "id"]
        )
        batch_op.create_index(
            "ix_cases_org_bucket_queue", ["org_id", "bucket", "priority", "response_due_at", "id"]
        )
    if not _sqlite():
        for name in ("kind", "disposal", "reject_reason"):
            op.drop_constraint(op.f(f"ck_cases_{name}_valid"), "cases", type_="check")
    # Back to where the case sits being its only org: a case out at a unit stays there.
    for name in ("disposal_note", "disposal", "reject_reason", "kind"):
        op.drop_column("cases", name)
    for name in ("unit_org_id", "subject_org_id", "owner_org_id"):
        if not _sqlite():
            op.drop_constraint(op.f(f"fk_cases_{name}_orgs"), "cases", type_="foreignkey")
        op.drop_column("cases", name)

    _foreign_keys(False)
    with op.batch_alter_table("categories") as batch_op:
        batch_op.add_column(sa.Column("default_org_kind", sa.String(length=20), nullable=True))
        batch_op.drop_constraint(op.f("ck_categories_default_kind_valid"), type_="check")
        batch_op.drop_column("default_kind")
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=20), nullable=False, server_default="handler"))
    bind = op.get_bind()
    # One role each again: the most powerful one a user held; a unit's leader was its intake.
    rank = {"admin": 0, "supervisor": 1, "intake": 2, "leader": 3, "handler": 4}
    held: dict[int, str] = {}
    for user_id, role in bind.execute(sa.select(user_roles.c.user_id, user_roles.c.role)).all():
        if user_id not in held or rank[role] < rank[held[user_id]]:
            held[user_id] = role
    for user_id, role in held.items():
        bind.execute(
            users.update().where(users.c.id == user_id).values(role="intake" if role == "leader" else role)
        )
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("role", server_default=None)
        batch_op.create_check_constraint("role_valid", "role IN ('intake', 'handler', 'supervisor', 'admin')")
    op.drop_table("user_roles")
    op.execute("UPDATE orgs SET kind = 'commission' WHERE kind IN ('discipline_office', 'stationed_group')")
    with op.batch_alter_table("orgs") as batch_op:
        batch_op.drop_constraint(op.f("fk_orgs_supervising_body_id_orgs"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_orgs_kind_valid"), type_="check")
        batch_op.create_check_constraint("kind_valid", f"kind IN ({OLD_KINDS})")
        batch_op.drop_column("self_publish_allowed")
        batch_op.drop_column("supervising_body_id")
    _foreign_keys(True)
