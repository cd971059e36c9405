"""Issue 12, item 2: public tracking numbers cannot be enumerated; staff keep a running number."""

from __future__ import annotations

import re

from sqlalchemy import select

from supervise.cases.models import Case
from supervise.extensions import db
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION

RECEIPT = re.compile(r"^MS-[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}$")


def test_tracking_numbers_are_random_and_staff_get_a_register_number(client, auth):
    refs = []
    for _ in range(5):
        body = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()
        ISSUED_ACCESS_CODES.append(body["access_code"])
        refs.append(body["tracking_no"])
    assert all(RECEIPT.match(ref) for ref in refs), refs
    assert len(set(refs)) == 5  # and no order to walk: consecutive cases share no sequence
    cases = db.session.scalars(select(Case).order_by(Case.id)).all()
    assert [c.register_no for c in cases] == [f"{c.received_at.year}-{c.id:06d}" for c in cases]
    staff_view = client.get(f"/api/v1/cases/{refs[0]}", headers=auth("demo-supervisor")).get_json()
    assert staff_view["register_no"] == cases[0].register_no


def test_a_neighbouring_number_opens_nothing(client, demo):
    body = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()
    ISSUED_ACCESS_CODES.append(body["access_code"])
    ref = body["tracking_no"]
    neighbour = ref[:-1] + ("2" if ref[-1] != "2" else "3")
    response = client.post(
        "/api/v1/track", json={"tracking_no": neighbour, "access_code": body["access_code"]}
    )
    assert response.status_code == 404
