"""`supervise backup` / `supervise restore` for the SQLite default: database, photos, secrets.

An archive is a .tar.gz holding
  manifest.json          format, created_at, Alembic revision, row counts, hashes, key fingerprints
  database/supervise.db  a consistent copy taken with SQLite's online backup API (the app may run)
  uploads/ab/cd/<sha256> every photo and thumbnail the copy refers to, read through the upload store
  secrets/<name>         the generated development secrets of the data dir, when they exist

The database is copied first and the photos after: a photo is stored before the row naming it
commits, so every row of the copy finds its photo. The generated secrets are included because the
data is useless without them (reporter identity is encrypted with the encryption key; access
codes are keyed with the secret key): the archive must be kept as safe as the database itself.

PostgreSQL is backed up with pg_dump (PG_RECIPE, docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "database/supervise.db"
# data-dir file → the setting it holds (supervise/config.py generates them in development)
SECRET_FILES = {"secret_key": "SECRET_KEY", "encryption_key": "ENCRYPTION_KEY"}
COUNTED_TABLES = ("cases", "events", "attachments")
_UPLOAD_MEMBER = re.compile(r"uploads/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")

PG_RECIPE = """\
This database is PostgreSQL: back it up with pg_dump (docs/deploy.md), e.g.
  pg_dump --format=custom --file=supervise-$(date +%F).dump "postgresql://USER@HOST:5432/DB"
  pg_restore --clean --if-exists --no-owner --dbname="postgresql://USER@HOST:5432/DB" supervise-DATE.dump
plus the photos (tar -czf uploads.tgz -C "$SUPERVISE_DATA_DIR" uploads, or the S3 bucket's own
backup), and keep SECRET_KEY and SUPERVISE_ENCRYPTION_KEY with them: without the encryption key
reporter identity cannot be read."""


class BackupError(Exception):
    """A refusal, with a message for the operator."""


def fingerprint(value: str | None) -> str | None:
    """A short hash that tells two keys apart without revealing either."""
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else None


ENV_NAMES = {"SECRET_KEY": "SECRET_KEY", "ENCRYPTION_KEY": "SUPERVISE_ENCRYPTION_KEY"}


def generated_secrets(config: Mapping[str, Any]) -> list[str]:
    """The data dir's generated secret files this configuration uses (no value from the environment)."""
    data_dir = Path(config.get("DATA_DIR") or ".")
    return [
        name
        for name, setting in SECRET_FILES.items()
        if (data_dir / name).is_file() and (data_dir / name).read_text().strip() == config.get(setting)
    ]


