"""The query of /staff/assessment and its XLSX: which period."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from supervise.assessment.services import PERIOD_KINDS


class AssessmentQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # e.g. a language switch on the page's own links

    period = fields.String(load_default="year", validate=validate.OneOf(list(PERIOD_KINDS)))
    which = fields.String(
        load_default=None, validate=validate.Length(max=10), metadata={"description": "2026 or 2026-Q4"}
    )
