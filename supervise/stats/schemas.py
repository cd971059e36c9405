"""The filters of /staff/stats and GET /api/v1/stats (one schema, so both read the same way)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from supervise.cases.states import CaseKind, Channel
from supervise.stats.services import GROUPS

PERIODS = ("month", "quarter", "year")


class StatsQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the page's own links may carry more (e.g. a language switch)

    period = fields.String(load_default="year", validate=validate.OneOf(PERIODS))
    which = fields.String(load_default=None, metadata={"description": "2026-11, 2026-Q4 or 2026"})
    group = fields.String(
        load_default="child_org", validate=validate.OneOf([g for g in GROUPS if g not in PERIODS])
    )
    granularity = fields.String(load_default="month", validate=validate.OneOf(PERIODS))
    category = fields.String(load_default=None, metadata={"description": "category code"})
    channel = fields.String(load_default=None, validate=validate.OneOf([c.value for c in Channel]))
    kind = fields.String(
        load_default=None,
        validate=validate.OneOf(["none", *(k.value for k in CaseKind)]),
        metadata={"description": "定性; 'none': not yet classified"},
    )
    org = fields.String(load_default=None, metadata={"description": "org code: the subtree to drill into"})
