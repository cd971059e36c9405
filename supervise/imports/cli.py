"""`supervise import orgs|points|users|cases FILE [--dry-run] [--passwords-out FILE]` and
`supervise import template KIND OUT.xlsx`."""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path

import click
from flask.cli import with_appcontext

KIND_CHOICES = ("orgs", "points", "users", "cases")


@click.group("import")
def import_group() -> None:
    """Bulk import (批量导入) from XLSX or CSV: orgs, then points and users, then historical cases.

    Every row is checked first; if any is wrong nothing is written and each problem is listed by
    row and column. --dry-run checks and prints what would change. Running a file twice changes
    nothing the second time."""


class _Progress:
    """A bar on a terminal; elsewhere (a log, a pipe) a line every 10 %."""

    def __init__(self) -> None:
        self.bar = None
        self.total = self.done = self.shown = 0

    def start(self, total: int) -> None:
        self.total = total
        if total and sys.stdout.isatty():
            self.bar = click.progressbar(length=total, label="writing", file=sys.stdout)
            self.bar.__enter__()

    def advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        elif self.total and (self.done - self.shown) * 10 >= self.total:
            self.shown = self.done
            click.echo(f"  {self.done}/{self.total} written")

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _open_private(path: Path):
    """A new file only its owner can read (0600): it will hold passwords. Never overwrites."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists already: give a new file for the passwords") from exc
    return os.fdopen(fd, "w", encoding="utf-8-sig", newline="")


def passwords_csv(passwords) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["用户名", "姓名", "单位代码", "单位名称", "初始密码"])
    writer.writerows(passwords)
    return out.getvalue()


def _import_command(kind: str):
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--dry-run", is_flag=True, help="check every row and print what would change; write nothing"
    )
    @with_appcontext
    def command(file: Path, dry_run: bool, **options) -> None:
        from supervise.imports.service import run_import

        handle = None
        if kind == "users" and not dry_run:
            # One-time passwords go to a private file; to the terminal only when asked for, since
            # a shared screen or a scrollback is where they would leak.
            if options["passwords_out"] is not None:
                handle = _open_private(options["passwords_out"])
            elif not options["print_passwords"]:
                raise click.ClickException(
                    "new accounts get one-time passwords: give --passwords-out FILE (created 0600), "
                    "or --print-passwords to show them here"
                )
        started = time.monotonic()
        try:
            result = run_import(kind, file.read_bytes(), file.name, dry_run=dry_run, progress=_Progress())
        except BaseException:
            if handle is not None:
                handle.close()
                options["passwords_out"].unlink()
            raise
        seconds = time.monotonic() - started
        if handle is not None:
            with handle:
                if result.passwords:
                    handle.write(passwords_csv(result.passwords))
            if not result.passwords:
                options["passwords_out"].unlink()
        if not result.ok:
            for problem in result.problems:
                click.echo(problem.text(), err=True)
            if result.truncated:
                click.echo(f"(only the first {len(result.problems)} problems are listed)", err=True)
            found = f"{len(result.problems)}{'+' if result.truncated else ''}"
            raise click.ClickException(f"{file.name}: {found} problem(s); nothing written")
        counts = f"{result.create} to create, {result.update} to update, {result.unchanged} unchanged"
        if dry_run:
            click.echo(f"dry run: {kind} from {file.name} ({result.rows} rows): {counts}; nothing written")
            for message, params in result.details:
                click.echo(f"  {message % params}")
            return
        done = f"{result.create} created, {result.update} updated, {result.unchanged} unchanged"
        click.echo(f"{kind} from {file.name} ({result.rows} rows): {done} in {seconds:.1f} s")
        if result.passwords:
            if options.get("passwords_out") is not None:
                where = options["passwords_out"]
                click.echo(f"one-time passwords of {len(result.passwords)} new account(s): {where}")
            else:
                click.echo(passwords_csv(result.passwords), nl=False)
            click.echo(
                "hand each password over in person; each person should change it when first signing in"
            )

    command.__name__ = f"import_{kind}"
    command.__doc__ = {
        "orgs": "Orgs (单位): code, name, kind, parent code, supervising body; any order.",
        "points": "Points (监督点): org code, name, active; new points get fresh QR tokens.",
        "users": "Staff accounts (用户): username, name, org code, roles, e-mail; one-time passwords.",
        "cases": "Historical cases (历史台账), keyed by ledger reference; routed and timed as submissions.",
    }[kind]
    if kind == "users":
        command = click.option(
            "--print-passwords",
            is_flag=True,
            help="print new accounts' passwords here (a private screen only)",
        )(command)
        command = click.option(
            "--passwords-out",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="write new accounts' one-time passwords to this new file (CSV, mode 0600)",
        )(command)
    return import_group.command(kind)(command)


for _kind in KIND_CHOICES:
    _import_command(_kind)


@import_group.command("template")
@click.argument("kind", type=click.Choice(KIND_CHOICES))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
def import_template(kind: str, output: Path) -> None:
    """Write the XLSX template of KIND (header, an example row, a sheet explaining the columns)."""
    from supervise.imports.templates import template_xlsx

    output.write_bytes(template_xlsx(kind))
    click.echo(f"{kind} template → {output}")
