"""Submission limits that fit a township's shared Wi-Fi (issue 14, item 7): the API's bucket and the
web forms' are separate; above the forms' limit a question, above their ceiling a 429; known
addresses get their own limit; an admin's change takes effect without a restart. Real Redis (the
tests' own), through the real views."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, func, insert, select

from supervise import refdata
from supervise.cases.models import Case
from supervise.extensions import db
from supervise.intake.limits import current_limits, parse_allowlist, parse_limit
from supervise.queueing import redis_connection
from supervise.settings import Setting, set_value
from tests.web.test_admin import changes, login

FORM = {
    "category": "petty_corruption",
    "subject": "城关镇便民服务中心窗口",
    "content": "办理低保材料时窗口人员暗示要请吃饭才给盖章。",
    "consent": "yes",
}
API = {k: v for k, v in FORM.items() if k != "consent"}
HALL = {"REMOTE_ADDR": "10.20.3.4"}  # a township service hall's Wi-Fi, behind one address
OTHER = {"REMOTE_ADDR": "10.99.0.1"}


def post_form(client, data=None, ip=HALL, url="/report"):
    return client.post(url, data={**FORM, **(data or {})}, environ_base=ip)


def post_api(client, ip=HALL):
    return client.post("/api/v1/cases", json=API, environ_base=ip)


def cases() -> int:
    return db.session.scalar(select(func.count()).select_from(Case))


def question(html: str) -> tuple[str, str]:
    """The nonce and the right answer of the question in a form page."""
    nonce = re.search(r'name="challenge_nonce" value="([^"]+)"', html).group(1)
    a, b = re.search(r"(\d+) 加 (\d+) 等于几", html).groups()
    return nonce, str(int(a) + int(b))


def test_the_api_and_the_forms_count_in_separate_buckets(app, client, demo):
    app.config.update(SUBMIT_RATE_LIMIT="2/hour", FORM_SUBMIT_RATE_LIMIT="2/hour")
    # An app hammering the API spends the API's bucket only…
    assert [post_api(client).status_code for _ in range(3)] == [201, 201, 429]
    refused = post_api(client)
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.get_json()["error"]["details"]["retry_after"] == int(refused.headers["Retry-After"])
    # …the village office's form at the same address still submits, without a question.
    assert post_form(client).status_code == 303
    assert post_form(client).status_code == 303
    # And the other way round: the form's bucket spent (a question now) leaves the API alone.
    assert post_form(client, ip=OTHER).status_code == 303
    assert post_form(client, ip=OTHER).status_code == 303
    assert post_form(client, ip=OTHER).status_code == 422
    assert post_api(client, ip=OTHER).status_code == 201


def test_the_21st_form_submission_passes_with_the_question_answered(app, client, demo):
    """The defaults (20/hour for the forms): a whole township behind one address is slowed
    down by a question, not shut out."""
    for _ in range(20):
        assert post_form(client).status_code == 303
    before = cases()
    page = client.get("/report", environ_base=HALL).get_data(as_text=True)
    assert "验证问题" in page and 'name="challenge"' in page  # asked before typing it all
    assert post_form(client, {"challenge_nonce": "made-up", "challenge": "7"}).status_code == 422

    unanswered = post_form(client)
    html = unanswered.get_data(as_text=True)
    assert unanswered.status_code == 422 and "请正确回答验证问题" in html
    assert FORM["content"] in html  # what was typed is kept
    nonce, answer = question(html)
    wrong = post_form(client, {"challenge_nonce": nonce, "challenge": str(int(answer) + 1)})
    assert wrong.status_code == 422 and cases() == before
    # The same question again (citizen.js keeps the page it has): it may be corrected.
    assert question(wrong.get_data(as_text=True)) == (nonce, answer)
    full_width = answer.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    solved = post_form(client, {"challenge_nonce": nonce, "challenge": full_width})
    assert solved.status_code == 303 and cases() == before + 1
    # An answer is good once: replaying the solved question is refused.
    replay = post_form(client, {"challenge_nonce": nonce, "challenge": answer})
    assert replay.status_code == 422 and cases() == before + 1
    # The QR form shares the forms' bucket.
    from tests.web.test_citizen import point

    qr = post_form(client, url=f"/s/{point().token}")
    assert qr.status_code == 422 and "验证问题" in qr.get_data(as_text=True)


def test_the_ceiling_still_answers_429_with_retry_after(app, client, demo):
    app.config.update(FORM_SUBMIT_RATE_LIMIT="1/hour", FORM_SUBMIT_CEILING="3/hour")
    assert post_form(client).status_code == 303
    nonce, answer = question(post_form(client).get_data(as_text=True))  # 2nd: asked
    assert post_form(client, {"challenge_nonce": nonce, "challenge": answer}).status_code == 303
    before = cases()
    refused = post_form(client)  # 4th: over the ceiling, answered or not
    assert refused.status_code == 429 and cases() == before
    seconds = int(refused.headers["Retry-After"])
    assert 3500 < seconds <= 3600
    assert 'id="retry-after"' in refused.get_data(as_text=True)  # the page says how long, too
    assert post_form(client, ip=OTHER).status_code == 303  # per address


def test_an_allowlisted_address_gets_its_own_limit(app, client, demo):
    app.config.update(
        SUBMIT_RATE_LIMIT="1/hour",
        FORM_SUBMIT_RATE_LIMIT="1/hour",
        SUBMIT_ALLOWLIST="192.0.2.9=1/day 10.20.0.0/16=4/hour;50/day",
    )
    for _ in range(4):
        assert post_form(client).status_code == 303  # no question below the hall's limit
        assert post_api(client).status_code == 201
    assert post_form(client).status_code == 422  # above it: the question, as anywhere
    assert post_api(client).status_code == 429
    # Everyone else keeps the general limits.
    assert post_form(client, ip=OTHER).status_code == 303
    assert post_form(client, ip=OTHER).status_code == 422
    assert post_api(client, ip=OTHER).status_code == 201
    assert post_api(client, ip=OTHER).status_code == 429


def test_parsing_limits_and_allowlists():
    assert [(i.amount, i.get_expiry()) for i in parse_limit(" 20/hour;60/day ")] == [(20, 3600), (60, 86400)]
    entries = parse_allowlist("10.20.0.0/16=200/hour;1000/day\n2001:db8::/32=5/minute")
    assert [str(net) for net, _ in entries] == ["10.20.0.0/16", "2001:db8::/32"]
    assert parse_allowlist("  ") == ()
    for bad in ("", "twenty", "20 a hour"):
        with pytest.raises(ValueError):
            parse_limit(bad)
    for bad in ("10.20.0.0/16", "10.20.0.0/33=2/hour", "10.20.0.0/16=lots"):
        with pytest.raises(ValueError):
            parse_allowlist(bad)


def test_an_admin_change_takes_effect_without_a_restart(app, client, demo):
    token = login(client, "demo-admin")
    page = client.get("/staff/admin/settings").get_data(as_text=True)
    assert "限流设置" in page and 'value="20/hour;60/day"' in page and 'value="200/hour;600/day"' in page

    def save(**values):
        body = {
            "SUBMIT_RATE_LIMIT": "20/hour;60/day",
            "FORM_SUBMIT_RATE_LIMIT": "20/hour;60/day",
            "FORM_SUBMIT_CEILING": "200/hour;600/day",
            "SUBMIT_ALLOWLIST": "",
            **values,
        }
        return client.post("/staff/admin/settings/limits", data={"csrf_token": token, **body})

    assert post_form(client, ip=OTHER).status_code == 303  # the cache is warm now
    bad = save(FORM_SUBMIT_RATE_LIMIT="many", SUBMIT_ALLOWLIST="10.0.0.0/8")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "格式不对" in html and 'value="many"' in html
    assert db.session.get(Setting, "FORM_SUBMIT_RATE_LIMIT") is None

    assert save(FORM_SUBMIT_RATE_LIMIT="1/hour", SUBMIT_ALLOWLIST="10.20.0.0/16=3/hour").status_code == 302
    assert changes("settings.update")[0].detail["changes"]["FORM_SUBMIT_RATE_LIMIT"] == [
        "20/hour;60/day",
        "1/hour",
    ]
    # The same process, no restart: the new limit counts (afresh: a window is kept per limit).
    assert post_form(client, ip=OTHER).status_code == 303
    assert post_form(client, ip=OTHER).status_code == 422
    assert post_form(client).status_code == 303  # the hall: 3/hour
    assert "10.20.0.0/16=3/hour" in client.get("/staff/admin/settings").get_data(as_text=True)


def test_limits_are_cached_and_reloaded_when_the_version_stamp_moves(app, client, demo):
    """No settings query per request; another process's save (a stamp bump) is seen at once."""
    with app.test_request_context():
        assert current_limits().form[0].amount == 20
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        client.get("/report", environ_base=OTHER)
        client.get("/report", environ_base=OTHER)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert not [s for s in statements if "FROM settings" in s]

    # Another web process saves: the row is committed there, not through this process's sessions
    # (whose commits bump the stamp themselves), then that process bumps the stamp.
    with db.engine.begin() as conn:
        conn.execute(insert(Setting).values(key="FORM_SUBMIT_RATE_LIMIT", value="1/hour"))
    with app.test_request_context():
        assert current_limits().form[0].amount == 20  # cached: the stamp did not move
        redis_connection().incr(refdata.VERSION_KEY)
    with app.test_request_context():  # the stamp is read once a request: the next one sees it
        assert current_limits().form[0].amount == 1


