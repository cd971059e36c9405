"""Staff endpoints: queues, one case, actions, the weekly report, statistics. Bearer token or the staff
session."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from supervise.api.base import STAFF_SECURITY, documented
from supervise.cases import services
from supervise.cases.queries import Filters, page_payload, queue_page
from supervise.cases.schemas import (
    ActionSchema,
    CaseDetailSchema,
    CasePageSchema,
    IdentitySchema,
    QueueArgsSchema,
    RevealSchema,
    dump_case_page,
)
from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.staff.auth import current_actor
from supervise.staff.identity import reveal_identity
from supervise.stats.schemas import StatsQuerySchema

blp = Blueprint(
    "staff_api", __name__, url_prefix="/api/v1", description="Staff work (Bearer token or the staff session)"
)
STAFF_400 = "malformed request (as for every operation), or a POST with the staff session and no CSRF token"


@blp.route("/cases")
class Queue(MethodView):
    @blp.arguments(QueueArgsSchema, location="query")
    @blp.response(200, CasePageSchema)
    @documented(
        blp,
        400,
        401,
        422,
        security=STAFF_SECURITY,
        e422="a bad filter, an unknown status or an invalid cursor",
    )
    def get(self, args):
        """A work queue, scoped to your org (supervisors: its subtree), keyset-paginated."""
        actor = current_actor()
        ctx = services.make_context()
        limit = args.pop("limit") or current_app.config["PAGE_SIZE"]
        cursor = args.pop("cursor")
        rows, cursor = queue_page(
            db.session, actor, ctx.clocks, ctx.now, Filters(**args), cursor=cursor, limit=limit
        )
        names = services.row_names()  # once for the page
        page = page_payload(
            rows, cursor, lambda case: services.summary_view(case, ctx.clocks, ctx.now, actor, names)
        )
        # A response of our own is sent as it is: CasePageSchema documents it, dump_case_page makes it.
        return jsonify(dump_case_page(page))


@blp.route("/cases/<ref>")
class CaseDetail(MethodView):
    @blp.response(200, CaseDetailSchema)
    @documented(blp, 400, 401, 404, security=STAFF_SECURITY)
    def get(self, ref: str):
        """One case with its full history and the actions you may take now."""
        actor = current_actor()
        return services.detail_view(services.case_for_actor(ref, actor), actor)


@blp.route("/cases/<ref>/actions")
class CaseAction(MethodView):
    @blp.arguments(ActionSchema)
    @blp.response(200, CaseDetailSchema)
    @documented(
        blp,
        400,
        401,
        403,
        404,
        409,
        422,
        security=STAFF_SECURITY,
        e400=STAFF_400,
        e403="your role or org may not take this action on this case",
        e409="illegal action for the current state (`illegal_transition`), or a stale `version` "
        "(`stale_version`)",
    )
    def post(self, args, ref: str):
        """Act on a case (accept, reject, merge, transfer, assign, start, feedback, publish, …)."""
        actor = current_actor()
        case = services.perform_action(ref, actor, args)
        return services.detail_view(case, actor)


@blp.route("/cases/<ref>/identity")
class CaseIdentity(MethodView):
    @blp.arguments(RevealSchema)
    @blp.response(200, IdentitySchema)
    @documented(
        blp,
        400,
        401,
        403,
        404,
        422,
        security=STAFF_SECURITY,
        e400=STAFF_400,
        e403="your role may not see reporters' identities",
        e422="no reason given, or the case is anonymous",
    )
    def post(self, args, ref: str):
        """Reveal the reporter's identity (intake and supervisors of the handling chain), with a
        reason that goes into the audit log with the viewing."""
        actor = current_actor()
        return reveal_identity(actor, services.case_for_actor(ref, actor), args["reason"])


class WeeklyReportArgs(Schema):
    week = fields.String(
        load_default=None,
        metadata={
            "description": "ISO week, e.g. 2026-W47; default: the last full week",
            "pattern": r"^[0-9]{4}-[Ww][0-9]{2}$",
        },
    )
    org = fields.String(load_default=None, metadata={"description": "an org code in your subtree"})


# The weekly report's answer, for the document only: the view returns the stored snapshot as it
# is (reports/weekly.py `compute` and `view_for`), so the figures' maps are documented as objects.
class ReportOrgSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class ReportRowSchema(ReportOrgSchema):
    kind = fields.String()
    parent_id = fields.Integer(allow_none=True)
    depth = fields.Integer(metadata={"description": "0 for the top of the tree"})
    own = fields.Dict(metadata={"description": "this body's own figures (counts and rates)"})
    total = fields.Dict(metadata={"description": "its figures with the bodies below it"})
    flags = fields.List(fields.String(), metadata={"description": "rates under their thresholds"})
    trend = fields.List(fields.Dict(), metadata={"description": "week, open_overdue, on_time_rate"})


class OverdueRowSchema(Schema):
    tracking_no = fields.String()
    org_id = fields.Integer()
    org = fields.String()
    handler = fields.String()
    category = fields.String()
    received_on = fields.Date()
    due_on = fields.Date()
    due_provisional = fields.Boolean()
    working_days_overdue = fields.Integer()
    escalation_level = fields.Integer()
    real_name = fields.Boolean()


class WeeklyReportSchema(Schema):
    week = fields.String(metadata={"description": "ISO week, e.g. 2026-W47"})
    start = fields.String(metadata={"description": "the week's first moment (ISO 8601)"})
    end = fields.String(metadata={"description": "the moment after its last"})
    monday = fields.Date()
    sunday = fields.Date()
    generated_at = fields.String(metadata={"description": "when the figures were computed (ISO 8601)"})
    thresholds = fields.Dict(metadata={"description": "on_time_rate and satisfaction_rate targets"})
    org = fields.Nested(ReportOrgSchema, metadata={"description": "whose view this is"})
    summary = fields.Dict(metadata={"description": "that org's totals"})
    flags = fields.List(fields.String())
    trend = fields.List(fields.Dict())
    orgs = fields.List(fields.Nested(ReportRowSchema), metadata={"description": "its subtree, top first"})
    overdue_cases = fields.List(fields.Nested(OverdueRowSchema))
    footnotes = fields.List(fields.String())
    version = fields.Integer()
    built_at = fields.String(metadata={"description": "when this version was stored (ISO 8601)"})


@blp.route("/reports/weekly")
class WeeklyReportJson(MethodView):
    @blp.arguments(WeeklyReportArgs, location="query")
    @blp.response(200)
    @blp.doc(
        responses={
            "200": {"description": "OK", "content": {"application/json": {"schema": WeeklyReportSchema}}}
        }
    )
    @documented(
        blp,
        400,
        401,
        403,
        404,
        422,
        security=STAFF_SECURITY,
        e403="the report is the discipline bodies': a unit's account gets none",
        e404="no report stored for that week yet, or the org is not in your subtree or in that report",
        e422="`week` is not an ISO week (YYYY-Www)",
    )
    def get(self, args):
        """每周超期件通报 as JSON: the stored figures of your subtree (supervisors: or an org in it)."""
        from supervise.reports.services import report_view
        from supervise.reports.weekly import Week

        actor = current_actor()
        try:
            week = (
                Week.parse(args["week"]) if args["week"] else Week.last_complete(services.make_context().now)
            )
        except ValueError as exc:
            raise InvalidInput(str(exc), {"week": [str(exc)]}) from exc
        return report_view(week, actor, args["org"])


@blp.route("/stats")
class StatsJson(MethodView):
    @blp.arguments(StatsQuerySchema, location="query")
    @blp.response(200)
    @documented(
        blp,
        400,
        401,
        403,
        404,
        422,
        security=STAFF_SECURITY,
        e403="statistics are for supervisors and admins of a discipline body",
        e404="an unknown org or category code",
        e422="a bad filter or period",
    )
    def get(self, args):
        """统计分析 as JSON: the figures of /staff/stats for the same filters (supervise/stats)."""
        from supervise.dbtypes import utcnow
        from supervise.deadlines.calendar import local_date
        from supervise.stats.services import for_reader

        return jsonify(for_reader(db.session, current_actor(), args, local_date(utcnow())))
