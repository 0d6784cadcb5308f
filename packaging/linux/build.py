"""Builds medvault's Linux desktop bundle (run through scripts/package; standard library only).

1. copies the checkout's tracked and new files to a work folder, so nothing stale from earlier builds gets in;
2. builds the wheel there, installs it with the ``package`` extra into a fresh virtual environment;
3. freezes that installation with PyInstaller (packaging/linux/medvault.spec), so the bundle holds its own Python
   and libraries and reads nothing from the checkout or a system Python;
4. adds the desktop entry, the icons rendered from the SVG with Qt, the AppStream metainfo, the file type and the
   scripts that register them for a user, then writes OUT/medvault-<version>-linux-<arch>/, its .tar.gz and the
   wheel, and checks the frozen program starts.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
APP_ID = "org.medvault.Medvault"


def say(text: str) -> None:
    print(f"package: {text}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def stage_sources(dest: Path) -> None:
    """The files git would commit (tracked, and new ones not ignored), so build/ and egg-info leftovers stay out."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def strip_debug_info(folder: Path) -> int:
    """Drops the debug sections some wheels ship in their libraries (libpython, SQLCipher, libsodium, cytoolz: tens
    of MiB). Only debug sections: symbol tables the loader or Qt's plugin metadata need stay. Returns bytes saved."""
    libraries = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    before = sum(p.stat().st_size for p in libraries)
    for i in range(0, len(libraries), 200):
        run(["strip", "--strip-debug", *libraries[i:i + 200]])
    return before - sum(p.stat().st_size for p in libraries)


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def version_of(src: Path) -> str:
    scope: dict = {}
    exec((src / "app" / "version.py").read_text(), scope)
    return scope["__version__"]


def build(out: Path, work: Path, python: str) -> Path:
    timings: list[tuple[str, float]] = []

    def step(name: str, started: float) -> None:
        timings.append((name, time.monotonic() - started))
        say(f"{name}: {timings[-1][1]:.0f} s")

    t = time.monotonic()
    for leftover in ("src", "wheel", "spec", "dist", "pyinstaller"):  # a --work folder used before
        shutil.rmtree(work / leftover, ignore_errors=True)
    src = work / "src"
    stage_sources(src)
    version = version_of(src)
    venv = work / "venv"
    run([python, "-m", "venv", "--clear", venv])
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "wheel", "--no-deps", "-w", work / "wheel", src])
    wheel = next((work / "wheel").glob("medvault-*.whl"))
    run([*pip, "install", "--no-compile", f"{wheel}[package]"])  # PyInstaller compiles what it bundles
    step("wheel and build environment", t)

    t = time.monotonic()
    spec_dir = work / "spec"  # spec and entry script away from the checkout: analysis sees only the installed app
    spec_dir.mkdir()
    for name in ("medvault.spec", "medvault_entry.py"):
        shutil.copy2(HERE / name, spec_dir / name)
    run([venv / "bin" / "pyinstaller", "--noconfirm", "--log-level", "WARN", "--distpath", work / "dist",
         "--workpath", work / "pyinstaller", spec_dir / "medvault.spec"], cwd=spec_dir)
    saved = strip_debug_info(work / "dist" / "medvault" / "_internal")
    step(f"PyInstaller (debug info stripped: {saved / 2**20:.0f} MiB less)", t)

    t = time.monotonic()
    name = f"medvault-{version}-linux-{platform.machine()}"
    out.mkdir(parents=True, exist_ok=True)
    bundle = out / name
    if bundle.exists():
        shutil.rmtree(bundle)
    shutil.copytree(work / "dist" / "medvault", bundle, symlinks=True)
    share = bundle / "share"
    run([venv / "bin" / "python", HERE / "render_icons.py", share / "icons"], stdout=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "HOME": str(work)})
    for source, target in ((f"{APP_ID}.desktop", f"applications/{APP_ID}.desktop"),
                           (f"{APP_ID}.metainfo.xml", f"metainfo/{APP_ID}.metainfo.xml"),
                           (f"{APP_ID}.mime.xml", f"mime/packages/{APP_ID}.xml")):
        (share / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HERE / source, share / target)
    for script in ("install-desktop.sh", "uninstall-desktop.sh"):
        shutil.copy2(HERE / script, bundle / script)
    shutil.copy2(HERE / "BUNDLE-README.txt", bundle / "README.txt")
    shutil.copy2(wheel, out / wheel.name)
    check = subprocess.run([bundle / "medvault", "--version"], capture_output=True, text=True, timeout=120,
                           cwd=work, env={"PATH": "/usr/bin:/bin", "HOME": str(work)})
    if check.returncode != 0 or check.stdout.strip() != f"medvault {version}":
        raise SystemExit(f"package: the frozen program did not start: {check.stderr.strip()[-2000:]}")
    step("desktop files and check", t)

    t = time.monotonic()
    tarball = out / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=name)
    step("tarball", t)

    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    say(f"bundle {bundle} ({size / 2**20:.0f} MiB), tarball {tarball.name} "
        f"({tarball.stat().st_size / 2**20:.0f} MiB), wheel {wheel.name}")
    say(f"total build time {sum(s for _n, s in timings):.0f} s")
    return bundle


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/package", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the bundle, tarball and wheel go")
    parser.add_argument("--work", type=Path, help="keep the intermediate files here (default: a temporary folder)")
    args = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("package: this builds the Linux bundle; see packaging/windows.md and packaging/macos.md")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise SystemExit("package: PyInstaller needs a Python built with --enable-shared (libpython); "
                         "set PYTHON to one (Debian's python3 is)")
    out = args.out.resolve()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        build(out, args.work.resolve(), sys.executable)
    else:
        with tempfile.TemporaryDirectory(prefix="medvault-package-") as tmp:
            build(out, Path(tmp), sys.executable)
    return 0


if __name__ == "__main__":
    sys.exit(main())
