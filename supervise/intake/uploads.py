"""Photos from citizens: checked by content, capped, re-encoded to pixels only, stored by hash.

Every accepted image is decoded and re-encoded by Pillow into a fresh image built from the decoded
pixels alone, so what we store is pixels we produced, not bytes the sender chose: EXIF (with GPS),
XMP, ICC profiles, the JPEG comment (COM) segment and PNG text chunks do not survive, and a
polyglot file (a script that is also a valid JPEG header) is neutralised.

Decoding is the expensive part of a submission, so it has a budget (measured in issue 12):
- a pixel cap read from the header before anything is decoded: a camera (single-scan) JPEG, or
  MPO, the multi-picture JPEG many phone cameras write (its first picture is kept), up to
  MAX_JPEG_PIXELS, which covers 48–50 MP phone cameras; progressive JPEG and PNG up to
  DECODE_PIXELS; WebP, whose decoder needs more memory a pixel, up to half that;
- a JPEG over DECODE_PIXELS is decoded at 1/2 (1/4, 1/8) scale by libjpeg itself (DCT scaling),
  so what is decoded and stored is never more than DECODE_PIXELS;
- at most UPLOAD_DECODE_CONCURRENCY decodes at once per process; a request that cannot get a slot
  within UPLOAD_DECODE_WAIT_SECONDS is refused (503, "busy") instead of piling up.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from marshmallow import Schema, ValidationError
from PIL import ExifTags, Image, UnidentifiedImageError
from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from supervise.config import DISPLAY_TZ
from supervise.errors import InvalidInput
from supervise.i18n import N_
from supervise.intake.storage import FilesystemStore, StoreUnavailable, UploadStore, sweep_orphans

log = logging.getLogger(__name__)

MAX_PHOTOS = 6  # the message below says 6: change both together
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# The decode budget (issue 12, measured): one decode and re-encode peaks at ≤ ~175 MB (WebP at its
# cap; JPEG and PNG ≤ 135 MB) and ~1 s of CPU, so the UPLOAD_DECODE_CONCURRENCY (2) decodes a web
# process may run at once cost it ≤ ~350 MB. A full decode holds the decoded image and the fresh
# pixels-only copy, 3–4 bytes a pixel each: 4096 × 4096 = 16.8 MP → ≤ 135 MB.
DECODE_PIXELS = 4096 * 4096
# Phone cameras write single-scan (baseline) JPEG: 12 MP usually, 48–50 MP (8160 × 6120 = 49.9 MP)
# on some. libjpeg decodes those at 1/2 scale (≤ 12.5 MP) without holding the whole file's
# coefficients, so a 50 MP photo costs about what a 12 MP one does.
MAX_JPEG_PIXELS = 50_000_000
# A multi-scan (progressive) JPEG makes libjpeg keep every coefficient of the full-size picture
# (2 bytes × 1.5–3 samples a pixel: 50 MP → 150–300 MB) whatever the output scale, and PNG has no
# reduced decode: both are capped at the decode budget itself.
MAX_MULTISCAN_JPEG_PIXELS = DECODE_PIXELS
MAX_PNG_PIXELS = DECODE_PIXELS
# Pillow's WebP decoder holds ~16 bytes a pixel (an RGBA canvas and copies of it): half the budget.
MAX_WEBP_PIXELS = DECODE_PIXELS // 2
THUMBNAIL_SIZE = (480, 480)

# Pillow's format → (content type, extension, output format). MPO is stored as a plain JPEG.
FORMATS = {
    "JPEG": ("image/jpeg", "jpg", "JPEG"),
    "MPO": ("image/jpeg", "jpg", "JPEG"),
    "PNG": ("image/png", "png", "PNG"),
    "WEBP": ("image/webp", "webp", "WEBP"),
}
# Modes each output format is written in; anything else is converted (pixels, not metadata).
OUTPUT_MODES = {"JPEG": ("L", "RGB"), "PNG": ("1", "L", "LA", "RGB", "RGBA"), "WEBP": ("RGB", "RGBA")}
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# The numbers in this message are the caps above: change them together.
TOO_LARGE = N_("照片像素过多（JPG 最多 5000 万，渐进式 JPG 和 PNG 最多 1600 万，WebP 最多 800 万）")
BUSY = N_("服务器正忙于处理其他照片，请稍后再提交")
UNAVAILABLE = N_("照片暂时无法保存（服务器存储故障），请稍后再提交，或先不附照片提交")


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    content_type: str
    size: int
    width: int
    height: int
    created: bool = False  # this put wrote the file (it was not stored before)


class UploadsBusy(InvalidInput):
    """No decode slot came free in time. A form shows it beside the photos (keeping what was
    typed); the API answers 503 with code `busy`."""

    status = 503
    code = "busy"


class UploadsUnavailable(InvalidInput):
    """The photo store refused a write (disk full, read-only, gone): the photos are the problem,
    not the citizen's text. A form shows it beside the photos (keeping what was typed); the API
    answers 503 with code `storage_unavailable`. Nothing of the submission is kept."""

    status = 503
    code = "storage_unavailable"


def _reject(message: str) -> InvalidInput:
    return InvalidInput(message, {"photos": [message]})


_MARKER_AFTER_SCAN = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


def _jpeg_is_multiscan(data: bytes) -> bool:
    """Whether the first picture of a JPEG has more than one scan (progressive, or baseline with
    separate scans): then libjpeg buffers the whole picture's coefficients. Reads the markers up
    to the first scan, then finds the marker that ends it; only EOI means a single scan."""
    pos = 2  # after SOI
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return True  # not a marker where one must be: let the cap be the strict one
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data follows its header
            end = _MARKER_AFTER_SCAN.search(data, pos + 2 + length)
            return end is not None and data[end.end() - 1] != 0xD9
        pos += 2 + length
    return True


def _pixel_cap(kind: str, image: Image.Image, data: bytes) -> int:
    if kind == "PNG":
        return MAX_PNG_PIXELS
    if kind == "WEBP":
        return MAX_WEBP_PIXELS
    if image.info.get("progressive") or _jpeg_is_multiscan(data):
        return MAX_MULTISCAN_JPEG_PIXELS
    return MAX_JPEG_PIXELS


def _scale_for(width: int, height: int) -> int:
    """The smallest libjpeg DCT scale (1, 2, 4, 8) that brings a picture within DECODE_PIXELS."""
    for scale in (1, 2, 4, 8):
        if -(-width // scale) * -(-height // scale) <= DECODE_PIXELS:
            return scale
    return 8


def _pixels_only(image: Image.Image, output: str) -> Image.Image:
    """A fresh image holding `image`'s pixels and nothing else (no info, no EXIF, no profile)."""
    if image.mode.startswith("I;16"):  # 16-bit grey (PNG): keep the top 8 bits, not a clipped white
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    mode = image.mode
    if mode not in OUTPUT_MODES[output] or "transparency" in image.info:
        # Palette, CMYK, 16-bit…: plain RGB(A) pixels. A transparent colour becomes alpha.
        alpha = "A" in image.getbands() or "transparency" in image.info
        mode = "RGBA" if alpha and "RGBA" in OUTPUT_MODES[output] else "RGB"
        if output == "JPEG" and image.mode == "L":
            mode = "L"
        image = image.convert(mode)
    clean = Image.new(mode, image.size)
    clean.paste(image)
    return clean


