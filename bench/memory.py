"""Web workers' memory (issue 15, Deliver 5): RSS after 10,000 mixed requests, peak under hostile uploads.

Starts the app under gunicorn with the production settings (supervise/gunicorn_conf.py,
`SUPERVISE_ENV=production`, the access log on, Prometheus' multiprocess directory, ProxyFix trusting
one proxy so each request can come from its own citizen address) on a free port, against the bench
database, and:

1. drives mixed requests from several client threads over keep-alive connections — the citizen form
   pages, JSON submissions, tracking (API and page), the public lists, the staff queue API and case
   API with Bearer tokens of the five benchmark roles, the staff desk and case pages signed in,
   static files — then reads each worker's VmRSS (now) and VmHWM (peak) from /proc/PID/status:
   goal ≤ 150 MB each;
2. resets the peaks (/proc/PID/clear_refs) and sends the hostile-upload load of the hardening issue
   (issue 12; tests/security/test_uploads.py) from more clients than the server has threads:
   multipart submissions of six photos at the 10 MB cap, photos at each format's pixel cap
   (50 MP baseline JPEG, 16 MP progressive JPEG and PNG, 8 MP WebP), decompression bombs and
   headers claiming 65,535 × 65,535 pixels, a truncated JPEG, files that are not images, an 11 MB
   file — and reads each worker's peak against the bound the upload checks give
   (supervise/intake/uploads.py, see `hostile_bound_mb`).

It checks its own results: every answer has a status its request may get (no 5xx but the uploads'
"busy" 503, no refused photo accepted, no connection dropped) and no worker was replaced during
the run, else it raises.

    python -m bench.memory --cases 20000                  # 10,000 requests, 2 processes × 4 threads
    python -m bench.memory --cases 20000 --workers 0      # the configuration's default (2 × CPUs + 1)
    python -m bench.memory --requests 2000 --hostile-rounds 0 --json bench/.data/memory.json

Whatever the run writes to the bench database (the cases it submitted with their events, clocks
and outbox rows, sign-ins, its tokens, audit rows) is deleted at the end, so the data set stays the
one `bench.generate` built and the other benchmarks' checks still hold. Not undone: the QR points'
daily scan counters, and the accepted photos' files (the app's daily orphan sweep removes those).
"""

from __future__ import annotations

import argparse
import http.client
import io
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bench import common
from bench.figures import Figure

REPO = common.BENCH_DIR.parent
GOAL_MB = 150.0
REQUESTS = 10_000
CLIENTS = 8  # client threads of the mixed load: twice the server's 4 threads per process, so none idles
# The shape the issue measures with (and bench/submit.py serves with): 2 processes × 4 threads.
# gunicorn_conf's own default is 2 × CPUs + 1 processes; `--workers 0` uses that.
WORKERS = 2
MB = 1024 * 1024
READY_SECONDS = 90
# A client closes its connection after 1 request in 20 on average: browsers come and go, and a new
# connection may be accepted by another worker (keep-alive alone would pin each client to one).
CHURN = 0.05

# issue 12's measured decode cost (supervise/intake/uploads.py): ≤ ~175 MB for one decode and
# re-encode at a format's pixel cap (WebP; JPEG and PNG ≤ 135 MB).
DECODE_PEAK_MB = 175

SUBMISSION = {
    "category": "petty_corruption",
    "subject": "某窗口工作人员",
    "content": "办理业务时被要求先请吃饭才给盖章，已经第三次了。",
}
STATIC_FILES = (
    "css/site.css",
    "css/staff.css",
    "css/case.css",
    "js/citizen.js",
    "js/queue.js",
    "js/case.js",
    "js/report-charts.js",
    "vendor/echarts/echarts.min.js",
)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# What the load writes, children before parents: every row above the ids these tables had before
# the run is deleted after it.
WRITTEN_TABLES = (
    "notifications",
    "escalations",
    "attachments",
    "case_links",
    "case_drafts",
    "case_clocks",
    "outbox",
    "events",
    "audit_log",
    "cases",
    "staff_sessions",
    "api_tokens",
)


RUN_LOCK = 0x6D656D  # pg_advisory_lock key of a bench.memory run ("mem")


def _connect():
    import psycopg

    return psycopg.connect(common.DATABASE_URL.replace("+psycopg", ""))


def high_water_marks() -> dict[str, int]:
    marks = {}
    with _connect() as conn:
        for table in WRITTEN_TABLES:  # names of ours, not input
            marks[table] = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]  # noqa: S608
    return marks


