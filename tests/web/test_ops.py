"""Health, readiness, the OpenAPI document."""

from supervise.app import create_app
from tests.conftest import app_config


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_without_redis(services, _schema, tmp_path):
    app = create_app(app_config(services, REDIS_URL=f"unix://{tmp_path}/nothing.sock"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("error")


def test_readyz_is_503_without_database(services, _schema, tmp_path):
    app = create_app(
        app_config(services, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("error")


def test_openapi_document_lists_the_contract(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path in (
        "/api/v1/cases",
        "/api/v1/cases/{ref}",
        "/api/v1/cases/{ref}/actions",
        "/api/v1/track",
        "/api/v1/track/rating",
        "/api/v1/track/supplement",
        "/api/v1/categories",
    ):
        assert path in paths, path
    assert {"get", "post"} <= set(paths["/api/v1/cases"])


def test_categories_are_public(client, demo):
    cats = client.get("/api/v1/categories").get_json()
    assert {"code": "petty_corruption", "name": "吃拿卡要"} in cats


def test_errors_outside_the_api_are_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert client.get("/api/v1/nothing").get_json()["error"]["code"] == "not_found"
