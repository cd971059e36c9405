"""The weekly report (每周超期件通报) as files and as mail: CSV, XLSX, HTML, the e-mail channel, the command.

One small county week (2026-W48, Nov 23–29) built over real cases moved through time with
time-machine: two complaints from 东关村's point, owned by 城关镇纪委 (DESIGN.md §2a) — one transferred
to the village and answered late, one still unanswered (overdue, escalated) — and a county case
answered on time and rated satisfied. The report's rows are the discipline bodies.
"""

from __future__ import annotations

import copy
import csv
import email
import email.policy
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from openpyxl import load_workbook
from sqlalchemy import select

from supervise.cases import services as case_services
from supervise.cases.workflow import Actor, find_case
from supervise.cli import main
from supervise.deadlines.services import run_sweep
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.notify import outbox
from supervise.notify.channels import default_channels, recipients
from supervise.notify.models import OutboxMessage
from supervise.orgs.models import Org
from supervise.orgs.services import get_org_by_code
from supervise.reports import export, services
from supervise.reports.weekly import COUNTS, LABELS, Week, view_for
from supervise.staff.models import User
from supervise.staff.services import create_user
from tests.conftest import VALID_SUBMISSION

# The reports below rest on a handful of cases: flagged from any sample (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("flags_from_any_sample")

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEK = Week.parse("2026-W48")
VILLAGE = "demo-town-1-village-1"  # 东关村, under 城关镇 (demo-town-1), under the county
JW = "demo-town-1-jw"  # 城关镇纪委: owns 东关村's complaints
JW_INTAKE = "demo-town-1-jw-intake"  # intake and supervisor there
TOWN2_JW = "demo-town-2-jw"  # 青山乡纪委, renamed NASTY below
NASTY = "<script>alert(1)</script>纪委"  # an org name that must come out as text, never markup


def at(y: int, m: int, d: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI)


def act(ref: str, username: str, action: str, **args) -> None:
    actor = Actor.staff(db.session.scalar(select(User).where(User.username == username)))
    case = find_case(db.session, ref)
    case_services.perform_action(ref, actor, {"action": action, "version": case.version, **args})


def file_case(org: Org | None = None, **fields) -> tuple[str, str]:
    """Submit at the current (travelled) time, at the org's point; (tracking number, access code)."""
    data = {**VALID_SUBMISSION, **fields}
    if org is not None:
        data["point"] = db.session.scalar(select(Point.token).where(Point.org_id == org.id))
    case, code = case_services.submit_case(data)
    return case.tracking_no, code


@pytest.fixture
def mail_dir(app, tmp_path):
    """SMTP off: the development sink writes each message to DATA_DIR/mail."""
    app.config.update(SMTP_HOST="", DATA_DIR=str(tmp_path))
    return tmp_path / "mail"


@pytest.fixture
def report(demo, mail_dir):
    """The stored report of 2026-W48 over three cases (see the module's docstring)."""
    village = get_org_by_code(db.session, VILLAGE)
    create_user(db.session, username="v-handler", org=village, role="handler", password="x" * 12)
    get_org_by_code(db.session, TOWN2_JW).name = NASTY
    db.session.commit()

    with time_machine.travel(at(2026, 10, 30), tick=False):  # Friday: due Fri Nov 20
        answered_late, _ = file_case(village, category="efficiency")  # a service complaint
        act(answered_late, JW_INTAKE, "accept")
        act(answered_late, JW_INTAKE, "transfer", org=VILLAGE)
        act(answered_late, "demo-town-1-village-1-leader", "assign", user="v-handler")
        act(answered_late, "v-handler", "start")
    with time_machine.travel(at(2026, 11, 2), tick=False):  # Monday: due Mon Nov 23
        unanswered, _ = file_case(village)  # 检举控告: stays at 城关镇纪委
        act(unanswered, JW_INTAKE, "accept", user="demo-town-1-jw-handler")
    with time_machine.travel(at(2026, 11, 23), tick=False):
        on_time, code = file_case(category="efficiency")
        act(on_time, "demo-intake", "accept")
        act(on_time, "demo-intake", "assign", user="demo-handler")
        act(on_time, "demo-handler", "start")
        act(on_time, "demo-handler", "feedback", text="已核查并整改。")
        act(on_time, "demo-supervisor", "publish")
    with time_machine.travel(at(2026, 11, 24), tick=False):
        act(answered_late, "v-handler", "feedback", text="经核查，已责令整改。")
        act(answered_late, "demo-supervisor", "publish")
    with time_machine.travel(at(2026, 11, 25), tick=False):
        case_services.rate_case(on_time, code, "satisfied", None)
    for day in range(20, 31):
        with time_machine.travel(at(2026, 11, day, 0, 30), tick=False):
            run_sweep()
    with time_machine.travel(at(2026, 11, 30, 8), tick=False):
        stored = services.build(WEEK)
    return {"report": stored, "unanswered": unanswered, "on_time": on_time, "late": answered_late}


