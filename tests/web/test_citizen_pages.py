"""The citizen pages of issue 13: errors where they are, post/redirect/get, the tracking page,
error pages, one-time SMS links, 大字版, and the accessibility plumbing (skip link, aria)."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from datetime import timedelta

from sqlalchemy import select

from supervise.cases import services
from supervise.cases.models import Case
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.intake.models import CaseLink
from supervise.notify.channels import LoggingSmsGateway, SmsChannel
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import deliver
from tests.browser.test_citizen_journey import publish_feedback
from tests.conftest import verified
from tests.unit.test_workflow import staff
from tests.web.test_citizen import FORM, jpeg, point, post_form


def submitted(client, data=None, photos=()) -> tuple[str, str]:
    data = verified(data) if data else data  # a name and phone with their SMS code
    html = post_form(client, f"/s/{point().token}", data, photos).get_data(as_text=True)
    return (
        re.search(r'id="tracking-no">([^<]+)<', html).group(1),
        re.search(r'id="access-code">([^<]+)<', html).group(1),
    )


def case(ref: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.tracking_no == ref))


def field_tag(html: str, name: str) -> str:
    return re.search(r'<(?:input|textarea|select)[^>]*name="' + name + '"[^>]*>', html).group(0)


def test_errors_only_where_they_are_consent_kept_photos_asked_again(client, demo):
    page = client.post(
        "/report",
        data={**FORM, "content": "太短", "photos": [(io.BytesIO(jpeg()), "a.jpg")]},
        content_type="multipart/form-data",
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    # The one error is beside its field and tied to it; the filled fields carry none.
    assert re.findall(r'id="(\w+)-error"', html) == ["content"]
    assert 'aria-invalid="true"' in field_tag(html, "content")
    assert 'aria-describedby="content-error"' in field_tag(html, "content")
    assert "aria-invalid" not in field_tag(html, "subject") and "此项为必填项</p>" not in html
    # The consent stays ticked; the photos are asked for again at the photo field.
    assert "checked" in field_tag(html, "consent")
    assert 'id="photos-again"' in html and "请重新选择照片" in html
    assert "photos-again" in field_tag(html, "photos")
    assert "城关镇便民服务中心窗口" in html  # what was typed stays
    # What citizen.js needs to check before uploading, in the page's language.
    assert 'data-required="此项为必填项"' in html and 'data-sending="正在提交' in html


def test_submitting_is_post_redirect_get_and_the_codes_show_once(client, demo):
    posted = client.post(f"/s/{point().token}", data=FORM, content_type="multipart/form-data")
    assert posted.status_code == 303 and posted.headers["Location"] == "/report/submitted"
    with client.session_transaction() as session:
        cookie = str(dict(session))
    first = client.get("/report/submitted").get_data(as_text=True)
    ref = re.search(r'id="tracking-no">([^<]+)<', first).group(1)
    code = re.search(r'id="access-code">([^<]+)<', first).group(1)
    assert services.find_for_citizen(ref, code).tracking_no == ref
    assert ref in cookie and code not in cookie  # the code crossed the redirect encrypted
    assert first.count(code) == 2  # shown, and in the copy button's text; never in a URL
    assert not re.search(r'(href|src|action)="[^"]*' + re.escape(code), first)
    again = client.get("/report/submitted")
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and code not in html and 'id="codes-gone"' in html and "/track" in html
    assert again.headers["Cache-Control"] == "no-store"

    # citizen.js uploads with XMLHttpRequest and is told where to go.
    body = {**FORM, "idempotency_key": "x" * 32}
    xhr = client.post("/report", data=body, headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 200 and xhr.get_json() == {"redirect": "/report/submitted"}
    assert 'id="access-code"' in client.get("/report/submitted").get_data(as_text=True)


def test_the_tracking_page_for_citizens(client, demo):
    ref, code = submitted(client, {"location": "便民服务中心二号窗口"}, [("a.jpg", jpeg())])
    actor = staff("demo-town-1-jw-intake")
    services.perform_action(
        ref, actor, {"action": "message", "text": "请说明是哪一天", "version": case(ref).version}
    )
    supplemented = client.post(
        "/track/supplement",
        data={
            "tracking_no": ref,
            "access_code": code,
            "text": "是上周三上午",
            "photos": [(io.BytesIO(jpeg(size=(30, 20))), "b.jpg")],
        },
        content_type="multipart/form-data",
    )
    assert supplemented.status_code == 303 and supplemented.headers["Location"] == "/track/case"
    html = client.get("/track/case").get_data(as_text=True)
    assert "补充材料已提交" in html
    # Staff words explained: a message is labelled for citizens, the status has a sentence.
    assert "工作人员给您留言" in html and ">message<" not in html
    assert re.search(r'id="status-help">[^<]+。</p>', html)
    # What the citizen wrote, with their own photos, in a labelled section of its own; the
    # supplement's photo under the supplement.
    own = html[html.index('id="own-report"') :]
    assert "我反映的内容" in own and FORM["content"] in own and "便民服务中心二号窗口" in own
    assert own.count("<img") == 1
    timeline = html[html.index("办理记录") : html.index('id="own-report"')]
    assert "您补充了材料" in timeline and timeline.count("<img") == 1

    publish_feedback(ref, "经核查，已责令当事人退还材料。")
    html = client.post("/track", data={"tracking_no": ref, "access_code": code}).get_data(as_text=True)
    assert html.count("已责令当事人退还材料") == 1  # once, under 答复内容
    assert "已经答复您，请查看答复内容并评价" in html

    rated = client.post(
        "/track/rate",
        data={"tracking_no": ref, "access_code": code, "rating": "satisfied", "comment": "谢谢"},
    )
    assert rated.status_code == 303 and rated.headers["Location"] == "/track/case"
    html = client.get("/track/case").get_data(as_text=True)
    given = html[html.index('id="rating-given"') :]
    assert "感谢您的评价" in html and "您的评价" in given and "满意" in given and "谢谢" in given
    assert "感谢您的评价" not in client.get("/track/case").get_data(as_text=True)  # a reload says it no more

    # Rating again: a plain sentence and the rating given, not the workflow's words.
    twice = client.post(
        "/track/rate", data={"tracking_no": ref, "access_code": code, "rating": "unsatisfied"}
    )
    html = twice.get_data(as_text=True)
    assert twice.status_code == 409 and "您已评价过此件" in html and 'id="rating-given"' in html
    assert "当前状态为" not in html and "不能执行" not in html

    # A supplement to the case that just closed: said plainly, and what was typed is kept.
    late = client.post(
        "/track/supplement",
        data={"tracking_no": ref, "access_code": code, "text": "还有一件事要补充"},
        content_type="multipart/form-data",
    )
    html = late.get_data(as_text=True)
    assert late.status_code == 409 and "此件已办结，不能再补充材料" in html and "还有一件事要补充" in html


def test_the_case_page_needs_a_fresh_grant(client, demo, app):
    assert "请重新输入查询编号和查询码" in client.get("/track/case").get_data(as_text=True)
    ref, code = submitted(client)
    client.post("/track", data={"tracking_no": ref, "access_code": code})
    assert ref in client.get("/track/case").get_data(as_text=True)
    with client.session_transaction() as session:
        assert code not in str(dict(session))  # the grant names the case, never the code
        session["case_grant"] = {**session["case_grant"], "until": 0}
    assert ref not in client.get("/track/case").get_data(as_text=True)


def test_error_pages_link_back_for_real_and_say_how_long_to_wait(app, client, demo):
    original, app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_CONTENT_LENGTH"], 1000
    try:
        big = client.post(f"/s/{point().token}", data={**FORM, "content": "长" * 2000})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = original
    html = big.get_data(as_text=True)
    assert big.status_code == 413 and "javascript:" not in html
    assert re.search(r'<a href="/s/[^"]+" class="back-link" data-back>返回上一页</a>', html)

    # From the tracking page's forms, back to the case (/track/case asks for the codes again
    # when this browser holds no grant for it).
    original, app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_CONTENT_LENGTH"], 1000
    try:
        big = client.post("/track/supplement", data={"tracking_no": "MS-AAAAA-AAAAA", "text": "长" * 2000})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = original
    assert big.status_code == 413 and 'href="/track/case" class="back-link"' in big.get_data(as_text=True)

    app.config["TRACK_RATE_LIMIT"] = "2/hour"
    for _ in range(3):
        limited = client.post("/track", data={"tracking_no": "MS-AAAAA-AAAAA", "access_code": "x"})
    html = limited.get_data(as_text=True)
    assert limited.status_code == 429 and "javascript:" not in html
    seconds = int(limited.headers["Retry-After"])
    assert 0 < seconds <= 3600 and re.search(r'id="retry-after">请在 \d+ (分钟|秒) 后再试', html)
    assert 'href="/track" class="back-link"' in html


class RecordingGateway(LoggingSmsGateway):
    """The development driver (it logs), also keeping what a real gateway would have sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, phone: str, text: str) -> None:
        self.sent.append(text)
        super().send(phone, text)


