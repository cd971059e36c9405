"""What states and actions are called on screen (Chinese msgids; the `en` catalog translates)."""

from supervise.i18n import N_

STATUS_LABELS = {
    "received": N_("待受理"),
    "accepted": N_("已受理"),
    "rejected": N_("不予受理"),
    "merged": N_("已合并办理"),
    "assigned": N_("已交办"),
    "processing": N_("办理中"),
    "feedback_pending_review": N_("答复审核中"),
    "responded": N_("已答复"),
    "reopened": N_("重新办理"),
    "closed": N_("已办结"),
}

ACTION_LABELS = {
    "submit": N_("提交诉求"),
    "accept": N_("受理"),
    "reject": N_("不予受理"),
    "merge": N_("合并办理"),
    "transfer": N_("转办"),
    "assign": N_("交办"),
    "start": N_("开始办理"),
    "feedback": N_("拟写答复"),
    "publish": N_("答复"),
    "reopen": N_("重新办理"),
    "extend": N_("延期"),
    "request_extension": N_("申请延期"),
    "note": N_("备注"),
    "rate": N_("评价"),
    "supplement": N_("补充材料"),
    "auto_close": N_("自动办结"),
    "warn": N_("即将超期提醒"),
    "escalate": N_("督办"),
    "deadline_changed": N_("期限调整"),
}
