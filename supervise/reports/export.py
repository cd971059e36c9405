"""The weekly report (每周超期件通报) as files: CSV, XLSX and a standalone HTML document.

Each takes one org's view (weekly.view_for, optionally with "version"/"built_at" from
services.report_view) and returns the file. The same three serve the command
(`supervise report weekly --format …`) and the mail (HTML body, XLSX attachment).

Every org row carries its subtree's totals (合计, as the footnotes say); a rate is a fraction in
the data, a percentage on paper, and "—" when there was nothing to divide.

Decisions:
- Text that a spreadsheet would run as a formula (a name starting with "=", "+", "-", "@") is
  written as text: in the XLSX by typing the cell as a string, in the CSV by a leading apostrophe
  (the usual CSV-injection guard). The files contain no formulas at all.
- The XLSX keeps real numbers and dates (rates formatted as percentages), so clerks can sort and sum.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import date, datetime
from typing import Any

from supervise.deadlines.calendar import SHANGHAI
from supervise.reports.weekly import COUNTS, LABELS, THIN

TITLE = "每周超期件通报"
RATES = ("on_time_rate", "satisfaction_rate")
FIGURES = (*COUNTS, *RATES)
# The headline: what a reader looks at first (the HTML and the mail's text part).
HEADLINE = (
    "received",
    "accepted",
    "on_time_rate",
    "satisfaction_rate",
    "open_overdue",
    "overdue_working_days",
    "due_soon",
    "escalated_level1",
    "escalated_level2",
    "reopened",
)
ORG_HEADER = "单位"
FLAG_HEADER = "需关注"
OVERDUE_COLUMNS = (
    ("no", "序号"),
    ("tracking_no", "查询编号"),
    ("org", "主办机关"),
    ("handler", "承办人"),
    ("category", "问题类别"),
    ("received_on", "收件日期"),
    ("due_on", "答复期限"),
    ("working_days_overdue", "超期工作日"),
    ("escalation_level", "督办级别"),
    ("real_name", "实名"),
    ("note", "备注"),
)
LEVELS = {0: "—", 1: "一级督办", 2: "二级督办"}
PROVISIONAL_NOTE = "期限暂定（该年节假日安排未公布）"
INDENT = "\u3000"  # an ideographic space per tree level: visible in Excel, survives CSV
DASH = "—"
XLSX_MIME = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


# -- shared wording ----------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    """0.9234 → 92.3%; None → an em dash."""
    return DASH if value is None else f"{value * 100:.1f}%"


def line(threshold: float) -> str:
    """A threshold as set (percent, whole or not): 0.92 → 92%, 0.925 → 92.5%."""
    return f"{threshold * 100:g}%"


def rate_text(value: float | None, name: str, figures: dict[str, Any]) -> str:
    """A rate as printed, marked when it rests on fewer cases than the minimum sample: "50.0%（样本不足）"."""
    return pct(value) + (f"（{THIN}）" if name in figures.get("thin", ()) else "")


def flag_text(flags: list[str], thresholds: dict[str, float]) -> str:
    """The 需关注 cell: which rate is under which line, e.g. "按期答复率低于92%"."""
    return "；".join(f"{LABELS[name]}低于{line(thresholds[name])}" for name in flags)


def level_text(level: int) -> str:
    return LEVELS.get(level, f"{level}级督办")


def local_time(iso: str | None) -> str:
    """An ISO timestamp (UTC in the data) as Beijing time, "2026-11-30 09:00"."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def heading(view: dict[str, Any]) -> str:
    """The title line, e.g. 每周超期件通报 2026-W47（2026-11-16 至 2026-11-22）示范县纪委监委."""
    return f"{TITLE} {view['week']}（{view['monday']} 至 {view['sunday']}）{view['org']['name']}"


def subject(view: dict[str, Any]) -> str:
    """The mail's subject line."""
    return f"{TITLE} {view['week']}（{view['org']['name']}）"


