"""The `robot` outbox channel: a markdown message to a WeCom or DingTalk group, signed as each
provider documents, and the provider's answer sorted into delivered / try again / dead letter.

External (notify/outbox.py EXTERNAL): the row is claimed before the post, so a worker dying
mid-post leaves it `unknown` for an admin, never a second message in the group.

What a message holds (DESIGN.md §2a: a group chat may include people the complaint is about):
the kind in words, the tracking number, the subject unit and the org that holds the case, the
deadline, the 督办 level and a link to the staff page (which asks the reader to sign in). Never
the reporter's name or phone, never the complaint's subject line or content.

Signing:
- DingTalk custom robot (加签, open.dingtalk.com/document/robots/customize-robot-security-settings):
  `timestamp` (ms) and `sign` = urlencode(base64(HMAC-SHA256(key=secret,
  msg=f"{timestamp}\\n{secret}"))) as query parameters; DingTalk refuses a timestamp more than an
  hour off. Without a secret the robot must check a keyword (every message contains 码上监督)
  or the caller's IP.
- WeCom group robot (developer.work.weixin.qq.com/document/path/91770): no signature; the `key` in
  the webhook address is the credential, so the address is sealed at rest and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import ssl
import time
from typing import Any
from urllib.parse import quote_plus, urlsplit

from sqlalchemy.orm import Session

from supervise.deadlines.calendar import local_date
from supervise.notify import outbox
from supervise.notify.models import OutboxMessage
from supervise.robots.models import OrgRobot
from supervise.robots.services import TEST_KIND, RobotRefused, check_webhook

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
# Both answer HTTP 200 with a JSON `errcode` (0: posted). Codes from the providers' lists:
# try again later: the robot's rate limit (DingTalk 130101 "send too fast", 410100; WeCom 45009
# "api freq out of limit", 45033) and "system busy" (-1);
RETRY_CODES = {"dingtalk": {-1, 130101, 410100}, "wecom": {-1, 45009, 45033}}
# dead at once (the same request can never succeed: fix the settings, then retry from the dead-letter
# page): DingTalk 310000 (keyword missing, sign mismatch, IP not allowed, timestamp stale), 300001
# and 400101 (token does not exist), 400102 (robot disabled), 400106 (robot gone), 400013 (group
# dissolved), 430101–430104 (content refused); WeCom 93000 (invalid webhook url: the key), 93004
# (robot disabled), 40008 (message type), 40058 (parameter), 44004 (empty), 45002 (too long).
DEAD_CODES = {
    "dingtalk": {310000, 300001, 400101, 400102, 400106, 400013, 430101, 430102, 430103, 430104},
    "wecom": {93000, 93004, 40008, 40058, 44004, 45002},
}
# Any other non-zero code: an ordinary failure (retried with backoff, dead after MAX_ATTEMPTS).


class RobotError(Exception):
    """A failed post that may be retried. Messages name the host, never the address (its key)."""


def _permanent(reason: str) -> Exception:
    """A failure that no retry can mend: the row goes `dead` at once (outbox.PermanentFailure)."""
    return outbox.PermanentFailure(reason)


def _unknown(reason: str) -> Exception:
    """The request went out and its answer was lost: it may have been posted. At most once: not
    retried; the row becomes `unknown` for an admin (outbox.OutcomeUnknown)."""
    return outbox.OutcomeUnknown(reason)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(secret, "timestamp\\nsecret")), before urlencoding."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    sign = quote_plus(dingtalk_sign(secret, timestamp_ms))
    return f"{url}{'&' if urlsplit(url).query else '?'}timestamp={timestamp_ms}&sign={sign}"


# -- the message -------------------------------------------------------------------------------------

LEVEL_WORDS = {1: "一级", 2: "二级"}


def _clean(text: str | None) -> str:
    """An org name inside markdown: one line, no link or heading syntax of its own."""
    return " ".join((text or "—").split()).translate(str.maketrans("", "", "[]()#*`<>"))


def message_text(session: Session, message: OutboxMessage, base_url: str) -> tuple[str, list[str]]:
    """(title, lines) of a robot message. Chinese, like the e-mail: the group reads Chinese."""
    from supervise.deadlines.sweep import CLOCK_LABELS

    payload = message.payload or {}
    if message.kind == TEST_KIND:
        robot = session.get(OrgRobot, payload["robot_id"])
        return "【码上监督】测试消息", [
            f"{_clean(robot.org.name)}的群机器人「{_clean(robot.name)}」已接通。",
            "本群将收到督办（超期）和答复待审核的提醒，不含反映人信息和反映内容。",
        ]
    case = message.case
    subject = _clean(case.subject_org.name if case.subject_org else None)
    handling = _clean((case.unit or case.org).name)
    link = f"{base_url.rstrip('/')}/staff/cases/{case.tracking_no}"
    if message.kind == "escalated":
        level = LEVEL_WORDS.get(payload.get("level"), "")
        clock = CLOCK_LABELS.get(payload.get("clock", ""), "期限")
        return f"【码上监督】{level}督办：{case.tracking_no}", [
            f"事项：{level}督办（{clock}已超期）",
            f"编号：{case.tracking_no}",
            f"被反映单位：{subject}",
            f"承办单位：{handling}",
            f"{clock}：{payload.get('due_day', '—')}（已超期）",
            f"督办级别：{level}",
            f"[登录工作台查看]({link})",
        ]
    if message.kind == "review_requested":
        due = local_date(case.response_due_at).isoformat() if case.response_due_at else "—"
        return f"【码上监督】答复待审核：{case.tracking_no}", [
            "事项：答复待审核",
            f"编号：{case.tracking_no}",
            f"被反映单位：{subject}",
            f"承办单位：{handling}",
            f"答复期限：{due}",
            f"[登录工作台查看]({link})",
        ]
    raise _permanent(f"no robot message for kind {message.kind!r}")


def body_for(kind: str, title: str, lines: list[str]) -> dict[str, Any]:
    """The provider's markdown message (WeCom: content ≤ 4096 bytes; DingTalk: title and text)."""
    text = "\n\n".join([f"### {title}", *lines])
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    return {"msgtype": "markdown", "markdown": {"content": text}}


