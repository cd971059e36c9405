"""The OpenAPI document is the API (issue 12, item 9).

What /api/v1/openapi.json says is checked against what the app does: how each operation is
authenticated, which statuses it answers, the error body those statuses carry, and the
multipart submission with its photos. test_schemathesis.py then throws generated requests at
every operation of the same document.
"""

from __future__ import annotations

import io

import pytest

from tests.conftest import VALID_SUBMISSION

DOC = "/api/v1/openapi.json"
ERROR_REF = "#/components/schemas/Error"

PUBLIC = {
    ("get", "/api/v1/categories"),
    ("get", "/api/v1/units"),
    ("post", "/api/v1/cases"),
    ("post", "/api/v1/phone-codes"),  # issue 18: verified phones
    ("post", "/api/v1/track"),
    ("post", "/api/v1/track/rating"),
    ("post", "/api/v1/track/supplement"),
}

# Every operation and the statuses it answers (success first). A new operation, or a status one
# gains or loses, must be added here and to its `documented(...)` decorator.
STATUSES = {
    ("get", "/api/v1/categories"): {200, 400},
    ("get", "/api/v1/units"): {200, 400},
    ("post", "/api/v1/cases"): {201, 400, 413, 415, 422, 429, 503},
    ("post", "/api/v1/phone-codes"): {202, 400, 422, 429},  # issue 18: verified phones
    ("post", "/api/v1/track"): {200, 400, 404, 422, 429},
    ("post", "/api/v1/track/rating"): {200, 400, 404, 409, 422, 429},
    ("post", "/api/v1/track/supplement"): {200, 400, 404, 409, 422, 429},
    ("get", "/api/v1/cases"): {200, 400, 401, 422},
    ("get", "/api/v1/cases/{ref}"): {200, 400, 401, 404},
    ("post", "/api/v1/cases/{ref}/actions"): {200, 400, 401, 403, 404, 409, 422},
    ("post", "/api/v1/cases/{ref}/identity"): {200, 400, 401, 403, 404, 422},
    ("get", "/api/v1/reports/weekly"): {200, 400, 401, 403, 404, 422},
    ("get", "/api/v1/stats"): {200, 400, 401, 403, 404, 422},
}

# A request each secured operation would accept from a signed-in supervisor (so that refusing it
# without credentials is about the credentials, not the input).
VALID_STAFF_REQUESTS = {
    ("get", "/api/v1/cases"): {},
    ("get", "/api/v1/cases/{ref}"): {},
    ("post", "/api/v1/cases/{ref}/actions"): {"json": {"action": "accept", "version": 1}},
    ("post", "/api/v1/cases/{ref}/identity"): {"json": {"reason": "核实反映情况"}},
    ("get", "/api/v1/reports/weekly"): {},
    ("get", "/api/v1/stats"): {},
}


@pytest.fixture
def doc(client):
    response = client.get(DOC)
    assert response.status_code == 200
    return response.get_json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def _resolve(doc, schema):
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


def _conforms(doc, schema, value) -> list[str]:
    """The ways `value` breaks `schema` (the subset of JSON Schema the error body uses)."""
    schema = _resolve(doc, schema)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{value!r} is not an object"]
        problems = [f"{name} missing" for name in schema.get("required", []) if name not in value]
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            problems += [f"{name} not documented" for name in value if name not in properties]
        for name, sub in properties.items():
            if name in value:
                problems += [f"{name}: {p}" for p in _conforms(doc, sub, value[name])]
        return problems
    if kind == "string" and not isinstance(value, str):
        return [f"{value!r} is not a string"]
    return []


def _real(client, method, path, **kwargs):
    return getattr(client, method)(path.replace("{ref}", kwargs.pop("ref", "MS-NOPE")), **kwargs)


# -- security ----------------------------------------------------------------------------------


def test_security_schemes_name_the_bearer_token_and_the_staff_session(doc, app):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert "supervise user token" in schemes["bearerAuth"]["description"]
    session = schemes["staffSession"]
    assert (session["type"], session["in"]) == ("apiKey", "cookie")
    assert session["name"] == app.config["SESSION_COOKIE_NAME"]
    assert "X-CSRFToken" in session["description"]


def test_every_operation_states_its_security(doc):
    seen = set()
    for method, path, operation in _operations(doc):
        seen.add((method, path))
        assert "security" in operation, f"{method.upper()} {path} says nothing about security"
        if (method, path) in PUBLIC:
            assert operation["security"] == [], f"{method.upper()} {path} is public"
        else:
            assert {"bearerAuth": []} in operation["security"], f"{method.upper()} {path} needs a token"
            assert {"staffSession": []} in operation["security"]
            assert "401" in operation["responses"]
    assert seen == set(STATUSES), "the operations changed: update STATUSES and this file"


