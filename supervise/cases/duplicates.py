"""Likely duplicates (重复件) and repeat complainants (重复访) of a case, for its staff page.

Two ways a case is found to belong with another:
- **the same subject unit and a similar text**: the unit's cases received within 90 days before or
  after it, read through `ix_cases_subject_received` nearest in time first (a village has tens of
  cases in 90 days; at most `MAX_CANDIDATES` are read), scored in Python on the character bigrams
  `Case.search_text` already holds (cases/search.py). Bigrams that most of the unit's cases share
  (the unit's name, 村委会, 反映…) say little, so each bigram is weighted by how rare it is among
  the candidates (a smoothed IDF: a pool of two cases does not make everything rare). The score
  is a weighted Dice of the two bigram sets blended with their weighted overlap (a re-report cut
  short is all inside the first one), and the subject line counts on its own: "村会计李某" twice is
  worth more than two texts that both say 村委会.
- **the same reporter**: the keyed hash of the phone number (`Case.reporter_hash`, never the
  number), any time, through `ix_cases_reporter_hash`. It adds to the score (the same person
  writing again about the same unit in similar words) but alone is no duplicate: people report
  several problems. Who reported is identity information, so this part is used only for the
  roles that may reveal a reporter (staff/identity.py `may_reveal`) and never for a unit.

Only cases the actor may see are read (queries.scoped), never the case itself, never one merged
away or rejected (neither can be merged into). The threshold was tuned on the generated set of
bench/duplicates.py without looking at its labels in here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from supervise.cases.hotspots import active_for
from supervise.cases.models import Case
from supervise.cases.queries import scoped
from supervise.cases.search import tokens
from supervise.cases.states import Status
from supervise.cases.workflow import Actor
from supervise.extensions import db
from supervise.i18n import N_

WINDOW = timedelta(days=90)
# Read on each side of the case (before and after it), nearest in time first.
MAX_CANDIDATES = 100
# The same reporter's other cases read for the suggestions and the 重复访 flag.
MAX_REPORTER_CASES = 50
# At and above this score a case is a likely duplicate ("内容相似 83%").
THRESHOLD = 0.5
# How much of the score is the subject line (反映对象), the rest the whole text.
SUBJECT_WEIGHT = 0.2
# How much of the text score is Dice (the rest is the overlap coefficient).
DICE_WEIGHT = 0.3
# The same reporter adds this much to the score (capped at 1).
SAME_REPORTER_BONUS = 0.2
# Pseudo-documents that contain no bigram: a small pool of candidates does not make every bigram
# look rare (IDF smoothing).
IDF_PRIOR_DOCS = 5
# Rare bigrams (names, amounts, places) weigh this power of their IDF: they tell problems apart.
IDF_POWER = 1.0
NOT_TARGETS = (Status.MERGED.value, Status.REJECTED.value)

SIMILAR = N_("同一被反映单位，内容相似 %(percent)d%%")
SAME_REPORTER = N_("同一反映人")


@dataclass
class Suggestion:
    """One suggestion for the case page: the other case, its score (0–1) and why."""

    case: Case
    score: float
    similarity: float  # the text score before the reporter's bonus
    same_unit: bool
    same_reporter: bool
    reasons: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # (msgid, values)

    @property
    def likely(self) -> bool:
        """A likely duplicate (what a merge button is offered for and the benchmark counts)."""
        return self.score >= THRESHOLD


# -- scoring (pure: the benchmark and the unit tests call it on plain token sets) ----------------


def text_tokens(case: Case) -> frozenset[str]:
    """The case's bigrams as indexed (subject, content, location); from the text if not indexed."""
    if case.search_text:
        return frozenset(case.search_text.split())
    return frozenset(tokens(" ".join(p for p in (case.subject, case.content, case.location) if p)))


def idf_weights(documents: Iterable[frozenset[str]]) -> dict[str, float]:
    """A weight per bigram: rare among `documents` → high; smoothed by IDF_PRIOR_DOCS empty ones."""
    df: Counter[str] = Counter()
    n = 0
    for doc in documents:
        df.update(doc)
        n += 1
    total = n + IDF_PRIOR_DOCS
    return {t: math.log((total + 1) / (count + 0.5)) ** IDF_POWER for t, count in df.items()}


def _weighted(tokens_: frozenset[str], weights: dict[str, float]) -> float:
    return sum(weights.get(t, 1.0) for t in tokens_)


def text_similarity(a: frozenset[str], b: frozenset[str], weights: dict[str, float]) -> float:
    """Weighted Dice blended with the weighted overlap coefficient, 0–1."""
    if not a or not b:
        return 0.0
    shared = _weighted(a & b, weights)
    wa, wb = _weighted(a, weights), _weighted(b, weights)
    dice = 2 * shared / (wa + wb)
    overlap = shared / min(wa, wb)
    return DICE_WEIGHT * dice + (1 - DICE_WEIGHT) * overlap


def similarity(
    a_text: frozenset[str],
    b_text: frozenset[str],
    a_subject: frozenset[str],
    b_subject: frozenset[str],
    weights: dict[str, float],
) -> float:
    """The score of two cases of one unit: their texts, with their subject lines weighed apart."""
    whole = text_similarity(a_text, b_text, weights)
    if not a_subject or not b_subject:
        return whole
    subject = text_similarity(a_subject, b_subject, weights)
    return (1 - SUBJECT_WEIGHT) * whole + SUBJECT_WEIGHT * subject


