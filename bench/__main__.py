"""`python -m bench all --cases N`: every benchmark in one run, and one table of their figures.

Runs, in this order, each module's `figures(cases, smoke)` (bench/figures.py): the data set first
(`generate`), so the others reuse it, then the rest. Modules are imported one at a time, when their
turn comes: a module that does not exist yet or has no `figures` gives a row saying so, one that
raises gives a row with the error's first line (its traceback goes to stderr), and the run goes on.

Exit status: 1 if a module raised or a figure missed its goal (`ok is False`); with `--smoke` only a
raised error fails the run (a smoke run checks results on a tiny data set, not speed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
import traceback
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import Figure

MODULES = (
    "generate",
    "submit",
    "queue_latency",
    "desk_counts",
    "sweep",
    "weekly_report",
    "memory",
    "duplicates",
    "stats",
)
DEFAULT_CASES = 1_000_000
OK_MARKS = {True: "✓", False: "✗", None: "–"}


@dataclass
class Outcome:
    """What one module gave: its figures, or why it gave none."""

    module: str
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None  # it raised: the error's first line
    missing: str | None = None  # not there yet: the module, or its `figures`
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "missing": self.missing,
            "figures": [f.as_dict() for f in self.figures],
        }


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_module(name: str, cases: int, smoke: bool) -> Outcome:
    started = time.perf_counter()
    outcome = Outcome(name)
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{name}":  # the module is there but imports something missing
            raise
        outcome.missing = f"no bench/{name}.py yet"
        return outcome
    run = getattr(module, "figures", None)
    if run is None:
        outcome.missing = f"bench/{name}.py has no figures() yet"
        return outcome
    print(f"\n=== bench.{name} (cases={cases:,}{', smoke' if smoke else ''})", flush=True)
    try:
        outcome.figures = list(run(cases, smoke=smoke))
    finally:
        outcome.seconds = time.perf_counter() - started
    return outcome


def run_all(names: list[str], cases: int, smoke: bool) -> list[Outcome]:
    outcomes = []
    for name in names:
        started = time.perf_counter()
        try:
            outcome = run_module(name, cases, smoke)
        # A module's failure is a row of the table, not the end of the run; the scripts' `run`
        # functions stop with SystemExit("why") on a missing data set, which is a failure too.
        except (Exception, SystemExit) as exc:
            traceback.print_exc()
            outcome = Outcome(name, error=first_line(exc), seconds=time.perf_counter() - started)
        outcomes.append(outcome)
        sys.stdout.flush()
    return outcomes


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def table_rows(outcomes: list[Outcome]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for outcome in outcomes:
        if outcome.error is not None:
            rows.append((f"{outcome.module}: raised", "–", outcome.error, "", OK_MARKS[False]))
        elif outcome.missing is not None:
            rows.append((f"{outcome.module}: not run", "–", outcome.missing, "", OK_MARKS[None]))
        elif not outcome.figures:
            rows.append((f"{outcome.module}: no figures", "–", "figures() returned none", "", OK_MARKS[None]))
        for fig in outcome.figures:
            ratio = f"{fig.ratio:.2f}×" if fig.ratio is not None else ""
            rows.append((fig.name, fig.goal, fig.measured, ratio, OK_MARKS[fig.ok]))
    return rows


def render(outcomes: list[Outcome]) -> str:
    header = ("figure", "goal", "measured", "ratio", "ok")
    rows = table_rows(outcomes)
    widths = [max(_width(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        " | ".join(_pad(cell, widths[i]) for i, cell in enumerate(header)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    notes = [(fig.name, fig.note) for o in outcomes for fig in o.figures if fig.note]
    if notes:
        lines.append("")
        lines += [f"  {name}: {note}" for name, note in notes]
    lines.append("")
    lines.append(summary(outcomes))
    return "\n".join(lines)


def summary(outcomes: list[Outcome]) -> str:
    figures = [f for o in outcomes for f in o.figures]
    goals = [f for f in figures if f.ok is not None]
    met = sum(1 for f in goals if f.ok)
    raised = [o.module for o in outcomes if o.error is not None]
    missing = [o.module for o in outcomes if o.missing is not None]
    line = f"{met} of {len(goals)} figures with a goal met it ({len(figures) - len(goals)} informational)"
    if raised:
        line += f"; raised: {', '.join(raised)}"
    if missing:
        line += f"; not run: {', '.join(missing)}"
    return line


def failed(outcomes: list[Outcome], smoke: bool) -> bool:
    if any(o.error is not None for o in outcomes):
        return True
    return not smoke and any(f.ok is False for o in outcomes for f in o.figures)


def code_version() -> str:
    """The commit the figures were taken at, and whether the working tree differed from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)  # noqa: S603, S607
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    everything = sub.add_parser("all", help="run every benchmark and print one table")
    everything.add_argument("--cases", type=int, default=DEFAULT_CASES, help="the data set's size")
    everything.add_argument(
        "--smoke", action="store_true", help="a small run that checks results, not speed (CI)"
    )
    everything.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    everything.add_argument(
        "--only", nargs="+", choices=MODULES, metavar="NAME", help=f"run only these: {', '.join(MODULES)}"
    )
    args = parser.parse_args(argv)

    names = [m for m in MODULES if not args.only or m in args.only]
    version = code_version()
    started = datetime.now(UTC)
    title = f"bench all: {args.cases:,} cases{' (smoke)' if args.smoke else ''}, code {version}"
    print(f"{title}; {', '.join(names)}")
    outcomes = run_all(names, args.cases, args.smoke)

    print(f"\n=== {title}\n")
    print(render(outcomes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "cases": args.cases,
            "smoke": args.smoke,
            "code": version,
            "started": started.isoformat(timespec="seconds"),
            "modules": [o.as_dict() for o in outcomes],
        }
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 1 if failed(outcomes, args.smoke) else 0


if __name__ == "__main__":
    sys.exit(main())
