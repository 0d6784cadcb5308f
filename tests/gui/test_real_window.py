"""The desktop app as a user starts it: a real process, a real X server (Xvfb), a real window on screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

from PIL import Image

from tests.conftest import ROOT, medvault_process
from tests.gui.conftest import SCREENSHOTS
from tests.peers.xvfb import running_xvfb

GRAB = textwrap.dedent("""
    import sys
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication(sys.argv[:1])
    shot = app.primaryScreen().grabWindow(0)
    sys.exit(0 if shot.save(sys.argv[1], "PNG") else 1)
""")


def _non_background_pixels(path) -> int:
    image = Image.open(path).convert("L")
    background = image.getpixel((0, 0))
    return sum(n for level, n in enumerate(image.histogram()) if abs(level - background) > 30)


def test_app_opens_a_real_window_under_xvfb(tmp_path, vault_factory):
    vault_factory("v").close()
    with running_xvfb() as display:
        env = {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HOME": str(tmp_path)}
        empty = tmp_path / "empty.png"
        grabbed = subprocess.run([sys.executable, "-c", GRAB, str(empty)], cwd=ROOT, timeout=60,
                                 env={**os.environ, **env}, capture_output=True)
        assert grabbed.returncode == 0, grabbed.stderr
        app = medvault_process(["--vault", str(tmp_path / "v"), "gui"], env)
        try:
            shot = tmp_path / "screen.png"
            deadline = time.monotonic() + 60
            drawn = 0
            while time.monotonic() < deadline and app.poll() is None:
                subprocess.run([sys.executable, "-c", GRAB, str(shot)], cwd=ROOT, timeout=60,
                               env={**os.environ, **env}, capture_output=True)
                drawn = _non_background_pixels(shot)
                if drawn > 5000:
                    break
                time.sleep(0.5)
            assert app.poll() is None, app.stderr.read().decode()
            assert _non_background_pixels(empty) == 0  # the bare X screen is one colour
            assert drawn > 5000  # the app's window is on the real screen
            if os.environ.get("MEDVAULT_UPDATE_SCREENSHOTS") == "1":
                shutil.copy(shot, SCREENSHOTS / "00-real-window-xvfb.png")
        finally:
            app.terminate()
            out, err = app.communicate(timeout=30)
        assert b"Traceback" not in err
