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
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import func, select

from supervise.cases import services
from supervise.cases.models import Case
from supervise.cases.queries import Filters, queue_counts, queue_page, queues_for
from supervise.cases.schemas import ActionSchema, QueueArgsSchema
from supervise.cases.workflow import Actor
from supervise.deadlines.escalations import escalation_page, open_escalation_count
from supervise.errors import Conflict, DomainError, InvalidInput, TooManyAttempts
from supervise.extensions import db
from supervise.intake.files import signed_url
from supervise.notify.models import Notification
from supervise.orgs.models import BODY_KINDS, Org
from supervise.orgs.routing import OrgTree
from supervise.staff import audit
from supervise.staff.auth import (
    attempt_login,
    authenticate,
    end_sessions,
    is_system_admin,
    remember_device,
    sign_in,
    sign_out,
    staff_required,
)
from supervise.staff.identity import may_reveal, reveal_identity
from supervise.staff.models import AuditEntry, ReplyTemplate, Role, User
from supervise.staff.services import ROLE_LABELS, check_password_policy

bp = Blueprint("staff", __name__, url_prefix="/staff")

QUEUE_LABELS = {
    "intake": "待受理",
    "dispatch": "待转办/待交办",
    "in_progress": "办理中",
    "review": "待审核",
    "due_soon": "即将超期",
    "overdue": "已超期",
    "escalated": "督办件",
    "rejected": "不予受理复核",
    "done": "已办结",
    "mine": "我的待办",
}


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
        open_escalations = open_escalation_count(db.session, actor())
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
        return target
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
            error="用户名或密码不正确",
            username=username,
            next=request.form.get("next", ""),
        ), 401
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
        return render_template("staff/password.html", error="当前密码不正确"), 422
    if new != request.form.get("confirm", ""):
        return render_template("staff/password.html", error="两次输入的新密码不一致"), 422
    try:
        check_password_policy(new, current_user.username)
    except InvalidInput as exc:
        return render_template("staff/password.html", error=exc.message), 422
    user = db.session.get(User, current_user.id)
    user.password_hash = generate_password_hash(new, current_app.config["PASSWORD_HASH_METHOD"])
    end_sessions(user, keep_current=True)  # every other browser signed in as this user is out
    audit.record("password_changed", user=user)
    db.session.commit()
    flash("密码已修改，其他设备上的登录和 API 令牌已失效")
    return redirect(url_for("staff.queue"))


# -- queues ---------------------------------------------------------------------------------------


@bp.get("/")
@staff_required()
def queue():
    """The work queues as tabs with live counts, filters and keyset pages."""
    raw = {k: v for k, v in request.args.items() if v.strip() != ""}
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
    return render_template(
        "staff/queue.html",
        rows=[services.summary_view(c, ctx.clocks, ctx.now, me) for c in rows],
        next_cursor=next_cursor,
        counts=queue_counts(db.session, me, ctx.clocks, ctx.now),
        queues=queues_for(me),
        queue_labels=QUEUE_LABELS,
        args=args,
        raw=raw,
        errors=errors,
        categories=services.categories(),
        handlers=_handlers(me.org_id),
        can_assign=current_user.has_role(Role.INTAKE, Role.SUPERVISOR, Role.LEADER),
        at_unit=not me.at_body,  # no 仅实名 filter at a unit: it would tell named from anonymous
    )


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


@bp.post("/bulk-assign")
@staff_required(Role.INTAKE, Role.SUPERVISOR, Role.LEADER)
def bulk_assign():
    """Assign several cases at once; each keeps its own version check."""
    username = request.form.get("user", "")
    done, failed = [], []
    for item in request.form.getlist("case"):
        ref, _, version = item.partition(":")
        try:
            services.perform_action(
                ref, actor(), {"action": "assign", "version": int(version), "user": username}
            )
            done.append(ref)
        except (DomainError, ValueError) as exc:
            db.session.rollback()
            failed.append(f"{ref}（{getattr(exc, 'message', '版本无效')}）")
    if done:
        flash(f"已交办 {len(done)} 件")
    if failed:
        flash("未能交办：" + "；".join(failed), "error")
    return redirect(request.form.get("back") or url_for("staff.queue"))


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
            choices.append({"org": org, "note": "纪检监察机构"})
        elif not org.is_body and case.kind not in (None, "accusation") and tree.has_role(org.id, Role.LEADER):
            choices.append({"org": org, "note": "被反映单位" if org.id == case.subject_org_id else "单位"})
    choices.sort(key=lambda c: c["org"].id != case.subject_org_id)
    return choices


def _case_page(ref: str, status: int = 200, identity=None, errors=None):
    me = actor()
    case = services.case_for_actor(ref, me)
    view = services.detail_view(case, me)
    ctx = services.make_context()
    return (
        render_template(
            "staff/case.html",
            case=case,
            view=view,
            identity=identity,
            at_unit=not me.at_body,
            may_reveal=case.real_name and may_reveal(me, case),
            errors=errors or {},
            photos=[{"url": signed_url(a), "thumb_url": signed_url(a, thumb=True)} for a in case.attachments],
            transfer_choices=_transfer_choices(case),
            reversible_until=services.workflow.rejection_reversible_until(ctx, case),
            default_kind=case.kind or case.category.default_kind or "service",
            handlers=_handlers(case.org_id),
            templates=db.session.scalars(
                select(ReplyTemplate).where(ReplyTemplate.org_id == case.org_id).order_by(ReplyTemplate.title)
            ).all(),
        ),
        status,
    )


@bp.get("/cases/<ref>")
@staff_required()
def case(ref: str):
    return _case_page(ref)


@bp.post("/cases/<ref>/act")
@staff_required()
def act(ref: str):
    form = {k: v for k, v in request.form.items() if k != "csrf_token" and v.strip() != ""}
    for number in ("version", "days"):  # HTML forms send text; the API schema wants integers
        if form.get(number, "").isdigit():
            form[number] = int(form[number])
    template_id = form.pop("template", None)
    if form.get("action") == "feedback" and not form.get("text") and template_id:
        template = db.session.get(ReplyTemplate, int(template_id))
        if template is not None and template.org_id == services.case_for_actor(ref, actor()).org_id:
            form["text"] = template.body
    try:
        args = ActionSchema().load(form)
        services.perform_action(ref, actor(), args)
    except ValidationError as exc:
        return _case_page(ref, 422, errors=exc.messages)
    except Conflict as exc:
        db.session.rollback()
        return _case_page(ref, 409, errors={"_": [exc.message]})
    except DomainError as exc:
        db.session.rollback()
        return _case_page(ref, exc.status, errors=exc.details or {"_": [exc.message]})
    flash("已保存")
    return redirect(url_for("staff.case", ref=ref))


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
    rows = db.session.scalars(
        select(Notification)
        .where(Notification.user_id == current_user.id)
        .order_by(Notification.id.desc())
        .limit(100)
    ).all()
    return render_template("staff/notifications.html", rows=rows)


@bp.post("/notifications/read")
@staff_required()
def notifications_read():
    from sqlalchemy import update

    from supervise.dbtypes import utcnow

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
    return render_template("staff/audit.html", rows=rows, args=request.args)
