"""Bad input → 400/422 with field messages in the JSON error shape, and nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from supervise.cases.models import Case, Event
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from tests.conftest import VALID_SUBMISSION


def nothing_written() -> bool:
    return all(
        db.session.scalar(select(func.count()).select_from(m)) == 0 for m in (Case, Event, OutboxMessage)
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"content": None}, "content"),
        ({"content": "太短"}, "content"),
        ({"content": "长" * 5001}, "content"),
        ({"subject": ""}, "subject"),
        ({"category": "no-such-category"}, "category"),
        ({"category": 42}, "category"),
        ({"occurred_at": "昨天"}, "occurred_at"),
        ({"phone": "12345", "name": "王五"}, "phone"),
        ({"name": "王五"}, "phone"),
        ({"about_org_head": "maybe"}, "about_org_head"),
        ({"point": "not-a-point"}, "point"),
        ({"surprise": "field"}, "surprise"),
    ],
)
def test_invalid_submission_is_422_with_the_field_named(client, demo, change, field):
    body = {**VALID_SUBMISSION, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/api/v1/cases", json=body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["details"], error
    assert nothing_written()


def test_malformed_json_is_400(client, demo):
    response = client.post("/api/v1/cases", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.get_json()["error"]) == {"code", "message", "details"}
    assert nothing_written()


def test_json_that_is_not_an_object_is_400(client, demo):
    response = client.post("/api/v1/cases", json=["a", "list"])
    assert response.status_code == 400
    assert nothing_written()


def test_messages_are_chinese(client, demo):
    response = client.post("/api/v1/cases", json={"category": "conduct"})
    details = response.get_json()["error"]["details"]
    assert details["content"] == ["此项为必填项"]


def test_form_post_is_accepted_and_blank_fields_mean_absent(client, demo):
    form = {**VALID_SUBMISSION, "name": "", "phone": "", "location": ""}
    response = client.post("/api/v1/cases", data=form)
    assert response.status_code == 201, response.get_json()


def test_staff_action_validation(client, auth, demo):
    from tests.web.test_loop import act

    ref = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()["tracking_no"]
    headers = auth("demo-intake")
    assert act(client, headers, ref, "reject", 1).get_json()["error"]["details"] == {
        "reason": ["此操作需要填写此项"],
        "reason_code": ["此操作需要填写此项"],
    }
    unlisted = act(client, headers, ref, "reject", 1, reason="不予受理", reason_code="whim")
    assert unlisted.status_code == 422 and "reason_code" in unlisted.get_json()["error"]["details"]
    assert act(client, headers, ref, "fly", 1).status_code == 422
    assert (
        client.post(
            f"/api/v1/cases/{ref}/actions", headers=headers, json={"action": "accept", "version": "1"}
        ).status_code
        == 422
    )
    assert act(client, headers, ref, "transfer", 1, org="nowhere").get_json()["error"]["details"] == {
        "org": ["找不到该单位"]
    }


def test_bad_queue_arguments(client, auth, demo):
    headers = auth("demo-intake")
    assert client.get("/api/v1/cases?queue=everything", headers=headers).status_code == 422
    assert client.get("/api/v1/cases?cursor=%%%", headers=headers).status_code == 422
    assert client.get("/api/v1/cases?status=sleeping", headers=headers).status_code == 422