def sqlite_path(config: Mapping[str, Any]) -> Path:
    from sqlalchemy.engine import make_url

    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        generated = generated_secrets(config) if config.get("DATA_DIR") else []
        if generated:
            # Issue 14: pg_dump + the uploads tar alone lost these, and with them every access
            # code and every reporter's name. The first line says so.
            files = " ".join(generated)
            raise BackupError(
                f"This deployment's keys are generated files in the data dir ({files}), not in .env: "
                f'back them up with the database, e.g. tar -czf uploads.tgz -C "$SUPERVISE_DATA_DIR" '
                f"uploads {files} — without them a restore cannot open any case.\n" + PG_RECIPE
            )
        raise BackupError(PG_RECIPE)
    return Path(url.database).resolve()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(db_file: Path) -> dict[str, Any]:
    """Revision, row counts and referenced photo hashes of a database file (read only)."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED_TABLES}  # noqa: S608
        hashes = {h for row in conn.execute("SELECT sha256, thumb_sha256 FROM attachments") for h in row if h}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database is not a supervise database ({exc}): run `supervise init`") from exc
    finally:
        conn.close()
    return {"revision": revision[0] if revision else None, "counts": counts, "hashes": sorted(hashes)}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def create_backup(config: Mapping[str, Any], output: Path) -> tuple[dict[str, Any], list[str]]:
    """Write the archive; returns its manifest and lines for the operator."""
    from supervise.intake.storage import store_from_config

    db_file = sqlite_path(config)
    if not db_file.exists():
        raise BackupError(f"no database at {db_file}: nothing to back up")
    data_dir = Path(config["DATA_DIR"])
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".supervise-backup-") as tmp:
        snapshot = Path(tmp) / "supervise.db"
        source = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(snapshot)
        try:
            with target:
                source.backup(target)  # a consistent copy even while the app writes
        finally:
            source.close()
            target.close()
        described = _describe(snapshot)
        store = store_from_config(config)
        secrets = {name: (data_dir / name).read_text().strip() for name in generated_secrets(config)}
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "app": "supervise",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "alembic_revision": described["revision"],
            "counts": described["counts"],
            "database_sha256": _sha256_file(snapshot),
            "uploads": 0,
            "uploads_missing": [],
            "secrets_included": sorted(secrets),
            "key_fingerprints": {s: fingerprint(config.get(s)) for s in SECRET_FILES.values()},
        }
        partial = Path(tmp) / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(snapshot, DATABASE)
            for sha in described["hashes"]:
                try:
                    data = store.get(sha)
                except KeyError:
                    manifest["uploads_missing"].append(sha)
                    continue
                _add_bytes(tar, f"uploads/{sha[:2]}/{sha[2:4]}/{sha}", data, 0o644)
                manifest["uploads"] += 1
            for name, value in secrets.items():
                _add_bytes(tar, f"secrets/{name}", value.encode())
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode(), 0o644)
        os.chmod(partial, 0o600)
        os.replace(partial, output)
    counts = manifest["counts"]
    notes.append(
        f"backup written to {output}: {counts['cases']} case(s), {counts['events']} event(s), "
        f"{counts['attachments']} attachment(s), {manifest['uploads']} photo file(s), "
        f"revision {manifest['alembic_revision']}"
    )
    if manifest["uploads_missing"]:
        notes.append(f"WARNING: {len(manifest['uploads_missing'])} photo file(s) were missing from the store")
    if secrets:
        notes.append(
            f"WARNING: the archive holds the secrets of this data dir ({', '.join(sorted(secrets))}): "
            "reporter identity can be read with it. Keep it as safe as the database (mode 0600, "
            "encrypted storage, restricted access)."
        )
    for setting in SECRET_FILES.values():
        if setting not in {SECRET_FILES[n] for n in secrets} and config.get(setting):
            env_name = "SUPERVISE_ENCRYPTION_KEY" if setting == "ENCRYPTION_KEY" else setting
            notes.append(
                f"NOTE: {env_name} comes from the environment and is NOT in the archive: keep it with "
                "the backup, the data cannot be used without it."
            )
    return manifest, notes


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """The archive's regular files, refusing any name a backup never contains."""
    found: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        if member.isdir():
            continue
        name = member.name
        allowed = (
            name in (MANIFEST, DATABASE)
            or _UPLOAD_MEMBER.fullmatch(name)
            or (name.startswith("secrets/") and name.removeprefix("secrets/") in SECRET_FILES)
        )
        if not member.isfile() or not allowed:
            raise BackupError(f"not a supervise backup: unexpected entry {name!r}")
        found[name] = member
    if MANIFEST not in found or DATABASE not in found:
        raise BackupError("not a supervise backup: no manifest.json or database")
    return found


def _check_revision(revision: str | None) -> str | None:
    """Refuse a database from newer code; returns a note when it needs `supervise init`."""
    from alembic.script import ScriptDirectory

    from supervise.app import MIGRATIONS

    script = ScriptDirectory(str(MIGRATIONS))
    try:
        known = revision is not None and script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        known = False
    if not known:
        raise BackupError(
            f"the backup's database is at revision {revision!r}, which this code does not know: "
            "it was made by a newer version; install that version (or newer) to restore it"
        )
    if revision != script.get_current_head():
        return "the database is from an older version: run `supervise init` to upgrade it"
    return None


def _secrets(members: dict[str, tarfile.TarInfo]) -> list[tuple[str, tarfile.TarInfo]]:
    return [(n, members[f"secrets/{n}"]) for n in SECRET_FILES if f"secrets/{n}" in members]


def _check_keys(config: Mapping[str, Any], manifest: Mapping[str, Any], archived: Mapping[str, str]) -> None:
    """Refuse, before anything is written, a restore whose keys would not open the data: the
    key a restored process will use (the environment's, else the archive's file, else the target
    data dir's own) must be the one the backup was made with."""
    expected = manifest.get("key_fingerprints") or {}
    for name, setting in SECRET_FILES.items():
        env_name = ENV_NAMES[setting]
        if not expected.get(setting):
            continue
        if os.environ.get(env_name):
            effective, source = os.environ[env_name], f"{env_name} in the environment"
        elif name in archived:
            effective, source = archived[name], f"the archive's secrets/{name}"
        else:
            effective, source = config.get(setting), f"the target's {Path(config['DATA_DIR']) / name}"
        if fingerprint(effective) != expected[setting]:
            what = (
                "reporter names and phones could not be decrypted"
                if setting == "ENCRYPTION_KEY"
                else "access codes, photo links and staff tokens would not work"
            )
            if os.environ.get(env_name) and name in archived:
                where = f"the backup holds the right one: unset {env_name} to use it"
            else:
                where = f"set {env_name} to the one the backup was made with (the archive does not hold it)"
            raise BackupError(
                f"refusing to restore: {source} differs from the {env_name} the backup was made with "
                f"(fingerprint {fingerprint(effective)} ≠ {expected[setting]}), so {what}; {where}"
            )


