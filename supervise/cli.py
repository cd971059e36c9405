"""The `supervise` command (DESIGN.md §6)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from supervise.app import create_app
from supervise.extensions import db
from supervise.imports.cli import import_group
from supervise.intake.cli import qr_group
from supervise.orgs.models import OrgKind


@click.group(
    cls=FlaskGroup, create_app=lambda: create_app(), add_default_commands=False, add_version_option=False
)
def main() -> None:
    """码上监督 — mass-supervision feedback loop."""


# -- database ------------------------------------------------------------------------------------


@main.command()
@with_appcontext
def init() -> None:
    """Create or upgrade the database (Alembic) and seed the holiday calendar."""
    from flask_migrate import upgrade

    from supervise.cases.services import make_context
    from supervise.deadlines.calendar import seed_from_chinesecalendar
    from supervise.deadlines.services import backfill_clocks

    upgrade(directory=current_app.extensions["migrate"].directory)
    years = seed_from_chinesecalendar(db.session)
    db.session.commit()
    backfilled = backfill_clocks(db.session, make_context().clocks)
    db.session.commit()
    click.echo(f"database at head; calendar years loaded: {', '.join(map(str, years)) or 'none new'}")
    if backfilled:
        click.echo(f"deadline clocks started for {backfilled} open case(s) from before they existed")
    _warn_bodies_without_intake()


def _warn_bodies_without_intake() -> None:
    from supervise.demo import intake_warnings

    for line in intake_warnings(db.session):
        click.echo(f"warning: {line}", err=True)


@main.command()
@click.option(
    "--history",
    is_flag=True,
    help="also replay eight weeks of cases through the services (overdue, escalated, reopened, "
    "rated, weekly reports); skipped when loaded already",
)
@with_appcontext
def demo(history: bool) -> None:
    """Load demo orgs, points, categories, one account per role and a few cases; print logins."""
    from supervise.demo import load_demo

    if current_app.config["SUPERVISE_ENV"] == "production":
        raise click.ClickException("refusing to load demo data in production")
    summary = load_demo()
    two_factor_off = _demo_two_factor_optional()
    if history:
        from supervise.demo_history import load_history

        loaded = load_history()
        click.echo("History: loaded already, nothing added" if loaded is None else "\n".join(loaded.lines()))
    base = current_app.config["BASE_URL"]
    click.echo(f"Demo password for every demo account: {summary['password']}")
    names = summary["org_names"]
    for username, roles, org in summary["users"]:
        click.echo(f"  {username:<30} {roles:<18} {names.get(org, org)}")
    for line in summary["warnings"]:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"Points (QR targets) at {base}:")
    for name, token in summary["points"]:
        click.echo(f"  {name:<24} {base}/s/{token}")
    qr_file = _export_demo_qr(base)
    click.echo(f"QR codes and posters for these addresses: {qr_file}")
    if _loopback(base):
        click.echo(
            "  (a phone cannot open 127.0.0.1: run with --host 0.0.0.0 and "
            "SUPERVISE_BASE_URL=http://<this machine's LAN IP>:<port>; see README)"
        )
    click.echo(f"Citizen form {base}/report · tracking {base}/track · staff desk {base}/staff/login")
    click.echo("API token for a demo account: supervise user token demo-intake")
    if two_factor_off:
        click.echo(
            "Two-factor sign-in: optional for the demo accounts (no phone app needed to look around); "
            "require it in 系统管理 → 期限设置 → 两步验证"
        )


def _demo_two_factor_optional() -> bool:
    """A first look at the demo must not need an authenticator app: unless an admin has already
    chosen, two-factor sign-in becomes optional for every role (the settings page says so, in red).
    True while it is optional for everyone."""
    from supervise.settings import TWO_FACTOR_ROLES_KEY, set_value, stored

    chosen = stored().get(TWO_FACTOR_ROLES_KEY)
    if chosen is None:
        set_value(TWO_FACTOR_ROLES_KEY, "")
        db.session.commit()
    return not (chosen or "").strip()


def _loopback(base: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(base).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _export_demo_qr(base: str) -> Path:
    """Every demo point's QR code and poster, for the address printed above (the same ZIP as
    `supervise qr export --org demo-county`), rewritten on each run so a new address takes."""
    from supervise.intake.qr import export_points_zip
    from supervise.orgs.services import get_org_by_code

    output = Path(current_app.config["DATA_DIR"]) / "demo-qr-codes.zip"
    output.write_bytes(export_points_zip(get_org_by_code(db.session, "demo-county"), base))
    return output


# -- processes -------------------------------------------------------------------------------------


def _redis_for_command(app, *, new_session: bool = False) -> subprocess.Popen | None:
    """Start the embedded redis-server when REDIS_URL is unset and none answers yet."""
    if not app.config["REDIS_EMBEDDED"]:
        return None
    from supervise.queueing import start_embedded_redis

    return start_embedded_redis(Path(app.config["DATA_DIR"]), new_session=new_session)


def public_base_url(host: str, port: int) -> str:
    """The address people and QR codes use: SUPERVISE_BASE_URL when set (e.g. the machine's LAN
    address for a phone), else where we listen, a wildcard host shown as loopback."""
    configured = os.environ.get("SUPERVISE_BASE_URL", "").strip().rstrip("/")
    if configured:
        return configured
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - displaying, not binding
    return f"http://{shown}:{port}"


# Set in the environment of `supervise serve`'s children: the embedded Redis is serve's to start.
SERVE_CHILD_ENV = "SUPERVISE_SERVE_CHILD"

# The order children are stopped in: what uses Redis first, Redis last, so the worker finishes its
# job and reports before its broker goes away.
STOP_ORDER = ("web", "cron", "worker", "redis")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0: reachable from a phone")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
def serve(host: str, port: int, web_workers: int) -> None:
    """Web (gunicorn) + worker + cron (+ embedded Redis when REDIS_URL is unset). Ctrl-C stops all.

    A worker, cron or embedded Redis that dies is started again (backoff 1 s → 30 s, a restart
    count in the log); only the web dying, SIGTERM or Ctrl-C stops everything.

    Every child runs in its own session, away from the terminal's process group: Ctrl-C reaches
    only this process, which stops them in order (web, cron, worker, then Redis) and exits 0.
    Were they in the terminal's group, each would get the SIGINT at once: Redis first to go,
    the worker's running job failing against it, and this loop reporting a crash.
    """
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    app = create_app()
    base = public_base_url(host, port)
    children: dict[str, subprocess.Popen] = {}
    redis_proc = _redis_for_command(app, new_session=True)
    if redis_proc:
        children["redis"] = redis_proc
    env = {**os.environ, "SUPERVISE_DATA_DIR": app.config["DATA_DIR"], "SUPERVISE_BASE_URL": base}
    # The embedded Redis is ours to (re)start: a worker or cron starting while it is down must
    # wait for it, not start a second one that we would not know about.
    env[SERVE_CHILD_ENV] = "1"
    # glibc hands large freed buffers (decoded photos) back to the system, as the Dockerfile sets.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    me = [sys.executable, "-m", "supervise.cli"]
    # The web processes' request counters, added up at each scrape of /metrics (gunicorn_conf.py
    # empties the directory at start).
    web_env = {
        **env,
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        or str(Path(app.config["DATA_DIR"]) / "prometheus"),
    }
    commands = {
        # supervise/gunicorn_conf.py's settings (from the environment), with -b and -w on top.
        "web": (
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:supervise.gunicorn_conf",
                "-b",
                f"{host}:{port}",
                "-w",
                str(web_workers),
                # gunicorn's lines in the app's text shape (ISO 8601 UTC times); JSON has it already.
                "supervise.wsgi:app",
            ],
            web_env,
        ),
        "worker": ([*me, "worker"], env),
        "cron": ([*me, "cron"], env),
    }

    def start(name: str) -> subprocess.Popen | None:
        if name == "redis":
            return _redis_for_command(app, new_session=True)
        argv, child_env = commands[name]
        return subprocess.Popen(argv, env=child_env, start_new_session=True)  # noqa: S603

    for name in commands:
        if not stopping:
            children[name] = start(name)
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"  # noqa: S104
    if not stopping and _wait_for_web(f"{local}/healthz", children["web"], lambda: stopping):
        click.echo(_banner(app, base, host, port, bool(redis_proc)))
    exit_code = 0
    restarts = ChildRestarts()
    while not stopping:
        time.sleep(0.3)
        if children["web"].poll() is not None:
            # Without the web there is nothing to serve: stop all (gunicorn restarts its own workers).
            click.echo(f"web exited with {children['web'].returncode}; stopping everything", err=True)
            stopping, exit_code = True, 1
            break
        for name, proc in list(children.items()):
            if name == "web" or stopping:
                continue
            if proc.poll() is not None and restarts.exited(name, proc.returncode):
                click.echo(restarts.exited_line(name, proc.returncode), err=True)
                # What it leaves behind (a killed worker's RQ scheduler and work-horse, in the
                # child's own session) must not run on beside its successor's.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
            if restarts.due(name):
                try:
                    started = start(name)
                    if started is None:  # another redis-server answers on the socket: not ours
                        click.echo(f"{name}: another server answers on its socket; using it", err=True)
                        del children[name]
                        continue
                    children[name] = started
                except (OSError, RuntimeError) as exc:
                    restarts.failed_to_start(name)
                    click.echo(
                        f"{name} could not be restarted ({exc}); {restarts.exited_line(name, None)}", err=True
                    )
                    continue
                restarts.started(name)
    _stop_children(children)
    sys.exit(exit_code)


class ChildRestarts:
    """`supervise serve`'s bookkeeping for the children it restarts (worker, cron, the embedded
    Redis): after 1, 2, 4, … up to 30 s, the count of restarts in each line, the wait back at 1 s
    once a child has run for a minute."""

    FIRST, CAP, HEALTHY = 1.0, 30.0, 60.0

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.quick_failures: dict[str, int] = {}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}

    def exited(self, name: str, returncode: int | None) -> bool:
        """Note a child's exit once (True the first time it is seen) and plan its restart."""
        if name in self.restart_at:
            return False
        now = time.monotonic()
        ran = now - self.started_at.get(name, now)
        failures = 1 if ran >= self.HEALTHY else self.quick_failures.get(name, 0) + 1
        self.quick_failures[name] = failures
        self.restart_at[name] = now + min(self.CAP, self.FIRST * 2 ** (failures - 1))
        return True

    def exited_line(self, name: str, returncode: int | None) -> str:
        wait = self.restart_at[name] - time.monotonic()
        return f"{name} exited with {returncode}; restart #{self.count.get(name, 0) + 1} in {wait:.0f} s"

    def failed_to_start(self, name: str) -> None:
        """A restart that failed counts as a quick failure: the next try waits longer."""
        self.restart_at.pop(name, None)
        self.started_at[name] = time.monotonic()
        self.exited(name, None)

    def due(self, name: str) -> bool:
        return name in self.restart_at and time.monotonic() >= self.restart_at[name]

    def started(self, name: str) -> None:
        self.restart_at.pop(name, None)
        self.count[name] = self.count.get(name, 0) + 1
        self.started_at[name] = time.monotonic()
        click.echo(f"{name} restarted (restart #{self.count[name]})", err=True)


