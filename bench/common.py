"""What every benchmark shares: the `bench` database, Redis db 15, and building the real app on them.

The environment is set *before* the app is imported: `supervise.config.load_config()` reads it when
the app is built. Nothing here ever touches the `test` database the test suite uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"  # generated development secrets (stable between generate and runs)

# The bench database: `BENCH_DATABASE_URL` (a SQLAlchemy URL; the database name must contain
# "bench", since `--reset` drops it), else `bench` on the local server. Deliberately not
# DATABASE_URL: a shell may export that for the app or the tests, and the generator drops and
# re-creates whatever it points at.
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
_url = urlsplit(DATABASE_URL)
DB_NAME = _url.path.lstrip("/")
# The maintenance database on the same server (CREATE / DROP DATABASE, the marker).
PG_ADMIN_URL = urlunsplit(("postgresql", _url.netloc, "/postgres", "", ""))
REDIS_URL = "redis://127.0.0.1:6379/15"

# Written as a COMMENT ON DATABASE once a data set is complete: what it holds, so a second
# `generate()` with the same arguments reuses it instead of building it again.
MARKER_PREFIX = "supervise-bench "
GENERATOR_VERSION = 3  # 3: discipline bodies own cases (issue 11)

FAST_PASSWORD_HASH = "pbkdf2:sha256:1000"  # noqa: S105 - a hashing method, not a password


def _guard() -> None:
    if DB_NAME == "test" or "bench" not in DB_NAME:  # pragma: no cover - a guard
        raise RuntimeError(f"the bench uses a database named *bench*, never {DB_NAME!r}")


def configure_env() -> None:
    """Point the app at the bench database and Redis db 15 (call before importing `supervise`)."""
    _guard()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["SUPERVISE_DATA_DIR"] = str(DATA_DIR)
    os.environ.setdefault("SUPERVISE_ENV", "development")


def make_app():
    configure_env()
    from supervise.app import create_app

    app = create_app({"PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH})
    app.config["PASSWORD_HASH_METHOD"] = FAST_PASSWORD_HASH  # keep account creation cheap
    return app


def admin_connection():
    """An autocommit connection to the `postgres` maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def database_exists() -> bool:
    with admin_connection() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is not None


def read_marker() -> dict[str, Any] | None:
    """What the bench database holds, as recorded by the generator (None: nothing complete)."""
    with admin_connection() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (DB_NAME,)
        ).fetchone()
    if not row or not row[0] or not row[0].startswith(MARKER_PREFIX):
        return None
    try:
        return json.loads(row[0].removeprefix(MARKER_PREFIX))
    except ValueError:
        return None


def write_marker(conn, info: dict[str, Any]) -> None:
    """`conn`: a psycopg connection to any database of the cluster."""
    from psycopg import sql

    comment = MARKER_PREFIX + json.dumps(info, ensure_ascii=False, sort_keys=True)
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(DB_NAME), sql.Literal(comment))
    )


def recreate_database() -> None:
    """Drop (ending any session still on it) and create the bench database."""
    from psycopg import sql

    _guard()
    with admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))


def ensure_database() -> None:
    if not database_exists():
        recreate_database()