def remove_written(marks: dict[str, int]) -> dict[str, int]:
    """Delete the rows the run added (ids above `marks`), in one transaction."""
    removed = {}
    with _connect() as conn:
        for table in WRITTEN_TABLES:
            removed[table] = conn.execute(f"DELETE FROM {table} WHERE id > %s", (marks[table],)).rowcount  # noqa: S608
    return removed


# -- the server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak RSS) of a process, and its USS (the pages no other process shares:
    what the worker really adds to the machine; RSS also counts the pages shared with its
    siblings), in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    values["USS"] = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Private_Clean", "Private_Dirty"):
            values["USS"] += int(rest.split()[0])
    return values


def children(pid: int) -> list[int]:
    try:
        return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except FileNotFoundError:
        return []


class Gunicorn:
    """The app under gunicorn in its own process group, killed as a group on `stop()`."""

    def __init__(self, workers: int, threads: int, app: str = "supervise.wsgi:app"):
        self.app = app
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        # Its output (access log included), kept when the run fails; one per server, so two runs at
        # once do not write into one file.
        self.log_path = common.DATA_DIR / f"memory-gunicorn-{self.port}.log"
        self.metrics_dir = tempfile.mkdtemp(prefix="bench-memory-metrics-")
        data = common.DATA_DIR
        self.env = {
            **os.environ,
            "GUNICORN_BIND": self.url,
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "SUPERVISE_ENV": "production",
            # production refuses generated secrets: hand it the development ones the bench made
            "SECRET_KEY": (data / "secret_key").read_text().strip(),
            "SUPERVISE_ENCRYPTION_KEY": (data / "encryption_key").read_text().strip(),
            "PROXY_FIX_X_FOR": "1",  # behind one proxy: X-Forwarded-For is the citizen's address
            # As the Dockerfile sets it (an explicit value in the environment wins).
            "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", "131072"),
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            "LOG_LEVEL": "WARNING",
            # The mixed load signs its desk browsers in with a password only: what is measured is
            # the desk, not the TOTP step (supervisors must enrol by default, issue 18).
            "TWO_FACTOR_REQUIRED_ROLES": "",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter; the entry is the caller's
            [sys.executable, "-m", "gunicorn", "-c", "python:supervise.gunicorn_conf", self.app],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills the master and every worker
        )
        log.close()

    def wait_ready(self, workers: int) -> list[int]:
        """Wait until every worker has loaded the app (each imports it itself, after the fork): the
        server answers and no worker's RSS moved by more than 1 MB in the last second. Their pids."""
        assert self.process is not None
        deadline = time.monotonic() + READY_SECONDS
        last: dict[int, float] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}: see {self.log_path}")
            pids = children(self.process.pid)
            try:
                rss = {pid: status_of(pid)["VmRSS"] / 1024 for pid in pids}
            except FileNotFoundError:  # a worker that failed to boot, being replaced
                rss = {}
            steady = len(rss) == workers and rss.keys() == last.keys()
            if steady and all(abs(rss[p] - last[p]) < 1 for p in pids) and _answers(self.port):
                return pids
            last = rss
            time.sleep(1)
        raise RuntimeError(f"gunicorn not ready after {READY_SECONDS} s: see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for path in Path(self.metrics_dir).glob("*"):
            path.unlink()
        Path(self.metrics_dir).rmdir()


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


# -- a client ---------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection with a cookie jar (what a browser tab holds)."""

    def __init__(self, port: int, timeout: float = 60):
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection (GUNICORN_KEEPALIVE): reconnect once.
                self.close()
                if attempt == 2:
                    raise
                continue
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None):
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(
            method, path, body, {**(headers or {}), **({"Content-Type": "application/json"} if body else {})}
        )
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# Unseeded, unlike the request mix: the per-IP counters live an hour and a day in Redis, so a run
# must not reuse the addresses of the run before it.
_ADDRESSES = random.Random()


def citizen_address() -> dict[str, str]:
    """A new citizen's address per request: the per-IP limits count each as a first submission."""
    a = _ADDRESSES
    return {"X-Forwarded-For": f"10.{a.randrange(256)}.{a.randrange(256)}.{a.randrange(1, 255)}"}


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "bench" + os.urandom(12).hex()
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for filename, data in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# -- the mixed load -----------------------------------------------------------------------------------