def attachment_name(view: dict[str, Any], ext: str = "xlsx") -> str:
    return f"{TITLE}-{view['week']}-{view['org']['code']}.{ext}"


def _generated(view: dict[str, Any]) -> str:
    text = f"生成时间：{local_time(view.get('built_at') or view.get('generated_at'))}"
    if view.get("version"):
        text += f"（第{view['version']}版）"
    return text


def _thresholds_text(view: dict[str, Any]) -> str:
    t = view["thresholds"]
    text = f"通报线：按期答复率 {line(t['on_time_rate'])}，满意率 {line(t['satisfaction_rate'])}"
    if t.get("min_sample"):  # reports stored before the minimum sample have none
        text += f"（少于 {t['min_sample']} 件的比率注明“{THIN}”，不标记）"
    return text


def _name(org: dict[str, Any], view: dict[str, Any]) -> str:
    """The org's name indented by its depth below the view's own org (which is not indented)."""
    return INDENT * _level(org, view) + org["name"]


def _level(org: dict[str, Any], view: dict[str, Any]) -> int:
    return org["depth"] - min(o["depth"] for o in view["orgs"])


def _overdue_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The overdue list as printed: numbered, levels and flags in words."""
    return [
        {
            **row,
            "no": i,
            "handler": row["handler"] or "未指派",
            "escalation_level": level_text(row["escalation_level"]),
            "real_name": "是" if row["real_name"] else "否",
            "note": PROVISIONAL_NOTE if row["due_provisional"] else "",
        }
        for i, row in enumerate(view["overdue_cases"], start=1)
    ]


# -- CSV -----------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    """A string a spreadsheet would evaluate gets a leading apostrophe; numbers pass through."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(view: dict[str, Any]) -> bytes:
    """UTF-8 with a BOM (so Excel opens the Chinese correctly): title lines, the per-org table,
    a blank line, the overdue list, a blank line, the footnotes."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")

    def row(*cells: Any) -> None:
        w.writerow([_safe(c) for c in cells])

    row(heading(view))
    row(_generated(view), _thresholds_text(view))
    row()
    row("各单位情况（合计，含下属单位）")
    row(ORG_HEADER, *(LABELS[name] for name in FIGURES), FLAG_HEADER)
    thresholds = view["thresholds"]
    for org in view["orgs"]:
        total = org["total"]
        row(
            _name(org, view),
            *(total[name] for name in COUNTS),
            *(rate_text(total[name], name, org) for name in RATES),
            flag_text(org["flags"], thresholds),
        )
    row()
    row(f"超期件清单（至 {view['sunday']} 24:00 答复期限已过仍未答复，共 {len(view['overdue_cases'])} 件）")
    row(*(label for _, label in OVERDUE_COLUMNS))
    for item in _overdue_rows(view):
        row(*(item[key] for key, _ in OVERDUE_COLUMNS))
    if not view["overdue_cases"]:
        row("无")
    row()
    row("说明")
    for i, note in enumerate(view["footnotes"], start=1):
        row(f"{i}. {note}")
    return out.getvalue().encode("utf-8-sig")


# -- XLSX ----------------------------------------------------------------------------------------------


def _display_width(value: Any) -> int:
    """Columns are measured in Latin characters: a CJK character takes two."""
    text = pct(value) if isinstance(value, float) else str(value if value is not None else "")
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def to_xlsx(view: dict[str, Any]) -> bytes:
    """Two sheets, "汇总" (per-org table, footnotes below) and "超期件清单"; each with a title, a bold
    frozen header row, fitted column widths, landscape print on one page wide. No formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    title_font = Font(bold=True, size=14)
    header_fill = PatternFill("solid", fgColor="D9E1F2")
    flag_fill = PatternFill("solid", fgColor="FFC7CE")
    flag_font = Font(bold=True, color="9C0006")
    thin = Side(style="thin", color="A6A6A6")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    centered = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def put(ws, row: int, col: int, value: Any):
        cell = ws.cell(row=row, column=col, value=value)
        if isinstance(value, str) and cell.data_type == "f":
            cell.data_type = "s"  # text that looks like a formula stays text
        return cell

    def table(ws, top: int, headers: list[str], rows: list[list[Any]], freeze_col: int) -> None:
        """Header at row `top`, rows below; widths from the content; frozen header (and columns)."""
        for col, label in enumerate(headers, start=1):
            cell = put(ws, top, col, label)
            cell.font, cell.fill, cell.alignment, cell.border = bold, header_fill, centered, border
        for r, values in enumerate(rows, start=top + 1):
            for col, value in enumerate(values, start=1):
                put(ws, r, col, value).border = border
        for col, label in enumerate(headers, start=1):
            widest = max([_display_width(label), *(_display_width(v[col - 1]) for v in rows)])
            ws.column_dimensions[get_column_letter(col)].width = min(max(widest + 2, 8), 40)
        ws.freeze_panes = ws.cell(row=top + 1, column=freeze_col).coordinate
        ws.print_title_rows = f"{top}:{top}"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        if rows:
            ws.auto_filter.ref = f"A{top}:{get_column_letter(len(headers))}{top + len(rows)}"

    def titles(ws, first: str, second: str) -> None:
        put(ws, 1, 1, first).font = title_font
        put(ws, 2, 1, second)

    wb = Workbook()
    thresholds = view["thresholds"]

    # Sheet 1: 汇总
    ws = wb.active
    ws.title = "汇总"
    titles(ws, heading(view), f"{_generated(view)}；{_thresholds_text(view)}；各单位数字为合计（含下属单位）")
    headers = [ORG_HEADER, *(LABELS[name] for name in FIGURES), FLAG_HEADER]
    top = 3
    rows = []
    for org in view["orgs"]:
        total = org["total"]
        rows.append(
            [
                _name(org, view),
                *(total[name] for name in COUNTS),
                *(DASH if total[name] is None else total[name] for name in RATES),
                flag_text(org["flags"], thresholds),
            ]
        )
    table(ws, top, headers, rows, freeze_col=2)
    first_rate = 2 + len(COUNTS)
    for r, org in enumerate(view["orgs"], start=top + 1):
        for offset, name in enumerate(RATES):
            cell = ws.cell(row=r, column=first_rate + offset)
            if org["total"][name] is None:
                cell.alignment = Alignment(horizontal="center")
            elif name in org.get("thin", ()):  # still a number, displayed with the mark
                cell.number_format = f'0.0%"（{THIN}）"'
                cell.font = Font(color="808080")
            else:
                cell.number_format = "0.0%"
            if name in org["flags"]:
                cell.font = flag_font
        if org["flags"]:
            for col in range(1, len(headers) + 1):
                ws.cell(row=r, column=col).fill = flag_fill
            ws.cell(row=r, column=len(headers)).font = flag_font
        if _level(org, view) == 0:
            ws.cell(row=r, column=1).font = bold
    notes = top + len(rows) + 2
    put(ws, notes, 1, "说明").font = bold
    for i, note in enumerate(view["footnotes"], start=1):
        put(ws, notes + i, 1, f"{i}. {note}")
    _channel_table(ws, notes + len(view["footnotes"]) + 2, view, put, bold, header_fill, border)

    # Sheet 2: 超期件清单
    ws = wb.create_sheet("超期件清单")
    titles(
        ws,
        f"超期件清单 {view['week']}（{view['org']['name']}）",
        f"至 {view['sunday']} 24:00 答复期限已过仍未答复的诉求件，共 {len(view['overdue_cases'])} 件，"
        "按超期工作日从多到少排列",
    )
    items = _overdue_rows(view)
    rows = [
        [
            date.fromisoformat(item[key]) if key in ("received_on", "due_on") else item[key]
            for key, _ in OVERDUE_COLUMNS
        ]
        for item in items
    ]
    table(ws, top, [label for _, label in OVERDUE_COLUMNS], rows, freeze_col=1)
    date_cols = [i for i, (key, _) in enumerate(OVERDUE_COLUMNS, start=1) if key in ("received_on", "due_on")]
    for r in range(top + 1, top + 1 + len(rows)):
        for col in date_cols:
            ws.cell(row=r, column=col).number_format = "yyyy-mm-dd"
    if not rows:
        put(ws, top + 1, 1, "本周末无超期未答复件")

    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _channel_table(ws, top: int, view: dict[str, Any], put, bold, fill, border) -> None:
    """本周收件 by 来源渠道 under the summary's notes (issue 16), one row per org, subtree included.
    Below the notes, not a sheet of its own: readers and scripts know the workbook's two sheets.
    Reports stored before issue 16 have no channel counts: nothing is written for them."""
    if not view["orgs"] or "channels" not in view["orgs"][0]:
        return
    from supervise.cases.labels import CHANNEL_LABELS

    put(ws, top, 1, "本周收件来源渠道（合计，含下属单位）").font = bold
    headers = [ORG_HEADER, *CHANNEL_LABELS.values(), "合计"]
    for col, label in enumerate(headers, start=1):
        cell = put(ws, top + 1, col, label)
        cell.font, cell.fill, cell.border = bold, fill, border
    for r, org in enumerate(view["orgs"], start=top + 2):
        counts = org["channels"]
        values = [_name(org, view), *(counts.get(code, 0) for code in CHANNEL_LABELS), sum(counts.values())]
        for col, value in enumerate(values, start=1):
            put(ws, r, col, value).border = border


