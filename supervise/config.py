"""Settings from the environment (DESIGN.md §6).

Nothing here runs at import time: `load_config()` reads the environment when the app is built, so
tests and commands can pass their own values.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click
from cryptography.fernet import Fernet

DISPLAY_TZ = "Asia/Shanghai"


def _secret_from_file(path: Path, make: callable) -> str:
    """Read a generated development secret, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def data_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("SUPERVISE_DATA_DIR", "instance")).resolve()


def embedded_redis_url(directory: Path) -> str:
    return f"unix://{directory / 'redis.sock'}?db=0"


def _flag(value: str | None, default: bool) -> bool:
    return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    env = os.environ
    directory = data_dir()
    mode = env.get("SUPERVISE_ENV", "development")
    production = mode == "production"

    def secret(name: str, filename: str, make: callable) -> str | None:
        if env.get(name):
            return env[name]
        if production:
            return None  # refused in validate_config
        return _secret_from_file(directory / filename, make)

    config: dict[str, Any] = {
        "SUPERVISE_ENV": mode,
        "DATA_DIR": str(directory),
        "SECRET_KEY": secret("SECRET_KEY", "secret_key", lambda: secrets.token_hex(32)),
        "ENCRYPTION_KEY": secret(
            "SUPERVISE_ENCRYPTION_KEY", "encryption_key", lambda: Fernet.generate_key().decode()
        ),
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or f"sqlite:///{directory / 'supervise.db'}",
        # pre_ping: a pooled connection that died with a database restart is replaced before use,
        # not handed to a request (which would answer one 500 per idle process). recycle: under
        # the idle timeouts of firewalls and PgBouncer.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_recycle": 1800},
        # A read replica for reports and statistics (supervise/readonly.py); unset: the primary.
        "DATABASE_READ_URL": env.get("DATABASE_READ_URL", ""),
        "REDIS_URL": env.get("REDIS_URL") or embedded_redis_url(directory),
        "REDIS_EMBEDDED": not env.get("REDIS_URL"),
        "BASE_URL": env.get("SUPERVISE_BASE_URL", "http://127.0.0.1:8000"),
        # Deadline rules (DESIGN.md §4): defaults; admins change them in settings (settings.py).
        "RESPONSE_DAYS": 15,
        "STAGE_DAYS": 5,
        "DUE_SOON_DAYS": 3,
        "AUTO_CLOSE_DAYS": 10,
        "ACK_DAYS": 15,
        "LEVEL2_DAYS": 5,
        "MAX_EXTENSIONS": 1,
        "ON_TIME_RATE_TARGET": 92,  # percent
        "SATISFACTION_RATE_TARGET": 85,
        "PAGE_SIZE": 50,
        "PASSWORD_HASH_METHOD": "scrypt",
        # Abuse limits (Flask-Limiter syntax); failures are wrong access codes / unknown numbers.
        # Submissions per IP (supervise/intake/limits.py; admins override them in 限流设置): the
        # API's; the web forms', above which a submission must answer a question; the forms' hard
        # ceiling; known addresses with their own limit ("CIDR=limit", separated by spaces).
        "SUBMIT_RATE_LIMIT": env.get("SUBMIT_RATE_LIMIT", "20/hour;60/day"),
        "FORM_SUBMIT_RATE_LIMIT": env.get("FORM_SUBMIT_RATE_LIMIT", "20/hour;60/day"),
        "FORM_SUBMIT_CEILING": env.get("FORM_SUBMIT_CEILING", "200/hour;600/day"),
        "SUBMIT_ALLOWLIST": env.get("SUBMIT_ALLOWLIST", ""),
        "TRACK_RATE_LIMIT": "120/hour",
        "TRACK_FAILURE_LIMIT": "10/hour",
        # -- Open311 (issue 18, supervise/open311/): the calls one client's api_key may make.
        "OPEN311_RATE_LIMIT": env.get("OPEN311_RATE_LIMIT", "600/hour;5000/day"),
        # -- end Open311
        # -- verified phones (issue 18, supervise/intake/verification.py): SMS codes a number may
        # get (counted in the database, sliding) and an address may ask for (Redis).
        "PHONE_CODE_LIMIT": env.get("PHONE_CODE_LIMIT", "1/minute;5/hour"),
        "PHONE_CODE_IP_LIMIT": env.get("PHONE_CODE_IP_LIMIT", "20/hour"),
        # -- end verified phones
        "RATELIMIT_SWALLOW_ERRORS": True,  # Redis away must not turn a complaint into a 500
        "RATELIMIT_HEADERS_ENABLED": True,
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
        "WTF_CSRF_TIME_LIMIT": None,  # a token lives as long as the session
        # Staff sessions: server-side, with idle and absolute timeouts.
        "STAFF_IDLE_MINUTES": 30,
        "STAFF_SESSION_HOURS": 12,
        "LOGIN_FAILURE_LIMIT_IP": "30/hour",
        "LOGIN_FAILURE_LIMIT_USER": "5/15 minutes",
        # -- two-factor sign-in (issue 18, supervise/staff/twofactor): the roles that must use it,
        # role values separated by commas ("" = optional for all); 系统设置 → 两步验证 overrides it.
        "TWO_FACTOR_REQUIRED_ROLES": env.get("TWO_FACTOR_REQUIRED_ROLES", "supervisor,admin"),
        # -- end two-factor
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        # Strict-Transport-Security on every response (supervise/security.py): on in production,
        # off in development over http unless HSTS=true.
        "HSTS": _flag(env.get("HSTS"), default=production),
        "SESSION_COOKIE_NAME": "supervise_session",
        "REMEMBER_COOKIE_DURATION": 0,
        # JSON API / OpenAPI (flask-smorest)
        "API_TITLE": "supervise",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "JSON_AS_ASCII": False,
        "MAX_CONTENT_LENGTH": 70 * 1024 * 1024,
        # Mail (escalations, weekly reports). No SMTP_HOST: messages are written as .eml files to
        # DATA_DIR/mail, a local sink, so nothing leaves a development machine.
        "SMTP_HOST": env.get("SMTP_HOST", ""),
        "SMTP_PORT": int(env.get("SMTP_PORT", "587")),
        "SMTP_USERNAME": env.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": env.get("SMTP_STARTTLS", "true").lower() in ("1", "true", "yes"),
        "MAIL_FROM": env.get("MAIL_FROM", "码上监督 <noreply@localhost>"),
        # Photos: "fs" keeps them in DATA_DIR/uploads; "s3" in a bucket of an S3-compatible
        # service, shared by every web and worker host (docs/deploy.md).
        "UPLOAD_STORAGE": env.get("UPLOAD_STORAGE", "fs"),
        "S3_ENDPOINT_URL": env.get("S3_ENDPOINT_URL", ""),
        "S3_BUCKET": env.get("S3_BUCKET", ""),
        "S3_ACCESS_KEY_ID": env.get("S3_ACCESS_KEY_ID", ""),
        "S3_SECRET_ACCESS_KEY": env.get("S3_SECRET_ACCESS_KEY", ""),
        "S3_REGION": env.get("S3_REGION", ""),
        "S3_PREFIX": env.get("S3_PREFIX", ""),
        # Decoding photos is a submission's costliest step (supervise/intake/uploads.py): at most
        # this many at once per process; a request that waits longer than the seconds below for
        # a slot is refused (503 "busy") instead of piling up behind it.
        "UPLOAD_DECODE_CONCURRENCY": env.get("UPLOAD_DECODE_CONCURRENCY", "2"),
        "UPLOAD_DECODE_WAIT_SECONDS": env.get("UPLOAD_DECODE_WAIT_SECONDS", "5"),
        # -- SMS (issue 18, supervise/notify/sms.py): "log" (development: a masked line in the
        # log), "aliyun" or "tencent". Templates: "kind=TemplateId:param,…;…" (系统设置 → 短信模板
        # overrides a kind); SMS_ENDPOINT overrides the provider's address (tests: a stand-in).
        "SMS_GATEWAY": env.get("SMS_GATEWAY", "log"),
        "SMS_SIGN_NAME": env.get("SMS_SIGN_NAME", ""),
        "SMS_TEMPLATES": env.get("SMS_TEMPLATES", ""),
        "SMS_ENDPOINT": env.get("SMS_ENDPOINT", ""),
        "SMS_ACCESS_KEY_ID": env.get("SMS_ACCESS_KEY_ID", ""),  # aliyun
        "SMS_ACCESS_KEY_SECRET": env.get("SMS_ACCESS_KEY_SECRET", ""),
        "SMS_SECRET_ID": env.get("SMS_SECRET_ID", ""),  # tencent
        "SMS_SECRET_KEY": env.get("SMS_SECRET_KEY", ""),
        "SMS_SDK_APP_ID": env.get("SMS_SDK_APP_ID", ""),
        "SMS_REGION": env.get("SMS_REGION") or "ap-guangzhou",
        "SMS_CONNECT_TIMEOUT": env.get("SMS_CONNECT_TIMEOUT", "5"),
        "SMS_READ_TIMEOUT": env.get("SMS_READ_TIMEOUT", "10"),
        # Per number, counted in Redis under a keyed hash of it: over the minute → retried later;
        # over the day → dead letter 已达每日上限.
        "SMS_PHONE_MINUTE_LIMIT": env.get("SMS_PHONE_MINUTE_LIMIT", "1/minute"),
        "SMS_PHONE_DAY_LIMIT": env.get("SMS_PHONE_DAY_LIMIT", "10/day"),
        # -- end SMS
        # Group robots (supervise/robots): a webhook may only be https on the provider's own host
        # (qyapi.weixin.qq.com, oapi.dingtalk.com); these further hosts (spaces or commas; a private
        # deployment's gateway, the tests' stand-in) are allowed too, over http or https.
        "ROBOT_WEBHOOK_HOSTS": env.get("ROBOT_WEBHOOK_HOSTS", ""),
        # /metrics (Prometheus): with a token, only `Authorization: Bearer <token>`; without one,
        # loopback only in development and off (404) in production (supervise/api/ops.py).
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        # Logs (supervise/logs.py): json (one object a line) by default in production, text otherwise.
        "LOG_FORMAT": env.get("LOG_FORMAT") or ("json" if production else "text"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
    }
    if overrides:
        config.update(overrides)
    validate_config(config)
    return config


class ConfigError(click.ClickException, RuntimeError):
    """Settings that must not start: one line per problem. A `supervise` command prints the lines
    (no traceback) and exits 1; `problems` holds them for a server's own start-up code."""

    exit_code = 1

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def show(self, file: Any = None) -> None:
        lines = ["supervise cannot start with these settings:", *(f"  - {p}" for p in self.problems)]
        click.echo("\n".join(lines), file=file, err=file is None)


def validate_config(config: dict[str, Any]) -> None:
    """Refuse to start production with a missing secret: one clear line per missing item."""
    missing = []
    storage = config.get("UPLOAD_STORAGE", "fs")
    if storage not in ("fs", "s3"):
        missing.append(f"UPLOAD_STORAGE must be fs or s3, not {storage!r}")
    if storage == "s3" and not config.get("S3_BUCKET"):
        missing.append("S3_BUCKET is required when UPLOAD_STORAGE=s3")
    from supervise.notify.sms import config_problems  # gateway, keys, sign, templates, caps

    missing.extend(config_problems(config))
    from supervise.robots.services import parse_hosts

    try:
        parse_hosts(config.get("ROBOT_WEBHOOK_HOSTS") or "")
    except ValueError as exc:
        missing.append(f"ROBOT_WEBHOOK_HOSTS must list host names separated by spaces or commas: {exc}")
    two_factor_roles = {r.strip() for r in str(config.get("TWO_FACTOR_REQUIRED_ROLES") or "").split(",")}
    unknown_roles = sorted(two_factor_roles - {"", "intake", "handler", "supervisor", "leader", "admin"})
    if unknown_roles:  # two-factor sign-in (issue 18): a typo must not quietly require nobody
        missing.append(
            "TWO_FACTOR_REQUIRED_ROLES must list roles (intake, handler, supervisor, leader, admin) "
            f"separated by commas, not {', '.join(unknown_roles)!r}"
        )
    if config.get("LOG_FORMAT") not in (None, "", "json", "text"):
        missing.append(f"LOG_FORMAT must be json or text, not {config['LOG_FORMAT']!r}")
    if not isinstance(logging.getLevelName(str(config.get("LOG_LEVEL") or "INFO").upper()), int):
        missing.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {config['LOG_LEVEL']!r}")
    from supervise.intake.limits import parse_allowlist, parse_limit

    for key, parser in (
        ("SUBMIT_RATE_LIMIT", parse_limit),
        ("FORM_SUBMIT_RATE_LIMIT", parse_limit),
        ("FORM_SUBMIT_CEILING", parse_limit),
        ("SUBMIT_ALLOWLIST", parse_allowlist),
        ("OPEN311_RATE_LIMIT", parse_limit),  # Open311 (issue 18)
        ("PHONE_CODE_LIMIT", parse_limit),  # verified phones (issue 18)
        ("PHONE_CODE_IP_LIMIT", parse_limit),
    ):
        try:
            parser(str(config.get(key) or ""))
        except ValueError as exc:
            missing.append(f"{key} is not a limit like 20/hour;60/day (or CIDR=limit entries): {exc}")
    production = config["SUPERVISE_ENV"] == "production"
    if config["SUPERVISE_ENV"] not in ("development", "production"):
        # A typo ("prod") must not quietly run a server on generated development secrets.
        missing.append(f"SUPERVISE_ENV must be development or production, not {config['SUPERVISE_ENV']!r}")
    if production and not config.get("SECRET_KEY"):
        missing.append("SECRET_KEY is not set: required in production (a long random string)")
    if production and not config.get("ENCRYPTION_KEY"):
        missing.append(
            "SUPERVISE_ENCRYPTION_KEY is not set: required in production (a Fernet key, made by "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
        )
    elif config.get("ENCRYPTION_KEY"):
        try:
            Fernet(config["ENCRYPTION_KEY"])
        except (ValueError, TypeError):
            missing.append("SUPERVISE_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes)")
    missing.extend(_upload_limit_problems(config))
    if production:
        missing.extend(_weak_secret_problems(config))
    if production and config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        missing.append("DATABASE_URL is not set to PostgreSQL: SQLite is for development only")
    if production and config.get("REDIS_EMBEDDED"):
        missing.append("REDIS_URL is not set: required in production (the embedded Redis is for development)")
    if missing:
        raise ConfigError(missing)


# -- secrets that must not start production -------------------------------------------------------
#
# A placeholder (CHANGE-ME…, changeme, …example…, as in .env.example) is refused wherever a secret
# is set. The secrets this deployment makes itself (SECRET_KEY signs sessions, photo links and the
# access-code HMAC; METRICS_TOKEN) must also hold ≥ 256 bits (32 bytes) of entropy, estimated as
# length × log2(alphabet): `openssl rand -hex 32` (64 hex digits) gives exactly 256. Secrets issued
# by someone else (SMTP and S3 passwords, the database password) are only checked for placeholders:
# their length is not ours to choose (an Aliyun AccessKey secret has 30 characters).
PLACEHOLDER_WORDS = ("changeme", "example", "placeholder")
SECRET_MIN_BITS = 256
SECRET_MIN_DISTINCT = 10  # "aaaa…" or "abab…" is long but not random
_ALPHABETS = (
    (frozenset("0123456789abcdef"), 16),
    (frozenset("0123456789ABCDEF"), 16),
)
_HOW_TO_MAKE = "generate one with `openssl rand -hex 32`"


def is_placeholder(value: str) -> bool:
    folded = "".join(c for c in value.lower() if c.isalpha())
    return any(word in folded for word in PLACEHOLDER_WORDS)


def entropy_bits(value: str) -> float:
    """An upper estimate of a string's entropy: its length × log2 of the alphabet its characters
    come from (hex 16; else lower 26 + upper 26 + digits 10 + other 33, as present)."""
    chars = set(value)
    if not chars:
        return 0.0
    alphabet = next((size for charset, size in _ALPHABETS if chars <= charset), 0)
    if not alphabet:
        alphabet = (
            26 * any(c.islower() for c in chars)
            + 26 * any(c.isupper() for c in chars)
            + 10 * any(c.isdigit() for c in chars)
            + 33 * any(not c.isalnum() for c in chars)
        )
    return len(value) * math.log2(max(alphabet, 2))


def _weak_secret_problems(config: dict[str, Any]) -> list[str]:
    """One line per placeholder or weak secret; the secret itself is never printed."""
    problems = []
    for name, key in (("SECRET_KEY", "SECRET_KEY"), ("METRICS_TOKEN", "METRICS_TOKEN")):
        value = str(config.get(key) or "")
        if not value:
            continue  # SECRET_KEY missing is its own line; METRICS_TOKEN is optional
        if is_placeholder(value):
            problems.append(f"{name} is a placeholder (like .env.example's CHANGE-ME): {_HOW_TO_MAKE}")
        elif len(set(value)) < SECRET_MIN_DISTINCT:
            problems.append(
                f"{name} is too weak: {len(value)} characters but only {len(set(value))} different ones; "
                f"{SECRET_MIN_BITS} bits (32 random bytes) needed: {_HOW_TO_MAKE}"
            )
        elif entropy_bits(value) < SECRET_MIN_BITS:
            problems.append(
                f"{name} is too weak: {len(value)} characters, at most {int(entropy_bits(value))} bits of "
                f"entropy; {SECRET_MIN_BITS} bits (32 random bytes) needed: {_HOW_TO_MAKE}"
            )
    key = str(config.get("ENCRYPTION_KEY") or "")
    if key and is_placeholder(key):
        problems.append("SUPERVISE_ENCRYPTION_KEY is a placeholder (like .env.example's CHANGE-ME)")
    elif key:
        try:
            raw = base64.urlsafe_b64decode(key)
        except (ValueError, binascii.Error):
            raw = b""  # not a Fernet key at all: validate_config says so
        if len(raw) == 32 and len(set(raw)) < 16:  # 32 random bytes have ~30 distinct values
            problems.append(
                "SUPERVISE_ENCRYPTION_KEY is not random (too few distinct bytes): generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
    for name, key in (("SMTP_PASSWORD", "SMTP_PASSWORD"), ("S3_SECRET_ACCESS_KEY", "S3_SECRET_ACCESS_KEY")):
        if is_placeholder(str(config.get(key) or "")):
            problems.append(f"{name} is a placeholder (like .env.example's CHANGE-ME)")
    for name, key in (
        ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
        ("DATABASE_READ_URL", "DATABASE_READ_URL"),
        ("REDIS_URL", "REDIS_URL"),
    ):
        password = _url_password(str(config.get(key) or ""))
        if password and is_placeholder(password):
            problems.append(f"{name} has a placeholder password (like .env.example's CHANGE-ME)")
    return problems


def _url_password(url: str) -> str:
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def _upload_limit_problems(config: dict[str, Any]) -> list[str]:
    """UPLOAD_DECODE_CONCURRENCY (≥ 1) and UPLOAD_DECODE_WAIT_SECONDS (≥ 0) as numbers, in place."""
    problems = []
    for name, kind, low in (("UPLOAD_DECODE_CONCURRENCY", int, 1), ("UPLOAD_DECODE_WAIT_SECONDS", float, 0)):
        try:
            value = kind(config.get(name, 2 if kind is int else 5))
            if value < low:
                raise ValueError
            config[name] = value
        except (TypeError, ValueError):
            problems.append(f"{name} must be a number ≥ {low}, not {config.get(name)!r}")
    return problems
