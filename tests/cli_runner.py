"""Run the ``kser`` command in a subprocess, exactly as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def kser_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def kser_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def run_kser(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(kser_command(*args), cwd=REPO, env=kser_env(), capture_output=True, text=True, timeout=timeout)


def start_kser(*args: str) -> subprocess.Popen:
    return subprocess.Popen(kser_command(*args), cwd=REPO, env=kser_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