def score_candidates(case: Case, candidates: list[Case], same_reporter: set[int]) -> list[Suggestion]:
    """Score each candidate against `case` (same subject unit or same reporter), best first."""
    texts = {c.id: text_tokens(c) for c in [case, *candidates]}
    subjects = {c.id: frozenset(tokens(c.subject or "")) for c in [case, *candidates]}
    # Rarity among the unit's cases in the window (the ones read for the text comparison).
    unit_pool = [texts[c.id] for c in [case, *candidates] if c.subject_org_id == case.subject_org_id]
    weights = idf_weights(unit_pool)
    found = []
    for other in candidates:
        same_unit = other.subject_org_id == case.subject_org_id
        near = abs(other.received_at - case.received_at) <= WINDOW
        text = (
            similarity(texts[case.id], texts[other.id], subjects[case.id], subjects[other.id], weights)
            if same_unit and near
            else 0.0
        )
        reporter = other.id in same_reporter
        score = min(1.0, text + (SAME_REPORTER_BONUS if reporter and text > 0 else 0.0))
        reasons = []
        if same_unit and near and score >= THRESHOLD:
            reasons.append((SIMILAR, {"percent": round(text * 100)}))
        if reporter:
            reasons.append((SAME_REPORTER, {}))
        found.append(Suggestion(other, score, text, same_unit and near, reporter, reasons))
    found.sort(key=lambda s: (-s.score, -s.case.received_at.timestamp(), s.case.id))
    return found


# -- reading the candidates ----------------------------------------------------------------------


def _unit_candidates(session: Session, case: Case, actor: Actor) -> list[Case]:
    """The subject unit's visible cases within the window on each side, nearest in time first."""
    if case.subject_org_id is None:
        return []
    base = scoped(
        session,
        select(Case).where(
            Case.subject_org_id == case.subject_org_id,
            Case.id != case.id,
            Case.status.not_in(NOT_TARGETS),
        ),
        actor,
    )
    before = base.where(
        Case.received_at >= case.received_at - WINDOW, Case.received_at <= case.received_at
    ).order_by(Case.received_at.desc())
    after = base.where(
        Case.received_at > case.received_at, Case.received_at <= case.received_at + WINDOW
    ).order_by(Case.received_at)
    found = list(session.scalars(before.limit(MAX_CANDIDATES)))
    found += session.scalars(after.limit(MAX_CANDIDATES))
    return found


def reporter_cases(session: Session, case: Case, actor: Actor, *, include_merged: bool = False) -> list[Case]:
    """The same reporter's other cases the actor may see, newest first (at most MAX_REPORTER_CASES).

    Only for a role that may reveal the reporter: a count of someone's complaints is identity
    information (DESIGN.md §2a). Everyone else gets an empty list."""
    if not case.reporter_hash or not may_know_reporter(actor, case):
        return []
    stmt = select(Case).where(Case.reporter_hash == case.reporter_hash, Case.id != case.id)
    if not include_merged:
        stmt = stmt.where(Case.status.not_in(NOT_TARGETS))
    stmt = scoped(session, stmt, actor).order_by(Case.received_at.desc()).limit(MAX_REPORTER_CASES)
    return list(session.scalars(stmt))


def may_know_reporter(actor: Actor, case: Case) -> bool:
    """Intake and supervisors of the owning body or above (the identity wall): never a unit."""
    from supervise.staff.identity import may_reveal

    return actor.kind == "staff" and actor.at_body and may_reveal(actor, case)


def likely_duplicates(
    case: Case, actor: Actor, limit: int = 5, *, session: Session | None = None, every_score: bool = False
) -> list[Suggestion]:
    """What the case page suggests: likely duplicates of the same unit (score ≥ THRESHOLD) and,
    for the roles that may know the reporter, the same reporter's other cases; best first.

    A unit's staff get nothing: they never merge, and must not learn of other complaints about
    them through this list (DESIGN.md §2a). `every_score`: the best `limit` whatever their score
    (bench/duplicates.py draws its table over thresholds from them)."""
    if actor.kind == "staff" and not actor.at_body:
        return []
    session = session or db.session
    unit = _unit_candidates(session, case, actor)
    reporter = reporter_cases(session, case, actor)
    by_id = {c.id: c for c in unit}
    for other in reporter:
        by_id.setdefault(other.id, other)
    scored = score_candidates(case, list(by_id.values()), {c.id for c in reporter})
    return [s for s in scored if every_score or s.likely or s.same_reporter][:limit]


def repeat_complainant(case: Case, actor: Actor, *, session: Session | None = None) -> tuple[int, list[Case]]:
    """重复访: how many cases of this reporter the actor may see (this one included) and the
    others, newest first (at most MAX_REPORTER_CASES); (0, []) for anyone who may not know the
    reporter, or without a phone number. Counted in the actor's scope, like every staff query."""
    if not case.reporter_hash or not may_know_reporter(actor, case):
        return 0, []
    session = session or db.session
    same = select(func.count(Case.id)).where(Case.reporter_hash == case.reporter_hash)
    total = session.scalar(scoped(session, same, actor)) or 0
    return max(total, 1), reporter_cases(session, case, actor, include_merged=True)


def case_page(case: Case, actor: Actor, allowed_actions: list[str]) -> dict[str, object]:
    """What the case page's 可能重复 / 重复反映 / 热点 block shows (templates/staff/_duplicates.html):
    suggestions while the case can still be merged (the workflow allows `merge` to this actor),
    the reporter's count for the roles that may know the reporter, the unit's hot spot for bodies."""
    if actor.kind != "staff" or not actor.at_body:
        return {"suggestions": [], "repeat_count": 0, "repeat_cases": [], "hot_spot": None}
    suggestions = likely_duplicates(case, actor) if "merge" in allowed_actions else []
    count, others = repeat_complainant(case, actor)
    return {
        "suggestions": suggestions,
        "repeat_count": count if count > 1 else 0,
        "repeat_cases": others,
        "hot_spot": active_for(case, actor),
    }