def _sms_links(app, ref: str, caplog) -> list[str]:
    """Deliver the case's SMS and read the links out of the texts sent."""
    gateway = RecordingGateway()
    channel = SmsChannel(gateway, services.identity_box())
    ids = db.session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.case_id == case(ref).id, OutboxMessage.channel == "sms")
    ).all()
    with caplog.at_level(logging.INFO):
        for message_id in ids:
            deliver(db.session, message_id, {"sms": channel})
    assert all("7天内有效" in text for text in gateway.sent)
    return [re.search(r"http://\S+/t/([\w-]+)", text).group(1) for text in gateway.sent]


def test_an_sms_link_opens_the_case_once_without_the_code(app, client, demo, caplog):
    ref, code = submitted(client, {"name": "张三", "phone": "13812345678"})
    publish_feedback(ref, "已整改。")
    tokens = _sms_links(app, ref, caplog)
    assert len(tokens) == 2  # accepted, answered: each with its own link
    assert code not in caplog.text and "13812345678" not in caplog.text
    assert "/t/…" in caplog.text and not any(t in caplog.text for t in tokens)  # no live link in logs
    token = tokens[-1]
    stored = db.session.scalar(
        select(CaseLink).where(CaseLink.case_id == case(ref).id).order_by(CaseLink.id.desc())
    )
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()  # only its hash is kept
    assert timedelta(days=6) < stored.expires_at - utcnow() <= timedelta(days=7)

    other = app.test_client()  # a fresh phone: no cookie, no codes
    shown = other.get(f"/t/{token}")  # what a link preview fetches: it must not spend the link
    assert shown.status_code == 200 and 'id="open-case"' in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    opened = other.post(f"/t/{token}")
    assert opened.status_code == 303 and opened.headers["Location"] == "/track/case"
    html = other.get("/track/case").get_data(as_text=True)
    assert ref in html and "已整改。" in html and code not in html
    # Rating through the link's grant: no access code on the page or in the form.
    rated = other.post("/track/rate", data={"tracking_no": ref, "rating": "satisfied"}, follow_redirects=True)
    assert "感谢您的评价" in rated.get_data(as_text=True) and case(ref).rating == "satisfied"
    # Single use: the same link again, from anywhere, is refused plainly.
    again = app.test_client().post(f"/t/{token}")
    assert again.status_code == 410 and 'id="link-gone"' in again.get_data(as_text=True)
    assert app.test_client().get(f"/t/{token}").status_code == 410
    # Expired, and a grant for one case opens no other.
    stored.used_at, stored.expires_at = None, utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert app.test_client().post(f"/t/{token}").status_code == 410
    ref2, _ = submitted(client)
    assert other.post("/track/rate", data={"tracking_no": ref2, "rating": "satisfied"}).status_code == 404


def test_large_text_mode_skip_link_and_labels(client, demo):
    page = client.get("/report").get_data(as_text=True)
    assert 'class="skip-link" href="#main"' in page and '<main id="main"' in page
    assert 'class="large-text"' not in page and 'id="text-size"' in page and "大字版" in page
    switched = client.get("/text/large?next=/report")
    assert switched.status_code == 302 and switched.headers["Location"] == "/report"
    page = client.get("/report").get_data(as_text=True)
    assert 'class="large-text"' in page and "标准版" in page
    assert client.get("/text/large?next=https://evil.example/").headers["Location"] == "/"
    client.get("/text/normal?next=/")
    assert 'class="large-text"' not in client.get("/track").get_data(as_text=True)
    # Every input of the form has a visible label (or sits inside one).
    for name in re.findall(r'<(?:input|select|textarea) id="(\w+)"', page):
        assert f'for="{name}"' in page, name