@dataclass
class Fixtures:
    """What the requests need from the data set: tokens, tabs, QR points, staff sign-in."""

    tokens: dict[str, str]  # role → Bearer token
    tabs: dict[str, list[str]]  # role → the tabs it has
    points: list[str]  # QR point tokens
    desk_user: str  # signed in on the staff pages (sees every case)
    desk_tabs: list[str]
    password: str


def prepare(marker: dict[str, Any]) -> Fixtures:
    """Bearer tokens for the benchmark roles (a day long) and the QR points, from the bench database."""
    app = common.make_app()
    from sqlalchemy import select

    from bench.queue_latency import benchmark_users
    from supervise.cases.queries import queues_for
    from supervise.cases.workflow import Actor
    from supervise.demo import DEMO_PASSWORD
    from supervise.extensions import db
    from supervise.intake.models import Point
    from supervise.staff.models import User
    from supervise.staff.services import issue_token

    roles = benchmark_users(marker)
    tokens, tabs = {}, {}
    with app.app_context():
        for role, username in roles.items():
            user = db.session.scalar(select(User).where(User.username == username))
            tokens[role] = issue_token(db.session, user, name="bench.memory", days=1)
            tabs[role] = list(queues_for(Actor.staff(user)))
        points = list(db.session.scalars(select(Point.token).where(Point.active.is_(True)).limit(50)))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    desk = "county supervisor"
    return Fixtures(tokens, tabs, points, roles[desk], tabs[desk], DEMO_PASSWORD)


