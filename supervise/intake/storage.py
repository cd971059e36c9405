"""Where photo bytes live: a folder on this machine, or an S3-compatible bucket.

Both stores keep a file under its SHA-256 (`ab/cd/<sha256>`), so the same photo is stored once
and a stored file never changes; the database holds only the hash. Which one is used is a
setting (UPLOAD_STORAGE=fs|s3): a single machine keeps the folder in its data dir; several web
and worker hosts share a bucket (docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The temp files `put` writes before renaming (`.upload-XXXX` beside their target): a crash or a
# killed process can still leave one, which the daily cleanup removes (sweep_orphans below).
TEMP_PREFIX = ".upload-"


class StoreUnavailable(OSError):
    """The store cannot take a file now (disk full, read-only, missing, bucket unreachable)."""


class UploadStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store `data` (idempotent); returns its SHA-256."""

    def get(self, sha256: str) -> bytes:
        """The bytes stored under this hash; KeyError if there are none."""

    def exists(self, sha256: str) -> bool: ...

    def remove(self, sha256: str) -> None:
        """Delete the file of this hash, if any (orphans only: a stored file is shared by hash)."""


log = logging.getLogger(__name__)
_HEX = frozenset("0123456789abcdef")


def _key(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise KeyError(sha256)  # never let a caller's string become a path or an object key
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class FilesystemStore:
    """Files under `<data dir>/uploads/ab/cd/<sha256>`."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / _key(sha256)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            # Its age is its last put: the daily orphan sweep must not take a file that a request
            # in flight has just stored again (by hash) and is about to name in a row.
            with contextlib.suppress(OSError):
                os.utime(target)
        else:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                # Write then rename: a reader never sees half a file, a crash leaves no partial one.
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
            except OSError as exc:
                raise StoreUnavailable(str(exc)) from exc
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
            except OSError as exc:
                # A full disk leaves a partial temp file: ours, so ours to remove (issue 14).
                Path(tmp).unlink(missing_ok=True)
                raise StoreUnavailable(str(exc)) from exc
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return digest

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise KeyError(sha256) from None

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()


class S3Store:
    """Objects `<prefix>ab/cd/<sha256>` in a bucket of any S3-compatible service (MinIO, Ceph,
    a cloud's object storage). Private objects: photos are served only through the app's
    signed, access-checked links, never by bucket URL."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> S3Store:
        import boto3  # the `s3` extra: only a bucket-backed deployment needs it
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=config.get("S3_ENDPOINT_URL") or None,
            aws_access_key_id=config.get("S3_ACCESS_KEY_ID") or None,
            aws_secret_access_key=config.get("S3_SECRET_ACCESS_KEY") or None,
            region_name=config.get("S3_REGION") or "us-east-1",
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3},
                s3={"addressing_style": "path"},
            ),
        )
        return cls(client, config["S3_BUCKET"], config.get("S3_PREFIX", ""))

    def _object(self, sha256: str) -> str:
        return f"{self.prefix}{_key(sha256)}"

    def put(self, data: bytes) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256(data).hexdigest()
        try:
            if not self.exists(digest):
                # One PUT is atomic on S3: a reader sees the whole object or none.
                self.client.put_object(Bucket=self.bucket, Key=self._object(digest), Body=data)
        except (BotoCoreError, ClientError) as exc:  # unreachable, refused, bucket full or gone
            raise StoreUnavailable(str(exc)) from exc
        return digest

    def remove(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(sha256))

    def get(self, sha256: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(sha256))
        except self.client.exceptions.NoSuchKey:
            raise KeyError(sha256) from None
        return response["Body"].read()

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(sha256))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise


def store_from_config(config: Mapping[str, Any]) -> UploadStore:
    if config.get("UPLOAD_STORAGE", "fs") == "s3":
        return S3Store.from_config(config)
    return FilesystemStore(Path(config["DATA_DIR"]) / "uploads")


@dataclass
class SweepResult:
    temp_files: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def _is_stored_name(path: Path) -> bool:
    """`ab/cd/<sha256>` with the hash's own first digits: a file `put` renamed into place."""
    name = path.name
    return (
        len(name) == 64
        and set(name) <= _HEX
        and path.parent.name == name[2:4]
        and path.parent.parent.name == name[:2]
    )


def sweep_orphans(
    store: FilesystemStore, referenced: Iterable[str], min_age_seconds: float, now: float | None = None
) -> SweepResult:
    """Remove, from a folder store, temp files and files no row names, older than `min_age_seconds`.

    Never younger: a request in flight has stored its photos and not yet committed their rows.
    Idempotent: a second run finds nothing. `referenced` is every hash the database names.
    """
    now = time.time() if now is None else now
    keep = set(referenced)
    result = SweepResult()
    if not store.root.is_dir():
        return result
    for path in store.root.glob("*/*/*"):
        try:
            if not path.is_file() or now - path.stat().st_mtime < min_age_seconds:
                continue
            if not _is_stored_name(path):
                path.unlink()
                result.temp_files.append(str(path.relative_to(store.root)))
            elif path.name not in keep:
                path.unlink()
                result.orphans.append(path.name)
        except FileNotFoundError:
            continue  # removed meanwhile (another sweep, or renamed into place)
    for path in result.temp_files:
        log.info("upload sweep removed temp file %s", path)
    for sha in result.orphans:
        log.info("upload sweep removed photo file %s: no attachment names it", sha)
    return result
