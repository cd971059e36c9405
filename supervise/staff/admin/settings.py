"""Deadline settings (system-wide): working days for each stage, stored over the config's defaults;
and the submission limits per address (限流设置, supervise/intake/limits.py), a form of their own."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from supervise.intake.limits import parse_allowlist, parse_limit
from supervise.settings import (
    DEADLINE_SETTINGS,
    LIMIT_SETTINGS,
    SETTING_VALUE_LENGTH,
    deadline_settings,
    set_value,
    text_settings,
)
from supervise.staff.admin.common import bp, changes_between, commit_change, system_admin_required
from supervise.staff.auth import staff_required
from supervise.staff.models import Role


def _fields() -> dict[str, tuple[str, int, int]]:
    """DEADLINE_SETTINGS with each label in the request's language (translated here, not in the
    template: Jinja's `_()` %-formats, and two labels contain a literal %)."""
    return {key: (_(label), low, high) for key, (label, low, high) in DEADLINE_SETTINGS.items()}


def _read_form() -> tuple[dict[str, Any], dict[str, str]]:
    """Each setting as posted (a number when valid, the raw text otherwise) and the problems found."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, low, high) in _fields().items():
        raw = request.form.get(key, "").strip()
        values[key] = raw
        try:
            number = int(raw)
        except ValueError:
            errors[key] = _("%(label)s须为整数", label=label)
            continue
        if not low <= number <= high:
            errors[key] = _("%(label)s须在 %(low)s 到 %(high)s 之间", label=label, low=low, high=high)
            continue
        values[key] = number
    return values, errors


def _page(**context: Any) -> str:
    """The page with both forms; `context` holds what one of them re-shows after an error."""
    context.setdefault("fields", _fields())
    context.setdefault("values", deadline_settings(current_app.config))
    context.setdefault("errors", {})
    context.setdefault("limit_fields", {key: _(label) for key, label in LIMIT_SETTINGS.items()})
    context.setdefault("limit_values", text_settings(LIMIT_SETTINGS, current_app.config))
    context.setdefault("limit_errors", {})
    return render_template("staff/admin/settings.html", **context)


@bp.route("/settings", methods=["GET", "POST"])
@staff_required(Role.ADMIN)
@system_admin_required
def settings() -> ResponseReturnValue:
    current = deadline_settings(current_app.config)
    if request.method == "GET":
        return _page(values=current)
    values, errors = _read_form()
    if errors:
        return _page(values=values, errors=errors), 422
    changes = changes_between(current, values)
    if changes:
        for key, (_old, new) in changes.items():
            set_value(key, new)
        commit_change("settings.update", changes=changes)
        flash(_("设置已保存"))
    else:
        flash(_("设置没有变化"))
    return redirect(url_for("admin.settings"))


def _read_limits() -> tuple[dict[str, str], dict[str, str]]:
    """Each limit as posted (whitespace tidied) and the problems found."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, label in LIMIT_SETTINGS.items():
        raw = request.form.get(key, "")
        if key == "SUBMIT_ALLOWLIST":
            values[key] = "\n".join(raw.split())  # one entry a line, as the textarea shows them
            parser, example = parse_allowlist, "10.20.0.0/16=200/hour;1000/day"
        else:
            values[key] = raw.strip()
            parser, example = parse_limit, "20/hour;60/day"
        try:
            parser(values[key])
        except ValueError as exc:
            errors[key] = _(
                "%(label)s格式不对（%(entry)s），应如 %(example)s", label=_(label), entry=exc, example=example
            )
            continue
        if len(values[key]) > SETTING_VALUE_LENGTH:
            errors[key] = _("%(label)s不能超过 %(n)s 个字符", label=_(label), n=SETTING_VALUE_LENGTH)
    return values, errors


@bp.post("/settings/limits")
@staff_required(Role.ADMIN)
@system_admin_required
def limit_settings() -> ResponseReturnValue:
    current = text_settings(LIMIT_SETTINGS, current_app.config)
    values, errors = _read_limits()
    if errors:
        return _page(limit_values=values, limit_errors=errors), 422
    changes = changes_between(current, values)
    if changes:
        for key, (_old, new) in changes.items():
            set_value(key, new)
        commit_change("settings.update", changes=changes)
        flash(_("限流设置已保存，立即生效"))  # the commit bumped the reference-data stamp
    else:
        flash(_("设置没有变化"))
    return redirect(url_for("admin.settings") + "#limits")
