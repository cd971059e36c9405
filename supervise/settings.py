"""System settings an admin edits at run time (the deadline rules of DESIGN.md §4, the
submission limits of supervise/intake/limits.py).

One row a key in `settings`; a key with no row falls back to the app config, so a fresh install
behaves as configured until an admin changes something.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from supervise import refdata
from supervise.extensions import db
from supervise.i18n import N_

# key → (label, lowest, highest): what the admin page edits, and its bounds.
DEADLINE_SETTINGS: dict[str, tuple[str, int, int]] = {
    "RESPONSE_DAYS": (N_("答复期限（工作日）"), 1, 60),
    "STAGE_DAYS": (N_("受理/转办期限（工作日）"), 1, 30),
    "DUE_SOON_DAYS": (N_("即将超期提醒（剩余工作日）"), 0, 10),
    "AUTO_CLOSE_DAYS": (N_("未评价自动办结（工作日）"), 1, 60),
    "ACK_DAYS": (N_("实名举报受理告知期限（工作日）"), 1, 60),
    "LEVEL2_DAYS": (N_("超期后升级为二级督办（工作日）"), 1, 30),
    "MAX_EXTENSIONS": (N_("每件最多延期次数"), 0, 10),
    # 每周通报: orgs below these rates are flagged, as county bulletins do.
    "ON_TIME_RATE_TARGET": (N_("通报线：按期答复率（%）"), 0, 100),
    "SATISFACTION_RATE_TARGET": (N_("通报线：满意率（%）"), 0, 100),
}

# 登记来信来访 (supervise/registration): key → (label, lowest, highest, default). How many calendar
# days before the registration the day a letter or call came may lie (older paper goes through
# `supervise import cases`); the default is not in the app config, so it lives here.
REGISTRATION_SETTINGS: dict[str, tuple[str, int, int, int]] = {
    "REGISTER_BACKDATE_DAYS": (N_("收件日期最多可早于登记日（自然日）"), 0, 366, 30),
}
# key → label: what the receipt slip (回执) of a registered complaint tells the reporter.
RECEIPT_SETTINGS: dict[str, str] = {
    "RECEIPT_PHONE": N_("回执上的咨询电话（如 0371-12388；不填则不显示）"),
}
RECEIPT_PHONE_LENGTH = 60

# 热点提示 (supervise/cases/hotspots.py): key → (label, lowest, highest, default). A unit with at
# least this many complaints received in 30 days is flagged to its discipline body.
HOTSPOT_SETTINGS: dict[str, tuple[str, int, int, int]] = {
    "HOTSPOT_THRESHOLD": (N_("热点提示：单位 30 日内被反映件数达到"), 2, 1000, 5),
}

# 每周通报 (supervise/reports/weekly.py): key → (label, lowest, highest, default). A rate on fewer
# cases than this (answers for the on-time rate, ratings for satisfaction) is shown marked 样本不足
# and never flagged: no "满意率低于85%" from one rating.
REPORT_SETTINGS: dict[str, tuple[str, int, int, int]] = {
    "REPORT_MIN_SAMPLE": (N_("通报线：比率的最少样本（件）"), 1, 1000, 5),
}

# 考核 (supervise/assessment): key → (label, lowest, highest, default). Each part's weight (relative:
# the weights of the parts scored for a unit are renormalised to sum to 1) and the minimum sample
# below which a part is not scored ("样本不足").
ASSESSMENT_WEIGHTS: dict[str, tuple[str, int, int, int]] = {
    "ASSESS_WEIGHT_ON_TIME": (N_("考核权重：按期答复率"), 0, 100, 30),
    "ASSESS_WEIGHT_SATISFACTION": (N_("考核权重：满意率"), 0, 100, 30),
    "ASSESS_WEIGHT_REOPEN": (N_("考核权重：重办率"), 0, 100, 15),
    "ASSESS_WEIGHT_ESCALATION": (N_("考核权重：督办率"), 0, 100, 15),
    "ASSESS_WEIGHT_COMPLAINTS": (N_("考核权重：每千人有效反映件数"), 0, 100, 10),
}
ASSESSMENT_SETTINGS: dict[str, tuple[str, int, int, int]] = {
    **ASSESSMENT_WEIGHTS,
    "ASSESS_MIN_SAMPLE": (N_("考核：每项的最少样本（件）"), 1, 1000, 5),
}

# key → label: the submission limits per IP (supervise/intake/limits.py), in Flask-Limiter's
# syntax ("20/hour;60/day"); the allowlist is "CIDR=limit" entries separated by spaces or lines.
LIMIT_SETTINGS: dict[str, str] = {
    "FORM_SUBMIT_RATE_LIMIT": N_("网页表单：每个地址的提交次数（超过后须回答验证问题）"),
    "FORM_SUBMIT_CEILING": N_("网页表单：每个地址的提交上限（超过后拒绝）"),
    "SUBMIT_RATE_LIMIT": N_("接口（API）：每个地址的提交上限"),
    "SUBMIT_ALLOWLIST": N_("已知地址（如便民服务大厅的网络）及其提交次数"),
}
# 两步验证 (supervise/staff/twofactor): the roles that must sign in with a TOTP code, as role values
# separated by commas; empty means optional for everyone. The env's TWO_FACTOR_REQUIRED_ROLES is the
# default until an admin saves the setting.
TWO_FACTOR_ROLES_KEY = "TWO_FACTOR_REQUIRED_ROLES"
TWO_FACTOR_DEFAULT_ROLES = "supervisor,admin"


def two_factor_required_roles(config: Mapping[str, Any]) -> frozenset[str]:
    """The roles that must use two-factor sign-in: the table's value over `config`'s over the default."""
    rows = stored()
    value = rows[TWO_FACTOR_ROLES_KEY] if TWO_FACTOR_ROLES_KEY in rows else config.get(TWO_FACTOR_ROLES_KEY)
    if value is None:
        value = TWO_FACTOR_DEFAULT_ROLES
    return frozenset(part.strip() for part in str(value).split(",") if part.strip())


# The settings column holds 200 characters.
SETTING_VALUE_LENGTH = 200


class Setting(db.Model):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


def stored() -> dict[str, str]:
    """Every stored setting (key → value), from this process's copy of the table (supervise/refdata.py)."""
    rows = db.select(Setting.key, Setting.value)
    return refdata.cached("settings", lambda: dict(db.session.execute(rows).all()))


