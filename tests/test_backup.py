"""`supervise backup` / `supervise restore`: the SQLite default, with its photos and secrets.

These tests build their own SQLite data dirs (also in a PostgreSQL run: the commands are for
the SQLite default; PostgreSQL is backed up with pg_dump)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from PIL import Image
from rq import SimpleWorker
from sqlalchemy import select

from supervise.app import create_app
from supervise.backup import BackupError, create_backup, restore_backup
from supervise.cli import main
from supervise.extensions import db
from tests.conftest import REPORTER_NAMES, REPORTER_PHONES, VALID_SUBMISSION, verified


def image(kind: str, colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, kind)
    return out.getvalue()


@pytest.fixture
def make_app(services, monkeypatch):
    """`make_app(dir)` → an app on a SQLite database in `dir`, its secrets generated there."""

    def _make(data_dir: Path):
        monkeypatch.setenv("SUPERVISE_DATA_DIR", str(data_dir))
        return create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{data_dir / 'supervise.db'}",
                "REDIS_URL": services["redis_url"],
                "REDIS_EMBEDDED": False,
                "TESTING": True,
                "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            }
        )

    yield _make
    from redis import Redis

    Redis.from_url(services["redis_url"]).flushdb()  # the jobs these apps enqueued


def cli(app, *args):
    return app.test_cli_runner().invoke(main, list(args))


def snapshot(app) -> dict:
    """Every row of cases, events and attachments, the decrypted reporters, the photos' hashes."""
    from supervise.cases.models import Attachment, Case, Event
    from supervise.cases.services import identity_box, upload_store

    with app.app_context():
        tables = {
            model.__tablename__: [
                dict(row._mapping) for row in db.session.execute(select(model.__table__).order_by(model.id))
            ]
            for model in (Case, Event, Attachment)
        }
        box, store = identity_box(), upload_store()
        reporters = [
            (box.open(c.reporter_name_enc), box.open(c.reporter_phone_enc))
            for c in db.session.scalars(select(Case).order_by(Case.id))
        ]
        photos = {
            sha: hashlib.sha256(store.get(sha)).hexdigest()
            for a in db.session.scalars(select(Attachment))
            for sha in (a.sha256, a.thumb_sha256)
            if sha
        }
        db.session.remove()
        db.engine.dispose()
    return {"tables": tables, "reporters": reporters, "photos": photos}


def test_backup_then_restore_into_an_empty_data_dir(tmp_path, make_app):
    from supervise.cases import services
    from supervise.cases.workflow import Actor
    from supervise.demo import load_demo
    from supervise.queueing import redis_connection
    from supervise.staff.models import User
    from workers.context import bind_app

    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    source = make_app(source_dir)
    assert cli(source, "init").exit_code == 0
    with source.app_context():
        load_demo(sample_cases=False)
        case, code = services.submit_case(
            verified({**VALID_SUBMISSION, "name": REPORTER_NAMES[0], "phone": REPORTER_PHONES[0]}),
            photos=[image("JPEG", (200, 30, 30)), image("PNG", (30, 200, 30))],
        )
        ref = case.tracking_no
        services.submit_case(VALID_SUBMISSION)
        intake = Actor.staff(db.session.scalar(select(User).where(User.username == "demo-intake")))
        services.perform_action(ref, intake, {"action": "accept", "version": case.version})
        services.add_supplement(ref, code, "补充一张照片。", [image("WEBP", (30, 30, 200))])
        bind_app(source)  # thumbnails (and the notices) by a real worker
        SimpleWorker(["default"], connection=redis_connection()).work(burst=True)
        db.session.remove()
    before = snapshot(source)
    assert len(before["tables"]["cases"]) == 2 and len(before["tables"]["events"]) >= 3
    assert len(before["tables"]["attachments"]) == 3 and len(before["photos"]) == 6  # + thumbnails

    archive = tmp_path / "backups" / "supervise.tar.gz"
    made = cli(source, "backup", "-o", str(archive))
    assert made.exit_code == 0, made.output
    assert "2 case(s)" in made.output and "6 photo file(s)" in made.output
    assert "holds the secrets" in made.output  # said loudly: the archive must be kept safe
    assert archive.stat().st_mode & 0o077 == 0

    target = make_app(target_dir)  # a fresh data dir: it generates secrets of its own
    assert (target_dir / "encryption_key").read_text() != (source_dir / "encryption_key").read_text()
    restored = cli(target, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    assert "WARNING" not in restored.output

    reopened = make_app(target_dir)  # the restored secrets are read at start
    assert snapshot(reopened) == before
    assert before["reporters"][0] == (REPORTER_NAMES[0], REPORTER_PHONES[0])
    with reopened.app_context():  # the access code still opens the case (keyed by SECRET_KEY)
        assert services.find_for_citizen(ref, code).tracking_no == ref
        db.engine.dispose()

    again = cli(reopened, "restore", str(archive))
    assert again.exit_code != 0 and "already exists" in again.output and "--force" in again.output
    forced = cli(reopened, "restore", "--force", str(archive))
    assert forced.exit_code == 0, forced.output
    assert snapshot(make_app(target_dir)) == before


def test_backup_refuses_postgresql_with_the_pg_dump_recipe(tmp_path):
    config = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@db/supervise", "DATA_DIR": str(tmp_path)}
    with pytest.raises(BackupError, match="pg_dump") as refused:
        create_backup(config, tmp_path / "x.tar.gz")
    assert "pg_restore" in str(refused.value) and "SUPERVISE_ENCRYPTION_KEY" in str(refused.value)
    with pytest.raises(BackupError, match="pg_dump"):
        restore_backup(config, tmp_path / "x.tar.gz")


def test_postgresql_refusal_names_the_generated_key_files_first(tmp_path):
    """Issue 14: pg_dump and the uploads tar alone lost keys the app had generated in the data dir
    (no .env): access codes answered 404 and real-name pages 500 after the restore."""
    (tmp_path / "secret_key").write_text("s" * 64)
    (tmp_path / "encryption_key").write_text("from-the-environment-instead")
    config = {
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@db/supervise",
        "DATA_DIR": str(tmp_path),
        "SECRET_KEY": "s" * 64,  # generated: the file's value
        "ENCRYPTION_KEY": "another-key",  # from the environment: not the file's
    }
    with pytest.raises(BackupError) as refused:
        create_backup(config, tmp_path / "x.tar.gz")
    first, *rest = str(refused.value).splitlines()
    assert "generated files in the data dir (secret_key)" in first
    assert 'tar -czf uploads.tgz -C "$SUPERVISE_DATA_DIR" uploads secret_key' in first
    assert "pg_dump" in "\n".join(rest)


def test_restore_refuses_what_a_backup_never_holds(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name in ("manifest.json", "database/supervise.db", "../../etc/cron.d/x"):
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'target' / 'supervise.db'}"}
    with pytest.raises(BackupError, match="unexpected entry"):
        restore_backup({**config, "DATA_DIR": str(tmp_path / "target")}, evil)
    assert not (tmp_path / "target" / "supervise.db").exists()
