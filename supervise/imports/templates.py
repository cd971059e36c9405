"""The XLSX template of each kind: the header row (required columns marked by colour and a note on
each header cell), one example row, and a second sheet explaining every column and its values.
Only the first sheet is read on import, so the template goes back in as it is once filled."""

from __future__ import annotations

import io
from collections.abc import Callable

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

from supervise.i18n import N_
from supervise.imports.service import KINDS

REQUIRED_FILL = PatternFill("solid", fgColor="FFE699")
OPTIONAL_FILL = PatternFill("solid", fgColor="DDEBF7")


def template_xlsx(kind: str, translate: Callable[[str], str] = lambda s: s) -> bytes:
    """The template for `kind` (orgs, points, users, cases) as XLSX bytes."""
    module = KINDS[kind]
    book = Workbook()
    sheet = book.active
    sheet.title = translate(module.LABEL)[:31]
    bold = Font(bold=True)
    for index, column in enumerate(module.COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index, value=translate(column.label))
        cell.font = bold
        cell.fill = REQUIRED_FILL if column.required else OPTIONAL_FILL
        need = translate(N_("必填")) if column.required else translate(N_("选填"))
        cell.comment = Comment(f"{need}：{translate(column.help)}", "supervise")
        # Text cells: a code like 0012 or a phone number stays as typed.
        example = sheet.cell(row=2, column=index, value=column.example or None)
        example.number_format = "@"
        sheet.column_dimensions[cell.column_letter].width = max(14, min(40, len(column.example) * 2 + 4))
    sheet.freeze_panes = "A2"
    notes = book.create_sheet(translate(N_("填写说明")))
    notes.append(
        [
            translate(N_("列名")),
            translate(N_("英文名")),
            translate(N_("是否必填")),
            translate(N_("说明")),
            translate(N_("示例")),
        ]
    )
    for cell in notes[1]:
        cell.font = bold
    for column in module.COLUMNS:
        notes.append(
            [
                translate(column.label),
                column.key,
                translate(N_("必填")) if column.required else translate(N_("选填")),
                translate(column.help),
                column.example,
            ]
        )
    notes.append([])
    for line in (
        N_(
            "只读取第一个工作表；第 1 行为列名（中文列名或英文名均可），数据从第 2 行起，示例行请改写或删除。"
        ),
        N_("也可另存为 CSV（UTF-8 或 GBK 编码）导入。"),
        N_(
            "任何一行有问题时整个文件都不会导入；请按提示的行号和列名修改后重新导入。重复导入同一文件不会重复登记。"
        ),
    ):
        notes.append([translate(line)])
    for letter, width in zip("ABCDE", (16, 16, 10, 70, 24), strict=True):
        notes.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
