"""Helpers for the packaging tests: programs run as a user would, from folders outside the checkout, with an
environment that carries nothing of the checkout's (no PYTHONPATH, no project virtual environment on PATH)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

GRAB = textwrap.dedent("""
    import sys
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication(sys.argv[:1])
    shot = app.primaryScreen().grabWindow(0)
    sys.exit(0 if shot.save(sys.argv[1], "PNG") else 1)
""")


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A plain user's environment: system PATH, a home of its own, none of the test run's variables."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def run_program(cmd: list, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def outside_checkout(path: Path) -> Path:
    path = path.resolve()
    assert ROOT not in path.parents and path != ROOT, f"{path} is inside the checkout"
    return path


def drawn_pixels(path: Path) -> int:
    from PIL import Image
    image = Image.open(path).convert("L")
    background = image.getpixel((0, 0))
    return sum(n for level, n in enumerate(image.histogram()) if abs(level - background) > 30)


def wait_for_window(display: str, proc: subprocess.Popen, shot: Path, timeout: float = 60) -> int:
    """How many pixels differ from the bare X screen once the program's window is drawn (0: it never was)."""
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    deadline = time.monotonic() + timeout
    drawn = 0
    while time.monotonic() < deadline and proc.poll() is None:
        subprocess.run([sys.executable, "-c", GRAB, str(shot)], cwd=ROOT, env=env, timeout=60, capture_output=True)
        drawn = drawn_pixels(shot) if shot.exists() else 0
        if drawn > 5000:
            break
        time.sleep(0.3)
    return drawn


def assert_window_appears(cmd: list, env: dict[str, str], cwd: Path, shot: Path) -> None:
    """Starts the program on the X server ``env["DISPLAY"]``, sees its window drawn, stops it: no traceback."""
    app = subprocess.Popen([str(c) for c in cmd], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        drawn = wait_for_window(env["DISPLAY"], app, shot)
        assert app.poll() is None, app.stderr.read().decode()
        assert drawn > 5000
    finally:
        app.terminate()
        _out, err = app.communicate(timeout=30)
    assert b"Traceback" not in err


@pytest.fixture
def runtime_dir(tmp_path, monkeypatch) -> Path:
    """A private XDG_RUNTIME_DIR, where the app's single-instance socket lives."""
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    return path
