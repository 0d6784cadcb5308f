from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshot(tmp_path):
    """Grabs a widget to PNG. With MEDVAULT_UPDATE_SCREENSHOTS=1 the user guide's pictures are replaced."""
    target = SCREENSHOTS if os.environ.get("MEDVAULT_UPDATE_SCREENSHOTS") == "1" else tmp_path

    def grab(widget, name: str) -> Path:
        path = target / f"{name}.png"
        widget.repaint()
        assert widget.grab().save(str(path), "PNG")
        assert path.stat().st_size > 2000  # a real picture, not an empty surface
        return path

    return grab


@pytest.fixture
def runner():
    """The real task runner, drained before the test's widgets go."""
    from app.tasks import TaskRunner
    run = TaskRunner()
    yield run
    run.wait()
