"""/open311/v2: GeoReport v2 (http://wiki.open311.org/GeoReport_v2) in JSON and XML.

Services are the categories and need no key. Requests need the client's api_key: as the spec's
`api_key` parameter (form body of a POST, or the query string), or as the user name of HTTP Basic
auth, which keeps it out of URLs and access logs and lets clients that send no key on GETs (most
libraries) use a netrc entry. Errors are the spec's list of {code, description}, with its status
codes: 400 bad parameter, 403 no/bad key, 404 unknown, and 429 when the key's limit is spent.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from supervise.cases.models import Category
from supervise.deadlines.calendar import local_date
from supervise.errors import DomainError, InvalidInput
from supervise.i18n import N_
from supervise.open311 import schemas, services
from supervise.open311.models import Open311Client

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FMT = "<any(json, xml):fmt>"
SPEC = "http://wiki.open311.org/GeoReport_v2"

# The service definition's attributes (the same for every service): `attribute[code]` in a POST.
ATTRIBUTES = (
    ("subject", N_("反映对象"), N_("被反映的人或单位，1–200 个字；不填则记为“未注明反映对象”")),
    (
        "subject_unit",
        N_("被反映单位"),
        N_("被反映单位的单位代码，须在本接入方所属单位范围内；不填则为接入方所属单位"),
    ),
    ("work_order", N_("工单号"), N_("12345 等平台的工单号：同一工单号再次提交时返回原件，不重复立案")),
)
# XML: what each list's items are called (GeoReport v2's element names).
ITEM_NAMES = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}


# -- rendering ------------------------------------------------------------------------------------


def _xml_value(parent: ET.Element, name: str, value: Any) -> None:
    element = ET.SubElement(parent, name)
    if isinstance(value, list | tuple):
        for item in value:
            _xml_value(element, ITEM_NAMES.get(name, name.rstrip("s")), item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(element, key, inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def render(data: Any, root: str, item: str | None, status: int = 200, fmt: str | None = None) -> Response:
    """`data` (a list of `item`s under `root`, or with item None one object as `root`) in the
    request's format."""
    fmt = fmt or (request.view_args or {}).get("fmt", "json")
    if fmt == "xml":
        element = ET.Element(root)
        for entry in data if item else [data]:
            target = ET.SubElement(element, item) if item else element
            for key, value in entry.items():
                _xml_value(target, key, value)
        body = ET.tostring(element, encoding="unicode", xml_declaration=True)
        response = Response(body, status=status, mimetype="text/xml")
        response.charset = "utf-8"
    else:
        response = jsonify(data)
        response.status_code = status
    return response


def _private(response: Response) -> Response:
    """A client's requests and a new access code: kept by no cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _errors(status: int, descriptions: list[str], headers: dict[str, str] | None = None) -> Response:
    fmt = "xml" if request.path.endswith(".xml") else "json"
    response = render(
        [{"code": status, "description": d} for d in descriptions], "errors", "error", status, fmt
    )
    response.headers.update(headers or {})
    return _private(response)


def _field_messages(messages: dict[str, Any]) -> list[str]:
    lines = []
    for field, problems in messages.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            lines.append(f"{field}: {_(problem) if isinstance(problem, str) else problem}")
    return lines


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> ResponseReturnValue:
    headers = {}
    if "retry_after" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after"])
    fields = {k: v for k, v in exc.details.items() if k not in ("retry_after", "limit")}
    lines = _field_messages(fields) if isinstance(exc, InvalidInput) and fields else [_(exc.message)]
    return _errors(services.error_status(exc), lines, headers)


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> ResponseReturnValue:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
    return _errors(400, _field_messages(messages))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    from supervise.api.base import HTTP_MESSAGES

    return _errors(exc.code or 500, [_(HTTP_MESSAGES.get(exc.code, exc.name))])


# -- the client's key ---------------------------------------------------------------------------


def _client() -> Open311Client:
    auth = request.authorization
    basic = auth.username if auth is not None and auth.type == "basic" else None
    return services.authenticate(request.form.get("api_key") or request.args.get("api_key") or basic)


# -- endpoints ----------------------------------------------------------------------------------


@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str) -> ResponseReturnValue:
    endpoint = {
        "specification": SPEC,
        "url": url_for("open311.services_list", fmt="json", _external=True).rsplit("/", 1)[0],
        "changeset": "2026-12-01T00:00:00+08:00",
        "type": "production",
        "formats": ["text/xml", "application/json"],
    }
    data = {
        "changeset": "2026-12-01T00:00:00+08:00",
        "contact": _("请联系本平台管理员获取 api_key"),
        "key_service": _("系统管理 → Open311 接入"),
        "endpoints": [endpoint],
    }
    return render(data, "discovery", None)


def _service(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.name,
        "metadata": True,  # the attributes of the definition below
        "type": "realtime",
        "keywords": ",".join(filter(None, (category.name, category.name_en))),
        "group": "",
    }


@bp.get(f"/services.{FMT}")
def services_list(fmt: str) -> ResponseReturnValue:
    return render([_service(c) for c in services.service_list()], "services", "service")


@bp.get(f"/services/<code>.{FMT}")
def service_definition(code: str, fmt: str) -> ResponseReturnValue:
    category = services.service(code)
    attributes = [
        {
            "variable": True,
            "code": name,
            "datatype": "string",
            "required": False,
            "datatype_description": _(explained),
            "order": order,
            "description": _(label),
            "values": [],
        }
        for order, (name, label, explained) in enumerate(ATTRIBUTES, start=1)
    ]
    return render({"service_code": category.code, "attributes": attributes}, "service_definition", None)


@bp.get(f"/requests.{FMT}")
def requests_list(fmt: str) -> ResponseReturnValue:
    client = _client()
    filters = schemas.ListRequestsSchema().load(request.args)
    cases = services.list_requests(client, filters)
    return _private(render([services.progress(c) for c in cases], "service_requests", "request"))


@bp.post(f"/requests.{FMT}")
def requests_create(fmt: str) -> ResponseReturnValue:
    client = _client()
    data = schemas.parse_post(request.form.to_dict())
    done = services.submit_request(client, data)
    answer = {
        "token": done.token,
        "service_request_id": done.case.tracking_no,
        "service_notice": _(
            "将于 %(date)s 前答复；群众凭查询编号和查询码可在本平台查询进度",
            date=local_date(done.case.response_due_at).isoformat(),
        ),
        "account_id": None,
        # Not GeoReport v2: the citizen's code to follow the case at /track, in this answer only
        # (the platform passes it on to its caller); only its hash is kept. None on a late replay.
        "access_code": done.access_code,
    }
    return _private(render([answer], "service_requests", "request"))


@bp.get(f"/requests/<ref>.{FMT}")
def request_one(ref: str, fmt: str) -> ResponseReturnValue:
    case = services.get_request(_client(), ref)
    return _private(render([services.progress(case)], "service_requests", "request"))


@bp.get(f"/tokens/<token>.{FMT}")
def token_lookup(token: str, fmt: str) -> ResponseReturnValue:
    request_id, token = services.request_for_token(_client(), token)
    return _private(
        render([{"service_request_id": request_id, "token": token}], "service_requests", "request")
    )
