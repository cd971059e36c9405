"""Running one file, all or nothing: every row is checked first (all problems listed, up to a
cap); only a file without problems is written, in one transaction with its audit row. A dry run
checks and counts and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.i18n import N_
from supervise.imports import cases, orgs, points, users
from supervise.imports.base import MAX_PROBLEMS, ImportContext, Problem, Rows, Scope, map_header
from supervise.imports.readers import UnreadableFile, read_table
from supervise.staff import audit
from supervise.staff.models import User

KINDS: dict[str, ModuleType] = {"orgs": orgs, "points": points, "users": users, "cases": cases}


class Progress:
    """Told how much there is to write, then how much was written (the command line's bar)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class ImportResult:
    kind: str
    file_name: str
    dry_run: bool
    rows: int = 0
    create: int = 0
    update: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    truncated: bool = False  # more problems than listed
    details: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    written: bool = False
    # New accounts' one-time passwords: (username, name, org code, org name, password). Handed
    # to the caller once, never stored.
    passwords: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_import(
    kind: str,
    data: bytes,
    file_name: str,
    *,
    dry_run: bool,
    scope: Scope | None = None,
    user: User | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Check `data` (an XLSX or CSV of `kind`) and, unless `dry_run` or a row is wrong, write it."""
    module = KINDS[kind]
    session = db.session
    result = ImportResult(kind, file_name, dry_run)
    try:
        table = read_table(data)
    except UnreadableFile as exc:
        result.problems.append(Problem(0, "", exc.message, exc.params))
        return result
    result.rows = len(table.rows)
    index, problems = map_header(table.header, module.COLUMNS)
    rows = Rows({c.key: c for c in module.COLUMNS}, index, problems)
    ctx = ImportContext(
        session=session,
        scope=scope or Scope.everything(),
        file_name=file_name,
        now=now or utcnow(),
        user_id=user.id if user else None,
        username=user.username if user else None,
        present=frozenset(index),
    )
    if not set(index) >= _required(module):
        result.problems = problems  # a required column is missing: the rows cannot be read
        return result
    if not table.rows:
        rows.problems.append(Problem(0, "", N_("文件中没有数据行（第 1 行为列名，数据从第 2 行起）")))
    plan = module.check(ctx, rows, table.rows)
    result.problems = rows.problems[:MAX_PROBLEMS]
    result.truncated = len(rows.problems) >= MAX_PROBLEMS
    result.create, result.update, result.unchanged = plan.create, plan.update, plan.unchanged
    result.details = plan.details
    if result.problems or dry_run or plan.apply is None:
        session.rollback()  # the checks read; nothing of theirs is kept
        return result
    progress = progress or Progress()
    progress.start(plan.create + plan.update)
    try:
        written = plan.apply(ctx, progress.advance)
        result.passwords = written.pop("passwords", [])
        audit.record(
            "admin_change",
            user=user,
            username=None if user else "cli",
            detail={
                "what": f"import.{kind}",
                "file": file_name[:100],
                "rows": result.rows,
                "created": plan.create,
                "updated": plan.update,
                "unchanged": plan.unchanged,
                "via": "admin" if user else "cli",
            },
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        progress.finish()
    result.written = True
    return result


def _required(module: ModuleType) -> set[str]:
    return {c.key for c in module.COLUMNS if c.required}
