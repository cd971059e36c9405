"""Issue 12, items 2 and 3: guessing access codes and passwords. Failures are counted before they
are judged; nobody else's guesses lock an owner out of their own case or account; a wrong password
for a real account costs what an unknown name costs. Each test failed before the fix."""

from __future__ import annotations

import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from supervise.extensions import db
from supervise.staff.models import User
from supervise.throttle import Budget
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION

OWNER = {"REMOTE_ADDR": "10.20.0.1"}
GUESSER = {"REMOTE_ADDR": "10.66.0.9"}


def _case(client):
    body = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()
    ISSUED_ACCESS_CODES.append(body["access_code"])
    return body["tracking_no"], body["access_code"]


def _track(client, ref, code, environ):
    return client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}, environ_base=environ)


def test_guessing_a_number_does_not_lock_its_owner_out(app, client, demo):
    app.config["TRACK_FAILURE_LIMIT"] = "3/hour"
    ref, code = _case(client)
    for n in range(3):
        assert _track(client, ref, f"2222-3333-444{n}", GUESSER).status_code == 404
    # The number's budget is spent: wrong codes are refused from anywhere …
    refused = _track(client, ref, "2222-3333-4449", {"REMOTE_ADDR": "10.66.0.10"})
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "too_many_requests"
    # … but the citizen's own code still opens the case, and rating and supplements work.
    assert _track(client, ref, code, OWNER).status_code == 200
    added = client.post(
        "/api/v1/track/supplement",
        json={"tracking_no": ref, "access_code": code, "text": "补充：还有一张收据"},
        environ_base=OWNER,
    )
    assert added.status_code == 200


def test_parallel_guesses_cannot_pass_the_limit(app, demo):
    app.config["TRACK_FAILURE_LIMIT"] = "10/hour"
    budget = Budget("parallel-test", "TRACK_FAILURE_LIMIT")

    def attempt(_):
        with app.test_request_context():
            return budget.reserve("one-number")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(40)))
    assert results.count(True) == 10


def test_parallel_wrong_codes_through_http_get_at_most_the_limit(app, demo):
    app.config["TRACK_FAILURE_LIMIT"] = "10/hour"
    ref, _ = _case(app.test_client())

    def guess(n):
        with app.test_client() as client:
            return _track(client, ref, f"2222-3333-{n:04d}", {"REMOTE_ADDR": f"10.77.0.{n}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, range(30)))
    assert statuses.count(404) == 10 and statuses.count(429) == 20


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _login(client, username, password, environ):
    token = CSRF.search(client.get("/staff/login", environ_base=environ).get_data(as_text=True)).group(1)
    return client.post(
        "/staff/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=environ,
    )


def test_wrong_guesses_elsewhere_do_not_lock_the_right_password_out_of_a_known_device(app, demo):
    app.config["LOGIN_FAILURE_LIMIT_USER"] = "3/15 minutes"
    owner = app.test_client()
    assert _login(owner, "demo-supervisor", "demo-password", OWNER).status_code == 302
    guesser = app.test_client()
    for _ in range(3):
        assert _login(guesser, "demo-supervisor", "guess", GUESSER).status_code == 401
    # The guesser, even with the right password, is now refused; the owner's browser is not.
    assert _login(guesser, "demo-supervisor", "demo-password", GUESSER).status_code == 429
    fresh_browser_same_office = app.test_client()
    assert _login(fresh_browser_same_office, "demo-supervisor", "demo-password", OWNER).status_code == 302
    assert _login(owner, "demo-supervisor", "demo-password", {"REMOTE_ADDR": "10.20.9.9"}).status_code == 302


def test_a_wrong_password_costs_what_an_unknown_name_costs(app, demo):
    from supervise.staff.services import create_user

    app.config["PASSWORD_HASH_METHOD"] = "scrypt"  # what production uses
    create_user(db.session, username="real-account", org=_county(), role="intake", password="a-long-password")
    db.session.commit()
    client = app.test_client()

    def attempt_ms(username: str, n: int) -> float:
        start = time.perf_counter()
        assert _login(client, username, "wrong-password", {"REMOTE_ADDR": f"10.88.{n}.1"}).status_code == 401
        return (time.perf_counter() - start) * 1000

    app.config["LOGIN_FAILURE_LIMIT_USER"] = app.config["LOGIN_FAILURE_LIMIT_IP"] = "100/hour"
    # Alternated, so a busy machine slows both alike; the median of the per-pair ratios.
    ratios = [attempt_ms("real-account", n) / attempt_ms("no-such-account", n) for n in range(9)]
    # Before: 156 ms against 21 ms (7×). Now the same hash work either way.
    assert 1 / 3 < statistics.median(ratios) < 3, ratios


def _county():
    return db.session.scalar(select(User).where(User.username == "demo-intake")).org
