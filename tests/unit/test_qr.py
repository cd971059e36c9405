"""QR codes, posters and the point export (supervise/intake/qr.py, `supervise qr export`)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from xml.etree import ElementTree

import pytest
from PIL import Image
from sqlalchemy import select

from supervise.cases.models import Category
from supervise.extensions import db
from supervise.intake.cli import qr_group
from supervise.intake.models import Point
from supervise.intake.qr import export_points_zip, point_url, qr_png, qr_svg, render_poster
from supervise.orgs.models import Org
from supervise.orgs.services import get_org_by_code

BASE = "https://jd.example.gov.cn"
SVG_NS = "http://www.w3.org/2000/svg"
URL = f"{BASE}/s/abcdefghijklmnopqrstuv"


def point_of(org_code: str) -> Point:
    return db.session.scalar(select(Point).join(Point.org).where(Org.code == org_code))


def export(org_code: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(export_points_zip(get_org_by_code(db.session, org_code), BASE)))


def folders(archive: zipfile.ZipFile) -> dict[str, set[str]]:
    tree: dict[str, set[str]] = {}
    for name in archive.namelist():
        if "/" in name:
            folder, file = name.split("/")
            tree.setdefault(folder, set()).add(file)
    return tree


def index_rows(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read("index.csv").decode("utf-8-sig"))))


def test_point_url():
    point = Point(token="tok-123", name="x")
    assert point_url("https://jd.example.gov.cn/", point) == "https://jd.example.gov.cn/s/tok-123"
    assert point_url("http://127.0.0.1:8000", point) == "http://127.0.0.1:8000/s/tok-123"


def test_png_is_a_square_code_with_a_four_module_quiet_zone():
    image = Image.open(io.BytesIO(qr_png(URL)))
    assert image.format == "PNG"
    assert image.width == image.height and image.width % 10 == 0
    gray = image.convert("L")
    # 10 px a module and 4 modules of border: the finder pattern starts at pixel 40.
    assert gray.getpixel((39, 39)) == 255 and gray.getpixel((40, 40)) == 0


def test_svg_is_one_scalable_path():
    svg = qr_svg(URL)
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{{{SVG_NS}}}svg" and root.get("viewBox")
    assert len(root.findall(f"{{{SVG_NS}}}path")) == 1


def test_poster(app, demo):
    point = point_of("demo-town-1-village-1")
    html = render_poster(point, point_url(BASE, point), ["作风问题", "吃拿卡要"])
    text = re.sub(r"<[^>]+>", "", html)
    assert "东关村" in html and "东关村村务公开栏" in html
    assert "15个工作日内答复" in html
    assert "微信或手机相机扫码，即可反映问题；可匿名，也可实名（实名优先办理）" in text
    assert "凭查询编号和查询码查询办理进度" in html and f"{BASE}/track" in html
    assert "作风问题" in html and "吃拿卡要" in html
    assert "@page" in html and "A4" in html
    assert "<svg" in html and "<?xml" not in html
    assert "<script" not in html.lower()
    # Standalone: nothing fetched, and no address but the tracking page (and the SVG namespace).
    assert not re.search(r"\b(src|href)\s*=|<link|@import|url\(", html, re.IGNORECASE)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {f"{BASE}/track", SVG_NS}


def test_poster_escapes_names(app, demo):
    point = point_of("demo-county")
    point.name = "<b>窗口</b>"
    html = render_poster(point, point_url(BASE, point), [])
    assert "&lt;b&gt;窗口&lt;/b&gt;" in html and "<b>" not in html


def test_poster_refuses_another_points_address(app, demo):
    point = point_of("demo-county")
    with pytest.raises(ValueError, match="not the address"):
        render_poster(point, point_url(BASE, point_of("demo-town-1")), [])


def test_export_county(app, demo):
    archive = export("demo-county")
    tree = folders(archive)
    assert len(tree) == 9
    assert all(files == {"qr.png", "qr.svg", "poster.html"} for files in tree.values())
    points = {f"{p.org.code}-{p.id}": p for p in db.session.scalars(select(Point))}
    assert set(tree) == set(points)

    raw = archive.read("index.csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = index_rows(archive)
    assert list(rows[0]) == ["org_code", "org_name", "point_id", "point_name", "url"]
    assert len(rows) == 9
    # Tree order by the numbers in the path ("/1/5/9/" before "/1/5/10/"; the demo has more than
    # nine orgs now, so text order would differ).
    keys = [get_org_by_code(db.session, row["org_code"]).tree_key for row in rows]
    assert keys == sorted(keys)
    for row in rows:
        point = points[f"{row['org_code']}-{row['point_id']}"]
        assert row["org_name"] == point.org.name and row["point_name"] == point.name
        assert row["url"] == point_url(BASE, point)

    folder = f"demo-town-1-{point_of('demo-town-1').id}"
    poster = archive.read(f"{folder}/poster.html").decode("utf-8")
    assert "城关镇便民服务中心" in poster and f"{BASE}/track" in poster
    for category in db.session.scalars(select(Category.name)):
        assert category in poster
    assert ElementTree.fromstring(archive.read(f"{folder}/qr.svg")).tag == f"{{{SVG_NS}}}svg"
    assert Image.open(io.BytesIO(archive.read(f"{folder}/qr.png"))).format == "PNG"


def test_export_township_takes_its_villages_only(app, demo):
    archive = export("demo-town-1")
    codes = [row["org_code"] for row in index_rows(archive)]
    assert codes == ["demo-town-1", "demo-town-1-village-1", "demo-town-1-village-2"]
    assert len(folders(archive)) == 3


def test_export_leaves_out_inactive_points_and_categories(app, demo):
    point_of("demo-town-1-village-2").active = False
    db.session.scalar(select(Category).where(Category.code == "other")).active = False
    db.session.commit()
    archive = export("demo-town-1")
    assert [row["org_code"] for row in index_rows(archive)] == ["demo-town-1", "demo-town-1-village-1"]
    poster = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("poster.html"))
    assert "作风问题" in poster and "<li>其他</li>" not in poster


def test_cli_export(app, demo, tmp_path):
    path = tmp_path / "points.zip"
    result = app.test_cli_runner().invoke(qr_group, ["export", "--org", "demo-county", "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote 9 points to {path}"
    assert len(folders(zipfile.ZipFile(path))) == 9


def test_cli_export_unknown_org(app, demo, tmp_path):
    path = tmp_path / "points.zip"
    result = app.test_cli_runner().invoke(qr_group, ["export", "--org", "nowhere", "-o", str(path)])
    assert result.exit_code != 0 and "no org with code 'nowhere'" in result.output
    assert not path.exists()
