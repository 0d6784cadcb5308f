"""Files the CLI writes outside the vault: QR images of secrets are 0600, written atomically and never through a
symlink; saved shares and exports refuse to replace anything that is not a regular file (a link someone planted,
a folder, a pipe)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, TEST_PROFILE, run_medvault
from tests.share_cli.conftest import cli_in, env_for, free_port, serving

VICTIM_TEXT = "precious, must not change\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _planted_link(tmp_path: Path, name: str) -> tuple[Path, Path]:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    os.chmod(victim, 0o644)
    link = tmp_path / name
    link.symlink_to(victim)
    return link, victim


def _non_regular(tmp_path: Path, kind: str, name: str) -> Path:
    path = tmp_path / name
    if kind == "symlink":
        path, _ = _planted_link(tmp_path, name)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


def _unchanged(path: Path, kind: str) -> bool:
    return {"symlink": path.is_symlink(), "fifo": stat.S_ISFIFO(os.lstat(path).st_mode),
            "folder": path.is_dir() and not path.is_symlink()}[kind]


def _one_sentence(err: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("medvault: warning: the test-insecure")]
    assert len(lines) == 1 and lines[0].startswith("medvault: ") and lines[0].endswith("."), err


@pytest.fixture(autouse=True)
def _usual_umask():
    old = os.umask(0o022)  # what a desktop session has: without care, new files are world-readable
    yield
    os.umask(old)


def test_share_qr_is_private(patient_vault, tmp_path):
    png = tmp_path / "share.png"
    res = cli_in(patient_vault, "share", "create", "--type", "Condition", "--qr", str(png))
    assert res.code == 0, res.err
    assert _mode(png) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != "share.png"], "a temporary file was left behind"


def test_share_qr_is_never_written_through_a_symlink(patient_vault, tmp_path):
    link, victim = _planted_link(tmp_path, "share.png")
    before = cli_in(patient_vault, "share", "list", "--json").out
    res = cli_in(patient_vault, "share", "create", "--type", "Condition", "--qr", str(link))
    assert res.code == 1
    _one_sentence(res.err)
    assert victim.read_text() == VICTIM_TEXT and _mode(victim) == 0o644 and link.is_symlink()
    assert cli_in(patient_vault, "share", "list", "--json").out == before, "no share is made when its QR cannot be"


def test_recovery_qr_is_private_and_never_written_through_a_symlink(tmp_path):
    png = tmp_path / "recovery.png"
    env = env_for(None)
    res = run_medvault(["--vault", str(tmp_path / "v1"), "init", "--kdf-profile", TEST_PROFILE, "--recovery-qr",
                        str(png)], env)
    assert res.code == 0, res.err
    assert _mode(png) == 0o600

    link, victim = _planted_link(tmp_path, "recovery-link.png")
    res = run_medvault(["--vault", str(tmp_path / "v2"), "init", "--kdf-profile", TEST_PROFILE, "--recovery-qr",
                        str(link)], env)
    assert res.code == 1
    _one_sentence(res.err)
    assert victim.read_text() == VICTIM_TEXT and link.is_symlink()
    assert not (tmp_path / "v2").exists(), "no vault is created when its recovery QR cannot be written"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_export_refuses_to_replace_what_is_not_a_regular_file(patient_vault, tmp_path, kind):
    target = _non_regular(tmp_path, kind, "export.json")
    res = cli_in(patient_vault, "export", "-o", str(target))
    assert res.code == 1
    _one_sentence(res.err)
    assert _unchanged(target, kind)
    if kind == "symlink":
        assert (tmp_path / "victim.txt").read_text() == VICTIM_TEXT
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_export_replaces_a_regular_file_and_makes_it_private(patient_vault, tmp_path):
    target = tmp_path / "export.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    res = cli_in(patient_vault, "export", "--type", "Condition", "-o", str(target))
    assert res.code == 0, res.err
    assert json.loads(target.read_text())["resourceType"] == "Bundle" and _mode(target) == 0o600


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_open_save_refuses_to_replace_what_is_not_a_regular_file(patient_vault, tmp_path, kind):
    port = free_port()
    res = cli_in(patient_vault, "share", "create", "--gateway", f"http://127.0.0.1:{port}", "--type", "Condition")
    assert res.code == 0, res.err
    target = _non_regular(tmp_path, kind, "received.json")
    with serving(patient_vault, port):
        opened = run_medvault(["open", res.out.strip(), "--allow-local-http", "--save", str(target)], env_for(None))
    assert opened.code == 1
    _one_sentence(opened.err)
    assert _unchanged(target, kind)
    if kind == "symlink":
        assert (tmp_path / "victim.txt").read_text() == VICTIM_TEXT
