"""Duplicate suggestions (重复件) measured: precision and recall on a generated set with known duplicates.

    python -m bench.duplicates                       # 2,000 complaints, PostgreSQL (<bench db>_duplicates)
    python -m bench.duplicates --db sqlite           # the same on a throw-away SQLite file
    python -m bench.duplicates --smoke               # 300 complaints: seconds

The set: `--complaints` complaints (2,000) about 50 villages of 5 townships over 180 days, written
from templates of the problems villagers report (低保优亲厚友, 克扣补贴, 吃拿卡要, 工程质量, 公款吃喝…)
with varied names, groups, amounts, years and places. About a quarter are re-reports of an earlier
complaint about the same village (1–80 days later): its sentences shuffled, phrases swapped for
synonyms (村支书 ↔ 村党支部书记, 低保 ↔ 最低生活保障…), some cut short, some with a prefix
("再次反映："), a reworded subject line, by the same phone or another one. Some reporters also
file a second, different problem: same reporter, not a duplicate. Two complaints of one village
from one template with other names and amounts are different problems too (the hard negatives).

Every complaint goes in through `submit_case` (its bigrams and reporter hash as the app writes
them, its day set by `now`); then `likely_duplicates` runs for every case as the county's
supervisor (who sees them all) through the real database. A pair (case → suggestion) is a true
positive when both are of one cluster (an original and its re-reports); precision and recall are
over those pairs at the app's threshold (`duplicates.THRESHOLD`), with a table over thresholds
from the same scores (suggestions of every score are kept for the table: the threshold is applied
afterwards). The scorer never sees the labels.

PostgreSQL: its own database `<bench database>_duplicates` (BENCH_DATABASE_URL, as bench.submit
derives its own), re-created and dropped each run; SQLite: a temp file. Redis: db 15 at
127.0.0.1:6379 as the other benchmarks, or the one `--redis` names. `python -m bench all` runs it
on the bench's PostgreSQL at its own size (not `--cases`). tests/web/test_duplicates.py runs the
smoke set in the test suite's database (both backends) and checks its results.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import Figure

GOAL_RECALL = 0.9
GOAL_PRECISION = 0.8
FULL_SIZE = 2000
SMOKE_SIZE = 300
UNITS = 50
DAYS = 180
REREPORT_SHARE = 0.25
SAME_REPORTER_OTHER_PROBLEM = 0.06

# -- the texts -------------------------------------------------------------------------------------

TOWNSHIPS = ("城关镇", "河口镇", "石桥镇", "青山乡", "柳林乡")
VILLAGE_FIRST = "东西南北上下前后大小"
VILLAGE_SECOND = "关河湾岭庄坪沟塘寨桥"
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
    "于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史黎贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕"
    "聂柴焦向柳邢岳齐沿梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费纪靳盛童欧甄项曲成游"
    "阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵欧解强丛华车冉房边"
)
GIVEN_CHARS = (
    "建国强红梅志刚秀英海军丽华德明春生桂兰永福玉珍文军平伟芳娟敏静霞勇杰涛明超磊洋艳"
    "秀云兵辉峰波宁坤荣祥贵成林淑凤琴"
)
ROLES = (
    ("村支书", "村党支部书记"),
    ("村主任", "村委会主任"),
    ("村会计", "村里的会计"),
    ("村监委会主任", "村务监督委员会主任"),
    ("网格员", "村里的网格员"),
    ("村文书", "村里的文书"),
    ("组长", "村民小组长"),
)
GROUPS = ("一组", "二组", "三组", "四组", "五组", "六组", "七组", "八组")
SUBSIDIES = (
    ("耕地地力保护补贴", "种粮补贴"),
    ("危房改造补助", "危房改造的钱"),
    ("高龄津贴", "老人高龄补贴"),
    ("残疾人两项补贴", "残疾人补贴"),
    ("退耕还林补助", "退耕还林款"),
    ("生态护林员工资", "护林员工资"),
)
CERTIFICATES = ("居住证明", "贫困证明", "收入证明", "宅基地证明", "婚育证明", "亲属关系证明")
RELATIVES = ("弟弟", "侄子", "小舅子", "儿媳妇", "表哥", "亲家", "女婿")
HARDSHIPS = ("老伴瘫痪在床", "儿子因病去世", "一家三口没有劳动力", "房子漏雨住不了", "常年吃药看病")
PROJECTS = ("水泥路", "排水沟", "文化广场", "人饮水池", "河堤护坡", "村部院墙")
DAMAGES = ("到处开裂", "塌了一大块", "坑坑洼洼", "一下雨就冒水", "墙皮全掉了")
PLACES = ("镇上的饭店", "县城的酒楼", "农家乐", "村口的饭馆")
ASSETS = ("鱼塘", "集体林地", "村部旧房", "砖厂场地", "果园")

# Synonyms a re-report may use (both directions).
SYNONYMS = (
    ("低保", "最低生活保障"),
    ("反映", "举报"),
    ("至今", "到现在"),
    ("没有", "没"),
    ("希望", "请求"),
    ("上级", "纪委"),
    ("调查处理", "查一查"),
    ("村民", "老百姓"),
    ("要求", "让"),
    ("每户", "每家"),
    ("意见很大", "很有意见"),
    ("经常", "常常"),
    ("一直", "总是"),
    ("施工队", "包工头"),
    ("验收", "检查验收"),
    ("亲戚", "亲属"),
)
PREFIXES = ("", "", "再次反映：", "上次反映的问题还没解决，", "我之前打过电话，", "这个事情拖了很久了，")


def _pick(rng: random.Random, items):
    return items[rng.randrange(len(items))]


def _person(rng: random.Random) -> str:
    """A name as complaints give them: 王某, 王某某, or a full one (王建军, 王芳)."""
    roll = rng.random()
    if roll < 0.15:
        return _pick(rng, SURNAMES) + rng.choice(("某", "某某"))
    given = _pick(rng, GIVEN_CHARS) + (_pick(rng, GIVEN_CHARS) if roll < 0.85 else "")
    return _pick(rng, SURNAMES) + given


# Each kind of problem: its subject line and its sentences, each sentence in several phrasings
# (a person picks one; a re-report may pick another), over the facts of one case ({who}, {amount}…).
TEMPLATES: dict[str, tuple[str, list[tuple[str, ...]]]] = {
    "favoritism": (
        "{who}",
        [
            (
                "{who}在{year}年低保评定中优亲厚友",
                "{year}年评低保的时候{who}搞优亲厚友",
                "{who}评低保只照顾自家人",
            ),
            (
                "把自己的{relative}评上了低保",
                "他{relative}家条件很好也吃上了低保",
                "{relative}家有车有房照样拿低保",
            ),
            ("{group}的{victim}家{hardship}却没有评上", "{victim}家{hardship}，申请了{n}次都没批"),
            ("村民意见很大，希望上级调查处理", "请纪委来查一查", ""),
        ],
    ),
    "subsidy": (
        "{who}",
        [
            (
                "{who}发放{year}年的{subsidy}时每户扣了{amount}元",
                "{year}年的{subsidy}发下来，{who}每户截留{amount}元",
                "{who}克扣{subsidy}，我家被扣了{amount}元",
            ),
            ("说是{excuse}", "理由是{excuse}", "问他就说是{excuse}"),
            ("没有给任何收据", "钱交了连个条子都没有", ""),
            ("{group}的村民都有意见", "{group}好几户都被扣了", ""),
        ],
    ),
    "petty_corruption": (
        "{who}",
        [
            ("到村部开{cert}", "我去村里办{cert}", "{month}月份去开{cert}"),
            ("{who}要求先交{amount}元才给盖章", "{who}张口就要{amount}元", "{who}说不给{amount}元就不办"),
            ("不交钱就说章不在", "没给钱就一直拖着", "后来托人说情才办"),
            ("这不是吃拿卡要吗", "这种作风必须管一管", ""),
        ],
    ),
    "efficiency": (
        "{who}",
        [
            (
                "{who}{day}经常不在村委会办公室",
                "{day}去村委会找{who}办事一个人都找不到",
                "{who}{day}从来不在岗",
            ),
            ("开{cert}跑了{n}趟都没办成", "为了一个{cert}来回跑了{n}趟"),
            ("打他电话也不接", "电话打了{m}次没人接", ""),
            ("耽误了{purpose}", "差点误了{purpose}", "{purpose}的事就这样耽误了"),
        ],
    ),
    "project": (
        "{who}",
        [
            (
                "{group}{year}年修的{project}才用了{months}个月就{damage}",
                "{group}的{project}是{year}年修的，现在{damage}",
                "{project}刚修了{months}个月就{damage}",
            ),
            ("施工队是{who}的亲戚", "工程是{who}找他亲戚包的", "包工程的是{who}家里人"),
            ("验收走过场", "验收的时候也没人认真看", ""),
            ("花了{amount}元修成这样", "听说花了{amount}元", ""),
        ],
    ),
    "land": (
        "{who}",
        [
            ("{group}征地补偿款每亩{amount}元", "{group}的地被征了，说好每亩补{amount}元"),
            ("至今还有{n}户没有拿到", "到现在{n}户一分钱没见到", "我们{n}户的钱一直没发"),
            ("{who}一直说钱没到账", "问{who}，他说上面没拨", "{who}总是推说还没到"),
            ("我们去镇上问说早就拨下来了", "镇里说{month}月份就拨付了", ""),
        ],
    ),
    "banquet": (
        "{who}",
        [
            (
                "{who}经常用村集体的钱在{place}吃饭",
                "{who}拿村里的钱到{place}大吃大喝",
                "{who}公款吃喝，常去{place}",
            ),
            ("{month}月份一次就花了{amount}元", "光{month}月就吃了{amount}元", "一顿饭{amount}元"),
            ("账目从来不公开", "村务公开栏好几年没更新", ""),
            ("希望上级查一下村里的账", "请把村里的账查清楚", ""),
        ],
    ),
    "assets": (
        "{who}",
        [
            ("村里的{asset}低价租给了{tenant}", "集体的{asset}被{tenant}低价承包了", "{asset}包给了{tenant}"),
            ("每年才{amount}元", "一年租金只有{amount}元", "租金{amount}元一年，外面至少翻倍"),
            ("没有公开招标也没有开村民代表大会", "事先没有公示", ""),
            ("{tenant}是{who}的{relative}", "{tenant}和{who}是{relative}关系"),
        ],
    ),
    "environment": (
        "{group}{spot}",
        [
            (
                "{group}{spot}的垃圾堆了{n}天没人清运",
                "{group}{spot}垃圾池{n}天没清了",
                "{spot}那边的垃圾没人管，已经{n}天了",
            ),
            ("臭味很大，夏天全是苍蝇", "{victim}家就在旁边，被熏得不行", "污水流到了{victim}家门口"),
            ("跟{who}说了好几次", "找过{who}{m}次", ""),
            ("一直说没有经费", "村里说保洁员工资{amount}元发不出来", ""),
        ],
    ),
    "housing": (
        "{who}",
        [
            (
                "{who}在{year}年危房改造名额分配中收了好处",
                "{year}年危房改造，{who}收钱给名额",
                "{who}把危改指标给了送礼的人",
            ),
            ("{group}{tenant}家房子好好的也拿到了补助", "{tenant}家新盖的楼也拿了{amount}元补助"),
            ("真正住危房的{victim}家没有名额", "{victim}家的土坯房快塌了也没人管"),
            ("希望纪委调查", "", "这样分配不公平"),
        ],
    ),
    "insurance": (
        "{who}",
        [
            (
                "{who}让我们交医保的时候多收了{fee}元",
                "交{year}年医保，{who}每人多收{fee}元",
                "{who}代收医保费加收{fee}元",
            ),
            ("说是代办费", "说是跑腿的钱", "理由是{excuse}"),
            ("{group}好多户都交了", "{group}{n}户都被多收了", ""),
            ("问他要收据他说没有", "没有收据", ""),
        ],
    ),
    "discipline": (
        "{who}",
        [
            ("{who}上班时间在村部打牌", "{who}工作日在办公室打麻将", "{who}上班时间喝酒打牌"),
            ("{weekday}下午我去办事看到的", "{weekday}我亲眼看到的", "不止一次了，{weekday}也是"),
            ("一起打牌的还有{tenant}", "和{tenant}他们一起", ""),
            ("群众来办事没人管", "办事的人在外面等了{n}个小时", ""),
        ],
    ),
}
EXCUSES = ("管理费", "手续费", "村里开支", "上面要求的", "工本费")
SPOTS = ("路口", "河边", "小学门口", "桥头", "菜市场旁", "老井边")
PURPOSES = ("孩子上学报名", "办低保", "申请助学贷款", "办医保报销")
WEEKDAYS = ("周二", "周四", "星期天", "赶集那天", "周一", "上周五")


@dataclass
class Problem:
    """One problem: its kind, its facts, and the phrasing its first reporter chose for each sentence."""

    kind: str
    facts: dict[str, Any]
    choice: list[int]
    location: str


def _problem(rng: random.Random, village: str) -> Problem:
    """A complaint about `village`: a kind of problem with its facts drawn at random."""
    role, _role_alt = _pick(rng, ROLES)
    group = _pick(rng, GROUPS)
    kind = _pick(rng, tuple(TEMPLATES))
    facts = {
        "role": role,
        "who": role + _person(rng),
        "group": group,
        "amount": rng.choice((50, 100, 200, 300, 500, 800, 1000, 1500, 2000, 3000, 5000, 12000, 30000)),
        "fee": rng.choice((20, 30, 50, 80, 100)),
        "year": rng.choice((2023, 2024, 2025, 2026)),
        "month": rng.randint(1, 12),
        "n": rng.randint(3, 19),
        "m": rng.randint(2, 6),
        "months": rng.randint(2, 11),
        "relative": _pick(rng, RELATIVES),
        "hardship": _pick(rng, HARDSHIPS),
        "victim": _person(rng),
        "tenant": _person(rng),
        "subsidy": _pick(rng, SUBSIDIES)[0],
        "excuse": _pick(rng, EXCUSES),
        "cert": _pick(rng, CERTIFICATES),
        "day": rng.choice(("周一", "周三", "周五", "上午", "下午")),
        "purpose": _pick(rng, PURPOSES),
        "project": _pick(rng, PROJECTS),
        "damage": _pick(rng, DAMAGES),
        "place": _pick(rng, PLACES),
        "asset": _pick(rng, ASSETS),
        "weekday": _pick(rng, WEEKDAYS),
        "spot": _pick(rng, SPOTS),
    }
    choice = [rng.randrange(len(options)) for options in TEMPLATES[kind][1]]
    where = {"petty_corruption": "村部", "banquet": "村部", "discipline": "村部", "efficiency": "村委会"}
    place = {"assets": facts["asset"], "environment": group + facts["spot"]}.get(kind, group)
    location = village + (where.get(kind) or place)
    return Problem(kind, facts, choice, location)


def _sentences(problem: Problem, choice: list[int]) -> list[str]:
    options = TEMPLATES[problem.kind][1]
    said = [options[i][c].format(**problem.facts) for i, c in enumerate(choice)]
    return [s for s in said if s]


def _swap_synonyms(rng: random.Random, text: str, share: float) -> str:
    for a, b in SYNONYMS:
        if a in text and rng.random() < share:
            text = text.replace(a, b)
        elif b in text and rng.random() < share:
            text = text.replace(b, a)
    for role, alt in ROLES:
        if role in text and rng.random() < share:
            text = text.replace(role, alt)
    for subsidy, alt in SUBSIDIES:
        if subsidy in text and rng.random() < share:
            text = text.replace(subsidy, alt)
    return text


def original_text(problem: Problem) -> tuple[str, str]:
    """(subject, content) as the first reporter wrote it."""
    subject = TEMPLATES[problem.kind][0].format(**problem.facts)
    return subject, "，".join(_sentences(problem, problem.choice)) + "。"


def reworded(rng: random.Random, problem: Problem) -> tuple[str, str]:
    """(subject, content) of a re-report of `problem`: the same facts in another day's or another
    person's words: some sentences phrased anew, their order shuffled, synonyms, cut short."""
    options = TEMPLATES[problem.kind][1]
    choice = [
        c if rng.random() < 0.5 else rng.randrange(len(options[i])) for i, c in enumerate(problem.choice)
    ]
    sentences = _sentences(problem, choice)
    if rng.random() < 0.7:
        rng.shuffle(sentences)
    if rng.random() < 0.3:  # cut short: what they remembered this time
        sentences = sentences[: max(2, round(len(sentences) * rng.uniform(0.5, 0.75)))]
    content = _pick(rng, PREFIXES) + rng.choice(("，", "。")).join(sentences) + "。"
    content = _swap_synonyms(rng, content, 0.6)
    subject = _swap_synonyms(rng, TEMPLATES[problem.kind][0].format(**problem.facts), 0.5)
    if rng.random() < 0.3:
        subject = subject.replace(problem.facts["who"], problem.facts["role"])  # "村会计" alone
    return subject, content


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3578") + "".join(str(rng.randrange(10)) for _ in range(9))