def probe_image(data: bytes) -> str:
    """The image's format, from its header and structure alone (no pixel decoded): what refuses a
    non-image, a format we do not take or a bomb, without waiting for a decode slot."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            if kind not in FORMATS:
                raise _reject(N_("只能上传 JPG、PNG 或 WebP 格式的照片"))
            # The header's size, before a single pixel is decoded.
            if probe.width * probe.height > _pixel_cap(kind, probe, data):
                raise _reject(TOO_LARGE)
            probe.verify()  # structure check; the image must be reopened afterwards
        return kind
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _reject(N_("文件不是有效的图片")) from exc


def clean_image(data: bytes, kind: str | None = None) -> tuple[bytes, str, int, int]:
    """Decode, check and re-encode an image; returns (bytes, content type, width, height).
    `kind`: what `probe_image` already said of these bytes."""
    kind = kind or probe_image(data)
    try:
        content_type, _, output = FORMATS[kind]
        with Image.open(io.BytesIO(data)) as image:
            if kind in ("JPEG", "MPO"):
                scale = _scale_for(image.width, image.height)
                if scale > 1:
                    image.draft(image.mode, (image.width // scale, image.height // scale))
            image.load()  # an MPO's first frame: the picture itself
            orientation = image.getexif().get(ExifTags.Base.Orientation)
            pixels = image.transpose(_ORIENTATION[orientation]) if orientation in _ORIENTATION else image
            clean = _pixels_only(pixels, output)
        del pixels
        out = io.BytesIO()
        if output == "JPEG":
            clean.save(out, "JPEG", quality=85)
        elif output == "PNG":
            clean.save(out, "PNG", compress_level=1)  # level 6: 5× the CPU on a noisy picture
        else:
            clean.save(out, "WEBP", quality=85, method=0)  # method 4: 3× the CPU
        return out.getvalue(), content_type, clean.width, clean.height
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _reject(N_("文件不是有效的图片")) from exc


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail(THUMBNAIL_SIZE)
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=80)
        return out.getvalue()


def read_photos(files: list[FileStorage]) -> list[bytes]:
    """The raw bytes of the uploaded photos, enforcing count and size caps before any decoding."""
    files = [f for f in files if f and f.filename]
    if len(files) > MAX_PHOTOS:
        raise _reject(N_("最多上传 6 张照片"))
    photos = []
    for f in files:
        data = f.stream.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise _reject(N_("每张照片不能超过 10 MB"))
        if not data:
            raise _reject(N_("文件不是有效的图片"))
        photos.append(data)
    return photos


@dataclass
class FormInput:
    data: dict[str, Any]
    photos: list[bytes]
    errors: dict[str, Any]


def load_with_photos(schema: Schema, fields: dict[str, Any], files: list[FileStorage]) -> FormInput:
    """A form's fields through its schema and its photos read, every problem of both gathered:
    a citizen or a clerk sees all that is wrong at once, not one thing per round trip."""
    errors: dict[str, Any] = {}
    data: dict[str, Any] = {}
    try:
        data = schema.load(fields)
    except ValidationError as exc:
        errors.update(exc.messages)
    try:
        photos = read_photos(files)
    except InvalidInput as exc:
        errors.update(exc.details)
        photos = []
    return FormInput(data, photos, errors)


_SLOTS_LOCK = threading.Lock()


def decode_slots(app=None) -> threading.BoundedSemaphore:
    """This process's decode slots (UPLOAD_DECODE_CONCURRENCY of them), one set per app."""
    app = app or current_app._get_current_object()
    slots = app.extensions.get("supervise.decode_slots")
    if slots is None:
        with _SLOTS_LOCK:
            slots = app.extensions.setdefault(
                "supervise.decode_slots", threading.BoundedSemaphore(app.config["UPLOAD_DECODE_CONCURRENCY"])
            )
    return slots


