"""Deadline settings (system-wide): working days for each stage, stored over the config's defaults;
and the submission limits per address (限流设置, supervise/intake/limits.py), a form of their own."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from supervise.intake.limits import parse_allowlist, parse_limit
from supervise.settings import (
    ASSESSMENT_SETTINGS,
    ASSESSMENT_WEIGHTS,
    DEADLINE_SETTINGS,
    HOTSPOT_SETTINGS,
    LIMIT_SETTINGS,
    RECEIPT_PHONE_LENGTH,
    RECEIPT_SETTINGS,
    REGISTRATION_SETTINGS,
    REPORT_SETTINGS,
    SETTING_VALUE_LENGTH,
    TWO_FACTOR_ROLES_KEY,
    deadline_settings,
    hotspot_threshold,
    int_settings,
    registration_settings,
    set_value,
    text_settings,
    two_factor_required_roles,
)
from supervise.staff.admin.common import bp, changes_between, commit_change, system_admin_required
from supervise.staff.auth import staff_required
from supervise.staff.models import ROLE_ORDER, Role


def _fields() -> dict[str, tuple[str, int, int]]:
    """DEADLINE_SETTINGS with each label in the request's language (translated here, not in the
    template: Jinja's `_()` %-formats, and two labels contain a literal %)."""
    return {key: (_(label), low, high) for key, (label, low, high) in DEADLINE_SETTINGS.items()}


