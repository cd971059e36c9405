"""The audit log: every login, failed login, refusal, identity view and staff action."""

from __future__ import annotations

import logging
from typing import Any

from flask import has_request_context, request

from supervise.extensions import db
from supervise.i18n import N_
from supervise.staff.models import AuditEntry, User

log = logging.getLogger("supervise.audit")


def record(
    action: str,
    *,
    user: User | None = None,
    username: str | None = None,
    case_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the current transaction (the caller commits with its change)."""
    ip = request.remote_addr if has_request_context() else None
    entry = AuditEntry(
        action=action,
        user_id=user.id if user else None,
        username=username or (user.username if user else None),
        case_id=case_id,
        ip=ip,
        detail=detail or {},
    )
    db.session.add(entry)
    # Names of staff, never of reporters: identity views log who looked, not what they saw.
    log.info("audit %s by %s case=%s ip=%s", action, entry.username, case_id, ip)
    return entry


# -- reading the log (the audit page) -------------------------------------------------------------

ACTION_LABELS = {
    "login": N_("登录"),
    "login_failed": N_("登录失败"),
    "login_throttled": N_("登录受限"),
    "logout": N_("退出"),
    "access_denied": N_("越权访问被拒"),
    "identity_view": N_("查看反映人身份"),
    "case_action": N_("办理操作"),
    "password_changed": N_("修改密码"),
    "token_revoked": N_("吊销令牌"),
    "admin_change": N_("系统管理变更"),
    "case_registered": N_("登记来信来访"),
    "access_code_reissued": N_("重新打印回执（更换查询码）"),
    "summary_written": N_("拟写公开摘要"),
    "summary_approved": N_("批准公开摘要"),
    "summary_withdrawn": N_("撤回公开摘要"),
    # Two-factor sign-in (supervise/staff/twofactor); an admin's reset is an admin_change.
    "2fa_enrolled": N_("开启两步验证"),
    "2fa_codes_renewed": N_("重新生成恢复码"),
    "2fa_recovery_used": N_("使用恢复码登录"),
}

DETAIL_LABELS = {
    "action": N_("操作"),
    "reason": N_("理由"),
    "path": N_("访问地址"),
    "message": N_("说明"),
    "why": N_("原因"),
    "what": N_("变更内容"),
    "via": N_("途径"),
    "tokens": N_("令牌数"),
    "left": N_("剩余恢复码"),
    "week": N_("周次"),
    "version": N_("版本"),
    "previous_version": N_("原版本"),
    "year": N_("年度"),
    "dates": N_("日期数"),
    "file": N_("文件"),
    "username": N_("用户名"),
    "user": N_("用户"),
    "roles": N_("角色"),
    "org": N_("单位"),
    "channel": N_("来源渠道"),
    "received_on": N_("收件日期"),
    "registered_at": N_("登记时间"),
    "backdated_days": N_("收件日期早于登记日（天）"),
    "reference": N_("工单号或来文编号"),
    "point": N_("监督点"),
    "name": N_("名称"),
    "changes": N_("修改"),
    "rows": N_("行数"),
    "created": N_("新建"),
    "updated": N_("更新"),
    "unchanged": N_("未变"),
    "summary": N_("公开摘要编号"),
    "was": N_("撤回前状态"),
}

# Values worth a word instead of a code.
VALUE_LABELS = {
    "out_of_scope": N_("不在本人管辖范围"),
    "cli": N_("命令行"),
    "not system admin": N_("非系统管理员"),
    "weekly_report": N_("每周通报"),
    "admin": N_("管理页面"),
    "import.orgs": N_("导入单位"),
    "import.points": N_("导入监督点"),
    "import.users": N_("导入账号"),
    "import.cases": N_("导入历史诉求"),
    "point.update": N_("修改监督点"),
    "point.reissue": N_("重新生成二维码"),
    "summary_pending": N_("待审核"),
    "summary_published": N_("已公开"),
}


def describe(detail: dict[str, Any] | None, translate=lambda text: text) -> list[tuple[str, str]]:
    """An audit row's detail as (label, value) pairs to read, not JSON: the staff action by its
    Chinese name, known keys by theirs, anything else as it was recorded."""
    from supervise.cases.labels import ACTION_LABELS as CASE_ACTION_LABELS

    pairs = []
    for key, value in (detail or {}).items():
        if value is None or value == "":
            continue
        if key == "action" and isinstance(value, str):
            shown = translate(CASE_ACTION_LABELS.get(value, value))
        elif isinstance(value, list | tuple):
            shown = translate(N_("、")).join(str(v) for v in value)
        elif isinstance(value, dict):
            shown = translate(N_("；")).join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, bool):
            shown = translate(N_("是")) if value else translate(N_("否"))
        elif isinstance(value, str) and value in VALUE_LABELS:
            shown = translate(VALUE_LABELS[value])
        else:
            shown = str(value)
        pairs.append((translate(DETAIL_LABELS.get(key, key)), shown))
    return pairs
