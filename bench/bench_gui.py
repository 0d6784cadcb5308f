"""GUI responsiveness benchmarks. Prints figures against the targets; it asserts nothing.

    .venv/bin/python bench/bench_gui.py [--only import,timeline,unlock] [--import-size 10000]
                                        [--vault-size 100000] [--keep DIR]

The event loop's health is measured the way a user feels it: a 5 ms timer on the GUI thread notes when it really
fires; the longest gap between two ticks is the longest the window was frozen. Two floors come first: the idle
loop, and the loop beside a thread that only computes in Python. On a busy machine the second is far above the
first: a worker thread descheduled while it holds the GIL keeps the GUI thread waiting for it, whatever the work.
The longest gap of a run grows with its length and the machine's load, so each figure also gives the gaps over the
target per minute (compare with the floors' rate), how much of the longest gap the GUI thread spent computing
rather than waiting, and the cyclic collector's pauses. The interpreter is set up as the apps set it up
(``app.responsiveness``: switch interval, collector).

1. import: 10,000 resources imported from the main window (``MainWindow.import_sources``: the session, full
   validation, on the task runner, with its progress bar and the refresh that follows). Target: gap <= 50 ms.
2. timeline: the Timeline screen of the main window on a 100,000-resource vault, scrolled from the newest record
   to the oldest, as fast as its pages arrive. Target: gap <= 50 ms.
3. unlock: from pressing Unlock to the first paint of the Summary with its data, on the 100,000-resource vault,
   less the key derivation measured alone at the vault's parameters. Target: <= 1 s.

The vaults are one person's: a Synthea patient (with the hospital and practitioner files it refers to) imported,
exported as NDJSON, and cloned with new ids until the size is reached. Everything is built in a private temporary
folder deleted afterwards (``--keep DIR`` keeps and reuses the big vault). Qt runs offscreen unless a display is
set.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import FIXTURES  # noqa: E402  (third-party data, kept outside the repository)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import (QElapsedTimer, QEvent, QEventLoop, QObject, QSettings, Qt, QThreadPool,  # noqa: E402
                            QTimer)
from PySide6.QtWidgets import QAbstractItemView, QApplication, QWidget  # noqa: E402

PASSPHRASE = "benchmark passphrase only"
PATIENT = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"
GAP_TARGET_MS = 50.0
UNLOCK_TARGET_S = 1.0


class GapMonitor(QObject):
    """A 5 ms precise timer on the GUI thread; the gaps between its ticks are how long the loop was busy.

    Each tick also notes the GUI thread's own CPU time, so a long gap says whether the thread was working (its own
    code, Qt's) or waiting (for the interpreter lock held by a worker, or for a core), and the cyclic collector's
    pauses are noted with the thread they ran on."""

    def __init__(self, interval_ms: int = 5) -> None:
        super().__init__()
        self.interval = interval_ms
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []
        self.busy: list[float] = []             # the GUI thread's CPU time within each gap (ms)
        self.collections: list[tuple[float, float, str]] = []  # (s after start, ms, thread) of pauses >= 10 ms
        self._last = 0.0
        self._cpu = 0.0
        self._gc_start = 0.0

    def start(self) -> None:
        self.gaps, self.busy, self.collections = [], [], []
        self.clock.start()
        self._last = 0.0
        self._cpu = time.thread_time()
        gc.callbacks.append(self._collector)
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        cpu = time.thread_time()
        self.gaps.append(now - self._last)
        self.busy.append((cpu - self._cpu) * 1000)
        self._last, self._cpu = now, cpu

    def _collector(self, phase: str, _info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
        elif (now - self._gc_start) * 1000 >= 10:
            self.collections.append((self.clock.elapsed() / 1000, (now - self._gc_start) * 1000,
                                     threading.current_thread().name))

    def late(self, threshold_ms: float) -> list[tuple[float, float]]:
        """(seconds after start, gap) of every gap longer than ``threshold_ms``: where to look."""
        out, at = [], 0.0
        for gap in self.gaps:
            at += gap
            if gap > threshold_ms:
                out.append((at / 1000, gap))
        return out

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        if self._collector in gc.callbacks:
            gc.callbacks.remove(self._collector)
        gaps = sorted(self.gaps) or [0.0]
        worst = max(range(len(self.gaps)), key=self.gaps.__getitem__) if self.gaps else None
        return {"ticks": len(self.gaps), "max": gaps[-1], "p99": gaps[int(0.99 * (len(gaps) - 1))],
                "median": statistics.median(gaps), "seconds": self.clock.elapsed() / 1000,
                "over": sum(1 for g in self.gaps if g > GAP_TARGET_MS),
                "worst_busy": self.busy[worst] if worst is not None else 0.0}


def wait_until(predicate, timeout_s: float, step_ms: int = 20) -> bool:
    """Run the event loop until ``predicate()`` holds (the GUI keeps working meanwhile)."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        QTimer.singleShot(step_ms, loop.quit)
        loop.exec()
    return True


