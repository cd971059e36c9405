"""Generate a big county — or a province of counties — in the bench database: orgs, staff, points, N cases.

    python -m bench.generate --cases 1000000 [--counties N] [--seed 1] [--reset]

One county below 5,000,000 cases; from there `--counties` defaults to 10 under a province
commission (bench/README.md, "A province").

The schema comes from the real migrations, the demo county from `supervise.demo.load_demo`, the
extra orgs, accounts and points from the app's own services. The cases and their `submit` events
are inserted set-based (one INSERT … SELECT FROM generate_series each), with the non-unique indexes
of `cases` and `events` dropped during the load and re-created from their exact definitions.

Reusable: `generate(cases, seed)` returns a description of the data set; called again with the
same arguments it reuses what is there (the database carries a COMMENT saying what it holds).
Times are relative to the moment of generation (`now`, recorded): open cases are young, done cases
spread over two years, so the queues look like a live system's on the day it was generated.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import common
from bench.figures import Figure

# -- the shape of the data ------------------------------------------------------------------------

# Share of cases per status (sums to 1): roughly a live system's.
STATUS_MIX: list[tuple[str, float]] = [
    ("received", 0.05),
    ("accepted", 0.03),
    ("assigned", 0.04),
    ("processing", 0.06),
    ("feedback_pending_review", 0.02),
    ("responded", 0.10),
    ("closed", 0.65),
    ("rejected", 0.02),
    ("merged", 0.01),
    ("reopened", 0.02),
]
OPEN = ("received", "accepted", "assigned", "processing", "feedback_pending_review", "reopened")
# Statuses whose case went through 交办 and so has an assignee (a handler of its org).
ASSIGNED = ("assigned", "processing", "feedback_pending_review", "responded", "closed", "reopened")
OVERDUE_SHARE = 0.08  # of open cases
REAL_NAME_SHARE = 0.25
# A citizen's reply no one has acted on yet puts a case on top of its queue (priority -1), until
# staff act on it; only open and responded cases can receive one.
CITIZEN_REPLIED_SHARE = 0.02
HISTORY_DAYS = 730  # done cases were received over the last two years (one county)
# A province (more than one county): a province-level commission above the counties, whose
# archives go back further. The status mix stays a live county's, so each county's queues look
# like the one-county data set's; only the done cases' receipt dates spread over more years.
PROVINCE_HISTORY_DAYS = 5 * 365
PROVINCE_DEFAULT_FROM = 5_000_000  # from this many cases `--counties` defaults to PROVINCE_COUNTIES
PROVINCE_COUNTIES = 10
# Counties are skewed too (the c-th weighs 1/c^COUNTY_SKEW): county 1 (the demo's, where every
# benchmark role sits) is the busiest, ~20 % of a ten-county province.
COUNTY_SKEW = 0.5
PROVINCE_SUBJECT_SHARE = 0.005  # complaints about the province commission's own 信访室 point

# Where cases land: the share of each org kind, then skewed inside a kind (the i-th org of a kind
# weighs 1/i^SKEW), so a few villages and townships are busy and most are quiet.
KIND_SHARE = {"commission": 0.03, "department": 0.12, "township": 0.25, "village": 0.60}
SKEW = 0.8
BUCKETS = 100_000  # org lookup table resolution: a case picks bucket floor(u * BUCKETS)

# Who owns and who holds a case (DESIGN.md §2a). The owner is the routed discipline body
# (`OrgTree.owner_for` on the point's org: a township's 纪委 for the township and its villages, the
# county for departments, the 派驻组 for STATIONED_DEPARTMENTS, one body up for complaints about a
# unit's head). A case sits with its owner, except the service complaints about a unit that the
# owner transferred to that unit (转办): UNIT_SHARE of those past acceptance; while they are being
# handled (AT_UNIT) they sit at the unit, afterwards the unit is kept on the case (its history).
UNIT_SHARE = 0.6
AT_UNIT = ("assigned", "processing")
VIA_UNIT = ("assigned", "processing", "feedback_pending_review", "responded", "closed", "reopened")
UNIT_UNASSIGNED_SHARE = 0.3  # of the unit's `assigned` cases: its leader has not picked a handler yet
# 定性 at acceptance: the category's default kind; for a category without one, this share of
# 检举控告 (accusation), the rest service. Received, rejected and merged cases have none (the app
# sets it at acceptance; rejection and merging happen before).
ACCUSATION_SHARE_NO_DEFAULT = 0.3
STATIONED_DEPARTMENTS = range(26, 31)  # bench-dept-26…30 answer to the 派驻组 demo-county-group-1
DISPOSALS = ["talk_inquiry", "preliminary_check", "shelved", "concluded"]
DISPOSAL_NOTE = "经初步核实，反映问题线索不具体，予以了结，并向反映人说明。"
REJECT_REASONS = ["out_of_scope", "no_facts", "already_handled", "duplicate", "other"]
# Of the rejected cases, this share was rejected in the last 3–18 days (the supervisors'
# 不予受理复核 tab); the others, like every closed case, over the last two years.
RECENT_REJECTED_SHARE = 0.05

DEPARTMENTS = [
    "发改局", "教育局", "科技局", "工信局", "公安局", "司法局", "财政局", "自然资源局", "生态环境局",
    "住建局", "交通运输局", "水利局", "农业农村局", "商务局", "文旅局", "卫健局", "退役军人事务局",
    "应急管理局", "审计局", "市场监管局", "统计局", "医保局", "林业局", "城管局", "信访局",
    "行政审批局", "乡村振兴局", "供销社", "税务局", "供电公司",
]  # fmt: skip
TOWNSHIPS = [
    "城南镇", "城北镇", "河西镇", "东湖乡", "白云镇", "柳林乡", "马坊镇", "杨庄乡", "金山镇", "龙泉镇",
    "新集乡", "双河镇", "高桥乡", "花园镇", "黄土乡", "石桥镇", "长岭乡", "枫林镇", "大王庄乡", "红星镇",
]  # fmt: skip
VILLAGES = [
    "张庄村", "李家村", "王营村", "刘湾村", "陈岗村", "杨楼村", "赵集村", "孙湾村", "周庄村", "吴店村",
    "郑家村", "冯庄村", "朱营村", "胡楼村", "新华社区",
]  # fmt: skip
VILLAGES_PER_TOWNSHIP = 15
COUNTIES = [
    "示范县", "东平县", "西河县", "南山县", "北岭县", "清水县", "青石县", "安宁县", "长丰县", "宁远县",
    "永和县", "临川县",
]  # fmt: skip

SUBJECTS = [
    "村委会主任", "村支部书记", "村会计", "镇便民服务中心窗口", "乡镇干部", "包村干部", "派出所户籍窗口",
    "县政务服务大厅", "社保经办人员", "低保评审小组", "不动产登记窗口", "学校收费",
]  # fmt: skip
CONTENTS = [
    "低保评定不公开，名单里有村干部亲属。",
    "办理证明时被要求请吃饭才给盖章。",
    "耕地地力保护补贴迟迟没有发放，也没有公示。",
    "窗口工作人员上班时间玩手机，态度生硬。",
    "临时救助申请提交一个多月没有任何回音。",
    "危房改造名额被优先分给了干部亲戚。",
    "村务公开栏半年没有更新，账目看不到。",
    "办理营业执照多次被要求补材料，每次说法不一。",
    "学校以资料费名义额外收费，没有收据。",
    "道路硬化工程偷工减料，刚修好就开裂。",
    "反映的问题多次打电话无人接听。",
    "医保报销材料交了三次仍说不齐全。",
]
LOCATIONS = [None, None, None, None, "村委会", "便民服务中心", "县政务服务大厅", "学校门口"]
FEEDBACK = "经核查，反映问题部分属实，已责令相关人员整改，并向反映人当面说明情况。"
BENCH_PASSWORD = "bench-password"  # noqa: S105 - the generated staff accounts' password
REPORTER_NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞"]


def _status_thresholds() -> list[tuple[str, float]]:
    total, out = 0.0, []
    for status, share in STATUS_MIX:
        total += share
        out.append((status, total))
    if abs(total - 1) > 1e-9:
        raise ValueError("STATUS_MIX must sum to 1")
    return out


# -- the org tree, staff and points (through the app's services) ----------------------------------


# An org group the cases are spread over: its share of all cases, the share of each org kind inside
# it, and its orgs by kind in weight order.
OrgGroup = tuple[float, dict[str, float], dict[str, list]]


def _add_county(session, county, group, prefix: str, county_name: str) -> None:
    """The bench's county shape under a county commission: 30 departments (26–30 supervised by the
    派驻组 `group`), 20 townships each with its 纪委 and 15 villages. `prefix` starts every code
    (`bench-` for the demo county, `bench-cNN-` for the province's other counties)."""
    from supervise.orgs.models import OrgKind
    from supervise.orgs.services import create_org

    for i, name in enumerate(DEPARTMENTS, 1):
        code, full_name = f"{prefix}dept-{i:02d}", f"{county_name}{name}"
        dept = create_org(session, code, full_name, OrgKind.DEPARTMENT, county)
        if i in STATIONED_DEPARTMENTS:
            dept.supervising_body = group
    for t, town_name in enumerate(TOWNSHIPS, 1):
        town = create_org(session, f"{prefix}town-{t:02d}", town_name, OrgKind.TOWNSHIP, county)
        create_org(session, f"{town.code}-jw", f"{town_name}纪委", OrgKind.DISCIPLINE_OFFICE, town)
        for v in range(1, VILLAGES_PER_TOWNSHIP + 1):
            name = VILLAGES[(v - 1) % len(VILLAGES)]
            create_org(session, f"{prefix}town-{t:02d}-village-{v:02d}", name, OrgKind.VILLAGE, town)


def _add_province(session, counties: int) -> list:
    """A province commission above the demo county (whose subtree's paths gain its prefix) and
    `counties - 1` more county commissions, each with its 派驻组 and the bench's county shape;
    returns the county commissions, the demo county first."""
    from sqlalchemy import text

    from supervise.orgs.models import OrgKind
    from supervise.orgs.services import create_org, get_org_by_code

    province = create_org(session, "bench-province", "示范省纪委监委", OrgKind.COMMISSION)
    session.execute(
        text("UPDATE orgs SET path = :prefix || substr(path, 2) WHERE id <> :province"),
        {"prefix": province.path, "province": province.id},
    )
    session.execute(
        text("UPDATE orgs SET parent_id = :province WHERE code = 'demo-county'"), {"province": province.id}
    )
    session.expire_all()
    commissions = [get_org_by_code(session, "demo-county")]
    for c in range(2, counties + 1):
        name = COUNTIES[c - 1] if c <= len(COUNTIES) else f"第{c}县"
        code = f"bench-c{c:02d}"
        county = create_org(session, code, f"{name}纪委监委", OrgKind.COMMISSION, province)
        group = create_org(
            session, f"{code}-group-1", f"{name}纪委监委派驻第一纪检监察组", OrgKind.STATIONED_GROUP, county
        )
        _add_county(session, county, group, f"{code}-", name)
        commissions.append(county)
    return commissions


def _build_orgs(session, counties: int = 1) -> list[OrgGroup]:
    """Add departments, townships (each with its 纪委) and villages under the demo county and, for a
    province (`counties` > 1), a province commission above it with `counties - 1` more counties of
    the same shape; return the groups cases are spread over: each county's orgs cases are about (its
    commission and its units) by kind, in weight order, and the province commission itself."""
    import re

    from sqlalchemy import select

    from supervise.intake.models import Point
    from supervise.orgs.models import Org
    from supervise.orgs.services import get_org_by_code

    county = get_org_by_code(session, "demo-county")
    _add_county(session, county, get_org_by_code(session, "demo-county-group-1"), "bench-", COUNTIES[0])
    session.flush()
    commissions = _add_province(session, counties) if counties > 1 else [county]
    session.flush()

    # QR points where citizens are: each commission's 信访室 (the demo's) and every unit; none at
    # the townships' 纪委 or the 派驻组 (as in the demo).
    orgs = [o for o in session.scalars(select(Org).order_by(Org.id)) if o.kind in KIND_SHARE]
    have_point = set(session.scalars(select(Point.org_id)))
    for org in orgs:
        if org.id not in have_point:
            session.add(Point(org=org, name=f"{org.name}监督点"))
    session.flush()

    village = re.compile(r"bench-(?:c\d+-)?town-(\d+)-village-(\d+)$")

    def weight_order(org: Org) -> tuple:
        # bench orgs first (bench-town-01 is the busiest township), the demo's after them. Villages
        # interleave across townships (every township's village 01, then every village 02, …):
        # town-major order would put the 15 heaviest villages in one township, whose 纪委 would then
        # own 27 % of the county's complaints.
        m = village.match(org.code)
        if m:
            return (0, f"{int(m.group(2)):03d}-{int(m.group(1)):03d}")
        return (0 if org.code.startswith("bench-") else 1, org.code)

    raw = [1 / (c**COUNTY_SKEW) for c in range(1, len(commissions) + 1)]
    spread = 1.0 if len(commissions) == 1 else 1 - PROVINCE_SUBJECT_SHARE
    groups: list[OrgGroup] = []
    for commission, weight in zip(commissions, raw, strict=True):
        by_kind: dict[str, list] = {kind: [] for kind in KIND_SHARE}
        for org in sorted((o for o in orgs if o.path.startswith(commission.path)), key=weight_order):
            by_kind[org.kind].append(org)
        groups.append((spread * weight / sum(raw), KIND_SHARE, by_kind))
    if len(commissions) > 1:
        groups.append((PROVINCE_SUBJECT_SHARE, {"commission": 1.0}, {"commission": [commissions[0].parent]}))
    return groups


def _build_users(session) -> int:
    """Accounts as the demo has them (DESIGN.md §2a): each township's 纪委 a two-person office
    (`-intake`: intake + supervisor, `-handler`); each department and township a leader and a
    handler; each village one account that is both. The demo's own accounts are kept."""
    from sqlalchemy import select

    from supervise.orgs.models import Org
    from supervise.staff.models import User
    from supervise.staff.services import create_user

    body = (("intake", "intake,supervisor"), ("handler", "handler"))
    accounts_for = {  # a province's bench commissions and 派驻组 are two-person offices too
        "commission": body,
        "stationed_group": body,
        "discipline_office": body,
        "department": (("leader", "leader"), ("handler", "handler")),
        "township": (("leader", "leader"), ("handler", "handler")),
        "village": (("leader", "leader,handler"),),
    }
    existing = set(session.scalars(select(User.username)))
    made = 0
    for org in session.scalars(select(Org).where(Org.code.startswith("bench-")).order_by(Org.id)):
        for suffix, roles in accounts_for.get(org.kind, ()):
            username = f"{org.code}-{suffix}"
            if username in existing:
                continue
            create_user(session, username=username, org=org, role=roles, password=BENCH_PASSWORD)
            made += 1
    session.flush()
    return made


def _org_buckets(session, groups: list[OrgGroup]) -> list[tuple]:
    """(bucket, subject org, point, owner, owner when about the head, their handlers, the subject
    unit's handler, whether the subject is a unit) for BUCKETS buckets, each org getting its
    weight's share. Routing (`OrgTree.owner_for`) runs once per org, not per case."""
    from sqlalchemy import func, select

    from supervise.intake.models import Point
    from supervise.orgs.routing import OrgTree
    from supervise.staff.models import User

    point_of = dict(session.execute(select(Point.org_id, func.min(Point.id)).group_by(Point.org_id)).all())
    handler_of = dict(
        session.execute(
            select(User.org_id, func.min(User.id))
            .where(User.holding("handler"), User.active)
            .group_by(User.org_id)
        ).all()
    )
    tree = OrgTree.load(session)
    routed: dict[int, tuple] = {}
    for org in (org for _, _, by_kind in groups for orgs in by_kind.values() for org in orgs):
        owner = tree.owner_for(org.id, about_leadership=False)
        owner_head = tree.owner_for(org.id, about_leadership=True)
        routed[org.id] = (
            point_of[org.id],
            owner,
            owner_head,
            handler_of[owner],
            handler_of[owner_head],
            None if org.is_body else handler_of[org.id],
            not org.is_body,
        )
    weights: list[tuple[int, float]] = []
    for group_share, kind_share, by_kind in groups:
        for kind, orgs in by_kind.items():
            raw = [1 / (i**SKEW) for i in range(1, len(orgs) + 1)]
            total = sum(raw)
            weights.extend(
                (org.id, group_share * kind_share[kind] * w / total) for org, w in zip(orgs, raw, strict=True)
            )
    rows, cumulative, index = [], 0.0, 0
    edges = []
    for org_id, w in weights:
        cumulative += w
        edges.append((cumulative, org_id))
    for b in range(BUCKETS):
        x = (b + 0.5) / BUCKETS
        while index < len(edges) - 1 and x >= edges[index][0]:
            index += 1
        org_id = edges[index][1]
        rows.append((b, org_id, *routed[org_id]))
    return rows


# -- deadlines, computed by the app's own calendar --------------------------------------------------


def _due_rows(app, session, first: date, last: date) -> list[tuple[date, datetime, datetime, bool]]:
    """(local day, response due at, stage due at, provisional) for every day a clock may start on."""
    from supervise.cases.services import policy
    from supervise.deadlines.calendar import get_calendar
    from supervise.deadlines.clocks import Clocks

    clocks = Clocks(get_calendar(session), policy())
    rows = []
    day = first
    while day <= last:
        response = clocks.calendar.add_working_days(day, clocks.policy.response_days)
        stage = clocks.calendar.add_working_days(day, clocks.policy.stage_days)
        naive = lambda moment: moment.astimezone(UTC).replace(tzinfo=None)  # noqa: E731
        rows.append((day, naive(response.at), naive(stage.at), response.provisional))
        day += timedelta(days=1)
    return rows


# -- the set-based load -----------------------------------------------------------------------------

# Every value of a case, as SQL over the staged row `q` (see STAGE_SQL). A column of `cases` that is
# NOT NULL without a default and missing here stops the generator with its name (the schema moved).
CASE_COLUMNS: dict[str, str] = {
    "tracking_no": "'MS' || q.yr || '-' || lpad(q.seq::text, greatest(6, length(q.seq::text)), '0')",
    "access_code_hash": "md5('a' || q.n || '-' || %(seed)s::text) "
    "|| md5('b' || q.n || '-' || %(seed)s::text)",
    "status": "q.status",
    "version": "1",
    "org_id": "q.org_id",
    "owner_org_id": "q.owner_org_id",
    "subject_org_id": "q.subject_org_id",
    "unit_org_id": "q.unit_org_id",
    "kind": "q.kind",
    "disposal": "q.disposal",
    "disposal_note": "CASE WHEN q.disposal IS NOT NULL THEN %(disposal_note)s END",
    "reject_reason": "q.reject_reason",
    "point_id": "CASE WHEN q.u_misc < 0.9 THEN q.point_id END",
    # 来源渠道 (issue 16): a point's cases came by QR code, the rest by the other channels in turn.
    "channel": "CASE WHEN q.u_misc < 0.9 THEN 'qr' "
    "ELSE (ARRAY['web', 'phone', 'letter', 'visit', 'hotline'])[1 + q.n %% 5] END",
    "category_id": "(%(category_ids)s::int[])"
    "[1 + floor(q.u_cat * cardinality(%(category_ids)s::int[]))::int]",
    "assignee_id": "q.assignee_id",
    "merged_into_id": "NULL",
    "subject": "q.subject",
    "content": "q.content",
    "occurred_on": "CASE WHEN q.u_misc < 0.5 THEN q.received_day - floor(q.u_misc * 30)::int END",
    "location": "q.location",
    "about_org_head": "q.u_misc > 0.99",
    "real_name": "q.real_name",
    "priority": "CASE WHEN q.replied THEN -1 WHEN q.real_name THEN 0 ELSE 1 END",
    "reporter_name_enc": "CASE WHEN q.real_name "
    "THEN (%(names)s::bytea[])[1 + q.n %% cardinality(%(names)s::bytea[])] END",
    "reporter_phone_enc": "CASE WHEN q.real_name "
    "THEN (%(phones)s::bytea[])[1 + q.n %% cardinality(%(phones)s::bytea[])] END",
    "received_at": "q.received_at",
    "response_due_at": "q.response_due_at",
    "due_provisional": "q.due_provisional",
    "stage_due_at": "q.stage_due_at",
    "extension_days": "0",
    "responded_at": "q.responded_at",
    "closed_at": "q.closed_at",
    "escalation_level": "q.escalation_level",
    "feedback_draft": "CASE WHEN q.status IN ('feedback_pending_review', 'responded', 'closed', 'reopened') "
    "THEN %(feedback)s END",
    "feedback_text": "CASE WHEN q.status IN ('responded', 'closed', 'reopened') THEN %(feedback)s END",
    "rating": "q.rating",
    "rating_comment": "NULL",
    "rated_at": "q.rated_at",
    "reopen_count": "CASE WHEN q.status = 'reopened' THEN 1 ELSE 0 END",
    "submit_key": "NULL",
    "updated_at": "greatest(q.received_at, q.clock_start, q.responded_at, q.closed_at, q.rated_at)",
    "search_text": "q.search_text",
}

# One row per case with every random choice made; the timeline per status:
#   open: the response clock started 0–20 days ago, or (OVERDUE_SHARE of them) 35–185 days ago;
#         a reopened case was received 20–50 days before its clock restarted;
#   responded: answered 0–10 days ago, 2–22 days after receipt (rating window still open);
#   closed: received 30–730 days ago, answered after 2–24 days (some late), closed on rating or
#           10 days later; rejected / merged: received 30–730 days ago (RECENT_REJECTED_SHARE of
#           the rejected ones 3–18 days ago), closed within 3 days.
STAGE_SQL = """
CREATE TEMP TABLE bench_stage AS
WITH r AS MATERIALIZED (
    SELECT g AS n, random() AS u_status, random() AS u_org, random() AS u_t, random() AS u_t2,
           random() AS u_c, random() AS u_c2, random() AS u_real, random() AS u_cat,
           random() AS u_text, random() AS u_misc, random() AS u_esc, random() AS u_reply,
           random() AS u_unit, random() AS u_kind, random() AS u_assign
    FROM generate_series(1, %(cases)s) AS g
), s AS (
    SELECT r.*, {status_case} AS status FROM r
), t AS (
    SELECT s.*,
        CASE
            WHEN s.status IN {open} THEN %(now)s - interval '1 day' *
                CASE WHEN s.u_t2 < %(overdue_share)s THEN 35 + s.u_t * 150 ELSE s.u_t * 20 END
            WHEN s.status = 'responded' THEN %(now)s - interval '1 day' * (s.u_t * 10 + 2 + s.u_t2 * 20)
            WHEN s.status = 'rejected' AND s.u_c < %(recent_rejected)s  -- still reversible (不予受理复核)
                THEN %(now)s - interval '1 day' * (3 + s.u_t * 15)
            ELSE %(now)s - interval '1 day' * (30 + s.u_t * (%(history_days)s - 30))
        END AS clock_start
    FROM s
), u AS (
    SELECT t.*,
        CASE WHEN t.status = 'reopened' THEN t.clock_start - interval '1 day' * (20 + t.u_c * 30)
             ELSE t.clock_start END AS received_at,
        CASE WHEN t.status IN ('responded', 'closed')
             THEN t.clock_start + interval '1 day'
                  * (2 + t.u_t2 * CASE WHEN t.status = 'closed' THEN 22 ELSE 20 END)
        END AS responded_at
    FROM t
), v AS (
    SELECT u.*,
        CASE
            WHEN u.status = 'closed' THEN u.responded_at + interval '1 day' *
                CASE WHEN u.u_c2 < 0.65 THEN u.u_c * 10 ELSE 10 END
            WHEN u.status IN ('rejected', 'merged') THEN u.received_at + interval '1 day' * u.u_t2 * 3
        END AS closed_at,
        CASE
            WHEN u.status = 'closed' AND u.u_c2 < 0.5 THEN 'satisfied'
            WHEN u.status = 'closed' AND u.u_c2 < 0.65 THEN 'basically_satisfied'
            WHEN u.status = 'reopened' THEN 'unsatisfied'
        END AS rating
    FROM u
), w AS (  -- routing (per org, precomputed) and the 定性
    SELECT v.*, b.subject_org_id, b.point_id, b.unit_handler_id, b.is_unit,
           CASE WHEN v.u_misc > 0.99 THEN b.owner_head_id ELSE b.owner_id END AS owner_id,
           CASE WHEN v.u_misc > 0.99 THEN b.owner_head_handler_id ELSE b.owner_handler_id END
               AS owner_handler_id,
           CASE WHEN v.status NOT IN ('received', 'rejected', 'merged') THEN coalesce(
               (%(category_kinds)s::text[])[1 + floor(v.u_cat * cardinality(%(category_ids)s::int[]))::int],
               CASE WHEN v.u_kind < %(accusation_share)s THEN 'accusation' ELSE 'service' END)
           END AS kind
    FROM v
    JOIN bench_org_bucket b ON b.bucket = floor(v.u_org * %(buckets)s)::int
), y AS (  -- transferred to the subject unit (转办): service complaints only
    SELECT w.*, w.is_unit AND w.kind = 'service' AND w.status IN {via_unit}
                AND w.u_unit < %(unit_share)s AS via_unit
    FROM w
)
SELECT y.n, y.status, y.u_cat, y.u_misc, y.u_real < %(real_share)s AS real_name,
       (y.status IN {open} OR y.status = 'responded') AND y.u_reply < %(replied_share)s AS replied,
       y.received_at, y.clock_start, y.responded_at, y.closed_at, y.rating,
       CASE WHEN y.status = 'closed' AND y.rating IS NOT NULL THEN y.closed_at
            WHEN y.status = 'reopened' THEN y.clock_start END AS rated_at,
       (y.received_at + interval '8 hours')::date AS received_day,   -- Asia/Shanghai has no DST
       extract(year FROM y.received_at + interval '8 hours')::int AS yr,
       CASE WHEN y.via_unit AND y.status IN {at_unit} THEN y.subject_org_id ELSE y.owner_id END AS org_id,
       y.owner_id AS owner_org_id, y.subject_org_id, y.point_id, y.kind,
       CASE WHEN y.via_unit THEN y.subject_org_id END AS unit_org_id,
       CASE WHEN y.status IN {assigned} THEN
           CASE WHEN NOT y.via_unit THEN y.owner_handler_id
                WHEN y.status = 'assigned' AND y.u_assign < %(unit_unassigned)s THEN NULL
                ELSE y.unit_handler_id END
       END AS assignee_id,
       CASE WHEN y.kind = 'accusation'
                 AND y.status IN ('feedback_pending_review', 'responded', 'closed', 'reopened')
            THEN (%(disposals)s::text[])[1 + floor(y.u_assign * cardinality(%(disposals)s::text[]))::int]
       END AS disposal,
       CASE WHEN y.status = 'rejected'
            THEN (%(reject_reasons)s::text[])
                 [1 + floor(y.u_assign * cardinality(%(reject_reasons)s::text[]))::int]
       END AS reject_reason,
       d.response_due_at, d.provisional AS due_provisional,
       CASE WHEN y.status = 'received' THEN d.stage_due_at END AS stage_due_at,
       CASE WHEN y.status IN {open} AND d.response_due_at < %(now)s
            THEN CASE WHEN y.u_esc < 0.2 THEN 2 WHEN y.u_esc < 0.6 THEN 1 ELSE 0 END
            ELSE 0 END AS escalation_level,
       x.subject, x.content, x.location, x.search_text
FROM y
JOIN bench_due d ON d.day = (y.clock_start + interval '8 hours')::date
JOIN bench_text x ON x.k = floor(y.u_text * %(texts)s)::int
"""

INSERT_SQL = """
INSERT INTO cases ({columns})
SELECT {values}
FROM (
    SELECT st.*, row_number() OVER (PARTITION BY st.yr ORDER BY st.received_at, st.n) AS seq
    FROM bench_stage st
) q
ORDER BY q.received_at, q.n
"""

EVENTS_SQL = """
INSERT INTO events (case_id, at, action, actor_id, actor_kind, from_status, to_status, public, note, data)
SELECT c.id, c.received_at, 'submit', NULL, 'citizen', NULL, 'received', true, '诉求已提交', '{}'::json
FROM cases c
WHERE c.id > %(after)s
ORDER BY c.id
"""


def _sql_list(values) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _stage_sql() -> str:
    whens = " ".join(
        f"WHEN u_status < {threshold!r} THEN '{status}'" for status, threshold in _status_thresholds()[:-1]
    )
    status_case = f"CASE {whens} ELSE '{STATUS_MIX[-1][0]}' END"
    return STAGE_SQL.format(
        status_case=status_case,
        open=_sql_list(OPEN),
        assigned=_sql_list(ASSIGNED),
        via_unit=_sql_list(VIA_UNIT),
        at_unit=_sql_list(AT_UNIT),
    )


def _secondary_indexes(cur, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes on `tables` that back no constraint."""
    cur.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname
        """,
        (list(tables),),
    )
    return list(cur.fetchall())


def _check_columns(cur) -> list[str]:
    """The columns of `cases` we fill; refuse if the schema grew a required column we do not know."""
    cur.execute(
        """
        SELECT column_name, is_nullable = 'NO' AND column_default IS NULL
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'cases' AND column_name <> 'id'
          AND is_generated = 'NEVER'  -- generated columns (bucket, is_open) fill themselves
        """
    )
    present = dict(cur.fetchall())
    unknown_required = sorted(c for c, required in present.items() if required and c not in CASE_COLUMNS)
    if unknown_required:
        raise SystemExit(
            f"cases has required columns the generator does not fill: {', '.join(unknown_required)}; "
            "add them to bench/generate.py CASE_COLUMNS"
        )
    return [c for c in CASE_COLUMNS if c in present]


def _texts() -> list[tuple[int, str, str, str | None, str]]:
    try:
        from supervise.cases.search import index_text
    except ImportError:  # a tree without search: the column (if any) stays empty

        def index_text(*parts: str | None) -> str:
            return ""

    rows = []
    for subject in SUBJECTS:
        for content in CONTENTS:
            for location in LOCATIONS:
                rows.append((len(rows), subject, content, location, index_text(subject, content, location)))
    return rows


def _load_cases(
    app, session, cases: int, seed: int, now: datetime, buckets, timings: dict[str, float], history_days: int
) -> None:
    """Stage every case's random choices, then one INSERT … SELECT for cases and one for events."""
    from psycopg import sql
    from sqlalchemy import select

    from supervise.cases.identity import IdentityBox
    from supervise.cases.models import Category

    box = IdentityBox(app.config["ENCRYPTION_KEY"])
    names = [box.seal(n) for n in REPORTER_NAMES]
    phones = [box.seal(f"1390000{i:04d}") for i in range(len(REPORTER_NAMES))]
    categories = list(session.execute(select(Category.id, Category.default_kind).order_by(Category.id)))
    category_ids = [c.id for c in categories]
    category_kinds = [c.default_kind for c in categories]
    texts = _texts()
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    due = _due_rows(
        app, session, (now - timedelta(days=history_days + 200)).date(), (now + timedelta(days=2)).date()
    )
    session.commit()
    session.close()

    pooled = session.get_bind().raw_connection()  # a connection of our own for the load
    raw = pooled.driver_connection  # the psycopg connection under it
    raw.autocommit = False
    params = {
        "cases": cases,
        "seed": seed,
        "now": now_naive,
        "overdue_share": OVERDUE_SHARE,
        "history_days": history_days,
        "real_share": REAL_NAME_SHARE,
        "replied_share": CITIZEN_REPLIED_SHARE,
        "buckets": BUCKETS,
        "texts": len(texts),
        "category_ids": category_ids,
        "category_kinds": category_kinds,
        "accusation_share": ACCUSATION_SHARE_NO_DEFAULT,
        "unit_share": UNIT_SHARE,
        "unit_unassigned": UNIT_UNASSIGNED_SHARE,
        "disposals": DISPOSALS,
        "disposal_note": DISPOSAL_NOTE,
        "reject_reasons": REJECT_REASONS,
        "recent_rejected": RECENT_REJECTED_SHARE,
        "names": names,
        "phones": phones,
        "feedback": FEEDBACK,
        "after": 0,
    }
    with raw.cursor() as cur:
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")  # one process: setseed() is repeatable
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SELECT coalesce(max(id), 0) FROM cases")
        params["after"] = cur.fetchone()[0]
        columns = _check_columns(cur)

        t = time.perf_counter()
        cur.execute(
            "CREATE TEMP TABLE bench_org_bucket (bucket int PRIMARY KEY, subject_org_id int, point_id int, "
            "owner_id int, owner_head_id int, owner_handler_id int, owner_head_handler_id int, "
            "unit_handler_id int, is_unit bool)"
        )
        with cur.copy("COPY bench_org_bucket FROM STDIN") as copy:
            for row in buckets:
                copy.write_row(row)
        cur.execute(
            "CREATE TEMP TABLE bench_due (day date PRIMARY KEY, response_due_at timestamp, "
            "stage_due_at timestamp, provisional bool)"
        )
        with cur.copy("COPY bench_due FROM STDIN") as copy:
            for row in due:
                copy.write_row(row)
        cur.execute(
            "CREATE TEMP TABLE bench_text (k int PRIMARY KEY, subject text, content text, location text, "
            "search_text text)"
        )
        with cur.copy("COPY bench_text FROM STDIN") as copy:
            for row in texts:
                copy.write_row(row)
        cur.execute("ANALYZE bench_org_bucket; ANALYZE bench_due; ANALYZE bench_text")
        cur.execute("SELECT setseed(%s)", ((seed % 1000) / 1000.0 - 0.5,))
        cur.execute(_stage_sql(), params)
        timings["stage (random choices for every case)"] = time.perf_counter() - t

        t = time.perf_counter()
        indexes = _secondary_indexes(cur, ("cases", "events"))
        for name, _ in indexes:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        insert = sql.SQL(INSERT_SQL).format(
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            values=sql.SQL(", ").join(sql.SQL(CASE_COLUMNS[c]) for c in columns),
        )
        cur.execute(insert, params)
        inserted = cur.rowcount
        if inserted != cases:
            raise RuntimeError(f"inserted {inserted} cases, expected {cases}")
        cur.execute(
            "UPDATE cases SET merged_into_id = id - 1 WHERE status = 'merged' AND id > %(after)s + 1", params
        )
        timings["insert cases"] = time.perf_counter() - t

        t = time.perf_counter()
        cur.execute(EVENTS_SQL, params)
        timings["insert submit events"] = time.perf_counter() - t

        t = time.perf_counter()
        for _, ddl in indexes:
            cur.execute(ddl)
        timings[f"re-create {len(indexes)} secondary indexes"] = time.perf_counter() - t

        cur.execute("SELECT to_regclass('tracking_counters') IS NOT NULL")
        if cur.fetchone()[0]:  # the per-year counter; gone once tracking numbers are random (issue 12)
            cur.execute(
                """
                INSERT INTO tracking_counters (year, value)
                SELECT substr(tracking_no, 3, 4)::int, max(substr(tracking_no, 8)::int)
                FROM cases WHERE tracking_no LIKE 'MS____-%' GROUP BY 1
                ON CONFLICT (year) DO UPDATE SET value = greatest(tracking_counters.value, excluded.value)
                """
            )
        cur.execute("DROP TABLE bench_stage, bench_org_bucket, bench_due, bench_text")
    raw.commit()

    t = time.perf_counter()
    raw.autocommit = True
    with raw.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) cases")
        cur.execute("VACUUM (ANALYZE) events")
        cur.execute("ANALYZE")
    raw.autocommit = False
    pooled.close()
    timings["vacuum + analyze"] = time.perf_counter() - t


