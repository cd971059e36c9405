"""Health, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, SimpleWorker, Worker
from sqlalchemy import select, text

from supervise.app import create_app
from supervise.cases import services
from supervise.cases.models import Case
from supervise.cases.workflow import Actor
from supervise.deadlines.calendar import SHANGHAI, local_date
from supervise.deadlines.models import CaseClock
from supervise.deadlines.services import run_sweep
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.queueing import redis_connection
from supervise.staff.models import User
from tests.conftest import app_config


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_goes_away(app, client, tmp_path):
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"unix://{tmp_path}/gone.sock"
    app.extensions.pop("supervise.redis", None)
    try:
        response = client.get("/readyz")
    finally:
        app.extensions.pop("supervise.redis", None)
        app.config["REDIS_URL"] = real_url
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["redis"].startswith("error") and checks["database"] == "ok"
    assert client.get("/readyz").status_code == 200  # and back once Redis answers


def _script_directory(app) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


@pytest.fixture
def db_revision(app):
    """Sets alembic_version to another revision for one test, restoring the real one after."""
    head = db.session.scalar(text("SELECT version_num FROM alembic_version"))

    def set_to(revision: str) -> None:
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        db.session.commit()

    set_to.head = head
    yield set_to
    db.session.rollback()
    set_to(head)


def test_readyz_is_503_when_migrations_are_behind(app, client, db_revision):
    head = db_revision.head
    assert _script_directory(app).get_heads() == [head]
    older = _script_directory(app).get_revision(head).down_revision
    db_revision(older)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == f"behind: db {older}, code {head}"
    # A revision the code does not know: the database was migrated by newer code.
    db_revision("0123456789ab")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == f"ahead: db 0123456789ab, code {head}"
    db_revision(head)
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_without_redis(services, _schema, tmp_path):
    app = create_app(app_config(services, REDIS_URL=f"unix://{tmp_path}/nothing.sock"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("error")


def test_readyz_is_503_without_database(services, _schema, tmp_path):
    app = create_app(
        app_config(services, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("error")


def test_openapi_document_lists_the_contract(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path in (
        "/api/v1/cases",
        "/api/v1/cases/{ref}",
        "/api/v1/cases/{ref}/actions",
        "/api/v1/track",
        "/api/v1/track/rating",
        "/api/v1/track/supplement",
        "/api/v1/categories",
    ):
        assert path in paths, path
    assert {"get", "post"} <= set(paths["/api/v1/cases"])


def test_categories_are_public(client, demo):
    cats = client.get("/api/v1/categories").get_json()
    assert {"code": "petty_corruption", "name": "吃拿卡要"} in cats


def test_errors_outside_the_api_are_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert client.get("/api/v1/nothing").get_json()["error"]["code"] == "not_found"


# -- /metrics ---------------------------------------------------------------------------------------

# A Monday with an official calendar, 10:00 in Shanghai.
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)


def at_11(day: date) -> datetime:
    return datetime.combine(day, time(11), tzinfo=SHANGHAI).astimezone(UTC)


def scrape(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    """`/metrics` as {(sample name, labels): value}."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def series(samples, name: str, **labels) -> float:
    return samples[(name, frozenset(labels.items()))]


def explode() -> None:
    raise RuntimeError("a job that fails")


