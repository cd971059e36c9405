"""Demo data (DESIGN.md §6, §2a): a small county with its discipline bodies and units, points,
categories, accounts that can work every sample case to the end, and one sample case per point.

Idempotent: running it again changes nothing and prints the same logins.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from supervise.cases.models import Case, Category
from supervise.cases.states import CaseKind
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import Org, OrgKind
from supervise.orgs.routing import OrgTree
from supervise.orgs.services import create_org, get_org_by_code
from supervise.staff.models import User
from supervise.staff.services import create_user

DEMO_PASSWORD = "demo-password"  # noqa: S105 - demo data only: `supervise demo` refuses to run in production

# code, name, name_en, default 定性 (DESIGN.md §2a): what intake starts from when accepting
CATEGORIES = [
    ("conduct", "作风问题", "Work style", CaseKind.SERVICE),
    ("petty_corruption", "吃拿卡要", "Asking for favours", CaseKind.ACCUSATION),
    ("favouritism", "优亲厚友", "Favouritism", CaseKind.ACCUSATION),
    ("welfare_funds", "惠民资金", "Welfare funds", CaseKind.SERVICE),
    ("efficiency", "办事效率", "Service efficiency", CaseKind.SERVICE),
    ("other", "其他", "Other", None),
]

# code, name, kind, parent code, point name (None: a discipline body without a QR point)
ORGS = [
    ("demo-county", "示范县纪委监委", OrgKind.COMMISSION, None, "县纪委监委信访室"),
    ("demo-county-group-1", "县纪委监委派驻第一纪检监察组", OrgKind.STATIONED_GROUP, "demo-county", None),
    ("demo-dept-civil", "示范县民政局", OrgKind.DEPARTMENT, "demo-county", "民政局办事大厅窗口"),
    ("demo-dept-hrss", "示范县人社局", OrgKind.DEPARTMENT, "demo-county", "人社局社保窗口"),
    ("demo-town-1", "城关镇", OrgKind.TOWNSHIP, "demo-county", "城关镇便民服务中心"),
    ("demo-town-1-jw", "城关镇纪委", OrgKind.DISCIPLINE_OFFICE, "demo-town-1", None),
    ("demo-town-2", "青山乡", OrgKind.TOWNSHIP, "demo-county", "青山乡便民服务中心"),
    ("demo-town-2-jw", "青山乡纪委", OrgKind.DISCIPLINE_OFFICE, "demo-town-2", None),
    ("demo-town-1-village-1", "东关村", OrgKind.VILLAGE, "demo-town-1", "东关村村务公开栏"),
    ("demo-town-1-village-2", "西关社区", OrgKind.VILLAGE, "demo-town-1", "西关社区服务站"),
    ("demo-town-2-village-1", "石门村", OrgKind.VILLAGE, "demo-town-2", "石门村村委会"),
    ("demo-town-2-village-2", "桃园村", OrgKind.VILLAGE, "demo-town-2", "桃园村村委会"),
]
# The 派驻组 supervises the two departments (an admin's choice; the default would be the county).
SUPERVISED_BY = {"demo-dept-civil": "demo-county-group-1", "demo-dept-hrss": "demo-county-group-1"}

# username, roles, org. The county keeps one account per role (DESIGN.md §6); the 派驻组 and the
# townships' 纪委 are two-person offices (one person receives and reviews, one handles); a
# village committee's one account both assigns and answers.
USERS = [
    ("demo-admin", "admin", "demo-county"),
    ("demo-intake", "intake", "demo-county"),
    ("demo-handler", "handler", "demo-county"),
    ("demo-supervisor", "supervisor", "demo-county"),
    ("demo-group-1-intake", "intake,supervisor", "demo-county-group-1"),
    ("demo-group-1-handler", "handler", "demo-county-group-1"),
    ("demo-town-1-jw-intake", "intake,supervisor", "demo-town-1-jw"),
    ("demo-town-1-jw-handler", "handler", "demo-town-1-jw"),
    ("demo-town-2-jw-intake", "intake,supervisor", "demo-town-2-jw"),
    ("demo-town-2-jw-handler", "handler", "demo-town-2-jw"),
    ("demo-dept-civil-leader", "leader", "demo-dept-civil"),
    ("demo-dept-civil-handler", "handler", "demo-dept-civil"),
    ("demo-dept-hrss-leader", "leader", "demo-dept-hrss"),
    ("demo-dept-hrss-handler", "handler", "demo-dept-hrss"),
    ("demo-town-1-leader", "leader", "demo-town-1"),
    ("demo-town-1-handler", "handler", "demo-town-1"),
    ("demo-town-2-leader", "leader", "demo-town-2"),
    ("demo-town-2-handler", "handler", "demo-town-2"),
    ("demo-town-1-village-1-leader", "leader,handler", "demo-town-1-village-1"),
    ("demo-town-1-village-2-leader", "leader,handler", "demo-town-1-village-2"),
    ("demo-town-2-village-1-leader", "leader,handler", "demo-town-2-village-1"),
    ("demo-town-2-village-2-leader", "leader,handler", "demo-town-2-village-2"),
]

# One sample complaint per point, each workable to the end by the accounts above.
CASES = [
    {
        "category": "conduct",
        "subject": "县纪委监委信访室",
        "content": "上周来信访室反映问题，接待人员态度生硬，没有登记就让回去等消息。",
        "point_org": "demo-county",
    },
    {
        "category": "efficiency",
        "subject": "县民政局",
        "content": "临时救助申请提交一个多月没有任何回音，电话也无人接听。",
        "point_org": "demo-dept-civil",
    },
    {
        "category": "petty_corruption",
        "subject": "人社局社保窗口工作人员",
        "content": "办理社保转移时窗口人员说要请他吃饭才能加快办理，不然要等三个月。",
        "name": "李四",
        "phone": "13900001111",
        "point_org": "demo-dept-hrss",
    },
    {
        "category": "petty_corruption",
        "subject": "城关镇便民服务中心窗口工作人员",
        "content": "办理低保材料时窗口人员暗示要“意思意思”才能尽快办理，已经跑了三趟。",
        "name": "张三",
        "phone": "13812345678",
        "point_org": "demo-town-1",
    },
    {
        "category": "efficiency",
        "subject": "青山乡便民服务中心",
        "content": "便民服务中心工作日下午三点就没人了，办事群众白跑一趟，希望按时上下班。",
        "point_org": "demo-town-2",
    },
    {
        "category": "conduct",
        "subject": "东关村村委会",
        "content": "村务公开栏三个月没有更新，今年的低保名单也没有公示，问村干部说还没整理好。",
        "name": "赵六",
        "phone": "13600003333",
        "point_org": "demo-town-1-village-1",
    },
    {
        "category": "favouritism",
        "subject": "西关社区主任",
        "content": "社区主任把廉租房名额优先分给自己的亲属，群众多次反映无人理会。",
        "about_org_head": True,
        "point_org": "demo-town-1-village-2",
    },
    {
        "category": "welfare_funds",
        "subject": "石门村村委会",
        "content": "村里的耕地地力保护补贴今年迟迟没有发放，也没有公示名单。",
        "point_org": "demo-town-2-village-1",
    },
    {
        "category": "conduct",
        "subject": "桃园村村委会",
        "content": "村委会办公室经常没人值班，开证明要跑好几趟，村干部电话也打不通。",
        "point_org": "demo-town-2-village-2",
    },
]


def demo_email(username: str) -> str:
    return f"{username}@example.org"


def load_demo(sample_cases: bool = True) -> dict[str, Any]:
    from supervise.cases.services import submit_case

    session = db.session
    for order, (code, name, name_en, kind) in enumerate(CATEGORIES):
        category = session.scalar(select(Category).where(Category.code == code))
        if category is None:
            category = Category(code=code, name=name, name_en=name_en, sort_order=order)
            session.add(category)
        if category.default_kind is None and kind is not None:
            category.default_kind = kind.value  # also fills demo data loaded before kinds existed
    points: list[tuple[str, str]] = []
    for code, name, kind, parent_code, point_name in ORGS:
        org = get_org_by_code(session, code) or create_org(
            session, code, name, kind, get_org_by_code(session, parent_code) if parent_code else None
        )
        if point_name is None:
            continue
        point = session.scalar(select(Point).where(Point.org_id == org.id, Point.name == point_name))
        if point is None:
            point = Point(org=org, name=point_name)
            session.add(point)
            session.flush()
        points.append((point_name, point.token))
    for unit_code, body_code in SUPERVISED_BY.items():
        unit = get_org_by_code(session, unit_code)
        if unit.supervising_body_id is None:
            unit.supervising_body = get_org_by_code(session, body_code)
    for username, roles, org_code in USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user, _ = create_user(
                session,
                username=username,
                org=get_org_by_code(session, org_code),
                role=roles,
                password=DEMO_PASSWORD,
            )
        if user.email is None:
            # example.org never receives mail (RFC 2606); filled in for demo data loaded before
            # accounts had addresses too, and left alone once set, so a rerun changes nothing.
            user.email = demo_email(username)
    session.commit()

    if sample_cases and not session.scalar(select(func.count(Case.id))):
        for sample in CASES:
            org_id = session.scalar(select(Org.id).where(Org.code == sample["point_org"]))
            token = session.scalar(select(Point.token).where(Point.org_id == org_id))
            # Made-up reporters: no SMS code to verify (issue 18), real-name as written.
            fields = {k: v for k, v in sample.items() if k != "point_org"} | {"point": token}
            submit_case(fields, verify_phone=False)
    return {
        "password": DEMO_PASSWORD,
        "users": USERS,
        "points": points,
        "org_names": dict(session.execute(select(Org.code, Org.name)).all()),
        "warnings": intake_warnings(session),
    }


def intake_warnings(session) -> list[str]:
    """One line per discipline body nobody can receive at (cases route past it until one exists)."""
    return [
        f"{node.name}：没有在职的受理员账号，反映给它的诉求将由上一级纪检监察机构受理"
        for node in OrgTree.load(session).bodies_without_intake()
    ]
