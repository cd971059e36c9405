"""`supervise qr …`: QR codes and posters for supervision points."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from supervise.extensions import db
from supervise.intake.qr import export_points_zip, points_under
from supervise.orgs.services import get_org_by_code


@click.group("qr")
def qr_group() -> None:
    """QR codes and posters for supervision points."""


@qr_group.command("export")
@click.option("--org", "org_code", required=True, help="org code, e.g. demo-county; its subtree is included")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="the ZIP file to write",
)
@with_appcontext
def export(org_code: str, output: Path) -> None:
    """Write a ZIP of QR codes (PNG, SVG) and A4 posters for every active point under an org."""
    org = get_org_by_code(db.session, org_code)
    if org is None:
        raise click.ClickException(f"no org with code {org_code!r}")
    data = export_points_zip(org, current_app.config["BASE_URL"])
    output.write_bytes(data)
    click.echo(f"wrote {len(points_under(org))} points to {output}")
