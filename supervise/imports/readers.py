"""Reading an uploaded spreadsheet: XLSX (openpyxl, read-only) or CSV, judged by content.

An XLSX is a ZIP holding `[Content_Types].xml`; anything else that is not text is refused. A CSV
is UTF-8 (with or without the BOM Excel adds) or GB18030 — the superset of GBK that Excel in
China writes when saving "CSV (逗号分隔)".
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from supervise.i18n import N_

# A county's ledger is a few thousand rows; a limit keeps a mistaken upload from tying up a worker.
MAX_ROWS = 50_000
# What the ZIP may expand to: an XLSX "bomb" is refused before openpyxl reads it.
MAX_UNZIPPED = 300 * 1024 * 1024


class UnreadableFile(Exception):
    """The file is not a spreadsheet we read; `message` is a msgid, `params` its values."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message, self.params = message, params


@dataclass
class Table:
    """The first sheet: its header (row 1) and the rows below it, numbered as the spreadsheet
    shows them (empty rows skipped but counted)."""

    header: list[str]
    rows: list[tuple[int, list[Any]]]


def file_format(data: bytes) -> str:
    """`xlsx` or `csv`, by content (never by the file's name)."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
                unzipped = sum(info.file_size for info in archive.infolist())
        except zipfile.BadZipFile as exc:
            raise UnreadableFile(N_("文件已损坏，无法读取")) from exc
        if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
            raise UnreadableFile(N_("只能导入 XLSX 或 CSV 文件"))
        if unzipped > MAX_UNZIPPED:
            raise UnreadableFile(N_("文件解压后过大"))
        return "xlsx"
    if b"\0" in data[:8192]:  # an old .xls, a PDF, an image: not text
        raise UnreadableFile(N_("只能导入 XLSX 或 CSV 文件（旧版 .xls 请另存为 .xlsx）"))
    return "csv"


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030 (GBK's superset, what Excel in China saves)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(N_("无法识别文件编码：CSV 须为 UTF-8 或 GBK 编码")) from exc


def cell_value(value: Any) -> Any:
    """A cell as the checks take it: text stripped, whole numbers as text (a phone number or a
    code typed into a number cell), dates and times kept."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table(rows) -> Table:
    header: list[str] | None = None
    body: list[tuple[int, list[Any]]] = []
    for number, raw in enumerate(rows, start=1):
        values = [cell_value(v) for v in raw]
        while values and values[-1] == "":
            values.pop()
        if header is None:
            header = [str(v) for v in values]
            continue
        if not values:
            continue
        if len(body) >= MAX_ROWS:
            raise UnreadableFile(N_("文件行数过多（不超过 %(n)s 行），请分成几个文件导入"), n=MAX_ROWS)
        body.append((number, values))
    if not header:
        raise UnreadableFile(N_("文件是空的：第 1 行须为列名"))
    return Table(header, body)


def read_table(data: bytes) -> Table:
    """The first sheet of an XLSX, or a CSV: header and rows."""
    if file_format(data) == "xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds on a damaged file
            raise UnreadableFile(N_("文件已损坏，无法读取")) from exc
        try:
            return _table(book.worksheets[0].iter_rows(values_only=True))
        finally:
            book.close()
    text = decode_text(data)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","  # Excel's "Unicode text" is tabbed
    return _table(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
