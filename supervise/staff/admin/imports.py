"""批量导入 on the admin pages: choose a kind, upload an XLSX or CSV, see what it would change (the
check is ticked by default), then upload it again unticked to write it. Templates to download.

The same service as `supervise import` (supervise/imports/), scoped to the admin's subtree: orgs
whose parent is in it, points and accounts of orgs in it, cases about units in it (for admins at
a discipline body only). New accounts' one-time passwords are shown once on the result page,
never stored."""

from __future__ import annotations

import hashlib

from flask import abort, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from supervise.extensions import db
from supervise.imports import service
from supervise.imports.base import Scope
from supervise.staff.admin.common import admin_at_body, bp, no_store
from supervise.staff.auth import staff_required
from supervise.staff.models import Role, User

# Below the app's MAX_CONTENT_LENGTH (a larger request is refused before it is read, 413): a
# county's ledger of tens of thousands of rows is a few MB.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _kinds() -> dict[str, str]:
    """The kinds this admin may import, with their labels: cases only at a discipline body."""
    return {
        kind: _(module.LABEL) for kind, module in service.KINDS.items() if kind != "cases" or admin_at_body()
    }


def _page(
    result: service.ImportResult | None = None,
    error: str | None = None,
    status: int = 200,
    digest: str | None = None,
) -> ResponseReturnValue:
    kind = request.form.get("kind") or request.args.get("kind") or "orgs"
    response = make_response(
        render_template(
            "staff/admin/import.html",
            kinds=_kinds(),
            kind=kind,
            result=result,
            problems=[p.text(_) for p in result.problems] if result else [],
            details=[_(message, **params) for message, params in result.details] if result else [],
            error=error,
            digest=digest,
            same_file=bool(digest and digest == request.form.get("checked")),
            max_mb=MAX_IMPORT_BYTES // (1024 * 1024),
        ),
        status,
    )
    # A result page may list one-time passwords: it must not outlive the visit in any cache.
    return no_store(response)


@bp.get("/import")
@staff_required(Role.ADMIN)
def imports() -> ResponseReturnValue:
    return _page()


@bp.post("/import")
@staff_required(Role.ADMIN)
def import_upload() -> ResponseReturnValue:
    kind = request.form.get("kind", "")
    if kind not in _kinds():
        return _page(error=_("请选择要导入的内容"), status=422)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(error=_("请选择要导入的 XLSX 或 CSV 文件"), status=422)
    data = upload.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return _page(
            error=_("文件过大（不超过 %(n)s MB），请分成几个文件导入", n=MAX_IMPORT_BYTES // 1048576),
            status=413,
        )
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:100]
    dry_run = request.form.get("dry_run") == "1"
    me = db.session.get(User, current_user.id)
    result = service.run_import(
        kind, data, name, dry_run=dry_run, scope=Scope.of_admin(db.session, me.org), user=me
    )
    return _page(result, status=200 if result.ok else 422, digest=hashlib.sha256(data).hexdigest())


@bp.get("/import/template/<kind>.xlsx")
@staff_required(Role.ADMIN)
def import_template(kind: str) -> ResponseReturnValue:
    from supervise.imports.templates import template_xlsx

    if kind not in service.KINDS:
        abort(404)
    # Column names stay Chinese whatever the page's language: they are what the import reads.
    response = make_response(template_xlsx(kind))
    response.mimetype = XLSX
    response.headers["Content-Disposition"] = f'attachment; filename="import-{kind}.xlsx"'
    return response
