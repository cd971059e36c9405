"""Issue 12, item 7: odd input gets a clear 4xx (the JSON error shape on /api/, the error page
elsewhere), never a 500, and field messages are Chinese. Each test failed before the fix (the NUL
bytes on PostgreSQL, where text cannot hold them)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supervise.cases.models import Case
from supervise.extensions import db
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION


def _error(response):
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]


@pytest.mark.parametrize(
    "payload",
    [
        '{"tracking_no": "MS2026-000001\\u0000", "access_code": "2222-3333-4444"}',
        '{"tracking_no": "MS2026-000001", "access_code": "\\ud800abc"}',
    ],
    ids=["nul", "lone-surrogate"],
)
def test_bad_characters_in_an_unauthenticated_lookup_are_a_400(client, demo, payload):
    response = client.post("/api/v1/track", data=payload, content_type="application/json")
    assert response.status_code == 400 and _error(response)["message"] == "提交的内容包含无效字符"


def test_bad_characters_in_a_submission_form_and_a_query(client, auth):
    assert client.post("/api/v1/cases", json={**VALID_SUBMISSION, "subject": "某人\x00"}).status_code == 400
    page = client.post("/report", data={"subject": "a\x00b", "content": "x" * 20})
    assert page.status_code == 400 and "无效字符" in page.get_data(as_text=True)
    queue = client.get("/api/v1/cases?q=%00", headers=auth("demo-intake"))
    assert queue.status_code == 400


def test_json_nested_absurdly_deep_is_a_400(client, demo):
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/v1/cases", data=deep, content_type="application/json")
    assert response.status_code == 400 and _error(response)["message"] == "提交的数据嵌套过深"


def test_a_far_date_filter_is_a_422(client, auth):
    response = client.get("/api/v1/cases?received_to=9999-12-31", headers=auth("demo-intake"))
    assert response.status_code == 422 and "2000–2099" in str(_error(response)["details"])


def test_a_crlf_or_backslash_in_the_language_switch_goes_home(client, demo):
    for target in ("/track%0d%0aSet-Cookie:%20x=1", "/\\evil.example"):
        response = client.get(f"/lang/en?next={target}")
        assert response.status_code == 302 and response.headers["Location"] == "/"
        assert "x=1" not in str(response.headers)


def test_a_signed_file_token_of_another_shape_is_a_404(app, client, demo):
    from supervise.intake.files import _signer

    with app.test_request_context():
        for payload in ("not-a-list", {"a": 1}, [1], ["1", "x"]):
            assert client.get(f"/files/{_signer().dumps(payload)}").status_code == 404


def test_full_width_digits_are_not_a_phone_number(client, demo):
    response = client.post(
        "/api/v1/cases", json={**VALID_SUBMISSION, "name": "张三", "phone": "１３８１２３４５６７８"}
    )
    assert response.status_code == 422 and "手机号码" in str(_error(response)["details"]["phone"])
    arabic = client.post("/api/v1/cases", json={**VALID_SUBMISSION, "name": "张三", "phone": "١٣٨١٢٣٤٥٦٧٨"})
    assert arabic.status_code == 422


def test_a_blank_name_is_no_real_name(client, demo):
    response = client.post("/api/v1/cases", json={**VALID_SUBMISSION, "name": "   "})
    assert response.status_code == 201
    ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
    case = db.session.scalar(select(Case).where(Case.tracking_no == response.get_json()["tracking_no"]))
    assert case.real_name is False and case.reporter_name_enc is None


def test_field_messages_are_chinese(client, auth, demo):
    ref = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()
    ISSUED_ACCESS_CODES.append(ref["access_code"])
    response = client.post(
        f"/api/v1/cases/{ref['tracking_no']}/actions",
        headers=auth("demo-intake"),
        json={"action": "extend", "version": "one", "days": "x", "reason": "需核查"},
    )
    details = _error(response)["details"]
    assert details["version"] == ["请填写整数"] and details["days"] == ["请填写整数"]
    wrong_type = client.post("/api/v1/cases", json={**VALID_SUBMISSION, "about_org_head": "maybe"})
    assert _error(wrong_type)["details"]["about_org_head"] == ["请填写是或否"]