@pytest.fixture
def fixture_county(app, client, demo, monkeypatch):
    """Cases at a village (transferred there), a township's 纪委 and the county, some overdue and
    escalated, one closed;
    outbox rows pending since known moments and one dead; jobs in Redis; the scrape at NOW."""
    now = {"at": T0}
    monkeypatch.setattr(services, "utcnow", lambda: now["at"])
    points = {p.org.code: p.token for p in demo_points()}
    calendar = services.make_context().clocks.calendar

    def file(point_org: str | None = None, category: str = "petty_corruption") -> str:
        body = {
            "category": category,
            "subject": "某窗口工作人员",
            "content": "办理业务时被要求先请吃饭才给盖章。",
        }
        if point_org:
            body["point"] = points[point_org]
        response = client.post("/api/v1/cases", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["tracking_no"]

    def perform(ref: str, username: str, **args) -> None:
        user = db.session.scalar(select(User).where(User.username == username))
        version = db.session.scalar(select(Case.version).where(Case.tracking_no == ref))
        services.perform_action(ref, Actor.staff(user), {**args, "version": version})

    # A service complaint at a village: 青山乡纪委 owns it and transfers it to the village, where it
    # sits (nobody starts on it). A 检举控告 at 城关镇's point stays at 城关镇纪委 (a discipline office).
    village = file("demo-town-2-village-1", category="efficiency")
    perform(village, "demo-town-2-jw-intake", action="accept")
    perform(village, "demo-town-2-jw-intake", action="transfer", org="demo-town-2-village-1")
    township = file("demo-town-1")
    county_rejected = file()
    perform(
        county_rejected, "demo-intake", action="reject", reason_code="out_of_scope", reason="不属于受理范围"
    )
    intake = db.session.scalar(select(User).where(User.username == "demo-intake"))
    now["at"] = at_11(calendar.add_working_days(local_date(T0), 3).day)
    county_late = file()
    # Accepted (its 5-day stage clock ends): only its response clock can escalate it.
    version = db.session.scalar(select(Case.version).where(Case.tracking_no == county_late))
    services.perform_action(county_late, Actor.staff(intake), {"action": "accept", "version": version})
    due = local_date(
        db.session.scalar(
            select(CaseClock.due_at)
            .join(Case, Case.id == CaseClock.case_id)
            .where(Case.tracking_no == village, CaseClock.kind == "response")
        )
    )
    # Six working days after the first two were due: those are at level 2; the county's case,
    # filed three working days later, is three days late: level 1.
    now["at"] = at_11(calendar.add_working_days(due, 6).day)
    run_sweep(now["at"])
    county_fresh = file()
    refs = {"village": village, "township": township, "county_late": county_late, "fresh": county_fresh}

    db.session.execute(OutboxMessage.__table__.update().values(status="delivered"))
    pending = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id).limit(3)).all()
    for row, minutes in zip(pending, (90, 30, 5), strict=True):
        row.status, row.created_at = "pending", now["at"] - timedelta(minutes=minutes)
    dead = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(2)).all()
    for row in dead:
        row.status, row.created_at = "dead", now["at"] - timedelta(days=3)
    dead[0].status = "unknown"  # an SMS cut off mid-send: it waits for a person, and an alert
    db.session.commit()

    conn = redis_connection(app)
    conn.flushdb()
    for _ in range(2):
        Queue("reports", connection=conn).enqueue("workers.jobs.build_weekly_reports")
    Queue("sweeps", connection=conn).enqueue(explode)
    SimpleWorker(["sweeps"], connection=conn).work(burst=True)
    worker = Worker(["default"], connection=conn, name="metrics-test-worker")
    worker.register_birth()
    monkeypatch.setattr("supervise.api.ops.utcnow", lambda: now["at"])
    yield refs
    worker.register_death()


def demo_points():
    from supervise.intake.models import Point

    return db.session.scalars(select(Point)).all()


EXPECTED_CASES = {
    # the kind of org where the case sits: (open, overdue, escalated at level 1, at level 2)
    "commission": (2, 1, 1, 0),  # late (level 1) and fresh; the rejected case is closed
    "discipline_office": (1, 1, 0, 1),  # 城关镇纪委's own case
    "stationed_group": (0, 0, 0, 0),
    "department": (0, 0, 0, 0),
    "township": (0, 0, 0, 0),  # a township government only holds what is transferred to it
    "village": (1, 1, 0, 1),  # transferred there
}


def test_metrics_expose_the_state_of_a_fixture_county(client, fixture_county):
    samples = scrape(client)
    for kind, (open_, overdue, level1, level2) in EXPECTED_CASES.items():
        assert series(samples, "supervise_cases_open", org_kind=kind) == open_, kind
        assert series(samples, "supervise_cases_overdue", org_kind=kind) == overdue, kind
        assert series(samples, "supervise_cases_escalated", org_kind=kind, level="1") == level1, kind
        assert series(samples, "supervise_cases_escalated", org_kind=kind, level="2") == level2, kind
    # The figures agree with the case rows themselves.
    cases = db.session.scalars(select(Case)).all()
    assert sum(c.is_open for c in cases) == sum(v[0] for v in EXPECTED_CASES.values())
    assert sum(c.is_open and c.overdue for c in cases) == 3
    assert series(samples, "supervise_outbox_pending") == 3
    assert series(samples, "supervise_outbox_dead") == 1
    assert series(samples, "supervise_outbox_unknown") == 1
    assert series(samples, "supervise_outbox_oldest_pending_age_seconds") == 90 * 60
    for queue, queued, failed in (("default", 0, 0), ("reports", 2, 0), ("sweeps", 0, 1)):
        assert series(samples, "supervise_queue_jobs", queue=queue) == queued, queue
        assert series(samples, "supervise_queue_failed_jobs", queue=queue) == failed, queue
    assert series(samples, "supervise_workers") == 1
    assert series(samples, "supervise_up", component="database") == 1
    assert series(samples, "supervise_up", component="redis") == 1


