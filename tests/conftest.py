"""Test set-up on real services.

With nothing set: a SQLite file and an embedded redis-server on a unix socket, both in a temp dir.
With DATABASE_URL / REDIS_URL set (CI's second run): that PostgreSQL and that Redis. The schema is
built once per run by the real migrations; each test then starts from empty tables and an empty
Redis db.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from supervise.app import create_app
from supervise.extensions import db

KEEP_TABLES = {"calendar_days", "calendar_years", "alembic_version"}

# Every reporter name and phone number the tests submit (tests/unit/test_logs.py checks the test
# sources use no others). No log line of a whole run may contain one of them, nor any access code
# issued during the run: see _log_of_the_run and pytest_sessionfinish below.
REPORTER_NAMES = ("张三", "张三丰", "李四", "王五", "赵六")
REPORTER_PHONES = ("13812345678", "13900001111", "13700002222", "13600003333", "13700001234")
REPORTER_SECRETS = REPORTER_NAMES + REPORTER_PHONES
ISSUED_ACCESS_CODES: list[str] = []
_RUN_LOG: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _log_of_the_run(tmp_path_factory):
    """Capture every log record of the run (DEBUG and up, with tracebacks) into one file, and
    record every access code issued, for the check in pytest_sessionfinish."""
    from supervise.cases import services as case_services

    path = tmp_path_factory.getbasetemp() / "log-of-the-run.txt"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    _RUN_LOG.append(path)
    issue = case_services.new_access_code

    def recorded_access_code() -> str:
        code = issue()
        ISSUED_ACCESS_CODES.append(code)
        return code

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOG_LEVEL", "DEBUG")  # every create_app of the run logs everything
        patch.setattr(case_services, "new_access_code", recorded_access_code)
        yield path
    root.removeHandler(handler)
    handler.close()


def leaked_secrets(log_text: str) -> list[str]:
    """The reporter names, phones and access codes (any spelling of one) found in `log_text`."""
    upper = log_text.upper()
    found = [secret for secret in REPORTER_SECRETS if secret in log_text]
    for code in ISSUED_ACCESS_CODES:
        if code.upper() in upper or code.replace("-", "").upper() in upper:
            found.append(code)
    return list(dict.fromkeys(found))


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any log line of it named a reporter or showed an access code."""
    if not _RUN_LOG or not _RUN_LOG[0].exists():
        return
    leaked = leaked_secrets(_RUN_LOG[0].read_text(encoding="utf-8", errors="replace"))
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"reporter identity or access codes in the log of this run: {len(leaked)} found "
            f"(e.g. {leaked[0][:2]}…); see {_RUN_LOG[0]}"
        )
        if reporter:
            reporter.write_sep("!", message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """Database URL and Redis URL for the whole run (starting the embedded Redis if needed)."""
    data_dir = tmp_path_factory.mktemp("data")
    os.environ["SUPERVISE_DATA_DIR"] = str(data_dir)
    redis_proc = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        from supervise.queueing import start_embedded_redis

        redis_proc = start_embedded_redis(data_dir)
        redis_url = f"unix://{data_dir / 'redis.sock'}?db=0"
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'test.db'}"
    yield {"database_url": database_url, "redis_url": redis_url, "data_dir": Path(data_dir)}
    if redis_proc:
        redis_proc.terminate()
        redis_proc.wait(10)


def app_config(services, **extra):
    return {
        "SQLALCHEMY_DATABASE_URI": services["database_url"],
        "REDIS_URL": services["redis_url"],
        "REDIS_EMBEDDED": False,
        "SECRET_KEY": "test-secret",
        "ENCRYPTION_KEY": TEST_FERNET_KEY,
        "TESTING": True,
        # Cheap hashing in tests only: scrypt costs ~0.1 s an account, and every test makes seven.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Two-factor sign-in required of nobody: the tests written before it sign in with a password
        # alone. tests/*/test_two_factor.py put back the real default (supervisor,admin).
        "TWO_FACTOR_REQUIRED_ROLES": "",
        **extra,
    }


