"""Issue 12, item 6: HSTS in production; no staff page or staff API answer is kept by a cache.

Before the fix there was no Strict-Transport-Security anywhere, and the staff pages (the case page
that shows a revealed name and phone included) had no Cache-Control. Each test failed on that code.
"""

from __future__ import annotations

import re
import secrets

import pytest
from cryptography.fernet import Fernet

from supervise.app import create_app
from supervise.config import load_config
from tests.conftest import app_config

HSTS = "max-age=31536000; includeSubDomains"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def signed_in(app, username: str):
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    response = client.post(
        "/staff/login", data={"username": username, "password": "demo-password", "csrf_token": token}
    )
    assert response.status_code == 302
    return client


def test_production_turns_hsts_on_and_development_leaves_it_off(monkeypatch, tmp_path):
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))
    for name in ("HSTS", "SUPERVISE_ENV", "METRICS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert load_config()["HSTS"] is False
    monkeypatch.setenv("HSTS", "true")
    assert load_config()["HSTS"] is True  # development over https, when the config says so
    monkeypatch.delenv("HSTS")
    monkeypatch.setenv("SUPERVISE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("SUPERVISE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://supervise@db:5432/supervise")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    assert load_config()["HSTS"] is True


def test_hsts_is_on_every_response_when_on(services, _schema, demo):
    app = create_app(app_config(services, HSTS=True))
    client = app.test_client()
    for path in ("/", "/report", "/track", "/staff/login", "/api/v1/categories", "/healthz", "/nowhere"):
        assert client.get(path).headers.get("Strict-Transport-Security") == HSTS, path


def test_no_hsts_over_http_in_development_and_tests(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


STAFF_PAGES = {
    "demo-supervisor": [
        "/staff/",
        "/staff/cases/{ref}",
        "/staff/reports/",
        "/staff/escalations",
        "/staff/notifications",
        "/staff/password",
    ],
    "demo-admin": [
        "/staff/admin/",
        "/staff/admin/users",
        "/staff/admin/orgs",
        "/staff/admin/points",
        "/staff/audit",
    ],
}


@pytest.mark.parametrize("username", list(STAFF_PAGES))
def test_every_staff_page_is_no_store(app, demo, submit, username):
    ref = submit(name="张三", phone="13812345678")["tracking_no"]
    client = signed_in(app, username)
    for path in STAFF_PAGES[username]:
        response = client.get(path.format(ref=ref))
        assert response.status_code == 200, path
        assert response.headers.get("Cache-Control") == "no-store", path
    for path in ("/staff/nowhere", "/staff/login", "/staff"):  # errors, the login form, the redirect
        assert client.get(path).headers.get("Cache-Control") == "no-store", path


def test_the_case_page_with_a_revealed_name_and_phone_is_no_store(app, demo, submit):
    ref = submit(name="张三丰", phone="13812345678")["tracking_no"]
    intake = signed_in(app, "demo-intake")
    token = csrf_token(intake, f"/staff/cases/{ref}")
    shown = intake.post(f"/staff/cases/{ref}/identity", data={"csrf_token": token, "reason": "电话核实情况"})
    assert "13812345678" in shown.get_data(as_text=True)
    assert shown.headers.get("Cache-Control") == "no-store"


def test_every_staff_api_answer_is_no_store(client, auth, submit):
    ref = submit(name="李四", phone="13900001111")["tracking_no"]
    headers = auth("demo-intake")
    answers = [
        client.get("/api/v1/cases", headers=headers),
        client.get(f"/api/v1/cases/{ref}", headers=headers),
        client.post(f"/api/v1/cases/{ref}/identity", headers=headers, json={"reason": "核实情况"}),
        client.get("/api/v1/reports/weekly", headers=headers),
        client.get("/api/v1/cases"),  # 401
    ]
    for response in answers:
        assert response.headers.get("Cache-Control") == "no-store", (
            response.request.path,
            response.status_code,
        )
    assert answers[2].get_json()["phone"] == "13900001111"