def _read_form() -> tuple[dict[str, Any], dict[str, str]]:
    """Each setting as posted (a number when valid, the raw text otherwise) and the problems found."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, low, high) in _fields().items():
        values[key], problem = _whole_number(request.form.get(key, "").strip(), label, low, high)
        if problem:
            errors[key] = problem
    return values, errors


def _whole_number(raw: str, label: str, low: int, high: int) -> tuple[Any, str | None]:
    """A posted number: (the number, None) when valid, else (the text as typed, the problem)."""
    try:
        number = int(raw)
    except ValueError:
        return raw, _("%(label)s须为整数", label=label)
    if not low <= number <= high:
        return raw, _("%(label)s须在 %(low)s 到 %(high)s 之间", label=label, low=low, high=high)
    return number, None


def _page(**context: Any) -> str:
    """The page with both forms; `context` holds what one of them re-shows after an error."""
    context.setdefault("fields", _fields())
    context.setdefault("values", deadline_settings(current_app.config))
    context.setdefault("errors", {})
    context.setdefault("limit_fields", {key: _(label) for key, label in LIMIT_SETTINGS.items()})
    context.setdefault("limit_values", text_settings(LIMIT_SETTINGS, current_app.config))
    context.setdefault("limit_errors", {})
    context.setdefault("registration_fields", _registration_fields())
    context.setdefault("registration_values", _registration_values())
    context.setdefault("registration_errors", {})
    context.setdefault("hotspot_fields", _hotspot_fields())
    context.setdefault("hotspot_values", {"HOTSPOT_THRESHOLD": hotspot_threshold(current_app.config)})
    context.setdefault("hotspot_errors", {})
    context.setdefault("two_factor", _two_factor_context())
    context.setdefault("sms_fields", _sms_fields())  # 短信模板 (issue 18, below)
    context.setdefault("sms_values", _sms_values())
    context.setdefault("sms_errors", {})
    for section, table in _INT_SECTIONS.items():  # 通报最少样本, 考核权重: whole numbers, bounds, defaults
        context.setdefault(f"{section}_fields", _int_fields(table))
        context.setdefault(f"{section}_values", int_settings(table, current_app.config))
        context.setdefault(f"{section}_errors", {})
    return render_template("staff/admin/settings.html", **context)


def _save(
    current: dict[str, Any], values: dict[str, Any], section: str = "", saved: str | None = None
) -> ResponseReturnValue:
    """Store what changed (audited; the commit bumps the reference-data stamp, so every process
    uses it from its next request) and go back to the settings page at `section`."""
    changes = changes_between(current, values)
    if changes:
        for key, (_old, new) in changes.items():
            set_value(key, new)
        commit_change("settings.update", changes=changes)
        flash(saved or _("设置已保存"))
    else:
        flash(_("设置没有变化"))
    return redirect(url_for("admin.settings") + (f"#{section}" if section else ""))


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
    return _save(current, values)


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
    return _save(current, values, "limits", _("限流设置已保存，立即生效"))


# -- 登记与回执: the back-dating limit of a registration and the phone number on its slip ----------------


def _registration_fields() -> dict[str, tuple[str, int | None, int | None]]:
    """The form's fields in the reader's language: (label, lowest, highest); text has no bounds."""
    fields: dict[str, tuple[str, int | None, int | None]] = {
        key: (_(label), low, high) for key, (label, low, high, _default) in REGISTRATION_SETTINGS.items()
    }
    fields.update({key: (_(label), None, None) for key, label in RECEIPT_SETTINGS.items()})
    return fields


def _registration_values() -> dict[str, Any]:
    return {
        **registration_settings(current_app.config),
        **text_settings(RECEIPT_SETTINGS, current_app.config),
    }


def _read_registration() -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, low, high) in _registration_fields().items():
        raw = request.form.get(key, "").strip()
        if low is None:  # the phone number: free text, printed as it is (escaped), one line
            values[key], problem = raw, None
            if len(raw) > RECEIPT_PHONE_LENGTH or any(ord(ch) < 32 for ch in raw):
                problem = _("%(label)s不能超过 %(n)s 个字符", label=label, n=RECEIPT_PHONE_LENGTH)
        else:
            values[key], problem = _whole_number(raw, label, low, high)
        if problem:
            errors[key] = problem
    return values, errors


@bp.post("/settings/registration")
@staff_required(Role.ADMIN)
@system_admin_required
def registration_settings_form() -> ResponseReturnValue:
    current = _registration_values()
    values, errors = _read_registration()
    if errors:
        return _page(registration_values=values, registration_errors=errors), 422
    return _save(current, values, "registration")


# -- 热点提示: how many complaints in 30 days flag a unit to its discipline body (cases/hotspots.py) -----


def _hotspot_fields() -> dict[str, tuple[str, int, int]]:
    return {key: (_(label), low, high) for key, (label, low, high, _default) in HOTSPOT_SETTINGS.items()}


@bp.post("/settings/hotspots")
@staff_required(Role.ADMIN)
@system_admin_required
def hotspot_settings_form() -> ResponseReturnValue:
    current = {"HOTSPOT_THRESHOLD": hotspot_threshold(current_app.config)}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, low, high) in _hotspot_fields().items():
        values[key], problem = _whole_number(request.form.get(key, "").strip(), label, low, high)
        if problem:
            errors[key] = problem
    if errors:
        return _page(hotspot_values=values, hotspot_errors=errors), 422
    return _save(current, values, "hotspots")


# -- 通报最少样本 and 考核: whole-number settings with a default (REPORT_SETTINGS, ASSESSMENT_SETTINGS) ------

_INT_SECTIONS = {"report": REPORT_SETTINGS, "assessment": ASSESSMENT_SETTINGS}


def _int_fields(table: dict[str, tuple[str, int, int, int]]) -> dict[str, tuple[str, int, int]]:
    return {key: (_(label), low, high) for key, (label, low, high, _default) in table.items()}


def _int_section(section: str) -> ResponseReturnValue:
    table = _INT_SECTIONS[section]
    current = int_settings(table, current_app.config)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, low, high) in _int_fields(table).items():
        values[key], problem = _whole_number(request.form.get(key, "").strip(), label, low, high)
        if problem:
            errors[key] = problem
    weights = [values[key] for key in ASSESSMENT_WEIGHTS if section == "assessment"]
    if weights and not errors and sum(weights) == 0:  # nothing left to score with
        errors["ASSESS_WEIGHT_ON_TIME"] = _("考核权重不能全部为 0")
    if errors:
        return _page(**{f"{section}_values": values, f"{section}_errors": errors}), 422
    return _save(current, values, section)


@bp.post("/settings/report")
@staff_required(Role.ADMIN)
@system_admin_required
def report_settings_form() -> ResponseReturnValue:
    return _int_section("report")


@bp.post("/settings/assessment")
@staff_required(Role.ADMIN)
@system_admin_required
def assessment_settings_form() -> ResponseReturnValue:
    return _int_section("assessment")


# -- 两步验证: the roles that must sign in with a TOTP code (supervise/staff/twofactor) ------------------


def _two_factor_context(
    chosen: list[str] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    from supervise.staff.services import ROLE_LABELS

    if chosen is None:
        chosen = sorted(two_factor_required_roles(current_app.config))
    return {
        "roles": [(role.value, _(ROLE_LABELS[role.value])) for role in ROLE_ORDER],
        "chosen": chosen,
        "errors": errors or {},
    }


@bp.post("/settings/two-factor")
@staff_required(Role.ADMIN)
@system_admin_required
def two_factor_settings_form() -> ResponseReturnValue:
    from supervise.staff.twofactor.services import parse_roles

    current = {TWO_FACTOR_ROLES_KEY: ",".join(parse_roles(two_factor_required_roles(current_app.config)))}
    posted = request.form.getlist("role")
    try:
        roles = parse_roles(posted)
    except ValueError as exc:
        errors = {"role": _("没有这个角色：%(roles)s", roles=str(exc))}
        return _page(two_factor=_two_factor_context(posted, errors)), 422
    return _save(current, {TWO_FACTOR_ROLES_KEY: ",".join(roles)}, "two-factor")


# -- 短信模板 (issue 18, supervise/notify/sms.py): each message kind's approved template over the env ---


def _sms_fields() -> dict[str, tuple[str, str, str]]:
    """key → (label, the env's template shown as the default, the parameters the kind offers)."""
    from supervise.notify import sms

    gateway = current_app.config.get("SMS_GATEWAY", "log")
    try:
        env = sms.parse_templates(current_app.config.get("SMS_TEMPLATES", ""), gateway)
    except ValueError:
        env = {}
    return {
        sms.setting_key(kind): (
            _(sms.KIND_LABELS[kind]),
            env[kind].spec() if kind in env else "",
            _("、").join(name for name in params if name != "link"),
        )
        for kind, params in sms.KIND_PARAMS.items()
    }


def _sms_values() -> dict[str, str]:
    return text_settings(_sms_fields(), {})


@bp.post("/settings/sms")
@staff_required(Role.ADMIN)
@system_admin_required
def sms_settings_form() -> ResponseReturnValue:
    """Checked as the configured provider will send them (its id format, the kind's parameters,
    the provider's variable lengths); empty uses SMS_TEMPLATES."""
    from supervise.notify import sms

    gateway = current_app.config.get("SMS_GATEWAY", "log")
    current = _sms_values()
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for kind in sms.KIND_PARAMS:
        key = sms.setting_key(kind)
        values[key] = " ".join(request.form.get(key, "").split())
        if not values[key]:
            continue
        if len(values[key]) > SETTING_VALUE_LENGTH:
            errors[key] = _("不能超过 %(n)s 个字符", n=SETTING_VALUE_LENGTH)
            continue
        try:
            values[key] = sms.parse_template(kind, values[key], gateway).spec()
        except ValueError as exc:
            errors[key] = _("%(label)s：%(problem)s", label=_(sms.KIND_LABELS[kind]), problem=str(exc))
    if errors:
        return _page(sms_values=values, sms_errors=errors), 422
    return _save(current, values, "sms", _("短信模板已保存，立即生效"))