@pytest.mark.parametrize("credentials", [None, "Bearer not-a-token", "Basic ZGVtbzpkZW1v"])
def test_every_secured_operation_refuses_a_caller_without_credentials(doc, client, submit, credentials):
    """What schemathesis's ignored_auth check would do: the operation's valid request, sent
    without (valid) credentials, is refused with the documented 401."""
    ref = submit()["tracking_no"]
    secured = [(m, p) for m, p, op in _operations(doc) if op["security"]]
    assert set(secured) == set(VALID_STAFF_REQUESTS)
    headers = {"Authorization": credentials} if credentials else {}
    for method, path in secured:
        response = _real(
            client, method, path, ref=ref, headers=headers, **VALID_STAFF_REQUESTS[(method, path)]
        )
        assert response.status_code == 401, (method, path, response.get_json())
        assert response.get_json()["error"]["code"] == "unauthorized"


# -- statuses and the error body ---------------------------------------------------------------


def test_each_operation_documents_the_statuses_it_answers(doc):
    for method, path, operation in _operations(doc):
        documented = {int(status) for status in operation["responses"]}
        assert documented == STATUSES[(method, path)], f"{method.upper()} {path}"
        assert "default" not in operation["responses"]


def test_every_error_response_documents_the_real_error_body(doc):
    for method, path, operation in _operations(doc):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, f"{method.upper()} {path} {status}"
            assert response["description"]


def test_the_documented_error_schema_is_the_error_shape(doc):
    error = _resolve(doc, {"$ref": ERROR_REF})
    assert set(error["properties"]) == {"error"} and error["required"] == ["error"]
    body = _resolve(doc, error["properties"]["error"])
    assert set(body["properties"]) == {"code", "message", "details"}
    assert set(body["required"]) == {"code", "message", "details"}
    assert body["properties"]["code"]["type"] == body["properties"]["message"]["type"] == "string"
    assert body["properties"]["details"]["type"] == "object"
    # flask-smorest's own Error schema ({code: int, status, message, errors}) is gone
    assert "status" not in body["properties"] and "errors" not in body["properties"]


def test_the_success_answers_are_documented(doc):
    submit = doc["paths"]["/api/v1/cases"]["post"]["responses"]
    assert set(submit) & {"200", "201"} == {"201"}
    assert submit["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Submitted"
    }
    weekly = doc["paths"]["/api/v1/reports/weekly"]["get"]["responses"]["200"]
    assert weekly["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WeeklyReport"}


def _photo() -> io.BytesIO:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    out.seek(0)
    return out