def report_gaps(label: str, stats: dict[str, float], extra: str = "", monitor: GapMonitor | None = None) -> None:
    verdict = "OK" if stats["max"] <= GAP_TARGET_MS else "OVER"
    print(f"  {label}: longest gap {stats['max']:6.1f} ms (p99 {stats['p99']:.1f} ms, median {stats['median']:.1f} ms,"
          f" {stats['ticks']} ticks in {stats['seconds']:.1f} s){extra}   target <= {GAP_TARGET_MS:.0f} ms {verdict}")
    print(f"  {stats['over']} gaps over {GAP_TARGET_MS:.0f} ms ({_rate(stats)}); in the longest the GUI thread itself computed "
          f"{stats['worst_busy']:.1f} ms (the rest it waited: for the interpreter lock or for a core)")
    if monitor is not None:
        pauses = monitor.collections
        print(f"  cyclic collector: {len(pauses)} pauses of 10 ms or more"
              + (f", longest {max(p[1] for p in pauses):.0f} ms (on "
                 f"{', '.join(sorted({p[2] for p in pauses}))})" if pauses else ""))
        late = sorted(monitor.late(GAP_TARGET_MS), key=lambda x: -x[1])
        if late:
            print("  longest gaps over the target at (s after the start): "
                  + ", ".join(f"{at:.2f} ({gap:.0f} ms)" for at, gap in late[:8]))


def bench_floor(seconds: float = 10.0) -> None:
    """The floors: the same timer on an idle loop (gaps from the machine: other processes on the cores), and
    beside a thread that only computes in Python (gaps from sharing the GIL with any worker thread, which grow
    when the machine is busy and the worker waits for a core while holding it). Part of every figure below."""
    def idle_gaps() -> dict[str, float]:
        monitor = GapMonitor()
        monitor.start()
        wait_until(lambda: False, seconds)
        return monitor.stop()

    quiet = idle_gaps()
    stop = threading.Event()

    def compute() -> None:
        n = 0
        while not stop.is_set():
            for i in range(1000):
                n += i * i

    worker = threading.Thread(target=compute, daemon=True)
    worker.start()
    beside = idle_gaps()
    stop.set()
    worker.join()
    print(f"[floor] the event loop doing nothing for {seconds:.0f} s: longest gap {quiet['max']:.1f} ms "
          f"(p99 {quiet['p99']:.1f} ms, {_rate(quiet)}); beside a thread computing in Python: {beside['max']:.1f} ms "
          f"(p99 {beside['p99']:.1f} ms, {_rate(beside)})")


def _rate(stats: dict[str, float]) -> str:
    """Gaps over the target per minute: comparable between runs of different lengths, where the longest is not."""
    return f"{60 * stats['over'] / max(stats['seconds'], 1e-3):.0f} over {GAP_TARGET_MS:.0f} ms a minute"


# --- vaults -------------------------------------------------------------------------------------------------------

def _seed_files() -> list[Path]:
    synthea = FIXTURES / "synthea"
    files = sorted(synthea.glob("*Information*.json")) + [synthea / PATIENT]
    if not all(f.exists() for f in files):
        sys.exit(f"fixtures missing under {synthea}")
    return files


def new_vault(folder: Path):
    """A vault holding the seed patient, imported as the app would (full validation)."""
    from vault.records.importer import ImportService
    from vault.store import Vault
    vault, _ = Vault.create(folder, PASSPHRASE, kdf_profile="test-insecure")
    vault.confirm_recovery_key()    # as the user does on the recovery page; else unlocking offers a new key
    for path, outcome in ImportService(vault).import_paths(_seed_files()):
        if not getattr(outcome, "added", 0):
            sys.exit(f"the seed file {path.name} did not import: {outcome}")
    return vault


def clone_ndjson(seed_vault, out: Path, count: int, work: Path) -> int:
    """``count`` resources of the seed person, as NDJSON: their export, cloned with new ids. References keep
    pointing at the seed's own records, which the target vault holds. The Patient is not cloned (one person), nor
    anything without a date to move (a clone identical but for its id is kept as an alias, not a record)."""
    from vault.records import export
    exported = work / "seed.ndjson"
    export.export(seed_vault, "ndjson", exported)
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines() if line.strip()]
    exported.unlink()
    lines = [r for r in lines if r.get("resourceType") != "Patient" and _shift_dates(r, 1) != r]
    written = 0
    with out.open("w", encoding="utf-8") as f:
        k = 0
        while written < count:
            for r in lines:
                if written >= count:
                    break
                clone = _shift_dates(dict(r, id=f"{r['id'][:48]}.c{k}"), 30 * (k + 1))
                f.write(json.dumps(clone, separators=(",", ":")) + "\n")
                written += 1
            k += 1
    return written


