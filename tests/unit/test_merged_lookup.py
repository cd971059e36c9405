"""The cases merged into one are found by index (issue 15, 10,000,000 cases): every 受理 and 答复
looks them up (workflow._sms), and without `ix_cases_merged_into` that read the whole table."""

from __future__ import annotations

from sqlalchemy import select, text

from supervise.cases.models import Case
from supervise.extensions import db


def test_the_merged_cases_lookup_can_use_its_index(app):
    query = select(Case.id).where(Case.merged_into_id == 1, Case.reporter_phone_enc.is_not(None))
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table: make the planner say
        plan = db.session.scalars(text(f"EXPLAIN {compiled}")).all()
    else:
        plan = [row[-1] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert any("ix_cases_merged_into" in line for line in plan), plan
