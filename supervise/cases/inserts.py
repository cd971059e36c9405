"""A new case and what comes with it, written in one statement: the submit path's write.

A submission writes a case, its first event, its clocks, its photos' rows and its outbox rows.
Through the ORM's unit of work that was five round trips and most of the request's CPU; here the
rows are built as plain ORM objects (never added to the session), then written by one
PostgreSQL statement whose data-modifying CTEs insert the case and hand its id to the others.
Other databases (SQLite, the laptop's) get the same rows by one INSERT per table. Afterwards the
case is attached to the session as if it had been loaded, so the caller goes on with an ordinary
persistent `Case` without reading it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, column, insert, select, true, values
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.sql.schema import Column

from supervise.cases.models import Attachment, Case, Event
from supervise.deadlines.models import CaseClock
from supervise.notify.outbox import OutboxMessage


@dataclass
class NewCase:
    """A case and its dependent rows, as transient objects: no relationships set, no ids."""

    case: Case
    event: Event
    clocks: list[CaseClock] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)  # of `event`
    outbox: list[OutboxMessage] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    case_id: int
    outbox_ids: list[int]


def _row(obj: Any) -> dict[str, Any]:
    """The column values an INSERT needs: what was set on `obj`, and each Python-side default
    (the ORM would apply them at flush; a CTE's INSERT needs them spelled out)."""
    table: Table = obj.__table__
    row = {}
    for col in table.columns:
        if col.computed is not None or (col.primary_key and col.key not in obj.__dict__):
            continue
        if col.key in obj.__dict__:
            row[col.key] = obj.__dict__[col.key]
        elif col.default is not None and not col.default.is_sequence:
            arg = col.default.arg
            row[col.key] = arg(None) if col.default.is_callable else arg
    return row


def _typed(of: Column, value: Any):
    return bindparam(None, value, type_=of.type)


def _rows_select(table: Table, rows: list[dict[str, Any]], name: str, *parent_ids):
    """SELECT the `rows` (a VALUES list) beside the parents' ids: what an INSERT … SELECT takes.
    Returns (column names in order, the select)."""
    keys = list(rows[0])
    listed = values(*[column(k, table.c[k].type) for k in keys], name=name).data(
        [tuple(r[k] for k in keys) for r in rows]
    )
    return keys, select(*listed.c, *parent_ids).select_from(listed)


def _write_postgresql(session: Session, new: NewCase) -> Written:
    case_table, event_table = Case.__table__, Event.__table__
    case_row = _row(new.case)
    new_case = (
        insert(case_table)
        .values({k: _typed(case_table.c[k], v) for k, v in case_row.items()})
        .returning(case_table.c.id)
        .cte("new_case")
    )
    event_row = _row(new.event)
    new_event = (
        insert(event_table)
        .from_select(
            [*event_row, "case_id"],
            select(*[_typed(event_table.c[k], v) for k, v in event_row.items()], new_case.c.id),
        )
        .returning(event_table.c.id)
        .cte("new_event")
    )
    ctes = [new_event]
    for table, objects, name, with_event in (
        (CaseClock.__table__, new.clocks, "new_clocks", False),
        (Attachment.__table__, new.attachments, "new_attachments", True),
    ):
        if not objects:
            continue
        keys, rows = _rows_select(table, [_row(o) for o in objects], name + "_rows", new_case.c.id)
        rows = rows.join(new_case, true())
        if with_event:
            rows = rows.add_columns(new_event.c.id).join(new_event, true())
        ids = ["case_id", "event_id"] if with_event else ["case_id"]
        ctes.append(insert(table).from_select([*keys, *ids], rows).cte(name))
    outbox_ids = None
    if new.outbox:
        table = OutboxMessage.__table__
        keys, rows = _rows_select(table, [_row(o) for o in new.outbox], "new_outbox_rows", new_case.c.id)
        outbox_ids = (
            insert(table)
            .from_select([*keys, "case_id"], rows.join(new_case, true()))
            .returning(table.c.id)
            .cte("new_outbox")
        )
    query = select(new_case.c.id).add_cte(*ctes)
    if outbox_ids is not None:
        query = (
            select(new_case.c.id, outbox_ids.c.id)
            .select_from(new_case.join(outbox_ids, true()))
            .add_cte(*ctes)
        )
    result = session.execute(query).all()
    return Written(result[0][0], [r[1] for r in result] if outbox_ids is not None else [])


def _insert(session: Session, obj: Any, **ids: int) -> int:
    table = obj.__table__
    return session.execute(insert(table).values({**_row(obj), **ids}).returning(table.c.id)).scalar_one()


def _write_each(session: Session, new: NewCase) -> Written:
    case_id = _insert(session, new.case)
    event_id = _insert(session, new.event, case_id=case_id)
    if new.clocks:
        session.execute(insert(CaseClock.__table__), [{**_row(c), "case_id": case_id} for c in new.clocks])
    if new.attachments:
        session.execute(
            insert(Attachment.__table__),
            [{**_row(a), "case_id": case_id, "event_id": event_id} for a in new.attachments],
        )
    return Written(case_id, [_insert(session, m, case_id=case_id) for m in new.outbox])


def write_new_case(session: Session, new: NewCase) -> Written:
    """Insert the case and its rows in the session's transaction (the caller commits)."""
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgresql(session, new)
    return _write_each(session, new)


def attach_written(session: Session, case: Case, case_id: int) -> Case:
    """Make the written `case` a persistent object of the session, as if loaded (no query): its
    computed columns and collections load when first read."""
    case.id = case_id
    make_transient_to_detached(case)
    session.add(case)
    return case
