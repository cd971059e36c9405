"""Admin pages (/staff/admin): orgs, points, categories, users, the holiday calendar, settings, replies,
the outbox's dead letters and the background jobs; one module per section, what they share in `common`.

Every view is for admins only. An admin sees and edits the subtree of their own org (anything else
is 404, as if it did not exist); an admin of a unit never sees the discipline bodies in it, nor what
is below them (DESIGN.md §2a: a township's 纪委 sits below the township). The system-wide sections
(categories, the calendar, settings, dead letters, jobs) are for admins of a top-level org. Every
POST is a CSRF-protected form, nothing changes on GET, and every change is one transaction together
with its `admin_change` audit row.
"""

from __future__ import annotations

from supervise.settings import Setting

# Imported for what importing does: each section's module registers its routes on `bp`.
from supervise.staff.admin import (  # noqa: F401
    calendar,
    categories,
    imports,
    index,
    jobs,
    orgs,
    outbox,
    points,
    replies,
    settings,
    users,
)
from supervise.staff.admin.common import bp

__all__ = ["Setting", "bp"]  # Setting: importing this package registers the model