def default_counties(cases: int) -> int:
    """One county, or a province from PROVINCE_DEFAULT_FROM cases: ten million cases in one county
    would be ten times any real county's archive."""
    return PROVINCE_COUNTIES if cases >= PROVINCE_DEFAULT_FROM else 1


def generate(
    cases: int,
    seed: int = 1,
    *,
    counties: int | None = None,
    reset: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build (or reuse) a county — or a province of `counties` counties — with `cases` cases in the
    bench database; returns what it holds.

    Reused when the database already holds the same (cases, seed, counties) from this generator
    version; otherwise (or with `reset`) the bench database is dropped and built again. `counties`
    defaults to `default_counties(cases)`; a marker without it holds one county.
    """
    counties = counties or default_counties(cases)
    wanted = {"cases": cases, "seed": seed, "version": common.GENERATOR_VERSION}
    marker = common.read_marker() if common.database_exists() else None
    if (
        not reset
        and marker
        and all(marker.get(k) == v for k, v in wanted.items())
        and marker.get("counties", 1) == counties
    ):
        print(
            f"bench database already holds {cases:,} cases (seed {seed}, generated {marker['now']}): reused"
        )
        return marker
    if marker or common.database_exists():
        print(
            "re-creating the bench database" + (f" (it held {marker.get('cases'):,} cases)" if marker else "")
        )
    common.recreate_database()

    started = time.perf_counter()
    timings: dict[str, float] = {}
    now = now or datetime.now(UTC)
    app = common.make_app()
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from supervise.cases.models import Case
    from supervise.deadlines.calendar import seed_from_chinesecalendar
    from supervise.demo import load_demo
    from supervise.extensions import db
    from supervise.orgs.models import Org

    with app.app_context():
        t = time.perf_counter()
        upgrade(directory=app.extensions["migrate"].directory)
        seed_from_chinesecalendar(db.session)
        db.session.commit()
        load_demo(sample_cases=False)
        groups = _build_orgs(db.session, counties)
        users = _build_users(db.session)
        buckets = _org_buckets(db.session, groups)
        db.session.commit()
        timings["schema, calendar, demo, orgs, staff, points"] = time.perf_counter() - t

        history_days = HISTORY_DAYS if counties == 1 else PROVINCE_HISTORY_DAYS
        _load_cases(app, db.session, cases, seed, now, buckets, timings, history_days)
        db.session.remove()

        org_count = db.session.scalar(select(func.count(Org.id)))
        owners = db.session.execute(
            select(Org.code, Org.kind, func.count())
            .select_from(Org)
            .join(Case, Case.owner_org_id == Org.id)
            .group_by(Org.code, Org.kind)
            .order_by(func.count().desc(), Org.code)
        ).all()
        office = next(o for o in owners if o.kind == "discipline_office")
        unit = db.session.execute(
            select(Org.code, func.count())
            .select_from(Org)
            .join(Case, Case.unit_org_id == Org.id)
            .group_by(Org.code)
            .order_by(func.count().desc(), Org.code)
            .limit(1)
        ).one()
        at_units = db.session.scalar(select(func.count()).where(Case.org_id != Case.owner_org_id))
        db.session.remove()
        db.engine.dispose()

    total = time.perf_counter() - started
    info = {
        **wanted,
        "counties": counties,
        "history_days": history_days,
        "now": now.isoformat(timespec="seconds"),
        "orgs": org_count,
        "users_added": users,
        # the township whose 纪委 owns the most cases, that 纪委, and the unit most cases went to
        "busiest_township": office.code.removesuffix("-jw"),
        "busiest_office": office.code,
        "busiest_office_cases": office[2],
        "owners": {o.code: o[2] for o in owners[:5]},
        "busiest_unit": unit[0],
        "busiest_unit_cases": unit[1],
        "cases_at_units": at_units,
        "seconds": round(total, 1),
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    with common.admin_connection() as conn:
        common.write_marker(conn, info)
    for step, seconds in timings.items():
        print(f"  {seconds:8.1f} s  {step}")
    print(
        f"generated {cases:,} cases in {org_count} orgs in {total:.1f} s "
        f"({math.floor(cases / max(total, 1e-9)):,} cases/s); busiest township 纪委 {office.code} "
        f"owns {office[2]:,} cases; {at_units:,} sit at a unit, most transferred to {unit[0]} "
        f"({unit[1]:,}); top owners {info['owners']}"
    )
    return info


# -- figures (`python -m bench all`) ---------------------------------------------------------------

SMOKE_CASES = 2_000  # the tiny data set every benchmark's smoke run shares
SMOKE_REPLACES_AT_MOST = 100_000  # a smoke run never drops a data set bigger than this
SIZED_TABLES = ("cases", "events", "case_clocks", "escalations", "outbox")


def ensure_smoke() -> dict[str, Any]:
    """The smoke data set (SMOKE_CASES cases, one county), generated once and then reused. Refuses to
    replace a big data set: a smoke run pointed at the 1,000,000-case `bench` by mistake must not
    drop it."""
    marker = common.read_marker() if common.database_exists() else None
    if marker and marker.get("cases", 0) > SMOKE_REPLACES_AT_MOST:
        raise RuntimeError(
            f"the bench database {common.DB_NAME} holds {marker['cases']:,} cases, which a smoke run would "
            "replace: point BENCH_DATABASE_URL at a database of its own (its name containing 'bench')"
        )
    return generate(SMOKE_CASES, counties=1)


def disk_usage() -> dict[str, tuple[int, int]]:
    """(heap + TOAST bytes, index bytes) per table of SIZED_TABLES, and the whole database's size."""
    import psycopg

    with psycopg.connect(common.DATABASE_URL.replace("+psycopg", "")) as conn:
        sizes = {
            table: (total - index, index)
            for table, total, index in conn.execute(
                "SELECT t, pg_total_relation_size(t::regclass), pg_indexes_size(t::regclass) "
                "FROM unnest(%s::text[]) AS t",
                (list(SIZED_TABLES),),
            )
        }
        sizes["database"] = (conn.execute("SELECT pg_database_size(current_database())").fetchone()[0], 0)
    return sizes


def buffer_hits() -> tuple[int, int]:
    """(blocks found in shared_buffers, blocks read from the OS) by the bench database since the
    statistics were last reset: the difference of two readings is what a run between them read."""
    import psycopg

    with psycopg.connect(common.DATABASE_URL.replace("+psycopg", "")) as conn:
        return conn.execute(
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()


def hit_ratio(before: tuple[int, int], after: tuple[int, int]) -> str:
    """The shared_buffers hit ratio between two `buffer_hits` readings, as a figure's text."""
    hit, read = after[0] - before[0], after[1] - before[1]
    if hit + read == 0:
        return "no blocks read"
    return f"{hit / (hit + read):.1%} of {hit + read:,} blocks from shared_buffers"


def figures(cases: int, smoke: bool = False) -> list[Figure]:
    """The data set's build time and its disk use per million cases (informational: no goal).

    The build time is the marker's: a data set reused from an earlier run reports the run that
    built it. The smoke run checks what it built: one `submit` event per case, the marker's count."""
    import psycopg

    info = ensure_smoke() if smoke else generate(cases)
    cases = info["cases"]
    with psycopg.connect(common.DATABASE_URL.replace("+psycopg", "")) as conn:
        found = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
        submits = conn.execute(
            "SELECT count(DISTINCT case_id) FROM events WHERE action = 'submit'"
        ).fetchone()[0]
    if found != cases or submits != cases:
        raise RuntimeError(
            f"the data set holds {found:,} cases and {submits:,} submitted ones, expected {cases:,}"
        )
    counties = info.get("counties", 1)
    command = f"python -m bench.generate --cases {cases}" + (
        f" --counties {counties}" if counties > 1 else ""
    )
    steps = "; ".join(f"{step} {seconds:.0f} s" for step, seconds in info.get("timings", {}).items())
    out = [
        Figure(
            name="generate: build time",
            goal="–",
            measured=f"{info['seconds']:.0f} s for {cases:,} cases ({counties} "
            f"{'county' if counties == 1 else 'counties'}, {info['orgs']:,} orgs), built {info['now']}",
            note=f"{command}: {steps}",
        )
    ]
    millions = cases / 1e6
    for table, (heap, index) in disk_usage().items():
        per = (heap + index) / millions / 2**20
        detail = (
            ""
            if table == "database"
            else f" (heap {heap / millions / 2**20:.0f} + indexes {index / millions / 2**20:.0f})"
        )
        out.append(
            Figure(
                name=f"disk per million cases: {table}",
                goal="–",
                measured=f"{per:,.0f} MB{detail}",
                note=f"{(heap + index) / 2**20:,.0f} MB at {cases:,} cases",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument(
        "--counties",
        type=int,
        help=f"counties under a province commission (default: 1, {PROVINCE_COUNTIES} from "
        f"{PROVINCE_DEFAULT_FROM:,} cases)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reset", action="store_true", help="drop and re-create the bench database first")
    args = parser.parse_args(argv)
    generate(args.cases, args.seed, counties=args.counties, reset=args.reset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