def test_a_settings_commit_in_this_process_is_seen_at_once(app, demo):
    with app.test_request_context():
        assert current_limits().form[0].amount == 20
        before = redis_connection().get(refdata.VERSION_KEY)
        set_value("FORM_SUBMIT_RATE_LIMIT", "2/hour")
        db.session.commit()
        assert current_limits().form[0].amount == 2
        assert redis_connection().get(refdata.VERSION_KEY) != before  # and the other processes are told


def test_limits_come_from_the_environment_and_a_bad_one_stops_start_up(monkeypatch, tmp_path):
    from supervise.config import ConfigError, load_config

    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FORM_SUBMIT_RATE_LIMIT", "50/hour")
    monkeypatch.setenv("SUBMIT_ALLOWLIST", "10.20.0.0/16=200/hour")
    config = load_config()
    assert config["FORM_SUBMIT_RATE_LIMIT"] == "50/hour" and config["SUBMIT_RATE_LIMIT"] == "20/hour;60/day"
    monkeypatch.setenv("SUBMIT_ALLOWLIST", "10.20.0.0/16")
    monkeypatch.setenv("FORM_SUBMIT_CEILING", "lots")
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert [p.split()[0] for p in refused.value.problems] == ["FORM_SUBMIT_CEILING", "SUBMIT_ALLOWLIST"]
