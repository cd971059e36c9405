"""Weekly report services for the job, the command, the API and the pages. Each commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from supervise.cases.models import Case
from supervise.cases.services import make_context
from supervise.cases.workflow import Actor
from supervise.errors import Forbidden, InvalidInput, NotFound
from supervise.extensions import db
from supervise.notify.outbox import queue_message
from supervise.orgs.models import Org
from supervise.readonly import reading
from supervise.reports.models import WeeklyReport, claim_period
from supervise.reports.weekly import Week, compute, view_for
from supervise.staff.models import Role, User

JOB = "weekly_report"
CATCH_UP_WEEKS = 4  # a cron process down for a while still gets the last month's reports out


def thresholds() -> dict[str, float]:
    """通报线: an org below either rate is flagged (admin settings, percent), unless the rate rests on
    fewer than `min_sample` cases (stored with the report, so a snapshot says what it applied)."""
    from supervise.settings import deadline_settings, report_min_sample

    s = deadline_settings(current_app.config)
    return {
        "on_time_rate": s["ON_TIME_RATE_TARGET"] / 100,
        "satisfaction_rate": s["SATISFACTION_RATE_TARGET"] / 100,
        "min_sample": report_min_sample(current_app.config),
    }


def latest(week: Week) -> WeeklyReport | None:
    return db.session.scalar(
        select(WeeklyReport)
        .where(WeeklyReport.week == week.label)
        .order_by(WeeklyReport.version.desc())
        .limit(1)
    )


def versions(week: Week) -> list[WeeklyReport]:
    return list(
        db.session.scalars(
            select(WeeklyReport).where(WeeklyReport.week == week.label).order_by(WeeklyReport.version.desc())
        )
    )


def build(
    week: Week, *, by: User | None = None, reason: str | None = None, now: datetime | None = None
) -> WeeklyReport:
    """Build and store a new version of the week's report, and queue it to supervisors by mail."""
    ctx = make_context(now)
    if week.end > ctx.now:
        raise InvalidInput(f"{week.label} 尚未结束，不能生成通报", {"week": ["该周尚未结束"]})
    with reading() as session:  # the heavy counting may run on the replica: a week is long over
        data = compute(session, ctx.clocks, week, thresholds(), ctx.now)
    previous = latest(week)
    report = WeeklyReport(
        week=week.label,
        version=(previous.version + 1) if previous else 1,
        built_at=ctx.now,
        built_by_id=by.id if by else None,
        reason=reason,
        data=data,
    )
    db.session.add(report)
    db.session.flush()
    if by is not None:  # a person rebuilt it: on the audit log, in the same commit as the version
        from supervise.staff import audit

        audit.record(
            "admin_change",
            user=by,
            detail={
                "what": "weekly_report",
                "week": week.label,
                "version": report.version,
                "previous_version": previous.version if previous else None,
                "reason": reason,
            },
        )
    _queue_mail(report)
    db.session.commit()
    return report


def _queue_mail(report: WeeklyReport) -> None:
    """Each org's supervisors get the report for their subtree: one e-mail row per such org."""
    orgs_with_supervisors = db.session.scalars(
        select(User.org_id)
        .where(User.holding(Role.SUPERVISOR.value), User.active.is_(True), User.email.is_not(None))
        .distinct()
    )
    in_report = {row["id"] for row in report.data["orgs"]}  # the discipline bodies
    for org_id in sorted(set(orgs_with_supervisors) & in_report):
        queue_message(
            db.session,
            kind="weekly_report",
            channel="email",
            payload={
                "report_id": report.id,
                "org_id": org_id,
                "role": Role.SUPERVISOR.value,
                "exact_org": True,
            },
            dedupe_key=f"weekly-report-{report.id}-org-{org_id}",
        )


def get_or_build(week: Week, now: datetime | None = None) -> WeeklyReport:
    """The stored report of a week, built now if there is none yet (the command's way)."""
    return latest(week) or build(week, now=now)


def run_weekly(now: datetime | None = None) -> list[str]:
    """The Monday job: build every recent week that has ended and has no report yet, once.

    Each week is claimed in `periodic_runs` in the same transaction as its report, so two cron
    processes, a retried job or a late catch-up never build or mail a week twice.
    """
    now = now or make_context().now
    built = []
    newest = Week.last_complete(now)
    first_case = db.session.scalar(select(func.min(Case.received_at)))
    for back in range(CATCH_UP_WEEKS - 1, -1, -1):
        week = newest.previous(back)
        if week.published_at > now or (first_case is None or week.end <= first_case):
            continue  # not due yet, or nothing had happened yet
        if latest(week) is not None:
            continue
        try:
            if not claim_period(db.session, JOB, week.label):
                db.session.rollback()
                continue
            build(week, now=now)  # commits the claim with the report
        except IntegrityError:
            db.session.rollback()  # another process claimed it first
            continue
        built.append(week.label)
    return built


def scope_org_id(actor: Actor, requested: str | None) -> int:
    """The org whose view an actor gets: their own body, or (supervisors, admins) one below it.
    The report is the discipline bodies': a unit's account (even its admin) gets none, since its
    overdue list would name complaints about the unit itself (DESIGN.md §2a)."""
    if not actor.at_body:
        raise Forbidden("通报仅供纪检监察机构查看")
    if not requested:
        return actor.org_id
    org = db.session.scalar(select(Org).where(Org.code == requested))
    if org is None or not actor.has(Role.SUPERVISOR, Role.ADMIN) or not actor.covers(org):
        raise NotFound("找不到该单位")
    return org.id


def stored(week: Week, version: int | None = None) -> WeeklyReport:
    """A week's stored report: that version, or the latest; 404 when there is none.

    Read on the replica when there is one (supervise/readonly.py): right after a rebuild it may
    show the previous version for as long as the replica lags."""
    query = select(WeeklyReport).where(WeeklyReport.week == week.label)
    query = (
        query.order_by(WeeklyReport.version.desc()).limit(1)
        if version is None
        else query.where(WeeklyReport.version == version)
    )
    with reading() as session:
        report = session.scalar(query)
    if report is None:
        raise NotFound(f"{week.label} 的通报{'没有该版本' if version is not None else '尚未生成'}")
    return report


def scoped_view(report: WeeklyReport, actor: Actor, org: str | None = None) -> dict[str, Any]:
    """A stored report as this actor may see it: their subtree, or an org inside it."""
    try:
        view = view_for(report.data, scope_org_id(actor, org))
    except ValueError:  # an org created after this report was built
        raise NotFound("该单位不在本期通报中") from None
    return {**view, "version": report.version, "built_at": report.built_at.isoformat()}


def report_view(week: Week, actor: Actor, org: str | None = None) -> dict[str, Any]:
    """The latest stored report of a week as this actor may see it (the API's answer)."""
    return scoped_view(stored(week), actor, org)
