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
    "classify": N_("改变定性"),
    "return": N_("退回"),
    "answer": N_("直接答复"),
    "reverse_rejection": N_("撤销不予受理"),
    "assign": N_("交办"),
    "start": N_("开始办理"),
    "feedback": N_("拟写答复"),
    "publish": N_("答复"),
    "reopen": N_("重新办理"),
    "extend": N_("延期"),
    "request_extension": N_("申请延期"),
    "note": N_("备注"),
    "message": N_("留言"),
    "rate": N_("评价"),
    "supplement": N_("补充材料"),
    "auto_close": N_("自动办结"),
    "warn": N_("即将超期提醒"),
    "escalate": N_("督办"),
    "deadline_changed": N_("期限调整"),
    "reissue_code": N_("重新打印回执（更换查询码）"),
}

# 来源渠道 (states.Channel): how the complaint reached the platform.
CHANNEL_LABELS = {
    "qr": N_("扫码"),
    "web": N_("网上"),
    "phone": N_("来电"),
    "letter": N_("来信"),
    "visit": N_("来访"),
    "hotline": N_("12345热线转办"),
    "import": N_("其他系统转来"),
}

KIND_LABELS = {
    "accusation": N_("检举控告"),
    "service": N_("作风效能诉求"),
    "appeal": N_("申诉"),
    "suggestion": N_("批评建议"),
    "out_of_scope": N_("不属于受理范围"),
}

DISPOSAL_LABELS = {
    "talk_inquiry": N_("谈话函询"),
    "preliminary_check": N_("初步核实"),
    "shelved": N_("暂存待查"),
    "concluded": N_("予以了结"),
}

REJECT_REASON_LABELS = {
    "out_of_scope": N_("不属于本机关受理范围"),
    "no_facts": N_("反映内容不具体，无法核实"),
    "already_handled": N_("已依法处理或正在其他程序中"),
    "duplicate": N_("重复反映且无新的事实和理由"),
    "other": N_("其他"),
}

ORG_KIND_LABELS = {
    "commission": N_("纪委监委"),
    "discipline_office": N_("乡镇（街道）纪委"),
    "stationed_group": N_("派驻纪检监察组"),
    "department": N_("部门"),
    "township": N_("乡镇政府/街道办"),
    "village": N_("村/社区"),
}

# Who acted, when it was not a member of staff (staff are shown by name and org).
ACTOR_LABELS = {
    "citizen": N_("群众"),
    "system": N_("系统"),
    "staff": N_("工作人员"),
}
