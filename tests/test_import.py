"""`supervise import orgs|points|users|cases` (issue 16): a whole county and its ledger in one go,
bad rows named by row and column with nothing written, dry runs, CSV encodings, templates."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from supervise.cases.models import Case, Category, Event
from supervise.cases.states import Status
from supervise.cli import main
from supervise.deadlines.calendar import get_calendar, local_date
from supervise.deadlines.models import CaseClock, ClockKind
from supervise.demo import CATEGORIES
from supervise.extensions import db
from supervise.imports.cases import ref_key
from supervise.imports.readers import UnreadableFile, read_table
from supervise.imports.service import run_import
from supervise.intake.models import Point
from supervise.notify.outbox import OutboxMessage
from supervise.orgs.models import Org
from supervise.staff.models import AuditEntry, User
from tests import import_county as county


@pytest.fixture
def categories(app):
    for order, (code, name, name_en, kind) in enumerate(CATEGORIES):
        db.session.add(
            Category(
                code=code, name=name, name_en=name_en, sort_order=order, default_kind=kind and kind.value
            )
        )
    db.session.commit()


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args, ok=True):
        result = runner.invoke(main, ["import", *map(str, args)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result

    return run


def counts() -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Org, Point, User, Case, Event, CaseClock)
    }


def org(code: str) -> Org:
    return db.session.scalar(select(Org).where(Org.code == code))


def case(ref: str) -> Case:
    return db.session.scalar(select(Case).where(Case.submit_key == ref_key(ref)))


@pytest.fixture
def tree_files(tmp_path, categories, cli):
    """The county's orgs, points and users imported (cases left to the test)."""
    files = county.write_county(tmp_path, cases=0)
    cli("orgs", files["orgs"])
    cli("points", files["points"])
    cli("users", files["users"], "--passwords-out", tmp_path / "passwords.csv")
    return files


def test_a_county_and_its_ledger_import_in_one_go(tmp_path, categories, cli):
    files = county.write_county(tmp_path, cases=5000)
    assert "337 created" in cli("orgs", files["orgs"]).output
    assert "300 created" in cli("points", files["points"]).output
    passwords = tmp_path / "passwords.csv"
    out = cli("users", files["users"], "--passwords-out", passwords).output
    assert "333 created" in out and str(passwords) in out
    assert stat.S_IMODE(os.stat(passwords).st_mode) == 0o600
    lines = passwords.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("用户名,") and len(lines) == 334
    # Each printed password is one-time: the account must set its own at the first sign-in.
    assert db.session.scalar(select(func.count()).select_from(User).where(User.password_must_change)) == 333

    started = time.monotonic()
    out = cli("cases", files["cases"]).output
    seconds = time.monotonic() - started
    print(f"\n5000 cases imported in {seconds:.1f} s on {db.engine.dialect.name}")
    assert "5000 created" in out  # the time is printed, not asserted: a shared CI machine is noisy

    db.session.expire_all()
    assert counts()["orgs"] == 337 and counts()["points"] == 300 and counts()["users"] == 333
    assert counts()["cases"] == 5000 and counts()["events"] == 5000
    # The tree: parents resolved whatever the row order, 纪委 below its township, the 派驻组's units.
    town = org("tc-town-03")
    assert org("tc-town-03-jw").parent_id == town.id and org("tc-town-03-v-05").parent_id == town.id
    assert org("tc-town-03-v-05").path == f"{town.path}{org('tc-town-03-v-05').id}/"
    assert org("tc-dept-2").supervising_body.code == "tc-group-1"
    assert len({p.token for p in db.session.scalars(select(Point))}) == 300

    # Routing as a submission: a village's case is owned by its township's 纪委, a department's by
    # the 派驻组 that supervises it.
    about_village = case("TC-2025-00001")  # n=1: tc-town-02-v-02
    assert about_village.subject_org.code == "tc-town-02-v-02"
    assert about_village.owner.code == "tc-town-02-jw" and about_village.org.code == "tc-town-02-jw"
    about_department = case("TC-2025-00010")
    assert about_department.subject_org.code.startswith("tc-dept-")
    assert about_department.owner.code == "tc-group-1"

    # An open case: received at the owner with its clocks from the received day.
    still_open = case("TC-2025-00005")
    received_row = next(r for r in county.case_rows(5000) if r[0] == "TC-2025-00005")
    received_day = date.fromisoformat(received_row[1])
    assert still_open.status == Status.RECEIVED and local_date(still_open.received_at) == received_day
    due = get_calendar(db.session).add_working_days(received_day, 15)
    assert local_date(still_open.response_due_at) == due.day
    running = db.session.scalars(
        select(CaseClock.kind).where(CaseClock.case_id == still_open.id, CaseClock.met_at.is_(None))
    ).all()
    assert set(running) == {ClockKind.RESPONSE, ClockKind.STAGE}
    assert still_open.channel == "letter" and still_open.events[0].data["import"]["row"] == 6

    # A closed one: answered and closed on the day given, nothing left for the sweep.
    closed = case("TC-2025-00007")  # named reporter: sealed, hashed
    assert closed.status == Status.CLOSED and closed.feedback_text and closed.rating == "unsatisfied"
    assert local_date(closed.closed_at) == local_date(closed.received_at) + timedelta(days=12)
    assert closed.real_name and closed.reporter_hash and closed.reporter_phone_enc
    assert not db.session.scalar(
        select(func.count())
        .select_from(CaseClock)
        .where(CaseClock.case_id == closed.id, CaseClock.next_check_at.is_not(None))
    )
    # Imported closed cases tell nobody: no outbox rows at all.
    assert not db.session.scalar(select(func.count()).select_from(OutboxMessage))
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all()
    assert {a.detail["what"] for a in audit} == {
        "import.orgs",
        "import.points",
        "import.users",
        "import.cases",
    }

    # The same files again: nothing changes.
    before = counts()
    for kind in ("orgs", "points", "cases"):
        out = cli(kind, files[kind]).output
        assert "0 created, 0 updated" in out, out
    again = cli("users", files["users"], "--passwords-out", tmp_path / "again.csv").output
    assert "0 created, 0 updated, 333 unchanged" in again and not (tmp_path / "again.csv").exists()
    db.session.expire_all()
    assert counts() == before


