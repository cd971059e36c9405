"""PostgreSQL goes away for a while: 503 with Retry-After, never 500, and none after it is back.

The app runs against a private PostgreSQL, with a staff member signed in and the connection pool
warm. The server stops: an API submission, the citizen form and a staff page each answer 503 with
Retry-After in their own shape (JSON `unavailable`, the citizen page, the desk's page), and nothing
of the refused submissions is saved. The server starts again: the very next requests succeed —
the pooled connections that died with the old server are replaced before use (pool_pre_ping).
"""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests.conftest import TEST_FERNET_KEY, VALID_SUBMISSION

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OUTAGE_CONTENT = "停库期间提交的内容，不应被保存下来。" * 2


def count_outage_cases(app) -> int:
    from supervise.cases.models import Case
    from supervise.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count(Case.id)).where(Case.subject == "停库期间"))


def demo_app(tmp_path, private_postgres, private_redis, monkeypatch):
    """An app on the private PostgreSQL with the demo orgs and accounts; its settings."""
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))
    from flask_migrate import upgrade

    from supervise.app import create_app
    from supervise.demo import load_demo
    from supervise.extensions import db

    settings = {
        "SQLALCHEMY_DATABASE_URI": private_postgres.url,
        "REDIS_URL": private_redis.url,
        "REDIS_EMBEDDED": False,
        "SECRET_KEY": "test-secret",
        "ENCRYPTION_KEY": TEST_FERNET_KEY,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # As tests/conftest.py app_config: the desk's 2FA has its own tests (tests/web/test_two_factor.py).
        "TWO_FACTOR_REQUIRED_ROLES": "",
    }
    app = create_app(settings)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        load_demo(sample_cases=False)
        db.session.remove()
    return app, settings


@pytest.mark.slow
def test_database_outage_answers_503_and_recovers(tmp_path, private_postgres, private_redis, monkeypatch):
    from supervise.app import create_app

    app, settings = demo_app(tmp_path, private_postgres, private_redis, monkeypatch)

    staff = app.test_client()
    token = CSRF.search(staff.get("/staff/login").get_data(as_text=True)).group(1)
    signed_in = staff.post(
        "/staff/login",
        data={"username": "demo-town-1-jw-intake", "password": "demo-password", "csrf_token": token},
    )
    assert signed_in.status_code == 302
    assert staff.get("/staff/").status_code == 200  # the pool holds a live connection now
    citizen = app.test_client()
    # A second web process that sits idle through the outage: its pooled connection dies unseen.
    idle = create_app(settings).test_client()
    assert idle.post("/api/v1/cases", json=VALID_SUBMISSION).status_code == 201
    form = {**VALID_SUBMISSION, "subject": "停库期间", "content": OUTAGE_CONTENT, "consent": "yes"}
    outage = {**VALID_SUBMISSION, "subject": "停库期间", "content": OUTAGE_CONTENT}

    private_postgres.stop("fast")
    try:
        api = citizen.post("/api/v1/cases", json=outage)
        assert api.status_code == 503, api.get_data(as_text=True)
        assert int(api.headers["Retry-After"]) > 0
        assert api.get_json()["error"]["code"] == "unavailable"

        page = citizen.post("/report", data=form, headers={"X-Requested-With": "XMLHttpRequest"})
        assert page.status_code == 503
        assert int(page.headers["Retry-After"]) > 0
        html = page.get_data(as_text=True)
        # The citizen page: citizen.js shows its heading and explanation on the form, which still
        # holds everything typed.
        assert "系统繁忙，暂时无法访问，请稍后再试" in html and 'id="unavailable"' in html
        assert 'class="staff"' not in html

        desk = staff.get("/staff/")
        assert desk.status_code == 503
        assert int(desk.headers["Retry-After"]) > 0
        html = desk.get_data(as_text=True)
        assert "系统繁忙，暂时无法访问，请稍后再试" in html and 'class="staff"' in html
    finally:
        private_postgres.start()

    # Back: the very next requests succeed (the dead pooled connections are not handed out).
    created = idle.post("/api/v1/cases", json=VALID_SUBMISSION)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert staff.get("/staff/").status_code == 200
    assert count_outage_cases(app) == 0  # nothing of the refused submissions was saved
    created = citizen.post("/api/v1/cases", json=VALID_SUBMISSION)
    assert created.status_code == 201, created.get_data(as_text=True)


@pytest.mark.slow
def test_citizen_form_keeps_what_was_typed_through_a_503(
    tmp_path,
    private_postgres,
    private_redis,
    monkeypatch,
    browser,
):
    """In Chromium: the database stops while a citizen fills the form; "提交" answers 503, the form
    stays with every field as typed and says why; once it is back, the same form goes through."""
    app, _settings = demo_app(tmp_path, private_postgres, private_redis, monkeypatch)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    page = browser.new_page(locale="zh-CN")
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/report")
        page.select_option("#category", VALID_SUBMISSION["category"])
        page.fill("#subject", "停库期间")
        page.fill("#content", OUTAGE_CONTENT)
        page.check("#consent")
        private_postgres.stop("fast")
        try:
            page.click("button[type=submit]")
            summary = page.locator("#form-errors")
            summary.wait_for(timeout=10_000)
            assert "系统繁忙，暂时无法访问，请稍后再试" in summary.inner_text()
            assert page.url.endswith("/report")  # still the form, not an error page
            assert page.input_value("#subject") == "停库期间"
            assert page.input_value("#content") == OUTAGE_CONTENT
            assert page.input_value("#category") == VALID_SUBMISSION["category"]
            assert page.is_checked("#consent")
        finally:
            private_postgres.start()
        assert count_outage_cases(app) == 0
        page.click("button[type=submit]")  # the same form, once the database is back
        page.wait_for_url("**/report/submitted", timeout=10_000)
        assert count_outage_cases(app) == 1
    finally:
        page.close()
        server.shutdown()
        thread.join(5)
