"""DATABASE_READ_URL: reports and statistics read from a second database (supervise/readonly.py).

No real streaming replica here: the "replica" is a copy of the primary database made with
CREATE DATABASE … TEMPLATE on the same private PostgreSQL server, then changed so that what is read
from it can be told apart. That shows which engine each read goes to, which is what the code
decides; replaying WAL is PostgreSQL's business, not ours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask_migrate import upgrade
from sqlalchemy import create_engine, select, text

from supervise.app import create_app
from supervise.deadlines.calendar import seed_from_chinesecalendar
from supervise.demo import load_demo
from supervise.extensions import db
from supervise.reports import services as reports
from supervise.reports.models import WeeklyReport
from supervise.reports.weekly import Week
from tests.conftest import app_config
from tests.web.test_staff import login

COUNTY = "示范县纪委监委"
ON_REPLICA = "副本里的县纪委监委"
TOWN_ON_REPLICA = "副本里的城关镇纪委"


def _app(primary: str, redis_url: str, **extra):
    return create_app(app_config({"database_url": primary, "redis_url": redis_url}, **extra))


def _page(app, week: Week) -> str:
    client = app.test_client()
    with app.app_context():
        assert login(client, "demo-supervisor").status_code == 302
        page = client.get(f"/staff/reports/{week.label}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_report_pages_and_builds_read_the_replica(private_postgres, private_redis, tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))
    primary = private_postgres.url
    replica = primary.rsplit("/", 1)[0] + "/replica"
    week = Week.last_complete(datetime.now(UTC))

    only_primary = _app(primary, private_redis.url, PASSWORD_HASH_METHOD="pbkdf2:sha256:1000")
    with only_primary.app_context():
        upgrade(directory=only_primary.extensions["migrate"].directory)
        seed_from_chinesecalendar(db.session)
        load_demo(sample_cases=False)
        reports.build(week)  # version 1, on the primary
        db.session.remove()
        db.engine.dispose()

    # The "replica": a copy of the primary, then made to differ from it.
    admin = create_engine(primary.rsplit("/", 1)[0] + "/template1", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE replica TEMPLATE postgres"))
    admin.dispose()
    on_replica = create_engine(replica)
    with on_replica.begin() as conn:
        # In Python: the JSON column holds the names \u-escaped.
        for report_id, data in conn.execute(text("SELECT id, data FROM weekly_reports")).all():
            for row in data["orgs"]:
                row["name"] = row["name"].replace(COUNTY, ON_REPLICA)
            conn.execute(
                text("UPDATE weekly_reports SET data = :data WHERE id = :id"),
                {"data": json.dumps(data), "id": report_id},
            )
        rename = text("UPDATE orgs SET name = :name WHERE code = 'demo-town-1-jw'")
        conn.execute(rename, {"name": TOWN_ON_REPLICA})
    on_replica.dispose()

    # Unset: the report page reads the primary, as before.
    html = _page(only_primary, week)
    assert COUNTY in html and ON_REPLICA not in html

    with_replica = _app(primary, private_redis.url, DATABASE_READ_URL=replica)
    # Set: the stored report the page shows comes from the replica…
    html = _page(with_replica, week)
    assert ON_REPLICA in html
    with with_replica.app_context():
        # …and so do a build's figures, while the new version is written to the primary.
        built = reports.build(week, reason="从只读副本统计")
        assert built.version == 2
        names = {row["code"]: row["name"] for row in built.data["orgs"]}
        assert names["demo-town-1-jw"] == TOWN_ON_REPLICA
        db.session.remove()
        versions = db.session.scalars(select(WeeklyReport.version).where(WeeklyReport.week == week.label))
        assert sorted(versions) == [1, 2]
        db.session.remove()
        db.engine.dispose()
    with_replica.extensions["supervise.read_engine"].dispose()
