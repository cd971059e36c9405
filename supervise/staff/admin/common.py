"""What every admin section shares: the blueprint, the admin's scope, reading a posted form, and
recording a change together with its `admin_change` audit row."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, not_, select
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug.wrappers import Response

from supervise.extensions import db
from supervise.i18n import N_
from supervise.orgs.models import BODY_KINDS, Org
from supervise.orgs.routing import OrgTree
from supervise.staff import audit
from supervise.staff.auth import is_system_admin
from supervise.staff.models import User

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")

CALENDAR_KIND_LABELS = {"holiday": N_("节假日（放假）"), "workday": N_("调休上班")}
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# A shape check only (one @, a dot in the domain, no spaces): the mail server is the real judge.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254  # RFC 5321's limit for a path, and the column's length

Row = TypeVar("Row")


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    # The org kinds' labels are a global of every template (supervise.cases.labels.ORG_KIND_LABELS).
    return {"calendar_kind_labels": CALENDAR_KIND_LABELS}


def system_admin_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """For system-wide sections: only admins of a top-level org (others: 403, audited)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if not is_system_admin(current_user):
            audit.record(
                "access_denied", user=current_user, detail={"path": request.path, "why": "not system admin"}
            )
            db.session.commit()
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def no_store(response: Response) -> Response:
    """For pages that must not outlive the visit in a cache (a password shown once, live job data)."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- scope: an admin sees the subtree of their own org, anything else is 404 ------------------------
#
# The identity wall (DESIGN.md §2a): an admin whose own org is a *unit* never sees or administers a
# discipline body, even one that sits in the unit's subtree (a township's 纪委 hangs below the
# township), nor anything below such a body. For them those orgs are absent, like orgs elsewhere.


def admin_at_body() -> bool:
    """The signed-in admin's own org is a discipline body (only these set who supervises a unit)."""
    return current_user.org.is_body


def _walled_off_paths() -> list[str]:
    """The paths of the discipline bodies in the admin's subtree that the admin may not see (each
    with everything below it): all of them for an admin at a unit, none for one at a body."""
    if admin_at_body():
        return []
    return list(
        db.session.scalars(
            select(Org.path).where(
                Org.path.startswith(current_user.org.path, autoescape=True), Org.kind.in_(BODY_KINDS)
            )
        )
    )


def in_scope(org: Org | None) -> bool:
    if org is None or not org.path.startswith(current_user.org.path):
        return False
    return not any(org.path.startswith(walled) for walled in _walled_off_paths())


def org_in_scope() -> ColumnElement[bool]:
    """The same test as `in_scope`, for a query that joins `Org`."""
    return and_(
        Org.path.startswith(current_user.org.path, autoescape=True),
        *(not_(Org.path.startswith(walled, autoescape=True)) for walled in _walled_off_paths()),
    )


def subtree_orgs() -> list[Org]:
    return list(db.session.scalars(select(Org).where(org_in_scope()).order_by(Org.path)))


def intake_warnings() -> list[str]:
    """One line per active discipline body in the admin's scope that nobody can receive at: cases
    about its units route past it to the body above (DESIGN.md §2a) until it has an intake account."""
    tree = OrgTree.load(db.session)
    lacking = {node.id: node for node in tree.bodies_without_intake()}
    if not lacking:
        return []
    visible = db.session.scalars(select(Org).where(Org.id.in_(lacking), org_in_scope()).order_by(Org.path))
    return [
        _("%(org)s：没有在职的受理员账号，反映给它的诉求将由上一级纪检监察机构受理", org=org.name)
        if tree.body_above(org.id) != org.id
        else _("%(org)s：没有在职的受理员账号，反映给它的诉求无人受理，请尽快设置受理员账号", org=org.name)
        for org in visible
    ]


def get_in_scope_or_404(
    model: type[Row], row_id: Any, org_of: Callable[[Row], Org | None] = lambda row: row.org
) -> Row:
    """The row `row_id` of `model` if its org (per `org_of`) is in the admin's subtree; else 404.

    `row_id` may come straight from a form field, so anything that is not a number is 404 too."""
    try:
        row = db.session.get(model, int(row_id))
    except (TypeError, ValueError):
        row = None
    if row is None or not in_scope(org_of(row)):
        abort(404)
    return row


