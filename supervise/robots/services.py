"""Which robots a change tells, the admin's edits, and the webhook address check.

A robot row is an outbox row (channel `robot`) written in the transaction of the change it
reports, like the in-app notice beside it: one row per enabled robot of the org told, its payload
ids only (the robot, the org, the 督办 level and clock). Nothing about the reporter or the
complaint's content is ever in it; the message is built at delivery (channel.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.dbtypes import utcnow
from supervise.i18n import N_
from supervise.notify.outbox import queue_message
from supervise.robots.models import KINDS, OrgRobot

if TYPE_CHECKING:
    from supervise.cases.identity import IdentityBox
    from supervise.cases.models import Case
    from supervise.orgs.models import Org
    from supervise.staff.models import User

CHANNEL = "robot"
TEST_KIND = "robot_test"

# The providers' own hosts and paths (企业微信 群机器人: developer.work.weixin.qq.com/document/path/91770;
# 钉钉 自定义机器人: open.dingtalk.com/document/robots/custom-robot-access) and the query parameter
# that carries each robot's credential.
REAL_HOSTS = {"wecom": "qyapi.weixin.qq.com", "dingtalk": "oapi.dingtalk.com"}
REAL_PATHS = {"wecom": "/cgi-bin/webhook/send", "dingtalk": "/robot/send"}
CREDENTIAL_PARAMS = {"wecom": "key", "dingtalk": "access_token"}
KIND_LABELS = {"wecom": N_("企业微信群机器人"), "dingtalk": N_("钉钉自定义机器人")}
EXAMPLES = {
    "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
    "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=…",
}
MAX_ROBOTS_PER_ORG = 5
MAX_URL = 500
MAX_SECRET = 200
# DingTalk's 加签 secret as its page shows it: "SEC" and 64 hex digits; a little slack for changes.
SECRET_RE = re.compile(r"^SEC[0-9A-Za-z]{16,197}$")
HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}$"  # a name or IPv4
    r"|^\[[0-9A-Fa-f:.]+\]$"  # [an IPv6 address]
)
MALFORMED = N_("Webhook 地址格式不正确，应形如 %(example)s")
UNLISTED_HOST = N_(
    "Webhook 地址须为 %(host)s 的 https 地址（应形如 %(example)s）；"
    "私有部署的其他地址须由运维人员在 ROBOT_WEBHOOK_HOSTS 中登记"
)


class RobotRefused(ValueError):
    """A robot setting refused: `field` and a Chinese msgid (with its `params`) for the form."""

    def __init__(self, field: str, message: str, **params: Any):
        super().__init__(message)
        self.field, self.message, self.params = field, message, params


def parse_hosts(value: str | Iterable[str] | None) -> frozenset[str]:
    """ROBOT_WEBHOOK_HOSTS: further hosts a webhook may point at (a private deployment's gateway,
    the tests' stand-in), separated by spaces or commas. Raises ValueError on an entry that is not
    a host name or address (a URL pasted whole, a path)."""
    entries = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
    hosts = set()
    for entry in entries:
        if not HOST_RE.match(entry):
            raise ValueError(f"{entry!r} is not a host name (no scheme, port or path)")
        hosts.add(entry.strip("[]").lower())
    return frozenset(hosts)


def check_webhook(kind: str, url: str, extra_hosts: frozenset[str]) -> str:
    """The webhook address if it may be called; else RobotRefused. Only https on the provider's own
    host and path, unless its host is one the operator listed (ROBOT_WEBHOOK_HOSTS): an admin's
    typo or a pasted intranet address must not make the workers call into the intranet."""
    url = url.strip()
    example = EXAMPLES[kind]
    if len(url) > MAX_URL:
        raise RobotRefused("webhook", N_("Webhook 地址不能超过 %(n)s 个字符"), n=MAX_URL)
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        raise RobotRefused("webhook", MALFORMED, example=example) from None
    if parts.username or parts.password or parts.fragment or any(c.isspace() for c in url):
        raise RobotRefused("webhook", MALFORMED, example=example)
    if host == REAL_HOSTS[kind]:
        if parts.scheme != "https" or port not in (None, 443) or parts.path != REAL_PATHS[kind]:
            raise RobotRefused("webhook", N_("Webhook 地址应形如 %(example)s"), example=example)
    elif host in extra_hosts:
        if parts.scheme not in ("https", "http"):
            raise RobotRefused("webhook", N_("Webhook 地址须以 https:// 开头"))
    else:
        raise RobotRefused("webhook", UNLISTED_HOST, host=REAL_HOSTS[kind], example=example)
    credential = parse_qs(parts.query).get(CREDENTIAL_PARAMS[kind], [""])[0]
    if not credential.strip():
        raise RobotRefused(
            "webhook", N_("Webhook 地址缺少 %(param)s 参数，请复制完整的地址"), param=CREDENTIAL_PARAMS[kind]
        )
    return url


def credential_hint(kind: str, url: str) -> str:
    """The last four characters of the robot's key or token: enough to tell robots apart."""
    credential = parse_qs(urlsplit(url).query).get(CREDENTIAL_PARAMS[kind], [""])[0]
    return credential[-4:]


def check_secret(kind: str, secret: str) -> str | None:
    """DingTalk's signing secret (加签, optional: a robot may instead check a keyword or the caller's
    IP); WeCom's group robot has none (its key is in the address), so one given there is refused."""
    secret = secret.strip()
    if not secret:
        return None
    if kind == "wecom":
        raise RobotRefused("secret", N_("企业微信群机器人没有签名密钥，请留空"))
    if len(secret) > MAX_SECRET or not SECRET_RE.match(secret):
        raise RobotRefused("secret", N_("加签密钥应为钉钉机器人安全设置中以 SEC 开头的一串字母和数字"))
    return secret


# -- queueing: rows in the change's transaction ------------------------------------------------------


def robots_by_org(session: Session, org_ids: Iterable[int] | None = None) -> dict[int, list[int]]:
    """The enabled robots' ids of each org (of `org_ids`, or of all: the sweep asks once a batch)."""
    stmt = select(OrgRobot.org_id, OrgRobot.id).where(OrgRobot.enabled.is_(True)).order_by(OrgRobot.id)
    if org_ids is not None:
        stmt = stmt.where(OrgRobot.org_id.in_(list(org_ids)))
    found: dict[int, list[int]] = {}
    for org_id, robot_id in session.execute(stmt):
        found.setdefault(org_id, []).append(robot_id)
    return found


def queue_for_org(
    session: Session, *, kind: str, case: Case, org_id: int, payload: dict[str, Any] | None = None
) -> int:
    """One robot row per enabled robot of `org_id`, in the caller's transaction; returns how many."""
    robot_ids = robots_by_org(session, [org_id]).get(org_id, [])
    for robot_id in robot_ids:
        queue_message(
            session,
            kind=kind,
            channel=CHANNEL,
            case=case,
            payload={**(payload or {}), "org_id": org_id, "robot_id": robot_id},
        )
    return len(robot_ids)


# -- the admin's edits (the view records the audit row; the caller commits) -------------------------


@dataclass
class RobotInput:
    """What the admin typed. `webhook` / `secret` empty on an edit: keep the stored one."""

    kind: str
    name: str
    webhook: str
    secret: str
    enabled: bool = True


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise RobotRefused("name", N_("请填写群名称"))
    if len(name) > 100:
        raise RobotRefused("name", N_("群名称不能超过 %(n)s 个字"), n=100)
    return name


def add_robot(
    session: Session, org: Org, data: RobotInput, user: User, box: IdentityBox, extra_hosts: frozenset[str]
) -> OrgRobot:
    """A new robot for a discipline body (a unit's group would hear of cases about itself)."""
    if not org.is_body:
        raise RobotRefused("kind", N_("只有纪检监察机构可以设置群机器人"))
    if data.kind not in KINDS:
        raise RobotRefused("kind", N_("请选择机器人类型"))
    name = _check_name(data.name)
    if not data.webhook.strip():
        raise RobotRefused("webhook", N_("请填写 Webhook 地址"))
    url = check_webhook(data.kind, data.webhook, extra_hosts)
    secret = check_secret(data.kind, data.secret)
    count = len(session.scalars(select(OrgRobot.id).where(OrgRobot.org_id == org.id)).all())
    if count >= MAX_ROBOTS_PER_ORG:
        raise RobotRefused("kind", N_("每个单位最多设置 %(n)s 个群机器人"), n=MAX_ROBOTS_PER_ORG)
    robot = OrgRobot(
        org=org,
        kind=data.kind,
        name=name,
        webhook_enc=box.seal(url),
        secret_enc=box.seal(secret),
        hint=credential_hint(data.kind, url),
        enabled=data.enabled,
        created_by_id=user.id,
        created_at=utcnow(),
    )
    session.add(robot)
    session.flush()
    return robot


def update_robot(
    session: Session,
    robot: OrgRobot,
    data: RobotInput,
    user: User,
    box: IdentityBox,
    extra_hosts: frozenset[str],
) -> list[str]:
    """Apply an edit; returns the names of what changed (for the audit row: never the values of
    the address or the secret). A blank address or secret keeps the stored one."""
    changed = []
    name = _check_name(data.name)
    url = check_webhook(robot.kind, data.webhook, extra_hosts) if data.webhook.strip() else None
    secret = check_secret(robot.kind, data.secret)
    if name != robot.name:
        robot.name = name
        changed.append("name")
    if url is not None and url != box.open(robot.webhook_enc):
        robot.webhook_enc, robot.hint = box.seal(url), credential_hint(robot.kind, url)
        changed.append("webhook")
    if secret is not None and secret != box.open(robot.secret_enc):
        robot.secret_enc = box.seal(secret)
        changed.append("secret")
    if data.enabled != robot.enabled:
        robot.enabled = data.enabled
        changed.append("enabled")
    if changed:
        robot.updated_at, robot.updated_by_id = utcnow(), user.id
    return changed


def remove_secret(robot: OrgRobot, user: User) -> bool:
    """Drop a DingTalk robot's signing secret (its group switched to a keyword or IP check)."""
    if robot.secret_enc is None:
        return False
    robot.secret_enc = None
    robot.updated_at, robot.updated_by_id = utcnow(), user.id
    return True


def queue_test(session: Session, robot: OrgRobot) -> None:
    """发送测试消息: through the outbox like the real ones, so it proves the same path."""
    queue_message(
        session, kind=TEST_KIND, channel=CHANNEL, payload={"robot_id": robot.id, "org_id": robot.org_id}
    )
