"""A process killed at any moment during init, passwd or recover leaves a vault that opens with the old or the new
passphrase (or, for init, no vault at all and a folder where init can simply run again).

The kills are real: ``strace`` delivers SIGKILL on entry to the N-th call of each system call that changes files
(write, pwrite64, fsync, fdatasync, rename, unlink, ftruncate), for every N the command makes, so every write
boundary of the command is a kill point, not a sampled few.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, ROOT, TEST_PROFILE

MUTATING = ("write", "pwrite64", "fsync", "fdatasync", "rename", "renameat", "renameat2", "unlink", "ftruncate")
NEW = "the new passphrase after"
MAX_POINTS = 60  # per command; the commands make fewer mutating calls than this, so every one is covered



@pytest.fixture(autouse=True)
def _strace_installed():
    if shutil.which("strace") is None:
        pytest.fail("strace is missing; scripts/bootstrap.sh installs the Debian package strace", pytrace=False)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDVAULT_")}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", **extra})
    return env


def _strace(args: list[str], env: dict[str, str], extra: list[str], trace_out: Path | None = None) -> int:
    cmd = ["strace", "-f", "-qq", "-e", "trace=" + ",".join(MUTATING), "-o", str(trace_out or os.devnull), *extra,
           sys.executable, "-m", "app", *args]
    return subprocess.run(cmd, cwd=ROOT, env=_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=120).returncode


def _kill_points(args: list[str], env: dict[str, str], tmp: Path, prepare) -> list[tuple[str, int]]:
    prepare()
    trace = tmp / "trace.txt"
    assert _strace(args, env, [], trace) == 0
    counts: Counter[str] = Counter()
    for line in trace.read_text().splitlines():
        name = line.split(None, 1)[1].split("(", 1)[0] if " " in line else ""
        if name in MUTATING:
            counts[name] += 1
    points = [(name, n) for name, total in sorted(counts.items()) for n in range(1, total + 1)]
    assert points, "the command made no file changes to interrupt"
    step = max(1, len(points) // MAX_POINTS)
    return points[::step]


def _opens_with(folder: Path, passphrase: str) -> bool:
    from vault.errors import WrongPassphrase
    from vault.store import Vault
    try:
        with Vault.unlock(folder, passphrase) as vault:
            assert vault.verify().intact
            return True
    except WrongPassphrase:
        return False


def _make_vault(folder: Path) -> str:
    from vault.store import Vault
    if folder.exists():
        shutil.rmtree(folder)
    vault, key = Vault.create(folder, PASSPHRASE, kdf_profile=TEST_PROFILE)
    vault.close()
    return key


def _kill_and_check(args, env, tmp, prepare, check):
    points = _kill_points(args, env, tmp, prepare)
    for name, n in points:
        prepare()
        # The exit status is not checked: the state on disk must hold whether or not the kill landed first.
        _strace(args, env, ["-e", f"inject={name}:signal=KILL:when={n}"])
        check(name, n)
    return points


def test_kill_during_passwd(tmp_path):
    folder = tmp_path / "v"
    key_holder = {}

    def prepare():
        key_holder["key"] = _make_vault(folder)

    def check(name, n):
        old, new = _opens_with(folder, PASSPHRASE), _opens_with(folder, NEW)
        assert old != new, f"after a kill at {name} #{n} the vault opened with old={old} new={new}"

    points = _kill_and_check(["--vault", str(folder), "passwd"],
                             {"MEDVAULT_PASSPHRASE": PASSPHRASE, "MEDVAULT_NEW_PASSPHRASE": NEW}, tmp_path,
                             prepare, check)
    assert len(points) >= 5


def test_kill_during_recover(tmp_path):
    folder = tmp_path / "v"
    state = {}

    def prepare():
        state["key"] = _make_vault(folder)
        env["MEDVAULT_RECOVERY_KEY"] = state["key"]

    def check(name, n):
        old, new = _opens_with(folder, PASSPHRASE), _opens_with(folder, NEW)
        assert old != new, f"after a kill at {name} #{n} the vault opened with old={old} new={new}"

    env = {"MEDVAULT_NEW_PASSPHRASE": NEW}
    points = _kill_and_check(["--vault", str(folder), "recover"], env, tmp_path, prepare, check)
    assert len(points) >= 5


def test_kill_during_init(tmp_path):
    folder = tmp_path / "v"
    outcomes = Counter()

    def prepare():
        shutil.rmtree(folder, ignore_errors=True)
        for draft in tmp_path.glob(".medvault-init-*"):
            shutil.rmtree(draft)

    def check(name, n):
        if (folder / "vault.header").exists():
            assert _opens_with(folder, PASSPHRASE), f"a kill at {name} #{n} left a vault that does not open"
            outcomes["complete"] += 1
        else:
            # no vault: init must simply work when run again, and tidy the abandoned draft away
            from vault.store import Vault
            vault, _ = Vault.create(folder, PASSPHRASE, kdf_profile=TEST_PROFILE)
            vault.close()
            assert not list(tmp_path.glob(".medvault-init-*"))
            outcomes["none"] += 1

    _kill_and_check(["--vault", str(folder), "init", "--kdf-profile", TEST_PROFILE],
                    {"MEDVAULT_PASSPHRASE": PASSPHRASE}, tmp_path, prepare, check)
    assert outcomes["none"] >= 3 and outcomes["complete"] >= 1  # kills landed before and after the final rename
