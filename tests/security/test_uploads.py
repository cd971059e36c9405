"""Issue 12, item 4: the cost of a photo is bounded, and what is stored is pixels only.

Real files made with Pillow, posted through the real endpoints, read back from the real store. Each
test failed on the code before the fix (a 39.7 MP PNG was decoded, a 50 MP phone photo refused, no
decode bound, the JPEG comment and the PNG ICC profile kept, an MPO refused as "not JPG").
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms, PngImagePlugin
from sqlalchemy import func, select

from supervise.cases.models import Attachment, Case
from supervise.cases.services import upload_store
from supervise.extensions import db
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION

TOO_LARGE = "照片像素过多"
BUSY = "服务器正忙"


def submit_with(client, *photos: tuple[str, bytes]):
    """POST /api/v1/cases as multipart with these (filename, bytes) photos."""
    response = client.post(
        "/api/v1/cases",
        data={**VALID_SUBMISSION, "photos": [(io.BytesIO(content), name) for name, content in photos]},
        content_type="multipart/form-data",
    )
    if response.status_code == 201:
        ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
    return response


def stored_files() -> list[bytes]:
    return [
        upload_store().get(a.sha256) for a in db.session.scalars(select(Attachment).order_by(Attachment.id))
    ]


def saved(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_chunk_types(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


# -- the decode budget -----------------------------------------------------------------------------


def test_a_39_megapixel_png_of_100_kb_is_refused_before_decoding(client, demo, services):
    """The pen test's file: 7280 × 5450 = 39.7 MP of one colour, ~120 KB. It cost 2.5 s and +288 MB;
    now it is refused from its header, with a Chinese message, and nothing is stored."""
    bomb = saved(Image.new("RGB", (7280, 5450), (200, 30, 30)), "PNG", optimize=True)
    assert len(bomb) < 150_000
    uploads = services["data_dir"] / "uploads"

    def files() -> set[Path]:
        return {p for p in uploads.rglob("*") if p.is_file()} if uploads.exists() else set()

    before = files()
    response = submit_with(client, ("flat.png", bomb))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["details"]["photos"][0].startswith(TOO_LARGE)
    assert db.session.scalar(select(func.count(Case.id))) == 0
    assert files() == before


def test_the_pixel_cap_is_read_from_the_header_not_from_decoded_pixels(client, demo):
    """A PNG that is only a header for 39.7 MP (its pixel data is cut off): decoding it would fail
    as "not a valid image"; the cap refuses it first."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 7280, 5450, 8, 2, 0, 0, 0))
    stub = b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    response = submit_with(client, ("stub.png", stub))
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["photos"][0].startswith(TOO_LARGE)


def test_a_50_megapixel_phone_photo_is_accepted_and_stored_at_half_scale(client, demo):
    """48–50 MP phones write 8160 × 6120 baseline JPEGs: decoded by libjpeg at 1/2 scale."""
    photo = saved(Image.new("RGB", (8160, 6120), (30, 120, 200)), "JPEG", quality=85)
    response = submit_with(client, ("IMG_0001.jpg", photo))
    assert response.status_code == 201, response.get_json()
    attachment = db.session.scalar(select(Attachment))
    assert (attachment.width, attachment.height) == (4080, 3060)
    assert Image.open(io.BytesIO(stored_files()[0])).size == (4080, 3060)


def test_a_progressive_50_megapixel_jpeg_is_refused_before_decoding(client, demo):
    """A progressive JPEG makes libjpeg hold every coefficient of the full picture (≥ 150 MB at
    50 MP) whatever the output scale: capped at 16.8 MP like a PNG."""
    photo = saved(Image.new("RGB", (8160, 6120), (30, 120, 200)), "JPEG", progressive=True)
    response = submit_with(client, ("p.jpg", photo))
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["photos"][0].startswith(TOO_LARGE)


def test_decodes_beyond_the_process_limit_wait_briefly_then_get_a_chinese_503(app, client, demo):
    """All decode slots taken (here: the one slot, held as a concurrent upload would hold it): a
    photo waits UPLOAD_DECODE_WAIT_SECONDS, then the request is refused 503 instead of piling up;
    once the slot is free the same request goes through."""
    from supervise.intake.uploads import decode_slot

    app.config.update(UPLOAD_DECODE_CONCURRENCY=1, UPLOAD_DECODE_WAIT_SECONDS=0.2)
    photo = saved(Image.new("RGB", (64, 48), (200, 30, 30)), "JPEG")
    with decode_slot():
        busy = submit_with(client, ("a.jpg", photo))
        form = client.post(
            "/report",
            data={**VALID_SUBMISSION, "consent": "yes", "photos": [(io.BytesIO(photo), "a.jpg")]},
            content_type="multipart/form-data",
        )
    assert busy.status_code == 503, busy.get_json()
    error = busy.get_json()["error"]
    assert error["code"] == "busy" and error["message"].startswith(BUSY)
    page = form.get_data(as_text=True)  # the form comes back with what was typed
    assert BUSY in page and VALID_SUBMISSION["content"] in page
    assert db.session.scalar(select(func.count(Case.id))) == 0
    assert submit_with(client, ("a.jpg", photo)).status_code == 201


