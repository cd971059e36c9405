"""axe-core (pinned in tests/browser/package.json, installed by `npm ci`) run inside Playwright pages.

    from tests.browser.axe import assert_no_axe_violations
    assert_no_axe_violations(page, "track result")

The script is injected with page.evaluate, which the page's CSP (script-src 'self') does not govern,
so every page is checked exactly as it is served. Rules: WCAG 2.0 and 2.1, levels A and AA.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# Runs in the page: axe's violations reduced to what a failure message needs.
RUN_AXE = """async (tags) => {
  const results = await window.axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.map(String).join(" "),
      summary: (n.failureSummary || "").split("\\n").map((s) => s.trim()).filter(Boolean).join(" "),
    })),
  }));
}"""


@cache
def axe_source() -> str:
    """axe.min.js, or a skip (a laptop without `npm ci`) / a failure (CI must run these checks)."""
    if not AXE_JS.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the accessibility checks: .ci/run runs npm ci --prefix tests/browser")
        pytest.skip("axe-core is not installed (npm ci --prefix tests/browser)")
    # A trailing expression: evaluate() returns the script's completion value, which must be serialisable.
    return AXE_JS.read_text(encoding="utf-8") + "\n;true"


def violations(page) -> list[dict]:
    """axe's WCAG 2.0/2.1 A+AA violations on the page as it is now."""
    source = axe_source()
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    return page.evaluate(RUN_AXE, WCAG_TAGS)


def format_violations(found: list[dict], context: str = "") -> str:
    lines = [f"{len(found)} accessibility violation(s){f' on {context}' if context else ''}:"]
    for violation in found:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {node['target']}: {node['summary']}")
    return "\n".join(lines)


def assert_no_axe_violations(page, context: str = "") -> None:
    """Fail with a readable list (rule, impact, target, summary) when axe finds WCAG A/AA violations.

    `context` names the page in the message (default: its URL)."""
    found = violations(page)
    assert not found, format_violations(found, context or page.url)
