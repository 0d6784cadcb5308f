"""Unexpected errors: a report with the exception's type and its frames only (never the message, which is where
record content ends up), written owner-only in the user's state folder, and one plain sentence for the user,
from the GUI thread, a worker thread, or a whole process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading

import pytest
from PySide6.QtCore import QTimer

from app import crash
from app.errors import UNEXPECTED, ErrorPresenter
from tests.conftest import ROOT
from vault.errors import VaultLocked

SECRET = "Hypertension of Juliette Padberg"


def _fail_with_record_content() -> None:
    record = {"display": SECRET}
    raise KeyError(record["display"])


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_holds_types_and_frames_never_the_message(tmp_path):
    try:
        try:
            _fail_with_record_content()
        except KeyError as exc:
            raise ValueError(f"while reading {SECRET}") from exc
    except ValueError as exc:
        path = crash.write_report(type(exc), exc, exc.__traceback__, tmp_path / "crashes")
    text = path.read_text()
    assert SECRET not in text and "Juliette" not in text
    assert "exception: builtins.ValueError" in text and "exception: builtins.KeyError" in text
    assert "tests/gui/test_crash.py:" in text and "in _fail_with_record_content" in text
    assert str(tmp_path) not in text and os.path.expanduser("~") not in text   # no home path names the user
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700


def test_hook_reports_an_error_raised_in_a_qt_slot_and_tells_one_sentence(qtbot, tmp_path, capsys):
    told: list[str] = []
    hook = crash.CrashHook(told.append, tmp_path / "crashes").install()
    try:
        QTimer.singleShot(0, _fail_with_record_content)
        qtbot.waitUntil(lambda: bool(told), timeout=5000)
    finally:
        hook.uninstall()
    assert told == [crash.SENTENCE]
    report, = hook.reports
    assert "in _fail_with_record_content" in report.read_text() and SECRET not in report.read_text()
    err = capsys.readouterr().err
    assert SECRET not in err and "Traceback" not in err and "KeyError" in err


def test_hook_reports_an_error_on_a_worker_thread(tmp_path):
    told: list[str] = []
    hook = crash.CrashHook(told.append, tmp_path / "crashes").install()
    try:
        worker = threading.Thread(target=_fail_with_record_content)
        worker.start()
        worker.join()
    finally:
        hook.uninstall()
    assert told == [crash.SENTENCE] and len(hook.reports) == 1
    assert SECRET not in hook.reports[0].read_text()


def test_a_process_that_crashes_leaves_a_report_and_no_traceback(tmp_path):
    script = textwrap.dedent(f"""
        from app import crash
        crash.install()
        raise RuntimeError({SECRET!r})
    """)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert SECRET not in done.stderr and "Traceback" not in done.stderr
    reports = list((tmp_path / "state" / "medvault" / "crashes").glob("crash-*.txt"))
    assert len(reports) == 1 and _mode(reports[0]) == 0o600
    assert "builtins.RuntimeError" in reports[0].read_text() and SECRET not in reports[0].read_text()


def test_old_reports_are_pruned(tmp_path):
    folder = tmp_path / "crashes"
    for _ in range(crash._KEEP + 5):
        try:
            _fail_with_record_content()
        except KeyError as exc:
            crash.write_report(KeyError, exc, exc.__traceback__, folder)
    assert len(list(folder.glob("crash-*.txt"))) == crash._KEEP


@pytest.mark.parametrize("error,sentence,reported", [
    (VaultLocked(), VaultLocked().user_message, False),
    (KeyError(SECRET), UNEXPECTED, True),
])
def test_the_presenter_says_one_sentence_and_reports_only_bugs(qtbot, tmp_path, monkeypatch, error, sentence,
                                                                reported):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    told: list[str] = []
    presenter = ErrorPresenter(None, told.append)
    presenter(error)
    assert told == [sentence] and SECRET not in told[0]
    reports = list((tmp_path / "medvault" / "crashes").glob("*.txt"))
    assert len(reports) == (1 if reported else 0)
