"""The frozen Linux bundle: its size on disk, and the time from starting it to the unlock window painted on a real X
server (Xvfb), printed beside the same start from the source checkout, measured in the same run.

Target: the bundle's unlock window painted within 2 s. "Painted" is seen from outside: a watcher process grabs the
screen in a loop and notes the moment the window's pixels are there, so neither program is changed to be measured.
The first start of each is the coldest this run can make (no caches dropped: that needs the whole machine); later
rounds alternate the two so load on a shared machine hits both alike.

Run: .venv/bin/python bench/bench_bundle.py [--bundle DIR] [--rounds 5]   (without --bundle it runs scripts/package)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.peers.xvfb import running_xvfb  # noqa: E402

TARGET_S = 2.0
PASSPHRASE = "benchmark passphrase only"

# Grabs a reduced copy of the screen as fast as it can; "watch" waits for a window to be drawn and answers with the
# monotonic time (system-wide on Linux, so comparable with this process's), "blank" waits for an empty screen.
WATCHER = textwrap.dedent("""
    import sys, time
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication(sys.argv[:1])
    screen = app.primaryScreen()

    def changed():
        image = screen.grabWindow(0).toImage().scaled(160, 120, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                      Qt.TransformationMode.FastTransformation)
        base = image.pixel(0, 0)
        return sum(1 for y in range(120) for x in range(160) if image.pixel(x, y) != base)

    for line in sys.stdin:
        want_drawn = line.strip() == "watch"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = changed()
            if (n > 400) if want_drawn else (n == 0):
                break
            time.sleep(0.005)  # leave the measured program the CPU it would have without a watcher
        print(f"{time.monotonic():.6f} {n}", flush=True)
""")


def size_on_disk(folder: Path) -> tuple[int, int]:
    blocks = files = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            blocks += path.stat().st_blocks * 512
            files += 1
    return blocks, files


def build_bundle(out: Path) -> Path:
    started = time.monotonic()
    subprocess.run([ROOT / "scripts" / "package", "--out", out], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHON": sys.executable})
    print(f"scripts/package: {time.monotonic() - started:.0f} s")
    return next(p for p in out.iterdir() if p.is_dir() and p.name.startswith("medvault-"))


def start_to_painted(cmd: list[str], env: dict[str, str], watcher: subprocess.Popen) -> float:
    watcher.stdin.write("blank\n")
    watcher.stdin.flush()
    watcher.stdout.readline()
    started = time.monotonic()
    app = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher.stdin.write("watch\n")
    watcher.stdin.flush()
    painted, changed = watcher.stdout.readline().split()
    try:
        if int(changed) <= 400 or app.poll() is not None:
            raise SystemExit(f"the window never appeared: {app.stderr.read().decode()[-2000:]}")
    finally:
        app.terminate()
        app.wait(timeout=30)
    return float(painted) - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path, help="an unpacked bundle folder (default: build one now)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medvault-bench-") as tmp:
        tmp_path = Path(tmp)
        bundle = args.bundle.resolve() if args.bundle else build_bundle(tmp_path / "out")
        on_disk, files = size_on_disk(bundle)
        tarballs = list(bundle.parent.glob(f"{bundle.name}.tar.gz"))
        print(f"bundle {bundle.name}: {on_disk / 2**20:.0f} MiB on disk in {files} files"
              + (f"; tarball {tarballs[0].stat().st_size / 2**20:.0f} MiB" if tarballs else ""))

        vault = tmp_path / "vault"
        subprocess.run([sys.executable, "-m", "app", "--vault", vault, "init", "--kdf-profile", "test-insecure"],
                       cwd=ROOT, check=True, capture_output=True, env={**os.environ, "MEDVAULT_PASSPHRASE": PASSPHRASE})
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        with running_xvfb() as display:
            base_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DISPLAY": display, "LANG": "C.UTF-8",
                        "XDG_RUNTIME_DIR": str(runtime), "QT_QPA_PLATFORM": "xcb"}
            watcher = subprocess.Popen([sys.executable, "-c", WATCHER], env={**os.environ, **base_env},
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            variants = {
                "bundle": ([str(bundle / "medvault"), "--vault", str(vault), "gui"], base_env),
                "source checkout": ([sys.executable, "-m", "app", "--vault", str(vault), "gui"],
                                    {**base_env, "PYTHONPATH": str(ROOT)}),
            }
            times: dict[str, list[float]] = {name: [] for name in variants}
            try:
                for _round in range(args.rounds):
                    for name, (cmd, env) in variants.items():
                        times[name].append(start_to_painted(cmd, env, watcher))
            finally:
                watcher.stdin.close()
                watcher.wait(timeout=30)
    print(f"start to unlock window painted (Xvfb, {args.rounds} rounds; first = coldest start of this run):")
    for name, values in times.items():
        print(f"  {name:<16} first {values[0] * 1000:5.0f} ms   median {statistics.median(values) * 1000:5.0f} ms"
              f"   best {min(values) * 1000:5.0f} ms")
    frozen, source = times["bundle"], times["source checkout"]
    worst = max(frozen[0], statistics.median(frozen))
    print(f"bundle / source checkout = {statistics.median(frozen) / statistics.median(source):.2f}x (median); "
          f"bundle within {TARGET_S:.0f} s: {'OK' if worst <= TARGET_S else 'OVER'} "
          f"(slower of first and median: {worst * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
