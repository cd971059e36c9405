"""Demo data (DESIGN.md §6): a small county, its points, categories, an account per role, a few cases.

Idempotent: running it again changes nothing and prints the same logins.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from supervise.cases.models import Case, Category
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import Org, OrgKind
from supervise.orgs.services import create_org, get_org_by_code
from supervise.staff.models import User
from supervise.staff.services import create_user

DEMO_PASSWORD = "demo-password"  # noqa: S105 - demo data only: `supervise demo` refuses to run in production

CATEGORIES = [
    ("conduct", "作风问题", "Work style", None),
    ("petty_corruption", "吃拿卡要", "Asking for favours", None),
    ("favouritism", "优亲厚友", "Favouritism", OrgKind.TOWNSHIP),
    ("welfare_funds", "惠民资金", "Welfare funds", OrgKind.DEPARTMENT),
    ("efficiency", "办事效率", "Service efficiency", None),
    ("other", "其他", "Other", None),
]

# code, name, kind, parent code, point name
ORGS = [
    ("demo-county", "示范县纪委监委", OrgKind.COMMISSION, None, "县纪委监委信访室"),
    ("demo-dept-civil", "示范县民政局", OrgKind.DEPARTMENT, "demo-county", "民政局办事大厅窗口"),
    ("demo-dept-hrss", "示范县人社局", OrgKind.DEPARTMENT, "demo-county", "人社局社保窗口"),
    ("demo-town-1", "城关镇", OrgKind.TOWNSHIP, "demo-county", "城关镇便民服务中心"),
    ("demo-town-2", "青山乡", OrgKind.TOWNSHIP, "demo-county", "青山乡便民服务中心"),
    ("demo-town-1-village-1", "东关村", OrgKind.VILLAGE, "demo-town-1", "东关村村务公开栏"),
    ("demo-town-1-village-2", "西关社区", OrgKind.VILLAGE, "demo-town-1", "西关社区服务站"),
    ("demo-town-2-village-1", "石门村", OrgKind.VILLAGE, "demo-town-2", "石门村村委会"),
    ("demo-town-2-village-2", "桃园村", OrgKind.VILLAGE, "demo-town-2", "桃园村村委会"),
]

USERS = [
    ("demo-admin", "admin", "demo-county"),
    ("demo-intake", "intake", "demo-county"),
    ("demo-handler", "handler", "demo-county"),
    ("demo-supervisor", "supervisor", "demo-county"),
    ("demo-town-1-intake", "intake", "demo-town-1"),
    ("demo-town-1-handler", "handler", "demo-town-1"),
    ("demo-town-1-supervisor", "supervisor", "demo-town-1"),
]

CASES = [
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
        "subject": "县民政局",
        "content": "临时救助申请提交一个多月没有任何回音，电话也无人接听。",
        "point_org": "demo-dept-civil",
    },
    {
        "category": "welfare_funds",
        "subject": "石门村村委会",
        "content": "村里的耕地地力保护补贴今年迟迟没有发放，也没有公示名单。",
        "point_org": "demo-town-2-village-1",
    },
]


def demo_email(username: str) -> str:
    return f"{username}@example.org"


def load_demo(sample_cases: bool = True) -> dict[str, Any]:
    from supervise.cases.services import submit_case

    session = db.session
    for order, (code, name, name_en, kind) in enumerate(CATEGORIES):
        if not session.scalar(select(Category.id).where(Category.code == code)):
            session.add(
                Category(
                    code=code,
                    name=name,
                    name_en=name_en,
                    default_org_kind=str(kind) if kind else None,
                    sort_order=order,
                )
            )
    points: list[tuple[str, str]] = []
    for code, name, kind, parent_code, point_name in ORGS:
        org = get_org_by_code(session, code) or create_org(
            session, code, name, kind, get_org_by_code(session, parent_code) if parent_code else None
        )
        point = session.scalar(select(Point).where(Point.org_id == org.id, Point.name == point_name))
        if point is None:
            point = Point(org=org, name=point_name)
            session.add(point)
            session.flush()
        points.append((point_name, point.token))
    for username, role, org_code in USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user, _ = create_user(
                session,
                username=username,
                org=get_org_by_code(session, org_code),
                role=role,
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
            submit_case({k: v for k, v in sample.items() if k != "point_org"} | {"point": token})
    return {"password": DEMO_PASSWORD, "users": USERS, "points": points}
