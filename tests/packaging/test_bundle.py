"""The Linux desktop bundle as a user gets it: built by scripts/package, unpacked from its tarball into a folder
outside the checkout, run with a plain user's environment (no Python of ours on PATH). The command line works,
the window appears under a real X server, and with its desktop entry installed into a temporary XDG_DATA_HOME
``xdg-open shlink:/…`` starts the bundle with that link; a second xdg-open hands its link to the first."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from app.version import __version__
from tests.conftest import FIXTURES, PASSPHRASE, ROOT
from tests.packaging.conftest import (assert_window_appears, outside_checkout, run_program, user_env,
                                     wait_for_window)
from tests.peers.xvfb import running_xvfb

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1500)]
SYNTHEA = FIXTURES / "synthea" / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
APP_ID = "org.medvault.Medvault"
FIRST = "shlink:/eyJ1cmwiOiJodHRwczovL3NobC5leGFtcGxlLm9yZy9tYW5pZmVzdC8xIiwiZmxhZyI6IkwiLCJrZXkiOiJmaXJzdCJ9"
SECOND = "shlink:/eyJ1cmwiOiJodHRwczovL3NobC5leGFtcGxlLm9yZy9tYW5pZmVzdC8yIiwiZmxhZyI6IkwiLCJrZXkiOiJzZWNvbmQifQ"


def ref(link: str) -> str:
    return hashlib.sha256(link.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    base = outside_checkout(tmp_path_factory.mktemp("bundle"))
    started = time.monotonic()
    build = subprocess.run([ROOT / "scripts" / "package", "--out", base / "out", "--work", base / "work"],
                           env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                           timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"\nscripts/package took {time.monotonic() - started:.0f} s:")
    print("\n".join(line for line in build.stdout.splitlines() if line.startswith("package: ")))
    tarball = next((base / "out").glob("medvault-*-linux-*.tar.gz"))
    installed = base / "installed"
    with tarfile.open(tarball) as tar:
        tar.extractall(installed, filter="tar")
    folder = next(installed.iterdir())
    return folder


def test_the_bundle_holds_its_own_python_and_nothing_of_the_checkout(bundle):
    assert (bundle / "medvault").is_file() and os.access(bundle / "medvault", os.X_OK)
    assert list((bundle / "_internal").glob("libpython3*.so*"))
    texts = [p for p in (bundle / "share").rglob("*") if p.is_file() and p.suffix in (".desktop", ".xml")]
    assert texts and all(str(ROOT) not in p.read_text() for p in texts)
    qt = bundle / "_internal" / "PySide6"
    assert not list(qt.glob("QtWebEngine*")) and not list((qt / "Qt" / "lib").glob("libQt6WebEngine*"))
    for used in ("QtCharts", "QtPdf", "QtPdfWidgets", "QtPrintSupport", "QtMultimedia", "QtSvg", "QtNetwork", "QtDBus"):
        assert list(qt.glob(f"{used}.*.so")), used
    for size in (16, 32, 48, 128, 256):
        assert (bundle / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png").is_file()


def test_version_init_import_and_demo_from_the_unpacked_folder(bundle, tmp_path):
    env = user_env(tmp_path, MEDVAULT_PASSPHRASE=PASSPHRASE, MEDVAULT_VAULT=str(tmp_path / "vault"))
    program = bundle / "medvault"
    version = run_program([program, "--version"], env, tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"medvault {__version__}", version.stderr
    init = run_program([program, "init", "--kdf-profile", "test-insecure"], env, tmp_path)
    assert init.returncode == 0 and "did:key:" in init.stdout, init.stderr
    imported = run_program([program, "import", SYNTHEA], env, tmp_path)
    assert imported.returncode == 0 and "new record" in imported.stdout, imported.stderr
    listed = run_program([program, "list", "--json"], env, tmp_path)
    assert listed.returncode == 0 and '"Condition"' in listed.stdout
    demo = run_program([program, "demo", "--kdf-profile", "test-insecure"], env, tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "The patient has revoked this share" in demo.stdout and "Audit log intact" in demo.stdout
    bad = run_program([program, "gui", str(tmp_path / "Jane_Doe.json")], env, tmp_path)
    assert bad.returncode == 1 and "nothing was opened" in bad.stderr and "Jane_Doe" not in bad.stderr
    for result in (version, init, imported, demo, bad):
        assert "Traceback" not in result.stderr


def _desktop_env(tmp_path: Path, display: str) -> dict[str, str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    # no desktop session variables: xdg-open takes its generic path, reading only the XDG folders below
    return user_env(tmp_path, DISPLAY=display, XDG_DATA_HOME=str(tmp_path / "data"),
                    XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_RUNTIME_DIR=str(runtime),
                    MEDVAULT_VAULT=str(tmp_path / "vault"))


def test_the_window_appears_under_xvfb(bundle, tmp_path):
    with running_xvfb() as display:
        assert_window_appears([bundle / "medvault"], _desktop_env(tmp_path, display), tmp_path,
                              tmp_path / "screen.png")


def _bundle_processes(bundle: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "exe") == str(bundle / "medvault"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_xdg_open_of_a_link_starts_the_bundle_and_a_second_is_handed_over(bundle, tmp_path):
    with running_xvfb() as display:
        env = _desktop_env(tmp_path, display)
        install = run_program(["sh", bundle / "install-desktop.sh"], env, tmp_path)
        assert install.returncode == 0, install.stderr
        entry = tmp_path / "data" / "applications" / f"{APP_ID}.desktop"
        assert f"Exec={bundle / 'medvault'} gui %u" in entry.read_text()
        assert run_program(["desktop-file-validate", entry], env, tmp_path).returncode == 0
        for kind in ("x-scheme-handler/shlink", "x-scheme-handler/medvault", "application/smart-health-card"):
            query = run_program(["xdg-mime", "query", "default", kind], env, tmp_path)
            assert query.stdout.strip() == f"{APP_ID}.desktop", kind
        first_err = tmp_path / "first.err"
        with open(first_err, "wb") as err_file:
            first = subprocess.Popen(["xdg-open", FIRST], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                     stderr=err_file, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while f"(ref {ref(FIRST)}) came with the launch" not in first_err.read_text():
                assert first.poll() is None and time.monotonic() < deadline, first_err.read_text()
                time.sleep(0.2)
            assert wait_for_window(display, first, tmp_path / "screen.png") > 5000
            assert len(_bundle_processes(bundle)) == 1

            started = time.monotonic()
            second = run_program(["xdg-open", SECOND], env, tmp_path, timeout=60)
            assert second.returncode == 0, second.stderr
            assert time.monotonic() - started < 20  # it handed over and ended; no second window waits for a user
            deadline = time.monotonic() + 30
            while f"(ref {ref(SECOND)}) was handed over by another launch" not in first_err.read_text():
                assert time.monotonic() < deadline, first_err.read_text()
                time.sleep(0.2)
            assert len(_bundle_processes(bundle)) == 1 and first.poll() is None
        finally:
            os.killpg(first.pid, signal.SIGTERM)
            first.wait(timeout=30)
    log = first_err.read_text()
    assert "Traceback" not in log and "eyJ" not in log  # the links' contents never reach the log
