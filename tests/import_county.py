"""A generated county to import (issue 16): its org tree with discipline bodies, a QR point per
village, staff accounts and a historical ledger of cases, written as the four files an office
would fill in (`supervise import orgs|points|users|cases`).

- 县纪委监委 `tc-county`, one 派驻组 `tc-group-1` supervising the 5 departments;
- 15 townships `tc-town-NN`, each with its 纪委 `tc-town-NN-jw` below it and 20 villages
  `tc-town-NN-v-MM` (300 villages);
- accounts: an admin and an intake+supervisor at the commission, intake at the 派驻组, intake and
  supervisor at each township 纪委, a leader at each township and each village;
- cases: `TC-2025-00001…`, received in 2025, four in five closed with an answer.

The org rows are shuffled: a parent may come after its children. Reporter names and phone numbers
are the test suite's own (tests/conftest.py), as the log check requires.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

from openpyxl import Workbook

from tests.conftest import REPORTER_NAMES, REPORTER_PHONES

TOWNSHIPS = 15
VILLAGES_PER_TOWNSHIP = 20
DEPARTMENTS = 5
CATEGORY_NAMES = ("作风问题", "吃拿卡要", "优亲厚友", "惠民资金", "办事效率", "其他")

ORG_HEADER = ["单位代码", "单位名称", "单位类型", "上级单位代码", "监督机构代码"]
POINT_HEADER = ["单位代码", "监督点名称", "是否启用"]
USER_HEADER = ["用户名", "姓名", "单位代码", "角色", "电子邮箱"]
CASE_HEADER = [
    "原编号",
    "收件日期",
    "来源渠道",
    "被反映单位代码",
    "问题类别",
    "反映对象",
    "反映内容",
    "定性",
    "办理状态",
    "办结日期",
    "答复内容",
    "评价",
    "反映人姓名",
    "反映人电话",
]


def village(town: int, number: int) -> str:
    return f"tc-town-{town:02d}-v-{number:02d}"


def org_rows(seed: int = 16) -> list[list[str]]:
    rows = [
        ["tc-county", "测试县纪委监委", "纪委监委", "", ""],
        ["tc-group-1", "县纪委监委派驻第一纪检监察组", "派驻纪检监察组", "tc-county", ""],
    ]
    for d in range(1, DEPARTMENTS + 1):
        rows.append([f"tc-dept-{d}", f"县第{d}局", "部门", "tc-county", "tc-group-1"])
    for t in range(1, TOWNSHIPS + 1):
        town = f"tc-town-{t:02d}"
        rows.append([town, f"第{t}镇人民政府", "乡镇政府/街道办", "tc-county", ""])
        rows.append([f"{town}-jw", f"第{t}镇纪委", "乡镇（街道）纪委", town, ""])
        for v in range(1, VILLAGES_PER_TOWNSHIP + 1):
            rows.append([village(t, v), f"第{t}镇第{v}村", "村/社区", town, ""])
    random.Random(seed).shuffle(rows)
    return rows


def point_rows() -> list[list[str]]:
    return [
        [village(t, v), f"第{t}镇第{v}村便民服务站", "是"]
        for t in range(1, TOWNSHIPS + 1)
        for v in range(1, VILLAGES_PER_TOWNSHIP + 1)
    ]


def user_rows() -> list[list[str]]:
    rows = [
        ["tc-admin", "县管理员", "tc-county", "管理员", "tc-admin@example.org"],
        ["tc-intake", "县受理员", "tc-county", "受理员、督办/审核", ""],
        ["tc-group-1-intake", "派驻组受理员", "tc-group-1", "intake,supervisor", ""],
    ]
    for t in range(1, TOWNSHIPS + 1):
        town = f"tc-town-{t:02d}"
        rows.append([f"{town}-jw-intake", f"第{t}镇纪委书记", f"{town}-jw", "受理员，承办人，督办/审核", ""])
        rows.append([f"{town}-leader", f"第{t}镇镇长", town, "单位负责人、承办人", ""])
        for v in range(1, VILLAGES_PER_TOWNSHIP + 1):
            rows.append([f"{village(t, v)}-leader", f"第{t}镇第{v}村主任", village(t, v), "单位负责人", ""])
    return rows


def case_rows(count: int = 5000, seed: int = 16) -> list[list[str]]:
    """`count` ledger rows: subject units all over the county, received through 2025, one in five
    still open; every seventh has a named reporter."""
    rng = random.Random(seed)
    first = date(2025, 1, 2)
    rows = []
    for n in range(1, count + 1):
        if n % 10 == 0:
            subject = f"tc-dept-{n % DEPARTMENTS + 1}"
        else:
            subject = village(n % TOWNSHIPS + 1, n % VILLAGES_PER_TOWNSHIP + 1)
        received = first + timedelta(days=rng.randrange(0, 330))
        closed = n % 5 != 0
        named = n % 7 == 0
        rows.append(
            [
                f"TC-2025-{n:05d}",
                received.isoformat(),
                ("来信", "来电", "来访", "12345热线转办", "")[n % 5],
                subject,
                CATEGORY_NAMES[n % len(CATEGORY_NAMES)],
                f"某工作人员{n}",
                f"第 {n} 件：办事时被要求请吃饭，材料压着不办。",
                "作风效能诉求" if n % 3 else "",
                "已办结" if closed else "办理中",
                (received + timedelta(days=12)).isoformat() if closed else "",
                "经核实，已责令整改并向反映人说明。" if closed else "",
                ("满意", "基本满意", "", "不满意")[n % 4] if closed else "",
                REPORTER_NAMES[n % len(REPORTER_NAMES)] if named else "",
                REPORTER_PHONES[n % len(REPORTER_PHONES)] if named else "",
            ]
        )
    return rows


def write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_county(directory: Path, cases: int = 5000) -> dict[str, Path]:
    """The four files of the county in `directory`: orgs, points, users (XLSX) and cases."""
    return {
        "orgs": write_xlsx(directory / "orgs.xlsx", ORG_HEADER, org_rows()),
        "points": write_xlsx(directory / "points.xlsx", POINT_HEADER, point_rows()),
        "users": write_xlsx(directory / "users.xlsx", USER_HEADER, user_rows()),
        "cases": write_xlsx(directory / "cases.xlsx", CASE_HEADER, case_rows(cases)),
    }
