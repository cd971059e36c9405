"""Compare queue_latency runs: p95 per role × tab, first and deep page, side by side.

    python -m bench.report before.json after.json [more.json …]

The JSON files are what `python -m bench.queue_latency --json FILE` writes.
"""

from __future__ import annotations

import json
import sys

from bench.queue_latency import BUDGET_MS


def _cell(row: dict | None) -> str:
    if row is None:
        return "–"
    text = f"{row['p95']:.0f}"
    return f"**{text}**" if row["p95"] >= BUDGET_MS else text


def compare(paths: list[str]) -> str:
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        runs.append((data.get("label") or path, {(r["role"], r["tab"], r["page"]): r for r in data["rows"]}))
    keys: list[tuple[str, str]] = []
    for _, rows in runs:
        for role, tab, _page in rows:
            if (role, tab) not in keys:
                keys.append((role, tab))
    header = ["role", "tab", "queue size"]
    for label, _ in runs:
        header += [f"p95 first · {label}", f"p95 deep · {label}"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |",
    ]
    for role, tab in keys:
        size = next((rows[k]["queue_size"] for _, rows in runs for k in rows if k[:2] == (role, tab)), None)
        cells = [role, tab, "" if size is None else f"{size:,}"]
        for _, rows in runs:
            cells += [_cell(rows.get((role, tab, "first"))), _cell(rows.get((role, tab, "deep")))]
        lines.append("| " + " | ".join(cells) + " |")
    summary = []
    for label, rows in runs:
        slow = sum(r["p95"] >= BUDGET_MS for r in rows.values())
        summary.append(f"{label}: {slow} of {len(rows)} rows with p95 ≥ {BUDGET_MS:g} ms")
    return "\n".join(lines) + "\n\n" + "; ".join(summary) + " (ms; **bold** = over budget; – = no such page)"


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    print(compare(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
