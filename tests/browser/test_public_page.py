"""/public (办理情况公开) at 360 px with JavaScript off: it renders, nothing scrolls sideways, axe passes."""

from __future__ import annotations

from sqlalchemy import select

from supervise.extensions import db
from supervise.stats.services import refresh
from tests.browser.axe import assert_no_axe_violations
from tests.web.test_public_page import seed


def test_the_public_page_at_360px_without_javascript(app, demo, live_server, browser):
    from supervise.orgs.models import Org

    seed("demo-town-1-village-1", 3, on_time=3, satisfied=3)  # "<5"
    seed("demo-town-2", 6, on_time=5, late=1, satisfied=5)
    refresh(db.session, everything=True)
    assert db.session.scalar(select(Org.id).where(Org.code == "demo-town-2"))
    for locale, lang in (("zh-CN", ""), ("en-US", "?lang=en")):
        # Rendered and measured with JavaScript off; axe then runs in a second context with it on
        # (axe is a script: its promises never settle where scripts are disabled). The page has no
        # script of its own, so both contexts see the same document.
        for scripts in (False, True):
            context = browser.new_context(
                viewport={"width": 360, "height": 740},
                is_mobile=True,
                locale=locale,
                java_script_enabled=scripts,
            )
            page = context.new_page()
            try:
                response = page.goto(f"{live_server}/public{lang}")
                assert response.status == 200
                assert page.locator("script").count() == 0
                assert page.locator("h1").count() == 1
                assert page.locator("section.unit").count() == 4  # two townships, two departments
                assert page.locator("#k-rule").is_visible()
                assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
                if scripts:
                    assert_no_axe_violations(page, f"/public{lang}")
            finally:
                context.close()
    # The home page links to it.
    context = browser.new_context(viewport={"width": 360, "height": 740}, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/")
        page.click("#public-link")
        assert page.url.endswith("/public")
    finally:
        context.close()
