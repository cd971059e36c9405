"""Issue 14, item 6: no orphan photo files.

- a write that fails (here a real EFBIG: the process's file-size limit, RLIMIT_FSIZE, is below the
  photo's size, so the kernel refuses the write part-way) leaves no temp file, partial or not;
- photos stored before a commit that fails are removed again (the commit is made to raise by a
  `before_commit` listener, as a database going away at that moment would), unless a committed
  row names the same photo;
- the daily sweep removes temp files and photo files no row names, older than a day only, logs
  them, and runs once a day (claimed in `periodic_runs`).
"""

from __future__ import annotations

import io
import logging
import os
import resource
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from supervise.cases.models import Attachment, Case
from supervise.cases.services import make_context, upload_store
from supervise.extensions import db
from supervise.intake.storage import FilesystemStore, StoreUnavailable
from supervise.intake.uploads import sweep_uploads
from supervise.reports.models import PeriodicRun
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION

DAY = 24 * 3600


def photo(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def uploads(app, tmp_path):
    """This test's own photo store (the data dir is the run's, shared)."""
    app.config["DATA_DIR"] = str(tmp_path)
    return tmp_path / "uploads"


def post_case(client, *photos: bytes):
    response = client.post(
        "/api/v1/cases",
        data={**VALID_SUBMISSION, "photos": [(io.BytesIO(p), f"p{i}.png") for i, p in enumerate(photos)]},
        content_type="multipart/form-data",
    )
    if response.status_code == 201:
        ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
    return response


def test_a_write_that_fails_part_way_leaves_no_temp_file(tmp_path):
    store = FilesystemStore(tmp_path / "uploads")
    data = os.urandom(64 * 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))
    try:
        with pytest.raises(StoreUnavailable):
            store.put(data)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert files_under(store.root) == []  # the partial 16 KB temp file was removed
    store.put(data)  # and the store works again
    assert len(files_under(store.root)) == 1


def test_photos_of_a_commit_that_fails_are_removed(app, client, demo, uploads):
    kept = photo((10, 200, 10))
    assert post_case(client, kept).status_code == 201  # a committed photo, also in the next post
    committed = files_under(uploads)
    assert len(committed) == 1

    def database_gone(session):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(Session, "before_commit", database_gone)
    try:
        failed = post_case(client, photo((200, 10, 10)), photo((10, 10, 200)), kept)
        assert failed.status_code >= 500  # the app answers "database unavailable"
    finally:
        event.remove(Session, "before_commit", database_gone)
    db.session.remove()
    # The two new photos are gone; the one a committed row names stays.
    assert files_under(uploads) == committed
    assert db.session.scalar(select(func.count()).select_from(Case)) == 1


def test_a_retried_commit_keeps_the_photos_of_the_attempt_that_commits(app, client, demo, uploads):
    """submit_case retries on IntegrityError (a tracking-number collision): the rollback removes
    the first attempt's files and the retry stores them again."""
    from supervise.cases import services

    numbers = iter(["TEST-COLLIDE-1", "TEST-COLLIDE-1", "TEST-COLLIDE-2"])
    original = services.new_tracking_no
    services.new_tracking_no = lambda: next(numbers)
    try:
        assert post_case(client, photo((1, 2, 3))).status_code == 201
        assert post_case(client, photo((4, 5, 6))).status_code == 201  # collided once, then retried
    finally:
        services.new_tracking_no = original
    store = upload_store()
    shas = db.session.scalars(select(Attachment.sha256)).all()
    assert len(shas) == 2 and all(store.exists(s) for s in shas)
    assert len(files_under(uploads)) == 2


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_daily_sweep_removes_old_temp_files_and_orphans_once_a_day(app, client, demo, uploads, caplog):
    assert post_case(client, photo((50, 60, 70))).status_code == 201
    (named,) = [uploads / f for f in files_under(uploads)]
    age(named, 3 * DAY)  # old, but a row names it: kept
    store = FilesystemStore(uploads)
    old_orphan = store.path(store.put(photo((1, 1, 1))))
    young_orphan = store.path(store.put(photo((2, 2, 2))))  # an upload in flight: kept
    age(old_orphan, DAY + 60)
    old_temp = old_orphan.parent / ".upload-abc123"
    old_temp.write_bytes(b"partial")
    legacy_temp = named.parent / "tmpq1w2e3"  # what the store's mkstemp wrote before issue 14
    legacy_temp.write_bytes(b"partial")
    young_temp = named.parent / ".upload-inflight"
    young_temp.write_bytes(b"being written")
    for p in (old_temp, legacy_temp):
        age(p, 2 * DAY)

    caplog.set_level(logging.INFO, logger="supervise.intake.storage")
    assert sweep_uploads() == {"temp_files": 2, "orphans": 1}
    remaining = set(files_under(uploads))
    assert remaining == {str(p.relative_to(uploads)) for p in (named, young_orphan, young_temp)}
    assert old_orphan.name in caplog.text and "no attachment names it" in caplog.text
    assert ".upload-abc123" in caplog.text and "tmpq1w2e3" in caplog.text

    # Claimed for the day: a second run (the hourly catch-up, a second cron) does nothing.
    age(young_orphan, 2 * DAY)
    assert sweep_uploads() is None
    assert young_orphan.exists()
    assert db.session.scalar(select(func.count()).select_from(PeriodicRun)) == 1
    # The next day it runs again, and a run with nothing to do removes nothing.
    # The next day it runs again (what was young is a day old by then), and a run with nothing
    # left to do removes nothing.
    next_day = make_context().now + timedelta(days=1)
    assert sweep_uploads(next_day) == {"temp_files": 1, "orphans": 1}
    assert sweep_uploads(next_day + timedelta(days=1)) == {"temp_files": 0, "orphans": 0}
    assert files_under(uploads) == [str(named.relative_to(uploads))]


def test_photos_of_a_submission_refused_after_they_were_stored_are_removed(app, client, demo, uploads):
    """An unknown 被反映单位 is found after the photos are stored: no commit, no rollback call in the
    service; the request's session ends at teardown, and the files go with it."""
    response = client.post(
        "/api/v1/cases",
        data={
            **VALID_SUBMISSION,
            "subject_unit": "no-such-unit",
            "photos": [(io.BytesIO(photo((9, 9, 9))), "a.png")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422, response.get_json()
    assert "subject_unit" in response.get_json()["error"]["details"]
    db.session.remove()
    assert files_under(uploads) == []