def test_metrics_with_nothing_waiting(client, app):
    redis_connection(app).flushdb()
    samples = scrape(client)
    assert series(samples, "supervise_outbox_pending") == 0
    assert series(samples, "supervise_outbox_oldest_pending_age_seconds") == 0
    assert series(samples, "supervise_cases_open", org_kind="village") == 0
    assert series(samples, "supervise_workers") == 0


def test_request_metrics_are_labelled_by_url_rule_never_by_path(client):
    before = scrape(client)
    for _ in range(2):
        assert client.get("/healthz").status_code == 200
    client.get("/s/NOT-A-REAL-POINT-TOKEN")
    client.get("/no-such-page-MS2026-000123")
    response = client.get("/metrics")
    after = scrape(client)

    def delta(name, **labels):
        key = (name, frozenset(labels.items()))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("supervise_http_requests_total", endpoint="/healthz", method="GET", status="200") == 2
    assert delta("supervise_http_request_duration_seconds_count", endpoint="/healthz", method="GET") == 2
    assert delta("supervise_http_requests_total", endpoint="/s/<token>", method="GET", status="404") == 1
    assert delta("supervise_http_requests_total", endpoint="<unmatched>", method="GET", status="404") == 1
    assert delta("supervise_http_requests_total", endpoint="/metrics", method="GET", status="200") == 2
    body = response.get_data(as_text=True)
    assert "NOT-A-REAL-POINT-TOKEN" not in body and "MS2026-000123" not in body


def test_metrics_survive_a_redis_outage(app, client, tmp_path):
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"unix://{tmp_path}/gone.sock"
    app.extensions.pop("supervise.redis", None)
    try:
        samples = scrape(client)
    finally:
        app.extensions.pop("supervise.redis", None)
        app.config["REDIS_URL"] = real_url
    assert series(samples, "supervise_up", component="redis") == 0
    assert series(samples, "supervise_up", component="database") == 1
    assert series(samples, "supervise_outbox_pending") == 0
    assert not any(name == "supervise_queue_jobs" for name, _ in samples)


def test_metrics_need_the_token_when_one_is_set(services, _schema):
    app = create_app(app_config(services, METRICS_TOKEN="s3cret-metrics-token"))
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic s3cret-metrics-token"}).status_code == 401
    samples = scrape(client, headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert ("supervise_workers", frozenset()) in samples
    # With a token, the address does not matter.
    scrape(
        client,
        headers={"Authorization": "Bearer s3cret-metrics-token"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )


def test_metrics_without_a_token_are_local_only_and_off_in_production(app, client):
    assert client.get("/metrics").status_code == 200  # development, from loopback
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404
    app.config["SUPERVISE_ENV"] = "production"
    try:
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
    finally:
        app.config["SUPERVISE_ENV"] = "development"


MULTIPROCESS_SCRIPT = """
import multiprocessing, sys
from supervise import metrics

def serve(n):
    for _ in range(n):
        metrics.HTTP_REQUESTS.labels("/healthz", "GET", "200").inc()
        metrics.HTTP_DURATION.labels("/healthz", "GET").observe(0.01)

class NoState:
    def collect(self):
        return iter(())

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=serve, args=(n,)) for n in (2, 3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sys.stdout.write(metrics.exposition(NoState()).decode())
"""


def test_request_metrics_add_up_across_worker_processes(tmp_path):
    """Gunicorn's workers each count their own requests; with PROMETHEUS_MULTIPROC_DIR a scrape
    served by any process reports the sum (prometheus_client reads the mode at import time, so
    this runs in a fresh interpreter)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "multi.py"
    script.write_text(MULTIPROCESS_SCRIPT)
    (tmp_path / "prom").mkdir()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }
    labels = {"endpoint": "/healthz", "method": "GET"}
    assert samples[("supervise_http_requests_total", frozenset({**labels, "status": "200"}.items()))] == 5
    assert samples[("supervise_http_request_duration_seconds_count", frozenset(labels.items()))] == 5
