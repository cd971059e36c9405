"""A township behind one address, on a phone: above the forms' limit the form asks a question,
a wrong answer is shown beside it (citizen.js keeps the page), the right one submits."""

from __future__ import annotations

import re

from tests.browser.test_citizen_journey import axe_check, shot


def test_over_the_limit_the_form_asks_a_question_and_submits_when_answered(app, demo, live_server, phone):
    app.config.update(FORM_SUBMIT_RATE_LIMIT="1/hour")
    # Someone else at the same address (the live server sees 127.0.0.1) submitted first.
    first = app.test_client().post(
        "/report",
        data={
            "category": "efficiency",
            "subject": "县民政局",
            "content": "临时救助申请一个多月没有回音。",
            "consent": "yes",
        },
    )
    assert first.status_code == 303

    phone.goto(f"{live_server}/report")
    label = phone.inner_text("label[for=challenge]")
    a, b = map(int, re.search(r"(\d+) 加 (\d+) 等于几", label).groups())
    assert "近期从您所在网络提交的反映较多" in phone.inner_text("fieldset.challenge")
    assert "challenge-hint" in phone.get_attribute("#challenge", "aria-describedby")
    phone.select_option("#category", "efficiency")
    phone.fill("#subject", "县民政局")
    phone.fill("#content", "临时救助申请一个多月没有回音，打电话也没人接。")
    phone.check("input[name=consent]")
    phone.fill("#challenge", str(a + b + 1))
    phone.click("button[type=submit]")
    phone.wait_for_selector("#challenge-error")  # the server's answer, on the page that was typed on
    assert "请正确回答验证问题" in phone.inner_text("#challenge-error")
    assert phone.get_attribute("#challenge", "aria-invalid") == "true"
    assert phone.input_value("#subject") == "县民政局" and phone.url.endswith("/report")
    axe_check(phone, "form with the question")
    shot(phone, "limits-question")

    phone.fill("#challenge", str(a + b))
    phone.click("button[type=submit]")
    phone.wait_for_url("**/report/submitted")
    assert phone.inner_text("#tracking-no").startswith("MS-")
