"""Run the ``kser`` command in a subprocess, exactly as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def kser_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kser_cli.main", *args]


def kser_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


# TensorFlow's, JAX's and CUDA's own lines, written to fd 2 by native code (issue 20).
NATIVE_LINE = re.compile(
    r"absl::InitializeLog|oneDNN|cudart_stub|cuInit|computation_placer|cpu_feature_guard|cuda_(dnn|blas|fft)|"
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d",
    re.MULTILINE,
)


def run_kser(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``kser ARGS`` as a user runs it from a fresh shell (no TF_CPP_MIN_LOG_LEVEL, which this test
    process may have set). Every run, whatever it tests, also proves that the command printed none of
    TensorFlow's or JAX's native start-up lines (issue 20)."""
    env = {key: value for key, value in (env or kser_env()).items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(kser_command(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if env.get("KSER_NATIVE_LOGS") != "1" and not any(arg.startswith("--verbosity") for arg in args):
        found = NATIVE_LINE.search(result.stderr)
        assert found is None, f"kser {' '.join(args[:1])} printed a native library line: {found.group(0)!r}\n{result.stderr[-3000:]}"
    return result


def start_kser(*args: str) -> subprocess.Popen:
    return subprocess.Popen(kser_command(*args), cwd=REPO, env=kser_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def demo_records(root: Path, demo_flags: tuple[str, ...], build_flags: tuple[str, ...]) -> Path:
    """``kser demo-data`` into root/audio, then ``kser build-records`` into root/records (returned)."""
    for command in (
        ("demo-data", f"--out={root / 'audio'}", *demo_flags),
        ("build-records", f"--data_dir={root / 'audio'}", f"--output_dir={root / 'records'}", *build_flags),
    ):
        result = run_kser(*command)
        assert result.returncode == 0, result.stderr
    return root / "records"


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failed command printed exactly one ``error:`` line naming ``fragments``, no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def run_under_jax(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python with ``KERAS_BACKEND=jax`` on the CPU; assert it succeeded."""
    env = {**kser_env(), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result
