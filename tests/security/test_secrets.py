"""Issue 12, item 5: production refuses placeholder and weak secrets, one line each, no traceback.

Before the fix `SECRET_KEY=CHANGE-ME-…` from .env.example (or `a`) started production, and with it
a photo link of the production instance was forged offline; the METRICS_TOKEN placeholder was
accepted too. Each test failed on that code.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from supervise.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
STRONG = {
    "SECRET_KEY": secrets.token_hex(32),  # what `openssl rand -hex 32` prints
    "SUPERVISE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgresql+psycopg://supervise:" + secrets.token_hex(24) + "@db:5432/supervise",
    "REDIS_URL": "redis://redis:6379/0",
}
SETTINGS = (
    *STRONG,
    "METRICS_TOKEN",
    "SMTP_PASSWORD",
    "S3_SECRET_ACCESS_KEY",
    "SUPERVISE_ENV",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "UPLOAD_STORAGE",
)


@pytest.fixture
def production(monkeypatch, tmp_path):
    """`production(**values)` → load_config() in production with strong secrets but these values."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))

    def load(**values):
        for name, value in {"SUPERVISE_ENV": "production", **STRONG, **values}.items():
            monkeypatch.setenv(name, value)
        return load_config()

    return load


def refused(production, **values) -> list[str]:
    with pytest.raises(ConfigError) as error:
        production(**values)
    return error.value.problems


def test_strong_secrets_start_production(production):
    config = production(METRICS_TOKEN=secrets.token_urlsafe(32))
    assert config["SECRET_KEY"] == STRONG["SECRET_KEY"]


def test_the_env_example_placeholders_are_refused_one_line_each(production):
    problems = refused(
        production,
        SECRET_KEY=EXAMPLE["SECRET_KEY"],
        METRICS_TOKEN=EXAMPLE["METRICS_TOKEN"],
        DATABASE_URL=f"postgresql+psycopg://supervise:{EXAMPLE['POSTGRES_PASSWORD']}@postgres:5432/supervise",
    )
    assert "CHANGE-ME" in EXAMPLE["SECRET_KEY"] and "CHANGE-ME" in EXAMPLE["METRICS_TOKEN"]
    assert [p.split(" ")[0] for p in problems] == ["SECRET_KEY", "METRICS_TOKEN", "DATABASE_URL"], problems
    assert all("placeholder" in p for p in problems)
    assert not any(EXAMPLE["SECRET_KEY"] in p for p in problems)  # a secret is never printed


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "a-long-random-production-secret",  # 31 characters
        "changeme" + secrets.token_hex(32),
        "https://jubao.example.gov.cn/" + secrets.token_hex(8),
        "x" * 80,  # long, one character
        "ab" * 40,  # long, two characters
        secrets.token_hex(16),  # 32 hex digits: 128 bits
        "correct horse battery staple",
    ],
)
def test_a_weak_or_placeholder_secret_key_is_refused(production, value):
    problems = refused(production, SECRET_KEY=value)
    assert len(problems) == 1 and problems[0].startswith("SECRET_KEY is "), problems
    assert "openssl rand -hex 32" in problems[0]


@pytest.mark.parametrize(
    "value", ["CHANGE-ME-openssl-rand-hex-32", "changeme", "s3cret-metrics-token", secrets.token_hex(12)]
)
def test_a_weak_or_placeholder_metrics_token_is_refused(production, value):
    problems = refused(production, METRICS_TOKEN=value)
    assert len(problems) == 1 and problems[0].startswith("METRICS_TOKEN is "), problems


def test_other_secret_settings_are_refused_when_placeholders(production):
    problems = refused(
        production,
        SMTP_PASSWORD="CHANGE_ME",
        S3_SECRET_ACCESS_KEY="your-key-example",
        SUPERVISE_ENCRYPTION_KEY="A" * 43 + "=",  # a valid Fernet key of 32 zero bytes
    )
    assert sorted(p.split(" ")[0] for p in problems) == [
        "S3_SECRET_ACCESS_KEY",
        "SMTP_PASSWORD",
        "SUPERVISE_ENCRYPTION_KEY",
    ], problems


def test_development_keeps_working_with_its_own_secrets(monkeypatch, tmp_path):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("METRICS_TOKEN", "dev")
    assert load_config()["METRICS_TOKEN"] == "dev"


def test_the_command_prints_one_line_per_weak_secret_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(
        STRONG,
        SUPERVISE_ENV="production",
        SUPERVISE_DATA_DIR=str(tmp_path),
        SECRET_KEY=EXAMPLE["SECRET_KEY"],
        METRICS_TOKEN="a",
    )
    run = subprocess.run(
        [sys.executable, "-m", "supervise.cli", "init"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[0] == "supervise cannot start with these settings:"
    assert [line.split()[1] for line in lines[1:]] == ["SECRET_KEY", "METRICS_TOKEN"], lines