TEST_FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def _schema(services):
    """Migrate an empty database to head once (this is also the migrations' first test)."""
    from flask_migrate import upgrade

    from supervise.deadlines.calendar import seed_from_chinesecalendar

    app = create_app(app_config(services))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=app.extensions["migrate"].directory)
        seed_from_chinesecalendar(db.session)
        db.session.commit()
        db.engine.dispose()
    return True


@pytest.fixture
def app(services, _schema):
    app = create_app(app_config(services))
    from workers.context import bind_app

    bind_app(app)
    # Requests reuse the test's app context (and so its `g`): forget what the previous request
    # cached there (its user, its CSRF token), as a fresh context in production would.
    from flask import g

    @app.before_request
    def _fresh_request_globals() -> None:
        for name in ("_login_user", "csrf_token", "auth_via", "_flask_babel"):
            g.pop(name, None)

    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        from supervise.queueing import redis_connection

        redis_connection(app).flushdb()
        db.engine.dispose()


def _empty_tables() -> None:
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def demo(app):
    """The demo county without sample cases."""
    from supervise.demo import load_demo

    return load_demo(sample_cases=False)


@pytest.fixture
def auth(demo):
    """`auth("demo-intake")` → headers with a fresh bearer token for that account."""
    from sqlalchemy import select

    from supervise.staff.models import User
    from supervise.staff.services import issue_token

    cache: dict[str, dict[str, str]] = {}

    def headers(username: str) -> dict[str, str]:
        if username not in cache:
            user = db.session.scalar(select(User).where(User.username == username))
            token = issue_token(db.session, user)
            db.session.commit()
            cache[username] = {"Authorization": f"Bearer {token}"}
        return cache[username]

    return headers


VALID_SUBMISSION = {
    "category": "petty_corruption",
    "subject": "某窗口工作人员",
    "content": "办理业务时被要求先请吃饭才给盖章，已经第三次了。",
}


def issue_phone_code(phone: str) -> str:
    """A live SMS code for `phone`, through the real service (its row and its outbox message
    committed), read from the SMS the delivery job would send. Without the per-number caps of
    POST /api/v1/phone-codes: tests file several real-name cases for one number within a minute."""
    from sqlalchemy import select

    from supervise.intake import verification
    from supervise.notify.channels import SMS_SOURCES
    from supervise.notify.models import OutboxMessage

    row = verification.create_code(db.session, phone)
    db.session.commit()
    message = db.session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.kind == "phone_code",
            OutboxMessage.payload["verification_id"].as_integer() == row.id,
        )
    )
    return SMS_SOURCES["phone_code"](db.session, message).params["code"]


def verified(fields: dict) -> dict:
    """`fields` with a real SMS code for its phone (real-name needs one since issue 18), unless
    the test gives `phone_code` itself (None: submit without one)."""
    if fields.get("phone") and fields.get("name") and "phone_code" not in fields:
        return {**fields, "phone_code": issue_phone_code(fields["phone"])}
    return {k: v for k, v in fields.items() if not (k == "phone_code" and v is None)}


@pytest.fixture
def submit(client, demo):
    """`submit(**fields)` → the JSON answer of POST /api/v1/cases (asserting 201). A name and
    phone come with a verified code (`verified`): pass phone_code=None to submit without one."""

    def _submit(**fields):
        response = client.post("/api/v1/cases", json=verified({**VALID_SUBMISSION, **fields}))
        assert response.status_code == 201, response.get_json()
        ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
        return response.get_json()

    return _submit


# -- the browser: one Chromium for the whole run (tests/browser, and fault tests that look at a page);
# defined here, not in tests/browser/conftest.py, so every directory shares the one instance (a
# second sync Playwright in the same thread cannot start).

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags this sandboxed machine needs: no sandbox as root, no background network chatter.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: .ci/run installs Debian's chromium")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def flags_from_any_sample(app):
    """Reports' threshold flags from any sample, as before issue 17's minimum (5): fixtures whose
    rates rest on a handful of cases (the minimum has its own tests, tests/jobs/test_report_min_sample.py)."""
    from supervise.settings import set_value

    set_value("REPORT_MIN_SAMPLE", 1)
    db.session.commit()
