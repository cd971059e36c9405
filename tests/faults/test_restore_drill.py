"""Issue 14, item 5: a restore drill, as docs/deploy.md tells an operator to practise it.

A SQLite data dir whose keys the app generated itself (no .env: `secret_key`, `encryption_key`
in the data dir) takes submissions from a thread while `supervise backup` runs; the archive is
restored with `supervise restore` into an empty data dir (which first generates keys of its own,
as any start does); then every restored case opens with its tracking number and access code,
every photo of it serves, and the real-name cases render on the intake desk (no InvalidToken).

PostgreSQL is not drilled here: `supervise backup` refuses it with the pg_dump recipe, which now
names the generated key files when the data dir has them (test_backup.py).
"""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from supervise.app import create_app
from supervise.backup import BackupError, create_backup, restore_backup
from supervise.cli import main
from supervise.extensions import db
from tests.conftest import REPORTER_NAMES, REPORTER_PHONES, VALID_SUBMISSION, verified

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PHOTO_RE = re.compile(r'href="(/files/[^"]+)"')


def photo(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (seed * 37 % 256, seed * 91 % 256, 120)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def make_app(services, monkeypatch):
    """`make_app(dir)` → an app on SQLite in `dir`, its keys generated there (no .env)."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SUPERVISE_ENCRYPTION_KEY", raising=False)

    def _make(data_dir: Path):
        monkeypatch.setenv("SUPERVISE_DATA_DIR", str(data_dir))
        return create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{data_dir / 'supervise.db'}",
                "REDIS_URL": services["redis_url"],
                "REDIS_EMBEDDED": False,
                "TESTING": True,
                "RATELIMIT_ENABLED": False,  # one client posts and looks up dozens of cases
                "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            }
        )

    yield _make
    from redis import Redis

    Redis.from_url(services["redis_url"]).flushdb()  # the jobs these apps enqueued


class Submitter(threading.Thread):
    """Posts cases with photos through the API until told to stop; real-name every other one."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.client, self.issued, self.stop, self.errors = app.test_client(), {}, threading.Event(), []
        self.app = app

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 60:
            fields = dict(VALID_SUBMISSION)
            if n % 2 == 0:
                fields |= {"name": REPORTER_NAMES[n % 5], "phone": REPORTER_PHONES[n % 5]}
                with self.app.app_context():  # the number's SMS code (issue 18)
                    fields = verified(fields)
            response = self.client.post(
                "/api/v1/cases",
                data={**fields, "photos": [(io.BytesIO(photo(n)), "p.jpg")]},
                content_type="multipart/form-data",
            )
            if response.status_code != 201:
                self.errors.append(response.get_data(as_text=True)[:300])
                return
            body = response.get_json()
            self.issued[body["tracking_no"]] = (body["access_code"], n % 2 == 0)
            n += 1


def staff_login(client, username: str) -> None:
    token = TOKEN_RE.search(client.get("/staff/login").get_data(as_text=True)).group(1)
    signed_in = client.post(
        "/staff/login", data={"username": username, "password": "demo-password", "csrf_token": token}
    )
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:300]


def test_backup_during_submissions_then_restore_opens_every_case(tmp_path, make_app):
    from supervise.demo import load_demo

    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    source = make_app(source_dir)
    assert source.test_cli_runner().invoke(main, ["init"]).exit_code == 0
    with source.app_context():
        load_demo(sample_cases=False)
        db.session.remove()
    assert (source_dir / "encryption_key").is_file()  # the keys live in the data dir, no .env

    submitter = Submitter(source)
    submitter.start()
    deadline = time.monotonic() + 20
    while len(submitter.issued) < 4 and time.monotonic() < deadline and submitter.is_alive():
        time.sleep(0.02)
    archive = tmp_path / "backups" / "drill.tar.gz"
    before = len(submitter.issued)
    made = source.test_cli_runner().invoke(main, ["backup", "-o", str(archive)])
    during = len(submitter.issued)
    time.sleep(0.3)  # submissions go on after the snapshot: the archive must not care
    submitter.stop.set()
    submitter.join(30)
    assert made.exit_code == 0, made.output
    assert not submitter.errors, submitter.errors
    assert len(submitter.issued) > during >= before >= 4

    target = make_app(target_dir)  # an empty data dir: it generates keys of its own first
    assert (target_dir / "secret_key").read_text() != (source_dir / "secret_key").read_text()
    restored = target.test_cli_runner().invoke(main, ["restore", str(archive)])
    assert restored.exit_code == 0, restored.output
    assert "WARNING" not in restored.output
    for name in ("secret_key", "encryption_key"):
        assert (target_dir / name).read_text() == (source_dir / name).read_text()
        assert (target_dir / name).stat().st_mode & 0o077 == 0

    app = make_app(target_dir)  # the restored processes start: they read the restored keys
    from supervise.cases.models import Case

    with app.app_context():
        refs = db.session.scalars(select(Case.tracking_no)).all()
        db.session.remove()
    assert before <= len(refs) < len(submitter.issued)  # those committed when the snapshot was taken
    assert set(refs) <= set(submitter.issued)  # nothing half-made

    citizen, desk = app.test_client(), app.test_client()
    staff_login(desk, "demo-intake")
    real_names = 0
    for ref in refs:
        code, real_name = submitter.issued[ref]
        page = citizen.post("/track", data={"tracking_no": ref, "access_code": code})
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and ref in html, (ref, page.status_code)
        links = PHOTO_RE.findall(html)
        assert links, ref
        for link in links:
            served = citizen.get(link.replace("&amp;", "&"))
            assert served.status_code == 200 and served.data[:2] == b"\xff\xd8", (ref, link)
        staff = desk.get(f"/staff/cases/{ref}")
        assert staff.status_code == 200, (ref, staff.status_code)
        if real_name:
            real_names += 1
            assert "**" in staff.get_data(as_text=True)  # the masked name: decrypted with the key
    assert real_names >= 2
    with app.app_context():
        db.engine.dispose()
    with source.app_context():
        db.engine.dispose()


def test_restore_refuses_a_key_in_the_environment_that_differs(tmp_path, make_app, monkeypatch):
    """A target whose SUPERVISE_ENCRYPTION_KEY (environment) is not the backup's: refused before
    anything is written, in one line that says what to do."""
    from cryptography.fernet import Fernet

    source = make_app(tmp_path / "source")
    assert source.test_cli_runner().invoke(main, ["init"]).exit_code == 0
    archive = tmp_path / "a.tar.gz"
    with source.app_context():
        create_backup(source.config, archive)
        db.engine.dispose()
    monkeypatch.setenv("SUPERVISE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    target = make_app(tmp_path / "target")
    with pytest.raises(BackupError) as refused:
        restore_backup(target.config, archive)
    message = str(refused.value)
    assert message.startswith("refusing to restore: SUPERVISE_ENCRYPTION_KEY in the environment differs")
    assert "unset SUPERVISE_ENCRYPTION_KEY" in message and "\n" not in message
    assert not (tmp_path / "target" / "supervise.db").exists()