def restore_backup(config: Mapping[str, Any], archive: Path, force: bool = False) -> list[str]:
    """Restore an archive into the configured data dir and database; returns lines for the operator."""
    from supervise.intake.storage import store_from_config

    db_file = sqlite_path(config)
    if db_file.exists() and db_file.stat().st_size > 0 and not force:
        raise BackupError(
            f"refusing to restore: a database already exists at {db_file}. Restore into an empty data "
            "dir, or pass --force to replace it (stop the web, worker and cron processes first)"
        )
    data_dir = Path(config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    db_file.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with` below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from exc
    with tar, tempfile.TemporaryDirectory(dir=db_file.parent, prefix=".supervise-restore-") as tmp:
        members = _members(tar)
        try:
            manifest = json.loads(tar.extractfile(members[MANIFEST]).read())
        except ValueError as exc:
            raise BackupError("not a supervise backup: manifest.json is not JSON") from exc
        if manifest.get("app") != "supervise" or manifest.get("format") != FORMAT:
            raise BackupError(
                f"unsupported backup format {manifest.get('format')!r} (this code reads {FORMAT})"
            )
        snapshot = Path(tmp) / "supervise.db"
        with tar.extractfile(members[DATABASE]) as src, snapshot.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        if _sha256_file(snapshot) != manifest.get("database_sha256"):
            raise BackupError("the archive is damaged: the database does not match its manifest")
        described = _describe(snapshot)
        if described["revision"] != manifest.get("alembic_revision") or described["counts"] != manifest.get(
            "counts"
        ):
            raise BackupError("the archive is damaged: the database does not match its manifest")
        upgrade_note = _check_revision(described["revision"])
        _check_keys(
            config, manifest, {n: tar.extractfile(m).read().decode().strip() for n, m in _secrets(members)}
        )

        # Photos first, the database last: until the database is in place the target still
        # counts as empty, so an interrupted restore can simply be run again.
        store = store_from_config(config)
        restored = 0
        for name, member in members.items():
            match = _UPLOAD_MEMBER.fullmatch(name)
            if not match:
                continue
            data = tar.extractfile(member).read()
            if hashlib.sha256(data).hexdigest() != match.group(3):
                raise BackupError(f"the archive is damaged: {name} does not match its hash")
            store.put(data)
            restored += 1
        missing = [h for h in described["hashes"] if not store.exists(h)]
        for name in SECRET_FILES:
            member = members.get(f"secrets/{name}")
            if member is None:
                continue
            path = data_dir / name
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(tar.extractfile(member).read())
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        os.replace(snapshot, db_file)

    counts = described["counts"]
    notes.append(
        f"restored {archive} (made {manifest.get('created_at')}) into {data_dir}: {counts['cases']} case(s), "
        f"{counts['events']} event(s), {counts['attachments']} attachment(s), {restored} photo file(s)"
    )
    if missing:
        notes.append(f"WARNING: {len(missing)} photo file(s) the database refers to are not in the store")
    if manifest.get("secrets_included"):
        notes.append(f"restored the secrets {', '.join(manifest['secrets_included'])} into {data_dir}")
    env_names = {"SECRET_KEY": "SECRET_KEY", "ENCRYPTION_KEY": "SUPERVISE_ENCRYPTION_KEY"}
    for name, setting in SECRET_FILES.items():
        expected = (manifest.get("key_fingerprints") or {}).get(setting)
        effective = os.environ.get(env_names[setting]) or (
            (data_dir / name).read_text().strip() if (data_dir / name).is_file() else None
        )
        if expected and fingerprint(effective) != expected:
            notes.append(
                f"WARNING: {env_names[setting]} differs from the one the backup was made with: set it to "
                "the original value, or "
                + (
                    "reporter names and phones cannot be decrypted"
                    if setting == "ENCRYPTION_KEY"
                    else "citizens' access codes and staff tokens will not work"
                )
            )
    if upgrade_note:
        notes.append(upgrade_note)
    return notes
