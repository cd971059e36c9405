"""A name a staff member typed comes back in the next page's notice as text, never as markup.

Found by an outside pass (issue 13): the staff layout ran each notice through Jinja's `_()`, which
marks its result safe and %-formats it, so a point named `<img src=x onerror=…>` became live HTML on
the admin's next page (and a unit admin's org name on the county admin's), and "100%" was a 500.
Notices are translated where they are made, and the layout prints them escaped.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supervise.extensions import db
from supervise.orgs.models import Org
from tests.web.test_admin import admin, login  # noqa: F401 - the signed-in admin fixture

HOSTILE = '<img src=x onerror="alert(1)"> 100% 窗口'


@pytest.mark.parametrize("name", [HOSTILE])
def test_a_point_name_in_the_notice_is_escaped_and_a_percent_is_no_500(client, admin, name):  # noqa: F811
    town = db.session.scalar(select(Org).where(Org.code == "demo-town-1"))
    created = admin("/staff/admin/points", org=town.id, name=name)
    assert created.status_code == 302
    page = client.get(created.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=" in html


def test_a_message_held_in_a_variable_is_translated_as_text(app):
    """`{{ value|t }}` (field errors, error pages, labels) translates without formatting or marking
    safe: a value carrying markup or a percent sign is printed as typed."""
    from flask import render_template_string

    with app.test_request_context("/?lang=en"):
        html = render_template_string("{{ m|t }} {{ known|t }}", m="<img src=x> 100% 窗口", known="待受理")
    assert html.startswith("&lt;img src=x&gt; 100% 窗口 ")
    assert "待受理" not in html  # a known message is translated