# -- the post ------------------------------------------------------------------------------------------


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> tuple[int, bytes]:
    """POST the JSON body; (status, response body). No redirects, no proxies, certificate checked.

    Failures are told apart by when they happened: before the request was sent (resolving,
    connecting, the TLS handshake): RobotError, retried; after it (no answer, a cut connection):
    the group may have the message, so it is not sent again (`_unknown`)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(body, ensure_ascii=False).encode()
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            connection.request(
                "POST", target, body=data, headers={"Content-Type": "application/json; charset=utf-8"}
            )
        except (OSError, http.client.HTTPException) as exc:
            raise RobotError(f"{parts.hostname}: not sent ({type(exc).__name__}: {exc})") from None
        try:
            response = connection.getresponse()
            return response.status, response.read(64 * 1024)
        except (OSError, http.client.HTTPException) as exc:
            reason = f"{parts.hostname}: sent, no answer ({type(exc).__name__}); may have been posted"
            raise _unknown(reason) from None
    finally:
        connection.close()


def check_answer(kind: str, host: str, status: int, raw: bytes) -> None:
    """Sort the provider's answer: return (posted), or raise to retry or to dead-letter."""
    if status == 429 or status >= 500:
        raise RobotError(f"{host}: HTTP {status}")
    if status != 200:
        # 404: no such robot address; 3xx: not followed (a redirect could lead anywhere).
        raise _permanent(f"{host}: HTTP {status}")
    try:
        answer = json.loads(raw)
        code = int(answer.get("errcode"))
    except (ValueError, TypeError, AttributeError):
        raise RobotError(f"{host}: HTTP 200 without an errcode") from None
    if code == 0:
        return
    errmsg = str(answer.get("errmsg", ""))[:200]
    if code in DEAD_CODES[kind]:
        raise _permanent(f"{host}: errcode {code} {errmsg}")
    raise RobotError(f"{host}: errcode {code} {errmsg}")


class RobotChannel:
    """Posts a robot row's message to its robot's group."""

    def __init__(self, identity_box, base_url: str, extra_hosts: frozenset[str], clock=time.time):
        self.box, self.base_url, self.extra_hosts, self.clock = identity_box, base_url, extra_hosts, clock

    def send(self, session: Session, message: OutboxMessage) -> None:
        robot = session.get(OrgRobot, (message.payload or {}).get("robot_id"))
        if robot is None or (not robot.enabled and message.kind != TEST_KIND):
            # Removed or switched off since the row was written: the admin's latest word stands.
            log.info("outbox message %s: robot removed or disabled, nothing posted", message.id)
            return
        try:
            url = check_webhook(robot.kind, self.box.open(robot.webhook_enc), self.extra_hosts)
        except RobotRefused:
            # Stored under an earlier ROBOT_WEBHOOK_HOSTS: refused now, never called.
            reason = f"robot {robot.id}: webhook host no longer allowed (ROBOT_WEBHOOK_HOSTS)"
            raise _permanent(reason) from None
        title, lines = message_text(session, message, self.base_url)
        secret = self.box.open(robot.secret_enc)
        if robot.kind == "dingtalk" and secret:
            url = signed_url(url, secret, int(self.clock() * 1000))
        host = urlsplit(url).hostname or ""
        status, raw = post(url, body_for(robot.kind, title, lines))
        check_answer(robot.kind, host, status, raw)
        # Ids only: the address holds the robot's key.
        log.info(
            "outbox message %s posted by robot %s (%s) of org %s",
            message.id,
            robot.id,
            robot.kind,
            robot.org_id,
        )


def robot_channel(config, identity_box) -> RobotChannel:
    from supervise.robots.services import parse_hosts

    return RobotChannel(identity_box, config["BASE_URL"], parse_hosts(config.get("ROBOT_WEBHOOK_HOSTS", "")))
