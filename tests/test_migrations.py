"""One Alembic head, and the models equal the schema after `upgrade head`."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Config

from supervise.extensions import db


def _script(app):
    config = Config(app.extensions["migrate"].directory + "/alembic.ini")
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


def test_one_head(app):
    assert len(_script(app).get_heads()) == 1


# SQLite cannot reflect the PostgreSQL-only expression index ix_cases_search; PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_models_match_schema_after_upgrade(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == _script(app).get_current_head()
        diff = compare_metadata(context, db.metadata)
    assert diff == []


BEFORE_BODIES = "671c538301cc"  # the revision before discipline bodies and units (issue 11)


@pytest.fixture
def scratch_url(services, tmp_path):
    """An empty database of the run's kind, apart from the one the other tests share."""
    url = services["database_url"]
    if not url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    import sqlalchemy as sa

    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS supervise_migration_test"))
        conn.execute(sa.text("CREATE DATABASE supervise_migration_test"))
    yield url.rsplit("/", 1)[0] + "/supervise_migration_test"
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS supervise_migration_test WITH (FORCE)"))
    admin.dispose()


def test_existing_cases_and_accounts_are_carried_into_bodies_and_units(services, scratch_url):
    """Issue 11: each case's org becomes its subject unit and its owner that unit's body; a case a
    village handler has in hand stays with the village; intake and supervisors at units lead."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from supervise.app import create_app
    from tests.conftest import app_config

    app = create_app(app_config(services, SQLALCHEMY_DATABASE_URI=scratch_url))
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision=BEFORE_BODIES)
        rows = [
            "INSERT INTO orgs (id, code, name, kind, parent_id, path, active) VALUES"
            " (1, 'county', '县纪委监委', 'commission', NULL, '/1/', true),"
            " (2, 'town', '城关镇', 'township', 1, '/1/2/', true),"
            " (3, 'village', '东关村', 'village', 2, '/1/2/3/', true)",
            "INSERT INTO users (id, username, display_name, org_id, role, password_hash, active, created_at)"
            " VALUES (1, 'county-intake', '', 1, 'intake', '', true, '2026-11-01'),"
            " (2, 'village-intake', '', 3, 'intake', '', true, '2026-11-01'),"
            " (3, 'village-handler', '', 3, 'handler', '', true, '2026-11-01')",
            "INSERT INTO categories (id, code, name, name_en, sort_order, active)"
            " VALUES (1, 'c', '其他', '', 0, true)",
        ]
        for number, (org, status, assignee) in enumerate(
            [(3, "received", None), (3, "processing", 3), (3, "accepted", None), (1, "closed", None)], start=1
        ):
            rows.append(
                "INSERT INTO cases (id, tracking_no, access_code_hash, status, version, org_id, category_id,"
                " assignee_id, subject, content, about_org_head, real_name, priority, received_at,"
                " response_due_at, due_provisional, extension_days, reopen_count, escalation_level,"
                f" updated_at) VALUES ({number}, 'MS2026-00000{number}', 'x', '{status}', 1, {org}, 1,"
                f" {assignee or 'NULL'}, 's', 'content', false, false, 1, '2026-11-02', '2026-11-20', false,"
                " 0, 0, 0, '2026-11-02')"
            )
        with db.engine.begin() as conn:
            for statement in rows:
                conn.execute(text(statement))
        upgrade(directory=directory)
        with db.engine.connect() as conn:
            cases = {
                row.id: row
                for row in conn.execute(
                    text("SELECT id, org_id, owner_org_id, subject_org_id, unit_org_id, kind FROM cases")
                )
            }
            roles = dict(conn.execute(text("SELECT user_id, role FROM user_roles")).all())
        db.engine.dispose()
    assert (cases[1].subject_org_id, cases[1].owner_org_id, cases[1].org_id, cases[1].kind) == (3, 1, 1, None)
    # In the village handler's hands: stays there as a transferred service complaint.
    assert (cases[2].org_id, cases[2].unit_org_id, cases[2].owner_org_id, cases[2].kind) == (
        3,
        3,
        1,
        "service",
    )
    # Waiting for the village's intake, who cannot act any more: moved to the owner.
    assert (cases[3].org_id, cases[3].unit_org_id, cases[3].owner_org_id) == (1, None, 1)
    assert (cases[4].org_id, cases[4].owner_org_id, cases[4].subject_org_id) == (1, 1, 1)
    assert roles == {1: "intake", 2: "leader", 3: "handler"}


BEFORE_CHANNELS = "f15a02b2c3d4"  # the revision before cases had a channel and a reporter hash (issue 16)


def test_existing_cases_get_their_channel_and_reporter_hash(services, scratch_url):
    """Issue 16: a case from a point came by QR code, one without by the web form; a sealed phone
    gets its keyed hash (the same number written two ways is one reporter), no phone none."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from supervise.app import create_app
    from supervise.cases.identity import IdentityBox, reporter_hash
    from tests.conftest import app_config

    app = create_app(app_config(services, SQLALCHEMY_DATABASE_URI=scratch_url))
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision=BEFORE_CHANNELS)
        box = IdentityBox(app.config["ENCRYPTION_KEY"])
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO orgs (id, code, name, kind, parent_id, path, active)"
                    " VALUES (1, 'county', '县纪委监委', 'commission', NULL, '/1/', true)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO categories (id, code, name, name_en, sort_order, active)"
                    " VALUES (1, 'c', '其他', '', 0, true)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO points (id, token, org_id, name, active, created_at)"
                    " VALUES (1, 'tok', 1, '窗口', true, '2026-11-01')"
                )
            )
            for number, point, phone in (
                (1, 1, "13812345678"),
                (2, None, "+86 138-1234-5678"),
                (3, None, None),
            ):
                conn.execute(
                    text(
                        "INSERT INTO cases (id, tracking_no, access_code_hash, status, version, org_id,"
                        " owner_org_id, subject_org_id, category_id, point_id, subject, content,"
                        " about_org_head, real_name, priority, reporter_phone_enc, received_at,"
                        " response_due_at, due_provisional, extension_days, reopen_count, escalation_level,"
                        f" updated_at) VALUES ({number}, 'MS-{number}', 'x', 'received', 1, 1, 1, 1, 1,"
                        " :point, 's', 'c', false, false, 1, :phone, '2026-11-02', '2026-11-20', false,"
                        " 0, 0, 0, '2026-11-02')"
                    ),
                    {"point": point, "phone": box.seal(phone)},
                )
        upgrade(directory=directory)
        with db.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(text("SELECT id, channel, reporter_hash FROM cases"))}
        db.engine.dispose()
    expected = reporter_hash(app.config["SECRET_KEY"], "13812345678")
    assert [(rows[i].channel, rows[i].reporter_hash) for i in (1, 2, 3)] == [
        ("qr", expected),
        ("web", expected),
        ("web", None),
    ]
