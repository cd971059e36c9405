"""单位: the org tree with its discipline bodies, keyed by org code. Rows may come in any order: a
parent is found among the existing orgs or elsewhere in the file.

An existing org is renamed (and its supervising body set) when the file says so; the file never
moves an org or changes its kind (that would re-route every case about it: a deliberate admin
step). An admin imports only below their own org; an admin at a unit creates no discipline body
and sets no supervising body (DESIGN.md §2a)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from supervise.cases.labels import ORG_KIND_LABELS
from supervise.i18n import N_
from supervise.imports.base import Column, ImportContext, Plan, RowError, Rows, choice_value, text_value
from supervise.orgs.models import BODY_KINDS, Org, OrgKind
from supervise.orgs.services import create_org
from supervise.staff.admin.common import CODE_RE

LABEL = N_("单位")
COLUMNS = (
    Column(
        "code",
        N_("单位代码"),
        True,
        N_("稳定的代码：字母、数字、- 和 _，如 xx-town-3"),
        "xx-town-1-village-9",
    ),
    Column("name", N_("单位名称"), True, N_("单位全称，不超过 200 字"), "某某村"),
    Column(
        "kind",
        N_("单位类型"),
        True,
        N_("纪委监委、乡镇（街道）纪委、派驻纪检监察组、部门、乡镇政府/街道办、村/社区（或英文代码）"),
        "村/社区",
    ),
    Column(
        "parent",
        N_("上级单位代码"),
        False,
        N_("上级单位的代码（系统中已有或本文件中的）；仅最顶层的纪委监委留空"),
        "xx-town-1",
    ),
    Column(
        "supervised_by",
        N_("监督机构代码"),
        False,
        N_("单位由哪个纪检监察机构监督（如派驻组）；留空则为最近的上级纪检监察机构"),
        "",
    ),
    Column(
        "population",
        N_("人口"),
        False,
        N_(
            "常住人口（整数，可不填；留空不改动已有的）：用于考核的每千人有效反映件数，乡镇填含所辖村、社区的人口"
        ),
        "",
    ),
)
MAX_POPULATION = 100_000_000


def population_value(value: Any) -> int:
    text = str(value).strip().replace(",", "")
    if text.endswith(".0"):  # a number cell read from XLSX
        text = text[:-2]
    if not text.isdigit() or int(text) > MAX_POPULATION:
        raise RowError(N_("须为 0 到 %(n)s 之间的整数"), n=MAX_POPULATION)
    return int(text)


# What a kind may be called in a file: the code, the label, and the words a county writes.
KIND_WORDS: dict[str, str] = {k.value: k.value for k in OrgKind}
KIND_WORDS.update({label.lower(): kind for kind, label in ORG_KIND_LABELS.items()})
KIND_WORDS.update(
    {
        "纪委": "commission",
        "县纪委监委": "commission",
        "乡镇纪委": "discipline_office",
        "街道纪工委": "discipline_office",
        "派驻组": "stationed_group",
        "乡镇": "township",
        "街道": "township",
        "乡镇政府": "township",
        "村": "village",
        "社区": "village",
    }
)
KINDS_TEXT = "、".join(ORG_KIND_LABELS.values())


@dataclass
class OrgRow:
    row: int
    code: str
    name: str
    kind: str
    parent: str
    supervised_by: str | None  # None: the file has no such column (leave as it is)
    existing: Org | None = None
    population: int | None = None  # None: the cell is empty (leave as it is)


def check(ctx: ImportContext, rows: Rows, table: list[tuple[int, list[Any]]]) -> Plan:
    session = ctx.session
    existing = {o.code: o for o in session.scalars(select(Org))}
    has_root = any(o.parent_id is None for o in existing.values())
    items: dict[str, OrgRow] = {}
    for number, values in table:
        if rows.full():
            break
        code = rows.read(number, values, "code", lambda v: text_value(v, max_len=64))
        if code and not CODE_RE.match(code):
            rows.problem(number, "code", N_("单位代码只能包含字母、数字、- 和 _"))
            code = None
        name = rows.read(number, values, "name", lambda v: text_value(v, max_len=200))
        kind = rows.read(number, values, "kind", lambda v: choice_value(v, KIND_WORDS, KINDS_TEXT))
        parent = rows.read(number, values, "parent", lambda v: text_value(v, max_len=64)) or ""
        body = rows.read(number, values, "supervised_by", lambda v: text_value(v, max_len=64))
        population = rows.read(number, values, "population", population_value)
        if code in items:
            rows.problem(number, "code", N_("与第 %(row)s 行的单位代码重复"), row=items[code].row)
            continue
        if not (code and name and kind):
            continue
        item = OrgRow(number, code, name, kind, parent, (body or "") if rows.has("supervised_by") else None)
        item.existing = existing.get(code)
        item.population = population
        items[code] = item

    # Each new org's parent: an existing org in scope, or another row (followed up to one).
    def reaches_scope(item: OrgRow) -> bool | None:
        seen = set()
        current = item
        while current.existing is None:
            if current.code in seen:
                return None  # a loop inside the file
            seen.add(current.code)
            if not current.parent:
                return ctx.scope.system and ctx.scope.at_body and not has_root
            parent = items.get(current.parent)
            if parent is None:
                return ctx.scope.contains(existing.get(current.parent))
            current = parent
        return ctx.scope.contains(current.existing)

    plan = Plan()
    creates: list[OrgRow] = []
    renames: list[tuple[OrgRow, Org]] = []
    supervisors: list[tuple[OrgRow, str | None]] = []
    populations: list[OrgRow] = []  # 人口 to set (new orgs, and existing ones whose number differs)
    tops = [i for i in items.values() if i.existing is None and not i.parent]
    for item in items.values():
        kind_is_body = item.kind in BODY_KINDS
        if item.existing is not None:
            org = item.existing
            if not ctx.scope.contains(org):
                rows.problem(
                    item.row, "code", N_("单位代码 %(code)s 已被您管理范围以外的单位使用"), code=item.code
                )
                continue
            if org.kind != item.kind:
                rows.problem(
                    item.row,
                    "kind",
                    N_("与系统中的类型（%(kind)s）不同；导入不更改已有单位的类型"),
                    kind=ORG_KIND_LABELS[org.kind],
                )
                continue
            parent_code = org.parent.code if org.parent is not None else ""
            if item.parent != parent_code:
                rows.problem(
                    item.row,
                    "parent",
                    N_("与系统中的上级单位（%(code)s）不同；导入不移动已有单位"),
                    code=parent_code or "—",
                )
                continue
        else:
            if not item.parent:
                if has_root or len(tops) > 1:
                    rows.problem(item.row, "parent", N_("必须填写（系统中只能有一个最顶层单位）"))
                    continue
                if item.kind != OrgKind.COMMISSION:
                    rows.problem(item.row, "parent", N_("最顶层单位须为纪委监委"))
                    continue
            elif item.parent not in items and item.parent not in existing:
                rows.problem(item.row, "parent", N_("找不到代码为 %(code)s 的单位"), code=item.parent)
                continue
            reached = reaches_scope(item)
            if reached is None:
                rows.problem(item.row, "parent", N_("上级单位关系形成了循环"))
                continue
            if not reached:
                rows.problem(item.row, "parent", N_("%(code)s 不在您的管理范围内"), code=item.parent or "—")
                continue
            if kind_is_body and not ctx.scope.at_body:
                rows.problem(item.row, "kind", N_("单位的管理员不能创建纪检监察机构"))
                continue
        if item.supervised_by is not None:
            wanted = _check_supervisor(ctx, rows, item, items, existing)
            if wanted is False:
                continue
            current = (
                item.existing.supervising_body.code
                if item.existing and item.existing.supervising_body
                else ""
            )
            if (wanted or "") != current:
                supervisors.append((item, wanted or None))
        if item.existing is None:
            creates.append(item)
        elif item.existing.name != item.name:
            renames.append((item, item.existing))
        if item.population is not None and item.population != getattr(item.existing, "population", None):
            populations.append(item)
    plan.create = len(creates)
    touched = {i.code for i, _ in renames} | {i.code for i, _ in supervisors if i.existing is not None}
    touched |= {i.code for i in populations if i.existing is not None}
    plan.update = len(touched)
    plan.unchanged = sum(1 for i in items.values() if i.existing is not None) - plan.update

    def apply(ctx: ImportContext, progress) -> dict[str, Any]:
        made: dict[str, Org] = {}
        for item in _parents_first(creates):
            parent = (made.get(item.parent) or existing.get(item.parent)) if item.parent else None
            made[item.code] = create_org(ctx.session, item.code, item.name, item.kind, parent)
            progress(1)
        for item, org in renames:
            org.name = item.name
            progress(1)
        for item, body_code in supervisors:
            org = made.get(item.code) or item.existing
            org.supervising_body = (made.get(body_code) or existing.get(body_code)) if body_code else None
        for item in populations:
            (made.get(item.code) or item.existing).population = item.population
        return {"created": sorted(made), "renamed": [i.code for i, _ in renames]}

    plan.apply = apply
    return plan


def _check_supervisor(ctx, rows: Rows, item: OrgRow, items, existing) -> str | bool:
    """The supervising body a row names ('' for the default), or False after a problem."""
    code = item.supervised_by
    if not code:
        return ""
    if not ctx.scope.at_body:
        rows.problem(item.row, "supervised_by", N_("只有纪检监察机构的管理员可以设置监督机构"))
        return False
    if item.kind in BODY_KINDS:
        rows.problem(item.row, "supervised_by", N_("纪检监察机构不设监督机构，请留空"))
        return False
    if code in items:
        kind = items[code].kind
        if items[code].existing is None and kind in BODY_KINDS:
            return code
    body = existing.get(code)
    if body is None and code not in items:
        rows.problem(item.row, "supervised_by", N_("找不到代码为 %(code)s 的单位"), code=code)
        return False
    kind = items[code].kind if code in items else body.kind
    if kind not in BODY_KINDS:
        rows.problem(item.row, "supervised_by", N_("%(code)s 不是纪检监察机构"), code=code)
        return False
    if body is not None and (not body.active or not ctx.scope.contains(body)):
        rows.problem(item.row, "supervised_by", N_("%(code)s 已停用或不在您的管理范围内"), code=code)
        return False
    return code


def _parents_first(items: list[OrgRow]) -> list[OrgRow]:
    """New orgs ordered so each comes after its parent (when the parent is new too)."""
    by_code = {i.code: i for i in items}
    ordered: list[OrgRow] = []
    placed: set[str] = set()

    def place(item: OrgRow) -> None:
        if item.code in placed:
            return
        if item.parent in by_code:
            place(by_code[item.parent])
        placed.add(item.code)
        ordered.append(item)

    for item in items:
        place(item)
    return ordered
