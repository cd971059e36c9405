"""Staff endpoints: queues, one case, actions, the weekly report. Bearer token or the staff session."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from supervise.cases import services
from supervise.cases.queries import Filters, page_payload, queue_page
from supervise.cases.schemas import (
    ActionSchema,
    CaseDetailSchema,
    CasePageSchema,
    IdentitySchema,
    QueueArgsSchema,
    RevealSchema,
)
from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.staff.auth import current_actor
from supervise.staff.identity import reveal_identity

blp = Blueprint("staff_api", __name__, url_prefix="/api/v1", description="Staff work (Bearer token)")


@blp.route("/cases")
class Queue(MethodView):
    @blp.arguments(QueueArgsSchema, location="query")
    @blp.response(200, CasePageSchema)
    def get(self, args):
        """A work queue, scoped to your org (supervisors: its subtree), keyset-paginated."""
        actor = current_actor()
        ctx = services.make_context()
        limit = args.pop("limit") or current_app.config["PAGE_SIZE"]
        cursor = args.pop("cursor")
        rows, cursor = queue_page(
            db.session, actor, ctx.clocks, ctx.now, Filters(**args), cursor=cursor, limit=limit
        )
        return page_payload(rows, cursor, lambda c: services.summary_view(c, ctx.clocks, ctx.now, actor))


@blp.route("/cases/<ref>")
class CaseDetail(MethodView):
    @blp.response(200, CaseDetailSchema)
    def get(self, ref: str):
        """One case with its full history and the actions you may take now."""
        actor = current_actor()
        return services.detail_view(services.case_for_actor(ref, actor), actor)


@blp.route("/cases/<ref>/actions")
class CaseAction(MethodView):
    @blp.arguments(ActionSchema)
    @blp.response(200, CaseDetailSchema)
    @blp.alt_response(409, description="illegal action for the current state, or a stale version")
    def post(self, args, ref: str):
        """Act on a case (accept, reject, merge, transfer, assign, start, feedback, publish, …)."""
        actor = current_actor()
        case = services.perform_action(ref, actor, args)
        return services.detail_view(case, actor)


@blp.route("/cases/<ref>/identity")
class CaseIdentity(MethodView):
    @blp.arguments(RevealSchema)
    @blp.response(200, IdentitySchema)
    def post(self, args, ref: str):
        """Reveal the reporter's identity (intake and supervisors of the handling chain), with a
        reason that goes into the audit log with the viewing."""
        actor = current_actor()
        return reveal_identity(actor, services.case_for_actor(ref, actor), args["reason"])


class WeeklyReportArgs(Schema):
    week = fields.String(
        load_default=None, metadata={"description": "ISO week, e.g. 2026-W47; default: the last full week"}
    )
    org = fields.String(load_default=None, metadata={"description": "an org code in your subtree"})


@blp.route("/reports/weekly")
class WeeklyReportJson(MethodView):
    @blp.arguments(WeeklyReportArgs, location="query")
    @blp.response(200)
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
