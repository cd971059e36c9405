"""The assessment as XLSX "for the organisation department": one sheet of scores, the definitions,
weights and minimum sample in a footnote block under the table (house style of reports/export.py:
title lines, a bold frozen header, fitted widths, landscape on one page wide, real numbers, no
formulas, text that looks like a formula kept as text)."""

from __future__ import annotations

import io
from typing import Any

from supervise.assessment.services import NO_POPULATION, PARTS, THIN, footnotes
from supervise.cases.labels import ORG_KIND_LABELS
from supervise.reports.export import DASH, _display_width

RATE_PARTS = ("on_time", "satisfaction", "reopen", "escalation")


def headers(translate=lambda s: s) -> list[str]:
    """The table's columns, page and XLSX alike."""
    t = translate
    out = [t("排名"), t("单位"), t("类型"), t("人口"), t("收件"), t("已答复"), t("评价数"), t("有效反映")]
    for part in PARTS:
        out += [t(part.label), t("%(part)s得分") % {"part": t(part.label)}]
    return [*out, t("考核得分")]


def value_text(key: str, part: dict[str, Any], translate=lambda s: s) -> str:
    """A part's figure as printed: "80.0%", "2.40", with "（样本不足）" / "—（未填人口）" where left out."""
    value = part["value"]
    text = DASH if value is None else (f"{value * 100:.1f}%" if key in RATE_PARTS else f"{value:.2f}")
    if part["missing"] == "thin":
        text += f"（{translate(THIN)}）"
    elif part["missing"] == "no_population":
        text += f"（{translate(NO_POPULATION)}）"
    return text


def points_text(points: float | None) -> str:
    return DASH if points is None else f"{points:.1f}"


def kind_text(kind: str, translate=lambda s: s) -> str:
    return translate(ORG_KIND_LABELS[kind]) if kind in ORG_KIND_LABELS else kind


def to_xlsx(result: dict[str, Any], title: str, translate=lambda s: s) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    thin_side = Side(style="thin", color="A6A6A6")
    border = Border(left=thin_side, right=thin_side, top=thin_side, bottom=thin_side)
    header_fill = PatternFill("solid", fgColor="D9E1F2")
    grey = Font(color="808080")
    centered = Alignment(horizontal="center", vertical="center", wrap_text=True)

    wb = Workbook()
    ws = wb.active
    ws.title = translate("考核得分")

    def put(row: int, col: int, value: Any):
        cell = ws.cell(row=row, column=col, value=value)
        if isinstance(value, str) and cell.data_type == "f":
            cell.data_type = "s"  # a unit named "=…" stays text
        return cell

    put(1, 1, title).font = Font(bold=True, size=14)
    put(2, 1, translate("考核期：%(start)s 至 %(end)s（不含）") % result["period"])
    top = 3
    names = headers(translate)
    for col, label in enumerate(names, start=1):
        cell = put(top, col, label)
        cell.font, cell.fill, cell.alignment, cell.border = bold, header_fill, centered, border
    widths = [_display_width(label) for label in names]
    for r, row in enumerate(result["rows"], start=top + 1):
        counts = row["counts"]
        values: list[tuple[Any, str | None]] = [
            (row["rank"] if row["rank"] is not None else DASH, None),
            (row["org"]["name"], None),
            (kind_text(row["org"]["kind"], translate), None),
            (row["population"] if row["population"] is not None else DASH, None),
            (counts["received"], None),
            (counts["answered"], None),
            (counts["rated"], None),
            (counts["valid"], None),
        ]
        for part in PARTS:
            p = row["parts"][part.key]
            rate = part.key in RATE_PARTS
            if p["value"] is None:
                values.append((value_text(part.key, p, translate), None))
            else:
                fmt = "0.0%" if rate else "0.00"
                if p["missing"] == "thin":
                    fmt += f'"（{translate(THIN)}）"'
                values.append((p["value"], fmt))
            values.append((p["points"] if p["points"] is not None else DASH, "0.0"))
        values.append((row["score"] if row["score"] is not None else DASH, "0.0"))
        for col, (value, fmt) in enumerate(values, start=1):
            cell = put(r, col, value)
            cell.border = border
            if fmt and not isinstance(value, str):
                cell.number_format = fmt
                if '"' in fmt:
                    cell.font = grey
            elif isinstance(value, str) and value.startswith(DASH):
                cell.alignment = Alignment(horizontal="center")
            shown = value_text_for_width(value, fmt)
            widths[col - 1] = max(widths[col - 1], _display_width(shown))
        ws.cell(row=r, column=len(names)).font = bold
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 8), 40)
    ws.freeze_panes = ws.cell(row=top + 1, column=3).coordinate
    ws.print_title_rows = f"{top}:{top}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    last = top + len(result["rows"])
    if result["rows"]:
        ws.auto_filter.ref = f"A{top}:{get_column_letter(len(names))}{last}"
    else:
        put(top + 1, 1, translate("考核期内没有可考核的单位"))
        last += 1

    notes = last + 2
    put(notes, 1, translate("说明")).font = bold
    for i, note in enumerate(footnotes(result, translate), start=1):
        put(notes + i, 1, f"{i}. {note}")
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def value_text_for_width(value: Any, fmt: str | None) -> str:
    if isinstance(value, float) and fmt and fmt.startswith("0.0%"):
        return f"{value * 100:.1f}%" + ("（样本不足）" if '"' in fmt else "")
    return str(value)