_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)?$")


def _shift_dates(value, days: int):
    """The same record ``days`` earlier: a clone whose content differs (the vault keeps an identical copy as an
    alias of the first, not as a new record) and that spreads over the timeline like a longer history."""
    if isinstance(value, dict):
        return {k: _shift_dates(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_dates(v, days) for v in value]
    if isinstance(value, str):
        m = _DATE.match(value)
        if m:
            try:
                day = date.fromisoformat(m.group(1)) - timedelta(days=days)
            except ValueError:
                return value
            return day.isoformat() + (m.group(2) or "")
    return value


def big_vault(folder: Path, size: int, work: Path):
    """The seed plus clones up to ``size`` resources, imported with structural checks (building, not measured)."""
    from vault.records.importer import ImportOptions, ImportService
    from vault.store import Vault
    if (folder / "vault.db").exists():
        vault = Vault.unlock(folder, PASSPHRASE)
        with vault.read() as conn:
            n = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
        print(f"[vault] reusing {folder} with {n} resources")
        return vault
    t = time.perf_counter()
    vault = new_vault(folder)
    with vault.read() as conn:
        seeded = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
    nd = work / "big.ndjson"
    clone_ndjson(vault, nd, size - seeded, work)
    report = ImportService(vault, ImportOptions(validation="structural")).import_file(nd)
    nd.unlink()
    print(f"[vault] {seeded + report.added} resources of one person built in {time.perf_counter() - t:.0f} s")
    return vault


def _settings(work: Path) -> QSettings:
    """Window settings in the benchmark's own folder, so the user's own are neither read nor written."""
    return QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)


# --- 1. import ----------------------------------------------------------------------------------------------------

def bench_import(work: Path, size: int) -> None:
    from app.main_window import MainWindow
    from app.tasks import TaskRunner
    vault = new_vault(work / "import-vault")
    nd = work / "import.ndjson"
    n = clone_ndjson(vault, nd, size, work)
    runner = TaskRunner()
    window = MainWindow(vault, runner, settings=_settings(work), ask_other_person=lambda *_a: False,
                        tell=lambda _s: None)
    window.show()
    summary = window.screens.get("summary")
    wait_until(lambda: summary is None or getattr(summary, "summary", None) is not None, 60)
    wait_until(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, 60)    # opening reads done
    print(f"[import] {n} resources (NDJSON, {nd.stat().st_size / 1e6:.1f} MB) from the main window, full "
          "validation, on the task runner")
    monitor = GapMonitor()
    monitor.start()
    t = time.perf_counter()
    window.import_sources([str(nd)])
    wait_until(lambda: not window.importing, 3600)
    elapsed = time.perf_counter() - t
    wait_until(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, 60)   # and the refresh after it
    stats = monitor.stop()
    with vault.read() as conn:
        stored = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
    report_gaps("while importing", stats, f"; import took {elapsed:.1f} s, vault now {stored} resources", monitor)
    window.vault = None
    window.close()
    runner.wait()
    vault.close()


# --- 2. timeline --------------------------------------------------------------------------------------------------

def bench_timeline(vault, work: Path) -> None:
    from app.main_window import MainWindow
    from app.tasks import TaskRunner
    runner = TaskRunner()
    # the Timeline as the patient reaches it: a screen of the main window, built when first shown
    window = MainWindow(vault, runner, settings=_settings(work), tell=lambda _s: None)
    window.resize(1100, 720)
    window.show()
    wait_until(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, 120)    # opening reads done
    window.show_screen("timeline")
    screen = window.screens["timeline"]
    model = getattr(screen, "model", None)
    if model is None:
        print("[timeline] the main window has no Timeline screen yet; skipped")
        window.vault = None
        window.close()
        runner.wait()
        return
    view = next(v for v in screen.findChildren(QAbstractItemView) if v.model() is model)
    bar = view.verticalScrollBar()
    wait_until(lambda: model.rowCount() > 0 and not model.loading, 60)
    wait_until(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, 60)    # its counts and bounds too
    drive = QTimer()
    drive.setInterval(16)       # a wheel or a dragged scroll bar moves about once a frame
    drive.timeout.connect(lambda: bar.setValue(bar.maximum()))
    monitor = GapMonitor()
    monitor.start()
    drive.start()
    done = wait_until(lambda: model.at_end and not model.loading and bar.value() == bar.maximum(), 3600)
    drive.stop()
    stats = monitor.stop()
    records = len(model.records())
    print(f"[timeline] a vault of {_count(vault)} resources scrolled from newest to oldest in the main window"
          + ("" if done else " (stopped after an hour, not at the end)"))
    report_gaps("while scrolling", stats, f"; {records} records in {model.rowCount()} rows", monitor)
    window.vault = None
    window.close()
    runner.wait()


