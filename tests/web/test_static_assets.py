"""Page weight: content-hashed static URLs, their caching, and gzip/brotli (supervise/static_assets.py)."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import brotli
import pytest
import time_machine
from flask import url_for

from supervise.app import ROOT
from tests.web.test_reports_ui import AFTER, WEEK, build_week
from tests.web.test_staff import login

STATIC = ROOT / "static"
ECHARTS = "vendor/echarts/echarts.min.js"


def digest(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def static_urls(page: str) -> list[str]:
    return [url.replace("&amp;", "&") for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page)]


def test_every_static_url_carries_the_content_hash(app, client):
    with app.test_request_context():
        assert (
            url_for("static", filename="css/site.css") == f"/static/css/site.css?v={digest('css/site.css')}"
        )
        # No such file: a plain URL rather than an error, so a typo shows up as a 404 in the browser.
        assert url_for("static", filename="css/nope.css") == "/static/css/nope.css"
    # Templates need no change: the hook applies to every url_for('static', ...).
    page = client.get("/staff/login").get_data(as_text=True)
    assert f"/static/css/site.css?v={digest('css/site.css')}" in static_urls(page)
    assert f"/static/css/staff.css?v={digest('css/staff.css')}" in static_urls(page)


def test_hashed_urls_are_immutable_and_others_short_lived(client):
    current = client.get(f"/static/{ECHARTS}?v={digest(ECHARTS)}")
    assert current.status_code == 200
    assert current.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert current.data == (STATIC / ECHARTS).read_bytes()  # no Accept-Encoding: the file as it is
    assert "Accept-Encoding" in current.headers["Vary"]
    # Without the hash, or with a hash of an older version, the answer must not be kept for long.
    for url in (f"/static/{ECHARTS}", f"/static/{ECHARTS}?v=000000000000"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=300"
    # Revalidation still works (short-lived URLs are refetched): a 304 keeps the caching header.
    etag = current.headers["ETag"]
    again = client.get(f"/static/{ECHARTS}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"),
    [("gzip, deflate, br", "br", brotli.decompress), ("gzip, deflate", "gzip", gzip.decompress)],
)
def test_static_text_is_compressed_when_the_browser_accepts_it(client, accept, encoding, decode):
    original = (STATIC / ECHARTS).read_bytes()
    response = client.get(f"/static/{ECHARTS}?v={digest(ECHARTS)}", headers={"Accept-Encoding": accept})
    assert response.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    assert int(response.headers["Content-Length"]) == len(response.data) < len(original) // 2
    assert decode(response.data) == original
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # The compressed body has its own validator, and revalidating it gives a 304.
    etag = response.headers["ETag"]
    assert etag.endswith(f':{encoding}"')
    again = client.get(f"/static/{ECHARTS}", headers={"Accept-Encoding": accept, "If-None-Match": etag})
    assert again.status_code == 304
    # "br;q=0" is a refusal, not a preference.
    refused = client.get(f"/static/{ECHARTS}", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["Content-Encoding"] == "gzip"


def test_public_pages_are_compressed_and_secret_bearing_ones_are_not(client):
    home = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert home.headers.get("Content-Encoding") == "gzip"
    assert "<html" in gzip.decompress(home.data).decode()
    # The sign-in form holds a CSRF token: no-store, so never compressed (BREACH, static_assets.py).
    login_page = client.get("/staff/login", headers={"Accept-Encoding": "gzip, br"})
    assert "no-store" in login_page.headers["Cache-Control"]
    assert "Content-Encoding" not in login_page.headers
    assert 'name="csrf_token"' in login_page.get_data(as_text=True)


def test_the_echarts_build_recipe_is_not_served(client):
    assert Path(STATIC / "vendor/echarts/build/package.json").exists()
    for name in ("package.json", "package-lock.json", "entry.js", "node_modules/echarts/package.json"):
        assert client.get(f"/static/vendor/echarts/build/{name}").status_code == 404


def test_the_weekly_report_weighs_under_a_fifth_of_a_megabyte(app, demo):
    """The report page with everything it loads, as a browser with brotli gets it on a first visit
    (1.06 MB before: the full ECharts, nothing compressed)."""
    build_week()
    with time_machine.travel(AFTER, tick=True):
        client = app.test_client()
        assert login(client, "demo-supervisor").status_code == 302
        headers = {"Accept-Encoding": "gzip, deflate, br"}
        page = client.get(f"/staff/reports/{WEEK}", headers=headers)
        urls = static_urls(page.get_data(as_text=True))
        assert f"/static/{ECHARTS}?v={digest(ECHARTS)}" in urls
        total = len(page.data)
        for url in urls:
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert response.headers["Content-Encoding"] == "br", url
            total += len(response.data)
        assert total < 200_000, total