def test_a_refused_file_is_a_422_even_while_every_decode_slot_is_taken(app, client, demo):
    """Non-images and bombs are judged by their header, before a decode slot is waited for: a busy
    server must not tell a citizen to try again with a file that can never be taken (a load test
    of hostile uploads got 503 "busy" for them)."""
    from supervise.intake.uploads import decode_slot

    app.config.update(UPLOAD_DECODE_CONCURRENCY=1, UPLOAD_DECODE_WAIT_SECONDS=0.2)
    with decode_slot():
        text = submit_with(client, ("note.png", "这不是图片".encode() * 50))
        gif = submit_with(client, ("a.gif", saved(Image.new("RGB", (8, 8)), "GIF")))
    for answer in (text, gif):
        assert answer.status_code == 422, answer.get_json()
        assert "photos" in answer.get_json()["error"]["details"]
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_the_decode_slots_are_per_process_and_n_at_once(app):
    """UPLOAD_DECODE_CONCURRENCY slots: N holders at once, the N+1st refused after the wait."""
    from supervise.intake.uploads import UploadsBusy, decode_slot

    app.config.update(UPLOAD_DECODE_CONCURRENCY=2, UPLOAD_DECODE_WAIT_SECONDS=0.05)
    with decode_slot(), decode_slot(), pytest.raises(UploadsBusy), decode_slot():
        pass
    with decode_slot(), decode_slot():
        pass  # released again


# -- pixels only -------------------------------------------------------------------------------------


def test_a_jpeg_comment_exif_gps_and_icc_profile_do_not_survive(client, demo):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (30.0, 40.0, 10.0), 3: "E", 4: (104.0, 3.0, 30.0)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = saved(
        Image.new("RGB", (64, 48), (200, 30, 30)),
        "JPEG",
        exif=exif,
        icc_profile=icc,
        comment=b"wx-user-8842 at home",
        xmp=b"<x:xmpmeta>creator-secret</x:xmpmeta>",
    )
    assert b"wx-user-8842" in original and b"\xff\xfe" in original  # the COM segment is there
    assert submit_with(client, ("photo.jpg", original)).status_code == 201
    stored = stored_files()[0]
    image = Image.open(io.BytesIO(stored))
    assert b"wx-user-8842" not in stored and b"\xff\xfe" not in stored  # no COM segment
    assert b"PhoneMaker" not in stored and not image.getexif()
    assert b"creator-secret" not in stored and "icc_profile" not in image.info


def test_png_text_chunks_exif_and_icc_profile_do_not_survive(client, demo):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "tEXt-secret")
    info.add_itxt("Author", "iTXt-secret 张")
    info.add_text("Description", "zTXt-secret", zip=True)
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (30.0, 40.0, 10.0)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = saved(
        Image.new("RGB", (64, 48), (200, 30, 30)), "PNG", pnginfo=info, exif=exif, icc_profile=icc
    )
    assert {b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"} <= set(png_chunk_types(original))
    assert submit_with(client, ("shot.png", original)).status_code == 201
    stored = stored_files()[0]
    assert set(png_chunk_types(stored)) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
    assert b"secret" not in stored
    assert Image.open(io.BytesIO(stored)).getpixel((0, 0)) == (200, 30, 30)


def test_orientation_is_applied_to_the_pixels_before_the_exif_goes(client, demo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    original = saved(Image.new("RGB", (64, 48), (200, 30, 30)), "JPEG", exif=exif)
    assert submit_with(client, ("portrait.jpg", original)).status_code == 201
    attachment = db.session.scalar(select(Attachment))
    assert (attachment.width, attachment.height) == (48, 64)


# -- multi-picture JPEG ------------------------------------------------------------------------------


def test_a_multi_picture_jpeg_from_a_phone_camera_is_accepted_as_its_first_picture(client, demo):
    first = Image.new("RGB", (64, 48), (200, 30, 30))
    second = Image.new("RGB", (32, 32), (30, 30, 200))  # e.g. a depth map or a second lens
    mpo = saved(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(mpo)).format == "MPO"
    response = submit_with(client, ("IMG_0002.jpg", mpo))
    assert response.status_code == 201, response.get_json()
    attachment = db.session.scalar(select(Attachment))
    assert attachment.content_type == "image/jpeg" and (attachment.width, attachment.height) == (64, 48)
    stored = Image.open(io.BytesIO(stored_files()[0]))
    assert stored.format == "JPEG" and getattr(stored, "n_frames", 1) == 1
    red, _green, blue = stored.getpixel((10, 10))
    assert red > 150 and blue < 100  # the first picture's pixels
