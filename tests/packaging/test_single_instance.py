"""One app per vault: a later launch hands its link to the running one over an owner-only local socket, a socket
left by a crashed app is replaced, a live app that does not answer is never replaced, and junk on the socket is
dropped. Later launches are real separate processes, as when the desktop starts medvault again."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from app.single_instance import AlreadyRunningNotAnswering, SingleInstance, socket_path
from tests.conftest import ROOT

LATER_LAUNCH = textwrap.dedent("""
    import sys
    from pathlib import Path
    from PySide6.QtCore import QCoreApplication
    from app.single_instance import AlreadyRunningNotAnswering, SingleInstance
    app = QCoreApplication(sys.argv[:1])
    try:
        first = SingleInstance(Path(sys.argv[1])).claim(sys.argv[2] or None, timeout_ms=int(sys.argv[3]))
    except AlreadyRunningNotAnswering:
        print("not answering")
        sys.exit(3)
    print("first" if first else "handed over")
""")
LINK = "shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnL20iLCJrZXkiOiJrLWstay1rIn0"


def later_launch(vault_dir, link: str = "", timeout_ms: int = 5000) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LATER_LAUNCH, str(vault_dir), link, str(timeout_ms)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(qtbot, proc: subprocess.Popen) -> str:
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30000)  # the first app's event loop keeps running
    out, err = proc.communicate()
    assert "Traceback" not in err, err
    return out.strip()


@pytest.fixture
def first(qtbot, tmp_path, runtime_dir):
    instance = SingleInstance(tmp_path / "vault")
    assert instance.claim(None) is True
    yield instance
    instance.close()


def test_a_later_launch_hands_its_link_to_the_first(qtbot, first, tmp_path):
    got = []
    first.link_received.connect(got.append)
    proc = later_launch(tmp_path / "vault", LINK)
    assert finish(qtbot, proc) == "handed over" and proc.returncode == 0
    qtbot.waitUntil(lambda: got == [LINK], timeout=5000)


def test_a_later_launch_without_a_link_brings_the_first_forward(qtbot, first, tmp_path):
    with qtbot.waitSignal(first.activated, timeout=30000):
        proc = later_launch(tmp_path / "vault")
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30000)
    assert proc.stdout.read().strip() == "handed over"


def test_the_socket_is_the_users_alone(first, runtime_dir):
    mode = os.stat(first.path).st_mode
    assert stat.S_ISSOCK(mode) and mode & 0o077 == 0
    assert os.path.dirname(first.path) == str(runtime_dir) and os.stat(runtime_dir).st_mode & 0o077 == 0


def test_each_vault_folder_has_its_own_app(qtbot, first, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert socket_path(tmp_path / "vault") == socket_path("vault") == first.path
    assert socket_path(tmp_path / "other") != first.path
    proc = later_launch(tmp_path / "other", LINK)
    assert finish(qtbot, proc) == "first"  # nothing listens for that vault (and the launch has ended)


def test_a_socket_left_by_a_crashed_app_is_replaced(qtbot, tmp_path, runtime_dir):
    path = socket_path(tmp_path / "vault")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a killed app leaves behind
    instance = SingleInstance(tmp_path / "vault")
    try:
        assert instance.claim(None) is True
        got = []
        instance.link_received.connect(got.append)
        assert finish(qtbot, later_launch(tmp_path / "vault", LINK)) == "handed over"
        qtbot.waitUntil(lambda: got == [LINK], timeout=5000)
    finally:
        instance.close()


def test_a_live_app_that_does_not_answer_is_reported_and_left_alone(qtbot, tmp_path, runtime_dir):
    path = socket_path(tmp_path / "vault")
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen(4)  # accepts connections (the kernel does) but never reads or answers
    try:
        proc = later_launch(tmp_path / "vault", LINK, timeout_ms=500)
        assert finish(qtbot, proc) == "not answering" and proc.returncode == 3
        with pytest.raises(AlreadyRunningNotAnswering) as caught:
            SingleInstance(tmp_path / "vault").claim(LINK, timeout_ms=300)
        assert "already open" in caught.value.user_message
        assert os.path.exists(path)  # not removed: that app may still be busy with the vault
    finally:
        mute.close()


def _raw_exchange(path: str, payload: bytes, answers: list) -> None:
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(path)
        try:
            raw.sendall(payload)
            answers.append(raw.recv(16))
        except (BrokenPipeError, ConnectionResetError):
            answers.append(b"")


@pytest.mark.parametrize("payload", [b"hello\n", b'{"v": 99, "link": "shlink:/x"}\n', b'{"v": 1, "link": 7}\n',
                                     b"\xff\xfe\n", b"x" * (70 * 1024)])
def test_junk_on_the_socket_is_dropped_and_the_app_keeps_listening(qtbot, first, tmp_path, payload):
    got = []
    first.link_received.connect(got.append)
    first.activated.connect(lambda: got.append("activated"))
    answers: list = []
    talker = threading.Thread(target=_raw_exchange, args=(first.path, payload, answers))
    talker.start()
    qtbot.waitUntil(lambda: not talker.is_alive(), timeout=15000)
    assert answers == [b""] and got == []  # closed without "ok", nothing emitted
    assert finish(qtbot, later_launch(tmp_path / "vault", LINK)) == "handed over"
    qtbot.waitUntil(lambda: got == [LINK], timeout=5000)