def test_a_bad_org_row_is_named_and_nothing_is_written(tmp_path, categories, cli):
    rows = county.org_rows()
    bad = next(i for i, r in enumerate(rows) if r[0] == "tc-town-04-v-07")
    rows[bad][3] = "tc-town-99"
    rows[bad + 1][2] = "星球"
    path = county.write_xlsx(tmp_path / "orgs.xlsx", county.ORG_HEADER, rows)
    result = cli("orgs", path, ok=False)
    assert f"第 {bad + 2} 行「上级单位代码」：找不到代码为 tc-town-99 的单位" in result.output
    assert f"第 {bad + 3} 行「单位类型」：“星球”不是可选的值" in result.output
    assert "nothing written" in result.output
    assert counts()["orgs"] == 0


def test_bad_point_user_and_case_rows_leave_everything_as_it_was(tmp_path, tree_files, cli):
    before = counts()
    points = [*county.point_rows(), ["tc-nowhere", "某点", "是"], ["tc-town-01-v-01", "某点", "也许"]]
    path = county.write_csv(tmp_path / "points.csv", county.POINT_HEADER, points)
    out = cli("points", path, ok=False).output
    assert "第 302 行「单位代码」：找不到代码为 tc-nowhere 的单位" in out
    assert "第 303 行「是否启用」：须为“是”或“否”" in out

    users = [
        ["new-one", "新人", "tc-town-01-v-01", "受理员", ""],
        ["new-two", "", "tc-county", "管理员", "bad"],
    ]
    path = county.write_csv(tmp_path / "users.csv", county.USER_HEADER, users)
    out = cli("users", path, "--passwords-out", tmp_path / "p.csv", ok=False).output
    assert "第 2 行「角色」：单位（非纪检监察机构）的账号不能担任：受理员" in out
    assert "第 3 行「电子邮箱」：请填写有效的电子邮箱" in out
    assert not (tmp_path / "p.csv").exists()

    cases = county.case_rows(20)
    cases[3][9] = ""  # closed without a closing day
    cases[4][3] = "tc-elsewhere"
    cases[5][0] = cases[2][0]
    path = county.write_xlsx(tmp_path / "cases.xlsx", county.CASE_HEADER, cases)
    out = cli("cases", path, ok=False).output
    assert "第 5 行「办结日期」：已办结的必须填写办结日期" in out
    assert "第 6 行「被反映单位代码」：找不到代码为 tc-elsewhere 的单位" in out
    assert "第 7 行「原编号」：与第 4 行的原编号重复" in out
    db.session.expire_all()
    assert counts() == before


