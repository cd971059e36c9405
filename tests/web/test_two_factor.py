"""Two-factor sign-in for staff (issue 18 part 4): enrolment, the second step of signing in, its
failure budget, replayed codes, recovery codes, the roles forced to enrol, an admin's scoped and
audited reset, and Bearer tokens left alone.

These tests run with the real default (supervisor and admin must use it); tests/conftest.py turns
it off for the tests written before it.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import func, select

from supervise.config import load_config
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.settings import TWO_FACTOR_DEFAULT_ROLES, TWO_FACTOR_ROLES_KEY, set_value
from supervise.staff.models import AuditEntry, RecoveryCode, StaffSession, TwoFactor, User
from supervise.staff.services import create_user, issue_token
from tests.conftest import ISSUED_ACCESS_CODES

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
CODES = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


@pytest.fixture(autouse=True)
def real_default(app):
    """The default a deployment gets, not the old tests' "nobody"."""
    app.config[TWO_FACTOR_ROLES_KEY] = TWO_FACTOR_DEFAULT_ROLES


def csrf(client, path: str = "/staff/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def password_step(client, username: str, password: str = "demo-password"):
    return client.post(
        "/staff/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )


def code_step(client, code: str):
    return client.post(
        "/staff/login/code", data={"code": code, "csrf_token": csrf(client, "/staff/login/code")}
    )


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def audited(action: str) -> list[AuditEntry]:
    return list(
        db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
    )


def remember(*secrets: str) -> None:
    """Secrets of this run the log must never show (checked at the end of the run, with access codes)."""
    ISSUED_ACCESS_CODES.extend(secrets)


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """The code of the step `steps_ahead` from now: a sign-in right after enrolment needs the next
    step's code, since the enrolment spent this one (as a phone would show 30 s later)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol(client) -> tuple[str, list[str]]:
    """Set up 2FA for the signed-in client through the pages: (secret, recovery codes)."""
    started = client.post("/staff/2fa/start", data={"csrf_token": csrf(client, "/staff/2fa")})
    assert started.status_code == 302
    page = client.get("/staff/2fa")
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    secret = SECRET.search(html).group(1).replace(" ", "")
    remember(secret)
    assert 'src="data:image/svg+xml;base64,' in html
    confirmed = client.post(
        "/staff/2fa/confirm", data={"code": code_at(secret), "csrf_token": csrf(client, "/staff/2fa")}
    )
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    assert confirmed.headers["Cache-Control"] == "no-store"
    codes = CODES.findall(confirmed.get_data(as_text=True))
    remember(*codes)
    return secret, codes


def signed_in(client) -> bool:
    return client.get("/staff/").status_code == 200


def sign_out(client) -> None:
    client.post("/staff/logout", data={"csrf_token": csrf(client, "/staff/2fa")})


@pytest.fixture
def enrolled(app, demo):
    """demo-supervisor with 2FA on, set up through the pages: (client signed out, secret, codes)."""
    client = app.test_client()
    password_step(client, "demo-supervisor")
    secret, codes = enrol(client)
    sign_out(client)
    return client, secret, codes


# -- the default and who must enrol -----------------------------------------------------------------


def test_the_default_requires_supervisors_and_admins(services):
    assert load_config()[TWO_FACTOR_ROLES_KEY] == TWO_FACTOR_DEFAULT_ROLES == "supervisor,admin"


def test_required_role_is_sent_to_enrolment_and_kept_there(app, client, demo):
    response = password_step(client, "demo-supervisor")
    assert response.status_code == 302  # the password alone signs a not-yet-enrolled person in…
    for path in ("/staff/", "/staff/escalations", "/staff/admin/users", "/staff/audit"):
        assert client.get(path).headers["Location"] == "/staff/2fa", path  # …to enrolment only
    page = client.get("/staff/2fa").get_data(as_text=True)
    assert 'id="must-enrol"' in page
    assert client.get("/staff/password").status_code == 200
    # The desk's API through the browser session is closed too; a Bearer token is not (below).
    assert client.get("/api/v1/cases").status_code == 403
    enrol(client)
    assert signed_in(client)


def test_optional_role_is_not_forced(client, demo):
    assert password_step(client, "demo-intake").status_code == 302
    assert signed_in(client)
    assert "状态：未开启（可选）" in client.get("/staff/2fa").get_data(as_text=True)


def test_password_change_comes_before_enrolment(app, client, demo):
    user("demo-admin").password_must_change = True
    db.session.commit()
    password_step(client, "demo-admin")
    assert client.get("/staff/").headers["Location"] == "/staff/password"
    assert client.get("/staff/2fa").headers["Location"] == "/staff/password"


def test_the_setting_changes_who_must_enrol(app, client, demo):
    set_value(TWO_FACTOR_ROLES_KEY, "intake")
    db.session.commit()
    password_step(client, "demo-intake")
    assert client.get("/staff/").headers["Location"] == "/staff/2fa"
    other = app.test_client()
    password_step(other, "demo-supervisor")
    assert signed_in(other)


# -- enrolment ----------------------------------------------------------------------------------------


def test_enrolment_needs_a_right_code_and_seals_the_secret(app, client, demo):
    password_step(client, "demo-intake")
    client.post("/staff/2fa/start", data={"csrf_token": csrf(client, "/staff/2fa")})
    html = client.get("/staff/2fa").get_data(as_text=True)
    secret = SECRET.search(html).group(1).replace(" ", "")
    remember(secret)
    wrong = client.post(
        "/staff/2fa/confirm", data={"code": "000000", "csrf_token": csrf(client, "/staff/2fa")}
    )
    assert wrong.status_code == 422 and "验证码不正确" in wrong.get_data(as_text=True)
    row = db.session.get(TwoFactor, user("demo-intake").id)
    assert row.enabled_at is None and row.secret_enc is None  # not on until confirmed
    assert secret.encode() not in row.pending_enc  # sealed, not stored as typed
    ok = client.post(
        "/staff/2fa/confirm", data={"code": code_at(secret), "csrf_token": csrf(client, "/staff/2fa")}
    )
    assert ok.status_code == 200
    codes = CODES.findall(ok.get_data(as_text=True))
    remember(*codes)
    assert len(set(codes)) == 10
    db.session.expire_all()
    row = db.session.get(TwoFactor, user("demo-intake").id)
    assert row.enabled_at is not None and row.pending_enc is None
    stored = set(db.session.scalars(select(RecoveryCode.code_hash)))
    assert len(stored) == 10 and not stored & {c.replace("-", "") for c in codes}  # hashed
    entry = audited("2fa_enrolled")[-1]
    assert entry.username == "demo-intake" and secret not in str(entry.detail)
    # The otpauth URI behind the QR code names the issuer and the account.
    uri = pyotp.TOTP(secret).provisioning_uri(name="demo-intake", issuer_name="码上监督")
    assert "issuer=%E7%A0%81%E4%B8%8A%E7%9B%91%E7%9D%A3" in uri


def test_enrolment_forms_need_csrf(client, demo):
    password_step(client, "demo-intake")
    assert client.post("/staff/2fa/start").status_code == 400


# -- signing in -----------------------------------------------------------------------------------------


def test_sign_in_with_a_code(enrolled):
    client, secret, _codes = enrolled
    response = password_step(client, "demo-supervisor")
    assert response.headers["Location"] == "/staff/login/code"
    assert (
        db.session.scalar(select(func.count(StaffSession.id)).where(StaffSession.revoked_at.is_(None))) == 0
    )
    assert not signed_in(client)  # no session between the two steps
    assert code_step(client, code_at(secret, 1)).status_code == 302
    assert signed_in(client)


def test_a_code_is_not_accepted_twice(enrolled):
    client, secret, _codes = enrolled
    code = code_at(secret, 1)
    password_step(client, "demo-supervisor")
    assert code_step(client, code).status_code == 302
    sign_out(client)
    password_step(client, "demo-supervisor")
    replay = code_step(client, code)
    assert replay.status_code == 401 and "已经用过" in replay.get_data(as_text=True)
    assert not signed_in(client)
    # An older step's code after a newer one was used: refused too (the window is ±1 step).
    assert code_step(client, code_at(secret)).status_code == 401


def test_wrong_codes_spend_the_account_budget(app, enrolled):
    client, secret, _codes = enrolled
    app.config["LOGIN_FAILURE_LIMIT_USER"] = "3/15 minutes"
    password_step(client, "demo-supervisor")
    for wrong in ("123456", "654321", "111111"):
        assert code_step(client, wrong).status_code == 401
    assert code_step(client, code_at(secret, 1)).status_code == 429  # even the right one, for now
    assert not signed_in(client)
    assert len(audited("login_failed")) == 3 and audited("login_throttled")
    # The budget is the account's, not the browser's: a fresh browser with the password is held too.
    other = app.test_client()
    password_step(other, "demo-supervisor")
    assert code_step(other, code_at(secret, 1)).status_code == 429


def test_wrong_codes_spend_the_address_budget(app, enrolled):
    client, secret, _codes = enrolled
    app.config["LOGIN_FAILURE_LIMIT_IP"] = "2/hour"
    password_step(client, "demo-supervisor")
    assert code_step(client, "123456").status_code == 401
    assert code_step(client, "123457").status_code == 401
    assert code_step(client, code_at(secret, 1)).status_code == 429


def test_the_second_step_expires(app, enrolled, monkeypatch):
    client, secret, _codes = enrolled
    password_step(client, "demo-supervisor")
    token = csrf(client, "/staff/login/code")
    from supervise.staff import auth

    monkeypatch.setattr(auth, "SECOND_STEP_SECONDS", -1)  # five minutes later
    response = client.post("/staff/login/code", data={"code": code_at(secret, 1), "csrf_token": token})
    assert response.headers["Location"] == "/staff/login"
    assert not signed_in(client)


def test_code_page_without_a_password_step_goes_to_login(client, demo):
    assert client.get("/staff/login/code").headers["Location"] == "/staff/login"


def test_a_recovery_code_works_once(enrolled):
    client, _secret, codes = enrolled
    password_step(client, "demo-supervisor")
    response = code_step(client, codes[0].upper().replace("-", " "))  # as typed off paper
    assert response.status_code == 302
    assert "还剩 9 个" in client.get("/staff/").get_data(as_text=True)
    assert audited("2fa_recovery_used")[-1].detail == {"left": 9}
    sign_out(client)
    password_step(client, "demo-supervisor")
    assert code_step(client, codes[0]).status_code == 401
    assert code_step(client, codes[1]).status_code == 302


def test_regenerating_recovery_codes_needs_the_password_and_ends_the_old_ones(enrolled):
    client, secret, codes = enrolled
    password_step(client, "demo-supervisor")
    code_step(client, code_at(secret, 1))
    token = csrf(client, "/staff/2fa")
    refused = client.post("/staff/2fa/recovery-codes", data={"password": "wrong", "csrf_token": token})
    assert refused.status_code == 422
    renewed = client.post(
        "/staff/2fa/recovery-codes", data={"password": "demo-password", "csrf_token": token}
    )
    new_codes = CODES.findall(renewed.get_data(as_text=True))
    remember(*new_codes)
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert audited("2fa_codes_renewed")
    sign_out(client)
    password_step(client, "demo-supervisor")
    assert code_step(client, codes[2]).status_code == 401
    assert code_step(client, new_codes[0]).status_code == 302


def test_a_new_phone_replaces_the_old_only_once_confirmed(enrolled):
    client, secret, _codes = enrolled
    password_step(client, "demo-supervisor")
    code_step(client, code_at(secret, 1))
    token = csrf(client, "/staff/2fa")
    assert client.post("/staff/2fa/start", data={"password": "nope", "csrf_token": token}).status_code == 422
    assert (
        client.post("/staff/2fa/start", data={"password": "demo-password", "csrf_token": token}).status_code
        == 302
    )
    new_secret = SECRET.search(client.get("/staff/2fa").get_data(as_text=True)).group(1).replace(" ", "")
    remember(new_secret)
    assert new_secret != secret
    row = db.session.get(TwoFactor, user("demo-supervisor").id)
    assert row.enabled_at is not None  # the old phone still works meanwhile
    done = client.post(
        "/staff/2fa/confirm", data={"code": code_at(new_secret, 1), "csrf_token": csrf(client, "/staff/2fa")}
    )
    assert done.status_code == 200
    remember(*CODES.findall(done.get_data(as_text=True)))
    assert audited("2fa_enrolled")[-1].detail == {"what": "new_device"}


# -- an admin's reset -------------------------------------------------------------------------------------


def _admin_client(app, username: str):
    """An admin signed in with 2FA set up through the pages."""
    client = app.test_client()
    password_step(client, username)
    enrol(client)
    return client


def test_admin_reset_is_confirmed_scoped_audited_and_ends_sessions(app, enrolled):
    victim_client, secret, _codes = enrolled
    password_step(victim_client, "demo-supervisor")
    code_step(victim_client, code_at(secret, 1))
    victim = user("demo-supervisor")
    token = issue_token(db.session, victim)
    db.session.commit()
    remember(token)
    admin = _admin_client(app, "demo-admin")
    listing = admin.get("/staff/admin/users").get_data(as_text=True)
    reset_url = f"/staff/admin/users/{victim.id}/two-factor/reset"
    assert reset_url in listing
    form = {"csrf_token": csrf(admin, "/staff/admin/users")}
    assert admin.post(reset_url).status_code == 400  # CSRF
    admin.post(reset_url, data=form)  # no confirmation: nothing happens
    assert db.session.get(TwoFactor, victim.id) is not None
    assert admin.post(reset_url, data={**form, "confirm": "yes"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(TwoFactor, victim.id) is None
    assert (
        db.session.scalar(select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == victim.id)) == 0
    )
    assert not signed_in(victim_client)  # the session ended…
    assert (
        app.test_client().get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    entry = audited("admin_change")[-1]
    assert entry.detail == {"what": "user.reset_two_factor", "target": "demo-supervisor"}
    assert entry.username == "demo-admin"
    # …and the next sign-in leads to a new enrolment.
    password_step(victim_client, "demo-supervisor")
    assert victim_client.get("/staff/").headers["Location"] == "/staff/2fa"


def test_admin_reset_outside_the_admins_subtree_is_404(app, enrolled):
    town = get_org_by_code(db.session, "demo-town-1")
    create_user(db.session, username="town-admin", org=town, role="admin", password="town-admin-password")
    db.session.commit()
    client = app.test_client()
    password_step(client, "town-admin", "town-admin-password")
    enrol(client)
    victim = user("demo-supervisor")  # at the county, above the town
    url = f"/staff/admin/users/{victim.id}/two-factor/reset"
    response = client.post(url, data={"csrf_token": csrf(client, "/staff/admin/users"), "confirm": "yes"})
    assert response.status_code == 404
    assert db.session.get(TwoFactor, victim.id).enabled_at is not None


def test_admin_cannot_reset_their_own(app, demo):
    admin = _admin_client(app, "demo-admin")
    me = user("demo-admin")
    url = f"/staff/admin/users/{me.id}/two-factor/reset"
    admin.post(url, data={"csrf_token": csrf(admin, "/staff/admin/users"), "confirm": "yes"})
    assert db.session.get(TwoFactor, me.id).enabled_at is not None


# -- the setting -------------------------------------------------------------------------------------------


def test_admin_sets_the_required_roles(app, demo):
    admin = _admin_client(app, "demo-admin")
    page = admin.get("/staff/admin/settings").get_data(as_text=True)
    assert 'id="two-factor-form"' in page and 'id="two-factor-off"' not in page
    token = csrf(admin, "/staff/admin/settings")
    bad = admin.post(
        "/staff/admin/settings/two-factor", data={"csrf_token": token, "role": ["admin", "boss"]}
    )
    assert bad.status_code == 422 and "boss" in bad.get_data(as_text=True)
    ok = admin.post("/staff/admin/settings/two-factor", data={"csrf_token": token, "role": ["admin"]})
    assert ok.status_code == 302
    assert audited("admin_change")[-1].detail["changes"] == {
        TWO_FACTOR_ROLES_KEY: ["supervisor,admin", "admin"]
    }
    other = app.test_client()
    password_step(other, "demo-supervisor")
    assert signed_in(other)  # supervisors no longer required
    admin.post("/staff/admin/settings/two-factor", data={"csrf_token": token})  # nobody
    assert 'id="two-factor-off"' in admin.get("/staff/admin/settings").get_data(as_text=True)


def test_bad_env_setting_is_refused_at_start(monkeypatch, services):
    from supervise.config import ConfigError

    monkeypatch.setenv(TWO_FACTOR_ROLES_KEY, "supervisor,admn")
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert any(p.startswith("TWO_FACTOR_REQUIRED_ROLES") and "admn" in p for p in refused.value.problems)


# -- the API -------------------------------------------------------------------------------------------


def test_bearer_tokens_are_unaffected(app, client, demo):
    supervisor = user("demo-supervisor")
    token = issue_token(db.session, supervisor)
    db.session.commit()
    remember(token)
    headers = {"Authorization": f"Bearer {token}"}
    # Required role, never enrolled: the API token still works, as it does once 2FA is on.
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    password_step(client, "demo-supervisor")
    enrol(client)
    assert app.test_client().get("/api/v1/cases", headers=headers).status_code == 200


# -- the demo ----------------------------------------------------------------------------------------------


def test_the_demo_makes_it_optional_and_says_so(app):
    """`supervise demo`: a first look needs no authenticator app; an admin's own choice stays."""
    from supervise.cli import main

    result = app.test_cli_runner().invoke(main, ["demo"], catch_exceptions=False)
    assert "Two-factor sign-in: optional for the demo accounts" in result.output
    client = app.test_client()
    password_step(client, "demo-supervisor")
    assert signed_in(client)
    admin = app.test_client()
    password_step(admin, "demo-admin")
    assert 'id="two-factor-off"' in admin.get("/staff/admin/settings").get_data(as_text=True)
    set_value(TWO_FACTOR_ROLES_KEY, "admin")
    db.session.commit()
    again = app.test_cli_runner().invoke(main, ["demo"], catch_exceptions=False)
    assert "Two-factor sign-in" not in again.output
    assert admin.get("/staff/").headers["Location"] == "/staff/2fa"  # admins must enrol again
