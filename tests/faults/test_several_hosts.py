"""Several hosts, for real: two web processes (gunicorn) and two `supervise worker` processes, each
with its own data dir (as on separate machines), sharing a private PostgreSQL, a private Redis and
an S3-compatible store (moto's server). Citizens submit with photos through web A while the staff
work through web B's API; midway web A and worker 1 are SIGKILLed. The submitter fails over to B
with the same idempotency key (what a load balancer and the form's retry do); A comes back.
Then: every case exists once, every outbox row is delivered once, every photo is served.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from supervise.app import create_app
from supervise.cases.models import Attachment, Case
from supervise.deadlines.calendar import seed_from_chinesecalendar
from supervise.demo import load_demo
from supervise.extensions import db
from supervise.notify.models import Notification, OutboxMessage
from tests.conftest import TEST_FERNET_KEY, VALID_SUBMISSION, app_config
from tests.faults.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "supervise-hosts"
CASES = 10
SECRET = "several-hosts-test-secret-0123456789abcdef"  # every host signs links with the same key


def photo(n: int) -> bytes:
    """A distinct JPEG per case: the store is content-addressed, so equal photos would hide a loss."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour(n)).save(out, "JPEG")
    return out.getvalue()


def colour(n: int) -> tuple[int, int, int]:
    return (n * 20 % 256, 40, 200 - n * 10)


@pytest.fixture
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Hosts:
    """The processes of the deployment, each with its own data dir under `root`."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env, self.procs = root, env, {}

    def _start(self, name: str, argv: list[str], **extra: str) -> subprocess.Popen:
        data = self.root / name
        data.mkdir(exist_ok=True)
        log = (data / "process.log").open("a")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, "SUPERVISE_DATA_DIR": str(data), **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes the whole "host"
        )
        self.procs[name] = proc
        return proc

    def web(self, name: str, port: int) -> str:
        argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "supervise.wsgi:app"]
        self._start(name, argv, GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return base
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a first answer slow
                pass
            time.sleep(0.2)
        raise AssertionError(f"{name} not ready: {(self.root / name / 'process.log').read_text()[-3000:]}")

    def worker(self, name: str) -> None:
        self._start(name, [sys.executable, "-m", "supervise.cli", "worker"])

    def kill(self, name: str) -> None:
        """SIGKILL the process group: gunicorn's master and its workers go down at once, a crash."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):  # ours, by id: its group is its children
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(10)