def org_or_404(org_id: Any) -> Org:
    return get_in_scope_or_404(Org, org_id, lambda org: org)


# -- reading a posted form --------------------------------------------------------------------------


class Form:
    """The posted form, read field by field; each problem lands in `errors` (field → message) so a
    page can show them all at once rather than one per submit.

    Labels are msgids (`N_("单位名称")`); messages come out in the request's language."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def text(self, name: str, label: str, max_len: int, required: bool = True) -> str:
        value = request.form.get(name, "").strip()
        if required and not value:
            self.errors[name] = _("请填写%(label)s", label=_(label))
        elif len(value) > max_len:
            self.errors[name] = _("%(label)s不能超过 %(n)s 个字", label=_(label), n=max_len)
        return value

    def identifier(
        self, name: str, label: str, pattern: re.Pattern[str], malformed: str, column: InstrumentedAttribute
    ) -> str:
        """A code or user name: required, of `pattern`'s shape, not yet used in `column`."""
        value = self.text(name, label, 64)
        if value and name not in self.errors:
            if not pattern.match(value):
                self.errors[name] = _(malformed)
            elif db.session.scalar(select(column).where(column == value)):
                self.errors[name] = _("该%(label)s已被使用", label=_(label))
        return value

    def choice(self, name: str, allowed: Iterable[str], message: str, required: bool = True) -> str:
        value = request.form.get(name, "")
        if (required or value) and value not in allowed:
            self.errors[name] = _(message)
        return value

    def email(self) -> str | None:
        """The optional e-mail address (escalations and reports go there); None when left empty."""
        value = request.form.get("email", "").strip()
        if not value:
            return None
        if len(value) > MAX_EMAIL:
            self.errors["email"] = _("电子邮箱不能超过 %(n)s 个字符", n=MAX_EMAIL)
        elif not EMAIL_RE.match(value):
            self.errors["email"] = _("请填写有效的电子邮箱，如 name@example.org")
        return value


def form_page(
    template: str, errors: dict[str, str] | None, status: int, **context: Any
) -> ResponseReturnValue:
    """A section's page with its create form; after a refused POST the form keeps what was typed."""
    return render_template(template, errors=errors or {}, form=request.form, **context), status


# -- recording a change -----------------------------------------------------------------------------


def record_change(what: str, /, **detail: Any) -> None:
    """The audit row of an admin change, in the change's own transaction (the caller commits)."""
    audit.record("admin_change", user=db.session.get(User, current_user.id), detail={"what": what, **detail})


def commit_change(what: str, /, **detail: Any) -> None:
    record_change(what, **detail)
    db.session.commit()


def saved(what: str, message: str, endpoint: str, /, **detail: Any) -> Response:
    """Commit the change with its audit row, say so (`message` already in the request's language),
    and go back to the section's page."""
    commit_change(what, **detail)
    flash(message)
    return redirect(url_for(endpoint))


def refused(endpoint: str, *messages: str) -> Response:
    """Back to the section's page with why nothing was changed (for forms inside a list's rows,
    which have no page of their own to re-render)."""
    flash(_("；").join(messages), "error")
    return redirect(url_for(endpoint))


def changes_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """What an edit changes, as the audit row keeps it: field → [old, new]."""
    return {key: [old[key], value] for key, value in new.items() if old[key] != value}


def toggle_active(
    row: Any,
    endpoint: str,
    label: str,
    what: str,
    /,
    *,
    verbs: tuple[str, str] = ("activate", "deactivate"),
    refuse_disable: str | None = None,
    on_disable: Callable[[], None] | None = None,
    **detail: Any,
) -> Response:
    """The 启用/停用 form of a row: `what`.activate or `what`.deactivate (or other `verbs`) when it
    changes anything; `refuse_disable` says why this row may not be disabled (e.g. one's own).
    `label` names the row on screen, already in the request's language."""
    active = request.form.get("active") == "1"
    if not active and refuse_disable:
        return refused(endpoint, refuse_disable)
    if row.active != active:
        row.active = active
        if not active and on_disable is not None:
            on_disable()
        commit_change(f"{what}.{verbs[0] if active else verbs[1]}", **detail)
    # Two whole sentences rather than a verb spliced in: word order differs between languages.
    flash(_("%(label)s 已启用", label=label) if active else _("%(label)s 已停用", label=label))
    return redirect(url_for(endpoint))
