"""From "Share" in the wizard to the QR code painted. Prints figures against the target; it asserts nothing.

    .venv/bin/python bench/bench_share_gui.py [--runs 7] [--keep DIR]

The largest Synthea patient (Fletcher Hyatt, 1,111 resources, with the hospital and practitioner files it refers
to) is imported into a new vault; its embedded gateway serves on a free loopback port as the app does. For each
run a new wizard is opened on the real task runner, the health summary (IPS) chosen, the check step and the
who-and-where step reached; then the clock starts when the Share button is clicked and stops at the first paint
of the QR view holding the code. What that covers: the share built from the previewed bundle, encrypted, its
content address computed, stored in the vault with its consent record and audit entry, the QR drawn on a worker,
handed to the GUI thread and painted. The first run is reported apart (a cold process pays its imports).
Target: <= 1 s on the embedded gateway. The code painted is read back with zxing-cpp as a sanity check.
Qt runs offscreen unless a display is set; everything lives in a private temporary folder deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import FIXTURES as SHARED_FIXTURES  # noqa: E402  (third-party data, kept outside)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QObject  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

FIXTURES = SHARED_FIXTURES / "synthea"
PATIENT = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"
PASSPHRASE = "benchmark passphrase only"
TARGET_S = 1.0


class FirstPaint(QObject):
    """Notes when the QR view is first painted with a code on it."""

    def __init__(self, view) -> None:
        super().__init__()
        self.view = view
        self.at: float | None = None
        view.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and self.at is None and self.view.has_code():
            self.at = time.perf_counter()
        return False


def wait_for(app: QApplication, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the wizard")
        app.processEvents()
        time.sleep(0.001)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_vault(folder: Path):
    from app.services import Session
    from vault.store import Vault
    vault, _key = Vault.create(folder, PASSPHRASE)
    files = [*sorted(FIXTURES.glob("*Information*.json")), FIXTURES / PATIENT]
    outcomes = Session(vault).import_sources(files)
    if not all(o.ok for o in outcomes):
        raise SystemExit("; ".join(o.sentence for o in outcomes if not o.ok))
    return vault


def one_run(app: QApplication, session, runner) -> tuple[float, float, int, str]:
    """(seconds from Share to the QR painted, seconds the share took on the worker, records, decoded link)."""
    from app.screens import vault_context
    from app.screens.share_wizard import ShareWizard
    ctx = vault_context(session.vault, runner, extras={"session": session})
    wizard = ShareWizard(ctx)
    wizard.show()
    wait_for(app, lambda: wizard.what_page.kinds.count() > 0 and bool(wizard.who_page.places))
    wizard.forward()
    wait_for(app, lambda: wizard.step == 1 and not wizard.busy)
    wizard.forward()
    wait_for(app, lambda: wizard.step == 2 and not wizard.busy)
    painted = FirstPaint(wizard.qr_panel.view)
    original = session.create_share
    worker: list[float] = []

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            worker.append(time.perf_counter() - t)

    session.create_share = timed
    try:
        start = time.perf_counter()
        wizard.next_button.click()
        wait_for(app, lambda: painted.at is not None)
    finally:
        session.create_share = original
    elapsed = painted.at - start
    from tests.gui.share_support import drawn_link
    link = drawn_link(wizard.qr_panel.view)
    records = len(wizard.outcome.created.resource_ids)
    wizard.close()
    wizard.deleteLater()
    app.processEvents()
    return elapsed, worker[0], records, link == wizard.outcome.link


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", metavar="DIR", help="build the vault here and keep it")
    args = parser.parse_args()
    if not (FIXTURES / PATIENT).exists():
        raise SystemExit(f"the Synthea fixtures are missing: expected {FIXTURES / PATIENT}")
    app = QApplication.instance() or QApplication([])
    from app.services import Session
    from app.tasks import TaskRunner
    from sync.shares import set_gateway_setting
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-share-"))
    try:
        t = time.perf_counter()
        vault = build_vault(work / "vault")
        print(f"vault: {PATIENT.split('_')[0]} {PATIENT.split('_')[1]}, imported in {time.perf_counter() - t:.1f} s")
        session = Session(vault)
        port = free_port()
        set_gateway_setting(vault, f"http://127.0.0.1:{port}")
        served = session.serve(port=port)
        runner = TaskRunner()
        try:
            results = [one_run(app, session, runner) for _ in range(max(1, args.runs))]
        finally:
            runner.wait()
            served.stop()
            vault.close()
        first, rest = results[0], results[1:] or results[:1]
        totals = [r[0] for r in rest]
        workers = [r[1] for r in rest]
        print(f"share: health summary (IPS) of {first[2]} records, embedded gateway, {len(results)} runs")
        print(f"first run (cold process): {first[0] * 1000:.0f} ms from Share to the QR painted")
        print(f"then: median {statistics.median(totals) * 1000:.0f} ms, worst {max(totals) * 1000:.0f} ms "
              f"(the share itself on the worker: median {statistics.median(workers) * 1000:.0f} ms)")
        worst = max(r[0] for r in results)
        verdict = "within" if worst <= TARGET_S else "OVER"
        print(f"target <= {TARGET_S:.1f} s: {verdict} (worst of all runs {worst * 1000:.0f} ms); "
              f"QR read back as the link: {'yes' if all(r[3] for r in results) else 'NO'}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
