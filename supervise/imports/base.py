"""What every kind of import shares: its columns, the problems found in its rows, the plan of
what it would change, and the scope of the admin who runs it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from supervise.deadlines.calendar import SHANGHAI, start_of_day_utc
from supervise.i18n import N_
from supervise.orgs.models import BODY_KINDS, Org

# All the problems of a file are listed, up to this many (a wrong column fills thousands of rows).
MAX_PROBLEMS = 200


@dataclass(frozen=True)
class Column:
    """One column of a kind: `key` (the English alias, also accepted as a header), `label` (the
    Chinese header, a msgid), whether every row must fill it, what goes in it and an example."""

    key: str
    label: str
    required: bool
    help: str
    example: str = ""


@dataclass(frozen=True)
class Problem:
    """What is wrong, where: `row` as the spreadsheet numbers it (the header is row 1; 0 for the
    file as a whole), `column` a label msgid (or ""), `message` a msgid with `params`."""

    row: int
    column: str
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, translate: Callable[[str], str] = lambda s: s) -> str:
        """第 12 行「上级单位代码」：找不到代码为 X 的单位 (in the reader's language)."""
        message = translate(self.message) % dict(self.params) if self.params else translate(self.message)
        if self.row and self.column:
            where = translate(N_("第 %(row)s 行「%(column)s」")) % {
                "row": self.row,
                "column": translate(self.column),
            }
        elif self.row:
            where = translate(N_("第 %(row)s 行")) % {"row": self.row}
        elif self.column:
            where = translate(N_("「%(column)s」")) % {"column": translate(self.column)}
        else:
            return message
        return translate(N_("%(where)s：%(message)s")) % {"where": where, "message": message}


class RowError(Exception):
    """Raised by a value check: the row's cell in `column` is wrong."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message, self.params = message, params


@dataclass
class Scope:
    """Where an import may write: everything (the command line), or an admin's subtree without
    the discipline bodies an admin at a unit may not see (DESIGN.md §2a; admin/common.py)."""

    path: str = "/"
    walled: tuple[str, ...] = ()
    at_body: bool = True
    system: bool = True  # the command line, or an admin at the top of the tree

    def contains_path(self, path: str) -> bool:
        return path.startswith(self.path) and not any(path.startswith(w) for w in self.walled)

    def contains(self, org: Org | None) -> bool:
        return org is not None and self.contains_path(org.path)

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @classmethod
    def of_admin(cls, session: Session, org: Org) -> Scope:
        from sqlalchemy import select

        walled: tuple[str, ...] = ()
        if not org.is_body:
            walled = tuple(
                session.scalars(
                    select(Org.path).where(
                        Org.path.startswith(org.path, autoescape=True), Org.kind.in_(BODY_KINDS)
                    )
                )
            )
        return cls(path=org.path, walled=walled, at_body=org.is_body, system=org.parent_id is None)


@dataclass
class ImportContext:
    """What the checks and the writes need besides the rows."""

    session: Session
    scope: Scope
    file_name: str
    now: datetime
    user_id: int | None = None  # the admin on the page; None from the command line
    username: str | None = None
    present: frozenset[str] = frozenset()  # the column keys the file has


@dataclass
class Plan:
    """What a file would change: counts per action, and the work to do once every row passed."""

    create: int = 0
    update: int = 0
    unchanged: int = 0
    apply: Callable[[ImportContext, Callable[[int], None]], dict[str, Any]] | None = None
    details: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (msgid, params) to show


# -- headers ---------------------------------------------------------------------------------------

_DECORATION = re.compile(r"[\s*＊]|[（(][^）)]*[）)]")


def header_key(text: str) -> str:
    """`单位代码*`, ` 单位代码（必填）` and `单位代码` are one header."""
    return _DECORATION.sub("", str(text)).lower()


def map_header(header: list[str], columns: Iterable[Column]) -> tuple[dict[str, int], list[Problem]]:
    """Column key → its index in the file, by the Chinese label or the English key; problems for
    a required column missing, a column twice, or a header we do not know."""
    known: dict[str, Column] = {}
    for column in columns:
        known[header_key(column.label)] = column
        known[header_key(column.key)] = column
    found: dict[str, int] = {}
    problems = []
    for index, text in enumerate(header):
        if not str(text).strip():
            continue
        column = known.get(header_key(text))
        if column is None:
            problems.append(Problem(0, "", N_("不认识的列名「%(name)s」"), {"name": str(text)[:40]}))
        elif column.key in found:
            problems.append(Problem(0, column.label, N_("这一列出现了两次")))
        else:
            found[column.key] = index
    for column in columns:
        if column.required and column.key not in found:
            problems.append(Problem(0, column.label, N_("缺少这一列（第 1 行须为列名）")))
    return found, problems


# -- values ----------------------------------------------------------------------------------------


def text_value(value: Any, *, max_len: int) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    if len(text) > max_len:
        raise RowError(N_("不能超过 %(n)s 个字"), n=max_len)
    return text


TRUE_WORDS = frozenset({"是", "启用", "在用", "1", "true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"否", "停用", "0", "false", "no", "n", "f"})


def bool_value(value: Any) -> bool:
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RowError(N_("须为“是”或“否”"))


def choice_value(value: Any, choices: Mapping[str, str], allowed_text: str) -> str:
    """A key or its Chinese label (`choices`: word → key, words lower-cased) → the key."""
    found = choices.get(str(value).strip().lower())
    if found is None:
        raise RowError(
            N_("“%(value)s”不是可选的值；可选：%(allowed)s"), value=str(value)[:40], allowed=allowed_text
        )
    return found


DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")


def moment_value(value: Any, now: datetime) -> datetime:
    """A date or a date and time (Asia/Shanghai; a date alone is the start of that day) → UTC."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
        moment = moment.astimezone(UTC)
    elif isinstance(value, date):
        moment = start_of_day_utc(value)
    else:
        text = str(value).strip()
        moment = None
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"):
            try:
                moment = datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI).astimezone(UTC)
                break
            except ValueError:
                continue
        if moment is None:
            for fmt in DATE_FORMATS:
                try:
                    day = datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar day, no zone
                    moment = start_of_day_utc(day)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise RowError(N_("“%(value)s”不是日期，请写成 2026-03-15 这样"), value=text[:40])
    if moment > now:
        raise RowError(N_("日期不能晚于今天"))
    if moment.year < 2000:
        raise RowError(N_("日期不能早于 2000 年"))
    return moment


@dataclass
class Rows:
    """The rows of a file as the checks read them: `get(row, key)` is the cell ('' when the
    column is absent or the cell empty); `problems` collects what is wrong."""

    columns: dict[str, Column]
    index: dict[str, int]
    problems: list[Problem] = field(default_factory=list)

    def get(self, values: list[Any], key: str) -> Any:
        position = self.index.get(key)
        if position is None or position >= len(values):
            return ""
        return values[position]

    def has(self, key: str) -> bool:
        return key in self.index

    def problem(self, row: int, key: str | None, message: str, /, **params: Any) -> None:
        label = self.columns[key].label if key else ""
        self.problems.append(Problem(row, label, message, params))

    def read(self, row: int, values: list[Any], key: str, check: Callable[[Any], Any]) -> Any:
        """The cell checked by `check` (a RowError becomes a problem, answered as None); an empty
        required cell is a problem, an empty optional one None."""
        raw = self.get(values, key)
        if raw == "" or raw is None:
            if self.columns[key].required:
                self.problem(row, key, N_("必须填写"))
            return None
        try:
            return check(raw)
        except RowError as exc:
            self.problem(row, key, exc.message, **exc.params)
            return None

    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS
