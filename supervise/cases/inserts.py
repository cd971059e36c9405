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
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Table, bindparam, insert, null, select, true, union_all
from sqlalchemy.orm import Session, make_transient_to_detached

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


# A row's place in the statement: its table and the columns it sets.
Slot = tuple[str, tuple[str, ...]]
_TABLES: dict[str, Table] = {
    model.__table__.name: model.__table__ for model in (Case, Event, CaseClock, Attachment, OutboxMessage)
}


def _params(index: int, table: Table, keys: tuple[str, ...]) -> list:
    return [bindparam(f"r{index}_{key}", type_=table.c[key].type) for key in keys]


@lru_cache(maxsize=64)
def _statement(slots: tuple[Slot, ...]) -> Select:
    """The one statement for rows of this shape: the case (slot 0) and its event (slot 1), whose
    ids the other rows take; it answers the case's id beside each outbox row's. Built once per
    shape (a submission has two or three clocks, a few photos, one or two notices), so
    SQLAlchemy compiles it once: a new statement a request cost more CPU than the INSERTs."""
    (case_name, case_keys), (event_name, event_keys), *others = slots
    cases, events = _TABLES[case_name], _TABLES[event_name]
    case_values = dict(zip(case_keys, _params(0, cases, case_keys), strict=True))
    new_case = insert(cases).values(case_values).returning(cases.c.id).cte("new_case")
    event_values = select(*_params(1, events, event_keys), new_case.c.id)
    new_event = (
        insert(events)
        .from_select([*event_keys, "case_id"], event_values)
        .returning(events.c.id)
        .cte("new_event")
    )
    # One INSERT per table, its rows a UNION ALL in the order given: ids are drawn in that order,
    # as the ORM's would be (a case's clocks are listed by start, then id). Separate CTEs would
    # run in no set order.
    by_table: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for index, (name, keys) in enumerate(others, start=2):
        by_table.setdefault(name, []).append((index, keys))
    ctes, notices = [new_event], None
    for name, rows in by_table.items():
        table = _TABLES[name]
        with_event = "event_id" in table.c  # a photo's row names the event it came with
        parents = [new_case.c.id, new_event.c.id] if with_event else [new_case.c.id]
        ids = ["case_id", "event_id"] if with_event else ["case_id"]
        both = new_case.join(new_event, true())  # one row each: not a cartesian product to warn of
        keys = rows[0][1]
        selects = [select(*_params(index, table, keys), *parents) for index, _ in rows]
        if with_event:
            selects = [row.select_from(both) for row in selects]
        inserted = insert(table).from_select(
            [*keys, *ids], union_all(*selects) if len(selects) > 1 else selects[0]
        )
        if table is OutboxMessage.__table__:
            notices = inserted.returning(table.c.id).cte(f"new_{name}")
        else:
            ctes.append(inserted.cte(f"new_{name}"))
    if notices is None:
        return select(new_case.c.id, null()).add_cte(*ctes)
    return (
        select(new_case.c.id, notices.c.id)
        .select_from(new_case.join(notices, true()))
        .add_cte(*ctes, notices)
    )


def _write_postgresql(session: Session, new: NewCase) -> Written:
    rows = [new.case, new.event, *new.clocks, *new.attachments, *new.outbox]
    values = [_row(obj) for obj in rows]
    # Rows of one table share their columns (one INSERT … SELECT takes them all).
    slots = tuple((obj.__table__.name, tuple(row)) for obj, row in zip(rows, values, strict=True))
    params = {f"r{i}_{key}": value for i, row in enumerate(values) for key, value in row.items()}
    result = session.execute(_statement(slots), params).all()
    return Written(result[0][0], [outbox_id for _, outbox_id in result if outbox_id is not None])


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


def _insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT many rows, their ids answered in the rows' order: one executemany per set of
    columns (SQLAlchemy batches it into multi-row INSERT … RETURNING on both databases)."""
    ids: list[int | None] = [None] * len(rows)
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(tuple(row), []).append(index)
    for indexes in groups.values():
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        result = session.execute(statement, [rows[i] for i in indexes])
        for index, new_id in zip(indexes, result.scalars().all(), strict=True):
            ids[index] = new_id
    return ids  # type: ignore[return-value]


def write_new_cases(session: Session, news: list[NewCase]) -> list[int]:
    """Insert many cases with their first events and clocks in a few batched statements (a bulk
    import: `supervise import cases`); their ids in order. No photos or outbox rows: a case that
    needs those comes through `write_new_case`. The caller commits."""
    if any(new.attachments or new.outbox for new in news):
        raise ValueError("write_new_cases takes no attachments or outbox rows")
    case_ids = _insert_rows(session, Case.__table__, [_row(new.case) for new in news])
    _insert_rows(
        session,
        Event.__table__,
        [{**_row(new.event), "case_id": case_id} for new, case_id in zip(news, case_ids, strict=True)],
    )
    clocks = [
        {**_row(clock), "case_id": case_id}
        for new, case_id in zip(news, case_ids, strict=True)
        for clock in new.clocks
    ]
    if clocks:
        _insert_rows(session, CaseClock.__table__, clocks)
    return case_ids
