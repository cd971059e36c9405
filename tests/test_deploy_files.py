"""The deployment files: docker-compose.yml through a real Compose parser, .env.example, the
Dockerfile, and gunicorn's configuration on a real gunicorn.

The compose checks need Debian's `docker-compose` (1.29: `docker-compose config` parses, validates
and interpolates without a Docker engine). Without it they are skipped locally and fail in CI, which
installs it (.ci/run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "cron"}
APP_SERVICES = ("migrate", "web", "worker", "cron")


def compose(*args: str, env_file: str = ".env.example") -> subprocess.CompletedProcess:
    if COMPOSE is None:
        if os.environ.get("CI"):
            pytest.fail("CI must validate docker-compose.yml: .ci/run installs Debian's docker-compose")
        pytest.skip("no docker-compose on this machine (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SUPERVISE_", "COMPOSE_"))}
    return subprocess.run(
        [COMPOSE, "-f", "docker-compose.yml", "--env-file", env_file, "config", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose()
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_with_the_example_env():
    result = compose("-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("-q", env_file=str(empty))
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr or "set SECRET_KEY in .env" in result.stderr


def test_services_and_their_commands(config):
    services = config["services"]
    assert set(services) == SERVICES
    assert services["migrate"]["command"] == ["supervise", "init"]
    assert services["web"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "supervise.wsgi:app"]
    assert services["worker"]["command"] == ["supervise", "worker"]
    assert services["cron"]["command"] == ["supervise", "cron"]
    assert services["migrate"]["restart"] == "no"  # one-shot


def test_redis_persists_with_aof(config):
    command = config["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_app_waits_for_migrate(config):
    services = config["services"]
    for name in ("web", "worker", "cron"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_has_a_health_check(config):
    for name, service in config["services"].items():
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name
    services = config["services"]
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "Worker.all" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "CronScheduler.all" in " ".join(services["cron"]["healthcheck"]["test"])


def test_worker_scales_and_cron_does_not(config):
    worker = config["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    # A fixed name makes `--scale cron=2` an error: exactly one cron (RQ's cron has no leader lock).
    assert config["services"]["cron"]["container_name"]
    published = [name for name, service in config["services"].items() if service.get("ports")]
    assert published == ["web"]


def test_volumes_for_the_database_redis_and_uploads(config):
    assert {"db", "redis", "uploads"} <= set(config["volumes"])

    def mounts(name: str) -> dict[str, str]:
        found = {}
        for volume in config["services"][name].get("volumes", []):
            if isinstance(volume, str):
                source, target = volume.split(":")[:2]
            else:
                source, target = volume["source"], volume["target"]
            found[source] = target
        return found

    assert mounts("postgres")["db"] == "/var/lib/postgresql/data"
    assert mounts("redis")["redis"] == "/data"
    assert mounts("web")["uploads"] == "/data/uploads"
    assert mounts("worker")["uploads"] == "/data/uploads"  # thumbnails are made by a job


def test_the_app_runs_in_production_against_the_stack(config):
    for name in APP_SERVICES:
        env = config["services"][name]["environment"]
        assert env["SUPERVISE_ENV"] == "production", name
        assert env["SUPERVISE_DATA_DIR"] == "/data", name
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["DATABASE_URL"], name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        for secret in ("SECRET_KEY", "SUPERVISE_ENCRYPTION_KEY", "SUPERVISE_BASE_URL", "METRICS_TOKEN"):
            assert env[secret], (name, secret)


def test_env_example_documents_every_variable_the_compose_file_reads():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = (ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    assert used - defined == set()
    assert defined - used == set()
    for name in (
        "SECRET_KEY",
        "SUPERVISE_ENCRYPTION_KEY",
        "SUPERVISE_BASE_URL",
        "SMTP_HOST",
        "MAIL_FROM",
        "SMS_GATEWAY",
        "UPLOAD_STORAGE",
        "S3_BUCKET",
    ):
        assert name in defined
    assert "METRICS_TOKEN — bearer token required for /metrics in production" in example
    assert "LOG_FORMAT — json|text, default json in production" in example


def test_dockerfile_is_slim_non_root_and_caches_dependencies():
    lines = [
        line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.startswith("#")
    ]
    assert re.fullmatch(r"FROM python:3\.\d+-slim(-\w+)?", next(ln for ln in lines if ln.startswith("FROM")))
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    copy_deps = lines.index("COPY pyproject.toml ./")
    copy_all = lines.index("COPY . .")
    install = next(i for i, ln in enumerate(lines) if "pip install -r" in ln)
    assert copy_deps < install < copy_all
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "instance", "bench", ".env", ".git"):
        assert entry in ignored


# -- gunicorn.conf.py / supervise/gunicorn_conf.py / ProxyFix in supervise/wsgi.py -------------------


def gunicorn_settings(**env: str) -> dict:
    """The settings the config module computes under `env`, read in a fresh interpreter."""
    code = (
        "import json, gunicorn.config as g, supervise.gunicorn_conf as c; "
        "s = {k: getattr(c, k) for k in dir(c) if k in g.Config().settings}; "
        "s['logger_class'] = getattr(s.get('logger_class'), '__name__', None); "
        "print(json.dumps(s, default=repr))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "WEB_", "LOG_"))}
    clean.pop("SUPERVISE_ENV", None)
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gunicorn_settings_from_the_environment():
    from supervise.gunicorn_conf import cpu_count

    defaults = gunicorn_settings()
    assert defaults["bind"] == ["0.0.0.0:8000"]
    assert defaults["workers"] == min(2 * cpu_count() + 1, 8)
    assert defaults["threads"] == 4 and defaults["timeout"] == 60 and defaults["keepalive"] == 5
    assert defaults["accesslog"] == "-" and "%({x-request-id}o)s" in defaults["access_log_format"]
    assert defaults["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert defaults["logger_class"] is None  # text in development

    custom = gunicorn_settings(
        GUNICORN_BIND="127.0.0.1:9000,unix:/tmp/s.sock",
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="1",
        GUNICORN_TIMEOUT="120",
        FORWARDED_ALLOW_IPS="10.0.0.0/8",
        SUPERVISE_ENV="production",
    )
    assert custom["bind"] == ["127.0.0.1:9000", "unix:/tmp/s.sock"]
    assert (custom["workers"], custom["threads"], custom["timeout"]) == (3, 1, 120)
    assert custom["forwarded_allow_ips"] == "10.0.0.0/8"
    assert custom["logger_class"] == "JsonLogger"  # json by default in production
    assert gunicorn_settings(WEB_CONCURRENCY="0")["workers"] == defaults["workers"]
    assert gunicorn_settings(SUPERVISE_ENV="production", LOG_FORMAT="text")["logger_class"] is None
    assert gunicorn_settings(GUNICORN_ACCESSLOG="off")["accesslog"] is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_gunicorn(tmp_path: Path, **env: str):
    port = free_port()
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUNICORN_", "WEB_", "LOG_", "PROXY_FIX_", "DATABASE_URL", "REDIS_URL"))
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "supervise.wsgi:app"],
        cwd=ROOT,
        env={
            **clean,
            "SUPERVISE_DATA_DIR": str(tmp_path),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "1",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def get(url: str, headers: dict[str, str], seconds: float = 30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
                return response.status, dict(response.headers)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_gunicorn_json_access_log_with_the_client_address_behind_a_proxy(tmp_path):
    """The container's command on a real gunicorn: JSON access lines carrying the request id, and
    the citizen's address taken from X-Forwarded-For because PROXY_FIX_X_FOR=1."""
    proc, base = run_gunicorn(tmp_path, LOG_FORMAT="json", PROXY_FIX_X_FOR="1", PROXY_FIX_X_PROTO="1")
    try:
        status, _ = get(
            f"{base}/healthz",
            {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Request-ID": "rid-42"},
        )
        assert status == 200
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    access = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    line = next(entry for entry in access if entry.get("http", {}).get("path") == "/healthz")
    assert line["http"]["remote_addr"] == "203.0.113.7"
    assert line["http"]["status"] == 200 and line["http"]["method"] == "GET"
    assert line["request_id"] == "rid-42"
    assert line["logger"] == "gunicorn.access" and line["ts"].endswith("+00:00")
    assert "Booting worker" in stderr


@pytest.mark.slow
def test_without_proxy_fix_forwarded_headers_are_ignored(tmp_path):
    proc, base = run_gunicorn(tmp_path, LOG_FORMAT="text")
    try:
        get(f"{base}/healthz", {"X-Forwarded-For": "203.0.113.7"})
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=30)
    line = next(ln for ln in stdout.splitlines() if "GET /healthz" in ln)
    # `<ISO time> INFO gunicorn.access [<request id>]: <client> "GET …"`: the id is the one the app
    # made (echoed in its response), the client the socket's peer, not the forged header.
    head, _, rest = line.partition("]: ")
    assert re.search(r"\+00:00 INFO gunicorn\.access \[[0-9a-f]{32}$", head), line
    assert rest.startswith("127.0.0.1 ") and "203.0.113.7" not in line, line


def test_proxy_fix_settings(tmp_path):
    # Imported in a subprocess: importing supervise.wsgi builds the app.
    code = (
        "from supervise.wsgi import proxy_fix_settings as s, wrap_proxy_fix as w; "
        "print(s({}), s({'PROXY_FIX_X_FOR': '1', 'PROXY_FIX_X_PROTO': ' 2 '}), "
        "type(w(None, {})).__name__, type(w(None, {'PROXY_FIX_X_FOR': '1'})).__name__)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "SUPERVISE_DATA_DIR": str(tmp_path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == (
        "{'x_for': 0, 'x_proto': 0, 'x_host': 0, 'x_port': 0, 'x_prefix': 0} "
        "{'x_for': 1, 'x_proto': 2, 'x_host': 0, 'x_port': 0, 'x_prefix': 0} NoneType ProxyFix"
    )
