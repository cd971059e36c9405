"""Reference data while Redis is away (supervise/refdata.py): the stamp cannot be read or bumped.

Submissions go on from the process's copy, a change committed in this process is still seen at
once (its own copy is dropped), and once Redis is back the stamp works again.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from supervise import refdata
from tests.conftest import VALID_SUBMISSION


@pytest.mark.slow
def test_submissions_and_changes_while_redis_is_away(tmp_path, private_redis, monkeypatch):
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    from flask_migrate import upgrade

    from supervise.app import create_app
    from supervise.cases.models import Category
    from supervise.demo import load_demo
    from supervise.extensions import db
    from supervise.queueing import redis_connection

    app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    client = app.test_client()

    def submit(n: int, **fields):
        address = {"REMOTE_ADDR": f"10.9.0.{n}"}
        return client.post("/api/v1/cases", json={**VALID_SUBMISSION, **fields}, environ_base=address)

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        load_demo(sample_cases=False)
        assert submit(1).status_code == 201  # the copies are warm
        other = db.session.scalar(select(Category.code).where(Category.code != VALID_SUBMISSION["category"]))

        private_redis.stop()
        assert submit(2).status_code == 201 and submit(3).status_code == 201
        # An admin retires a category meanwhile, in this process: its own copy goes at once.
        db.session.execute(update(Category).where(Category.code == other).values(active=False))
        db.session.commit()
        refused = submit(4, category=other)
        assert refused.status_code == 422 and "category" in refused.json["error"]["details"]

        private_redis.start()
        app.extensions[refdata._EXTENSION].redis_retry_at = 0  # not wait out the back-off here
        before = redis_connection().get(refdata.VERSION_KEY)
        db.session.execute(update(Category).where(Category.code == other).values(active=True))
        db.session.commit()
        assert redis_connection().get(refdata.VERSION_KEY) != before  # the others are told again
        assert submit(5, category=other).status_code == 201
        db.session.remove()