@dataclass
class Tally:
    """Answers by request kind and status, and the answers a kind may not get."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)  # (kind, status) → n
    unexpected: list[str] = field(default_factory=list)
    seconds: Counter = field(default_factory=Counter)  # kind drawn → seconds its requests took
    done: int = 0  # answers so far
    receipts: list[tuple[str, str]] = field(default_factory=list)  # (tracking no, access code)
    refs: dict[str, list[str]] = field(default_factory=dict)  # role → tracking numbers it may open

    def times(self) -> str:
        """Mean milliseconds per request, by kind."""
        counts = Counter()
        for (kind, _status), n in self.statuses.items():
            counts[kind] += n
        return ", ".join(f"{kind} {1000 * self.seconds[kind] / n:.0f}" for kind, n in counts.items() if n)

    def record(self, kind: str, status: int, allowed: tuple[int, ...], detail: str = "") -> None:
        with self.lock:
            self.statuses[kind, status] += 1
            self.done += 1
            if status not in allowed and len(self.unexpected) < 20:
                self.unexpected.append(f"{kind}: {status} {detail[:200]}")


class MixedLoad:
    """The requests a day brings, in proportions (WEIGHTS), each from the client thread that draws it."""

    WEIGHTS: ClassVar[dict[str, int]] = {
        "form page": 15,
        "point form": 5,
        "submit (JSON API)": 12,
        "track (API)": 8,
        "track page": 3,
        "public lists": 4,
        "queue API": 20,
        "case API": 6,
        "staff desk": 8,
        "staff case page": 7,
        "static file": 12,
    }

    def __init__(self, port: int, fixtures: Fixtures, tally: Tally):
        self.port = port
        self.fx = fixtures
        self.tally = tally
        self.kinds = list(self.WEIGHTS)
        self.weights = list(self.WEIGHTS.values())
        self.handlers: dict[str, Callable[[Client, random.Random], None]] = {
            "form page": self.form_page,
            "point form": self.point_form,
            "submit (JSON API)": self.submit,
            "track (API)": self.track,
            "track page": self.track_page,
            "public lists": self.public_lists,
            "queue API": self.queue_api,
            "case API": self.case_api,
            "staff desk": self.staff_desk,
            "staff case page": self.staff_case,
            "static file": self.static_file,
        }

    def run(self, requests: int, clients: int, seed: int = 1) -> float:
        """Send `requests` requests from `clients` threads; the seconds it took."""
        remaining = itertools.count()
        errors: list[BaseException] = []

        def worker(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            client = Client(self.port)
            try:
                self.sign_in(client)
                while next(remaining) < requests:
                    kind = rng.choices(self.kinds, self.weights)[0]
                    started = time.perf_counter()
                    self.handlers[kind](client, rng)
                    with self.tally.lock:
                        self.tally.seconds[kind] += time.perf_counter() - started
                    if rng.random() < CHURN:
                        client.close()  # this browser leaves, another comes (and may reach another worker)
            except BaseException as exc:  # re-raised in the main thread
                errors.append(exc)
            finally:
                client.close()

        return run_clients(worker, clients, "mixed", errors)

    def sign_in(self, client: Client) -> None:
        """Every client is also a signed-in staff browser (the desk pages need the session)."""
        status, page = client.request("GET", "/staff/login")
        token = CSRF.search(page.decode())
        if status != 200 or token is None:
            raise RuntimeError(f"staff login page: {status}")
        form = f"username={self.fx.desk_user}&password={self.fx.password}&csrf_token={token.group(1)}"
        status, _ = client.request(
            "POST", "/staff/login", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302:
            raise RuntimeError(f"staff sign-in as {self.fx.desk_user}: {status}, not 302")

    def form_page(self, client: Client, rng: random.Random) -> None:
        status, _ = client.request("GET", "/report", headers=citizen_address())
        self.tally.record("form page", status, (200,))

    def point_form(self, client: Client, rng: random.Random) -> None:
        status, _ = client.request("GET", f"/s/{rng.choice(self.fx.points)}", headers=citizen_address())
        self.tally.record("point form", status, (200,))

    def submit(self, client: Client, rng: random.Random) -> None:
        status, body = client.json("POST", "/api/v1/cases", SUBMISSION, citizen_address())
        self.tally.record("submit (JSON API)", status, (201,), str(body))
        if status == 201:
            with self.tally.lock:
                self.tally.receipts.append((body["tracking_no"], body["access_code"]))

    def _receipt(self, rng: random.Random) -> tuple[str, str] | None:
        with self.tally.lock:
            return rng.choice(self.tally.receipts) if self.tally.receipts else None

    def track(self, client: Client, rng: random.Random) -> None:
        receipt = self._receipt(rng)
        if receipt is None:
            return self.submit(client, rng)
        payload = {"tracking_no": receipt[0], "access_code": receipt[1]}
        status, body = client.json("POST", "/api/v1/track", payload, citizen_address())
        self.tally.record("track (API)", status, (200,), str(body))
        return None

    def track_page(self, client: Client, rng: random.Random) -> None:
        status, _ = client.request("GET", "/track", headers=citizen_address())
        self.tally.record("track page", status, (200,))

    def public_lists(self, client: Client, rng: random.Random) -> None:
        path = rng.choice(("/api/v1/categories", "/api/v1/units"))
        status, _ = client.request("GET", path, headers=citizen_address())
        self.tally.record("public lists", status, (200,))

    def queue_api(self, client: Client, rng: random.Random) -> None:
        role = rng.choice(list(self.fx.tokens))
        tab = rng.choice(self.fx.tabs[role])
        status, body = client.json(
            "GET", f"/api/v1/cases?queue={tab}", headers={"Authorization": f"Bearer {self.fx.tokens[role]}"}
        )
        self.tally.record("queue API", status, (200,), str(body))
        if status == 200 and body["items"]:
            with self.tally.lock:
                refs = self.tally.refs.setdefault(role, [])
                if len(refs) < 500:
                    refs.extend(item["tracking_no"] for item in body["items"][:5])

    def case_api(self, client: Client, rng: random.Random) -> None:
        with self.tally.lock:
            known = [(role, refs) for role, refs in self.tally.refs.items() if refs]
            role, ref = None, None
            if known:
                role, refs = rng.choice(known)
                ref = rng.choice(refs)
        if ref is None:
            return self.queue_api(client, rng)
        status, body = client.json(
            "GET", f"/api/v1/cases/{ref}", headers={"Authorization": f"Bearer {self.fx.tokens[role]}"}
        )
        self.tally.record("case API", status, (200,), str(body))
        return None

    def staff_desk(self, client: Client, rng: random.Random) -> None:
        status, _ = client.request("GET", f"/staff/?queue={rng.choice(self.fx.desk_tabs)}")
        self.tally.record("staff desk", status, (200,))

    def staff_case(self, client: Client, rng: random.Random) -> None:
        with self.tally.lock:
            refs = self.tally.refs.get("county supervisor") or []
            ref = rng.choice(refs) if refs else None
        if ref is None:
            return self.staff_desk(client, rng)
        status, _ = client.request("GET", f"/staff/cases/{ref}")
        self.tally.record("staff case page", status, (200,))
        return None

    def static_file(self, client: Client, rng: random.Random) -> None:
        path = f"/static/{rng.choice(STATIC_FILES)}"
        status, _ = client.request("GET", path, headers={"Accept-Encoding": rng.choice(("br, gzip", "gzip"))})
        self.tally.record("static file", status, (200,))


# -- the hostile uploads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    name: str
    files: list[tuple[str, bytes]]
    allowed: tuple[int, ...]  # 201 stored, 422 refused, 503 no decode slot in time ("busy")

    @property
    def size_mb(self) -> float:
        return sum(len(d) for _, d in self.files) / MB


def _under_cap(encode: Callable[[int], bytes], qualities=(92, 85, 75, 60, 45, 30)) -> bytes:
    """The best quality whose file fits the 10 MB cap."""
    from supervise.intake.uploads import MAX_PHOTO_BYTES

    for quality in qualities:
        data = encode(quality)
        if len(data) <= MAX_PHOTO_BYTES:
            return data
    raise RuntimeError("no quality brings the picture under the cap")


def _photo(width: int, height: int, grain: int = 40):
    """A photo-like picture: smooth colour fields with sensor grain (what a camera JPEG compresses like)."""
    from PIL import Image

    smooth = Image.merge(
        "RGB", [Image.effect_noise((width // 64, height // 64), 90).convert("L") for _ in range(3)]
    ).resize((width, height), Image.Resampling.BICUBIC)
    grain_layer = Image.effect_noise((width, height), grain).convert("RGB")
    return Image.blend(smooth, grain_layer, 0.25)


def _saved(image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height (one tiny IDAT): a bomb that must die at the header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims width × height."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


def hostile_payloads(smoke: bool) -> list[Hostile]:
    """Issue 12's hostile uploads. Smoke: one of each cheap kind and one photo at the byte cap."""
    from PIL import Image

    from supervise.intake.uploads import MAX_PHOTO_BYTES, MAX_PHOTOS, MAX_WEBP_PIXELS

    ok = (201, 503)
    # The header checks run inside a decode slot (clean_image): when both are taken, even a file
    # refused from its header waits, and may be answered "busy". Never stored, either way.
    refused = (422, 503)
    small_jpeg = _saved(_photo(640, 480), "JPEG", quality=80)
    huge_png, huge_jpeg = _png_header_only(65535, 65535), _jpeg_claiming(small_jpeg, 65500, 65500)
    cheap = [
        Hostile("bomb: 39.7 MP flat PNG of ~120 KB", [("flat.png", _bomb_png())], refused),
        Hostile("header: PNG claiming 65,535 × 65,535", [("huge.png", huge_png)], refused),
        Hostile("header: JPEG claiming 65,500 × 65,500", [("huge.jpg", huge_jpeg)], refused),
        Hostile("not an image: random bytes .jpg", [("x.jpg", random.Random(1).randbytes(MB))], refused),
        Hostile("not an image: text .png", [("x.png", b"<?php system($_GET['c']); ?>\n" * 1000)], refused),
        Hostile("not allowed: GIF", [("x.gif", _saved(Image.new("P", (200, 200)), "GIF"))], refused),
        Hostile("over the byte cap: 11 MB", [("big.jpg", small_jpeg + bytes(11 * MB))], (422,)),
    ]
    phone = _under_cap(lambda q: _saved(_photo(4000, 3000, 60), "JPEG", quality=q))
    if smoke:
        return [*cheap, Hostile("1 phone photo at the byte cap", [("p.jpg", phone)], ok)]
    big = _under_cap(lambda q: _saved(_photo(8160, 6120), "JPEG", quality=q))
    progressive = _under_cap(lambda q: _saved(_photo(4096, 4096), "JPEG", quality=q, progressive=True))
    side = int(MAX_WEBP_PIXELS**0.5)
    webp = _under_cap(lambda q: _saved(_photo(side, side), "WEBP", quality=q, method=0))
    png = _saved(_photo(4096, 4096, 0).quantize(64).convert("RGB"), "PNG", compress_level=9)
    if len(png) > MAX_PHOTO_BYTES:
        raise RuntimeError(f"the 16 MP PNG is {len(png) / MB:.1f} MB, over the cap")
    six = MAX_PHOTOS
    return [
        Hostile(f"{six} × 12 MP phone JPEG at the byte cap", [(f"p{i}.jpg", phone) for i in range(six)], ok),
        Hostile(f"{six} × 50 MP baseline JPEG", [(f"b{i}.jpg", big) for i in range(six)], ok),
        Hostile(f"{six} × 16 MP progressive JPEG", [(f"g{i}.jpg", progressive) for i in range(six)], ok),
        Hostile(f"{six} × 16 MP PNG", [(f"n{i}.png", png) for i in range(six)], ok),
        Hostile(f"{six} × 8.4 MP WebP", [(f"w{i}.webp", webp) for i in range(six)], ok),
        Hostile("truncated 12 MP JPEG", [("t.jpg", phone[: len(phone) * 2 // 3])], (*ok, 422)),
        *cheap,
    ]


def _bomb_png() -> bytes:
    from PIL import Image

    return _saved(Image.new("RGB", (7280, 5450), (200, 30, 30)), "PNG", optimize=True)


def send_hostile(port: int, payloads: list[Hostile], requests: int, clients: int, tally: Tally) -> float:
    """`requests` multipart submissions, round-robin over `payloads`, from `clients` threads at once."""
    order = itertools.count()
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        client = Client(port, timeout=120)
        try:
            while (i := next(order)) < requests:
                payload = payloads[i % len(payloads)]
                body, content_type = multipart(SUBMISSION, payload.files)
                status, answer = client.request(
                    "POST",
                    "/api/v1/cases",
                    body,
                    {"Content-Type": content_type, "Accept": "application/json", **citizen_address()},
                )
                tally.record(payload.name, status, payload.allowed, answer[:200].decode(errors="replace"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    return run_clients(worker, clients, "hostile", errors)


def run_clients(worker, clients: int, name: str, errors: list[BaseException]) -> float:
    """`worker(n)` in `clients` threads at once; the seconds they took. The first error a worker
    put in `errors` is raised here, in the main thread."""
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,), name=f"{name}-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def hostile_bound_mb(boot_mb: float, threads: int) -> float:
    """What the upload checks bound one worker's memory by (supervise/intake/uploads.py):

    - every thread may hold one request's photos as bytes (≤ MAX_PHOTOS × MAX_PHOTO_BYTES, read by
      `read_photos` before any decode; the multipart body itself is spooled to disk by werkzeug),
      and their re-encoded copies until the last photo is cleaned (each no bigger than what came
      in, give or take: lossless PNG level 1 can double a file);
    - at most UPLOAD_DECODE_CONCURRENCY decodes run at once, each ≤ ~175 MB at a pixel cap;
    - on top of what the worker held before.
    """
    from supervise.intake.uploads import MAX_PHOTO_BYTES, MAX_PHOTOS

    concurrency = int(os.environ.get("UPLOAD_DECODE_CONCURRENCY", "2"))
    per_thread = MAX_PHOTOS * MAX_PHOTO_BYTES * 3 / MB  # raw + re-encoded (up to 2×)
    return boot_mb + threads * per_thread + concurrency * DECODE_PEAK_MB


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class Reading:
    """Each worker's memory at one moment, MB by pid."""

    rss_mb: dict[int, float]
    hwm_mb: dict[int, float]
    uss_mb: dict[int, float]

    @classmethod
    def of(cls, pids: list[int]) -> Reading:
        status = {pid: status_of(pid) for pid in pids}
        return cls(*({p: s[key] / 1024 for p, s in status.items()} for key in ("VmRSS", "VmHWM", "USS")))

    def shown(self, which: str = "rss") -> str:
        values = {"rss": self.rss_mb, "hwm": self.hwm_mb, "uss": self.uss_mb}[which]
        return ", ".join(f"{v:.0f}" for v in values.values()) + " MB"


def reset_peaks(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: `echo 5 > /proc/PID/clear_refs`)."""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Sampler:
    """Every 50 ms: the workers' summed RSS (the whole server's peak) and, given a tally, each worker's
    RSS against the number of answers so far (how memory grows with the requests served)."""

    def __init__(self, pids: list[int], tally: Tally | None = None):
        self.pids = pids
        self.tally = tally
        self.peak_mb = 0.0
        self.track: list[tuple[int, list[float]]] = []  # (answers so far, RSS MB per worker)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                rss = [status_of(pid)["VmRSS"] / 1024 for pid in self.pids]
            except (FileNotFoundError, KeyError):
                continue
            self.peak_mb = max(self.peak_mb, sum(rss))
            if self.tally is not None:
                self.track.append((self.tally.done, rss))

    def growth(self, steps: int = 10) -> str:
        """RSS per worker at every tenth of the answers: "1,000: 120/118 MB; 2,000: …"."""
        if not self.track:
            return ""
        total = self.track[-1][0]
        points = []
        for step in range(1, steps + 1):
            want = total * step // steps
            done, rss = next((t for t in self.track if t[0] >= want), self.track[-1])
            points.append(f"{done:,}: {'/'.join(f'{v:.0f}' for v in rss)}")
        return "; ".join(points) + " MB"

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Result:
    cases: int
    workers: int
    threads: int
    requests: int
    seconds: float
    boot: Reading
    mixed: Reading
    statuses: Counter
    hostile: Reading | None = None
    hostile_after: Reading | None = None
    hostile_seconds: float = 0.0
    hostile_requests: int = 0
    hostile_sum_peak_mb: float = 0.0
    hostile_statuses: Counter = field(default_factory=Counter)
    peaks_reset: bool = False
    growth: str = ""


def measure(
    cases: int,
    requests: int = REQUESTS,
    workers: int = WORKERS,
    threads: int = 4,
    clients: int = CLIENTS,
    hostile_rounds: int = 3,
    smoke: bool = False,
    app: str = "supervise.wsgi:app",
) -> Result:
    """Generate (or reuse) the data set, serve it under gunicorn, load it, read the workers' memory."""
    from bench.generate import generate

    marker = generate(cases)
    # The clean-up deletes every row above the marks: a second run on this database at the same time
    # would lose its rows (and tokens) to the first one's. One at a time, then.
    lock = _connect()
    lock.autocommit = True
    if not lock.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()[0]:
        lock.close()
        raise RuntimeError(f"another bench.memory run is using {common.DB_NAME}: one at a time")
    marks = high_water_marks()
    fixtures = prepare(marker)
    if workers <= 0:
        from supervise import gunicorn_conf

        workers = gunicorn_conf.workers
    server = Gunicorn(workers, threads, app)
    try:
        server.start()
        pids = server.wait_ready(workers)
        boot = Reading.of(pids)
        say(
            f"gunicorn on {server.url}: {workers} processes × {threads} threads, pids {pids}",
            f"RSS after boot {boot.shown()} (USS {boot.shown('uss')})",
        )

        tally = Tally()
        with Sampler(pids, tally) as sampler:
            seconds = MixedLoad(server.port, fixtures, tally).run(requests, clients)
        mixed = Reading.of(pids)
        say(f"RSS per worker as the answers came: {sampler.growth()}")
        say(f"ms per request: {tally.times()}")
        say(
            f"{requests:,} mixed requests in {seconds:.1f} s from {clients} clients: RSS {mixed.shown()}",
            f"peak {mixed.shown('hwm')}",
            f"USS {mixed.shown('uss')}",
        )
        _check(tally, "mixed load")
        result = Result(cases, workers, threads, requests, seconds, boot, mixed, tally.statuses)
        result.growth = sampler.growth()

        if hostile_rounds:
            payloads = hostile_payloads(smoke)
            count = len(payloads) * hostile_rounds
            result.peaks_reset = reset_peaks(pids)
            hostile_tally = Tally()
            concurrency = min(count, workers * threads * 2)  # more clients than threads: some must wait
            with Sampler(pids) as sampler:
                result.hostile_seconds = send_hostile(
                    server.port, payloads, count, concurrency, hostile_tally
                )
            result.hostile = Reading.of(pids)
            result.hostile_requests = count
            result.hostile_sum_peak_mb = sampler.peak_mb
            result.hostile_statuses = hostile_tally.statuses
            say(
                f"{count} hostile uploads ({len(payloads)} kinds, {concurrency} at once) in "
                f"{result.hostile_seconds:.1f} s: peak {result.hostile.shown('hwm')}",
                f"RSS now {result.hostile.shown()}",
                f"all workers together ≤ {sampler.peak_mb:.0f} MB",
            )
            _check(hostile_tally, "hostile uploads")
            if not smoke:  # does the memory come back? A short mixed load after the storm
                after = min(requests, 1000)
                MixedLoad(server.port, fixtures, Tally()).run(after, clients, seed=2)
                result.hostile_after = Reading.of(pids)
                say(f"RSS after {after} more mixed requests: {result.hostile_after.shown()}")

        replaced = set(pids) ^ set(children(server.process.pid))
        if replaced:
            raise RuntimeError(
                f"worker(s) replaced during the run ({sorted(replaced)}): see {server.log_path}"
            )
        server.log_path.unlink()  # it went well: nothing to look at
        return result
    finally:
        server.stop()
        removed = remove_written(marks)
        lock.close()  # and with it the advisory lock
        say("removed what the run wrote: " + ", ".join(f"{n:,} {t}" for t, n in removed.items() if n))


def say(*parts: str) -> None:
    print("; ".join(parts), flush=True)


def _check(tally: Tally, what: str) -> None:
    if tally.unexpected:
        raise AssertionError(f"{what}: unexpected answers: " + "; ".join(tally.unexpected[:5]))


def statuses_shown(statuses: Counter) -> str:
    by_kind: dict[str, list[str]] = {}
    for (kind, status), n in sorted(statuses.items()):
        by_kind.setdefault(kind, []).append(f"{status}×{n}")
    return "; ".join(f"{kind} {' '.join(v)}" for kind, v in by_kind.items())


def figures_of(result: Result, smoke: bool) -> list[Figure]:
    shape = f"{result.workers} processes × {result.threads} threads"
    command = f"python -m bench.memory --cases {result.cases} --requests {result.requests}"
    worst = max(result.mixed.rss_mb.values())
    rows = [
        Figure(
            f"memory: web worker RSS after {result.requests:,} mixed requests",
            f"≤ {GOAL_MB:.0f} MB each",
            f"max {worst:.0f} MB ({result.mixed.shown()}; after boot {result.boot.shown()}; "
            f"USS {result.mixed.shown('uss')})",
            ok=worst <= GOAL_MB,
            note=f"{command}; {shape}, {result.seconds:.0f} s; RSS by answers served: {result.growth}",
        ),
        Figure(
            "memory: web worker peak (VmHWM) in the mixed load",
            "– (the goal is on RSS after)",
            f"max {max(result.mixed.hwm_mb.values()):.0f} MB ({result.mixed.shown('hwm')})",
        ),
    ]
    if result.hostile is not None:
        bound = hostile_bound_mb(worst, result.threads)
        peak = max(result.hostile.hwm_mb.values())
        since = "since the peaks were reset" if result.peaks_reset else "VmHWM since boot"
        after = result.hostile_after or result.hostile
        rows += [
            Figure(
                f"memory: web worker peak under {result.hostile_requests} hostile uploads",
                f"bounded (≤ {bound:.0f} MB by the upload checks)",
                f"max {peak:.0f} MB ({result.hostile.shown('hwm')}); "
                f"all workers ≤ {result.hostile_sum_peak_mb:.0f} MB",
                ok=peak <= bound,
                note=f"{since}, {result.hostile_seconds:.0f} s; {statuses_shown(result.hostile_statuses)}",
            ),
            Figure(
                "memory: web worker RSS after the hostile uploads"
                + ("" if result.hostile_after is None else " and more mixed requests"),
                "–",
                f"max {max(after.rss_mb.values()):.0f} MB ({after.shown()})",
            ),
        ]
    return rows


def figures(cases: int, smoke: bool = False) -> list[Figure]:
    """`python -m bench all`'s rows. Smoke: 100 requests and one of each cheap hostile upload."""
    if smoke:
        result = measure(cases, requests=100, workers=2, threads=4, clients=4, hostile_rounds=1, smoke=True)
    else:
        result = measure(cases)
    return figures_of(result, smoke)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20_000, help="the data set (generated or reused)")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="mixed requests")
    parser.add_argument("--workers", type=int, default=WORKERS, help="gunicorn processes (0: the config's)")
    parser.add_argument("--threads", type=int, default=4, help="threads per process")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="client threads of the mixed load")
    parser.add_argument(
        "--hostile-rounds", type=int, default=3, help="hostile uploads: this many of each kind (0: none)"
    )
    parser.add_argument("--smoke", action="store_true", help="the small hostile set (no big photos)")
    parser.add_argument(
        "--app",
        default="supervise.wsgi:app",
        help="the WSGI entry gunicorn serves (MODULE:NAME): try a change without editing the app",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(
        args.cases,
        requests=args.requests,
        workers=args.workers,
        threads=args.threads,
        clients=args.clients,
        hostile_rounds=args.hostile_rounds,
        app=args.app,
        smoke=args.smoke,
    )
    rows = figures_of(result, args.smoke)
    print()
    for row in rows:
        mark = {True: "✓", False: "✗", None: "–"}[row.ok]
        print(f"{mark} {row.name}: {row.measured} (goal {row.goal})")
    print(f"\nmixed answers: {statuses_shown(result.statuses)}")
    if result.hostile_statuses:
        print(f"hostile answers: {statuses_shown(result.hostile_statuses)}")
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2) + "\n")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
