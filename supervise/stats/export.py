"""统计分析 as XLSX: what /staff/stats shows (the table, the trend, the hot spots, the definitions).

The house style of reports/export.py: a title, a bold frozen header, fitted widths, landscape on
one page wide, rates as numbers formatted 0.0% ("—" where there is no base), no formulas.
"""

from __future__ import annotations

import io
from typing import Any

from supervise.reports.export import _display_width
from supervise.stats.services import COLUMNS, RATES

DASH = "—"


def to_xlsx(
    view: dict[str, Any], labels: dict[str, str], headers: dict[str, str], footnotes: list[str]
) -> bytes:
    """One sheet "统计": the grouped table with its total, the trend, the hot spots, the footnotes.

    `labels` names the figures, `headers` the row headers (group, trend, hot spots, total, title),
    both in the reader's language; the view is stats.services.view's."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="D9E1F2")
    thin = Side(style="thin", color="A6A6A6")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    centered = Alignment(horizontal="center", vertical="center", wrap_text=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "统计"
    widths: dict[int, int] = {}

    def put(row: int, col: int, value: Any):
        cell = ws.cell(row=row, column=col, value=value)
        if isinstance(value, str) and cell.data_type == "f":
            cell.data_type = "s"  # text that looks like a formula stays text
        widths[col] = max(widths.get(col, 8), min(_display_width(value) + 2, 40))
        return cell

    def table(top: int, first: str, rows: list[dict[str, Any]], key: str, total: dict | None = None) -> int:
        for col, label in enumerate([first, *(labels[c] for c in COLUMNS)], start=1):
            cell = put(top, col, label)
            cell.font, cell.fill, cell.alignment, cell.border = bold, header_fill, centered, border
        body = [*rows, {key: headers["total"], **total}] if total is not None else rows
        for r, row in enumerate(body, start=top + 1):
            put(r, 1, row[key]).border = border
            for col, name in enumerate(COLUMNS, start=2):
                value = row[name]
                if isinstance(value, float) and name not in RATES:
                    value = round(value, 1)
                cell = put(r, col, DASH if value is None else value)
                cell.border = border
                if value is None:
                    cell.alignment = Alignment(horizontal="center")
                elif name in RATES:
                    cell.number_format = "0.0%"
                elif name == "working_days_to_answer":
                    cell.number_format = "0.0"
            if total is not None and row is body[-1]:
                for col in range(1, len(COLUMNS) + 2):
                    ws.cell(row=r, column=col).font = bold
        return top + len(body) + 2

    put(1, 1, headers["title"]).font = Font(bold=True, size=14)
    put(2, 1, headers["subtitle"])
    nxt = table(4, headers["group"], view["rows"], "label", view["total"])
    put(nxt - 1, 1, headers["trend"]).font = bold
    nxt = table(nxt, headers["trend_key"], view["trend"], "key")
    put(nxt - 1, 1, headers["hot_spots"]).font = bold
    nxt = table(nxt, headers["unit"], view["hot_spots"], "label")
    put(nxt, 1, headers["notes"]).font = bold
    for i, note in enumerate(footnotes, start=1):
        ws.cell(row=nxt + i, column=1, value=f"{i}. {note}")
    for col, width in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = "B5"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