def county_view(stored) -> dict:
    return {**view_for(stored.data), "version": stored.version, "built_at": stored.built_at.isoformat()}


def test_the_scenario_gives_the_figures_the_files_are_checked_against(report):
    view = county_view(report["report"])
    summary = view["summary"]
    assert (summary["received"], summary["responded_on_time"], summary["responded_late"]) == (1, 1, 1)
    assert (summary["open_overdue"], summary["rated"], summary["satisfied"]) == (1, 1, 1)
    assert summary["on_time_rate"] == 0.5 and summary["satisfaction_rate"] == 1.0
    assert view["flags"] == ["on_time_rate"]  # 50% < 92%
    by_code = {o["code"]: o for o in view["orgs"]}
    assert list(by_code) == ["demo-county", "demo-county-group-1", JW, TOWN2_JW]  # the bodies
    assert by_code[JW]["flags"] == ["on_time_rate"]  # the transferred case counts for its owner
    assert by_code[TOWN2_JW]["flags"] == [] and by_code[TOWN2_JW]["total"]["on_time_rate"] is None
    assert [r["tracking_no"] for r in view["overdue_cases"]] == [report["unanswered"]]


# -- CSV -----------------------------------------------------------------------------------------------


def test_csv_is_utf8_with_bom_and_has_chinese_headers_figures_and_footnotes(report):
    view = county_view(report["report"])
    data = export.to_csv(view)
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "每周超期件通报 2026-W48（2026-11-23 至 2026-11-29）示范县纪委监委"

    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "单位")
    header = rows[header_at]
    assert header == ["单位", *(LABELS[n] for n in COUNTS), "按期答复率", "满意率", "需关注"]
    org_rows = rows[header_at + 1 : header_at + 1 + len(view["orgs"])]
    county = dict(zip(header, org_rows[0], strict=True))
    assert county["单位"] == "示范县纪委监委"
    assert county["周末超期未答复"] == "1" and county["按期答复"] == "1" and county["超期答复"] == "1"
    assert county["按期答复率"] == "50.0%" and county["满意率"] == "100.0%"
    assert county["需关注"] == "按期答复率低于92%"
    for org, row in zip(view["orgs"], org_rows, strict=True):
        assert row[0] == "\u3000" * org["depth"] + org["name"]  # indented by depth (county view: from 0)
        assert [int(x) for x in row[1 : 1 + len(COUNTS)]] == [org["total"][n] for n in COUNTS]
    town2 = next(dict(zip(header, r, strict=True)) for r in org_rows if r[0].strip("\u3000") == NASTY)
    assert town2["按期答复率"] == "—" and town2["需关注"] == ""

    assert rows[header_at + 1 + len(view["orgs"])] == []  # a blank line, then the overdue list
    list_header_at = next(i for i, r in enumerate(rows) if r and r[0] == "序号")
    assert rows[list_header_at] == [
        "序号", "查询编号", "主办机关", "承办人", "问题类别", "收件日期", "答复期限",
        "超期工作日", "督办级别", "实名", "备注",
    ]  # fmt: skip
    item = dict(zip(rows[list_header_at], rows[list_header_at + 1], strict=True))
    assert item["查询编号"] == report["unanswered"] and item["主办机关"] == "城关镇纪委"
    assert item["答复期限"] == "2026-11-23" and item["超期工作日"] == "4" and item["督办级别"] == "一级督办"
    for note in view["footnotes"]:
        assert note in text


