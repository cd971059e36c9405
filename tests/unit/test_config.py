"""Settings validation at start (config.py): production refuses to run without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from supervise.config import ConfigError, load_config

PRODUCTION = {
    "SECRET_KEY": "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
    "SUPERVISE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgresql+psycopg://supervise@db:5432/supervise",
    "REDIS_URL": "redis://redis:6379/0",
}
# Each item, and the start of the line that names it when it is missing.
MISSING = {
    "SECRET_KEY": "SECRET_KEY is not set",
    "SUPERVISE_ENCRYPTION_KEY": "SUPERVISE_ENCRYPTION_KEY is not set",
    "DATABASE_URL": "DATABASE_URL is not set to PostgreSQL",
    "REDIS_URL": "REDIS_URL is not set",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment on an empty data dir; `env(**values)` sets some."""
    for name in (*PRODUCTION, "SUPERVISE_ENV", "LOG_FORMAT", "LOG_LEVEL", "UPLOAD_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))

    def _set(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return _set


def test_production_with_everything_set_starts_and_writes_no_secret_files(env, tmp_path):
    env(SUPERVISE_ENV="production", **PRODUCTION)
    config = load_config()
    assert config["SECRET_KEY"] == PRODUCTION["SECRET_KEY"] and not config["REDIS_EMBEDDED"]
    assert not list(tmp_path.iterdir())


def test_production_with_nothing_set_names_every_missing_item_once(env):
    env(SUPERVISE_ENV="production")
    with pytest.raises(ConfigError) as refused:
        load_config()
    problems = refused.value.problems
    assert len(problems) == len(MISSING)
    for start in MISSING.values():
        assert sum(p.startswith(start) for p in problems) == 1, problems
    assert str(refused.value).splitlines() == problems  # one line per item


@pytest.mark.parametrize("missing", list(MISSING))
def test_production_refuses_each_missing_item(env, missing):
    env(SUPERVISE_ENV="production", **{k: v for k, v in PRODUCTION.items() if k != missing})
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith(MISSING[missing])


def test_production_refuses_a_sqlite_database_url(env):
    env(SUPERVISE_ENV="production", **{**PRODUCTION, "DATABASE_URL": "sqlite:////srv/supervise.db"})
    with pytest.raises(ConfigError, match="SQLite is for development only"):
        load_config()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SUPERVISE_ENV", "prod", "SUPERVISE_ENV must be development or production, not 'prod'"),
        ("SUPERVISE_ENCRYPTION_KEY", "not-a-key", "SUPERVISE_ENCRYPTION_KEY is not a valid Fernet key"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be json or text"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_bad_values_are_refused_in_any_mode(env, name, value, message):
    env(**{name: value})
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert any(p.startswith(message) for p in refused.value.problems), refused.value.problems


def test_development_generates_its_secrets_in_the_data_dir(env, tmp_path):
    first, second = load_config(), load_config()
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and first["ENCRYPTION_KEY"] == second["ENCRYPTION_KEY"]
    assert (tmp_path / "encryption_key").stat().st_mode & 0o077 == 0
    assert first["LOG_FORMAT"] == "text" and first["REDIS_EMBEDDED"]


def test_the_command_prints_one_line_per_missing_item_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.update(SUPERVISE_ENV="production", SUPERVISE_DATA_DIR=str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "supervise.cli", "init"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[0] == "supervise cannot start with these settings:"
    assert [line[4:].split(":")[0].split(" is")[0] for line in lines[1:]] == list(MISSING)
