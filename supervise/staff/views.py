"""Staff pages (/staff): sign-in, work queues, the case page and its actions, the audit log.

Thin views: parse the form with the API's marshmallow schemas, call one service, render. Every
POST here is CSRF-protected (Flask-WTF); nothing changes state on GET.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import func, select, update

from supervise.accountability.services import case_block as summary_block
from supervise.cases import duplicates, services
from supervise.cases.labels import DISPOSAL_LABELS, KIND_LABELS, REJECT_REASON_LABELS
from supervise.cases.models import Case
from supervise.cases.queries import (
    Filters,
    count_label,
    filter_orgs,
    queue_count,
    queue_counts,
    queue_page,
    queues_for,
)
from supervise.cases.schemas import ActionSchema, QueueArgsSchema
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.escalations import escalation_page
from supervise.errors import Conflict, DomainError, InvalidInput, NotFound, TooManyAttempts
from supervise.extensions import db
from supervise.i18n import N_
from supervise.intake.files import signed_url
from supervise.notify.channels import notice_title
from supervise.notify.models import Notification
from supervise.orgs.models import BODY_KINDS, Org
from supervise.orgs.routing import OrgTree
from supervise.staff import audit
from supervise.staff.auth import (
    attempt_login,
    authenticate,
    end_sessions,
    hold_second_step,
    is_system_admin,
    remember_device,
    sign_in,
    sign_out,
    staff_required,
)
from supervise.staff.identity import may_reveal, reveal_identity
from supervise.staff.models import AuditEntry, ReplyTemplate, Role, User
from supervise.staff.services import ROLE_LABELS, check_password_policy
from supervise.staff.twofactor import services as twofactor

bp = Blueprint("staff", __name__, url_prefix="/staff")

QUEUE_LABELS = {
    "intake": N_("待受理"),
    "dispatch": N_("待转办/待交办"),
    "in_progress": N_("办理中"),
    "review": N_("待审核"),
    "due_soon": N_("即将超期"),
    "overdue": N_("已超期"),
    "escalated": N_("督办件"),
    "rejected": N_("不予受理复核"),
    "done": N_("已办结"),
    "mine": N_("我的待办"),
}
# Query parameters of every staff page that are not the queue's filters: the language switch.
NOT_FILTERS = ("lang",)


def actor() -> Actor:
    return Actor.staff(current_user)


@bp.app_context_processor
def _staff_header():
    # Templates also render outside requests (posters in a zip): no user there.
    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return {"role_labels": ROLE_LABELS}
    unread = db.session.scalar(
        select(func.count(Notification.id)).where(
            Notification.user_id == current_user.id, Notification.read_at.is_(None)
        )
    )
    open_escalations = None
    if current_user.has_role(Role.SUPERVISOR, Role.ADMIN):
        # The 督办件 tab's own count (open cases under 督办 in this person's scope), capped as the
        # tab is: the header and the tab cannot disagree (one 督办 per case, not one per late clock
        # and level); shown as the tab shows it ("999+").
        escalated = queue_count(db.session, actor(), "escalated", None, utcnow())
        open_escalations = count_label(escalated) if escalated else None
    return {
        "unread_notifications": unread,
        "open_escalations": open_escalations,
        "role_labels": ROLE_LABELS,
        "has_admin": "admin" in current_app.blueprints,
    }


# -- signing in -------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    parts = urlsplit(target or "")
    if target and not parts.scheme and not parts.netloc and target.startswith("/staff"):
        # A case form sent after the session ended names its POST-only URL: back to the case
        # page, where the saved draft is restored (issue 13).
        return (
            target.removesuffix("/act").removesuffix("/draft")
            if target.startswith("/staff/cases/")
            else target
        )
    return url_for("staff.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("staff/login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    try:
        user = attempt_login(username, request.form.get("password", ""))
    except TooManyAttempts as exc:
        audit.record("login_throttled", username=username[:64])
        db.session.commit()
        page = render_template("staff/login.html", error=exc.message, username=username)
        return page, 429
    if user is None:
        # One message whether the name exists or not: no username enumeration.
        audit.record("login_failed", username=username[:64])
        db.session.commit()
        return render_template(
            "staff/login.html",
            error=N_("用户名或密码不正确"),
            username=username,
            next=request.form.get("next", ""),
        ), 401
    if twofactor.is_enabled(user):
        # Not signed in yet: the code comes first (supervise/staff/twofactor/views.py).
        hold_second_step(user, request.form.get("next"))
        return redirect(url_for("staff.login_code"))
    sign_in(user)
    response = redirect(_safe_next(request.form.get("next")))
    remember_device(response, user.username)
    return response


@bp.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("staff.login"))


@bp.route("/password", methods=["GET", "POST"])
@staff_required()
def password():
    if request.method == "GET":
        return render_template("staff/password.html")
    from werkzeug.security import generate_password_hash

    current, new = request.form.get("current", ""), request.form.get("new", "")
    if authenticate(current_user.username, current) is None:
        return render_template("staff/password.html", error=N_("当前密码不正确")), 422
    if new != request.form.get("confirm", ""):
        return render_template("staff/password.html", error=N_("两次输入的新密码不一致")), 422
    try:
        check_password_policy(new, current_user.username)
    except InvalidInput as exc:
        return render_template("staff/password.html", error=exc.message), 422
    user = db.session.get(User, current_user.id)
    user.password_hash = generate_password_hash(new, current_app.config["PASSWORD_HASH_METHOD"])
    user.password_must_change = False
    end_sessions(user, keep_current=True)  # every other browser signed in as this user is out
    audit.record("password_changed", user=user)
    db.session.commit()
    flash(_("密码已修改，其他设备上的登录和 API 令牌已失效"))
    return redirect(url_for("staff.queue"))


# -- queues ---------------------------------------------------------------------------------------


@bp.get("/")
@staff_required()
def queue():
    """The work queues as tabs with live counts, filters and keyset pages."""
    raw = {k: v for k, v in request.args.items() if v.strip() != "" and k not in NOT_FILTERS}
    errors = {}
    try:
        args = QueueArgsSchema().load(raw)
    except ValidationError as exc:
        errors, args = exc.messages, QueueArgsSchema().load({})
    args["queue"] = args["queue"] or _default_queue()
    ctx = services.make_context()
    me = actor()
    cursor, limit = args.pop("cursor"), args.pop("limit") or current_app.config["PAGE_SIZE"]
    rows, next_cursor = queue_page(
        db.session, me, ctx.clocks, ctx.now, Filters(**args), cursor=cursor, limit=limit
    )
    raw.pop("cursor", None)  # the next-page link sets its own
    handlers = _handlers(me.org_id)
    return render_template(
        "staff/queue.html",
        rows=services.summary_views(rows, ctx.clocks, ctx.now, me),
        next_cursor=next_cursor,
        counts={q: count_label(n) for q, n in queue_counts(db.session, me, ctx.clocks, ctx.now).items()},
        queues=queues_for(me),
        queue_labels=QUEUE_LABELS,
        args=args,
        raw=raw,
        errors=errors,
        categories=services.categories(),
        orgs=filter_orgs(db.session, me),
        handlers=handlers,
        bulk=_bulk_action(args["queue"], me, handlers),
        at_unit=not me.at_body,  # no 仅实名 filter at a unit: it would tell named from anonymous
    )


def _bulk_action(queue: str, me: Actor, handlers: list[User]) -> str | None:
    """The one bulk action that can work on every case of this tab for this person, or None:
    受理 on 待受理 (intake at a body); 交办 on 待转办/待交办 (intake or a supervisor at a body, a
    unit's leader), when there is a handler to give the cases to. Elsewhere the table's rules
    would refuse most rows, so nothing is offered."""
    if queue == "intake" and me.at_body and me.has(Role.INTAKE):
        return "accept"
    assigners = (Role.INTAKE, Role.SUPERVISOR) if me.at_body else (Role.LEADER,)
    if queue == "dispatch" and handlers and me.has(*assigners):
        return "assign"
    return None


def _handlers(org_id: int) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.org_id == org_id, User.holding(Role.HANDLER), User.active.is_(True))
            .order_by(User.username)
        )
    )


def _default_queue() -> str:
    """The tab a person's work starts in: intake's new cases, a leader's unassigned ones, a
    supervisor's drafts to review, a handler's own."""
    for role, queue in (
        (Role.INTAKE, "intake"),
        (Role.LEADER, "dispatch"),
        (Role.SUPERVISOR, "review"),
        (Role.HANDLER, "mine"),
    ):
        if current_user.has_role(role):
            return queue
    return "intake"


BULK_DONE = {"accept": N_("已受理"), "assign": N_("已交办")}
BULK_FAILED = {"accept": N_("未能受理"), "assign": N_("未能交办")}


def _bulk(action: str, extra: dict[str, str]):
    """Run one workflow action on each selected case, each with the version its row showed (a
    case someone changed meanwhile fails alone, the others go through), one event per case; then
    say, case by case, what happened."""
    selected = request.form.getlist("case")
    back = _safe_next(request.form.get("back"))
    if not selected:
        flash(_("请先选择案件"), "error")
        return redirect(back)
    done, failed = [], []
    for item in selected:
        ref, _sep, version = item.partition(":")
        try:
            services.perform_action(ref, actor(), {"action": action, "version": int(version), **extra})
            done.append(ref)
        except (DomainError, ValueError) as exc:
            db.session.rollback()
            failed.append(
                _("%(ref)s（%(why)s）", ref=ref, why=_(getattr(exc, "message", None) or N_("版本无效")))
            )
    if done:
        flash(
            _("%(what)s %(n)d 件：%(refs)s", what=_(BULK_DONE[action]), n=len(done), refs=_("、").join(done))
        )
    if failed:
        flash(
            _("%(what)s %(n)d 件：", what=_(BULK_FAILED[action]), n=len(failed)) + _("；").join(failed),
            "error",
        )
    return redirect(back)


@bp.post("/bulk-assign")
@staff_required(Role.INTAKE, Role.SUPERVISOR, Role.LEADER)
def bulk_assign():
    """Assign several cases at once to one handler."""
    return _bulk("assign", {"user": request.form.get("user", "")})


@bp.post("/bulk-accept")
@staff_required(Role.INTAKE)
def bulk_accept():
    """受理 several new cases at once, each with its category's default 定性; with a handler
    chosen, 受理并交办 in the same step (one accept and one assign event per case)."""
    user = request.form.get("user", "")
    return _bulk("accept", {"user": user} if user else {})


# -- one case ---------------------------------------------------------------------------------------


def _transfer_choices(case: Case) -> list[dict]:
    """Where this case may go (DESIGN.md §2a): bodies that can receive it; for anything but a
    检举控告 case also units with a leader to sign for it. The subject unit comes first."""
    if "transfer" not in services.workflow.allowed_actions(case, actor()):
        return []
    tree = OrgTree.load(db.session)
    choices = []
    candidates = select(Org).where(Org.active.is_(True), Org.id != case.org_id).order_by(Org.path)
    for org in db.session.scalars(candidates):
        if org.is_body and tree.can_receive(org.id):
            choices.append({"org": org, "note": N_("纪检监察机构")})
        elif not org.is_body and case.kind not in (None, "accusation") and tree.has_role(org.id, Role.LEADER):
            note = N_("被反映单位") if org.id == case.subject_org_id else N_("单位")
            choices.append({"org": org, "note": note})
    choices.sort(key=lambda c: c["org"].id != case.subject_org_id)
    return choices


def _case_page(
    ref: str,
    status: int = 200,
    identity=None,
    errors=None,
    *,
    failed: dict | None = None,
    confirm_publish: str | None = None,
    confirm_merge: str | None = None,
):
    """The case page. `failed`: the form just sent (its action and values), shown again with its
    errors beside its fields and nothing the person typed lost; `confirm_publish`: the text a
    reviewer is about to publish, for the confirmation step (works without JS)."""
    me = actor()
    case = services.case_for_actor(ref, me)
    view = services.detail_view(case, me)
    ctx = services.make_context()
    errors = errors or {}
    # Only field messages are shown by their fields; machine-readable details (status codes,
    # allowed_actions) never reach the page.
    # Messages are Chinese msgids (N_ where raised) and are translated here, as plain text: one
    # with data in it (an org's name) is no catalog entry and stays as it is.
    field_errors = {
        k: [_(m) if isinstance(m, str) else m for m in v]
        for k, v in errors.items()
        if k != "_" and isinstance(v, list)
    }
    choices, handlers = _transfer_choices(case), _handlers(case.org_id)
    return (
        render_template(
            "staff/case.html",
            case=case,
            view=view,
            identity=identity,
            at_unit=not me.at_body,
            may_reveal=case.real_name and may_reveal(me, case),
            errors={"_": [_(m) for m in errors.get("_", [])]} | field_errors,
            failed=failed or {},
            confirm_publish=confirm_publish,
            confirm_merge=confirm_merge,  # 合并到此件 from a suggestion: its confirmation step
            duplicates=duplicates.case_page(case, me, view["allowed_actions"]),
            publish_summary=summary_block(db.session, case, me),  # 公开摘要 (accountability)
            drafts=services.drafts_for(case, me),
            photos=[{"url": signed_url(a), "thumb_url": signed_url(a, thumb=True)} for a in case.attachments],
            transfer_choices=choices,
            transfer_default=_transfer_default(case, choices),
            options=_options(choices, handlers),
            field_labels=FIELD_LABELS,
            reversible_until=services.workflow.rejection_reversible_until(ctx, case),
            default_kind=case.kind or case.category.default_kind or "service",
            handlers=handlers,
            templates=db.session.scalars(
                select(ReplyTemplate).where(ReplyTemplate.org_id == case.org_id).order_by(ReplyTemplate.title)
            ).all(),
        ),
        status,
    )


# What a field is called in an error summary (its message sits beside the field itself too).
FIELD_LABELS = {
    "text": N_("答复或留言内容"),
    "reason": N_("理由"),
    "reason_code": N_("不予受理的理由"),
    "kind": N_("定性"),
    "user": N_("承办人"),
    "org": N_("转至"),
    "note": N_("转办说明"),
    "into": N_("合并到查询编号"),
    "days": N_("延长工作日"),
    "disposal": N_("处置方式"),
    "disposal_note": N_("处置理由"),
    "version": N_("版本"),
}


def _options(choices: list[dict], handlers: list[User]) -> dict[str, list[tuple[str, str]]]:
    """The case page's select lists as (value, label) pairs, labels in the reader's language."""
    return {
        "kind": [(k, _(v)) for k, v in KIND_LABELS.items()],
        "disposal": [(k, _(v)) for k, v in DISPOSAL_LABELS.items()],
        "reject": [(k, _(v)) for k, v in REJECT_REASON_LABELS.items()],
        "handlers": [(h.username, h.display_name) for h in handlers],
        "transfer": [
            (c["org"].code, _("%(name)s（%(note)s）", name=c["org"].name, note=_(c["note"]))) for c in choices
        ],
    }


def _transfer_default(case: Case, choices: list[dict]) -> str | None:
    """Not asked twice: a case that was with a unit before goes back to that unit unless told
    otherwise (the unit it was last transferred to); else the subject unit, listed first."""
    codes = {c["org"].code for c in choices}
    for event in reversed(case.events):
        if event.action == "transfer" and (event.data or {}).get("to_org") in codes:
            return event.data["to_org"]
    return None  # the first choice (the subject unit, if it may receive it)


@bp.get("/cases/<ref>")
@staff_required()
def case(ref: str):
    return _case_page(ref)


def failed_form(sent: dict[str, str]) -> dict[str, str]:
    """What a form sent, to show it again as it was (`form` names which of an action's forms)."""
    return {"form": sent.get("form") or sent.get("action", ""), **sent}


def _template_text(ref: str, template_id: str | None) -> str | None:
    if not template_id or not template_id.isdigit():
        return None
    template = db.session.get(ReplyTemplate, int(template_id))
    if template is not None and template.org_id == services.case_for_actor(ref, actor()).org_id:
        return template.body
    return None


@bp.post("/cases/<ref>/act")
@staff_required()
def act(ref: str):
    sent = {k: v for k, v in request.form.items() if k != "csrf_token"}
    form = {k: v for k, v in sent.items() if v.strip() != ""}
    for number in ("version", "days"):  # HTML forms send text; the API schema wants integers
        if form.get(number, "").isdigit():
            form[number] = int(form[number])
    template_text = _template_text(ref, form.pop("template", None))
    form.pop("form", None)  # which of an action's forms was sent: for showing errors beside it
    if form.pop("use_template", None):
        # 使用模板 without JS: the same form again, the template's text in the box, nothing done.
        return _case_page(ref, failed=failed_form(sent) | {"text": template_text or sent.get("text", "")})
    if form.get("action") == "feedback" and not form.get("text") and template_text:
        form["text"] = template_text
    if form.get("action") == "publish" and not form.pop("confirmed", None):
        # One more step before the citizen sees it: the exact text, then 确认发布.
        return _case_page(ref, confirm_publish={"text": form.get("text")}, failed=failed_form(sent))
    if form.get("action") == "merge" and sent.get("form") == "merge_suggested" and not form.get("confirmed"):
        # 合并到此件 (a suggested duplicate): what it joins and what follows, then 确认合并.
        return _case_page(ref, confirm_merge=form.get("into", ""), failed=failed_form(sent))
    form.pop("confirmed", None)
    failed = failed_form(sent)
    try:
        args = ActionSchema().load(form)
        services.perform_action(ref, actor(), args)
    except ValidationError as exc:
        return _case_page(ref, 422, errors=exc.messages, failed=failed)
    except Conflict as exc:
        db.session.rollback()
        return _case_page(ref, 409, errors={"_": [exc.message]}, failed=failed)
    except DomainError as exc:
        db.session.rollback()
        fields = {k: v for k, v in exc.details.items() if isinstance(v, list) and k != "allowed_actions"}
        return _case_page(ref, exc.status, errors=fields or {"_": [exc.message]}, failed=failed)
    flash(_("已保存"))
    return redirect(url_for("staff.case", ref=ref))


@bp.post("/cases/<ref>/draft")
def draft(ref: str):
    """Autosave (case.js): keep what this person typed in one form of this case. A JSON answer,
    401 once the session has ended, so the page can say the draft is no longer being saved."""
    if not current_user.is_authenticated:
        return {"error": {"code": "unauthorized", "message": "登录已超时，请重新登录后继续"}}, 401
    try:
        saved = services.save_draft(
            ref, actor(), request.form.get("action", ""), request.form.get("text", "")
        )
    except DomainError as exc:
        db.session.rollback()
        return {"error": {"code": exc.code, "message": exc.message}}, exc.status
    return {"saved_at": saved.isoformat()}


@bp.post("/cases/<ref>/identity")
@staff_required(Role.INTAKE, Role.SUPERVISOR)
def identity(ref: str):
    """Reveal the reporter's identity, with a reason, for this page view only (audited)."""
    me = actor()
    case = services.case_for_actor(ref, me)
    try:
        shown = reveal_identity(me, case, request.form.get("reason", ""))
    except InvalidInput as exc:
        return _case_page(ref, 422, errors=exc.details)
    return _case_page(ref, identity=shown)


# -- the escalation inbox (督办) ----------------------------------------------------------------------


@bp.get("/escalations")
@staff_required(Role.SUPERVISOR, Role.ADMIN)
def escalations():
    """督办: escalations addressed to the user's org subtree; unresolved only unless ?all=1."""
    show_all = request.args.get("all") == "1"
    rows, next_cursor = escalation_page(
        db.session,
        actor(),
        open_only=not show_all,
        cursor=request.args.get("cursor") or None,
        limit=current_app.config["PAGE_SIZE"],
    )
    return render_template("staff/escalations.html", rows=rows, next_cursor=next_cursor, show_all=show_all)


# -- notifications and the audit log ---------------------------------------------------------------


@bp.get("/notifications")
@staff_required()
def notifications():
    """Unread first, then the newest; each notice stands for every message of its case and group
    (notify/channels.py folds them), with its title built in the reader's language."""
    rows = db.session.scalars(
        select(Notification)
        .where(Notification.user_id == current_user.id)
        .order_by(
            Notification.read_at.is_not(None),
            func.coalesce(Notification.updated_at, Notification.created_at).desc(),
            Notification.id.desc(),
        )
        .limit(100)
    ).all()
    items = [
        {
            "id": n.id,
            "unread": n.read_at is None,
            "at": n.updated_at or n.created_at,
            "tracking_no": n.case.tracking_no if n.case else None,
            "title": notice_title(
                n.kind,
                n.case.tracking_no if n.case else "",
                n.clocks or [],
                int(n.group_key.rpartition(":")[2]) if n.group_key and ":" in n.group_key else None,
                translate=_,
            )
            if n.group_key
            else n.title,
            "repeats": n.repeats,
        }
        for n in rows
    ]
    return render_template("staff/notifications.html", rows=items)


@bp.post("/notifications/open")
@staff_required()
def notification_open():
    """Follow a notice to its case. A POST (nothing changes on GET): reading a case's notice
    marks every unread notice of that case read for this person, as they are now looking at it."""
    notification_id = request.form.get("id", "")
    notice = db.session.get(Notification, int(notification_id)) if notification_id.isdigit() else None
    if notice is None or notice.user_id != current_user.id:
        raise NotFound(_("找不到该通知"))
    stmt = update(Notification).where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
    if notice.case_id is None:
        stmt = stmt.where(Notification.id == notice.id)
    else:
        stmt = stmt.where(Notification.case_id == notice.case_id)
    db.session.execute(stmt.values(read_at=utcnow()))
    db.session.commit()
    if notice.case is None:
        return redirect(url_for("staff.notifications"))
    return redirect(url_for("staff.case", ref=notice.case.tracking_no))


@bp.post("/notifications/read")
@staff_required()
def notifications_read():
    db.session.execute(
        update(Notification)
        .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    db.session.commit()
    return redirect(url_for("staff.notifications"))


@bp.get("/audit")
@staff_required(Role.ADMIN, Role.SUPERVISOR)
def audit_log():
    """Staff actions, sign-ins and identity views; supervisors see their subtree's people and the
    cases its bodies own (wherever a case sits now: a unit it was sent to answers to its owner)."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    me = actor()
    subtree = select(Org.id).where(Org.path.startswith(me.org_path, autoescape=True))
    if not me.at_body:
        # A unit's admin: the unit's own people only, never the 纪委 placed under a township nor
        # what is recorded about cases (DESIGN.md §2a).
        units = subtree.where(Org.kind.not_in([k.value for k in BODY_KINDS]))
        stmt = stmt.where(AuditEntry.user_id.in_(select(User.id).where(User.org_id.in_(units))))
    elif not is_system_admin(current_user):
        stmt = stmt.where(
            AuditEntry.user_id.in_(select(User.id).where(User.org_id.in_(subtree)))
            | AuditEntry.case_id.in_(select(Case.id).where(Case.owner_org_id.in_(subtree)))
        )
    if action := request.args.get("action"):
        stmt = stmt.where(AuditEntry.action == action)
    if username := request.args.get("username"):
        stmt = stmt.where(AuditEntry.username == username)
    if ref := request.args.get("case"):
        stmt = stmt.where(
            AuditEntry.case_id.in_(select(Case.id).where(Case.tracking_no == ref.strip().upper()))
        )
    if before := request.args.get("before", type=int):
        stmt = stmt.where(AuditEntry.id < before)
    rows = db.session.scalars(stmt.limit(100)).all()
    # Case ids become the numbers people use (登记号 and 查询编号), linked to the case page.
    case_ids = {r.case_id for r in rows if r.case_id}
    # Only cases this reader may open: a unit's admin reading their leader's refused attempt on an
    # accusation about the unit learns nothing about that case (§2a).
    found = db.session.scalars(select(Case).where(Case.id.in_(case_ids))) if case_ids else []
    cases = {c.id: c for c in found if me.sees(c)}
    items = [
        {
            "id": r.id,
            "at": r.at,
            "username": r.username,
            "action": r.action,
            "action_label": _(audit.ACTION_LABELS.get(r.action, r.action)),
            "case": cases.get(r.case_id),
            "ip": r.ip,
            "detail": audit.describe(r.detail, translate=_),
        }
        for r in rows
    ]
    return render_template(
        "staff/audit.html",
        rows=items,
        more=len(rows) == 100,
        last_id=rows[-1].id if rows else None,
        actions=audit.ACTION_LABELS,
        args=request.args,
    )


# The 账号安全 pages and the second step of signing in, on this blueprint (their own module).
from supervise.staff.twofactor import views as _two_factor_views  # noqa: E402, F401
