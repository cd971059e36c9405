"""Fixtures shared by the job tests."""

import pytest

from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.staff.services import create_user

VILLAGE = "demo-town-1-village-1"  # 东关村, under 城关镇 (demo-town-1), under the county


@pytest.fixture
def village(demo):
    """Intake and handler at the village, so its cases are handled there and escalate up two orgs."""
    org = get_org_by_code(db.session, VILLAGE)
    for username, role in (("v-intake", "intake"), ("v-handler", "handler")):
        create_user(db.session, username=username, org=org, role=role, password="x" * 12)
    db.session.commit()
    return org