@contextmanager
def decode_slot(deadline: float | None = None) -> Iterator[None]:
    """Hold one decode slot, waiting until `deadline` (time.monotonic()) at most; UploadsBusy if
    none came free. Without a deadline, waits UPLOAD_DECODE_WAIT_SECONDS."""
    if deadline is None:
        deadline = time.monotonic() + current_app.config["UPLOAD_DECODE_WAIT_SECONDS"]
    slots = decode_slots()
    if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise UploadsBusy(BUSY, {"photos": [BUSY]})
    try:
        yield
    finally:
        slots.release()


def store_photos(store: UploadStore, photos: list[bytes]) -> list[StoredImage]:
    """Clean every photo (one decode slot at a time, all within one bounded wait), then store them:
    a refused photo or a busy server stores nothing."""
    kinds = [probe_image(raw) for raw in photos]  # a refused file is a 422 even on a busy server
    deadline = time.monotonic() + current_app.config["UPLOAD_DECODE_WAIT_SECONDS"]
    cleaned = []
    for raw, kind in zip(photos, kinds, strict=True):
        with decode_slot(deadline):
            cleaned.append(clean_image(raw, kind))
    stored: list[StoredImage] = []
    try:
        for data, content_type, width, height in cleaned:
            existed = store.exists(hashlib.sha256(data).hexdigest())
            stored.append(StoredImage(store.put(data), content_type, len(data), width, height, not existed))
    except StoreUnavailable as exc:
        log.error("photo store refused a write (%s): submission refused with 503", exc)
        _discard(store, stored)  # the photos of this submission already written
        raise UploadsUnavailable(UNAVAILABLE, {"photos": [UNAVAILABLE]}) from exc
    return stored


