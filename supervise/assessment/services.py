"""单位考核: a yearly or quarterly score per unit, from stated parts with admin-set weights.

Who is scored: townships (乡镇政府 / 街道办) and departments (部门). A village's cases count for its
township (and a unit below a department, for the department): the county's organisation department
assesses township and department leadership teams, which answer for their villages; a village has
too few cases a year for any rate to mean much (most would be 样本不足); and village-level numbers
are kept off every table that leaves the discipline bodies (issue 17, the public page). Discipline
bodies are not scored: they are the assessors' side.

The figures are the statistics summary's (supervise/stats/services.py `figures_by`, one GROUP BY by
subject unit), counted for the cases the reader's bodies own (as every staff query, DESIGN.md §2a).
Only the valid complaints per 1,000 residents read the cases table, because the summary has no
count of accepted cases: one GROUP BY by subject unit over the period's cases.

Scoring (PARTS below, each mapped to 0–100 points, stated in the footnotes):
- on-time rate r: 100 × r; satisfaction rate s: 100 × s (their bases: answered, rated);
- reopen rate q (reopened ÷ answered): 100 × max(0, 1 − q ÷ 20%);
- escalation rate e (escalated at least once ÷ received): 100 × max(0, 1 − e ÷ 30%);
- valid complaints per 1,000 residents a year c (only where the population is set):
  100 × max(0, 1 − c ÷ 5).
A part on fewer cases than the minimum sample (ASSESS_MIN_SAMPLE; the complaints part needs the
population instead) is shown "样本不足" and left out; the score is the weighted mean of the parts
left, their weights renormalised to sum to 1. A unit with no part scored (or only zero-weight parts)
has no score and no rank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from supervise.cases.models import Case
from supervise.cases.states import Status
from supervise.deadlines.calendar import SHANGHAI
from supervise.errors import InvalidInput
from supervise.i18n import N_
from supervise.orgs.models import Org, OrgKind
from supervise.orgs.routing import OrgTree
from supervise.settings import ASSESSMENT_SETTINGS, int_settings

SCORED_KINDS = (OrgKind.TOWNSHIP.value, OrgKind.DEPARTMENT.value)
# The summary's counts an assessment adds up per scored unit (the shared Figures interface).
COUNTS = (
    "received",
    "answered",
    "answered_on_time",
    "rated",
    "satisfied",
    "basically_satisfied",
    "reopened",
    "escalated",
)


@dataclass(frozen=True)
class Part:
    key: str
    weight_key: str  # its weight in settings (ASSESSMENT_WEIGHTS)
    label: str
    higher_is_better: bool
    zero_at: float | None  # lower-is-better parts: the value that earns 0 points


PARTS = (
    Part("on_time", "ASSESS_WEIGHT_ON_TIME", N_("按期答复率"), True, None),
    Part("satisfaction", "ASSESS_WEIGHT_SATISFACTION", N_("满意率"), True, None),
    Part("reopen", "ASSESS_WEIGHT_REOPEN", N_("重办率"), False, 0.20),
    Part("escalation", "ASSESS_WEIGHT_ESCALATION", N_("督办率"), False, 0.30),
    Part("complaints", "ASSESS_WEIGHT_COMPLAINTS", N_("每千人有效反映件数（年）"), False, 5.0),
)
BY_KEY = {p.key: p for p in PARTS}
PERIOD_KINDS = {"year": N_("年度"), "quarter": N_("季度")}

THIN = N_("样本不足")
NO_POPULATION = N_("未填人口")

FOOTNOTES = [
    N_(
        "考核对象：乡镇（街道）和县直部门。村（社区）的诉求件计入所在乡镇，部门下属单位的计入该部门；"
        "纪检监察机构不参加考核。"
    ),
    N_(
        "统计口径：考核期内收到的、以该单位为被反映单位的诉求件（按收件月份计入，重复件合并后不重复计数），"
        "其答复、评价、重办、督办随收件月份统计；只统计查看人所在纪检监察机构及其下级机构主办的件。"
    ),
    N_("按期答复率：已答复件中，所有答复期限（含延期、重办）均在届满前答复的比例。得分 = 100 × 按期答复率。"),
    N_("满意率：评价为“满意”“基本满意”的件数 ÷ 评价件数。得分 = 100 × 满意率。"),
    N_("重办率：至少重办过一次的件数 ÷ 已答复件数，越低越好。得分 = 100 ×（1 − 重办率 ÷ 20%），最低 0 分。"),
    N_(
        "督办率：至少被督办（一级或二级）过一次的件数 ÷ 收件数，越低越好。"
        "得分 = 100 ×（1 − 督办率 ÷ 30%），最低 0 分。"
    ),
    N_(
        "每千人有效反映件数（年）：有效反映件数 × 1000 ÷ 人口，季度考核乘以 4 折算为全年，越低越好。"
        "有效反映指已受理的件，不含不予受理、重复件合并和尚未受理的件。只对已填写人口的单位计算"
        "（乡镇的人口含所辖村、社区）。得分 = 100 ×（1 − 每千人件数 ÷ 5），最低 0 分。"
    ),
    N_(
        "最少样本：按期答复率、重办率以已答复件数，满意率以评价件数，督办率以收件数为样本，"
        "少于 {min_sample} 件的项注明“样本不足”，不计分。"
    ),
    N_(
        "考核得分：各计分项得分的加权平均，权重为 {weights}；样本不足或未填人口的项不计，"
        "其余项的权重按比例折算为合计 100%。没有任何计分项的单位不计得分、不排名。"
    ),
]


@dataclass(frozen=True)
class Period:
    """A year (2026) or a quarter (2026-Q4): first days of months, end exclusive."""

    kind: str
    label: str
    start: date
    end: date

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    @classmethod
    def parse(cls, kind: str, text: str) -> Period:
        text = text.strip().upper()
        try:
            if kind == "year":
                year = int(text)
                if 2000 <= year <= 2100:
                    return cls(kind, str(year), date(year, 1, 1), date(year + 1, 1, 1))
            elif kind == "quarter":
                year_text, quarter_text = text.split("-Q")
                year, quarter = int(year_text), int(quarter_text)
                if 2000 <= year <= 2100 and 1 <= quarter <= 4:
                    start = date(year, 3 * quarter - 2, 1)
                    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
                    return cls(kind, f"{year}-Q{quarter}", start, end)
        except ValueError:
            pass
        message = f"考核期格式不正确：{text!r}（年度如 2026，季度如 2026-Q4）"
        raise InvalidInput(message, {"which": [message]})

    @classmethod
    def current(cls, kind: str, today: date) -> Period:
        if kind == "quarter":
            return cls.parse(kind, f"{today.year}-Q{(today.month - 1) // 3 + 1}")
        return cls.parse("year", str(today.year))


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def settings(config: Mapping[str, Any]) -> tuple[dict[str, int], int]:
    """(each part's weight, the minimum sample): the admin's settings over the defaults."""
    values = int_settings(ASSESSMENT_SETTINGS, config)
    return {p.key: values[p.weight_key] for p in PARTS}, values["ASSESS_MIN_SAMPLE"]


# -- scoring (pure) ------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def part_figures(
    counts: Mapping[str, int], valid: int, population: int | None, months: int, min_sample: int
) -> dict[str, dict[str, Any]]:
    """Each part's value, its sample and its points (None when left out, with the reason)."""
    answered, received = counts["answered"], counts["received"]
    raw = {
        "on_time": (_ratio(counts["answered_on_time"], answered), answered),
        "satisfaction": (
            _ratio(counts["satisfied"] + counts["basically_satisfied"], counts["rated"]),
            counts["rated"],
        ),
        "reopen": (_ratio(counts["reopened"], answered), answered),
        "escalation": (_ratio(counts["escalated"], received), received),
    }
    out: dict[str, dict[str, Any]] = {}
    for key, (value, sample) in raw.items():
        if sample < min_sample:  # 样本不足: shown (when there is a value), not scored
            out[key] = {"value": value, "sample": sample, "points": None, "missing": "thin"}
        else:
            out[key] = {"value": value, "sample": sample, "points": points(key, value), "missing": None}
    if population:
        per_1000 = valid * 1000 / population * 12 / months  # a year's worth, so quarters compare
        out["complaints"] = {
            "value": per_1000,
            "sample": valid,
            "points": points("complaints", per_1000),
            "missing": None,
        }
    else:
        out["complaints"] = {"value": None, "sample": valid, "points": None, "missing": "no_population"}
    return out


def points(key: str, value: float) -> float:
    """A part's value mapped to 0–100 (the formulas of the module docstring and FOOTNOTES)."""
    part = BY_KEY[key]
    if part.higher_is_better:
        return 100 * value
    return 100 * max(0.0, 1 - value / part.zero_at)


def score(parts: Mapping[str, Mapping[str, Any]], weights: Mapping[str, int]) -> float | None:
    """The weighted mean of the scored parts, weights renormalised over them; None if none."""
    scored = [
        (weights[k], p["points"]) for k, p in parts.items() if p["points"] is not None and weights[k] > 0
    ]
    total = sum(w for w, _ in scored)
    return sum(w * pts for w, pts in scored) / total if total else None


# -- the data ------------------------------------------------------------------------------------------


def scope(session: Session, actor) -> list[int] | None:
    """The owning bodies whose cases a reader's assessment counts (None: every body).

    Supervisors and admins of a discipline body only: a unit never sees the assessment, whose
    figures are counts of the complaints about it and about the units beside it (DESIGN.md §2a)."""
    from supervise.stats.services import owners_for_reader

    return owners_for_reader(session, actor, "考核结果仅供纪检监察机构的监督人员和管理员查看")


def _scored_unit_of(orgs: dict[int, Org]) -> dict[int, int]:
    """Each org's scored unit: the nearest township or department at or above it (none: absent)."""
    out: dict[int, int] = {}
    for org in orgs.values():
        for ancestor in reversed(org.tree_key):  # itself first, then upwards
            if ancestor in orgs and orgs[ancestor].kind in SCORED_KINDS:
                out[org.id] = ancestor
                break
    return out


def _valid_by_subject(session: Session, period: Period, owners: list[int] | None) -> dict[int, int]:
    """有效反映: accepted cases (not 待受理, 不予受理 or 重复件合并) by subject unit."""
    stmt = (
        select(Case.subject_org_id, func.count())
        .where(
            Case.received_at >= _utc(period.start),
            Case.received_at < _utc(period.end),
            Case.subject_org_id.is_not(None),
            Case.merged_into_id.is_(None),
            Case.status.not_in([Status.RECEIVED.value, Status.REJECTED.value, Status.MERGED.value]),
        )
        .group_by(Case.subject_org_id)
    )
    if owners is not None:
        stmt = stmt.where(func.coalesce(Case.owner_org_id, Case.org_id).in_(owners))
    return {org_id: int(n) for org_id, n in session.execute(stmt)}


def assess(
    session: Session, period: Period, owners: list[int] | None, weights: Mapping[str, int], min_sample: int
) -> dict[str, Any]:
    """Every scored unit in scope, ranked: its counts, its parts and its score (JSON-ready)."""
    from supervise.stats.services import figures_by

    figures = figures_by(
        session, start=period.start, end=period.end, group="subject_unit", filters={"owner_org_ids": owners}
    )
    orgs = {o.id: o for o in session.scalars(select(Org))}
    unit_of = _scored_unit_of(orgs)
    counts: dict[int, dict[str, int]] = {}
    for org_id, f in figures.items():
        if org_id in unit_of:
            mine = counts.setdefault(unit_of[org_id], dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                mine[name] += int(getattr(f, name))
    valid: dict[int, int] = {}
    for org_id, n in _valid_by_subject(session, period, owners).items():
        if org_id in unit_of:
            valid[unit_of[org_id]] = valid.get(unit_of[org_id], 0) + n
    # The units in scope: those a body of the reader's supervises, and any with counted cases.
    tree = OrgTree.load(session)
    inside = None if owners is None else set(owners)
    units = [
        o
        for o in orgs.values()
        if o.kind in SCORED_KINDS
        and (o.id in counts or (o.active and (inside is None or tree.supervising_body(o.id) in inside)))
    ]
    rows = []
    for unit in units:
        mine = counts.get(unit.id, dict.fromkeys(COUNTS, 0))
        parts = part_figures(mine, valid.get(unit.id, 0), unit.population, period.months, min_sample)
        total = score(parts, weights)
        rows.append(
            {
                "org": {"id": unit.id, "code": unit.code, "name": unit.name, "kind": unit.kind},
                "population": unit.population,
                "counts": {**mine, "valid": valid.get(unit.id, 0)},
                "parts": {
                    key: {
                        **p,
                        "value": None if p["value"] is None else round(p["value"], 4),
                        "points": None if p["points"] is None else round(p["points"], 1),
                    }
                    for key, p in parts.items()
                },
                "score": None if total is None else round(total, 1),
            }
        )
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), r["org"]["name"], r["org"]["code"]))
    rank = 0
    for i, row in enumerate(rows):
        if row["score"] is not None:
            same = i > 0 and rows[i - 1]["score"] == row["score"]
            rank = rank if same else i + 1  # equal scores share a rank (1, 2, 2, 4)
        row["rank"] = rank if row["score"] is not None else None
    return {
        "period": {
            "kind": period.kind,
            "label": period.label,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "weights": dict(weights),
        "min_sample": min_sample,
        "rows": rows,
    }


def weights_text(weights: Mapping[str, int], translate=lambda s: s) -> str:
    """ "按期答复率 30、满意率 30、…" in the reader's language."""
    return translate("、").join(f"{translate(BY_KEY[k].label)} {w}" for k, w in weights.items())


def footnotes(result: Mapping[str, Any], translate=lambda s: s) -> list[str]:
    """The definitions printed under every table: page and XLSX alike."""
    fill = {"min_sample": result["min_sample"], "weights": weights_text(result["weights"], translate)}
    return [translate(note).format(**fill) for note in FOOTNOTES]


def for_reader(session: Session, actor, config: Mapping[str, Any], kind: str, which: str | None, today: date):
    """The assessment as this reader may see it, for the period asked (default: the current one)."""
    owners = scope(session, actor)
    period = Period.parse(kind, which) if which else Period.current(kind, today)
    weights, min_sample = settings(config)
    return assess(session, period, owners, weights, min_sample)