def _count(vault) -> int:
    with vault.read() as conn:
        return conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]


# --- 3. unlock to a painted Summary -------------------------------------------------------------------------------

class _FirstPaint(QObject):
    """Notes the first paint inside ``screen`` once its data has arrived (``ready()``)."""

    def __init__(self, screen: QWidget, ready) -> None:
        super().__init__()
        self.screen, self.ready, self.at = screen, ready, None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if (self.at is None and event.type() == QEvent.Type.Paint and isinstance(obj, QWidget)
                and (obj is self.screen or self.screen.isAncestorOf(obj)) and self.ready()):
            self.at = time.perf_counter()
        return False


def bench_unlock(folder: Path, work: Path, rounds: int = 3) -> None:
    from app.main_window import MainWindow
    from app.tasks import TaskRunner
    from app.unlock_window import UnlockWindow
    from vault import crypto
    from vault.header import read_header
    params = read_header(folder).kdf
    kdf = min(_timed(lambda: crypto.argon2id(PASSPHRASE.encode(), params.salt, params.opslimit, params.memlimit))
              for _ in range(3))
    app = QApplication.instance()
    results = []
    for _ in range(rounds):
        runner = TaskRunner()
        unlock = UnlockWindow(folder, runner, params.profile)
        unlock.show_start_page()
        unlock.show()
        opened: dict = {}

        def open_window(vault, opened=opened, runner=runner, unlock=unlock) -> None:
            window = MainWindow(vault, runner, settings=_settings(work), tell=lambda _s: None)
            summary = window.screens.get("summary")
            opened["window"], opened["summary"] = window, summary
            if summary is not None:
                watcher = _FirstPaint(summary, lambda: getattr(summary, "summary", None) is not None)
                app.installEventFilter(watcher)
                opened["watcher"] = watcher
            unlock.hide()
            window.show()

        unlock.unlocked.connect(open_window)
        unlock.pass_field.setText(PASSPHRASE)
        start = time.perf_counter()
        unlock.unlock_button.click()
        if not wait_until(lambda: "watcher" in opened and opened["watcher"].at is not None, 120):
            if "window" not in opened:
                print(f"[unlock] the vault did not open: {unlock.status.text() or 'no answer in 2 minutes'}")
            elif opened.get("summary") is None:
                print("[unlock] the main window has no Summary screen yet; skipped")
            else:
                print("[unlock] the Summary did not paint its data within 2 minutes")
            return
        results.append(opened["watcher"].at - start)
        app.removeEventFilter(opened["watcher"])
        window = opened["window"]
        vault, window.vault = window.vault, None
        window.close()
        unlock.close()
        runner.wait()
        vault.close()
    best, median = min(results), statistics.median(results)
    print(f"[unlock] {_size_note(folder)}: unlock pressed -> Summary painted with its data, {rounds} rounds")
    print(f"  key derivation alone ({params.profile}): {kdf * 1000:.0f} ms")
    beyond = median - kdf
    print(f"  total: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms; beyond the key derivation "
          f"{beyond * 1000:.0f} ms (median)   target <= {UNLOCK_TARGET_S * 1000:.0f} ms "
          f"{'OK' if beyond <= UNLOCK_TARGET_S else 'OVER'}")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _size_note(folder: Path) -> str:
    return f"vault of {(folder / 'vault.db').stat().st_size / 1e6:.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="import,timeline,unlock")
    ap.add_argument("--import-size", type=int, default=10_000)
    ap.add_argument("--vault-size", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="build the big vault here (or reuse it) instead of a temp folder")
    args = ap.parse_args()
    only = set(args.only.split(","))
    # the interpreter as the app sets it up (switch interval, collector), before anything runs
    from app.responsiveness import tune_interpreter
    tune_interpreter()
    # the gaps include time the GUI thread waited for a core: on a loaded machine they say as much about the load
    app = QApplication.instance() or QApplication(sys.argv[:1])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench_floor()
    work = Path(tempfile.mkdtemp(prefix="medvault-bench-gui-"))
    os.chmod(work, 0o700)
    try:
        if "import" in only:
            bench_import(work, args.import_size)
        if only & {"timeline", "unlock"}:
            folder = args.keep if args.keep else work / "big"
            vault = big_vault(folder, args.vault_size, work)
            try:
                if "timeline" in only:
                    bench_timeline(vault, work)
            finally:
                vault.close()
            if "unlock" in only:
                bench_unlock(folder, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    del app


if __name__ == "__main__":
    main()
