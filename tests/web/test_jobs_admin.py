"""Background jobs page (/staff/admin/jobs): queues, workers, failed jobs with retry and delete."""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from supervise.extensions import db
from supervise.queueing import redis_connection
from supervise.staff.services import create_user
from tests.web.test_admin import PASSWORD, changes, login, org

JOB_ID = "explode-42"


def explode(case_id: int) -> None:
    """A job that fails the way a real one does: a traceback ending in one line saying why."""
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError(f"boom for case {case_id}\n[parameters: secret-looking detail]") from exc


@pytest.fixture
def admin_client(app, demo):
    """(client, csrf token) signed in as demo-admin, a system admin."""
    client = app.test_client()
    return client, login(client, "demo-admin")


@pytest.fixture
def failed_job(app, demo):
    conn = redis_connection(app)
    conn.flushdb()
    Queue("default", connection=conn).enqueue(explode, 42, job_id=JOB_ID)
    SimpleWorker(["default"], connection=conn).work(burst=True)
    assert JOB_ID in Queue("default", connection=conn).failed_job_registry
    return conn


def test_the_page_lists_queues_workers_and_failed_jobs(app, admin_client, failed_job):
    client, _ = admin_client
    assert 'href="/staff/admin/jobs"' in client.get("/staff/admin/").get_data(as_text=True)
    Queue("reports", connection=failed_job).enqueue("workers.jobs.build_weekly_reports")
    worker = Worker(["default", "sweeps"], connection=failed_job, name="web-test-worker")
    worker.register_birth()
    try:
        page = client.get("/staff/admin/jobs")
    finally:
        worker.register_death()
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "style=" not in html and "<script" not in html
    assert '<tr id="queue-default">' in html and '<td class="num" data-count="failed">1</td>' in html
    reports_row = html.split('<tr id="queue-reports">')[1].split("</tr>")[0]
    assert '<td class="num" data-count="queued">1</td>' in reports_row
    assert "web-test-worker" in html and "default、sweeps" in html
    assert JOB_ID in html and "tests.web.test_jobs_admin.explode(42)" in html
    assert "ValueError: boom for case 42" in html
    assert "secret-looking" not in html  # only the exception's own first line is shown
    assert f'action="/staff/admin/jobs/{JOB_ID}/retry"' in html
    assert f'action="/staff/admin/jobs/{JOB_ID}/delete"' in html


def test_retry_moves_a_failed_job_back_to_its_queue_and_is_audited(app, admin_client, failed_job):
    client, token = admin_client
    url = f"/staff/admin/jobs/{JOB_ID}/retry"
    assert client.post(url).status_code == 400  # no CSRF token
    assert JOB_ID in Queue("default", connection=failed_job).failed_job_registry

    response = client.post(url, data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/admin/jobs")
    queue = Queue("default", connection=failed_job)
    assert queue.job_ids == [JOB_ID] and JOB_ID not in queue.failed_job_registry
    assert Job.fetch(JOB_ID, connection=failed_job).get_status() == "queued"
    (entry,) = changes("job.retry")
    assert entry.detail == {
        "what": "job.retry",
        "job": JOB_ID,
        "queue": "default",
        "function": "tests.web.test_jobs_admin.explode",
    }
    # A second press finds nothing to retry: no second audit row, the job queued once.
    again = client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "已不在失败列表中" in again.get_data(as_text=True)
    assert len(changes("job.retry")) == 1 and queue.job_ids == [JOB_ID]

    # The worker runs it again (and it fails again): the page shows it failed once more.
    SimpleWorker(["default"], connection=failed_job).work(burst=True)
    assert JOB_ID in queue.failed_job_registry


def test_delete_removes_a_failed_job(app, admin_client, failed_job):
    client, token = admin_client
    response = client.post(f"/staff/admin/jobs/{JOB_ID}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert not Job.exists(JOB_ID, connection=failed_job)
    assert JOB_ID not in Queue("default", connection=failed_job).failed_job_registry
    (entry,) = changes("job.delete")
    assert entry.detail["job"] == JOB_ID
    assert "没有失败的任务" in client.get("/staff/admin/jobs").get_data(as_text=True)
    # Unknown ids and ids that are not job ids are 404.
    assert client.post(f"/staff/admin/jobs/{JOB_ID}/delete", data={"csrf_token": token}).status_code == 404
    assert client.post("/staff/admin/jobs/..%20x/retry", data={"csrf_token": token}).status_code == 404


def test_a_job_that_is_not_failed_is_not_retried_from_here(app, admin_client):
    client, token = admin_client
    conn = redis_connection(app)
    Queue("default", connection=conn).enqueue(explode, 7, job_id="queued-7")
    response = client.post("/staff/admin/jobs/queued-7/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert Job.exists("queued-7", connection=conn) and changes("job.delete") == []


def test_the_jobs_page_is_for_system_admins_only(app, client, failed_job):
    create_user(db.session, username="town-admin", org=org("demo-town-1"), role="admin", password=PASSWORD)
    # An admin of a discipline body below the top (a township's 纪委) is not a system admin either.
    create_user(
        db.session, username="jw-admin", org=org("demo-town-1-jw"), role="admin,intake", password=PASSWORD
    )
    db.session.commit()
    for username in ("town-admin", "jw-admin", "demo-supervisor", "demo-intake", "demo-group-1-intake"):
        other = app.test_client()
        token = login(other, username)
        assert other.get("/staff/admin/jobs").status_code == 403, username
        assert other.post(f"/staff/admin/jobs/{JOB_ID}/retry", data={"csrf_token": token}).status_code == 403
    assert client.get("/staff/admin/jobs").status_code in (302, 401)  # not signed in
    assert JOB_ID in Queue("default", connection=failed_job).failed_job_registry
    assert changes("job.retry") == []


def test_the_page_says_so_when_redis_is_away(app, admin_client, tmp_path):
    client, token = admin_client
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"unix://{tmp_path}/gone.sock"
    app.extensions.pop("supervise.redis", None)
    try:
        page = client.get("/staff/admin/jobs")
        retry = client.post(f"/staff/admin/jobs/{JOB_ID}/retry", data={"csrf_token": token})
    finally:
        app.extensions.pop("supervise.redis", None)
        app.config["REDIS_URL"] = real_url
    assert page.status_code == 200 and 'id="redis-error"' in page.get_data(as_text=True)
    assert retry.status_code == 302 and changes("job.retry") == []