def get_int(key: str, default: int) -> int:
    """The setting as an integer, or `default` when it is unset or not a number."""
    try:
        return int(stored()[key])
    except (KeyError, ValueError):
        return default


def set_value(key: str, value: Any) -> None:
    """Set a setting in the current transaction (the caller commits)."""
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=str(value)))
    else:
        row.value = str(value)


def deadline_settings(config: Mapping[str, Any]) -> dict[str, int]:
    """Every key of DEADLINE_SETTINGS: the table's values over `config`'s."""
    rows = stored()
    out = {}
    for key in DEADLINE_SETTINGS:
        try:
            out[key] = int(rows[key])
        except (KeyError, ValueError):
            out[key] = int(config[key])
    return out


def registration_settings(config: Mapping[str, Any]) -> dict[str, int]:
    """Every key of REGISTRATION_SETTINGS: the table's value, else the config's, else the default."""
    return {
        key: get_int(key, int(config.get(key, default)))
        for key, (_label, _low, _high, default) in REGISTRATION_SETTINGS.items()
    }


def text_settings(keys: Iterable[str], config: Mapping[str, Any]) -> dict[str, str]:
    """Each of `keys` as text: the table's value over `config`'s."""
    rows = stored()
    return {key: rows[key] if key in rows else str(config.get(key) or "") for key in keys}


def hotspot_threshold(config: Mapping[str, Any]) -> int:
    """HOTSPOT_THRESHOLD: the table's value over `config`'s over the default (5)."""
    _label, _low, _high, default = HOTSPOT_SETTINGS["HOTSPOT_THRESHOLD"]
    return get_int("HOTSPOT_THRESHOLD", int(config.get("HOTSPOT_THRESHOLD", default)))


def int_settings(table: Mapping[str, tuple[str, int, int, int]], config: Mapping[str, Any]) -> dict[str, int]:
    """Each key of a (label, lowest, highest, default) table: the table's value over `config`'s over
    the default."""
    return {key: get_int(key, int(config.get(key, default))) for key, (*_rest, default) in table.items()}


def report_min_sample(config: Mapping[str, Any]) -> int:
    """REPORT_MIN_SAMPLE: the weekly report's minimum sample for its threshold flags (default 5)."""
    return int_settings(REPORT_SETTINGS, config)["REPORT_MIN_SAMPLE"]
