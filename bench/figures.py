"""The one shape every benchmark reports in, so `python -m bench all` can print a single table.

Each benchmark module that `bench all` runs exposes::

    def figures(cases: int, smoke: bool = False) -> list[Figure]

`cases` is the data set's size (the module makes sure the bench database holds it, through
`bench.generate.generate`); `smoke` asks for a run small enough for CI (seconds, not minutes) that
still checks its own results and raises when they are wrong. A figure that misses its goal is not an
exception: it is reported with `ok=False`, and the table says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured: "submit: throughput vs bare insert"
    goal: str  # the figure, as written: "≥ 0.6×", "p95 ≤ 30 ms"
    measured: str  # the reading, with its unit: "0.71× (462/s vs 650/s)", "p95 18.2 ms"
    ratio: float | None = None  # to the baseline run alternately in the same run, where there is one
    ok: bool | None = None  # None: informational (no goal to meet)
    note: str = ""  # the command, or the cause of a miss

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