def test_a_dry_run_prints_the_summary_and_writes_nothing(tmp_path, tree_files, cli):
    path = county.write_xlsx(tmp_path / "cases.xlsx", county.CASE_HEADER, county.case_rows(50))
    before = counts()
    out = cli("cases", path, "--dry-run").output
    assert "dry run: cases from cases.xlsx (50 rows): 50 to create, 0 to update, 0 unchanged" in out
    assert "其中 10 件办理中" in out
    out = cli("orgs", tree_files["orgs"], "--dry-run").output
    assert "0 to create, 0 to update, 337 unchanged" in out
    # A renamed village is an update; still nothing written.
    rows = county.org_rows()
    rows[0][1] += "（新名）"
    renamed = county.write_csv(tmp_path / "orgs.csv", county.ORG_HEADER, rows)
    assert "0 to create, 1 to update, 336 unchanged" in cli("orgs", renamed, "--dry-run").output
    db.session.expire_all()
    assert counts() == before
    assert not any(o.name.endswith("（新名）") for o in db.session.scalars(select(Org)))


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_in_gbk_and_utf8_with_or_without_bom(tmp_path, tree_files, cli, encoding):
    rows = county.case_rows(30)
    path = county.write_csv(tmp_path / "cases.csv", county.CASE_HEADER, rows, encoding=encoding)
    assert "30 created" in cli("cases", path).output
    imported = case("TC-2025-00003")
    assert imported.subject == "某工作人员3" and "请吃饭" in imported.content


def test_english_headers_are_accepted_and_unknown_ones_named(tmp_path, tree_files, cli):
    header = ["org", "name"]
    path = county.write_csv(tmp_path / "p.csv", header, [["tc-county", "县纪委信访室"]])
    assert "1 created" in cli("points", path).output
    path = county.write_csv(tmp_path / "q.csv", ["单位代码", "名字"], [["tc-county", "某"]])
    out = cli("points", path, ok=False).output
    assert "不认识的列名「名字」" in out and "「监督点名称」：缺少这一列" in out


def test_passwords_are_never_printed_unless_asked(tmp_path, tree_files, cli):
    path = county.write_csv(
        tmp_path / "u.csv", county.USER_HEADER, [["li.si", "", "tc-county", "承办人", ""]]
    )
    refused = cli("users", path, ok=False)
    assert "--passwords-out" in refused.output and not db.session.scalar(
        select(User).where(User.username == "li.si")
    )
    shown = cli("users", path, "--print-passwords").output
    assert "li.si,li.si,tc-county,测试县纪委监委," in shown
    (tmp_path / "taken.csv").write_text("x")
    assert "exists already" in cli("users", path, "--passwords-out", tmp_path / "taken.csv", ok=False).output


@pytest.mark.parametrize("kind", ["orgs", "points", "users", "cases"])
def test_the_template_round_trips(tmp_path, tree_files, cli, kind):
    out = tmp_path / f"{kind}.xlsx"
    cli("template", kind, out)
    book = load_workbook(out)
    assert len(book.worksheets) == 2 and book.worksheets[1]["A1"].value == "列名"
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert sheet.cell(1, 1).comment is not None
    example = {h: c for h, c in zip(header, sheet[2], strict=True)}
    fill = {
        "orgs": {"单位代码": "tc-town-01-v-21", "上级单位代码": "tc-town-01"},
        "points": {"单位代码": "tc-town-01-v-01", "监督点名称": "第1镇第1村党群服务中心"},
        "users": {"单位代码": "tc-town-01-jw", "用户名": "zhao.liu"},
        "cases": {"被反映单位代码": "tc-town-01-v-01", "原编号": "TPL-1"},
    }[kind]
    for column, value in fill.items():
        example[column].value = value
    book.save(out)
    extra = ["--passwords-out", tmp_path / "pw.csv"] if kind == "users" else []
    assert "1 created" in cli(kind, out, *extra).output


def test_only_spreadsheets_are_read(app):
    for data in (b"\x89PNG\r\n\x1a\n\0\0\0", b"%PDF-1.4\n\0"):
        with pytest.raises(UnreadableFile):
            read_table(data)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    with pytest.raises(UnreadableFile):
        read_table(archive.getvalue())
    result = run_import("points", archive.getvalue(), "x.zip", dry_run=True)
    assert not result.ok and "只能导入 XLSX 或 CSV 文件" in result.problems[0].text()