def test_real_errors_have_the_documented_status_and_body(app, doc, client, auth, submit):
    """One real answer for each error status an operation documents that a test can provoke
    cheaply, each checked against the operation's document."""
    mine = submit(name="张三", phone="13812345678")
    anonymous = submit()
    supervisor, intake, handler = auth("demo-supervisor"), auth("demo-intake"), auth("demo-handler")
    too_many = {"photos": [(_photo(), f"p{i}.png") for i in range(7)]}
    assert client.post("/api/v1/phone-codes", json={"phone": "13900001111"}).status_code == 202  # issue 18
    cases = [
        ("post", "/api/v1/cases", 400, {"data": "{not json", "content_type": "application/json"}),
        ("post", "/api/v1/cases", 400, {"json": ["a", "list"]}),
        ("post", "/api/v1/cases", 415, {"data": "hello", "content_type": "text/plain"}),
        ("post", "/api/v1/cases", 422, {"json": {**VALID_SUBMISSION, "category": "no-such"}}),
        ("post", "/api/v1/cases", 422, {"data": {**VALID_SUBMISSION, **too_many}}),
        # issue 18 (verified phones): a bad number, broken JSON, a second code too soon
        ("post", "/api/v1/phone-codes", 422, {"json": {"phone": "12345"}}),
        ("post", "/api/v1/phone-codes", 400, {"data": "{not json", "content_type": "application/json"}),
        ("post", "/api/v1/phone-codes", 429, {"json": {"phone": "13900001111"}}),
        ("post", "/api/v1/track", 404, {"json": {"tracking_no": mine["tracking_no"], "access_code": "x"}}),
        ("post", "/api/v1/track", 422, {"json": {}}),
        ("post", "/api/v1/track", 400, {"json": {"tracking_no": "a\x00", "access_code": "x"}}),
        (
            "post",
            "/api/v1/track/rating",
            409,
            {
                "json": {
                    "tracking_no": mine["tracking_no"],
                    "access_code": mine["access_code"],
                    "rating": "satisfied",
                }
            },
        ),
        ("get", "/api/v1/cases", 401, {}),
        ("get", "/api/v1/cases", 422, {"query_string": {"limit": 0}, "headers": supervisor}),
        ("get", "/api/v1/cases/{ref}", 404, {"headers": supervisor}),
        (
            "post",
            "/api/v1/cases/{ref}/actions",
            409,
            {"ref": mine["tracking_no"], "json": {"action": "accept", "version": 99}, "headers": intake},
        ),
        (
            "post",
            "/api/v1/cases/{ref}/actions",
            403,
            {"ref": mine["tracking_no"], "json": {"action": "accept", "version": 1}, "headers": supervisor},
        ),
        (
            "post",
            "/api/v1/cases/{ref}/actions",
            422,
            {"ref": mine["tracking_no"], "json": {}, "headers": supervisor},
        ),
        (
            "post",
            "/api/v1/cases/{ref}/identity",
            403,
            {"ref": mine["tracking_no"], "json": {"reason": "核实"}, "headers": handler},
        ),
        (
            "post",
            "/api/v1/cases/{ref}/identity",
            422,
            {"ref": anonymous["tracking_no"], "json": {"reason": "核实"}, "headers": supervisor},
        ),
        ("get", "/api/v1/reports/weekly", 422, {"query_string": {"week": "last"}, "headers": supervisor}),
        ("get", "/api/v1/reports/weekly", 404, {"query_string": {"week": "2026-W01"}, "headers": supervisor}),
        ("get", "/api/v1/stats", 403, {"headers": handler}),
        ("get", "/api/v1/stats", 422, {"query_string": {"period": "decade"}, "headers": supervisor}),
        ("get", "/api/v1/stats", 404, {"query_string": {"org": "no-such-org"}, "headers": supervisor}),
    ]
    for method, path, status, kwargs in cases:
        response = _real(client, method, path, **kwargs)
        where = f"{method.upper()} {path} → {response.status_code}"
        assert response.status_code == status, (where, response.get_json())
        assert str(status) in doc["paths"][path][method]["responses"], f"{where} is not documented"
        assert not _conforms(doc, {"$ref": ERROR_REF}, response.get_json()), (where, response.get_json())


def test_the_rate_limit_answer_is_documented(app, doc, client):
    app.config["TRACK_RATE_LIMIT"] = "1/hour"
    body = {"json": {"tracking_no": "MS-NOPE", "access_code": "x"}}
    client.post("/api/v1/track", **body)
    response = client.post("/api/v1/track", **body)
    assert response.status_code == 429
    assert "429" in doc["paths"]["/api/v1/track"]["post"]["responses"]
    assert not _conforms(doc, {"$ref": ERROR_REF}, response.get_json())


# -- the multipart submission ------------------------------------------------------------------


def test_the_multipart_submission_documents_its_photos(doc):
    body = doc["paths"]["/api/v1/cases"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    }
    form = body["content"]["multipart/form-data"]
    schema = _resolve(doc, form["schema"])
    photos = schema["properties"]["photos"]
    assert photos["type"] == "array" and photos["maxItems"] == 6
    assert photos["items"] == {"type": "string", "format": "binary"}
    assert "image/jpeg" in form["encoding"]["photos"]["contentType"]
    assert {"category", "subject", "content"} <= set(schema["required"])
    json_schema = _resolve(doc, body["content"]["application/json"]["schema"])
    assert set(schema["properties"]) - set(json_schema["properties"]) == {"photos"}


def test_a_multipart_submission_with_photos_is_answered_as_documented(doc, client, demo):
    response = client.post(
        "/api/v1/cases",
        data={**VALID_SUBMISSION, "photos": [(_photo(), "a.png"), (_photo(), "b.png")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    submitted = _resolve(doc, {"$ref": "#/components/schemas/Submitted"})
    assert set(response.get_json()) == set(submitted["properties"])
    from tests.conftest import ISSUED_ACCESS_CODES

    ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])


def test_the_lookup_answer_is_the_documented_one(client, doc, submit):
    """The citizen's case view passes through its schema: ISO 8601 times, as documented (it used
    to leave as HTTP dates, "Tue, 01 Dec 2026 10:27:56 GMT", past the schema)."""
    mine = submit()
    response = client.post(
        "/api/v1/track", json={"tracking_no": mine["tracking_no"], "access_code": mine["access_code"]}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == set(_resolve(doc, {"$ref": "#/components/schemas/PublicCase"})["properties"])
    assert "T" in body["received_at"] and not body["received_at"].endswith("GMT")
    assert len(body["response_due_date"]) == 10  # YYYY-MM-DD
