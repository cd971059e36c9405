"""Open311 GeoReport v2 (/open311/v2), checked with the `georeport` client library from PyPI against
the app served over real HTTP in a thread: services, POST a request, follow it (open, then closed
with the published answer), the token → id flow; and directly: XML shape, errors, the per-client
scope, no reporter data, the real-name rule, and the admin page (key shown once, revoke → 403).

The other Open311 library on PyPI, `open311` 1.1, is Python 2 code (its package imports itself in a
circle, and its XML parser calls Element.getchildren): it cannot be imported on Python 3.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET

import pytest
import requests
import xmltodict
from georeport import GeoReport
from sqlalchemy import select
from werkzeug.serving import make_server

from supervise.cases.models import Case
from supervise.cases.services import identity_box
from supervise.extensions import db
from supervise.open311 import services as open311
from supervise.open311.models import Open311Client
from supervise.orgs.models import Org
from supervise.staff.models import AuditEntry
from supervise.staff.services import create_user
from tests.conftest import ISSUED_ACCESS_CODES
from tests.web.test_admin import PASSWORD, login

DESCRIPTION = "窗口工作人员办理营业执照时要求先请吃饭，否则不予办理，已经拖了两周。"
ANSWER = "经核查，反映属实，已责令当事人退还并作出检讨。"


def new_client(name="城关12345热线", verified=False, channel="hotline", org_code=None) -> str:
    org = (
        db.session.scalar(select(Org).where(Org.parent_id.is_(None)))
        if org_code is None
        else (db.session.scalar(select(Org).where(Org.code == org_code)))
    )
    _client, key = open311.create_client(
        name=name, org_id=org.id, channel=channel, verified_callers=verified, created_by_id=None
    )
    db.session.commit()
    return key


@pytest.fixture
def live(app, demo):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/open311/v2"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def netrc(tmp_path, monkeypatch):
    """`netrc(key)`: the key as HTTP Basic credentials for 127.0.0.1, as requests (and so the
    georeport library, which sends no key on its GETs) reads them from a netrc file."""

    def use(key: str) -> None:
        path = tmp_path / "netrc"
        path.write_text(f"machine 127.0.0.1 login {key} password -\n")
        path.chmod(0o600)
        monkeypatch.setenv("NETRC", str(path))

    return use


def post(root: str, key: str, fmt="json", **fields) -> requests.Response:
    data = {"api_key": key, "service_code": "petty_corruption", "description": DESCRIPTION, **fields}
    response = requests.post(f"{root}/requests.{fmt}", data=data, timeout=10)
    if response.ok and fmt == "json":
        ISSUED_ACCESS_CODES.append(response.json()[0]["access_code"])
    return response


def act(client, headers, ref, action, version, **fields):
    response = client.post(
        f"/api/v1/cases/{ref}/actions", headers=headers, json={"action": action, "version": version, **fields}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["version"]


def answer(client, auth, ref: str) -> None:
    """Staff take the case through to a published answer (受理 → 交办 → 办理 → 反馈 → 发布)."""
    intake, handler, supervisor = auth("demo-intake"), auth("demo-handler"), auth("demo-supervisor")
    version = client.get(f"/api/v1/cases/{ref}", headers=intake).get_json()["version"]
    version = act(client, intake, ref, "accept", version)
    version = act(client, intake, ref, "assign", version, user="demo-handler")
    version = act(client, handler, ref, "start", version)
    feedback = {"text": ANSWER, "disposal": "concluded", "disposal_note": "予以了结"}
    version = act(client, handler, ref, "feedback", version, **feedback)
    act(client, supervisor, ref, "publish", version)


def test_a_12345_platform_files_and_follows_a_case_with_georeport(app, client, auth, live, netrc):
    key = new_client()
    netrc(key)
    json_api, xml_api = GeoReport(live), GeoReport(live, output_format="xml")

    services = json_api.get_service_list()
    assert {"service_code": "petty_corruption", "service_name": "吃拿卡要"}.items() <= next(
        s for s in services if s["service_code"] == "petty_corruption"
    ).items()
    assert all(s["type"] == "realtime" and s["metadata"] is True for s in services)
    assert [s["service_code"] for s in xml_api.get_service_list()] == [s["service_code"] for s in services]
    definition = json_api.get_service_definition("petty_corruption")
    assert [a["code"] for a in definition["attributes"]] == ["subject", "subject_unit", "work_order"]
    assert xml_api.get_service_definition("petty_corruption")["service_code"] == "petty_corruption"

    posted = post(
        live, key, **{"attribute[subject]": "某窗口工作人员", "address_string": "城关镇便民服务中心"}
    )
    assert posted.status_code == 200, posted.text
    [receipt] = posted.json()
    ref, token, code = receipt["service_request_id"], receipt["token"], receipt["access_code"]
    assert ref.startswith("MS-") and token and code and receipt["service_notice"]

    # token → id (GET with the key as Basic credentials from netrc; no key in any URL)
    by_token = requests.get(f"{live}/tokens/{token}.json", timeout=10).json()
    assert by_token == [{"service_request_id": ref, "token": token}]

    listed = json_api.get_service_requests(status="open")
    assert [r["service_request_id"] for r in listed] == [ref]
    one = json_api.get_service_request(ref)
    assert (one["status"], one["status_notes"], one["service_code"]) == ("open", None, "petty_corruption")
    assert one["agency_responsible"] and one["expected_datetime"].endswith("+08:00")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", one["requested_datetime"])

    case = db.session.scalar(select(Case).where(Case.tracking_no == ref))
    assert (case.channel, case.subject, case.real_name) == ("hotline", "某窗口工作人员", False)
    assert case.location == "城关镇便民服务中心" and case.content == DESCRIPTION

    answer(client, auth, ref)
    closed = xml_api.get_service_request(ref)
    assert (closed["status"], closed["status_notes"]) == ("closed", ANSWER)
    assert json_api.get_service_requests(status="open") == []
    assert [r["service_request_id"] for r in json_api.get_service_requests(status="closed")] == [ref]

    # The citizen follows the same case at /track with the code the platform passed on.
    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert tracked["feedback"] == ANSWER


def test_xml_answers_and_errors_have_the_specs_shape(app, client, live, netrc):
    key = new_client()
    posted = post(live, key, fmt="xml")
    assert posted.status_code == 200 and posted.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(posted.content)
    assert root.tag == "service_requests" and [c.tag for c in root] == ["request"]
    ref = root.findtext("request/service_request_id")
    ISSUED_ACCESS_CODES.append(root.findtext("request/access_code"))
    assert root.findtext("request/token") and posted.headers["Cache-Control"] == "no-store"

    listed = requests.get(f"{live}/requests.xml", params={"api_key": key}, timeout=10)
    parsed = xmltodict.parse(listed.content)["service_requests"]["request"]
    assert parsed["service_request_id"] == ref and parsed["status"] == "open"

    no_key = requests.post(f"{live}/requests.json", data={"service_code": "petty_corruption"}, timeout=10)
    assert no_key.status_code == 403 and no_key.json() == [{"code": 403, "description": "缺少 api_key"}]
    bad_key = requests.get(f"{live}/requests.xml", auth=("o311_nope", ""), timeout=10)
    assert bad_key.status_code == 403
    error = ET.fromstring(bad_key.content)
    assert (
        error.tag == "errors"
        and error.findtext("error/code") == "403"
        and error.findtext("error/description")
    )

    short = post(live, key, description="太短", service_code="nope")
    assert short.status_code == 400
    problems = {e["description"].split(":")[0] for e in short.json()}
    assert problems == {"description"} and all(e["code"] == 400 for e in short.json())
    unknown = post(live, key, service_code="nope")
    assert unknown.status_code == 400 and unknown.json()[0]["description"].startswith("service_code")
    odd = post(live, key, **{"attribute[colour]": "red"})
    assert odd.status_code == 400 and "attribute[colour]" in odd.text
    assert requests.get(f"{live}/requests/MS-AAAAA-AAAAA.json", auth=(key, ""), timeout=10).status_code == 404
    assert requests.get(f"{live}/services/nope.json", timeout=10).status_code == 404
    too_long = requests.get(
        f"{live}/requests.json",
        params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
        auth=(key, ""),
        timeout=10,
    )
    assert too_long.status_code == 400 and "90" in too_long.json()[0]["description"]
    assert requests.get(f"{live}/requests.json", params={"status": "done"}, auth=(key, "")).status_code == 400


def test_a_client_sees_only_its_own_requests_and_never_the_reporter(app, client, live, netrc):
    key_a, key_b = new_client("甲平台"), new_client("乙平台")
    contacts = {"last_name": "张", "first_name": "三", "phone": "13812345678", "email": "z@example.org"}
    [receipt] = post(live, key_a, **contacts).json()
    ref, token = receipt["service_request_id"], receipt["token"]

    for path in (f"/requests/{ref}.json", f"/tokens/{token}.json"):
        assert requests.get(live + path, auth=(key_b, ""), timeout=10).status_code == 404
        assert requests.get(live + path, auth=(key_a, ""), timeout=10).status_code == 200
        assert requests.get(live + path, timeout=10).status_code == 403  # no key, no public list
    assert requests.get(f"{live}/requests.json", auth=(key_b, ""), timeout=10).json() == []
    by_id = requests.get(f"{live}/requests.json", params={"service_request_id": ref}, auth=(key_b, ""))
    assert by_id.json() == []

    # Not verified by the platform: filed anonymous, the contacts not kept anywhere.
    case = db.session.scalar(select(Case).where(Case.tracking_no == ref))
    assert not case.real_name and case.reporter_name_enc is None and case.reporter_phone_enc is None
    for fmt in ("json", "xml"):
        text = requests.get(f"{live}/requests/{ref}.{fmt}", auth=(key_a, ""), timeout=10).text
        assert not any(secret in text for secret in ("张三", "张", "13812345678", "example.org", DESCRIPTION))


def test_a_verified_platform_files_real_name_and_a_work_order_is_filed_once(app, live):
    key = new_client("县12345平台", verified=True, channel="hotline")
    fields = {"last_name": "李", "first_name": "四", "phone": "13900001111", "attribute[work_order]": "GD-1"}
    first = post(live, key, **fields).json()[0]
    again = post(live, key, **fields).json()[0]
    assert (again["service_request_id"], again["token"]) == (first["service_request_id"], first["token"])
    assert again["access_code"] == first["access_code"]
    assert db.session.query(Case).count() == 1
    case = db.session.scalar(select(Case))
    box = identity_box()
    assert case.real_name and box.open(case.reporter_name_enc) == "李四"
    assert box.open(case.reporter_phone_enc) == "13900001111"
    assert post(live, key, phone="12345", last_name="李", first_name="四").status_code == 400

    web_key = new_client("便民 App", channel="web", org_code="demo-town-1")
    made = post(live, web_key, **{"attribute[subject_unit]": "demo-county-gov"})
    assert made.status_code == 400  # outside the client's org
    [receipt] = post(live, web_key).json()
    case = db.session.scalar(select(Case).where(Case.tracking_no == receipt["service_request_id"]))
    assert case.channel == "web" and case.subject_org_id == db.session.scalar(
        select(Org.id).where(Org.code == "demo-town-1")
    )


def test_admin_creates_a_client_sees_the_key_once_and_revokes_it(app, client, demo, live):
    token = login(client, "demo-admin")
    assert "Open311 接入" in client.get("/staff/admin/").get_data(as_text=True)
    page = client.get("/staff/admin/open311/")
    assert page.status_code == 200
    refused = client.post("/staff/admin/open311/", data={"csrf_token": token, "name": "", "org": "1"})
    assert refused.status_code == 422 and "请填写接入方名称" in refused.get_data(as_text=True)
    no_csrf = client.post("/staff/admin/open311/", data={"name": "x", "org": "1", "channel": "hotline"})
    assert no_csrf.status_code == 400

    county = db.session.scalar(select(Org).where(Org.parent_id.is_(None)))
    created = client.post(
        "/staff/admin/open311/",
        data={"csrf_token": token, "name": "县12345热线", "org": county.id, "channel": "hotline"},
    )
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    key = re.search(r'<code class="secret">([^<]+)</code>', created.get_data(as_text=True)).group(1)
    row = db.session.scalar(select(Open311Client))
    assert key not in row.key_hash and row.key_prefix == key[:12] and not row.verified_callers
    listing = client.get("/staff/admin/open311/").get_data(as_text=True)
    assert key not in listing and row.key_prefix in listing
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all()
    assert [a.detail["what"] for a in audit] == ["open311.create"] and key not in str(audit[0].detail)

    assert post(live, key).status_code == 200
    revoked = client.post(f"/staff/admin/open311/{row.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    assert post(live, key).status_code == 403
    assert requests.get(f"{live}/requests.json", auth=(key, ""), timeout=10).status_code == 403

    other = app.test_client()
    login(other, "demo-intake")
    assert other.get("/staff/admin/open311/").status_code == 403
    town_org = db.session.scalar(select(Org).where(Org.code == "demo-town-1"))
    create_user(db.session, username="town-admin", org=town_org, role="admin", password=PASSWORD)
    db.session.commit()
    town = app.test_client()
    login(town, "town-admin")  # an admin, but not of the whole system
    assert town.get("/staff/admin/open311/").status_code == 403


def test_the_key_has_its_own_rate_limit(app, live):
    app.config["OPEN311_RATE_LIMIT"] = "3/hour"
    key = new_client()
    answers = [requests.get(f"{live}/requests.json", auth=(key, ""), timeout=10) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()[0]["code"] == 429 and int(answers[-1].headers["Retry-After"]) > 0
    assert requests.get(f"{live}/requests.json", auth=(new_client("另一平台"), ""), timeout=10).ok
