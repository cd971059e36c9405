"""The weekly report's words as the staff pages show them, marked for translation.

supervise/reports/weekly.py keeps the report's Chinese labels and footnotes unmarked (the formal report
and its downloads stay Chinese); these are the same texts as msgids, so the staff pages can show them in
the reader's language. tests/web/test_staff_english.py keeps the two equal.
"""

from __future__ import annotations

from supervise.i18n import N_

LABELS = {
    "received": N_("本周收件"),
    "accepted": N_("本周受理"),
    "responded_on_time": N_("按期答复"),
    "responded_late": N_("超期答复"),
    "open_overdue": N_("周末超期未答复"),
    "overdue_working_days": N_("累计超期工作日"),
    "due_soon": N_("3个工作日内到期"),
    "escalated_level1": N_("一级督办"),
    "escalated_level2": N_("二级督办"),
    "reopened": N_("重办"),
    "rated": N_("评价数"),
    "satisfied": N_("满意及基本满意"),
    "on_time_rate": N_("按期答复率"),
    "satisfaction_rate": N_("满意率"),
}

# `{on_time}` / `{satisfaction}`: str.format placeholders, filled with the stored thresholds.
FOOTNOTES = [
    N_(
        "统计周期：所示周的周一 00:00 至周日 24:00（北京时间）；各项按生成通报时主办诉求件的纪检监察机构统计"
        "（转办给单位办理的件计入转办它的机构），“合计”含下级纪检监察机构。"
    ),
    N_("本周收件：本周内提交的诉求件数。本周受理：本周内执行“受理”的件数（含转办后新机构受理）。"),
    N_(
        "按期答复 / 超期答复：本周内发布答复、结束答复期限的件数，答复时间不晚于 / 晚于期限"
        "（15个工作日，延期、重办按新期限）。"
    ),
    N_(
        "周末超期未答复：至周日 24:00 答复期限已过仍未答复的件数；"
        "累计超期工作日为这些件超过期限的工作日之和。"
    ),
    N_("3个工作日内到期：至周日 24:00 尚未答复、期限在其后3个工作日内届满的件数。"),
    N_("一级 / 二级督办：本周内因期限届满（答复、受理转办、实名受理告知）报上级、再上一级督办的次数。"),
    N_("重办：本周内因群众不满意或领导决定重新办理的件数。"),
    N_("满意率：本周内评价为“满意”“基本满意”的件数 ÷ 本周评价件数。"),
    N_("按期答复率：按期答复 ÷（按期答复 + 超期答复）。无答复或无评价时不计算比率。"),
    N_("按期答复率低于{on_time:.0%}或满意率低于{satisfaction:.0%}的单位标记为“需关注”。"),
]
