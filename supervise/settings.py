"""System settings an admin edits at run time (the deadline rules of DESIGN.md §4).

One row a key in `settings`; a key with no row falls back to the app config, so a fresh install
behaves as configured until an admin changes something.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

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


class Setting(db.Model):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


def get_int(key: str, default: int) -> int:
    """The setting as an integer, or `default` when it is unset or not a number."""
    row = db.session.get(Setting, key)
    if row is None:
        return default
    try:
        return int(row.value)
    except ValueError:
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
    rows = {
        row.key: row.value
        for row in db.session.scalars(db.select(Setting).where(Setting.key.in_(DEADLINE_SETTINGS)))
    }
    out = {}
    for key in DEADLINE_SETTINGS:
        try:
            out[key] = int(rows[key])
        except (KeyError, ValueError):
            out[key] = int(config[key])
    return out