# -- HTML and plain text ---------------------------------------------------------------------------------


def to_html(view: dict[str, Any]) -> str:
    """A standalone, printable document (inline style, no scripts, no external resources): the CLI's
    html format and the mail's HTML part. Autoescaped: every name in it is data."""
    from flask import render_template

    trend = view["trend"]
    most = max([point["open_overdue"] for point in trend] or [0])
    return render_template(
        "reports/weekly.html",
        view=view,
        title=TITLE,
        heading=heading(view),
        generated=_generated(view),
        thresholds_text=_thresholds_text(view),
        labels=LABELS,
        counts=COUNTS,
        rates=RATES,
        headline=HEADLINE,
        overdue_rows=_overdue_rows(view),
        overdue_columns=OVERDUE_COLUMNS,
        trend_max=most,
        pct=pct,
        rate_text=rate_text,
        thin_label=THIN,
        flag_text=flag_text,
        name_of=lambda org: _name(org, view),
        level_of=lambda org: _level(org, view),
    )


def to_text(view: dict[str, Any]) -> str:
    """The mail's plain-text alternative: headline, flagged orgs, the worst overdue cases, footnotes."""
    summary, thresholds = view["summary"], view["thresholds"]
    lines = [heading(view), _generated(view), _thresholds_text(view), ""]
    for name in HEADLINE:
        value = rate_text(summary[name], name, view) if name in RATES else summary[name]
        lines.append(f"{LABELS[name]}：{value}")
    if view["flags"]:
        lines.append(f"需关注：{flag_text(view['flags'], thresholds)}")
    flagged = [o for o in view["orgs"] if o["flags"] and o["id"] != view["org"]["id"]]
    if flagged:
        lines += ["", "需关注的下属单位："]
        lines += [f"  {o['name']}：{flag_text(o['flags'], thresholds)}" for o in flagged]
    items = _overdue_rows(view)
    lines += ["", f"超期件清单（共 {len(items)} 件，详见附件）："]
    for item in items[:20]:
        lines.append(
            f"  {item['tracking_no']}  {item['org']}  {item['handler']}  期限 {item['due_on']}  "
            f"超期 {item['working_days_overdue']} 个工作日  {item['escalation_level']}"
        )
    if len(items) > 20:
        lines.append(f"  ……另 {len(items) - 20} 件见附件")
    lines += ["", "说明："]
    lines += [f"{i}. {note}" for i, note in enumerate(view["footnotes"], start=1)]
    return "\n".join(lines) + "\n"
