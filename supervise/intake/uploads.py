"""Photos from citizens: checked by content, capped, stripped of EXIF/GPS, stored by content hash.

Every accepted image is decoded and re-encoded by Pillow, so what we store is pixels we produced,
not bytes the sender chose: metadata (EXIF with GPS, XMP, PNG text chunks) does not survive, and a
polyglot file (a script that is also a valid JPEG header) is neutralised.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from supervise.errors import InvalidInput
from supervise.i18n import N_
from supervise.intake.storage import UploadStore

MAX_PHOTOS = 6  # the message below says 6: change both together
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# A decompression bomb (a tiny file that decodes to gigapixels) is refused before decoding.
MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = (480, 480)

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    content_type: str
    size: int
    width: int
    height: int


def _reject(message: str) -> InvalidInput:
    return InvalidInput(message, {"photos": [message]})


def clean_image(data: bytes) -> tuple[bytes, str, int, int]:
    """Decode, check and re-encode an image; returns (bytes, content type, width, height)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            if kind not in FORMATS:
                raise _reject(N_("只能上传 JPG、PNG 或 WebP 格式的照片"))
            if probe.width * probe.height > MAX_PIXELS:
                raise _reject(N_("照片尺寸过大"))
            probe.verify()  # structure check; the image must be reopened afterwards
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)  # keep the picture upright once EXIF is gone
            out = io.BytesIO()
            if kind == "JPEG":
                image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
            elif kind == "PNG":
                image.save(out, "PNG", optimize=True)
            else:
                image.save(out, "WEBP", quality=85)
            return out.getvalue(), FORMATS[kind][0], image.width, image.height
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


def store_photos(store: UploadStore, photos: list[bytes]) -> list[StoredImage]:
    stored = []
    for raw in photos:
        data, content_type, width, height = clean_image(raw)
        stored.append(StoredImage(store.put(data), content_type, len(data), width, height))
    return stored


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
