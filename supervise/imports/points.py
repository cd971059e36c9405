"""监督点: a point is keyed by its org and its name. A new point gets a fresh random token (its QR
code); an existing one is switched on or off when the file has the 是否启用 column."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from supervise.i18n import N_
from supervise.imports.base import Column, ImportContext, Plan, Rows, bool_value, text_value
from supervise.intake.models import Point
from supervise.orgs.models import Org

LABEL = N_("监督点")
COLUMNS = (
    Column("org", N_("单位代码"), True, N_("监督点所属单位的代码（须已在系统中）"), "xx-town-1-village-9"),
    Column(
        "name",
        N_("监督点名称"),
        True,
        N_("张贴二维码的地方，如“某某村便民服务站”，不超过 200 字"),
        "某某村便民服务站",
    ),
    Column("active", N_("是否启用"), False, N_("是 / 否；留空为“是”"), "是"),
)


def check(ctx: ImportContext, rows: Rows, table: list[tuple[int, list[Any]]]) -> Plan:
    session = ctx.session
    orgs = {o.code: o for o in session.scalars(select(Org))}
    points = {(p.org_id, p.name): p for p in session.scalars(select(Point))}
    seen: dict[tuple[int, str], int] = {}
    new: list[tuple[Org, str, bool]] = []
    switch: list[tuple[Point, bool]] = []
    unchanged = 0
    for number, values in table:
        if rows.full():
            break
        code = rows.read(number, values, "org", lambda v: text_value(v, max_len=64))
        name = rows.read(number, values, "name", lambda v: text_value(v, max_len=200))
        active = rows.read(number, values, "active", bool_value)
        org = orgs.get(code) if code else None
        if code and not ctx.scope.contains(org):
            rows.problem(number, "org", N_("找不到代码为 %(code)s 的单位"), code=code)
            continue
        if org is None or not name:
            continue
        key = (org.id, name)
        if key in seen:
            rows.problem(number, "name", N_("与第 %(row)s 行重复（同一单位的同名监督点）"), row=seen[key])
            continue
        seen[key] = number
        point = points.get(key)
        if point is None:
            new.append((org, name, True if active is None else active))
        elif active is not None and point.active != active:
            switch.append((point, active))
        else:
            unchanged += 1

    def apply(ctx: ImportContext, progress) -> dict[str, Any]:
        for org, name, active in new:
            ctx.session.add(Point(org_id=org.id, name=name, active=active))
            progress(1)
        for point, active in switch:
            point.active = active
            progress(1)
        return {"created": len(new), "switched": len(switch)}

    return Plan(create=len(new), update=len(switch), unchanged=unchanged, apply=apply)