def test_csv_and_xlsx_keep_formula_like_text_as_text(report):
    view = copy.deepcopy(county_view(report["report"]))
    evil = '=HYPERLINK("http://evil.example","点我")'
    view["orgs"][0]["name"] = evil  # the top org: no indentation in front
    view["overdue_cases"][0]["handler"] = "@SUM(1+1)"
    rows = list(csv.reader(io.StringIO(export.to_csv(view).decode("utf-8-sig"))))
    cells = {c for r in rows for c in r}
    assert "'" + evil in cells and "'@SUM(1+1)" in cells and evil not in cells

    book = load_workbook(io.BytesIO(export.to_xlsx(view)))
    cells = [c for ws in book for row in ws.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    values = {c.value for c in cells}
    assert evil in values and "@SUM(1+1)" in values  # kept verbatim, typed as text


# -- XLSX ----------------------------------------------------------------------------------------------


def header_row(ws, first: str) -> int:
    return next(r for r in range(1, 10) if ws.cell(row=r, column=1).value == first)


def test_xlsx_has_summary_and_overdue_sheets_with_frozen_chinese_headers_and_real_numbers(report):
    view = county_view(report["report"])
    book = load_workbook(io.BytesIO(export.to_xlsx(view)))
    assert book.sheetnames == ["汇总", "超期件清单"]

    ws = book["汇总"]
    top = header_row(ws, "单位")
    headers = [c.value for c in ws[top]]
    assert headers == ["单位", *(LABELS[n] for n in COUNTS), "按期答复率", "满意率", "需关注"]
    assert all(c.font.bold for c in ws[top])
    assert ws.freeze_panes == f"B{top + 1}"  # the header row and the org column stay in view
    assert ws.column_dimensions["A"].width >= 10 and ws.column_dimensions["B"].width >= 8
    col = {name: i for i, name in enumerate(headers, start=1)}
    for r, org in enumerate(view["orgs"], start=top + 1):
        assert ws.cell(row=r, column=1).value.strip("\u3000") == org["name"]
        for name in COUNTS:
            assert ws.cell(row=r, column=col[LABELS[name]]).value == org["total"][name]
        for name in ("on_time_rate", "satisfaction_rate"):
            cell = ws.cell(row=r, column=col[LABELS[name]])
            if org["total"][name] is None:
                assert cell.value == "—"
            else:
                assert cell.value == pytest.approx(org["total"][name])
                assert cell.number_format == "0.0%"
        flag_cell = ws.cell(row=r, column=col["需关注"])
        assert bool(flag_cell.value) == bool(org["flags"])
        if org["flags"]:  # flagged orgs are highlighted
            assert ws.cell(row=r, column=1).fill.fgColor.rgb.endswith("FFC7CE")
    county = top + 1
    assert ws.cell(row=county, column=col["按期答复率"]).value == 0.5
    assert ws.cell(row=county, column=col["需关注"]).value == "按期答复率低于92%"
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert "说明" in texts
    for note in view["footnotes"]:
        assert any(t.endswith(note) for t in texts)
    assert NASTY in [t.strip("\u3000") for t in texts]  # stored as the literal text

    ws = book["超期件清单"]
    top = header_row(ws, "序号")
    assert [c.value for c in ws[top]][:4] == ["序号", "查询编号", "主办机关", "承办人"]
    assert ws.freeze_panes == f"A{top + 1}"
    assert ws.column_dimensions["B"].width >= len(report["unanswered"])
    row = {ws.cell(row=top, column=c).value: ws.cell(row=top + 1, column=c).value for c in range(1, 12)}
    assert row["查询编号"] == report["unanswered"] and row["超期工作日"] == 4
    assert row["答复期限"].date().isoformat() == "2026-11-23"
    assert ws.cell(row=top + 2, column=1).value is None  # one overdue case, one row
    formulas = [c for s in book for r in s.iter_rows() for c in r if c.data_type == "f"]
    assert formulas == []


def test_xlsx_for_a_subtree_and_an_empty_overdue_list(report):
    view = view_for(report["report"].data, get_org_by_code(db.session, TOWN2_JW).id)
    book = load_workbook(io.BytesIO(export.to_xlsx(view)))
    names = [c.value.strip("\u3000") for c in book["汇总"]["A"] if isinstance(c.value, str)]
    assert NASTY in names and "城关镇纪委" not in names and "示范县纪委监委" not in names
    ws = book["超期件清单"]
    top = header_row(ws, "序号")
    assert ws.cell(row=top + 1, column=1).value == "本周末无超期未答复件"


# -- HTML ----------------------------------------------------------------------------------------------


def test_html_is_standalone_with_headline_trend_list_footnotes_and_escapes_names(report):
    view = county_view(report["report"])
    html = export.to_html(view)
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "<title>每周超期件通报 2026-W48（2026-11-23 至 2026-11-29）示范县纪委监委</title>" in html
    assert "<h1>每周超期件通报</h1>" in html and "2026-11-23 至 2026-11-29" in html
    assert "生成时间：2026-11-30 08:00（第1版）" in html
    assert "需关注：按期答复率低于92%" in html  # the headline flag
    assert '<span class="value">50.0%</span>' in html and '<span class="value">100.0%</span>' in html
    for week in view["trend"]:
        assert f"<td>{week['week']}</td>" in html
    assert report["unanswered"] in html and "一级督办" in html
    for note in view["footnotes"]:
        assert note.replace("“", "&#34;") in html or note in html
    # Data is text: the org named <script>… is escaped; no scripts, no external resources.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;纪委" in html
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html and "<link" not in html


# -- mail ----------------------------------------------------------------------------------------------


def read_mails(mail_dir) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(mail_dir.glob("*.eml"))
    ]


