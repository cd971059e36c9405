"""Fixtures shared by the job tests.

The demo county (DESIGN.md §2a): a complaint at 东关村's point is owned by 城关镇纪委
(demo-town-1-jw, a discipline body below the township 城关镇), whose intake (also its supervisor)
accepts it; a service complaint may then be transferred to the village, whose leader assigns it
to the village's handler. Escalation goes up the discipline bodies: 城关镇纪委, then the county.
"""

import pytest

from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.staff.services import create_user

VILLAGE = "demo-town-1-village-1"  # 东关村, under 城关镇 (demo-town-1), under the county
VILLAGE_LEADER = "demo-town-1-village-1-leader"  # 村负责人 (leader and handler)
JW = "demo-town-1-jw"  # 城关镇纪委: owns the village's complaints
JW_INTAKE = "demo-town-1-jw-intake"  # intake and supervisor there
JW_HANDLER = "demo-town-1-jw-handler"


@pytest.fixture
def village(demo):
    """东关村 with a handler of its own ("v-handler"), who answers what 城关镇纪委 transfers to it."""
    org = get_org_by_code(db.session, VILLAGE)
    create_user(db.session, username="v-handler", org=org, role="handler", password="x" * 12)
    db.session.commit()
    return org