@dataclass
class Complaint:
    index: int
    unit: int  # 0 … UNITS-1
    day: float  # days after the start
    subject: str
    content: str
    location: str
    category: str
    phone: str | None
    cluster: int  # the original's index: one problem


@dataclass
class DataSet:
    complaints: list[Complaint]
    villages: list[tuple[str, str]]  # (code, name) per unit

    @property
    def clusters(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for c in self.complaints:
            out[c.cluster].append(c.index)
        return out


def generate_set(size: int, seed: int = 16) -> DataSet:
    """`size` complaints about UNITS villages over DAYS days, about REREPORT_SHARE of them re-reports."""
    rng = random.Random(seed)
    villages = []
    for n in range(UNITS):
        name = VILLAGE_FIRST[n % 10] + VILLAGE_SECOND[(n // 10 + n) % 10] + "村"
        villages.append((f"dup-t{n // 10}-v{n % 10}", f"{name}"))
    originals: list[tuple[Complaint, Problem]] = []
    complaints: list[Complaint] = []
    reporters_by_unit: dict[int, list[str]] = defaultdict(list)
    n_rereports = round(size * REREPORT_SHARE)
    n_originals = size - n_rereports
    for index in range(n_originals):
        unit = rng.randrange(UNITS)
        problem = _problem(rng, villages[unit][1])
        subject, content = original_text(problem)
        phone = None
        if rng.random() < 0.7:
            known = reporters_by_unit[unit]
            phone = _pick(rng, known) if known and rng.random() < SAME_REPORTER_OTHER_PROBLEM else _phone(rng)
            known.append(phone)
        c = Complaint(
            index, unit, rng.uniform(0, DAYS), subject, content, problem.location, problem.kind, phone, index
        )
        complaints.append(c)
        originals.append((c, problem))
    for _ in range(n_rereports):
        # Reported again 1–80 days later, before the set ends: a complaint from its last days
        # cannot have been re-reported yet.
        while True:
            first, problem = _pick(rng, originals)
            day = first.day + rng.uniform(1, 80)
            if day <= DAYS:
                break
        subject, content = reworded(rng, problem)
        phone = (
            first.phone
            if first.phone and rng.random() < 0.6
            else (_phone(rng) if rng.random() < 0.6 else None)
        )
        location = problem.location if rng.random() < 0.7 else villages[first.unit][1]
        complaints.append(
            Complaint(
                len(complaints), first.unit, day, subject, content, location, problem.kind, phone, first.index
            )
        )
    complaints.sort(key=lambda c: c.day)
    return DataSet(complaints, villages)


# -- through the real database -----------------------------------------------------------------------


@dataclass
class Measured:
    """Pairs (case → suggestion) scored, and the truth to compare them with."""

    complaints: int
    rereports: int
    truth_pairs: int  # ordered pairs of one cluster
    scored: list[tuple[float, bool, bool]] = field(default_factory=list)  # (score, likely, true)
    seconds: float = 0.0  # of the likely_duplicates calls
    same_reporter_shown: int = 0  # suggestions shown for the reporter alone (not likely duplicates)

    def at(self, threshold: float) -> tuple[float, float, int, int]:
        """(precision, recall, true positives, false positives) at `threshold`."""
        tp = sum(1 for score, _likely, true in self.scored if score >= threshold and true)
        fp = sum(1 for score, _likely, true in self.scored if score >= threshold and not true)
        return tp / max(1, tp + fp), tp / max(1, self.truth_pairs), tp, fp

    def at_app_threshold(self) -> tuple[float, float, int, int]:
        """What the app calls likely (`Suggestion.likely`), whatever the threshold is now."""
        tp = sum(1 for _s, likely, true in self.scored if likely and true)
        fp = sum(1 for _s, likely, true in self.scored if likely and not true)
        return tp / max(1, tp + fp), tp / max(1, self.truth_pairs), tp, fp


def load(data: DataSet, start: datetime) -> dict[str, int]:
    """Write the org tree, the categories, the accounts and every complaint (through submit_case);
    returns each case's tracking number → the complaint's index. Needs an app context."""
    from sqlalchemy import select

    from supervise.cases.models import Category
    from supervise.cases.services import submit_case
    from supervise.extensions import db
    from supervise.orgs.models import OrgKind
    from supervise.orgs.services import create_org
    from supervise.staff.services import create_user

    session = db.session
    county = create_org(session, "dup-county", "某县纪委监委", OrgKind.COMMISSION)
    create_user(session, username="dup-supervisor", org=county, role="supervisor,intake", password="x" * 12)
    for t, township_name in enumerate(TOWNSHIPS):
        township = create_org(session, f"dup-t{t}", township_name, OrgKind.TOWNSHIP, county)
        office = create_org(
            session, f"dup-t{t}-jw", township_name + "纪委", OrgKind.DISCIPLINE_OFFICE, township
        )
        create_user(session, username=f"dup-t{t}-intake", org=office, role="intake", password="x" * 12)
        for code, name in data.villages[t * 10 : t * 10 + 10]:
            create_org(session, code, name, OrgKind.VILLAGE, township)
    for order, kind in enumerate(TEMPLATES):
        if session.scalar(select(Category.id).where(Category.code == kind)) is None:
            session.add(Category(code=kind, name=kind, sort_order=order))
    session.commit()
    refs = {}
    for c in data.complaints:
        fields = {
            "category": c.category,
            "subject": c.subject,
            "content": c.content,
            "location": c.location,
            "subject_unit": data.villages[c.unit][0],
        }
        if c.phone:
            fields["phone"] = c.phone
        # The scorer is measured, not the SMS code (issue 18): the numbers are kept as generated.
        case, _code = submit_case(fields, now=start + timedelta(days=c.day), verify_phone=False)
        refs[case.tracking_no] = c.index
    return refs


def measure(data: DataSet, refs: dict[str, int], limit: int = 5) -> Measured:
    """`likely_duplicates` for every case, as the county's supervisor (who sees every case)."""
    from sqlalchemy import select

    from supervise.cases.duplicates import likely_duplicates
    from supervise.cases.models import Case
    from supervise.cases.workflow import Actor
    from supervise.extensions import db
    from supervise.staff.models import User

    session = db.session
    cluster = {c.index: c.cluster for c in data.complaints}
    sizes = data.clusters
    truth = sum(len(members) * (len(members) - 1) for members in sizes.values())
    result = Measured(len(data.complaints), len(data.complaints) - len(sizes), truth)
    actor = Actor.staff(session.scalar(select(User).where(User.username == "dup-supervisor")))
    started = time.perf_counter()
    for case in session.scalars(select(Case).order_by(Case.id)).all():
        mine = cluster[refs[case.tracking_no]]
        for s in likely_duplicates(case, actor, limit, every_score=True):
            true = cluster[refs[s.case.tracking_no]] == mine
            result.scored.append((s.score, s.likely, true))
            result.same_reporter_shown += int(s.same_reporter and not s.likely)
        session.expire_all()  # a page view reads afresh
    result.seconds = time.perf_counter() - started
    return result


THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def table(result: Measured) -> str:
    lines = [
        "threshold | precision | recall | true pos | false pos",
        "--------- | --------- | ------ | -------- | ---------",
    ]
    from supervise.cases.duplicates import THRESHOLD

    for threshold in sorted({*THRESHOLDS, THRESHOLD}):
        p, r, tp, fp = result.at(threshold)
        mark = "  ← the app's" if threshold == THRESHOLD else ""
        lines.append(f"{threshold:9.2f} | {p:9.3f} | {r:6.3f} | {tp:8d} | {fp:9d}{mark}")
    return "\n".join(lines)


def run_in_app(size: int, seed: int = 16) -> Measured:
    """Generate, load and measure in the current app context (an empty database: the tests' or
    the bench's own)."""
    data = generate_set(size, seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=DAYS + 10)
    refs = load(data, start)
    return measure(data, refs)


# -- its own database --------------------------------------------------------------------------------


def _database(backend: str) -> tuple[str, Any]:
    """The app's DATABASE_URL for this run and a function that drops it afterwards."""
    from bench import common

    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="bench-duplicates-"))
        return f"sqlite:///{directory / 'duplicates.db'}", lambda: None
    name = common.DB_NAME + "_duplicates"
    url = common.DATABASE_URL.rsplit("/", 1)[0] + "/" + name

    def admin(statement: str) -> None:
        with common.admin_connection() as conn:
            conn.execute(statement)

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    return url, lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(backend: str, size: int, seed: int = 16, redis_url: str | None = None) -> Measured:
    """A fresh database of `backend`, migrated, the calendar seeded; the set loaded and measured."""
    from bench import common

    url, drop = _database(backend)
    common.DATA_DIR.mkdir(parents=True, exist_ok=True)
    os.environ |= {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url or common.REDIS_URL,
        "SUPERVISE_DATA_DIR": str(common.DATA_DIR),
        "SUPERVISE_ENV": os.environ.get("SUPERVISE_ENV", "development"),
    }
    from flask_migrate import upgrade

    from supervise.app import create_app
    from supervise.deadlines.calendar import seed_from_chinesecalendar
    from supervise.extensions import db

    app = create_app({"PASSWORD_HASH_METHOD": common.FAST_PASSWORD_HASH, "SQLALCHEMY_DATABASE_URI": url})
    try:
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            seed_from_chinesecalendar(db.session)
            db.session.commit()
            result = run_in_app(size, seed)
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
    return result


def check(result: Measured, smoke: bool) -> None:
    """A run that cannot be right raises (a smoke run checks results, never speed)."""
    if not result.scored or result.truth_pairs == 0:
        raise SystemExit("no suggestions or no duplicates: not a valid run")
    p, r, _tp, _fp = result.at_app_threshold()
    if smoke and (p < 0.6 or r < 0.7):
        raise SystemExit(f"the smoke set's precision {p:.3f} / recall {r:.3f} are far below the goals")


def figures_of(result: Measured, backend: str) -> list[Figure]:
    from supervise.cases.duplicates import THRESHOLD

    p, r, tp, fp = result.at_app_threshold()
    size = f"{result.complaints:,} complaints, {result.rereports:,} re-reports, {backend}"
    per_case = result.seconds / max(1, result.complaints) * 1000
    return [
        Figure(
            "duplicates: recall at the app's threshold",
            f"≥ {GOAL_RECALL}",
            f"{r:.3f} ({tp}/{result.truth_pairs} pairs, threshold {THRESHOLD})",
            ok=r >= GOAL_RECALL,
            note=f"python -m bench.duplicates --db {backend} ({size})",
        ),
        Figure(
            "duplicates: precision at the app's threshold",
            f"≥ {GOAL_PRECISION}",
            f"{p:.3f} ({fp} false of {tp + fp})",
            ok=p >= GOAL_PRECISION,
        ),
        Figure("duplicates: likely_duplicates per case page", "—", f"{per_case:.1f} ms"),
    ]


def figures(cases: int = 0, smoke: bool = False) -> list[Figure]:
    """For `python -m bench all`: the set's own size (not `cases`), on the bench's PostgreSQL."""
    from bench import common

    backend = "sqlite" if common.DATABASE_URL.startswith("sqlite") else "postgresql"
    result = run(backend, SMOKE_SIZE if smoke else FULL_SIZE)
    print(table(result), flush=True)
    check(result, smoke)
    return figures_of(result, backend)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--complaints", type=int, default=FULL_SIZE)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SIZE} complaints")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--redis", help="a Redis URL (default: db 15 at 127.0.0.1:6379)")
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    size = SMOKE_SIZE if args.smoke else args.complaints
    started = time.perf_counter()
    result = run(args.db, size, args.seed, args.redis)
    print(
        f"{args.db}: {result.complaints:,} complaints ({result.rereports:,} re-reports), seed {args.seed}, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(table(result))
    check(result, args.smoke)
    figs = figures_of(result, args.db)
    for f in figs:
        print(f"{f.name}: {f.measured} (goal {f.goal}){'' if f.ok is None else ' ✓' if f.ok else ' ✗'}")
    if args.json:
        args.json.write_text(json.dumps([f.as_dict() for f in figs], ensure_ascii=False, indent=2) + "\n")
    return 0 if all(f.ok is not False for f in figs) else 1


if __name__ == "__main__":
    sys.exit(main())