def test_each_org_with_supervisors_gets_its_subtree_by_mail_with_html_and_xlsx(app, report, mail_dir):
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "weekly_report").order_by(OutboxMessage.id)
    ).all()
    bodies = ("demo-county", "demo-county-group-1", JW, TOWN2_JW)  # the bodies that have supervisors
    orgs = {get_org_by_code(db.session, code).id: code for code in bodies}
    assert sorted(r.payload["org_id"] for r in rows) == sorted(orgs)
    for row in rows:
        assert outbox.deliver(db.session, row.id, default_channels()) == "delivered"

    mails = {m["To"]: m for m in read_mails(mail_dir)}
    assert sorted(mails) == [
        "demo-group-1-intake@example.org",
        "demo-supervisor@example.org",
        f"{JW_INTAKE}@example.org",
        "demo-town-2-jw-intake@example.org",
    ]

    town = mails[f"{JW_INTAKE}@example.org"]  # exactly its body's supervisors, no one above
    assert town["Subject"] == "每周超期件通报 2026-W48（城关镇纪委）"
    text = town.get_body(preferencelist=("plain",)).get_content()
    assert "按期答复率：0.0%" in text and report["unanswered"] in text
    html = town.get_body(preferencelist=("html",)).get_content()
    assert "每周超期件通报" in html and "城关镇纪委" in html and "alert(1)" not in html
    (attachment,) = list(town.iter_attachments())
    assert attachment.get_filename() == "每周超期件通报-2026-W48-demo-town-1-jw.xlsx"
    assert attachment.get_content_type() == "/".join(export.XLSX_MIME)
    assert export.XLSX_MIME[1] == "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(attachment.get_content()))
    assert book.sheetnames == ["汇总", "超期件清单"]
    ws = book["汇总"]
    top = header_row(ws, "单位")
    assert ws.cell(row=top + 1, column=1).value == "城关镇纪委"
    names = [c.value.strip("\u3000") for c in ws["A"][top:] if isinstance(c.value, str)]
    assert NASTY not in names and "示范县纪委监委" not in names and "东关村" not in names

    county = mails["demo-supervisor@example.org"]
    assert county["Subject"] == "每周超期件通报 2026-W48（示范县纪委监委）"
    html = county.get_body(preferencelist=("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script" not in html.lower()
    (attachment,) = list(county.iter_attachments())
    assert attachment.get_filename() == "每周超期件通报-2026-W48-demo-county.xlsx"

    # Delivered once: a second run of the same rows sends nothing.
    for row in rows:
        assert outbox.deliver(db.session, row.id, default_channels()) == "skipped"
    assert len(read_mails(mail_dir)) == 4


def test_weekly_report_recipients_do_not_walk_up_the_tree(report):
    village = get_org_by_code(db.session, VILLAGE)
    jw = get_org_by_code(db.session, JW)
    payload = {"report_id": report["report"].id, "role": "supervisor", "exact_org": True}
    assert recipients(db.session, {**payload, "org_id": village.id}) == []
    assert [u.username for u in recipients(db.session, {**payload, "org_id": jw.id})] == [JW_INTAKE]
    # Without exact_org (escalations) a unit is still never walked past (DESIGN.md §2a): what is
    # meant for a village never reaches its 纪委 or the county (tests/jobs/test_notify.py has the walk).
    assert recipients(db.session, {"org_id": village.id, "role": "supervisor"}) == []
    # An inactive supervisor gets nothing, and the weekly report does not walk up to the county.
    user = db.session.scalar(select(User).where(User.username == JW_INTAKE))
    user.active = False
    db.session.commit()
    assert recipients(db.session, {**payload, "org_id": jw.id}) == []


def test_a_missing_report_fails_loudly_and_is_retried(app, report, mail_dir):
    row = outbox.queue_message(
        db.session,
        kind="weekly_report",
        channel="email",
        payload={
            "report_id": 999_999,
            "org_id": db.session.scalar(select(Org.id).where(Org.code == "demo-county")),
            "role": "supervisor",
            "exact_org": True,
        },
    )
    db.session.commit()
    with pytest.raises(LookupError):
        outbox.deliver(db.session, row.id, default_channels())
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).status == "pending"
    assert not mail_dir.exists() or not list(mail_dir.glob("*.eml"))


# -- the command ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "html"])
def test_command_writes_each_format(app, report, tmp_path, fmt):
    target = tmp_path / f"weekly.{fmt}"
    args = ["report", "weekly", "--week", "2026-W48", "--format", fmt, "-o", str(target)]
    result = app.test_cli_runner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2026-W48 (version 1)" in result.output
    data = target.read_bytes()
    if fmt == "csv":
        assert data.startswith(b"\xef\xbb\xbf") and "示范县纪委监委" in data.decode("utf-8-sig")
    elif fmt == "xlsx":
        assert load_workbook(io.BytesIO(data)).sheetnames == ["汇总", "超期件清单"]
    else:
        assert "<h1>每周超期件通报</h1>" in data.decode("utf-8")


def test_command_for_one_org(app, report, tmp_path):
    target = tmp_path / "town.csv"
    args = ["report", "weekly", "--week", "2026-W48", "--org", JW, "--format", "csv", "-o"]
    result = app.test_cli_runner().invoke(main, [*args, str(target)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8-sig")
    assert text.startswith("每周超期件通报 2026-W48（2026-11-23 至 2026-11-29）城关镇纪委")
    assert "alert(1)" not in text and "示范县纪委监委" not in text and report["unanswered"] in text