def _stop_children(children: dict[str, subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM the users of Redis together (each shuts down gracefully), wait for them, then
    Redis (which saves its snapshot on SIGTERM); SIGKILL whatever outlives the timeout."""
    users = [children[n] for n in STOP_ORDER if n in children and n != "redis"]
    for proc in users:
        if proc.poll() is None:
            proc.terminate()
    for group in (users, [children["redis"]] if "redis" in children else []):
        for proc in group:
            if group is not users and proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_web(url: str, web: subprocess.Popen, cancelled, seconds: float = 30) -> bool:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and web.poll() is None and not cancelled():
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
                return response.status == 200
        except OSError:
            time.sleep(0.2)
    return False


def _banner(app, base: str, host: str, port: int, embedded_redis: bool) -> str:
    """What `serve` prints once the web answers: where each kind of user goes (README's first
    screen says the same), with the address people will use."""
    from sqlalchemy import select

    from supervise.intake.models import Point
    from supervise.orgs.models import Org
    from supervise.staff.models import User

    with app.app_context():
        demo_users = set(db.session.scalars(select(User.username).where(User.username.like("demo-%"))))
        point = db.session.execute(
            select(Point.token, Point.name)
            .join(Org, Point.org_id == Org.id)
            .where(Point.active.is_(True))
            .order_by((Org.code == "demo-town-1-village-1").desc(), Point.id)
            .limit(1)
        ).first()
    lines = [
        "",
        "  码上监督 is running",
        f"    citizen form   {base}/report"
        + (f"   (a QR point: {base}/s/{point.token} {point.name})" if point else ""),
        f"    tracking       {base}/track",
        f"    staff desk     {base}/staff/login",
        f"    API document   {base}/api/v1/openapi.json    readiness {base}/readyz",
    ]
    if demo_users:
        from supervise.demo import DEMO_PASSWORD

        lines += [
            f"    demo accounts  password {DEMO_PASSWORD}; every account: supervise demo",
            "      demo-town-1-jw-intake         城关镇纪委: 受理, 转办, 审核发布",
            "      demo-town-1-village-1-leader  东关村: 交办与答复 (no reporter shown)",
            "      demo-supervisor               县纪委监委: all cases, 督办, weekly reports",
            "    API token      .venv/bin/supervise user token demo-intake",
        ]
    if host in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            f"    from a phone   --host 0.0.0.0 and SUPERVISE_BASE_URL=http://<LAN IP>:{port} (README)"
        )
    lines.append(f"  Ctrl-C stops web, worker, cron{' and the embedded Redis' if embedded_redis else ''}.")
    return "\n".join([*lines, ""])


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
# In this order: RQ takes from the first non-empty queue, so a flood of notifications (default) never
# makes a sweep or the weekly report wait behind it.
@click.option("--queues", default="sweeps,reports,default", show_default=True)
@with_appcontext
def worker(burst: bool, queues: str) -> None:
    """One RQ worker (with RQ's scheduler for retries with backoff). Rides out Redis outages:
    waits for Redis (backoff up to 30 s, a log line a minute) and carries on, never exits on one."""
    import logging

    from rq import Worker

    from supervise.queueing import redis_connection
    from supervise.resilience import OncePerMinute, RedisLossWithoutTraceback, run_supervised
    from workers.context import bind_app

    class SupervisedWorker(Worker):
        # RQ's hook on SIGTERM/SIGINT: tells our loop that this ending was asked for.
        stop_asked = False

        def handle_warm_shutdown_request(self) -> None:
            self.stop_asked = True
            super().handle_warm_shutdown_request()

    app = current_app._get_current_object()
    if not os.environ.get(SERVE_CHILD_ENV):
        _redis_for_command(app)
    bind_app(app)
    connection = redis_connection(app)
    if burst:
        Worker(queues.split(","), connection=connection).work(burst=True)
        return
    # RQ logs each of its own reconnect attempts inside its dequeue wait: one a minute is enough.
    logging.getLogger("rq.worker").addFilter(OncePerMinute("Worker %s: could not connect to Redis"))
    for name in ("rq.worker", "rq.scheduler"):
        logging.getLogger(name).addFilter(RedisLossWithoutTraceback())

    def run() -> bool:
        rq_worker = SupervisedWorker(queues.split(","), connection=connection)
        rq_worker.max_connection_wait_time = 30.0
        rq_worker.work(with_scheduler=True)
        return rq_worker.stop_asked

    run_supervised(run, connection, "worker")


@main.command()
@click.option(
    "--config",
    "config_path",
    default="workers.cron",
    show_default=True,
    help="the periodic jobs: a module or a .py file registering them with rq.cron",
)
@with_appcontext
def cron(config_path: str) -> None:
    """The RQ cron scheduler (run exactly one: RQ's cron has no leader lock). Rides out Redis
    outages like the worker."""
    from rq.cron import CronScheduler

    from supervise.queueing import redis_connection
    from supervise.resilience import run_supervised

    # RQ reads cron strings in the process's local time; the weekly report's "Mondays 08:00" is
    # Asia/Shanghai's (DESIGN.md §6), whatever the server's zone.
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    app = current_app._get_current_object()
    if not os.environ.get(SERVE_CHILD_ENV):
        _redis_for_command(app)
    connection = redis_connection(app)

    def run() -> bool:
        # A fresh scheduler after each outage: its interval jobs run at once, so the outbox drain
        # hands over at once what was committed while Redis was away (the sweep and the weekly
        # catch-up are idempotent: they claim what is due, once).
        scheduler = CronScheduler(connection=connection)
        scheduler.load_config_from_file(config_path)
        scheduler.start()  # returns only on SIGTERM/SIGINT; Redis errors come out as exceptions
        return True

    run_supervised(run, connection, "cron")


# -- orgs --------------------------------------------------------------------------------------------


@main.group()
def org() -> None:
    """The organisation tree."""


@org.command("create")
@click.option("--code", required=True, help="stable code, e.g. xx-county")
@click.option("--name", required=True, help="e.g. 某某县纪委监委")
@click.option(
    "--kind",
    required=True,
    type=click.Choice([k.value for k in OrgKind]),
    help="discipline bodies: commission, discipline_office (a township's 纪委), stationed_group (派驻组); "
    "units: department, township, village",
)
@click.option(
    "--supervised-by",
    "body_code",
    default=None,
    help="a unit's supervising discipline body (default: the nearest one at or above it)",
)
@click.option(
    "--parent", "parent_code", default=None, help="the parent org's code (none: the top of the tree)"
)
@with_appcontext
def org_create(code: str, name: str, kind: str, parent_code: str | None, body_code: str | None) -> None:
    """Create an org: the first one (the commission at the top) on a new production install."""
    from supervise.orgs.services import create_org, get_org_by_code, root_org

    if get_org_by_code(db.session, code):
        raise click.ClickException(f"an org with code {code!r} exists already")
    parent = None
    if parent_code:
        parent = get_org_by_code(db.session, parent_code)
        if parent is None:
            raise click.ClickException(f"no org with code {parent_code!r}")
    elif root_org(db.session) is not None:
        raise click.ClickException("the tree has its top org already: give --parent")
    org = create_org(db.session, code, name, kind, parent)
    if body_code:
        body = get_org_by_code(db.session, body_code)
        if body is None or not body.is_body or org.is_body:
            raise click.ClickException(f"{body_code!r} is not a discipline body that can supervise {code!r}")
        org.supervising_body = body
    db.session.commit()
    click.echo(f"created {code} ({kind}{f' under {parent_code}' if parent_code else ', top of the tree'})")


# -- users -------------------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("create")
@click.option("--username", required=True)
@click.option("--org", "org_code", required=True, help="org code, e.g. demo-county")
@click.option(
    "--role",
    required=True,
    help="intake, handler, supervisor (discipline bodies), leader, handler (units), admin; "
    "several with commas: intake,supervisor",
)
@click.option("--password", default=None, help="generated and printed when omitted")
@with_appcontext
def user_create(username: str, org_code: str, role: str, password: str | None) -> None:
    """Create a staff account."""
    from supervise.errors import InvalidInput
    from supervise.orgs.services import get_org_by_code
    from supervise.staff.services import check_password_policy, create_user

    org = get_org_by_code(db.session, org_code)
    if org is None:
        raise click.ClickException(f"no org with code {org_code!r}")
    try:
        if password is not None:
            check_password_policy(password, username)
        _, generated = create_user(db.session, username=username, org=org, role=role, password=password)
    except InvalidInput as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"created {username} ({role} at {org_code})")
    if password is None:
        click.echo(f"password: {generated}")


def _active_user(username: str):
    from sqlalchemy import select

    from supervise.staff.models import User

    account = db.session.scalar(select(User).where(User.username == username))
    if account is None or not account.active:
        raise click.ClickException(f"no active user {username!r}")
    return account


@user.command("token")
@click.argument("username")
@click.option("--name", default="", help="what the token is for, shown in lists (e.g. 12345 对接)")
@click.option(
    "--days",
    default=90,
    show_default=True,
    type=click.IntRange(0, 3650),
    help="days until it expires; 0: never (an integration you will revoke by hand)",
)
@with_appcontext
def user_token(username: str, name: str, days: int) -> None:
    """Print a new bearer token for the JSON API (shown once; a password change ends it)."""
    from supervise.staff.services import issue_token

    token = issue_token(db.session, _active_user(username), name=name, days=days or None)
    db.session.commit()
    click.echo(token)


@user.command("tokens")
@click.argument("username")
@with_appcontext
def user_tokens(username: str) -> None:
    """List a user's tokens that still work: id, name, created, expires, last used."""
    from supervise.staff.services import active_tokens

    def when(moment) -> str:
        return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"

    for token in active_tokens(db.session, _active_user(username)):
        expires = when(token.expires_at) if token.expires_at else "never"
        click.echo(
            f"{token.id:>6}  {token.name or '(unnamed)':<24} created {when(token.created_at)}  "
            f"expires {expires}  last used {when(token.last_used_at)}"
        )


@user.command("revoke")
@click.argument("username")
@click.argument("token_id", required=False, type=int)
@click.option("--all", "revoke_all", is_flag=True, help="every token of the user")
@with_appcontext
def user_revoke(username: str, token_id: int | None, revoke_all: bool) -> None:
    """Revoke one token (by the id `supervise user tokens` shows) or all of a user's tokens."""
    from supervise.staff import audit
    from supervise.staff.services import revoke_tokens

    if token_id is None and not revoke_all:
        raise click.ClickException("give a token id, or --all")
    account = _active_user(username)
    count = revoke_tokens(db.session, account, None if revoke_all else token_id)
    if not count:
        raise click.ClickException("no such token (or already revoked or expired)")
    audit.record("token_revoked", user=account, detail={"tokens": count, "via": "cli"})
    db.session.commit()
    click.echo(f"revoked {count} token(s) of {username}")


# -- calendar -------------------------------------------------------------------------------------------


@main.group()
def calendar() -> None:
    """The working-day calendar."""


@calendar.command("due")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="day of receipt")
@click.option("--days", default=None, type=click.IntRange(1, 3650), help="working days [15]")
@with_appcontext
def calendar_due(start, days: int | None) -> None:
    """Print the due date (YYYY-MM-DD); '(provisional)' follows on stderr when a year lacks official data."""
    from supervise.cases.services import due_date_for

    due, provisional = due_date_for(start.date(), days)
    click.echo(due.isoformat())
    if provisional:
        click.echo("provisional: a year in range has no official holiday schedule yet", err=True)


@calendar.command("show")
@click.argument("year", type=int)
@with_appcontext
def calendar_show(year: int) -> None:
    """List a year's holidays and swapped workdays."""
    from sqlalchemy import select

    from supervise.deadlines.models import CalendarDay, CalendarYear

    loaded = db.session.get(CalendarYear, year)
    click.echo(
        f"{year}: " + (f"official ({loaded.source})" if loaded else "no official data; rule-based fallback")
    )
    rows = db.session.scalars(
        select(CalendarDay)
        .where(CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31)))
        .order_by(CalendarDay.day)
    )
    for row in rows:
        click.echo(f"{row.day.isoformat()}  {row.kind:<8} {row.name}")


@calendar.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def calendar_import(file: Path) -> None:
    """Load a year from a CSV of date,kind[,name] (kind: holiday|workday); replaces that year."""
    from supervise.deadlines.calendar import parse_calendar_csv
    from supervise.deadlines.services import import_calendar_year

    try:
        days = parse_calendar_csv(file.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    years = {d.year for d in days}
    if len(years) != 1:
        raise click.ClickException(f"the file must hold exactly one year, found {sorted(years) or 'none'}")
    (year,) = years
    changed = import_calendar_year(year, days, source="import")
    click.echo(f"{year}: {len(days)} dates loaded; {changed} running deadline(s) recomputed")


# -- deadlines -----------------------------------------------------------------------------------------


@main.command()
@click.option("--now", "now_text", default=None, help="ISO 8601 time to sweep as of (default: now)")
@with_appcontext
def sweep(now_text: str | None) -> None:
    """Run one deadline sweep synchronously and print what it did."""
    from datetime import UTC, datetime

    from supervise.deadlines.calendar import SHANGHAI
    from supervise.deadlines.services import run_sweep

    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO 8601 time: {now_text!r}", param_hint="--now") from exc
        # A time without an offset is read as Asia/Shanghai, the zone the deadlines are set in.
        now = (now if now.tzinfo else now.replace(tzinfo=SHANGHAI)).astimezone(UTC)
    result = run_sweep(now)
    for line in result.lines():
        click.echo(line)


# -- reports -------------------------------------------------------------------------------------------


@main.group()
def report() -> None:
    """Reports (每周超期件通报)."""


@report.command("weekly")
@click.option("--week", "week_text", required=True, help="ISO week, e.g. 2026-W47")
@click.option(
    "--org", "org_code", default=None, help="org code: that org's subtree (default: the whole tree)"
)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "xlsx", "csv"]), default="html", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--rebuild", is_flag=True, help="build a new version even if the week has one (the old one stays)"
)
@with_appcontext
def report_weekly(week_text: str, org_code: str | None, fmt: str, output: Path, rebuild: bool) -> None:
    """Write a week's report; it is built and stored first if the week has none yet."""
    from supervise.errors import DomainError
    from supervise.orgs.services import get_org_by_code
    from supervise.reports import export, services
    from supervise.reports.weekly import Week, view_for

    try:
        week = Week.parse(week_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from exc
    org = None
    if org_code:
        org = get_org_by_code(db.session, org_code)
        if org is None:
            raise click.BadParameter(f"no org with code {org_code!r}", param_hint="--org")
    try:
        stored = services.build(week, reason="supervise report weekly --rebuild") if rebuild else None
        stored = stored or services.get_or_build(week)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    view = view_for(stored.data, org.id if org else None)
    content = {"html": export.to_html, "xlsx": export.to_xlsx, "csv": export.to_csv}[fmt](view)
    output.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    click.echo(f"{week.label} (version {stored.version}) → {output}")


# -- statistics ----------------------------------------------------------------------------------------


@main.group()
def stats() -> None:
    """统计分析: the monthly summary table behind /staff/stats (supervise/stats)."""


@stats.command("refresh")
@click.option("--all", "everything", is_flag=True, help="rebuild every month, not only those changed")
@with_appcontext
def stats_refresh(everything: bool) -> None:
    """Rebuild the summary rows of the months whose cases changed since the last run (the job's work)."""
    from supervise.stats.services import refresh

    months = refresh(db.session, everything=everything)
    span = f": {months[0]:%Y-%m} … {months[-1]:%Y-%m}" if months else ""
    click.echo(f"{len(months)} month(s) rebuilt{span}")


# -- backups -------------------------------------------------------------------------------------------


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def backup(output: Path) -> None:
    """Archive the SQLite database, the photos and the data dir's secrets (.tar.gz); PostgreSQL: pg_dump."""
    from supervise.backup import BackupError, create_backup

    try:
        _, notes = create_backup(current_app.config, output)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in notes:
        click.echo(line, err=line.startswith(("WARNING", "NOTE")))


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace an existing database (stop every process first)")
@with_appcontext
def restore(archive: Path, force: bool) -> None:
    """Restore a `supervise backup` archive into an empty data dir."""
    from supervise.backup import BackupError, restore_backup

    db.engine.dispose()
    try:
        notes = restore_backup(current_app.config, archive, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in notes:
        click.echo(line, err=line.startswith("WARNING"))


main.add_command(qr_group)
main.add_command(import_group)

if __name__ == "__main__":
    main()