# -- no orphans: files stored for a transaction that does not commit are removed ------------------

_PENDING = "supervise.new_photos"


def keep_with_transaction(session, store: UploadStore, images: list[StoredImage]) -> None:
    """Photos are stored before the rows naming them commit; if that transaction ends without a
    commit (an error, a rollback, a retry), the files this request created are removed again."""
    created = [image.sha256 for image in images if image.created]
    if created:
        session.info.setdefault(_PENDING, []).append((store, created))


@event.listens_for(Session, "after_commit")
def _photos_committed(session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _photos_not_committed(session, transaction) -> None:
    if transaction.parent is not None or _PENDING not in session.info:
        return  # a savepoint; or nothing stored
    for store, shas in session.info.pop(_PENDING):
        _discard_unreferenced(session, store, shas)


def _discard(store: UploadStore, images: list[StoredImage]) -> None:
    for image in images:
        if image.created:
            with contextlib.suppress(Exception):
                store.remove(image.sha256)


def _discard_unreferenced(session, store: UploadStore, shas: list[str]) -> None:
    """Remove the files unless a committed row names them (another request stored the same photo)."""
    from supervise.cases.models import Attachment

    try:
        with session.get_bind().connect() as conn:  # not the ending transaction's connection
            named = {
                sha
                for row in conn.execute(
                    select(Attachment.sha256, Attachment.thumb_sha256).where(
                        or_(Attachment.sha256.in_(shas), Attachment.thumb_sha256.in_(shas))
                    )
                )
                for sha in row
            }
        for sha in set(shas) - named:
            store.remove(sha)
            log.info("removed photo file %s: its transaction did not commit", sha)
    except Exception as exc:  # a rollback must not fail because of this; the daily sweep catches up
        log.warning(
            "could not remove the photos of a rolled-back transaction (%s); the daily sweep will", exc
        )


# -- the daily sweep ------------------------------------------------------------------------------

SWEEP_JOB = "upload_sweep"
SWEEP_MIN_AGE_SECONDS = 24 * 3600  # never younger: a request in flight has stored, not yet committed


def sweep_uploads(now: datetime | None = None) -> dict[str, int] | None:
    """The daily job: remove temp files and photo files no row names, older than a day; once a
    day (claimed in `periodic_runs` like the weekly report). None when today's run was done."""
    from supervise.cases.models import Attachment
    from supervise.cases.services import make_context, upload_store
    from supervise.extensions import db
    from supervise.reports.models import claim_period

    now = now or make_context().now
    period = now.astimezone(ZoneInfo(DISPLAY_TZ)).date().isoformat()
    if not claim_period(db.session, SWEEP_JOB, period):
        db.session.rollback()
        return None
    store = upload_store()
    if not isinstance(store, FilesystemStore):
        # A bucket: set a lifecycle rule instead (docs/deploy.md); nothing to sweep here.
        log.info("upload sweep: the store is a bucket, not swept")
        db.session.commit()
        return {"temp_files": 0, "orphans": 0}
    referenced = {
        sha
        for row in db.session.execute(select(Attachment.sha256, Attachment.thumb_sha256))
        for sha in row
        if sha
    }
    result = sweep_orphans(store, referenced, SWEEP_MIN_AGE_SECONDS, now.timestamp())
    db.session.commit()  # the claim, once the files are gone: a crash before it runs again
    log.info(
        "upload sweep %s: removed %s temp file(s) and %s orphan photo file(s)",
        period,
        len(result.temp_files),
        len(result.orphans),
    )
    return {"temp_files": len(result.temp_files), "orphans": len(result.orphans)}


class ThumbnailChannel:
    """Outbox channel `thumbnail`: makes the thumbnails of a case's photos (idempotent)."""

    def __init__(self, store: UploadStore):
        self.store = store

    def send(self, session, message) -> None:
        from sqlalchemy import select

        from supervise.cases.models import Attachment

        rows = session.scalars(
            select(Attachment).where(Attachment.case_id == message.case_id, Attachment.thumb_sha256.is_(None))
        )
        for attachment in rows:
            attachment.thumb_sha256 = self.store.put(thumbnail(self.store.get(attachment.sha256)))
        session.flush()
