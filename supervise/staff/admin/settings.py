"""Deadline settings (system-wide): working days for each stage, stored over the config's defaults."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from supervise.settings import DEADLINE_SETTINGS, deadline_settings, set_value
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


@bp.route("/settings", methods=["GET", "POST"])
@staff_required(Role.ADMIN)
@system_admin_required
def settings() -> ResponseReturnValue:
    current = deadline_settings(current_app.config)
    if request.method == "GET":
        return render_template("staff/admin/settings.html", fields=_fields(), values=current, errors={})
    values, errors = _read_form()
    if errors:
        return render_template(
            "staff/admin/settings.html", fields=_fields(), values=values, errors=errors
        ), 422
    changes = changes_between(current, values)
    if changes:
        for key, (_old, new) in changes.items():
            set_value(key, new)
        commit_change("settings.update", changes=changes)
        flash(_("设置已保存"))
    else:
        flash(_("设置没有变化"))
    return redirect(url_for("admin.settings"))
