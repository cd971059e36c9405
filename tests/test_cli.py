"""The `supervise` command (DESIGN.md §6)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from supervise.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_calendar_due(cli):
    assert cli("calendar", "due", "--from", "2026-09-28").output.strip() == "2026-10-23"
    assert cli("calendar", "due", "--from", "2026-09-27").output.strip() == "2026-10-22"
    assert (
        cli("calendar", "due", "--from", "2026-09-28", "--days", "5").output.strip() == "2026-10-10"
    )  # the swapped Saturday


def test_calendar_due_in_a_year_without_data_is_provisional(cli):
    result = cli("calendar", "due", "--from", "2098-12-20")  # a far year: no official data
    assert result.output.splitlines()[0] == "2099-01-12"
    assert "provisional" in result.output  # stderr is mixed into output by the runner


def test_calendar_import_and_show(cli, tmp_path):
    csv = tmp_path / "2097.csv"
    csv.write_text("date,kind,name\n2097-01-01,holiday,元旦\n2097-02-07,workday,春节调休\n", encoding="utf-8")
    assert "2 dates loaded" in cli("calendar", "import", str(csv)).output
    shown = cli("calendar", "show", "2097").output
    assert "official (import)" in shown and "2097-02-07  workday" in shown
    # The calendar table is kept between tests: put 2097 back to "no official data".
    from datetime import date

    from supervise.deadlines.models import CalendarDay, CalendarYear
    from supervise.extensions import db

    db.session.query(CalendarDay).filter(
        CalendarDay.day.between(date(2097, 1, 1), date(2097, 12, 31))
    ).delete()
    db.session.query(CalendarYear).filter(CalendarYear.year == 2097).delete()
    db.session.commit()


def test_calendar_import_refuses_a_bad_kind(app, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("2097-01-01,party\n")
    result = app.test_cli_runner().invoke(main, ["calendar", "import", str(bad)])
    assert result.exit_code != 0 and "类型须为 holiday 或 workday" in result.output


def test_user_create_and_token(cli, client, demo):
    out = cli("user", "create", "--username", "wang", "--org", "demo-town-1", "--role", "handler").output
    assert "created wang" in out and "password:" in out
    token = cli("user", "token", "wang").output.strip()
    response = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_init_and_demo_on_a_fresh_data_dir(tmp_path):
    """The console script end to end: a new data dir, `init`, `demo --history` twice (idempotent),
    at the address people will use (SUPERVISE_BASE_URL, as `dev.py up --port` sets it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["SUPERVISE_DATA_DIR"] = str(tmp_path)
    env["REDIS_URL"] = f"unix://{tmp_path}/absent.sock"  # demo works with Redis away (outbox waits)
    env["SUPERVISE_BASE_URL"] = base = "http://192.168.1.20:8123"
    run = [sys.executable, "-m", "supervise.cli"]
    init = subprocess.run([*run, "init"], env=env, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    first = subprocess.run([*run, "demo", "--history"], env=env, capture_output=True, text=True, timeout=120)
    second = subprocess.run([*run, "demo", "--history"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == second.returncode == 0, first.stderr
    assert "demo-supervisor" in first.stdout and f"{base}/s/" in first.stdout
    assert f"{base}/staff/login" in first.stdout and "127.0.0.1" not in first.stdout
    assert "History: " in first.stdout and "weekly reports stored: " in first.stdout
    assert "History: loaded already, nothing added" in second.stdout

    def without_history(out: str) -> list[str]:
        return [line for line in out.splitlines() if not line.startswith(("History", "  "))]

    assert without_history(first.stdout) == without_history(second.stdout)
    # The QR codes point at that address too.
    with zipfile.ZipFile(tmp_path / "demo-qr-codes.zip") as qr:
        index = qr.read("index.csv").decode("utf-8-sig")
    urls = [row["url"] for row in csv.DictReader(io.StringIO(index))]
    assert len(urls) == 9 and all(url.startswith(f"{base}/s/") for url in urls)


def test_dev_up_installs_only_what_running_needs_and_passes_the_address(monkeypatch):
    """`dev.py up --host 0.0.0.0 --port 9000`: the `embedded` extra only (the `dev` one is for
    tests), and the demo prints the address serve will use."""
    sys.path.insert(0, str(ROOT))
    try:
        import dev
    finally:
        sys.path.remove(str(ROOT))
    calls: list[tuple] = []
    monkeypatch.setattr(dev, "ensure_venv", lambda extras: calls.append(("install", extras)))
    monkeypatch.setattr(
        dev, "run", lambda *args, env=None: calls.append((args[1:], env["SUPERVISE_BASE_URL"]))
    )

    def execve(path, argv, env):
        calls.append((tuple(argv[1:]), env["SUPERVISE_BASE_URL"]))

    monkeypatch.setattr(dev.os, "execve", execve)
    monkeypatch.delenv("SUPERVISE_BASE_URL", raising=False)
    dev.up(["--host", "0.0.0.0", "--port", "9000"])
    local = "http://127.0.0.1:9000"
    assert calls == [
        ("install", "embedded"),
        (("init",), local),
        (("demo", "--history"), local),
        (("serve", "--host", "0.0.0.0", "--port", "9000"), local),
    ]
    monkeypatch.setenv("SUPERVISE_BASE_URL", "http://192.168.1.20:9000")  # a phone's way in wins
    calls.clear()
    dev.up(["--port=9000"])
    assert {c[1] for c in calls[1:]} == {"http://192.168.1.20:9000"}
    assert dev.stamp("embedded") != dev.stamp("embedded,dev")


def test_serve_prints_the_address_people_use(monkeypatch):
    from supervise.cli import public_base_url

    monkeypatch.delenv("SUPERVISE_BASE_URL", raising=False)
    assert public_base_url("0.0.0.0", 8123) == "http://127.0.0.1:8123"
    assert public_base_url("10.1.2.3", 80) == "http://10.1.2.3:80"
    monkeypatch.setenv("SUPERVISE_BASE_URL", "http://192.168.1.20:8123/")
    assert public_base_url("0.0.0.0", 8123) == "http://192.168.1.20:8123"


def test_org_create_makes_the_top_of_the_tree_then_children(cli):
    from supervise.extensions import db
    from supervise.orgs.services import get_org_by_code

    assert (
        "top of the tree"
        in cli("org", "create", "--code", "xx", "--name", "某县纪委监委", "--kind", "commission").output
    )
    again = cli("org", "create", "--code", "yy", "--name", "另一个", "--kind", "commission")
    assert "give --parent" in again.output
    out = cli(
        "org", "create", "--code", "xx-t", "--name", "某镇", "--kind", "township", "--parent", "xx"
    ).output
    assert "under xx" in out
    town = get_org_by_code(db.session, "xx-t")
    assert town.parent.code == "xx" and town.path.startswith(get_org_by_code(db.session, "xx").path)
    assert "exists already" in cli("org", "create", "--code", "xx", "--name", "x", "--kind", "village").output
