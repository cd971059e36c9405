"""Photos are served only through short-lived signed links, made after an access check.

A link names one attachment (and whether the thumbnail is wanted) and expires; the path says
nothing guessable, and a leaked link stops working within minutes.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from supervise.cases.models import Attachment
from supervise.extensions import db

LINK_SECONDS = 15 * 60

bp = Blueprint("files", __name__)


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="attachment-link")


def signed_url(attachment: Attachment, thumb: bool = False) -> str:
    token = _signer().dumps([attachment.id, bool(thumb and attachment.thumb_sha256)])
    return url_for("files.serve", token=token)


@bp.get("/files/<token>")
def serve(token: str) -> Response:
    try:
        attachment_id, thumb = _signer().loads(token, max_age=LINK_SECONDS)
    except (BadSignature, ValueError, TypeError):  # a payload of another shape is no link of ours
        abort(404)
    if not isinstance(attachment_id, int) or not isinstance(thumb, bool):
        abort(404)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        abort(404)
    from supervise.cases.services import upload_store

    sha = attachment.thumb_sha256 if thumb else attachment.sha256
    try:
        data = upload_store().get(sha)
    except KeyError:
        abort(404)  # the row outlived its file (a restore without uploads): say so, do not 500
    response = Response(data, mimetype="image/jpeg" if thumb else attachment.content_type)
    response.headers["Cache-Control"] = "private, max-age=600"
    response.headers["Content-Disposition"] = "inline"
    return response
