"""Issue 14, item 6: what a citizen sees when the photo store cannot take a file (real Chromium).

The store is broken for real: the data dir's `uploads` is a regular file, so creating its folders
fails with ENOTDIR (tests/faults/test_full_disk.py says why not chmod)."""

from __future__ import annotations

from PIL import Image
from sqlalchemy import func, select

from supervise.cases.models import Case
from supervise.extensions import db


def test_photos_refused_in_chinese_beside_the_photos_and_nothing_typed_is_lost(
    app, demo, live_server, phone, tmp_path
):
    app.config["DATA_DIR"] = str(tmp_path)
    (tmp_path / "uploads").write_text("not a folder")
    photo = tmp_path / "p.png"
    Image.new("RGB", (50, 40), (200, 20, 20)).save(photo, "PNG")

    phone.goto(f"{live_server}/report")
    phone.select_option("#category", "petty_corruption")
    phone.fill("#subject", "县不动产登记中心")
    phone.fill("#content", "办证时被要求另交加急费，没有任何收据。")
    phone.set_input_files("#photos", str(photo))
    phone.check("input[name=consent]")
    phone.click("button[type=submit]")

    error = phone.wait_for_selector("#photos-error")
    assert "照片暂时无法保存" in error.inner_text()
    assert "content-error" not in phone.content() and "subject-error" not in phone.content()
    assert phone.get_attribute("#photos", "aria-invalid") == "true"
    # Everything typed stays, the consent too, and the button works again.
    assert phone.input_value("#subject") == "县不动产登记中心"
    assert phone.input_value("#content") == "办证时被要求另交加急费，没有任何收据。"
    assert phone.is_checked("input[name=consent]") and phone.is_enabled("button[type=submit]")
    assert phone.url.endswith("/report")
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0