@pytest.mark.slow
def test_two_webs_two_workers_lose_nothing_when_one_of_each_is_killed(
    private_postgres, private_redis, s3_endpoint, tmp_path, monkeypatch
):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "WEB_", "LOG_", "PROXY_FIX_"))
    }
    env.update(
        DATABASE_URL=private_postgres.url,
        REDIS_URL=private_redis.url,
        SECRET_KEY=SECRET,
        SUPERVISE_ENCRYPTION_KEY=TEST_FERNET_KEY,
        UPLOAD_STORAGE="s3",
        S3_ENDPOINT_URL=s3_endpoint,
        S3_BUCKET=BUCKET,
        S3_ACCESS_KEY_ID="test-key",
        S3_SECRET_ACCESS_KEY="test-secret",
        S3_REGION="us-east-1",
        PROXY_FIX_X_FOR="1",  # one address per citizen: the per-IP submit limit is not under test
    )
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path / "test"))
    storage = {k: env[k] for k in env if k.startswith("S3_") or k == "UPLOAD_STORAGE"}
    app = create_app(
        app_config(
            {"database_url": private_postgres.url, "redis_url": private_redis.url},
            SECRET_KEY=SECRET,
            **storage,
        )
    )
    with app.app_context():
        from flask_migrate import upgrade

        from supervise.cases.services import upload_store
        from supervise.staff.models import User
        from supervise.staff.services import issue_token

        upgrade(directory=app.extensions["migrate"].directory)
        seed_from_chinesecalendar(db.session)
        load_demo(sample_cases=False)
        upload_store().client.create_bucket(Bucket=BUCKET)
        tokens = {}
        for name in ("demo-intake", "demo-handler", "demo-supervisor"):
            user = db.session.scalar(select(User).where(User.username == name))
            tokens[name] = {"Authorization": f"Bearer {issue_token(db.session, user)}"}
        db.session.commit()

    hosts = Hosts(tmp_path, env)
    try:
        port_a = free_port()
        web_a, web_b = hosts.web("web-a", port_a), hosts.web("web-b", free_port())
        hosts.worker("worker-1")
        hosts.worker("worker-2")

        # -- citizens submit through A (two at a time); A dies midway, retries go to B ------------
        answers: dict[int, dict] = {}
        failovers: list[int] = []

        def submit(n: int) -> None:
            form = {**VALID_SUBMISSION, "content": f"{VALID_SUBMISSION['content']}（第{n}件）"}
            form["idempotency_key"] = f"several-hosts-form-{n}"
            headers = {"X-Forwarded-For": f"10.0.0.{n + 1}"}
            for base in (web_a, web_b):  # the load balancer's next host, same form, same key
                try:
                    response = requests.post(
                        f"{base}/api/v1/cases",
                        data=form,
                        files=[("photos", (f"{n}.jpg", photo(n), "image/jpeg"))],
                        headers=headers,
                        timeout=15,
                    )
                except requests.ConnectionError:
                    failovers.append(n)
                    continue
                assert response.status_code == 201, response.text
                answers[n] = response.json()
                return

        errors: list[BaseException] = []

        def citizens(numbers: range) -> None:
            try:
                for n in numbers:
                    submit(n)
            except BaseException as exc:  # reported by the main thread, not lost in this one
                errors.append(exc)

        threads = [threading.Thread(target=citizens, args=(range(i, CASES, 2),)) for i in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(answers) < CASES // 3 and not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(answers) >= CASES // 3, (answers, (tmp_path / "web-a" / "process.log").read_text()[-3000:])
        hosts.kill("web-a")  # mid-load: requests in flight on A get a reset connection
        hosts.kill("worker-1")  # mid-delivery of the first cases' notices and thumbnails
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sorted(answers) == list(range(CASES)) and failovers, (sorted(answers), failovers)
        web_a = hosts.web("web-a", port_a)  # the host comes back, same address

        # -- the staff work every case through B's API --------------------------------------------
        intake, handler, supervisor = (tokens[n] for n in ("demo-intake", "demo-handler", "demo-supervisor"))
        feedback = {
            "text": "经核查，反映属实，已责令整改。",
            "disposal": "concluded",
            "disposal_note": "予以了结",
        }
        steps = [
            (intake, "accept", {}),
            (intake, "assign", {"user": "demo-handler"}),
            (handler, "start", {}),
            (handler, "feedback", feedback),
            (supervisor, "publish", {}),
        ]
        for n, answer in answers.items():
            ref = answer["tracking_no"]
            detail = requests.get(f"{web_b}/api/v1/cases/{ref}", headers=intake, timeout=10).json()
            version = detail["version"]
            for headers, action, fields in steps:
                response = requests.post(
                    f"{web_b}/api/v1/cases/{ref}/actions",
                    headers=headers,
                    json={"action": action, "version": version, **fields},
                    timeout=10,
                )
                assert response.status_code == 200, (n, action, response.text)
                version = response.json()["version"]
            # The citizen tracks through A (back up), with the code shown on the last answer.
            tracked = requests.post(
                f"{web_a}/api/v1/track",
                json={"tracking_no": ref, "access_code": answer["access_code"]},
                headers={"X-Forwarded-For": f"10.0.0.{n + 1}"},
                timeout=10,
            )
            assert tracked.status_code == 200 and tracked.json()["feedback"].startswith("经核查")
            # Its photo, stored by A (or B), is served by B from the shared bucket.
            (attachment,) = requests.get(f"{web_b}/api/v1/cases/{ref}", headers=intake, timeout=10).json()[
                "attachments"
            ]
            served = requests.get(f"{web_b}{attachment['url']}", timeout=10)
            assert served.status_code == 200
            # Intake re-encodes photos (no EXIF): the same picture, not the same bytes.
            pixel = Image.open(io.BytesIO(served.content)).getpixel((32, 24))
            assert all(abs(a - b) < 10 for a, b in zip(pixel, colour(n), strict=True)), (pixel, colour(n))

        # -- deliveries: worker 2 carries on; what worker 1 held when it died is recovered ----------
        with app.app_context():
            recover_what_the_dead_worker_held(app)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                db.session.expire_all()
                open_rows = db.session.scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "delivered")
                )
                if not open_rows:
                    break
                time.sleep(0.3)

            cases = db.session.scalars(select(Case)).all()
            assert sorted(c.tracking_no for c in cases) == sorted(a["tracking_no"] for a in answers.values())
            rows = db.session.scalars(select(OutboxMessage)).all()
            assert rows and {(r.status, r.attempts) for r in rows} == {("delivered", 1)}, [
                (r.id, r.kind, r.status, r.attempts, r.last_error) for r in rows if r.status != "delivered"
            ]
            kinds = Counter(r.kind for r in rows)
            assert kinds["make_thumbnails"] == CASES and kinds["case_received"] == CASES
            # Delivered once: a second delivery of an in-app row would fold into its notice (+1).
            assert {n.repeats for n in db.session.scalars(select(Notification))} == {1}
            # Every photo and its thumbnail (made by whichever worker) is in the shared bucket.
            store_keys = {a.sha256 for a in db.session.scalars(select(Attachment))}
            thumbs = {a.thumb_sha256 for a in db.session.scalars(select(Attachment))}
            assert len(store_keys) == CASES and None not in thumbs
            from supervise.cases.services import upload_store

            assert all(upload_store().exists(sha) for sha in store_keys | thumbs)
    finally:
        hosts.stop_all()


def recover_what_the_dead_worker_held(app) -> None:
    """What `supervise cron`'s drain does for a dead worker, without its waits.

    A job the killed worker had started stays `started` in RQ until its execution's heartbeat
    expires (minutes); the drain re-enqueues a pending row only once no live job holds it. Once
    worker 2 has emptied the queue, the only started jobs left are the dead worker's: expire them
    now (what RQ's own cleanup does later), then run the drain with no age threshold.
    """
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from supervise.notify import dispatch, outbox
    from supervise.queueing import redis_connection, requeue_lost

    conn = redis_connection(app)
    deadline = time.monotonic() + 20
    while Queue("default", connection=conn).count and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # worker 2 finishes the job it took last
    StartedJobRegistry("default", connection=conn).cleanup(timestamp=time.time() + 3600)
    outbox.settle_abandoned_claims(
        db.session, lambda name: dispatch.worker_alive(name, connection=conn), older_than=timedelta(0)
    )
    requeue_lost(outbox.stale_pending_ids(db.session, older_than=timedelta(0)), conn)
