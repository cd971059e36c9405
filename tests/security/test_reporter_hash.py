"""The reporter hash (issue 16) finds one reporter's cases without ever revealing their phone number:
it is keyed by the server's secret (not a plain hash anyone can compute for all 10⁹ numbers), the
number itself is stored only sealed, and a unit sees neither the number nor the hash."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from supervise.cases.identity import IdentityBox, normalise_phone, reporter_hash
from supervise.cases.models import Case
from supervise.extensions import db
from tests.conftest import ISSUED_ACCESS_CODES, TEST_FERNET_KEY, verified

PHONE = "13600003333"
SPELLINGS = ("13600003333", "+86 136-0000-3333", "8613600003333", "136 0000 3333", "+86-136 0000-3333")


def test_the_hash_is_keyed_and_says_nothing_of_the_number():
    digest = reporter_hash("server-secret", PHONE)
    assert digest is not None and len(digest) == 64
    assert PHONE not in digest
    for plain in (PHONE, f"reporter-phone:{PHONE}", "+86" + PHONE, "86" + PHONE):
        for algorithm in ("sha256", "sha1", "md5", "sha512"):
            assert hashlib.new(algorithm, plain.encode()).hexdigest() != digest
    # Another server's key: another hash, so two databases cannot be joined on it either.
    assert reporter_hash("another-secret", PHONE) != digest
    assert reporter_hash("server-secret", None) is None and reporter_hash("server-secret", "—") is None


def test_every_spelling_of_one_number_is_one_reporter():
    assert {normalise_phone(s) for s in SPELLINGS} == {PHONE}
    assert len({reporter_hash("server-secret", s) for s in SPELLINGS}) == 1
    assert reporter_hash("server-secret", "13700002222") != reporter_hash("server-secret", PHONE)


def _every_stored_value() -> str:
    """Every column of every row of every table, as text (bytes as Latin-1)."""
    parts = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        parts.append(str(value))
    return "\n".join(parts)


def test_the_number_is_stored_only_sealed_and_a_unit_sees_neither_it_nor_the_hash(app, client, auth, demo):
    from tests.web.test_staff import login

    complaint = {
        "category": "efficiency",
        "subject": "东关村村委会",
        "content": "村委会办公室工作日经常没人，开证明跑了三趟。",
        "subject_unit": "demo-town-1-village-1",
    }
    # The form takes 11 digits; a registered call or an imported sheet may spell it otherwise.
    from supervise.cases.services import submit_case

    # Registered by staff (no SMS code: verify_phone=False, as registration does).
    registered, code = submit_case(
        {**complaint, "name": "赵六", "phone": "+86 136-0000-3333"}, verify_phone=False
    )
    ISSUED_ACCESS_CODES.append(code)
    named = verified({**complaint, "name": "赵六", "phone": "13600003333"})
    response = client.post("/api/v1/cases", json=named)
    assert response.status_code == 201, response.get_json()
    ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
    refs = [registered.tracking_no, response.get_json()["tracking_no"]]
    cases = [db.session.scalar(select(Case).where(Case.tracking_no == r)) for r in refs]
    # One reporter, by the hash; the number only inside the sealed column.
    assert cases[0].reporter_hash == cases[1].reporter_hash == reporter_hash("test-secret", PHONE)
    assert IdentityBox(TEST_FERNET_KEY).open(cases[1].reporter_phone_enc) == PHONE
    stored = _every_stored_value()
    for spelling in (PHONE, "136-0000-3333", "136 0000 3333", "0000-3333"):
        assert spelling not in stored, spelling

    # Sent on to the village: its leader's page and API show neither the number nor the hash.
    ref = refs[0]
    intake = auth("demo-town-1-jw-intake")
    for action, fields in (("accept", {"kind": "service"}), ("transfer", {"org": "demo-town-1-village-1"})):
        version = client.get(f"/api/v1/cases/{ref}", headers=intake).get_json()["version"]
        answer = client.post(
            f"/api/v1/cases/{ref}/actions",
            headers=intake,
            json={"action": action, "version": version, **fields},
        )
        assert answer.status_code == 200, answer.get_json()
    digest = cases[0].reporter_hash
    leader = auth("demo-town-1-village-1-leader")
    api = client.get(f"/api/v1/cases/{ref}", headers=leader).get_data(as_text=True)
    queue = client.get("/api/v1/cases?queue=in_progress", headers=leader).get_data(as_text=True)
    page_client = app.test_client()
    assert login(page_client, "demo-town-1-village-1-leader").status_code == 302
    page = page_client.get(f"/staff/cases/{ref}").get_data(as_text=True)
    queue_page = page_client.get("/staff/?queue=in_progress").get_data(as_text=True)
    for text in (api, queue, page, queue_page):
        assert ref in text
        for secret in (PHONE, "0000-3333", digest, digest[:16], "赵六", "重复反映", "同一反映人"):
            assert secret not in text, secret
    # Nor does the body's own API carry the hash: it is a lookup key, never shown.
    assert digest not in client.get(f"/api/v1/cases/{ref}", headers=intake).get_data(as_text=True)
